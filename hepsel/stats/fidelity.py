"""How close generated events are to real ones: distances, correlations, C2ST.

Pure array functions to judge a generative model (e.g. :class:`hepsel.models.gan.WGANGP`)
against held-out real events:

* per-feature 1-Wasserstein distance (in the features' own units, e.g. MeV)
  and Kolmogorov-Smirnov statistic, next to a real-vs-real baseline from two
  random halves of the held-out data, which sets the scale of "good enough";
* the difference of the Pearson correlation matrices;

Weighted real events (a generator that learnt the weighted distribution) are
compared as a weighted distribution everywhere: in the distances, in *both*
halves of the baseline, and in the correlations. Negative weights are refused:
W1, KS and correlations compare probability distributions, which a signed
measure is not, and clipping or dropping the negative weights would move the
reference exactly where they cancel positive ones. Make them non-negative
first with :func:`hepsel.train.negative_weights.cell_resample`, which keeps the
distribution at scales larger than a cell (as hepsel does for the GAN's
training events).
* a classifier two-sample test: a small gradient-boosted tree classifier
  tries to tell real from generated; a cross-validated ROC AUC of 0.5 means
  the two samples cannot be separated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state

from .._validation import check_weights
from ..exceptions import NonFiniteError
from .shapes import ks_2samp_weighted

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


def _check_weight(
    weight: Any, n: int, name: str = "real_weight", against: str = "real"
) -> np.ndarray | None:
    w = check_weights(weight, n, name=name, against=against)
    if w is None:
        return None
    if (w < 0).any():
        # a signed measure has no CDF: W1 and KS are undefined, and clipping biases the reference
        msg = (
            f"{name} holds {int((w < 0).sum())} negative values (min {w.min():g}); distances and correlations "
            "compare probability distributions: make the weights non-negative first with "
            "hepsel.train.negative_weights.cell_resample (clipping or dropping them would bias the reference)"
        )
        raise ValueError(msg)
    if not w.sum() > 0:
        msg = f"{name} must not be all zero"
        raise ValueError(msg)
    return w


def _effective_size(w: np.ndarray | None, n: int) -> float:
    """Kish's effective number of events, ``(sum w)^2 / sum w^2`` (``n`` without weights)."""
    return float(n) if w is None else float(w.sum() ** 2 / np.sum(w * w))


def feature_distances(
    real: Any, generated: Any, *, real_weight: Any = None, generated_weight: Any = None
) -> dict[str, np.ndarray]:
    """Per-feature 1-Wasserstein distance and Kolmogorov-Smirnov statistic.

    Parameters
    ----------
    real : array_like, shape (n_real, n_features)
        Real (held-out) events.
    generated : array_like, shape (n_generated, n_features)
        Generated events (or a second real sample), same features and units.
    real_weight : array_like, shape (n_real,), optional
        Non-negative weights of the real events.
    generated_weight : array_like, shape (n_generated,), optional
        Non-negative weights of the second sample (the other real half of a
        baseline); generated events weigh one each.

    Returns
    -------
    dict
        ``"wasserstein"``: numpy.ndarray, shape (n_features,), in each
        feature's units (:func:`scipy.stats.wasserstein_distance` with both
        samples' weights);
        ``"ks"``: numpy.ndarray, shape (n_features,), the KS statistic
        ``sup |F_real - F_generated|`` of the weighted empirical CDFs
        (:func:`hepsel.stats.shapes.ks_2samp_weighted`; equal to
        :func:`scipy.stats.ks_2samp` without weights).

    Raises
    ------
    ValueError
        Negative or all-zero weights (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> d = feature_distances(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]]))
    >>> d["wasserstein"].tolist(), d["ks"].tolist()
    ([1.0], [0.5])
    """
    real_2d, gen_2d = _check_pair(real, generated)
    w_u = _check_weight(real_weight, real_2d.shape[0])
    w_v = _check_weight(generated_weight, gen_2d.shape[0], "generated_weight", "generated")
    n_features = real_2d.shape[1]
    w1 = np.empty(n_features)
    ks = np.empty(n_features)
    for j in range(n_features):
        u, v = real_2d[:, j], gen_2d[:, j]
        w1[j] = wasserstein_distance(u, v, u_weights=w_u, v_weights=w_v)
        ks[j] = ks_2samp_weighted(u, v, w_u, w_v)[0]
    return {"wasserstein": w1, "ks": ks}


