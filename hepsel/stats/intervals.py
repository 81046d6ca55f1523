"""Binomial confidence intervals for selection efficiencies.

Textbook intervals for ``k`` passing out of ``n`` trials, vectorised over
arrays of counts, plus helpers that build them from per-candidate pass flags
and weights, globally (:func:`efficiency_interval`) or in bins of a variable
(:func:`binned_efficiency`).

Weighted samples
----------------
With non-negative weights, the exact (Clopper-Pearson) and Wilson intervals
are evaluated at the effective counts ``n_eff = (sum w)^2 / sum w^2`` and
``k_eff = eff * n_eff`` (as ROOT's ``TEfficiency`` does), which equal the raw
counts for unit weights. With any negative weight those intervals are
ill-defined, so both helpers fall back to the normal approximation with the
weighted variance

    var(eff) = ((1 - 2 eff) sum_pass w^2 + eff^2 sum_all w^2) / (sum_all w)^2

and record ``method="normal"`` in their result. The bootstrap is used as
asked whatever the sign of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_weights
from ._inputs import as_flags

__all__ = [
    "DEFAULT_CL",
    "INTERVAL_LABELS",
    "METHODS",
    "Efficiency",
    "binned_efficiency",
    "clopper_pearson",
    "effective_counts",
    "efficiency_interval",
    "interval_label",
    "normal",
    "wilson",
]

FloatArray = NDArray[np.float64]

#: Probability content of +-1 standard deviation of a Gaussian.
DEFAULT_CL = 0.6826894921370859

#: Interval methods understood by :func:`efficiency_interval` and :func:`binned_efficiency`.
METHODS = ("clopper_pearson", "wilson", "normal", "bootstrap")

_METHOD_NAMES = {
    "clopper_pearson": "Clopper-Pearson",
    "wilson": "Wilson",
    "normal": "Normal approx.",
    "bootstrap": "Bootstrap",
}


def _check_method(method: str) -> None:
    if method not in METHODS:
        msg = f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}"
        raise ValueError(msg)


def interval_label(method: str, cl: float = DEFAULT_CL) -> str:
    """Text naming an interval on a plot, e.g. ``"Wilson 68.3% CL"``.

    Examples
    --------
    >>> interval_label("clopper_pearson", 0.9)
    'Clopper-Pearson 90.0% CL'
    """
    _check_method(method)
    return f"{_METHOD_NAMES[method]} {100.0 * cl:.1f}% CL"


#: Plot label of each method at the default (1 sigma) confidence level.
INTERVAL_LABELS: dict[str, str] = {m: interval_label(m) for m in METHODS}


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------
def _check_cl(cl: float) -> float:
    cl = float(cl)
    if not 0.0 < cl < 1.0:
        msg = f"cl must lie strictly between 0 and 1, got {cl!r}"
        raise ValueError(msg)
    return cl


def _counts(k: ArrayLike, n: ArrayLike) -> tuple[FloatArray, FloatArray]:
    kk, nn = np.broadcast_arrays(np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64))
    if not (np.isfinite(kk).all() and np.isfinite(nn).all()):
        msg = "k and n must be finite"
        raise ValueError(msg)
    if np.any(nn < 0):
        msg = "n must be non-negative"
        raise ValueError(msg)
    if np.any(kk < 0) or np.any(kk > nn):
        msg = "k must satisfy 0 <= k <= n"
        raise ValueError(msg)
    return kk, nn


def _z(cl: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(0.5 + 0.5 * cl))


def _proportion(
    k: ArrayLike, n: ArrayLike, cl: float
) -> tuple[FloatArray, FloatArray, float, NDArray[np.bool_], FloatArray, FloatArray]:
    """The counts, the Gaussian quantile of ``cl``, where ``n = 0``, ``n`` (1 there) and ``k / n``."""
    cl = _check_cl(cl)
    kk, nn = _counts(k, n)
    empty = nn == 0
    safe_n = np.where(empty, 1.0, nn)
    return kk, nn, _z(cl), empty, safe_n, kk / safe_n


def _finish(lo: FloatArray, hi: FloatArray, empty: NDArray[np.bool_]) -> tuple[Any, Any]:
    lo = np.where(empty, np.nan, lo)
    hi = np.where(empty, np.nan, hi)
    return lo[()], hi[()]


# --------------------------------------------------------------------------
# intervals from counts
# --------------------------------------------------------------------------
def clopper_pearson(k: ArrayLike, n: ArrayLike, cl: float = DEFAULT_CL) -> tuple[Any, Any]:
    """Exact (Clopper-Pearson) central interval for a binomial proportion.

    ``lo = Beta.ppf(alpha/2; k, n-k+1)``, ``hi = Beta.ppf(1-alpha/2; k+1, n-k)``
    with ``alpha = 1 - cl``; ``lo = 0`` for ``k = 0`` and ``hi = 1`` for
    ``k = n``. Non-integer (effective) counts are accepted.

    Parameters
    ----------
    k, n : array_like
        Passing and total counts, broadcast together; ``0 <= k <= n``.
    cl : float, default 0.6827
        Confidence level.

    Returns
    -------
    lo, hi : ndarray (float for scalar input)
        NaN where ``n = 0``.

    Examples
    --------
    >>> lo, hi = clopper_pearson(0, 10, cl=0.95)
    >>> float(lo), round(float(hi), 4)
    (0.0, 0.3085)
    """
    # the Beta quantile (what scipy.stats.beta.ppf evaluates), without importing scipy.stats
    from scipy.special import betaincinv

    cl = _check_cl(cl)
    kk, nn = _counts(k, n)
    alpha = 1.0 - cl
    has_pass = kk > 0
    has_fail = kk < nn
    # The Beta parameters are replaced where the closed-form limit applies, so
    # that scipy never sees a zero shape parameter.
    lo = np.where(
        has_pass, betaincinv(np.where(has_pass, kk, 1.0), nn - kk + 1.0, 0.5 * alpha), 0.0
    )
    hi = np.where(
        has_fail, betaincinv(kk + 1.0, np.where(has_fail, nn - kk, 1.0), 1.0 - 0.5 * alpha), 1.0
    )
    return _finish(lo, hi, nn == 0)


def wilson(k: ArrayLike, n: ArrayLike, cl: float = DEFAULT_CL) -> tuple[Any, Any]:
    """Wilson score interval (without continuity correction).

    ``(2np + z^2 -+ z sqrt(4np(1-p) + z^2)) / (2(n + z^2))`` with ``p = k/n``
    and ``z`` the two-sided Gaussian quantile of ``cl``; ``lo = 0`` for
    ``k = 0`` and ``hi = 1`` for ``k = n``. Parameters and return values as
    for :func:`clopper_pearson`.
    """
    kk, nn, z, empty, safe_n, p = _proportion(k, n, cl)
    q = 1.0 - p
    denom = 2.0 * (safe_n + z**2)
    center = (2.0 * safe_n * p + z**2) / denom
    delta = z / denom * np.sqrt(4.0 * safe_n * p * q + z**2)
    lo = np.where(kk == 0, 0.0, center - delta)
    hi = np.where(kk == nn, 1.0, center + delta)
    return _finish(lo, hi, empty)


def normal(k: ArrayLike, n: ArrayLike, cl: float = DEFAULT_CL) -> tuple[Any, Any]:
    """Normal-approximation (Wald) interval ``p -+ z sqrt(p(1-p)/n)``, clipped to [0, 1].

    Parameters and return values as for :func:`clopper_pearson`; the interval
    has zero width at ``k = 0`` and ``k = n``.
    """
    _, _, z, empty, safe_n, p = _proportion(k, n, cl)
    half = z * np.sqrt(p * (1.0 - p) / safe_n)
    return _finish(np.clip(p - half, 0.0, 1.0), np.clip(p + half, 0.0, 1.0), empty)


def effective_counts(
    pass_weights_sum: ArrayLike,
    total_weights_sum: ArrayLike,
    pass_weights_sq_sum: ArrayLike,
    total_weights_sq_sum: ArrayLike,
) -> tuple[Any, Any]:
    """Effective binomial counts of a weighted sample.

    ``n_eff = (sum w)^2 / sum w^2`` and ``k_eff = eff * n_eff`` with
    ``eff = sum_pass w / sum w``; for unit weights they are the raw counts.

    Parameters
    ----------
    pass_weights_sum, total_weights_sum : array_like
        Sum of weights of the passing and of all candidates.
    pass_weights_sq_sum, total_weights_sq_sum : array_like
        Sum of squared weights of the passing and of all candidates. The
        passing one does not enter this definition; it is checked to be
        consistent (``0 <= pass <= total``) so that swapped arguments are caught.

    Returns
    -------
    k_eff, n_eff : ndarray (float for scalar input)
        Both 0 where ``sum w^2 = 0`` (no candidates).
    """
    sums = (pass_weights_sum, total_weights_sum, pass_weights_sq_sum, total_weights_sq_sum)
    wp, w, wp2, w2 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in sums))
    if np.any(wp2 < 0) or np.any(wp2 > w2 * (1.0 + 1e-12)):
        msg = "pass_weights_sq_sum must satisfy 0 <= pass_weights_sq_sum <= total_weights_sq_sum"
        raise ValueError(msg)
    filled = w2 > 0
    safe_w2 = np.where(filled, w2, 1.0)
    # wp * w / w2 rather than (wp / w) * n_eff keeps unit-weight counts exact.
    k_eff = np.where(filled, wp * w / safe_w2, 0.0)
    n_eff = np.where(filled, w * w / safe_w2, 0.0)
    return k_eff[()], n_eff[()]


# --------------------------------------------------------------------------
# intervals from candidates
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Efficiency:
    """An efficiency with its confidence interval.

    Attributes
    ----------
    value : float
        (Weighted) fraction of candidates that pass.
    low, high : float
        Interval limits.
    method : str
        Interval method actually used (after any negative-weight fallback).
    n_eff : float
        Effective number of candidates, ``(sum w)^2 / sum w^2``.
    cl : float
        Confidence level.
    """

    value: float
    low: float
    high: float
    method: str
    n_eff: float
    cl: float = DEFAULT_CL

    @property
    def errors(self) -> tuple[float, float]:
        """Distances ``(value - low, high - value)``, as ``errorbar(yerr=...)`` wants."""
        return self.value - self.low, self.high - self.value

    @property
    def label(self) -> str:
        """Plot label of the interval, e.g. ``"Clopper-Pearson 68.3% CL"``."""
        return interval_label(self.method, self.cl)


def _as_passed(passed: ArrayLike) -> NDArray[np.bool_]:
    arr = np.asarray(passed)
    if arr.ndim != 1:
        msg = f"passed must be one-dimensional, got shape {arr.shape}"
        raise ValueError(msg)
    return as_flags(arr, "passed", kinds="booleans (or 0/1)", only="booleans or 0/1")


def _as_weights(sample_weight: ArrayLike | None, n: int) -> FloatArray | None:
    return check_weights(sample_weight, n, against="passed")


def _resolve_method(method: str, weight: FloatArray | None) -> str:
    _check_method(method)
    if weight is not None and method in ("clopper_pearson", "wilson") and np.any(weight < 0):
        return "normal"
    return method


@dataclass(frozen=True)
class _Sums:
    """Per-group sums of a (possibly weighted) sample; arrays of shape (m,)."""

    count: FloatArray
    w: FloatArray
    w_pass: FloatArray
    w2: FloatArray
    w2_pass: FloatArray


def _sums(
    group: np.ndarray, n_groups: int, passed: NDArray[np.bool_], weight: FloatArray | None
) -> _Sums:
    count = np.bincount(group, minlength=n_groups).astype(np.float64)
    if weight is None:
        n_pass = np.bincount(group[passed], minlength=n_groups).astype(np.float64)
        return _Sums(count, count, n_pass, count, n_pass)
    w2 = weight * weight
    return _Sums(
        count=count,
        w=cast("FloatArray", np.bincount(group, weights=weight, minlength=n_groups)),
        w_pass=cast(
            "FloatArray", np.bincount(group[passed], weights=weight[passed], minlength=n_groups)
        ),
        w2=cast("FloatArray", np.bincount(group, weights=w2, minlength=n_groups)),
        w2_pass=cast(
            "FloatArray", np.bincount(group[passed], weights=w2[passed], minlength=n_groups)
        ),
    )


def _percentile_interval(replicas: FloatArray, cl: float) -> tuple[FloatArray, FloatArray]:
    """Central ``cl`` percentile interval of each column, ignoring NaN replicas."""
    q = [50.0 * (1.0 - cl), 50.0 * (1.0 + cl)]
    lo = np.full(replicas.shape[1], np.nan)
    hi = np.full(replicas.shape[1], np.nan)
    for j in range(replicas.shape[1]):
        column = replicas[:, j]
        column = column[np.isfinite(column)]
        if column.size:
            lo[j], hi[j] = np.percentile(column, q)
    return lo, hi


def _bootstrap(
    group: np.ndarray,
    n_groups: int,
    passed: NDArray[np.bool_],
    weight: FloatArray | None,
    *,
    cl: float,
    n_bootstrap: int,
    random_state: Any,
) -> tuple[FloatArray, FloatArray]:
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 2:
        msg = f"n_bootstrap must be an integer >= 2, got {n_bootstrap!r}"
        raise ValueError(msg)
    rng = np.random.default_rng(random_state)
    base = np.ones(group.shape[0]) if weight is None else weight
    replicas = np.full((int(n_bootstrap), n_groups), np.nan)
    for r in range(int(n_bootstrap)):
        # Poisson(1) multiplicities: the bootstrap without a resampling step.
        w = base * rng.poisson(1.0, size=group.shape[0])
        total = np.bincount(group, weights=w, minlength=n_groups)
        kept = np.bincount(group[passed], weights=w[passed], minlength=n_groups)
        np.divide(kept, total, out=replicas[r], where=total > 0)
    return _percentile_interval(replicas, cl)


def _intervals(
    sums: _Sums,
    method: str,
    weighted: bool,
    cl: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Value, low, high and n_eff per group for the count-based methods.

    Groups with no candidates or a non-positive total weight give NaN.
    """
    valid = (sums.count > 0) & (sums.w > 0)
    safe_w = np.where(valid, sums.w, 1.0)
    value = np.where(valid, sums.w_pass / safe_w, np.nan)
    k_eff, n_eff = effective_counts(
        np.where(valid, sums.w_pass, 0.0),
        np.where(valid, sums.w, 0.0),
        np.where(valid, sums.w2_pass, 0.0),
        np.where(valid, sums.w2, 0.0),
    )
    k_eff = np.atleast_1d(k_eff)
    n_eff = np.atleast_1d(n_eff)
    if method in ("clopper_pearson", "wilson"):
        func = clopper_pearson if method == "clopper_pearson" else wilson
        # Rounding can push k_eff a hair above n_eff when every candidate passes.
        lo, hi = func(np.minimum(k_eff, n_eff), n_eff, cl)
    elif not weighted:
        lo, hi = normal(sums.w_pass, sums.count, cl)
    else:
        eff = np.where(valid, value, 0.0)
        var = ((1.0 - 2.0 * eff) * sums.w2_pass + eff**2 * sums.w2) / safe_w**2
        half = _z(cl) * np.sqrt(np.maximum(var, 0.0))
        lo, hi = eff - half, eff + half
    lo = np.where(valid, np.atleast_1d(lo), np.nan)
    hi = np.where(valid, np.atleast_1d(hi), np.nan)
    return value, lo, hi, np.where(valid, n_eff, np.nan)


