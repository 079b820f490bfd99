"""Early mode: more seeds for the dense-target MLP (10), alpha grid, blends with LGBMreg and the c182 rule.
Selection on validation ROC-AUC (the target that is missing)."""
import numpy as np, pickle, sys, warnings, itertools
warnings.filterwarnings('ignore')
from exp5 import load, report, base_models
from fs_model import prep, evaluate
from sklearn.neural_network import MLPRegressor

mode = 'early'
L = load(mode); d = L['d']; y, va, te, day = d['y'], d['va'], d['te'], d['day']
EF = pickle.load(open('cache/s2_earlyfeat.pkl', 'rb')); NF = pickle.load(open('cache/s2_newfeat_early.pkl', 'rb'))
R12 = pickle.load(open('cache/s2_exp12.pkl', 'rb'))
c730, year = d['c730'], d['year']
thr = {Y: np.quantile(c730[year == Y], 0.9) for Y in np.unique(year)}
r = np.log1p(c730) - np.log1p(np.array([thr[Y] for Y in year]))
lc = np.log1p(L['Fall'][:, L['kall'].index('e_c182')].astype(float))
TP = ['e_last60', 'e_dw', 'e_last60_rel', 'e_citers_cited', 'e_c2', 'e_nonco', 'e_first_lag']
BC = ['bc_z', 'bc_ztop', 'bc_hot', 'ref_r182_mean', 'ref_hi182']
vroc = lambda s: evaluate(y[va], s[va], 0)['roc']
out = {}
for sname, a1, a2 in [('tp', TP, []), ('tp+bc', TP, BC)]:
    F = np.hstack([L['F'], EF['F'][:, [EF['keys'].index(k) for k in a1]]] + ([NF['F'][:, [NF['keys'].index(k) for k in a2]]] if a2 else []))
    keys = L['keys'] + a1 + a2
    trm = d['tr'] & (year >= 1995)
    Z, _ = prep(F, keys, trm)
    zn = lambda s: (s - s[trm].mean()) / s[trm].std()
    rep = lambda n, s: report(mode, f'[{sname}] ' + n, s[va], s[te], y, va, te)
    v = R12[sname]; cls = (v['lr'] + v['mlp']) / 2
    for hid, al, tc in itertools.product([(64,), (128,)], [1.0, 3.0], [1.0, 2.0]):
        t = np.clip(r, -3, tc)
        ms = [MLPRegressor(hidden_layer_sizes=hid, alpha=al, early_stopping=True, validation_fraction=0.1, n_iter_no_change=10,
                           max_iter=300, batch_size=256, random_state=sd).fit(Z[trm], t[trm]) for sd in range(10)]
        mr = np.mean([m.predict(Z) for m in ms], 0)
        rep(f'MLPreg h{hid[0]} a{al} clip{tc} x10', mr)
        cands = []
        for w_rule, w_g, w_c in itertools.product([0, 0.25, 0.5, 1.0], [0, 0.5, 1.0], [0, 0.5, 1.0]):
            s = zn(mr) + w_rule * zn(lc) + w_g * zn(v['gr']) + w_c * zn(cls)
            cands.append((vroc(s), (w_rule, w_g, w_c), s))
        b = max(cands, key=lambda x: x[0])
        rep(f'  + blend w(rule,lgb,cls)={b[1]} (val ROC)', b[2])
        out[(sname, hid, al, tc)] = (mr, b)
pickle.dump(out, open('cache/s2_exp13.pkl', 'wb'))
