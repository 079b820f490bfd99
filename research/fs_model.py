import numpy as np, warnings
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import roc_auc_score, average_precision_score
warnings.filterwarnings('ignore')

FPR_LIMIT = {'pub': 0.07, 'early': 0.04}


def prep(F, keys, fit_mask):
    """log1p on count-like columns (nonneg on train with max > 5), then standardise (fit on train)."""
    F = F.copy()
    logc = [j for j in range(F.shape[1]) if F[fit_mask, j].min() >= 0 and F[fit_mask, j].max() > 5]
    F[:, logc] = np.log1p(np.maximum(F[:, logc], 0))
    sc = StandardScaler().fit(F[fit_mask])
    Z = np.clip(sc.transform(F), -6, 6)
    return Z, [keys[j] for j in logc]


def metrics_at(y, s, thr):
    pred = s >= thr
    tp = int((pred & (y == 1)).sum()); fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum()); tn = int((~pred & (y == 0)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return dict(acc=(tp + tn) / len(y), fpr=fp / (fp + tn), f1=f1, prec=prec, rec=rec)


def choose_threshold(y, s, fpr_limit, objective='f1'):
    """Scan all distinct validation scores; keep thresholds with val FPR <= fpr_limit; maximise objective
    (F1, ties -> higher accuracy). Threshold = midpoint between the chosen score and the next lower score."""
    u = np.unique(s)[::-1]
    best = (-1, -1, np.inf)
    for i, t in enumerate(u):
        m = metrics_at(y, s, t)
        if m['fpr'] > fpr_limit:
            break
        key = (m[objective], m['acc'])
        if key > best[:2]:
            nxt = u[i + 1] if i + 1 < len(u) else t - 1
            best = (key[0], key[1], (t + nxt) / 2)
    return best[2]


def evaluate(y, s, thr):
    r = dict(roc=roc_auc_score(y, s) if len(np.unique(s)) > 1 else 0.5,
             pr=average_precision_score(y, s))
    r.update(metrics_at(y, s, thr))
    return r


def fit_lr(Z, y, C=0.1):
    return LogisticRegression(C=C, class_weight='balanced', max_iter=3000).fit(Z, y)


def fit_mlp(Z, y, hidden=(64,), alpha=1e-3, pos_w=None, seed=0, lr=1e-3):
    """class weighting emulated by replicating positives pos_w times (sklearn MLP has no sample weights
    in older versions); early stopping on a random 10% holdout of the (replicated) train set."""
    rng = np.random.RandomState(seed)
    if pos_w is None:
        pos_w = int(round((y == 0).sum() / max(1, (y == 1).sum())))
    idx = np.concatenate([np.where(y == 0)[0]] + [np.where(y == 1)[0]] * pos_w)
    rng.shuffle(idx)
    m = MLPClassifier(hidden_layer_sizes=hidden, alpha=alpha, early_stopping=True, validation_fraction=0.1,
                      n_iter_no_change=10, max_iter=300, learning_rate_init=lr, batch_size=256, random_state=seed)
    return m.fit(Z[idx], y[idx])
