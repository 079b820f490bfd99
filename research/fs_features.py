"""As-of feature computation. mode 'pub': cutoff A = t0-1 (everything dated strictly before t0's day).
mode 'early': cutoff A = t0+182 (everything dated <= t0+182), plus the paper's own first-182-day citations."""
import re, os, pickle
from bisect import bisect_right
import numpy as np
import scipy.sparse as sp
from fs_data import load, labels, splits, day_of, CACHE, EPOCH

STOP = set("""the and for with that this are from which its can has have been our their these those into also than then
such using use used two one new show shown given give gives find found where when while both more most other some
there here they them not but all any only via between within under over about each per may how what who whose
paper present study studied discuss discussed consider considered obtain obtained result results case cases way
well much many very however thus therefore will would could should being were was had does did non first second""".split())
TOK = re.compile(r"[a-z][a-z0-9\-]+")

def tokens(s):
    s = re.sub(r'\$[^$]*\$', ' ', s.lower())
    ws = [w for w in TOK.findall(s) if len(w) >= 3 and w not in STOP]
    out = set(ws)
    out.update(a + '_' + b for a, b in zip(ws, ws[1:]))
    return out


class Store:
    def __init__(self):
        b = self.b = load()
        self.y, self.c730, self.elig, self.thr = labels(b)
        self.day = b['day']; self.N = N = len(self.day)
        src, dst = b['src'], b['dst']
        self.year = b['year']
        # citations received: sorted citing days per paper, and citing paper ids
        order = np.lexsort((self.day[src], dst))
        s2, d2 = src[order], dst[order]
        self.cit_days = [[] for _ in range(N)]
        self.citers = [[] for _ in range(N)]
        for s, d in zip(s2.tolist(), d2.tolist()):
            self.cit_days[d].append(int(self.day[s])); self.citers[d].append(s)
        self.refs = [[] for _ in range(N)]
        for s, d in zip(src.tolist(), dst.tolist()):
            self.refs[s].append(d)
        self.authors = b['authors']
        NA = len(b['amap'])
        self.NA = NA
        self.apapers = [[] for _ in range(NA)]
        for p in range(N):  # papers sorted by day already
            for a in self.authors[p]:
                self.apapers[a].append(p)
        self.adays = [[int(self.day[p]) for p in ps] for ps in self.apapers]
        # 2-year label knowable date: Dec 31 of year(q) + 730 days (year threshold known)
        self.c182 = np.array([bisect_right(self.cit_days[p], int(self.day[p]) + 182) for p in range(N)])
        # r182(q): mid-rank of c182(q) among papers submitted in [day_q-365, day_q] (known at day_q+182)
        self.r182 = np.full(N, 0.5)
        lo = np.searchsorted(self.day, self.day - 365); hi = np.searchsorted(self.day, self.day, side='right')
        for q in range(N):
            w = self.c182[lo[q]:hi[q]]
            self.r182[q] = ((w < self.c182[q]).sum() + 0.5 * (w == self.c182[q]).sum()) / len(w)
        import gzip, json
        from fs_data import DATA
        ts = {}
        for l in gzip.open(DATA + '/papers.jsonl.gz', 'rt'):
            r = json.loads(l); ts[r['id']] = r['submitted_utc']
        ts = [ts[i] for i in b['ids']]
        h = np.array([int(t[11:13]) + int(t[14:16]) / 60 for t in ts])
        mon = np.array([int(t[5:7]) for t in ts])
        et = (h - np.where((mon >= 4) & (mon <= 10), 4, 5)) % 24
        self.after_dl = (et - 16) % 24   # hours after the 16:00 US-Eastern daily deadline
        self.hi_known = np.array([day_of(f'{int(Y)}-12-31') + 731 for Y in self.year])
        self._memo = {}

    def ncit(self, q, A):
        return bisect_right(self.cit_days[q], A)

    def author_stats(self, a, A, exclude=-1):
        key = (a, A, exclude)
        r = self._memo.get(key)
        if r is not None:
            return r
        k = bisect_right(self.adays[a], A)
        ps = [q for q in self.apapers[a][:k] if q != exclude]
        if not ps:
            r = (0, 0, 0, 0, 0.0, 0, 0, 0, 0.0, 0, 0.0, 0.0, 0)
        else:
            cs = []; rc = 0; np_rec = 0; hi = 0; e182 = []; rr = []
            for q in ps:
                cd = self.cit_days[q]
                c = bisect_right(cd, A); cs.append(c)
                rc += c - bisect_right(cd, A - 365)
                dq = int(self.day[q])
                if dq > A - 365: np_rec += 1
                if dq + 182 <= A:
                    e182.append(bisect_right(cd, dq + 182)); rr.append(self.r182[q])
                if self.hi_known[q] <= A and self.y[q]: hi += 1
            cs.sort(reverse=True)
            h = 0
            for i, c in enumerate(cs):
                if c >= i + 1: h = i + 1
                else: break
            age = (A - self.adays[a][0]) / 365.0
            r = (len(ps), sum(cs), h, cs[0], age, np_rec, rc, hi,
                 float(np.mean(e182)) if e182 else 0.0, max(e182) if e182 else 0,
                 float(np.mean(rr)) if rr else 0.0, max(rr) if rr else 0.0, sum(1 for x in rr if x >= 0.9))
        if len(self._memo) > 2_000_000: self._memo.clear()
        self._memo[key] = r
        return r


