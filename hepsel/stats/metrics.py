"""Figures of merit for a selection: ROC curves, AUC, efficiencies and shape tests.

Every function takes plain arrays (anything :func:`numpy.asarray` accepts)
and returns numbers or arrays; nothing here reads files or draws.

Conventions
-----------
* ``y_true`` marks signal with 1 (or ``True``) and background with 0.
* A candidate *passes* a threshold ``t`` when ``score >= t``.
* An efficiency is the weighted fraction of a class that passes:
  ``sum(w[score >= t]) / sum(w)``.

Negative weights
----------------
Weights may be negative (sWeights, NLO generators). The cumulative
efficiency of a class is then no longer monotone in the threshold: lowering
the threshold can *decrease* it. :func:`roc_curve` returns the true weighted
values by default; ``monotone=True`` gives the running-maximum envelope
instead, which is what interpolating functions such as
:func:`efficiency_at_background_efficiency` use. :func:`roc_auc` is always the
trapezoid area under the true weighted curve, which equals the weighted
Mann-Whitney statistic and stays finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_weights

__all__ = [
    "Roc",
    "distance_correlation",
    "efficiency",
    "efficiency_at_background_efficiency",
    "ks_2samp_weighted",
    "punzi_curve",
    "roc",
    "roc_auc",
    "roc_auc_bootstrap",
    "roc_curve",
    "separation",
    "significance_curve",
    "threshold_at_background_efficiency",
]

FloatArray = NDArray[np.float64]

# Below this size a plain argsort is as fast as the packed-key sort and simpler.
_PACKED_SORT_MIN_SIZE = 4096
# Row blocks of the O(n^2) distance matrices hold at most this many entries.
_DCOR_BLOCK_ENTRIES = 2_000_000


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------
def _as_1d(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        msg = f"{name} must be one-dimensional, got shape {arr.shape}"
        raise ValueError(msg)
    return arr


def _as_scores(values: ArrayLike, name: str) -> np.ndarray:
    """1-d finite float scores; float32 is kept because it sorts faster."""
    arr = _as_1d(values, name)
    if arr.dtype.kind not in "biuf":
        msg = f"{name} must hold numbers, got dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        msg = f"{name} holds NaN or infinite values; remove or replace them first"
        raise ValueError(msg)
    return arr


def _as_weights(values: ArrayLike | None, n: int, name: str) -> FloatArray | None:
    return check_weights(values, n, name=name, against="score")


def _as_labels(values: ArrayLike, n: int) -> NDArray[np.bool_]:
    arr = _as_1d(values, "y_true")
    if arr.shape[0] != n:
        msg = f"y_true has {arr.shape[0]} entries but score has {n}"
        raise ValueError(msg)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        msg = f"y_true must hold 0/1 or booleans, got dtype {arr.dtype}"
        raise TypeError(msg)
    is_signal = arr == 1
    if not (is_signal | (arr == 0)).all():
        msg = "y_true must hold only 0 (background) and 1 (signal)"
        raise ValueError(msg)
    return is_signal


def _prepare(
    y_true: ArrayLike, score: ArrayLike, sample_weight: ArrayLike | None
) -> tuple[NDArray[np.bool_], np.ndarray, FloatArray | None]:
    s = _as_scores(score, "score")
    if s.size == 0:
        msg = "score is empty; a ROC curve needs signal and background candidates"
        raise ValueError(msg)
    y = _as_labels(y_true, s.shape[0])
    w = _as_weights(sample_weight, s.shape[0], "sample_weight")
    if w is not None:
        # Zero-weight candidates carry no information and would add thresholds
        # that scikit-learn does not report; drop them as it does.
        keep = w != 0
        if not keep.all():
            y, s, w = y[keep], s[keep], w[keep]
    return y, s, w


def _rng(random_state: Any) -> np.random.Generator:
    return np.random.default_rng(random_state)


# --------------------------------------------------------------------------
# sorting kernel shared by ROC, AUC, bootstrap and working points
# --------------------------------------------------------------------------
def _descending_order(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices that sort ``score`` in decreasing order, and the sorted scores.

    Ties come out in any order. ``np.sort`` of a uint64 array is
    SIMD-accelerated and about twice as fast as ``np.argsort`` of floats, so a
    score that is exactly a float32 is mapped to an order-preserving uint32
    key, packed with its index into one uint64 and sorted; the index comes
    back from the low 32 bits and the score from the high 32 bits.
    """
    n = score.shape[0]
    key32: np.ndarray | None = None
    if _PACKED_SORT_MIN_SIZE <= n < 2**32:
        if score.dtype == np.float32:
            key32 = score.view(np.uint32)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                narrowed = score.astype(np.float32)
            if np.array_equal(narrowed, score):
                key32 = narrowed.view(np.uint32)
    if key32 is None:
        order = np.argsort(score)[::-1]
        return order, score[order]
    sign = np.uint32(0x80000000)
    # IEEE-754 bit patterns sort like the floats once negatives have all bits
    # flipped and positives have the sign bit set.
    ordered = np.where(key32 >= sign, ~key32, key32 | sign)
    key = ordered.astype(np.uint64)
    key <<= np.uint64(32)
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    high = (key >> np.uint64(32)).astype(np.uint32)
    bits = np.where(high >= sign, high & ~sign, ~high)
    key &= np.uint64(0xFFFFFFFF)
    return key.view(np.int64)[::-1], bits.view(np.float32)[::-1]


