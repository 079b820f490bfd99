"""Early mode: base features + time-profile/citer features (exp11) [+ coupling (exp7 early)].
Models: LR+MLP classifier, dense-target MLPRegressor / LGBM regressor; crank182 transform; blends with the c182 rule."""
import numpy as np, pickle, sys, warnings
warnings.filterwarnings('ignore')
from exp5 import load, report, base_models, HP
from fs_model import prep, evaluate
from fs_features import cohort_rank
from sklearn.neural_network import MLPRegressor
import lightgbm as lgb

mode = 'early'
L = load(mode); d = L['d']; y, va, te, day = d['y'], d['va'], d['te'], d['day']
EF = pickle.load(open('cache/s2_earlyfeat.pkl', 'rb')); NF = pickle.load(open('cache/s2_newfeat_early.pkl', 'rb'))
c730, year = d['c730'], d['year']
thr = {Y: np.quantile(c730[year == Y], 0.9) for Y in np.unique(year)}
r = np.log1p(c730) - np.log1p(np.array([thr[Y] for Y in year]))
c182 = L['Fall'][:, L['kall'].index('e_c182')].astype(float)
TP = ['e_last60', 'e_dw', 'e_last60_rel', 'e_citers_cited', 'e_c2', 'e_nonco', 'e_first_lag']
BC = ['bc_z', 'bc_ztop', 'bc_hot', 'ref_r182_mean', 'ref_hi182']
SETS = {'base': ([], []), 'tp': (TP, []), 'tp+bc': (TP, BC)}
cr = lambda s: cohort_rank(day, s, 182) + 1e-9 * s
res = {}
for sname in sys.argv[1:] or SETS:
    a1, a2 = SETS[sname]
    F = np.hstack([L['F']] + ([EF['F'][:, [EF['keys'].index(k) for k in a1]]] if a1 else []) +
                  ([NF['F'][:, [NF['keys'].index(k) for k in a2]]] if a2 else []))
    keys = L['keys'] + a1 + a2
    pl, pm, Z, trm = base_models(mode, F, keys, d)
    zn = lambda s: (s - s[trm].mean()) / s[trm].std()
    rep = lambda n, s: report(mode, f'[{sname}] ' + n, s[va], s[te], y, va, te)
    cls = (pl + pm) / 2
    rep('LR', pl); rep('MLP', pm); rep('LR+MLP', cls)
    rc = np.clip(r, -3, 1.0)
    ms = [MLPRegressor(hidden_layer_sizes=(64,), alpha=1.0, early_stopping=True, validation_fraction=0.1,
                       n_iter_no_change=10, max_iter=300, batch_size=256, random_state=sd).fit(Z[trm], rc[trm]) for sd in range(5)]
    mr = np.mean([m.predict(Z) for m in ms], 0); rep('MLPreg[r_clip1] x5', mr)
    P = dict(n_estimators=600, learning_rate=0.02, num_leaves=15, min_child_samples=40, subsample=0.8, subsample_freq=1,
             colsample_bytree=0.7, reg_lambda=1.0, verbose=-1, n_jobs=1)
    gr = np.mean([lgb.LGBMRegressor(**P, random_state=sd).fit(F[trm], r[trm]).predict(F) for sd in range(3)], 0); rep('LGBMreg x3', gr)
    lc = np.log1p(c182)
    for nm, s in [('LR+MLP', cls), ('MLPreg', mr), ('LGBMreg', gr), ('LR+MLP+MLPreg', zn(cls) + zn(mr)),
                  ('LR+MLP+MLPreg+LGBMreg', zn(cls) + zn(mr) + zn(gr))]:
        rep(nm + ' crank182', cr(s))
        # blend with the rule: z(model) + w * z(log1p c182), w chosen on validation PR-AUC
        best = max([(evaluate(y[va], (zn(s) + w * zn(lc))[va], 0)['roc'], w) for w in [0.25, 0.5, 1.0, 2.0]])
        rep(f'{nm} + {best[1]}*rule (w by val ROC)', zn(s) + best[1] * zn(lc))
    res[sname] = dict(lr=pl, mlp=pm, mr=mr, gr=gr, trm=trm)
pickle.dump(res, open('cache/s2_exp12.pkl', 'wb'))
