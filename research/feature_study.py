"""Citation-impact feature study (prototype for the Rust port).
Usage: nice -n 19 python feature_study.py   (features cached under research/cache/)
Pipeline: fs_data (load, author keys, labels, splits) -> fs_features (as-of features) -> fs_model (LR/MLP, threshold)."""
import numpy as np, pickle, os, sys, json
from fs_features import Store, all_features, knn_features, cohort_rank
from fs_model import prep, fit_lr, fit_mlp, choose_threshold, evaluate, FPR_LIMIT

FEATS = {
 'pub': ['a_max_e182mean', 'a_mean_e182mean', 'a_max_e182max', 'a_max_r182mean', 'a_max_r182max', 'a_sum_hi182',
         'a_max_hi182share', 'a_sum_citrec', 'a_max_citrec', 'a_mean_citrec', 'a_max_cit', 'a_max_h', 'a_max_maxc',
         'a_max_np', 'a_max_age', 'a_sum_hi', 'n_auth', 'frac_new_auth',
         'co_deg_max', 'co_pr_max', 'co_collab_max', 'field_rate',
         'n_refs', 'ref_cit_mean', 'ref_rcit_mean', 'ref_rcit_max', 'ref_rcit_sum', 'ref_age_med', 'ref_frac_recent', 'ref_frac_hot',
         't_heat_mean', 't_heat_top5', 't_growth_mean', 't_pop_mean', 't_frac_new', 'n_terms', 'title_len', 'abs_len',
         'knn_z', 'knn_hot_sim', 'knn_frac_pos', 'knn_sim',
         'doy', 'tod_sin1', 'tod_cos1', 'tod_sin2', 'tod_cos2',
         'rk_a_sum_citrec', 'rk_a_max_e182mean', 'rk_co_collab_max'],
 'early': ['e_c30', 'e_c91', 'e_c182', 'e_acc', 'e_nonself', 'e_selfshare', 'e_cit_auth', 'e_citer_prom_max',
           'e_citer_prom_mean', 'e_citer_cit_sum', 'e_coh_p90', 'e_rel_p90', 'e_rel_mean', 'e_rank',
           'rk_e_nonself', 'rk_e_cit_auth', 'rk_e_citer_cit_sum',
           'a_max_e182mean', 'a_max_r182mean', 'a_sum_citrec', 'a_max_cit', 'a_max_h', 'n_auth', 'frac_new_auth',
           'co_pr_max', 'co_collab_max', 'field_rate',
           'n_refs', 'ref_rcit_mean', 'ref_frac_hot', 'ref_age_med', 'ref_frac_recent',
           't_heat_mean', 't_heat_top5', 't_pop_mean', 't_frac_new', 'abs_len', 'title_len',
           'knn_z', 'knn_hot_sim', 'doy', 'tod_sin1', 'tod_cos1', 'tod_sin2', 'tod_cos2'],
}
RANKF = {'pub': ['a_sum_citrec', 'a_max_e182mean', 'co_collab_max'],
         'early': ['e_nonself', 'e_cit_auth', 'e_citer_cit_sum']}


def get(mode):
    d = all_features(mode)
    if 'knn' not in d:
        d['knn'], d['knn_keys'] = knn_features(Store(), mode, d['pids'])
    F = np.hstack([d['F'], d['knn']]); keys = d['keys'] + d['knn_keys']
    R = np.column_stack([cohort_rank(d['day'], F[:, keys.index(k)]) for k in RANKF[mode]])
    F = np.hstack([F, R]); keys = keys + ['rk_' + k for k in RANKF[mode]]
    cols = [keys.index(k) for k in FEATS[mode]]
    return d, F[:, cols], list(FEATS[mode]), F, keys


def row(name, r):
    return f"{name:<28} {r['roc']:.4f} {r['pr']:.4f} {r['acc']:.4f} {r['fpr']:.4f} {r['f1']:.4f} {r['prec']:.4f} {r['rec']:.4f}"


