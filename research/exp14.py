"""at_publication recommended variant, robustness: LGBM regressor on r (default params), feature set base50 + 5 bc, crank182.
Single seeds 0..4 and the 3-seed average (seeds 0,1,2)."""
import numpy as np, pickle, warnings
warnings.filterwarnings('ignore')
from exp5 import load, report
from fs_features import cohort_rank
import lightgbm as lgb
L = load('pub'); d = L['d']; y, va, te, day, year, c730 = d['y'], d['va'], d['te'], d['day'], d['year'], d['c730']
NF = pickle.load(open('cache/s2_newfeat_pub.pkl', 'rb')); add = ['bc_n', 'bc_z', 'bc_ztop', 'bc_hot', 'bc_hot_n']
F = np.hstack([L['F'], NF['F'][:, [NF['keys'].index(k) for k in add]]])
thr = {Y: np.quantile(c730[year == Y], 0.9) for Y in np.unique(year)}
r = np.log1p(c730) - np.log1p(np.array([thr[Y] for Y in year]))
trm = d['tr'] & (year >= 1995)
P = dict(n_estimators=600, learning_rate=0.02, num_leaves=15, min_child_samples=40, subsample=0.8, subsample_freq=1,
         colsample_bytree=0.7, reg_lambda=1.0, verbose=-1, n_jobs=1)
S = [lgb.LGBMRegressor(**P, random_state=sd).fit(F[trm], r[trm]).predict(F) for sd in range(5)]
for sd in range(5):
    q = cohort_rank(day, S[sd], 182) + 1e-9 * S[sd]; report('pub', f'LGBMreg seed{sd} crank182', q[va], q[te], y, va, te)
s = np.mean(S[:3], 0); q = cohort_rank(day, s, 182) + 1e-9 * s; report('pub', 'LGBMreg seeds0-2 crank182', q[va], q[te], y, va, te)
s = np.mean(S, 0); q = cohort_rank(day, s, 182) + 1e-9 * s; report('pub', 'LGBMreg seeds0-4 crank182', q[va], q[te], y, va, te)
