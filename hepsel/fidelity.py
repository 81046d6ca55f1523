"""How close generated events are to real ones: distances, correlations, C2ST.

Pure array functions to judge a generative model (e.g. :class:`hepsel.models.gan.WGANGP`)
against held-out real events:

* per-feature 1-Wasserstein distance (in the features' own units, e.g. MeV)
  and Kolmogorov-Smirnov statistic, next to a real-vs-real baseline from two
  random halves of the held-out data, which sets the scale of "good enough";
* the difference of the Pearson correlation matrices;
* a classifier two-sample test: a small gradient-boosted tree classifier
  tries to tell real from generated; a cross-validated ROC AUC of 0.5 means
  the two samples cannot be separated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state

from hepsel._validation import check_weights
from hepsel.exceptions import NonFiniteError

__all__ = [
    "baseline_distances",
    "classifier_two_sample_test",
    "correlation_difference",
    "feature_distances",
    "fidelity_report",
]


def _as_2d(a: Any, what: str) -> np.ndarray:
    array = np.asarray(a, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        msg = f"{what} must be a non-empty array of shape (n_events, n_features), got shape {array.shape}"
        raise ValueError(msg)
    if not np.isfinite(array).all():
        msg = f"{what} holds NaN or infinite values; drop those events first"
        raise NonFiniteError(msg)
    return array


def _check_pair(real: Any, generated: Any) -> tuple[np.ndarray, np.ndarray]:
    real_2d, gen_2d = _as_2d(real, "real"), _as_2d(generated, "generated")
    if real_2d.shape[1] != gen_2d.shape[1]:
        msg = f"real has {real_2d.shape[1]} features but generated has {gen_2d.shape[1]}"
        raise ValueError(msg)
    return real_2d, gen_2d


def _check_weight(weight: Any, n: int) -> np.ndarray | None:
    w = check_weights(weight, n, name="real_weight", against="real")
    if w is None:
        return None
    if (w < 0).any() or w.sum() <= 0:
        msg = "real_weight must be finite, non-negative and not all zero"
        raise ValueError(msg)
    return w


def _weighted_ks(u: np.ndarray, v: np.ndarray, u_weight: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic between a weighted and an unweighted sample."""
    grid = np.sort(np.concatenate([u, v]))
    order = np.argsort(u, kind="stable")
    cum_u = np.concatenate([[0.0], np.cumsum(u_weight[order])]) / u_weight.sum()
    cdf_u = cum_u[np.searchsorted(u[order], grid, side="right")]
    cdf_v = np.searchsorted(np.sort(v), grid, side="right") / v.size
    return float(np.max(np.abs(cdf_u - cdf_v)))


def feature_distances(
    real: Any, generated: Any, *, real_weight: Any = None
) -> dict[str, np.ndarray]:
    """Per-feature 1-Wasserstein distance and Kolmogorov-Smirnov statistic.

    Parameters
    ----------
    real : array_like, shape (n_real, n_features)
        Real (held-out) events.
    generated : array_like, shape (n_generated, n_features)
        Generated events, same features and units.
    real_weight : array_like, shape (n_real,), optional
        Non-negative weights of the real events.

    Returns
    -------
    dict
        ``"wasserstein"``: numpy.ndarray, shape (n_features,), in each
        feature's units (:func:`scipy.stats.wasserstein_distance`);
        ``"ks"``: numpy.ndarray, shape (n_features,), the KS statistic
        (:func:`scipy.stats.ks_2samp` when unweighted, weighted empirical CDFs
        otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> d = feature_distances(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]]))
    >>> d["wasserstein"].tolist(), d["ks"].tolist()
    ([1.0], [0.5])
    """
    real_2d, gen_2d = _check_pair(real, generated)
    w = _check_weight(real_weight, real_2d.shape[0])
    n_features = real_2d.shape[1]
    w1 = np.empty(n_features)
    ks = np.empty(n_features)
    for j in range(n_features):
        u, v = real_2d[:, j], gen_2d[:, j]
        w1[j] = wasserstein_distance(u, v, u_weights=w)
        ks[j] = ks_2samp(u, v).statistic if w is None else _weighted_ks(u, v, w)
    return {"wasserstein": w1, "ks": ks}