def month_index(d):
    dt = (np.datetime64(int(d), 'D')).astype('datetime64[M]')
    return dt

def build_snapshots(S):
    """Monthly snapshots at first day of month M (data with day < start(M)).
    coauthor graph (degree, pagerank, collaborators' citations), term heat tables."""
    fn = CACHE + '/snap.pkl'
    if os.path.exists(fn):
        return pickle.load(open(fn, 'rb'))
    b = S.b; N = S.N; day = S.day
    docs = [tokens(t + ' ' + a) for t, a in zip(b['title'], b['abstract'])]
    tr, va, te = splits(b)
    from collections import Counter
    df = Counter()
    for p in np.where(tr)[0]:
        df.update(docs[p])
    vocab = {w: i for i, w in enumerate(sorted(w for w, c in df.items() if c >= 5))}
    rows, cols = [], []
    for p, d in enumerate(docs):
        for w in d:
            j = vocab.get(w)
            if j is not None: rows.append(p); cols.append(j)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(N, len(vocab)))
    arows, acols = [], []
    for p, aa in enumerate(S.authors):
        for a in aa: arows.append(p); acols.append(a)
    B = sp.csr_matrix((np.ones(len(arows)), (arows, acols)), shape=(N, S.NA))
    src, dst = b['src'], b['dst']
    months = np.arange(np.datetime64('1991-12'), np.datetime64('2002-01'))
    snaps = {}
    for M in months:
        st = int((M.astype('datetime64[D]') - EPOCH).astype(int))
        pm = day < st
        em = day[src] < st
        cites = np.bincount(dst[em], minlength=N).astype(float)
        # coauthor graph
        Bm = B[np.where(pm)[0]]
        C = (Bm.T @ Bm).tocsr(); C.setdiag(0); C.eliminate_zeros()
        Cb = C.copy(); Cb.data[:] = 1
        deg = np.asarray(Cb.sum(1)).ravel()
        acit = Bm.T @ cites[pm]
        collab = Cb @ acit
        # pagerank on weighted coauthor graph
        w = np.asarray(C.sum(1)).ravel(); NA = S.NA
        P = sp.diags(1 / np.maximum(w, 1e-9)) @ C
        pr = np.ones(NA) / NA
        for _ in range(30):
            dang = pr[w == 0].sum()
            pr = 0.15 / NA + 0.85 * (P.T @ pr + dang / NA)
        pr = pr * NA  # mean 1
        # term heat: papers in [st-365, st)
        wm = pm & (day >= st - 365)
        Xw = X[np.where(wm)[0]]
        lc = np.log1p(cites[wm])
        mu = lc.mean() if wm.any() else 0.0
        dfw = np.asarray(Xw.sum(0)).ravel()
        sw = Xw.T @ lc
        heat = (sw + 10 * mu) / (dfw + 10) - mu
        h1 = np.asarray(X[np.where(pm & (day >= st - 182))[0]].sum(0)).ravel()
        h0 = dfw - h1
        growth = np.log((h1 + 1) / (h0 + 1))
        # paper citation pagerank not used
        snaps[str(M)] = dict(deg=deg.astype(np.float32), pr=pr.astype(np.float32), collab=collab.astype(np.float32),
                             acit=acit.astype(np.float32), heat=heat.astype(np.float32), growth=growth.astype(np.float32),
                             df=dfw.astype(np.float32), mu=mu, nwin=int(wm.sum()),
                             field_rate=float(((day[src] >= st - 365) & em).sum()) / max(1, int(wm.sum())))
    out = dict(vocab=vocab, X=X, snaps=snaps)
    pickle.dump(out, open(fn, 'wb'))
    return out


