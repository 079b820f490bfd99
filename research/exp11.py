"""Early-mode (A = t0+182) time-profile and finer citer features. Writes cache/s2_earlyfeat.pkl.
All counts use citing_day <= A; citer statistics use data dated <= A."""
import numpy as np, pickle, warnings
warnings.filterwarnings('ignore')
from exp5 import load
from fs_data import load as load_base

L = load('early'); d = L['d']; pids = d['pids']
b = load_base(); day = b['day']; src, dst = b['src'], b['dst']; N = len(day); au = b['authors']
order = np.lexsort((day[src], dst))
s2, d2 = src[order], dst[order]
start = np.searchsorted(d2, np.arange(N + 1))
cit_days = [day[s2[start[i]:start[i + 1]]] for i in range(N)]
citers = [s2[start[i]:start[i + 1]] for i in range(N)]
lagall = day[src] - day[dst]
c122 = np.bincount(dst[lagall <= 122], minlength=N); c182 = np.bincount(dst[lagall <= 182], minlength=N)
last60 = c182 - c122
# author -> papers (sorted by day)
ap = {}
for p in range(N):
    for a in au[p]: ap.setdefault(a, []).append(p)
names = ['e_last60', 'e_last30', 'e_late_share', 'e_lag_mean', 'e_dw', 'e_last60_rel', 'e_citers_cited', 'e_c2',
         'e_nonco', 'e_citer_nauth_mean', 'e_first_lag']
out = np.zeros((len(pids), len(names)))
for i, p in enumerate(pids):
    t0 = int(day[p]); A = t0 + 182
    cd = cit_days[p]; k = np.searchsorted(cd, A, side='right'); lags = cd[:k] - t0; ci = citers[p][:k]
    c = k
    l60 = int((lags > 122).sum()); l30 = int((lags > 152).sum())
    lo = np.searchsorted(day, t0 - 365); hi = np.searchsorted(day, t0, side='right')
    p90 = np.quantile(last60[lo:hi], 0.9)
    # citers cited by A, second-order reach
    cc = [int(np.searchsorted(cit_days[q], A, side='right')) for q in ci]
    reach = set()
    for q in ci:
        kq = np.searchsorted(cit_days[q], A, side='right'); reach.update(citers[q][:kq].tolist())
    reach.discard(p)
    # co-authors of p's authors as of A (papers dated <= A, excluding p itself)
    own = set(au[p]); co = set(own)
    for a in au[p]:
        for q in ap.get(a, []):
            if day[q] > A: break
            if q != p: co.update(au[q])
    nonco = sum(1 for q in ci if not (set(au[q]) & co))
    out[i] = [l60, l30, l60 / c if c else 0.0, float(np.clip(lags, 0, 182).mean()) if c else 182.0,
              float((np.clip(lags, 0, 182) / 182.0).sum()), l60 / max(p90, 1.0), sum(1 for x in cc if x > 0), len(reach),
              nonco, float(np.mean([len(au[q]) for q in ci])) if c else 0.0, float(np.clip(lags, 0, 182).min()) if c else 183.0]
from sklearn.metrics import roc_auc_score
va, te, y = d['va'], d['te'], d['y']
for j, n in enumerate(names):
    print(n, 'val ROC %.4f' % roc_auc_score(y[va], out[va, j]), 'test ROC %.4f' % roc_auc_score(y[te], out[te, j]))
pickle.dump(dict(F=out, keys=names), open('cache/s2_earlyfeat.pkl', 'wb'))