def baseline_distances(
    real_holdout: Any, random_state: int | np.random.RandomState | None, *, real_weight: Any = None
) -> dict[str, np.ndarray]:
    """Real-vs-real distances between two random halves of the held-out events.

    A generator cannot be expected to do better than this: the halves differ
    only by statistical fluctuations (which shrink as ``1/sqrt(n)``; the halves
    have half the events, so the baseline is slightly pessimistic).

    Parameters
    ----------
    real_holdout : array_like, shape (n_events, n_features)
    random_state : int, numpy.random.RandomState or None
        Seeds the split.
    real_weight : array_like, shape (n_events,), optional
        Weights of the held-out events; the first half is weighted.

    Returns
    -------
    dict
        As :func:`feature_distances`.
    """
    real_2d = _as_2d(real_holdout, "real_holdout")
    w = _check_weight(real_weight, real_2d.shape[0])
    if real_2d.shape[0] < 2:
        msg = "real_holdout needs at least 2 events to split into halves"
        raise ValueError(msg)
    permutation = check_random_state(random_state).permutation(real_2d.shape[0])
    first, second = np.array_split(permutation, 2)
    return feature_distances(
        real_2d[first], real_2d[second], real_weight=None if w is None else w[first]
    )


def _correlation(a: np.ndarray) -> np.ndarray:
    centred = a - a.mean(axis=0)
    cov = centred.T @ centred / a.shape[0]
    std = np.sqrt(np.diag(cov))
    # A constant feature has no defined correlation; report zero, not NaN.
    safe = np.where(std > 0, std, 1.0)
    corr = cov / np.outer(safe, safe)
    corr[std == 0, :] = 0.0
    corr[:, std == 0] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.asarray(np.clip(corr, -1.0, 1.0))


def correlation_difference(real: Any, generated: Any) -> tuple[np.ndarray, float]:
    """Pearson correlation matrix of ``generated`` minus that of ``real``.

    Parameters
    ----------
    real : array_like, shape (n_real, n_features)
    generated : array_like, shape (n_generated, n_features)

    Returns
    -------
    difference : numpy.ndarray, shape (n_features, n_features)
        Dimensionless, in ``[-2, 2]``; constant features count as uncorrelated.
    max_abs : float
        ``max(abs(difference))``.
    """
    real_2d, gen_2d = _check_pair(real, generated)
    difference = _correlation(gen_2d) - _correlation(real_2d)
    return difference, float(np.max(np.abs(difference)))


def classifier_two_sample_test(
    real: Any,
    generated: Any,
    *,
    random_state: int | np.random.RandomState | None,
    n_folds: int = 2,
    n_estimators: int = 100,
    max_depth: int = 3,
    n_jobs: int | None = None,
    real_weight: Any = None,
) -> dict[str, float]:
    """Classifier two-sample test: can a small BDT tell real from generated?

    An :class:`xgboost.XGBClassifier` is trained to separate real (label 1)
    from generated (label 0) events with stratified ``n_folds``-fold
    cross-validation; the ROC AUC is measured on each held-out fold.

    Parameters
    ----------
    real : array_like, shape (n_real, n_features)
    generated : array_like, shape (n_generated, n_features)
    random_state : int, numpy.random.RandomState or None
        Seeds the folds and the trees.
    n_folds : int, default 2
    n_estimators, max_depth : int
        Size of the boosted-tree classifier.
    n_jobs : int or None
        Threads for xgboost.
    real_weight : array_like, shape (n_real,), optional
        Non-negative weights of the real events, for a generator that learnt
        the weighted distribution: the classifier trains on them (the
        generated events weigh one each, both classes scaled to equal totals)
        and the AUC is weighted.

    Returns
    -------
    dict
        ``auc`` (mean over folds; 0.5: indistinguishable, 1: fully separable),
        ``auc_std`` (standard deviation over folds) and ``n_folds``.
    """
    from xgboost import XGBClassifier

    real_2d, gen_2d = _check_pair(real, generated)
    if n_folds < 2:
        msg = f"n_folds must be at least 2, got {n_folds}"
        raise ValueError(msg)
    w_real = _check_weight(real_weight, real_2d.shape[0])
    X = np.vstack([real_2d, gen_2d])
    y = np.r_[np.ones(real_2d.shape[0]), np.zeros(gen_2d.shape[0])]
    if w_real is None:
        weight = np.ones(y.size)
    else:
        # equal class totals, so the weights change the shape of the real class only
        weight = np.r_[w_real * real_2d.shape[0] / w_real.sum(), np.ones(gen_2d.shape[0])]
    rng = check_random_state(random_state)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=rng.randint(2**31 - 1))
    aucs = []
    for train, test in folds.split(X, y):
        model = XGBClassifier(
            n_estimators=n_estimators,
            max_depth=max_depth,
            learning_rate=0.1,
            tree_method="hist",
            n_jobs=n_jobs,
            random_state=int(rng.randint(2**31 - 1)),
        )
        model.fit(X[train], y[train], sample_weight=weight[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(X[test])[:, 1], sample_weight=weight[test]))
    return {"auc": float(np.mean(aucs)), "auc_std": float(np.std(aucs)), "n_folds": int(n_folds)}


