"""Data loading, author keys, labels, splits for the citation-impact feature study."""
import gzip, json, re, unicodedata, os, pickle
import numpy as np

DATA = '/work/main/data'
CACHE = '/work/main/research/cache'
os.makedirs(CACHE, exist_ok=True)
EPOCH = np.datetime64('1970-01-01')

def day_of(s):
    return int((np.datetime64(s[:10]) - EPOCH).astype(int))

_ACC = re.compile(r"\\[\'\"`^~=.uvHckrtbd]\s*\{?\\?([A-Za-z])\}?")
SUFFIX = {'jr', 'sr', 'ii', 'iii', 'iv'}

def author_key(name):
    s = name.replace('~', ' ')
    s = _ACC.sub(r'\1', s)
    s = s.replace('\\ss', 'ss').replace('\\aa', 'a').replace('\\AA', 'A').replace('\\o', 'o').replace('\\O', 'O').replace('\\i', 'i')
    s = re.sub(r'[{}\\]', '', s)
    s = unicodedata.normalize('NFKD', s).encode('ascii', 'ignore').decode()
    toks = [t for t in re.split(r'[\s.]+', s) if t]
    toks = [t for t in toks if t.lower().strip(',') not in SUFFIX]
    if not toks:
        return None
    sur = re.sub(r'[^a-z]', '', toks[-1].lower())
    if not sur:
        return None
    ini = ''
    if len(toks) > 1:
        m = re.search(r'[A-Za-z]', toks[0])
        ini = m.group(0).lower() if m else ''
    return sur + '_' + ini


def load():
    fn = CACHE + '/base.pkl'
    if os.path.exists(fn):
        return pickle.load(open(fn, 'rb'))
    recs = [json.loads(l) for l in gzip.open(DATA + '/papers.jsonl.gz', 'rt')]
    recs.sort(key=lambda r: (r['submitted_utc'], r['id']))
    ids = [r['id'] for r in recs]
    idx = {x: i for i, x in enumerate(ids)}
    day = np.array([day_of(r['submitted_utc']) for r in recs], dtype=np.int64)
    year = np.array([int(r['submitted_utc'][:4]) for r in recs])
    akeys = []
    amap = {}
    for r in recs:
        ks = []
        for a in r['authors']:
            k = author_key(a)
            if k and k not in ks:
                ks.append(k)
        akeys.append([amap.setdefault(k, len(amap)) for k in ks])
    E = []
    with gzip.open(DATA + '/citations_dated.tsv.gz', 'rt') as f:
        next(f)
        for l in f:
            a, b, _, _ = l.rstrip('\n').split('\t')
            if a in idx and b in idx and a != b:
                E.append((idx[a], idx[b]))
    E = np.array(E, dtype=np.int64)
    base = dict(ids=ids, day=day, year=year, authors=akeys, amap=amap,
                title=[r['title'] for r in recs], abstract=[r['abstract'] for r in recs],
                src=E[:, 0], dst=E[:, 1])
    pickle.dump(base, open(fn, 'wb'))
    return base


def labels(base, window=730, q=0.9):
    """count = #citations with citing_day - t0 <= window (incl. the 1169-ish backward edges, which are
    citations from later revisions); threshold per calendar year = np.quantile(counts_year, q)
    with numpy's default 'linear' interpolation; label = count >= threshold."""
    day, src, dst = base['day'], base['src'], base['dst']
    lag = day[src] - day[dst]
    N = len(day)
    cnt = np.bincount(dst[lag <= window], minlength=N)
    eligible = day <= day_of('2001-04-30')
    y = np.zeros(N, dtype=int)
    thr = {}
    for Y in np.unique(base['year'][eligible]):
        m = eligible & (base['year'] == Y)
        t = np.quantile(cnt[m], q)
        thr[int(Y)] = float(t)
        y[m] = cnt[m] >= t
    return y, cnt, eligible, thr


def splits(base):
    day, year = base['day'], base['year']
    tr = (year >= 1992) & (year <= 1998)
    va = year == 1999
    te = (day >= day_of('2000-01-01')) & (day <= day_of('2001-04-30'))
    return tr, va, te

if __name__ == '__main__':
    b = load()
    y, cnt, el, thr = labels(b)
    tr, va, te = splits(b)
    print(len(b['ids']), len(b['amap']), len(b['src']), thr)
    for n, m in [('tr', tr), ('va', va), ('te', te)]:
        print(n, m.sum(), y[m].mean())
