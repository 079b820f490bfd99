import numpy as np, pickle
from fs_features import cohort_rank
from fs_model import *
from sklearn.metrics import roc_auc_score, average_precision_score
RANKF = {'pub': ['a_sum_citrec','a_max_cit','a_max_h','a_max_citrec','co_pr_max','co_collab_max','ref_rcit_sum','ref_cit_mean','t_heat_mean','knn_z','a_max_e182mean','a_sum_hi'],
         'early': ['e_c182','e_nonself','e_cit_auth','e_c91','e_citer_prom_max','a_sum_citrec','knn_z','e_citer_cit_sum']}
for mode in ['pub','early']:
    d = pickle.load(open(f'cache/feat_{mode}.pkl','rb'))
    F = np.hstack([d['F'], d['knn']]); keys = d['keys'] + d['knn_keys']
    R = np.column_stack([cohort_rank(d['day'], F[:, keys.index(k)]) for k in RANKF[mode]])
    rk = ['rk_' + k for k in RANKF[mode]]
    d['rank'] = R; d['rank_keys'] = rk
    pickle.dump(d, open(f'cache/feat_{mode}.pkl','wb'))
    y = d['y']
    allF = np.hstack([F, R]); allk = keys + rk
    va = d['va']
    single = sorted([(roc_auc_score(y[va], allF[va, j]), k) for j, k in enumerate(allk)], reverse=True)
    print(mode, [(k, round(a, 3)) for a, k in single[:30]])
    for name, FF, kk in [('base', d['F'], d['keys']), ('+knn', F, keys), ('+knn+rank', allF, allk), ('+knn+rank+svd', np.hstack([allF, d['svd']]), allk + ['svd%d' % i for i in range(16)])]:
        for y0 in [1992, 1995]:
            trm = d['tr'] & (d['year'] >= y0)
            Z, _ = prep(FF, kk, trm)
            for C in [0.03, 0.3]:
                lr = fit_lr(Z[trm], y[trm], C=C)
                s_va = lr.predict_proba(Z[va])[:, 1]; s_te = lr.predict_proba(Z[d['te']])[:, 1]
                print(mode, name, y0, C, 'LR val roc %.4f pr %.4f | test roc %.4f pr %.4f' % (
                    roc_auc_score(y[va], s_va), average_precision_score(y[va], s_va),
                    roc_auc_score(y[d['te']], s_te), average_precision_score(y[d['te']], s_te)), flush=True)