def snap_for(snapd, A):
    M = str(np.datetime64(int(A), 'D').astype('datetime64[M]'))
    return snapd['snaps'][M]


def features(S, snapd, mode, pids):
    X = snapd['X']
    rows = []
    for p in pids:
        t0 = int(S.day[p])
        A = t0 - 1 if mode == 'pub' else t0 + 182
        f = {}
        aa = S.authors[p]
        st = [S.author_stats(a, A, exclude=p) for a in aa]
        arr = np.array(st, dtype=float).reshape(-1, 13)
        if len(aa) == 0:
            arr = np.zeros((1, 13)); aa = [0]
        names = ['np', 'cit', 'h', 'maxc', 'age', 'nprec', 'citrec', 'hi', 'e182mean', 'e182max', 'r182mean', 'r182max', 'hi182']
        for j, n in enumerate(names):
            f['a_max_' + n] = arr[:, j].max()
            f['a_mean_' + n] = arr[:, j].mean()
        f['a_sum_cit'] = arr[:, 1].sum()
        f['a_sum_citrec'] = arr[:, 6].sum()
        f['a_sum_hi'] = arr[:, 7].sum()
        f['a_sum_hi182'] = arr[:, 12].sum()
        f['a_max_hi182share'] = float((arr[:, 12] / np.maximum(arr[:, 0], 1)).max())
        ad = S.after_dl[p]
        f['tod_after_dl'] = ad
        for k in (1, 2):
            f[f'tod_sin{k}'] = np.sin(2 * np.pi * k * ad / 24); f[f'tod_cos{k}'] = np.cos(2 * np.pi * k * ad / 24)
        f['tod_0_8'] = float(ad < 8)
        f['n_auth'] = len(aa)
        f['frac_new_auth'] = float((arr[:, 0] == 0).mean())
        sn = snap_for(snapd, A)
        f['co_deg_max'] = max(sn['deg'][a] for a in aa)
        f['co_deg_sum'] = sum(sn['deg'][a] for a in aa)
        f['co_pr_max'] = max(sn['pr'][a] for a in aa)
        f['co_collab_max'] = max(sn['collab'][a] for a in aa)
        f['co_collab_sum'] = sum(sn['collab'][a] for a in aa)
        f['field_rate'] = sn['field_rate']
        # references (exclude refs dated after A)
        R = [r for r in S.refs[p] if S.day[r] <= A]
        f['n_refs'] = len(R)
        if R:
            rc = np.array([S.ncit(r, A) for r in R], float)
            rrc = np.array([S.ncit(r, A) - S.ncit(r, A - 365) for r in R], float)
            rage = np.array([(t0 - S.day[r]) / 365.0 for r in R])
            f['ref_cit_mean'] = np.log1p(rc).mean(); f['ref_cit_max'] = rc.max()
            f['ref_rcit_mean'] = np.log1p(rrc).mean(); f['ref_rcit_max'] = rrc.max(); f['ref_rcit_sum'] = rrc.sum()
            f['ref_age_med'] = float(np.median(rage)); f['ref_frac_recent'] = float((rage <= 1).mean())
            f['ref_frac_hot'] = float((rrc >= 20).mean())
        else:
            for k in ['ref_cit_mean', 'ref_cit_max', 'ref_rcit_mean', 'ref_rcit_max', 'ref_rcit_sum', 'ref_frac_recent', 'ref_frac_hot']:
                f[k] = 0.0
            f['ref_age_med'] = 3.0
        # text
        terms = X.indices[X.indptr[p]:X.indptr[p + 1]]
        if len(terms):
            dfv = sn['df'][terms]; ok = dfv >= 3
            ht = sn['heat'][terms][ok] if ok.any() else np.zeros(1)
            f['t_heat_mean'] = float(ht.mean())
            f['t_heat_top5'] = float(np.sort(ht)[-5:].mean())
            f['t_heat_bot5'] = float(np.sort(ht)[:5].mean())
            g = sn['growth'][terms][ok] if ok.any() else np.zeros(1)
            f['t_growth_mean'] = float(g.mean()); f['t_growth_top5'] = float(np.sort(g)[-5:].mean())
            f['t_pop_mean'] = float(np.log1p(dfv).mean())
            f['t_frac_new'] = float((dfv == 0).mean())
        else:
            for k in ['t_heat_mean', 't_heat_top5', 't_heat_bot5', 't_growth_mean', 't_growth_top5', 't_pop_mean', 't_frac_new']:
                f[k] = 0.0
        f['n_terms'] = len(terms)
        f['title_len'] = len(S.b['title'][p].split())
        f['abs_len'] = len(S.b['abstract'][p].split())
        dt = np.datetime64(t0, 'D')
        f['doy'] = (t0 - day_of(str(dt.astype('datetime64[Y]')) + '-01-01')) / 365.0
        f['dow'] = int((t0 + 3) % 7)  # 0=Monday
        f['weekend'] = float(f['dow'] >= 5)
        if mode == 'early':
            cd = S.cit_days[p]; ci = S.citers[p]
            k182 = bisect_right(cd, t0 + 182)
            f['e_c30'] = bisect_right(cd, t0 + 30)
            f['e_c91'] = bisect_right(cd, t0 + 91)
            f['e_c182'] = k182
            f['e_acc'] = k182 - 2 * f['e_c91']
            cit_p = ci[:k182]
            own = set(aa)
            selfc = [q for q in cit_p if own & set(S.authors[q])]
            f['e_nonself'] = k182 - len(selfc)
            f['e_selfshare'] = len(selfc) / k182 if k182 else 0.0
            ca = set()
            for q in cit_p: ca.update(S.authors[q])
            f['e_cit_auth'] = len(ca - own)
            prom = [max([S.author_stats(a, A, exclude=q)[1] for a in S.authors[q]] or [0]) for q in cit_p]
            f['e_citer_prom_max'] = max(prom) if prom else 0
            f['e_citer_prom_mean'] = float(np.mean(np.log1p(prom))) if prom else 0.0
            # citing papers' own early citations (as of A): citations of citers
            cc = [S.ncit(q, A) for q in cit_p]
            f['e_citer_cit_sum'] = sum(cc)
            # cohort normalisation: papers submitted in [t0-365, t0] and their 182-day counts
            lo = np.searchsorted(S.day, t0 - 365); hi = np.searchsorted(S.day, t0, side='right')
            coh = S.c182[lo:hi]
            p90 = np.quantile(coh, 0.9); p50 = coh.mean()
            f['e_coh_p90'] = p90
            f['e_rel_p90'] = k182 / max(p90, 1.0)
            f['e_rel_mean'] = k182 / max(p50, 0.1)
            f['e_rank'] = float((coh < k182).mean() + 0.5 * (coh == k182).mean())
        rows.append(f)
    keys = list(rows[0].keys())
    return np.array([[r[k] for k in keys] for r in rows], dtype=float), keys