def _halves(n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two random halves of ``n`` events: the first draw of ``rng``."""
    if n < 2:
        msg = "real_holdout needs at least 2 events to split into halves"
        raise ValueError(msg)
    first, second = np.array_split(rng.permutation(n), 2)
    return first, second


def _baseline(
    real_2d: np.ndarray, w: np.ndarray | None, first: np.ndarray, second: np.ndarray
) -> dict[str, np.ndarray]:
    if w is not None and not (w[first].sum() > 0 and w[second].sum() > 0):
        msg = "real_weight: one random half of the held-out events has zero total weight; too few weighted events to compare"
        raise ValueError(msg)
    # both halves weighted: half B is the reference a perfect generator draws from
    return feature_distances(
        real_2d[first],
        real_2d[second],
        real_weight=None if w is None else w[first],
        generated_weight=None if w is None else w[second],
    )


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
        Seeds the split (its first draw is the permutation of the events).
    real_weight : array_like, shape (n_events,), optional
        Non-negative weights of the held-out events; both halves are weighted,
        so the baseline measures the fluctuations of the weighted distribution
        (larger than unweighted ones: about ``1/sqrt(n_eff)``, Kish's
        effective number of events).

    Returns
    -------
    dict
        As :func:`feature_distances`.
    """
    real_2d = _as_2d(real_holdout, "real_holdout")
    w = _check_weight(real_weight, real_2d.shape[0])
    first, second = _halves(real_2d.shape[0], check_random_state(random_state))
    return _baseline(real_2d, w, first, second)


def _correlation(a: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    w = np.ones(a.shape[0]) if weight is None else weight
    # A feature constant over the events that carry weight has no defined correlation:
    # report zero, not NaN (nor the noise of its rounding residues about the mean).
    constant = np.ptp(a[w > 0], axis=0) == 0
    centred = np.where(constant, 0.0, a - np.average(a, axis=0, weights=w))
    # weighted covariance; its normalisation cancels in the correlation
    cov = (centred * w[:, None]).T @ centred / w.sum()
    std = np.where(constant, 1.0, np.sqrt(np.diag(cov)))
    corr = cov / np.outer(std, std)
    np.fill_diagonal(corr, 1.0)
    return np.asarray(np.clip(corr, -1.0, 1.0))


def correlation_difference(
    real: Any, generated: Any, *, real_weight: Any = None
) -> tuple[np.ndarray, float]:
    """Pearson correlation matrix of ``generated`` minus that of ``real``.

    Parameters
    ----------
    real : array_like, shape (n_real, n_features)
    generated : array_like, shape (n_generated, n_features)
    real_weight : array_like, shape (n_real,), optional
        Non-negative weights of the real events: their weighted Pearson
        correlations (as ``numpy.cov(..., aweights=real_weight)``) are compared.

    Returns
    -------
    difference : numpy.ndarray, shape (n_features, n_features)
        Dimensionless, in ``[-2, 2]``; constant features count as uncorrelated.
    max_abs : float
        ``max(abs(difference))``.
    """
    real_2d, gen_2d = _check_pair(real, generated)
    w = _check_weight(real_weight, real_2d.shape[0])
    difference = _correlation(gen_2d) - _correlation(real_2d, w)
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
        aucs.append(
            roc_auc_score(y[test], model.predict_proba(X[test])[:, 1], sample_weight=weight[test])
        )
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
        Non-negative weights of the real events, used everywhere: distances,
        both halves of the baseline, correlations and the two-sample test.

    Returns
    -------
    dict
        ``features``: per feature name, ``wasserstein``, ``ks`` (one random
        half A of the real events vs a generated sample as large as the other
        half B's effective number of events, so that both distances carry the
        same statistical floor), ``baseline_wasserstein``, ``baseline_ks``
        (half A vs half B, both weighted) and ``wasserstein_ratio`` (distance
        over baseline; about 1 is as good as it gets);
        ``mean_wasserstein_ratio``, ``max_abs_correlation_difference``,
        ``correlation_difference`` (nested lists; weighted correlations of the
        real events), ``c2st_auc``, ``c2st_auc_std``, ``n_real``,
        ``n_generated`` and ``n_generated_compared`` (the generated events
        the distances use).
    """
    real_2d, gen_2d = _check_pair(real_holdout, generated)
    names = [str(n) for n in feature_names]
    if len(names) != real_2d.shape[1]:
        msg = f"got {len(names)} feature_names for {real_2d.shape[1]} features"
        raise ValueError(msg)
    w = _check_weight(real_weight, real_2d.shape[0])
    rng = check_random_state(random_state)
    first, second = _halves(real_2d.shape[0], rng)
    baseline = _baseline(real_2d, w, first, second)
    # like for like: half A against half B (the baseline) and against as many
    # generated (unit-weight) events as half B is worth, Kish's effective number
    n_eff = _effective_size(None if w is None else w[second], len(second))
    n_gen = int(min(max(round(n_eff), 1), gen_2d.shape[0]))
    compared = gen_2d[rng.permutation(gen_2d.shape[0])[:n_gen]]
    distances = feature_distances(
        real_2d[first], compared, real_weight=None if w is None else w[first]
    )
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
    difference, max_abs = correlation_difference(real_2d, gen_2d, real_weight=w)
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
        "n_generated_compared": n_gen,
    }
