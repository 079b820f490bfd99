"""Models on base features + session-2 features (exp7). Classifier LR+MLP, dense-target MLPRegressor / LGBM regressor, blends.
Usage: python exp8.py pub [set ...]"""
import numpy as np, pickle, sys, warnings
warnings.filterwarnings('ignore')
from exp5 import load, report, base_models, HP
from fs_model import prep, evaluate
from sklearn.neural_network import MLPRegressor
import lightgbm as lgb

mode = sys.argv[1]
L = load(mode); d = L['d']; y, va, te = d['y'], d['va'], d['te']
NF = pickle.load(open(f'cache/s2_newfeat_{mode}.pkl', 'rb'))
c730, year = d['c730'], d['year']
thr = {Y: np.quantile(c730[year == Y], 0.9) for Y in np.unique(year)}
r = np.log1p(c730) - np.log1p(np.array([thr[Y] for Y in year]))
SETS = {'base': [], 'bc': ['bc_n', 'bc_z', 'bc_ztop', 'bc_hot', 'bc_hot_n'],
        'bc+r182': ['bc_n', 'bc_z', 'bc_ztop', 'bc_hot', 'bc_hot_n', 'ref_r182_mean', 'ref_hi182'],
        'bc+r182+txt': ['bc_n', 'bc_z', 'bc_ztop', 'bc_hot', 'bc_hot_n', 'ref_r182_mean', 'ref_hi182', 'txt_ridge'],
        'all': NF['keys']}
res = {}
for sname in sys.argv[2:] or SETS:
    add = SETS[sname]
    F = np.hstack([L['F'], NF['F'][:, [NF['keys'].index(k) for k in add]]]) if add else L['F']
    keys = L['keys'] + add
    pl, pm, Z, trm = base_models(mode, F, keys, d)
    def zn(s): return (s - s[trm].mean()) / s[trm].std()
    def rep(name, s): return report(mode, f'[{sname}] ' + name, s[va], s[te], y, va, te)
    cls = (pl + pm) / 2
    rep('LR', pl); rep('LR+MLP', cls)
    rc = np.clip(r, -3, 1.0)
    ms = [MLPRegressor(hidden_layer_sizes=HP[mode]['hidden'], alpha=1.0, early_stopping=True, validation_fraction=0.1,
                       n_iter_no_change=10, max_iter=300, batch_size=256, random_state=sd).fit(Z[trm], rc[trm]) for sd in range(5)]
    mr = np.mean([m.predict(Z) for m in ms], 0); rep('MLPreg[r_clip1] x5', mr)
    P = dict(n_estimators=600, learning_rate=0.02, num_leaves=15, min_child_samples=40, subsample=0.8, subsample_freq=1,
             colsample_bytree=0.7, reg_lambda=1.0, verbose=-1, n_jobs=1)
    gr = np.mean([lgb.LGBMRegressor(**P, random_state=sd).fit(F[trm], r[trm]).predict(F) for sd in range(3)], 0); rep('LGBMreg[r] x3', gr)
    rep('blend cls+MLPreg', zn(cls) + zn(mr))
    rep('blend MLPreg+LGBMreg', zn(mr) + zn(gr))
    rep('blend cls+MLPreg+LGBMreg', zn(cls) + zn(mr) + zn(gr))
    res[sname] = dict(lr=pl, mlp=pm, mr=mr, gr=gr, trm=trm)
pickle.dump(res, open(f'cache/s2_exp8_{mode}.pkl', 'wb'))