@dataclass(frozen=True)
class _Ranked:
    """Candidates sorted by decreasing score, with the tie groups marked."""

    is_signal: NDArray[np.bool_]
    weight: FloatArray | None
    ends: np.ndarray  # last index of each group of equal scores
    thresholds: FloatArray  # score of each group, decreasing
    order: np.ndarray  # the sorting permutation


def _rank(y: NDArray[np.bool_], s: np.ndarray, w: FloatArray | None) -> _Ranked:
    order, s_sorted = _descending_order(s)
    last_of_group = np.empty(s_sorted.shape[0], dtype=np.bool_)
    np.not_equal(s_sorted[1:], s_sorted[:-1], out=last_of_group[:-1])
    last_of_group[-1] = True
    ends = np.flatnonzero(last_of_group)
    return _Ranked(
        is_signal=y[order],
        weight=None if w is None else w[order],
        ends=ends,
        thresholds=s_sorted[ends].astype(np.float64),
        order=order,
    )


def _cumulative(ranked: _Ranked, weight: FloatArray | None) -> tuple[FloatArray, FloatArray]:
    """Signal and background weight passing each threshold (unnormalised)."""
    if weight is None:
        tps = np.cumsum(ranked.is_signal, dtype=np.int64)[ranked.ends].astype(np.float64)
        fps = (ranked.ends + 1).astype(np.float64) - tps
        return tps, fps
    signal_w = np.where(ranked.is_signal, weight, 0.0)
    # w - where(y, w, 0) is exactly w or 0, so the two cumsums see the same
    # terms scikit-learn sums and agree to rounding.
    background_w = np.subtract(weight, signal_w)
    np.cumsum(signal_w, out=signal_w)
    np.cumsum(background_w, out=background_w)
    return signal_w[ranked.ends], background_w[ranked.ends]


def _check_totals(tps: FloatArray, fps: FloatArray) -> None:
    if tps.size == 0 or not tps[-1] > 0:
        msg = (
            "y_true: the signal class (y_true == 1) has no candidates or a non-positive "
            "total weight; an efficiency needs both classes"
        )
        raise ValueError(msg)
    if not fps[-1] > 0:
        msg = (
            "y_true: the background class (y_true == 0) has no candidates or a non-positive "
            "total weight; an efficiency needs both classes"
        )
        raise ValueError(msg)


def _auc(tps: FloatArray, fps: FloatArray) -> float:
    """Trapezoid area under (fps, tps) from (0, 0), normalised.

    For a tie group with background weight b_g this adds
    ``b_g * (T_before + T_after) / 2``, i.e. signal strictly above plus half of
    the signal tied with it: the weighted Mann-Whitney statistic.
    """
    tps_before = np.concatenate(([0.0], tps[:-1]))
    dfps = np.diff(fps, prepend=0.0)
    area = 0.5 * float(np.dot(dfps, tps + tps_before))
    return area / (float(tps[-1]) * float(fps[-1]))