def run(mode, nseeds=3):
    d, F, keys, Fall, kall = get(mode)
    y, va, te = d['y'], d['va'], d['te']
    lim = FPR_LIMIT[mode]
    out = {}
    def add(name, sv, st):
        thr = choose_threshold(y[va], sv, lim)
        out[name] = dict(test=evaluate(y[te], st, thr), val=evaluate(y[va], sv, thr), thr=float(thr))
    add('all-negative', np.zeros(va.sum()), np.zeros(te.sum()))
    c182 = Fall[:, kall.index('e_c182')] if mode == 'early' else None
    if mode == 'early':
        add('rule c182>=k', c182[va], c182[te])
    amc = Fall[:, kall.index('a_max_cit')]
    add('author prior-cit (max)', amc[va], amc[te])
    # hyper-parameter selection on validation PR-AUC
    best = None
    for y0 in [1992, 1995]:
        trm = d['tr'] & (d['year'] >= y0)
        Z, logc = prep(F, keys, trm)
        for C in [0.03, 0.1, 0.3]:
            lr = fit_lr(Z[trm], y[trm], C=C)
            sv = lr.predict_proba(Z[va])[:, 1]
            pr = evaluate(y[va], sv, 0.5)['pr']
            print(mode, 'LR', y0, C, 'val PR %.4f' % pr, flush=True)
            if best is None or pr > best[0]:
                best = (pr, y0, C)
    _, y0, C = best
    trm = d['tr'] & (d['year'] >= y0)
    Z, logc = prep(F, keys, trm)
    lr = fit_lr(Z[trm], y[trm], C=C)
    lsv, lst = lr.predict_proba(Z[va])[:, 1], lr.predict_proba(Z[te])[:, 1]
    add('logistic regression', lsv, lst)
    bm = None
    for hid in [(32,), (64,)]:
        for alpha in [0.3, 1.0, 3.0]:
            ms = [fit_mlp(Z[trm], y[trm], hidden=hid, alpha=alpha, seed=s) for s in range(nseeds)]
            sv = np.mean([m.predict_proba(Z[va])[:, 1] for m in ms], 0)
            pr = evaluate(y[va], sv, 0.5)['pr']
            print(mode, 'MLP', hid, alpha, 'val PR %.4f' % pr, flush=True)
            if bm is None or pr > bm[0]:
                bm = (pr, hid, alpha, ms, sv)
    _, hid, alpha, ms, msv = bm
    mst = np.mean([m.predict_proba(Z[te])[:, 1] for m in ms], 0)
    add('MLP', msv, mst)
    add('LR+MLP average', (lsv + msv) / 2, (lst + mst) / 2)
    # permutation importance on validation (drop in PR-AUC of the LR+MLP average)
    rng = np.random.RandomState(0)
    base_pr = evaluate(y[va], (lsv + msv) / 2, 0.5)['pr']
    imp = []
    Zv = Z[va]
    for j, k in enumerate(keys):
        Zp = Zv.copy(); Zp[:, j] = Zp[rng.permutation(len(Zp)), j]
        s = (lr.predict_proba(Zp)[:, 1] + np.mean([m.predict_proba(Zp)[:, 1] for m in ms], 0)) / 2
        imp.append((base_pr - evaluate(y[va], s, 0.5)['pr'], k))
    imp.sort(reverse=True)
    hp = dict(train_from=y0, lr_C=C, mlp_hidden=hid, mlp_alpha=alpha, n_features=len(keys), log1p=logc,
              lr_coef={k: float(c) for k, c in zip(keys, lr.coef_[0])})
    return out, imp, hp


if __name__ == '__main__':
    res = {}
    for mode in sys.argv[1:] or ['pub', 'early']:
        out, imp, hp = run(mode)
        res[mode] = dict(out=out, imp=imp, hp=hp)
        print(f'\n=== mode {mode}  (threshold: max F1 on validation s.t. validation FPR <= {FPR_LIMIT[mode]}) ===')
        print(hp)
        print(f"{'model':<28} ROC    PR     acc    FPR    F1     prec   rec   (test 2000-01..2001-04)")
        for k, v in out.items():
            print(row(k, v['test']), ' thr=%.4g' % v['thr'])
        print('validation:')
        for k, v in out.items():
            print(row(k, v['val']))
        print('permutation importance (val PR-AUC drop):', [(k, round(v, 4)) for v, k in imp])
    pickle.dump(res, open('cache/results.pkl', 'wb'))
