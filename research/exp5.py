"""Session 2 helpers + baseline reproduction. Loads cached features (feature_study.get), fits the session-1
LR / MLP models, and provides eval helpers used by exp6+. Usage: nice -n 19 python exp5.py"""
import numpy as np, pickle, os, sys
from feature_study import get
from fs_model import prep, fit_lr, fit_mlp, choose_threshold, evaluate, FPR_LIMIT
from sklearn.metrics import roc_auc_score, average_precision_score
from scipy.stats import rankdata

TARGET = {'pub': dict(roc=0.90, pr=0.52, acc=0.89, fpr=0.07),
          'early': dict(roc=0.982, pr=0.89, acc=0.95, fpr=0.04, f1=0.78)}
HP = {'pub': dict(C=0.3, hidden=(32,), alpha=1.0), 'early': dict(C=0.3, hidden=(64,), alpha=1.0)}


def load(mode):
    fn = f'cache/s2_{mode}.pkl'
    if os.path.exists(fn):
        return pickle.load(open(fn, 'rb'))
    d, F, keys, Fall, kall = get(mode)
    out = dict(d=d, F=F, keys=keys, Fall=Fall, kall=kall)
    pickle.dump(out, open(fn, 'wb'))
    return out


def report(mode, name, sv, st, y, va, te, quiet=False):
    thr = choose_threshold(y[va], sv, FPR_LIMIT[mode])
    rv, rt = evaluate(y[va], sv, thr), evaluate(y[te], st, thr)
    t = TARGET[mode]
    ok = rt['roc'] >= t['roc'] and rt['pr'] >= t['pr'] and rt['acc'] >= t['acc'] and rt['fpr'] <= t['fpr'] and rt.get('f1', 1) >= t.get('f1', 0)
    if not quiet:
        print(f"{mode:5} {name:<34} val ROC {rv['roc']:.4f} PR {rv['pr']:.4f} | test ROC {rt['roc']:.4f} PR {rt['pr']:.4f} "
              f"acc {rt['acc']:.4f} FPR {rt['fpr']:.4f} F1 {rt['f1']:.4f}{'  ALL-TARGETS' if ok else ''}", flush=True)
    return rv, rt


def rk(s):
    """rank-normalise a score within its own array (used only for blending; ranks of val and test computed separately
    would change thresholds, so blends are made with fixed monotone maps instead, see exp6)."""
    return rankdata(s) / len(s)


def base_models(mode, F, keys, d, y0=1995, nseeds=3, seeds=None):
    hp = HP[mode]
    y = d['y']
    trm = d['tr'] & (d['year'] >= y0)
    Z, logc = prep(F, keys, trm)
    lr = fit_lr(Z[trm], y[trm], C=hp['C'])
    pl = lr.predict_proba(Z)[:, 1]
    seeds = list(range(nseeds)) if seeds is None else seeds
    ms = [fit_mlp(Z[trm], y[trm], hidden=hp['hidden'], alpha=hp['alpha'], seed=s) for s in seeds]
    pm = np.mean([m.predict_proba(Z)[:, 1] for m in ms], 0)
    return pl, pm, Z, trm


if __name__ == '__main__':
    res = {}
    for mode in ['pub', 'early']:
        L = load(mode); d = L['d']; y, va, te = d['y'], d['va'], d['te']
        pl, pm, Z, trm = base_models(mode, L['F'], L['keys'], d)
        report(mode, 'LR', pl[va], pl[te], y, va, te)
        report(mode, 'MLP x3', pm[va], pm[te], y, va, te)
        report(mode, 'LR+MLP', (pl + pm)[va] / 2, (pl + pm)[te] / 2, y, va, te)
        if mode == 'early':
            c = L['Fall'][:, L['kall'].index('e_c182')]
            report(mode, 'rule c182', c[va], c[te], y, va, te)
        res[mode] = dict(lr=pl, mlp=pm)
    pickle.dump(res, open('cache/s2_base_scores.pkl', 'wb'))