def _clip_if_non_negative(
    lo: FloatArray, hi: FloatArray, weight: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    # With negative weights the efficiency itself may leave [0, 1]; clipping
    # could then put the interval on one side of its central value.
    if weight is not None and np.any(weight < 0):
        return lo, hi
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def efficiency_interval(
    passed: ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    method: str = "clopper_pearson",
    cl: float = DEFAULT_CL,
    n_bootstrap: int = 200,
    random_state: Any = None,
) -> Efficiency:
    """Efficiency of a selection with a confidence interval.

    Parameters
    ----------
    passed : array_like of bool, shape (n,)
        Whether each candidate passes the selection.
    sample_weight : array_like of shape (n,), optional
        Per-candidate weights. With any negative weight, ``clopper_pearson``
        and ``wilson`` fall back to ``normal`` (see the module notes).
    method : {"clopper_pearson", "wilson", "normal", "bootstrap"}
        Interval construction. ``normal`` with weights uses the weighted
        variance; ``bootstrap`` takes the central ``cl`` percentile interval
        of Poisson-bootstrap replicas.
    cl : float, default 0.6827
        Confidence level.
    n_bootstrap : int, default 200
        Replicas for ``method="bootstrap"``.
    random_state : None, int or numpy.random.Generator
        Seed for ``method="bootstrap"``.

    Returns
    -------
    Efficiency

    Raises
    ------
    ValueError
        If ``passed`` is empty, the total weight is not positive, or an
        argument has a wrong value.

    Examples
    --------
    >>> eff = efficiency_interval([True, True, False, True], method="wilson")
    >>> eff.value, eff.method, eff.n_eff
    (0.75, 'wilson', 4.0)
    """
    cl = _check_cl(cl)
    flags = _as_passed(passed)
    if flags.size == 0:
        msg = "passed is empty; the efficiency of no candidates is undefined"
        raise ValueError(msg)
    weight = _as_weights(sample_weight, flags.shape[0])
    if weight is not None and not np.sum(weight) > 0:
        msg = "sample_weight sums to a non-positive total; the efficiency is undefined"
        raise ValueError(msg)
    used = _resolve_method(method, weight)
    group = np.zeros(flags.shape[0], dtype=np.intp)
    sums = _sums(group, 1, flags, weight)
    count_method = "normal" if used == "bootstrap" else used
    value, lo, hi, n_eff = _intervals(sums, count_method, weight is not None, cl)
    if used == "bootstrap":
        lo, hi = _bootstrap(
            group, 1, flags, weight, cl=cl, n_bootstrap=n_bootstrap, random_state=random_state
        )
    lo, hi = _clip_if_non_negative(lo, hi, weight)
    return Efficiency(
        value=float(value[0]),
        low=float(lo[0]),
        high=float(hi[0]),
        method=used,
        n_eff=float(n_eff[0]),
        cl=cl,
    )


def binned_efficiency(
    x: ArrayLike,
    passed: ArrayLike,
    bins: int | ArrayLike,
    sample_weight: ArrayLike | None = None,
    *,
    method: str = "clopper_pearson",
    cl: float = DEFAULT_CL,
    n_bootstrap: int = 200,
    random_state: Any = None,
) -> dict[str, Any]:
    """Efficiency with confidence intervals in bins of a variable.

    Each bin is treated as :func:`efficiency_interval` treats a whole
    sample, except that the negative-weight fallback is decided once for the
    whole sample so that one method names every point of a plot.

    Parameters
    ----------
    x : array_like of shape (n,)
        Variable to bin in (e.g. a transverse momentum in MeV). Candidates
        outside the edges, or with NaN ``x``, are ignored; the last bin
        includes its upper edge, as in :func:`numpy.histogram`.
    passed : array_like of bool, shape (n,)
        Whether each candidate passes.
    bins : int or array_like of shape (n_bins + 1,)
        Number of equal-width bins spanning the finite ``x``, or increasing
        bin edges (units of ``x``).
    sample_weight : array_like of shape (n,), optional
        Per-candidate weights.
    method, cl, n_bootstrap, random_state
        As for :func:`efficiency_interval`.

    Returns
    -------
    dict
        ``edges`` (n_bins + 1,), ``centres``, ``value``, ``low``, ``high``,
        ``n_eff`` (n_bins,) - NaN where a bin has no candidates or a
        non-positive total weight - and ``method`` (str, after fallback) and
        ``cl`` (float).
    """
    cl = _check_cl(cl)
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 1:
        msg = f"x must be one-dimensional, got shape {xs.shape}"
        raise ValueError(msg)
    flags = _as_passed(passed)
    if flags.shape != xs.shape:
        msg = f"passed has shape {flags.shape} but x has shape {xs.shape}"
        raise ValueError(msg)
    weight = _as_weights(sample_weight, xs.shape[0])
    used = _resolve_method(method, weight)
    edges = _edges(xs, bins)
    n_bins = edges.shape[0] - 1

    group = np.searchsorted(edges, xs, side="right") - 1
    group[xs == edges[-1]] = n_bins - 1
    inside = (group >= 0) & (group < n_bins)
    group, flags = group[inside], flags[inside]
    weight = None if weight is None else weight[inside]

    sums = _sums(group, n_bins, flags, weight)
    count_method = "normal" if used == "bootstrap" else used
    value, lo, hi, n_eff = _intervals(sums, count_method, weight is not None, cl)
    if used == "bootstrap":
        lo, hi = _bootstrap(
            group, n_bins, flags, weight, cl=cl, n_bootstrap=n_bootstrap, random_state=random_state
        )
        empty = np.isnan(value)
        lo[empty] = np.nan
        hi[empty] = np.nan
    lo, hi = _clip_if_non_negative(lo, hi, weight)
    return {
        "edges": edges,
        "centres": 0.5 * (edges[1:] + edges[:-1]),
        "value": value,
        "low": lo,
        "high": hi,
        "n_eff": n_eff,
        "method": used,
        "cl": cl,
    }


def _edges(xs: FloatArray, bins: int | ArrayLike) -> FloatArray:
    if np.ndim(bins) == 0:
        requested = np.asarray(bins)
        n_bins = int(requested)
        if n_bins != requested or n_bins < 1:
            msg = f"bins must be a positive integer or a sequence of edges, got {bins!r}"
            raise ValueError(msg)
        finite = xs[np.isfinite(xs)]
        if finite.size == 0:
            msg = "x has no finite values to derive bin edges from; pass explicit edges"
            raise ValueError(msg)
        return np.histogram_bin_edges(finite, bins=n_bins)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.shape[0] < 2 or not np.all(np.diff(edges) > 0):
        msg = "bins given as edges must be a 1-d, strictly increasing sequence of at least 2 values"
        raise ValueError(msg)
    if not np.isfinite(edges).all():
        msg = "bins edges must be finite"
        raise ValueError(msg)
    return edges
