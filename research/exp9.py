"""Drift control: replace the final score s_p by its cohort rank among the scores of papers j with
day_j in [t0 - W, t0) (each j scored by the same frozen model at its own cutoff; as-of safe). Same threshold rule."""
import numpy as np, pickle, sys, warnings
warnings.filterwarnings('ignore')
from exp5 import load, report
from fs_features import cohort_rank

mode = sys.argv[1]
L = load(mode); d = L['d']; y, va, te, day = d['y'], d['va'], d['te'], d['day']
R = pickle.load(open(f'cache/s2_exp8_{mode}.pkl', 'rb'))
for sname, v in R.items():
    trm = v['trm']
    def zn(s): return (s - s[trm].mean()) / s[trm].std()
    cands = {'LR+MLP': (v['lr'] + v['mlp']) / 2, 'MLPreg': v['mr'], 'LGBMreg': v['gr'],
             'MLPreg+LGBMreg': zn(v['mr']) + zn(v['gr']), 'cls+MLPreg+LGBMreg': zn((v['lr'] + v['mlp']) / 2) + zn(v['mr']) + zn(v['gr'])}
    for cn, s in cands.items():
        report(mode, f'[{sname}] {cn} raw', s[va], s[te], y, va, te)
        for W in [182, 365]:
            q = cohort_rank(day, s, W) + 1e-9 * s   # tiny tie-break by raw score
            report(mode, f'[{sname}] {cn} crank{W}', q[va], q[te], y, va, te)
