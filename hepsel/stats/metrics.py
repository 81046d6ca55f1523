"""Figures of merit for a selection: ROC curves, AUC, efficiencies, significance and Punzi curves.

The shape tests (KS, separation, distance correlation) are :mod:`hepsel.stats.shapes`.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._inputs import FloatArray, as_scores, as_weights, make_rng, prepare_labelled

__all__ = [
    "Roc",
    "efficiency",
    "efficiency_at_background_efficiency",
    "punzi_curve",
    "roc",
    "roc_auc",
    "roc_auc_bootstrap",
    "roc_curve",
    "significance_curve",
    "threshold_at_background_efficiency",
]

# Below this size a plain argsort is as fast as the packed-key sort and simpler.
_PACKED_SORT_MIN_SIZE = 4096


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
    y, s, w = prepare_labelled(y_true, score, sample_weight)
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
    y, s, w = prepare_labelled(y_true, score, sample_weight)
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
    y, s, w = prepare_labelled(y_true, score, sample_weight)
    ranked = _rank(y, s, w)
    tps, fps = _cumulative(ranked, ranked.weight)
    _check_totals(tps, fps)
    auc = _auc(tps, fps)

    rng = make_rng(random_state)
    n = ranked.is_signal.shape[0]
    base = np.ones(n) if ranked.weight is None else ranked.weight
    group_of = None
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != np.shape(score):
            msg = f"groups must have the shape of score {np.shape(score)}, got {g.shape}"
            raise ValueError(msg)
        if sample_weight is not None:
            g = g[np.asarray(sample_weight) != 0]  # as prepare_labelled drops zero weights
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


def _on_monotone_roc(
    y_true: ArrayLike,
    score: ArrayLike,
    sample_weight: ArrayLike | None,
    bkg_eff: float | Sequence[float] | ArrayLike | None,
    read: Callable[[Roc, FloatArray, np.ndarray], FloatArray],
) -> FloatArray | float:
    """``read(curve, targets, j)`` of the monotone ROC curve at the requested background efficiencies.

    ``j`` is, per target, the last curve point at or below it; a float is
    returned when ``bkg_eff`` is a number.
    """
    target = _requested_bkg_eff(bkg_eff)
    curve = roc(y_true, score, sample_weight, monotone=True)
    flat = target.ravel()
    result = read(curve, flat, _last_at_or_below(curve.bkg_eff, flat))
    if target.ndim == 0:
        return float(result[0])
    return result


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

    def interpolate(curve: Roc, flat: FloatArray, j: np.ndarray) -> FloatArray:
        fpr, tpr = curve.bkg_eff, curve.sig_eff
        k = np.minimum(j + 1, fpr.shape[0] - 1)
        span = fpr[k] - fpr[j]
        slope = np.divide(tpr[k] - tpr[j], span, out=np.zeros_like(span), where=span > 0)
        return np.asarray(tpr[j] + slope * (flat - fpr[j]))

    return _on_monotone_roc(y_true, score, sample_weight, bkg_eff, interpolate)


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
    return _on_monotone_roc(
        y_true, score, sample_weight, bkg_eff, lambda curve, _, j: curve.thresholds[j]
    )


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
    s = as_scores(score, "score")
    w = as_weights(sample_weight, s.shape[0], "sample_weight")
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
