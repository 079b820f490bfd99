import numpy as np, pickle
from fs_features import *
S = Store()
for mode in ['pub', 'early']:
    d = pickle.load(open(f'cache/feat_{mode}.pkl','rb'))
    K, kk = knn_features(S, mode, d['pids'])
    d['knn'] = K; d['knn_keys'] = kk
    pickle.dump(d, open(f'cache/feat_{mode}.pkl','wb'))
    from sklearn.metrics import roc_auc_score
    for j,k in enumerate(kk):
        print(mode, k, roc_auc_score(d['y'][d['va']], K[d['va'], j]))