def text_svd(S, k=16):
    fn = CACHE + f'/svd{k}.npy'
    if os.path.exists(fn):
        return np.load(fn)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.decomposition import TruncatedSVD
    tr, va, te = splits(S.b)
    docs = [t + ' ' + a for t, a in zip(S.b['title'], S.b['abstract'])]
    vec = TfidfVectorizer(min_df=3, sublinear_tf=True, stop_words='english', max_features=50000)
    Xtr = vec.fit_transform([docs[i] for i in np.where(tr)[0]])
    svd = TruncatedSVD(k, random_state=0).fit(Xtr)
    Z = svd.transform(vec.transform(docs))
    np.save(fn, Z)
    return Z


def all_features(mode):
    fn = CACHE + f'/feat_{mode}.pkl'
    if os.path.exists(fn):
        return pickle.load(open(fn, 'rb'))
    S = Store()
    snapd = build_snapshots(S)
    tr, va, te = splits(S.b)
    pids = np.where((tr | va | te) & S.elig)[0]
    F, keys = features(S, snapd, mode, pids)
    out = dict(pids=pids, F=F, keys=keys, y=S.y[pids], c730=S.c730[pids], year=S.year[pids], day=S.day[pids],
               tr=tr[pids], va=va[pids], te=te[pids], svd=text_svd(S)[pids])
    pickle.dump(out, open(fn, 'wb'))
    return out

