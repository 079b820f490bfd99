import numpy as np, pickle, sys
from fs_model import *
from sklearn.metrics import roc_auc_score, average_precision_score
for mode in ['pub','early']:
    d = pickle.load(open(f'cache/feat_{mode}.pkl','rb'))
    F, keys, y = d['F'], d['keys'], d['y']
    for usesvd in [False, True]:
        FF = np.hstack([F, d['svd']]) if usesvd else F
        kk = keys + [f'svd{i}' for i in range(16)] if usesvd else keys
        for y0 in [1992, 1994, 1996]:
            trm = d['tr'] & (d['year'] >= y0)
            Z, _ = prep(FF, kk, trm)
            lr = fit_lr(Z[trm], y[trm])
            s_va = lr.predict_proba(Z[d['va']])[:,1]; s_te = lr.predict_proba(Z[d['te']])[:,1]
            print(mode, 'svd' if usesvd else '   ', y0, 'LR val roc %.4f pr %.4f | test roc %.4f pr %.4f' % (
                roc_auc_score(y[d['va']], s_va), average_precision_score(y[d['va']], s_va),
                roc_auc_score(y[d['te']], s_te), average_precision_score(y[d['te']], s_te)), flush=True)
    # GBDT reference
    import lightgbm as lgb
    FF = np.hstack([F, d['svd']])
    g = lgb.LGBMClassifier(n_estimators=400, learning_rate=0.03, num_leaves=15, min_child_samples=40, subsample=0.8, subsample_freq=1, colsample_bytree=0.7, verbose=-1, n_jobs=1)
    g.fit(FF[d['tr']], y[d['tr']])
    s_va = g.predict_proba(FF[d['va']])[:,1]; s_te = g.predict_proba(FF[d['te']])[:,1]
    print(mode, 'GBDT val roc %.4f pr %.4f | test roc %.4f pr %.4f' % (
                roc_auc_score(y[d['va']], s_va), average_precision_score(y[d['va']], s_va),
                roc_auc_score(y[d['te']], s_te), average_precision_score(y[d['te']], s_te)))
    imp = sorted(zip(g.booster_.feature_importance('gain'), keys + [f'svd{i}' for i in range(16)]), reverse=True)[:25]
    print([(k, int(v)) for v,k in imp])
