import numpy as np, pickle, gzip, json
from fs_data import *
b = load(); y, c730, el, thr = labels(b)
recs = {json.loads(l)['id']: json.loads(l)['submitted_utc'] for l in gzip.open(DATA + '/papers.jsonl.gz','rt')}
ts = [recs[i] for i in b['ids']]
h = np.array([int(t[11:13]) + int(t[14:16])/60 for t in ts])
mon = np.array([int(t[5:7]) for t in ts])
dst = (mon >= 4) & (mon <= 10)
et = (h - np.where(dst, 4, 5)) % 24
after = (et - 16) % 24
m = el & (b['year'] >= 1992)
for lo in range(0, 24, 2):
    s = m & (after >= lo) & (after < lo + 2)
    print(lo, s.sum(), round(y[s].mean(), 3), round(np.log1p(c730[s]).mean(), 3))
