"""New at-publication features (as of snapshot st = first day of the month of A = t0-1, like the kNN block):
 bibliographic coupling with recent papers, refs' early-rank, and an out-of-fold TF-IDF ridge text score.
Writes cache/s2_newfeat_{mode}.pkl (columns aligned with feat_{mode}.pkl rows)."""
import numpy as np, pickle, sys, warnings
import scipy.sparse as sp
warnings.filterwarnings('ignore')
from exp5 import load
from fs_data import load as load_base, EPOCH, splits

mode = sys.argv[1] if len(sys.argv) > 1 else 'pub'
L = load(mode); d = L['d']; pids = d['pids']
b = load_base(); day = b['day']; src, dst = b['src'], b['dst']; N = len(day)
S = None
# refs matrix, forward edges only (cited paper dated <= citing paper)
fw = day[dst] <= day[src]
R = sp.csr_matrix((np.ones(fw.sum()), (src[fw], dst[fw])), shape=(N, N))
nref_all = np.asarray(R.sum(1)).ravel()
# c182 and r182 (known at day_q+182)
lag = day[src] - day[dst]
c182 = np.bincount(dst[lag <= 182], minlength=N)
lo = np.searchsorted(day, day - 365); hi = np.searchsorted(day, day, side='right')
r182 = np.array([((c182[lo[q]:hi[q]] < c182[q]).sum() + 0.5 * (c182[lo[q]:hi[q]] == c182[q]).sum()) / (hi[q] - lo[q]) for q in range(N)])
A = day[pids] - 1 if mode == 'pub' else day[pids] + 182
Ms = A.astype('datetime64[D]').astype('datetime64[M]')
names = ['bc_n', 'bc_z', 'bc_ztop', 'bc_hot', 'bc_hot_n', 'bc_cosmax', 'ref_r182_mean', 'ref_r182_max', 'ref_hi182', 'ref_frac_hi182']
out = np.zeros((len(pids), len(names)))
for M in np.unique(Ms):
    st = int((M.astype('datetime64[D]') - EPOCH).astype(int))
    rows = np.where(Ms == M)[0]
    win = np.where((day >= st - 365) & (day < st))[0]
    if len(win) < 22: continue
    c = np.bincount(dst[day[src] < st], minlength=N)[win]
    lc = np.log1p(c)
    mon = day[win].astype('datetime64[D]').astype('datetime64[M]').astype(int)
    z = lc.copy()
    for mm in np.unique(mon): z[mon == mm] -= lc[mon == mm].mean()
    hot = z >= np.quantile(z, 0.9)
    P = pids[rows]
    # p's refs dated <= A
    Rp = R[P].tocoo()
    keep = day[Rp.col] <= A[rows][Rp.row]
    Rp = sp.csr_matrix((Rp.data[keep], (Rp.row[keep], Rp.col[keep])), shape=(len(P), N))
    np_ = np.asarray(Rp.sum(1)).ravel()
    Rw = R[win]
    Sh = (Rp @ Rw.T).toarray()  # shared refs (rows x win)
    for i, p in enumerate(P):  # exclude self (early mode)
        j = np.searchsorted(win, p)
        if j < len(win) and win[j] == p: Sh[i, j] = 0
    cos = Sh / np.sqrt(np.maximum(np_[:, None], 1) * np.maximum(nref_all[win][None, :], 1))
    cs = cos.sum(1)
    out[rows, 0] = (Sh > 0).sum(1)
    out[rows, 1] = np.where(cs > 0, (cos * z[None, :]).sum(1) / np.maximum(cs, 1e-12), 0)
    top = np.argpartition(-cos, 10, axis=1)[:, :10]
    tc = np.take_along_axis(cos, top, 1)
    out[rows, 2] = np.where(tc.sum(1) > 0, (tc * z[top]).sum(1) / np.maximum(tc.sum(1), 1e-12), 0)
    out[rows, 3] = (cos * hot[None, :]).sum(1)
    out[rows, 4] = ((Sh >= 2) & hot[None, :]).sum(1)
    out[rows, 5] = cos.max(1)
    # refs' early rank, only refs whose r182 is known by A
    for i, p in enumerate(P):
        rr = Rp.indices[Rp.indptr[i]:Rp.indptr[i + 1]]
        rr = rr[day[rr] + 182 <= A[rows[i]]]
        if len(rr):
            v = r182[rr]
            out[rows[i], 6:10] = [v.mean(), v.max(), (v >= 0.9).sum(), (v >= 0.9).mean()]
        else:
            out[rows[i], 6:10] = [0.5, 0.5, 0, 0]
# out-of-fold TF-IDF ridge text score (target r = log1p(c730) - log1p(thr_Y)); TF-IDF fit on training papers only.
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
docs = [b['title'][p] + ' ' + b['abstract'][p] for p in pids]
tr = d['tr']; c730, year = d['c730'], d['year']
thr = {Y: np.quantile(c730[year == Y], 0.9) for Y in np.unique(year)}
r = np.log1p(c730) - np.log1p(np.array([thr[Y] for Y in year]))
trm = tr & (year >= 1995)
vec = TfidfVectorizer(min_df=3, sublinear_tf=True, stop_words='english', max_features=50000, ngram_range=(1, 2))
vec.fit([docs[i] for i in np.where(tr)[0]])
X = vec.transform(docs)
txt = np.zeros(len(pids))
# OOF on training rows by year blocks (1995..1998), full-train model for the rest
ti = np.where(trm)[0]
for Y in [1995, 1996, 1997, 1998]:
    f = ti[year[ti] == Y]; g = ti[year[ti] != Y]
    txt[f] = Ridge(alpha=3.0).fit(X[g], r[g]).predict(X[f])
rest = ~trm
txt[rest] = Ridge(alpha=3.0).fit(X[ti], r[ti]).predict(X[rest])
names.append('txt_ridge'); out = np.column_stack([out, txt])
from sklearn.metrics import roc_auc_score
va = d['va']; y = d['y']
for j, n in enumerate(names):
    print(mode, n, 'val ROC %.3f' % roc_auc_score(y[va], out[va, j]), 'test ROC %.3f' % roc_auc_score(y[d['te']], out[d['te'], j]))
pickle.dump(dict(F=out, keys=names), open(f'cache/s2_newfeat_{mode}.pkl', 'wb'))