if __name__ == '__main__':
    import sys, time
    t = time.time()
    for m in sys.argv[1:]:
        d = all_features(m)
        print(m, d['F'].shape, time.time() - t)


def svd_embed(S, k=64):
    fn = CACHE + f'/emb{k}.npy'
    if os.path.exists(fn):
        return np.load(fn)
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.decomposition import TruncatedSVD
    tr, va, te = splits(S.b)
    docs = [t + ' ' + a for t, a in zip(S.b['title'], S.b['abstract'])]
    vec = TfidfVectorizer(min_df=3, sublinear_tf=True, stop_words='english', max_features=50000)
    Xtr = vec.fit_transform([docs[i] for i in np.where(tr)[0]])
    svd = TruncatedSVD(k, random_state=0).fit(Xtr)
    Z = svd.transform(vec.transform(docs))
    Z /= np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-9)
    np.save(fn, Z)
    return Z


def knn_features(S, mode, pids, K=20):
    """Neighbours = papers with day in [st-365, st) where st = first day of the month containing the cutoff A
    (A = t0-1 pub, t0+182 early). Citation counts of neighbours as of st (citing_day < st), age-adjusted:
    z_q = log1p(c_q) - mean(log1p(c) of window papers submitted in the same calendar month as q)."""
    E = svd_embed(S)
    day = S.day; src, dst = S.b['src'], S.b['dst']
    out = np.zeros((len(pids), 4))
    A = day[pids] - 1 if mode == 'pub' else day[pids] + 182
    Ms = A.astype('datetime64[D]').astype('datetime64[M]')
    for M in np.unique(Ms):
        st = int((M.astype('datetime64[D]') - EPOCH).astype(int))
        rows = np.where(Ms == M)[0]
        win = np.where((day >= st - 365) & (day < st))[0]
        if len(win) < K + 2:
            continue
        c = np.bincount(dst[day[src] < st], minlength=S.N)[win]
        lc = np.log1p(c)
        mon = day[win].astype('datetime64[D]').astype('datetime64[M]').astype(int)
        z = lc.copy()
        for mm in np.unique(mon):
            z[mon == mm] -= lc[mon == mm].mean()
        hot = z >= np.quantile(z, 0.9)
        sims = E[pids[rows]] @ E[win].T  # (rows, win)
        # exclude self
        pos = {q: j for j, q in enumerate(win)}
        for i, p in enumerate(pids[rows]):
            if p in pos: sims[i, pos[p]] = -1
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        ts = np.take_along_axis(sims, top, 1); tz = z[top]
        w = np.maximum(ts, 0) + 1e-6
        out[rows, 0] = (w * tz).sum(1) / w.sum(1)
        out[rows, 1] = ts.mean(1)
        out[rows, 2] = np.where(hot[None, :], sims, -1).max(1)
        out[rows, 3] = (tz > 0).mean(1)
    return out, ['knn_z', 'knn_sim', 'knn_hot_sim', 'knn_frac_pos']


def cohort_rank(day, x, window=365):
    """rank of x_i among x_j of papers with day in [day_i - window, day_i) (mid-rank, in [0,1]); 0.5 if empty."""
    r = np.full(len(x), 0.5)
    lo = np.searchsorted(day, day - window); hi = np.searchsorted(day, day, side='left')
    for i in range(len(x)):
        w = x[lo[i]:hi[i]]
        if len(w):
            r[i] = ((w < x[i]).sum() + 0.5 * (w == x[i]).sum()) / len(w)
    return r
