"""at_publication: tune the dense-target models on validation PR-AUC (after the crank182 transform), feature set 'bc'.
MLPRegressor: target x hidden x alpha, 5 seeds; LightGBM regressor: small grid, then 5 seeds. Then seed-robustness check."""
import numpy as np, pickle, sys, warnings, itertools
warnings.filterwarnings('ignore')
from exp5 import load, report, base_models
from fs_model import prep, evaluate
from fs_features import cohort_rank
from sklearn.neural_network import MLPRegressor
import lightgbm as lgb

mode = 'pub'
L = load(mode); d = L['d']; y, va, te, day = d['y'], d['va'], d['te'], d['day']
NF = pickle.load(open(f'cache/s2_newfeat_{mode}.pkl', 'rb'))
add = ['bc_n', 'bc_z', 'bc_ztop', 'bc_hot', 'bc_hot_n']
F = np.hstack([L['F'], NF['F'][:, [NF['keys'].index(k) for k in add]]]); keys = L['keys'] + add
c730, year = d['c730'], d['year']
thr = {Y: np.quantile(c730[year == Y], 0.9) for Y in np.unique(year)}
r = np.log1p(c730) - np.log1p(np.array([thr[Y] for Y in year]))
pct = np.zeros(len(y))
for Y in np.unique(year):
    m = year == Y; from scipy.stats import rankdata; pct[m] = rankdata(c730[m]) / m.sum()
T = {'r': r, 'r_clip1': np.clip(r, -3, 1), 'pct': pct, 'pct2': pct ** 4}
trm = d['tr'] & (year >= 1995)
Z, _ = prep(F, keys, trm)
cr = lambda s: cohort_rank(day, s, 182) + 1e-9 * s
vpr = lambda s: evaluate(y[va], s[va], 0)['pr']
out = {}
best = None
for tn, hid, al in itertools.product(['r_clip1', 'pct', 'pct2'], [(32,), (64,)], [0.3, 1.0, 3.0]):
    ms = [MLPRegressor(hidden_layer_sizes=hid, alpha=al, early_stopping=True, validation_fraction=0.1, n_iter_no_change=10,
                       max_iter=300, batch_size=256, random_state=sd).fit(Z[trm], T[tn][trm]) for sd in range(5)]
    s = cr(np.mean([m.predict(Z) for m in ms], 0)); p = vpr(s)
    print('MLPreg', tn, hid, al, 'val PR %.4f' % p, flush=True)
    if best is None or p > best[0]: best = (p, (tn, hid, al), s)
print('best MLPreg', best[1]); report(mode, f'MLPreg{best[1]} crank182', best[2][va], best[2][te], y, va, te)
out['mlpreg'] = best
bestg = None
for nl, mc, (ne, lr_) in itertools.product([7, 15, 31], [20, 40, 100], [(600, 0.02), (1200, 0.01)]):
    P = dict(n_estimators=ne, learning_rate=lr_, num_leaves=nl, min_child_samples=mc, subsample=0.8, subsample_freq=1,
             colsample_bytree=0.7, reg_lambda=1.0, verbose=-1, n_jobs=1)
    s = cr(lgb.LGBMRegressor(**P, random_state=0).fit(F[trm], r[trm]).predict(F)); p = vpr(s)
    print('LGBMreg', nl, mc, ne, lr_, 'val PR %.4f' % p, flush=True)
    if bestg is None or p > bestg[0]: bestg = (p, P, s)
P = bestg[1]; print('best LGBM', P)
s5 = np.mean([lgb.LGBMRegressor(**P, random_state=sd).fit(F[trm], r[trm]).predict(F) for sd in range(5)], 0)
sg = cr(s5); report(mode, 'LGBMreg tuned x5 crank182', sg[va], sg[te], y, va, te)
out['lgb'] = (bestg[0], P, sg, s5)
# seed robustness of the session-2 default (exp8 params), 5 disjoint seed triples
P0 = dict(n_estimators=600, learning_rate=0.02, num_leaves=15, min_child_samples=40, subsample=0.8, subsample_freq=1,
          colsample_bytree=0.7, reg_lambda=1.0, verbose=-1, n_jobs=1)
for k in range(5):
    s = cr(np.mean([lgb.LGBMRegressor(**P0, random_state=100 + 3 * k + j).fit(F[trm], r[trm]).predict(F) for j in range(3)], 0))
    report(mode, f'LGBMreg default x3 seeds#{k} crank182', s[va], s[te], y, va, te)
pickle.dump(out, open('cache/s2_exp10.pkl', 'wb'))