def _drop_intermediate(
    tps: FloatArray, fps: FloatArray, thresholds: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    if fps.shape[0] <= 2:
        return tps, fps, thresholds
    corner = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
    keep = np.concatenate(([True], corner, [True]))
    return tps[keep], fps[keep], thresholds[keep]


# --------------------------------------------------------------------------
# ROC and AUC
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Roc:
    """A ROC curve together with its area.

    Attributes
    ----------
    bkg_eff, sig_eff : ndarray of shape (n_points,)
        Background and signal efficiencies, starting at (0, 0).
    thresholds : ndarray of shape (n_points,)
        Decreasing score thresholds; the first is ``+inf``.
    auc : float
        Area under the true weighted curve (weighted Mann-Whitney statistic).
    """

    bkg_eff: FloatArray
    sig_eff: FloatArray
    thresholds: FloatArray
    auc: float


def roc(
    y_true: ArrayLike,
    score: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    drop_intermediate: bool = False,
    monotone: bool = False,
) -> Roc:
    """ROC curve and AUC from a single sort of the scores.

    Use this instead of :func:`roc_curve` followed by :func:`roc_auc` when both
    are needed: the sort dominates the cost and is done once.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 (or ``True``) for signal, 0 for background.
    score : array_like of shape (n,)
        Classifier output, larger meaning more signal-like. Must be finite.
    sample_weight : array_like of shape (n,), optional
        Per-candidate weights; may be negative. Zero-weight candidates are
        ignored.
    drop_intermediate : bool, default False
        Drop points collinear with their neighbours (as scikit-learn does);
        they do not change the curve drawn nor the AUC.
    monotone : bool, default False
        Replace each efficiency by its running maximum over decreasing
        thresholds. Makes no difference for non-negative weights.

    Returns
    -------
    Roc
        ``auc`` is always computed on the true weighted curve, whatever
        ``monotone`` and ``drop_intermediate`` say.

    Raises
    ------
    ValueError
        If a class is absent or its total weight is not positive, or on
        inconsistent shapes.
    """
    y, s, w = _prepare(y_true, score, sample_weight)
    ranked = _rank(y, s, w)
    tps, fps = _cumulative(ranked, ranked.weight)
    _check_totals(tps, fps)
    auc = _auc(tps, fps)
    thresholds = ranked.thresholds
    if drop_intermediate:
        tps, fps, thresholds = _drop_intermediate(tps, fps, thresholds)
    sig_eff = np.concatenate(([0.0], tps)) / tps[-1]
    bkg_eff = np.concatenate(([0.0], fps)) / fps[-1]
    if monotone:
        sig_eff = np.maximum.accumulate(sig_eff)
        bkg_eff = np.maximum.accumulate(bkg_eff)
    return Roc(
        bkg_eff=bkg_eff,
        sig_eff=sig_eff,
        thresholds=np.concatenate(([np.inf], thresholds)),
        auc=auc,
    )


def roc_curve(
    y_true: ArrayLike,
    score: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    drop_intermediate: bool = False,
    monotone: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Background and signal efficiency at every distinct score threshold.

    Follows :func:`sklearn.metrics.roc_curve`: thresholds decrease, the first
    point is (0, 0) at threshold ``+inf``, and candidates with equal scores
    enter the curve together.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 (or ``True``) for signal, 0 for background.
    score : array_like of shape (n,)
        Classifier output, larger meaning more signal-like. Must be finite.
    sample_weight : array_like of shape (n,), optional
        Per-candidate weights; may be negative (see the module notes).
    drop_intermediate : bool, default False
        Drop points collinear with their neighbours.
    monotone : bool, default False
        Return the running-maximum envelope instead of the true weighted
        efficiencies (only differs with negative weights).

    Returns
    -------
    bkg_eff, sig_eff, thresholds : ndarray of shape (n_points,)
        Weighted fraction of background and signal with ``score >= threshold``.

    Raises
    ------
    ValueError
        If a class is absent or has a non-positive total weight, or on
        inconsistent shapes.

    Examples
    --------
    >>> bkg_eff, sig_eff, thr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> bkg_eff.tolist(), sig_eff.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    result = roc(
        y_true, score, sample_weight, drop_intermediate=drop_intermediate, monotone=monotone
    )
    return result.bkg_eff, result.sig_eff, result.thresholds


def roc_auc(y_true: ArrayLike, score: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """Area under the ROC curve: the weighted Mann-Whitney statistic.

    ``sum_ij w_i w_j ([s_i > s_j] + [s_i == s_j] / 2) / (W_sig W_bkg)`` over
    signal ``i`` and background ``j``, computed from one sort and cumulative
    sums in O(n log n).

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 (or ``True``) for signal, 0 for background.
    score : array_like of shape (n,)
        Classifier output. Must be finite.
    sample_weight : array_like of shape (n,), optional
        Per-candidate weights; negative weights are allowed and the result
        stays finite (it may leave [0, 1]).

    Returns
    -------
    float
        The AUC; 0.5 for a score that does not separate the classes.

    Raises
    ------
    ValueError
        If a class is absent or has a non-positive total weight.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s, w = _prepare(y_true, score, sample_weight)
    ranked = _rank(y, s, w)
    tps, fps = _cumulative(ranked, ranked.weight)
    _check_totals(tps, fps)
    return _auc(tps, fps)


def roc_auc_bootstrap(
    y_true: ArrayLike,
    score: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    n_bootstrap: int = 200,
    random_state: Any = None,
    groups: ArrayLike | None = None,
) -> tuple[float, float, FloatArray]:
    """AUC with a bootstrap estimate of its statistical uncertainty.

    Uses the Poisson bootstrap: replica ``r`` reweights candidate ``i`` by
    ``w_i * k_ri`` with ``k_ri ~ Poisson(1)``. The scores are sorted once and
    reused by every replica. With ``groups`` (e.g. an event id per
    candidate), all candidates of a group share one Poisson factor: the
    independent units of a trigger sample are events, not candidates.

    Parameters
    ----------
    y_true, score, sample_weight : array_like of shape (n,)
        As for :func:`roc_auc`.
    n_bootstrap : int, default 200
        Number of replicas (at least 2).
    random_state : None, int or numpy.random.Generator
        Seed for reproducible replicas.
    groups : array_like of shape (n,), optional
        Group label of each candidate (any hashable numbers).

    Returns
    -------
    auc : float
        AUC of the original sample.
    std : float
        Standard deviation (ddof=1) of the replica AUCs; NaN if fewer than two
        replicas are defined.
    replicas : ndarray of shape (n_bootstrap,)
        AUC of each replica; NaN for a replica in which a class ends up with
        no weight (possible only for tiny samples).
    """
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 2:
        msg = f"n_bootstrap must be an integer >= 2, got {n_bootstrap!r}"
        raise ValueError(msg)
    y, s, w = _prepare(y_true, score, sample_weight)
    ranked = _rank(y, s, w)
    tps, fps = _cumulative(ranked, ranked.weight)
    _check_totals(tps, fps)
    auc = _auc(tps, fps)

    rng = _rng(random_state)
    n = ranked.is_signal.shape[0]
    base = np.ones(n) if ranked.weight is None else ranked.weight
    group_of = None
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != np.shape(score):
            msg = f"groups must have the shape of score {np.shape(score)}, got {g.shape}"
            raise ValueError(msg)
        if sample_weight is not None:
            g = g[np.asarray(sample_weight) != 0]  # as _prepare drops zero weights
        _, inverse = np.unique(g, return_inverse=True)
        group_of = inverse[ranked.order]
        n_groups = int(inverse.max()) + 1 if inverse.size else 0
    replicas = np.full(int(n_bootstrap), np.nan)
    for r in range(int(n_bootstrap)):
        if group_of is None:
            weight = base * rng.poisson(1.0, size=n)
        else:
            weight = base * rng.poisson(1.0, size=n_groups)[group_of]
        tps_r, fps_r = _cumulative(ranked, weight)
        if tps_r[-1] > 0 and fps_r[-1] > 0:
            replicas[r] = _auc(tps_r, fps_r)
    finite = replicas[np.isfinite(replicas)]
    std = float(np.std(finite, ddof=1)) if finite.size >= 2 else float("nan")
    return auc, std, replicas


# --------------------------------------------------------------------------
# working points
# --------------------------------------------------------------------------
def _requested_bkg_eff(bkg_eff: float | Sequence[float] | ArrayLike | None) -> FloatArray:
    if bkg_eff is None:
        msg = "bkg_eff is required: the background efficiency (or efficiencies) to evaluate at"
        raise TypeError(msg)
    target = np.asarray(bkg_eff, dtype=np.float64)
    if target.ndim > 1:
        msg = f"bkg_eff must be a number or a 1-d sequence, got shape {target.shape}"
        raise ValueError(msg)
    if not np.all((target >= 0) & (target <= 1)):
        msg = f"bkg_eff must lie in [0, 1], got {bkg_eff!r}"
        raise ValueError(msg)
    return target


def _last_at_or_below(curve: FloatArray, target: FloatArray) -> np.ndarray:
    """Index of the last point of a non-decreasing curve with value <= target."""
    return np.searchsorted(curve, target, side="right") - 1


def efficiency_at_background_efficiency(
    y_true: ArrayLike,
    score: ArrayLike,
    sample_weight: ArrayLike | None = None,
    bkg_eff: float | Sequence[float] | ArrayLike | None = None,
) -> FloatArray | float:
    """Signal efficiency at given background efficiencies.

    The ROC curve (its monotone envelope, identical to the curve for
    non-negative weights) is interpolated linearly between its points. Where
    the curve is vertical at exactly the requested background efficiency the
    highest signal efficiency is returned.

    Parameters
    ----------
    y_true, score, sample_weight : array_like of shape (n,)
        As for :func:`roc_curve`.
    bkg_eff : float or sequence of float
        Background efficiencies in [0, 1]. Required.

    Returns
    -------
    float or ndarray of shape (n_requested,)
        Signal efficiency; a float when ``bkg_eff`` is a number.

    Examples
    --------
    >>> efficiency_at_background_efficiency([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], bkg_eff=0.5)
    1.0
    """
    target = _requested_bkg_eff(bkg_eff)
    curve = roc(y_true, score, sample_weight, monotone=True)
    fpr, tpr = curve.bkg_eff, curve.sig_eff
    flat = target.ravel()
    j = _last_at_or_below(fpr, flat)
    k = np.minimum(j + 1, fpr.shape[0] - 1)
    span = fpr[k] - fpr[j]
    slope = np.divide(tpr[k] - tpr[j], span, out=np.zeros_like(span), where=span > 0)
    result = tpr[j] + slope * (flat - fpr[j])
    if target.ndim == 0:
        return float(result[0])
    return result


def threshold_at_background_efficiency(
    y_true: ArrayLike,
    score: ArrayLike,
    sample_weight: ArrayLike | None = None,
    bkg_eff: float | Sequence[float] | ArrayLike | None = None,
) -> FloatArray | float:
    """Loosest score threshold whose background efficiency does not exceed a target.

    Among the thresholds of the ROC curve, returns the lowest one whose
    background efficiency is ``<= bkg_eff`` (the one that keeps most signal
    within the background budget). No interpolation: the threshold is one of
    the candidates' scores, or ``+inf`` when even the highest-scoring
    background candidate would exceed the budget.

    Parameters
    ----------
    y_true, score, sample_weight : array_like of shape (n,)
        As for :func:`roc_curve`.
    bkg_eff : float or sequence of float
        Background efficiencies in [0, 1]. Required.

    Returns
    -------
    float or ndarray of shape (n_requested,)
        Thresholds in score units; select with ``score >= threshold``.

    Examples
    --------
    >>> threshold_at_background_efficiency([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], bkg_eff=0.5)
    0.35
    """
    target = _requested_bkg_eff(bkg_eff)
    curve = roc(y_true, score, sample_weight, monotone=True)
    j = _last_at_or_below(curve.bkg_eff, target.ravel())
    result = curve.thresholds[j]
    if target.ndim == 0:
        return float(result[0])
    return result


def efficiency(
    score: ArrayLike, threshold: float | ArrayLike, sample_weight: ArrayLike | None = None
) -> FloatArray | float:
    """Weighted fraction of candidates with ``score >= threshold``.

    Parameters
    ----------
    score : array_like of shape (n,)
        Classifier output (or any variable cut on), finite.
    threshold : float or array_like of shape (m,)
        Threshold(s), in the units of ``score``.
    sample_weight : array_like of shape (n,), optional
        Per-candidate weights; the total must be non-zero.

    Returns
    -------
    float or ndarray of shape (m,)

    Examples
    --------
    >>> efficiency([0.1, 0.5, 0.9, 0.9], 0.5)
    0.75
    """
    s = _as_scores(score, "score")
    w = _as_weights(sample_weight, s.shape[0], "sample_weight")
    total = float(s.shape[0]) if w is None else float(np.sum(w))
    if total == 0:
        msg = "score is empty or sample_weight sums to zero; the efficiency is undefined"
        raise ValueError(msg)
    thr = np.asarray(threshold, dtype=np.float64)
    if thr.ndim == 0:
        passed = s >= thr
        kept = float(np.count_nonzero(passed)) if w is None else float(np.sum(w[passed]))
        return kept / total
    if thr.ndim != 1:
        msg = f"threshold must be a number or 1-d, got shape {thr.shape}"
        raise ValueError(msg)
    order = np.argsort(s)
    cum = np.concatenate(([0.0], np.cumsum(np.ones(s.shape[0]) if w is None else w[order])))
    below = np.searchsorted(s[order], thr, side="left")
    return (cum[-1] - cum[below]) / total


# --------------------------------------------------------------------------
# shape comparisons
# --------------------------------------------------------------------------
def _weighted_ecdf(
    values: FloatArray, weight: FloatArray | None, name: str
) -> tuple[FloatArray, FloatArray, float]:
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    w = np.ones(values.shape[0]) if weight is None else weight[order]
    cum = np.concatenate(([0.0], np.cumsum(w)))
    total = cum[-1]
    if not total > 0:
        msg = f"{name} sums to a non-positive total; the ECDF is undefined"
        raise ValueError(msg)
    n_eff = float(values.shape[0]) if weight is None else total**2 / float(np.sum(w * w))
    return sorted_values, cum / total, n_eff


def ks_2samp_weighted(
    a: ArrayLike,
    b: ArrayLike,
    a_weight: ArrayLike | None = None,
    b_weight: ArrayLike | None = None,
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test with weighted empirical CDFs.

    The statistic is ``D = sup_x |F_a(x) - F_b(x)|`` with
    ``F(x) = sum(w[v <= x]) / sum(w)``. The two-sided p-value uses the
    Kolmogorov distribution of :func:`scipy.stats.ks_2samp` with
    ``method="asymp"``, ``kstwo.sf(D, round(n_a n_b / (n_a + n_b)))``, where
    ``n = (sum w)^2 / sum w^2`` is the effective sample size. Without
    weights, ``D`` is the correctly rounded ratio of integers that scipy's
    exact method reports (scipy's asymptotic method may differ from it in the
    last bit), and the p-value is scipy's asymptotic one.

    Parameters
    ----------
    a : array_like of shape (n_a,)
    b : array_like of shape (n_b,)
        The two samples, finite.
    a_weight : array_like of shape (n_a,), optional
    b_weight : array_like of shape (n_b,), optional
        Weights; each sample's total must be positive.

    Returns
    -------
    statistic, pvalue : float
    """
    from scipy.stats import kstwo

    xa = _as_scores(a, "a")
    xb = _as_scores(b, "b")
    if xa.size == 0 or xb.size == 0:
        msg = "a and b must both be non-empty"
        raise ValueError(msg)
    wa = _as_weights(a_weight, xa.shape[0], "a_weight")
    wb = _as_weights(b_weight, xb.shape[0], "b_weight")
    sa, cdf_a, n_a = _weighted_ecdf(xa.astype(np.float64, copy=False), wa, "a_weight")
    sb, cdf_b, n_b = _weighted_ecdf(xb.astype(np.float64, copy=False), wb, "b_weight")
    points = np.concatenate((sa, sb))
    below_a = np.searchsorted(sa, points, side="right")
    below_b = np.searchsorted(sb, points, side="right")
    if wa is None and wb is None:
        # D = max|c_a n_b - c_b n_a| / (n_a n_b) in integers, then one correctly
        # rounded division: the value scipy's exact method reports.
        size_a, size_b = sa.shape[0], sb.shape[0]
        gcd = math.gcd(size_a, size_b)
        gap = np.abs(below_a * (size_b // gcd) - below_b * (size_a // gcd)).max()
        statistic = int(gap) / (size_a // gcd * size_b)
    else:
        statistic = float(np.max(np.abs(cdf_a[below_a] - cdf_b[below_b])))
    m, n = sorted((n_a, n_b), reverse=True)
    en = m * n / (m + n)
    pvalue = float(np.clip(kstwo.sf(statistic, max(np.round(en), 1.0)), 0.0, 1.0))
    return statistic, pvalue


def separation(
    sig_score: ArrayLike,
    bkg_score: ArrayLike,
    sig_weight: ArrayLike | None = None,
    bkg_weight: ArrayLike | None = None,
    *,
    bins: int = 100,
    range: tuple[float, float] | None = None,
) -> float:
    """TMVA separation ``<S^2> = 1/2 sum_i (s_i - b_i)^2 / (s_i + b_i)``.

    ``s_i`` and ``b_i`` are the contents of bin ``i`` of the signal and
    background score histograms, each normalised to unit sum. 0 for identical
    distributions, 1 for distributions with no bin in common (with
    non-negative weights).

    Parameters
    ----------
    sig_score : array_like of shape (n_sig,)
    bkg_score : array_like of shape (n_bkg,)
        Scores of each class, finite.
    sig_weight, bkg_weight : array_like, optional
        Weights matching ``sig_score`` and ``bkg_score``.
    bins : int, default 100
        Number of equal-width bins.
    range : (float, float), optional
        Histogram range; default spans both samples. Entries outside are
        ignored.

    Returns
    -------
    float
    """
    s = _as_scores(sig_score, "sig_score")
    b = _as_scores(bkg_score, "bkg_score")
    ws = _as_weights(sig_weight, s.shape[0], "sig_weight")
    wb = _as_weights(bkg_weight, b.shape[0], "bkg_weight")
    if int(bins) != bins or bins < 1:
        msg = f"bins must be a positive integer, got {bins!r}"
        raise ValueError(msg)
    if s.size == 0 or b.size == 0:
        msg = "sig_score and bkg_score must both be non-empty"
        raise ValueError(msg)
    if range is None:
        lo = float(min(s.min(), b.min()))
        hi = float(max(s.max(), b.max()))
        range = (lo, hi)
    hs, edges = np.histogram(s, bins=int(bins), range=range, weights=ws)
    hb, _ = np.histogram(b, bins=edges, weights=wb)
    hs = hs.astype(np.float64)
    hb = hb.astype(np.float64)
    for name, h in (("sig_score", hs), ("bkg_score", hb)):
        if not h.sum() > 0:
            msg = f"{name} has no positive weight inside range={range}"
            raise ValueError(msg)
    hs /= hs.sum()
    hb /= hb.sum()
    den = hs + hb
    # a bin empty in both has numerator 0: any positive denominator gives its term, 0
    terms = (hs - hb) ** 2 / np.where(den > 0, den, 1.0)
    return 0.5 * float(np.sum(terms))


def _as_samples(values: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        msg = f"{name} must have shape (n,) or (n, d), got {arr.shape}"
        raise ValueError(msg)
    if not np.isfinite(arr).all():
        msg = f"{name} holds NaN or infinite values"
        raise ValueError(msg)
    return arr


def distance_correlation(
    x: ArrayLike, y: ArrayLike, *, max_events: int = 5000, random_state: Any = None
) -> float:
    """Székely's (sample) distance correlation between two variables.

    Zero (in the large-sample limit) if and only if ``x`` and ``y`` are
    independent, so it also catches non-linear dependence such as a
    classifier output sculpting a mass. Uses the V-statistic of Székely,
    Rizzo and Bakirov (2007): ``dCor^2 = dCov^2(x, y) / sqrt(dVar^2(x)
    dVar^2(y))`` with doubly centred Euclidean distance matrices.

    The cost is O(n^2) in time, so a random subsample of ``max_events``
    candidates is used when there are more; memory stays O(n) by summing
    over blocks of rows.

    Parameters
    ----------
    x : array_like of shape (n,) or (n, d_x)
    y : array_like of shape (n,) or (n, d_y)
        Paired samples (same candidates, same order), finite.
    max_events : int, default 5000
        Largest number of candidates used.
    random_state : None, int or numpy.random.Generator
        Seed for the subsample.

    Returns
    -------
    float
        In [0, 1]; 0 when either variable is constant.
    """
    from scipy.spatial.distance import cdist

    xs = _as_samples(x, "x")
    ys = _as_samples(y, "y")
    if xs.shape[0] != ys.shape[0]:
        msg = f"x has {xs.shape[0]} entries but y has {ys.shape[0]}"
        raise ValueError(msg)
    if int(max_events) != max_events or max_events < 2:
        msg = f"max_events must be an integer >= 2, got {max_events!r}"
        raise ValueError(msg)
    n = xs.shape[0]
    if n < 2:
        msg = "x and y need at least two entries"
        raise ValueError(msg)
    if n > max_events:
        pick = _rng(random_state).choice(n, size=int(max_events), replace=False)
        xs, ys, n = xs[pick], ys[pick], int(max_events)

    # dCov^2 = mean(a*b) + mean(a)mean(b) - 2 mean_i(a_i. b_i.) is the doubly
    # centred product expanded, so one pass over row blocks suffices.
    row_a = np.empty(n)
    row_b = np.empty(n)
    sum_ab = sum_aa = sum_bb = 0.0
    step = max(1, _DCOR_BLOCK_ENTRIES // n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        a = cdist(xs[start:stop], xs)
        b = cdist(ys[start:stop], ys)
        row_a[start:stop] = a.mean(axis=1)
        row_b[start:stop] = b.mean(axis=1)
        sum_ab += float(np.sum(a * b))
        sum_aa += float(np.sum(a * a))
        sum_bb += float(np.sum(b * b))
    nn = float(n) * n
    mean_a = float(row_a.mean())
    mean_b = float(row_b.mean())
    dcov2 = sum_ab / nn + mean_a * mean_b - 2.0 * float(np.mean(row_a * row_b))
    dvar2_x = sum_aa / nn + mean_a**2 - 2.0 * float(np.mean(row_a**2))
    dvar2_y = sum_bb / nn + mean_b**2 - 2.0 * float(np.mean(row_b**2))
    denom = dvar2_x * dvar2_y
    if not denom > 0:
        return 0.0
    return float(np.sqrt(np.clip(dcov2 / np.sqrt(denom), 0.0, 1.0)))


# --------------------------------------------------------------------------
# figures of merit along a curve
# --------------------------------------------------------------------------
def _paired(sig_eff: ArrayLike, bkg_eff: ArrayLike) -> tuple[FloatArray, FloatArray]:
    s = np.asarray(sig_eff, dtype=np.float64)
    b = np.asarray(bkg_eff, dtype=np.float64)
    if s.shape != b.shape:
        msg = f"sig_eff has shape {s.shape} but bkg_eff has shape {b.shape}"
        raise ValueError(msg)
    return s, b


def significance_curve(
    sig_eff: ArrayLike, bkg_eff: ArrayLike, *, n_signal: float, n_background: float
) -> FloatArray:
    """Expected significance ``S / sqrt(S + B)`` along a curve.

    Parameters
    ----------
    sig_eff, bkg_eff : array_like, same shape
        Signal and background efficiencies (e.g. from :func:`roc_curve`).
    n_signal, n_background : float
        Expected yields before the selection (events, or events per unit of
        time for rates); ``S = n_signal * sig_eff``, ``B = n_background * bkg_eff``.

    Returns
    -------
    ndarray, shape of the inputs
        0 where ``S + B = 0``.

    Examples
    --------
    >>> z = significance_curve([0.0, 0.5, 1.0], [0.0, 0.125, 1.0], n_signal=100, n_background=400)
    >>> z.tolist()
    [0.0, 5.0, 4.47213595499958]
    """
    s, b = _paired(sig_eff, bkg_eff)
    signal = n_signal * s
    total = signal + n_background * b
    root = np.sqrt(np.where(total > 0, total, 1.0))
    return np.where(total > 0, signal / root, 0.0)


def punzi_curve(
    sig_eff: ArrayLike, bkg_eff: ArrayLike, *, n_background: float, sigma: float = 5.0
) -> FloatArray:
    """Punzi figure of merit ``eps_S / (sigma / 2 + sqrt(B))`` along a curve.

    Punzi, "Sensitivity of searches for new signals and its optimization",
    PHYSTAT 2003, arXiv:physics/0308063. It needs no signal normalisation.

    Parameters
    ----------
    sig_eff, bkg_eff : array_like, same shape
        Signal and background efficiencies.
    n_background : float
        Expected background yield before the selection;
        ``B = n_background * bkg_eff``.
    sigma : float, default 5.0
        Number of standard deviations of the targeted discovery/exclusion.

    Returns
    -------
    ndarray, shape of the inputs

    Examples
    --------
    >>> punzi_curve([0.75], [0.25], n_background=100.0, sigma=5.0).tolist()
    [0.1]
    """
    s, b = _paired(sig_eff, bkg_eff)
    background = n_background * b
    if np.any(background < 0):
        msg = "bkg_eff * n_background is negative somewhere; the Punzi figure needs B >= 0"
        raise ValueError(msg)
    return s / (sigma / 2.0 + np.sqrt(background))