def fidelity_report(
    real_holdout: Any,
    generated: Any,
    feature_names: Sequence[str],
    random_state: int | np.random.RandomState | None,
    *,
    real_weight: Any = None,
) -> dict[str, Any]:
    """Summarise how well ``generated`` reproduces ``real_holdout``, as plain JSON types.

    Parameters
    ----------
    real_holdout : array_like, shape (n_real, n_features)
        Real events not used to train the generator, physical units.
    generated : array_like, shape (n_generated, n_features)
        Generated events, same units.
    feature_names : sequence of str, length n_features
    random_state : int, numpy.random.RandomState or None
        Seeds the baseline split and the two-sample test.
    real_weight : array_like, shape (n_real,), optional
        Non-negative weights of the real events (used by the distances and
        the two-sample test, not by the correlations).

    Returns
    -------
    dict
        ``features``: per feature name, ``wasserstein``, ``ks`` (one random
        half of the real events vs an equally large generated sample),
        ``baseline_wasserstein``, ``baseline_ks`` (that half vs the other
        half) and ``wasserstein_ratio`` (distance over baseline; about 1 is as
        good as it gets);
        ``mean_wasserstein_ratio``, ``max_abs_correlation_difference``,
        ``correlation_difference`` (nested lists), ``c2st_auc``,
        ``c2st_auc_std``, ``n_real`` and ``n_generated``.
    """
    real_2d, gen_2d = _check_pair(real_holdout, generated)
    names = [str(n) for n in feature_names]
    if len(names) != real_2d.shape[1]:
        msg = f"got {len(names)} feature_names for {real_2d.shape[1]} features"
        raise ValueError(msg)
    rng = check_random_state(random_state)
    if real_2d.shape[0] < 2:
        msg = "real_holdout needs at least 2 events to split into halves"
        raise ValueError(msg)
    # like for like: half A of the real events against half B (the baseline) and
    # against as many generated events as half B has, so both distances carry
    # the same statistical floor
    w = _check_weight(real_weight, real_2d.shape[0])
    first, second = np.array_split(rng.permutation(real_2d.shape[0]), 2)
    w_first = None if w is None else w[first]
    baseline = feature_distances(real_2d[first], real_2d[second], real_weight=w_first)
    n_gen = min(len(second), gen_2d.shape[0])
    distances = feature_distances(real_2d[first], gen_2d[rng.permutation(gen_2d.shape[0])[:n_gen]], real_weight=w_first)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = distances["wasserstein"] / baseline["wasserstein"]
    features = {
        name: {
            "wasserstein": float(distances["wasserstein"][j]),
            "ks": float(distances["ks"][j]),
            "baseline_wasserstein": float(baseline["wasserstein"][j]),
            "baseline_ks": float(baseline["ks"][j]),
            "wasserstein_ratio": float(ratio[j]) if np.isfinite(ratio[j]) else None,
        }
        for j, name in enumerate(names)
    }
    difference, max_abs = correlation_difference(real_2d, gen_2d)
    c2st = classifier_two_sample_test(real_2d, gen_2d, random_state=rng, real_weight=w)
    finite_ratio = ratio[np.isfinite(ratio)]
    return {
        "features": features,
        "mean_wasserstein_ratio": float(finite_ratio.mean()) if finite_ratio.size else None,
        "max_abs_correlation_difference": max_abs,
        "correlation_difference": difference.tolist(),
        "c2st_auc": c2st["auc"],
        "c2st_auc_std": c2st["auc_std"],
        "n_real": int(real_2d.shape[0]),
        "n_generated": int(gen_2d.shape[0]),
    }
