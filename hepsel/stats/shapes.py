"""Shape comparisons of weighted samples: KS test, separation and distance correlation.

Every function takes plain arrays (anything :func:`numpy.asarray` accepts) and
returns numbers; weights follow the conventions of :mod:`hepsel.stats.metrics`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._inputs import FloatArray, as_scores, as_weights, make_rng

__all__ = ["distance_correlation", "ks_2samp_weighted", "separation"]

# Row blocks of the O(n^2) distance matrices hold at most this many entries.
_DCOR_BLOCK_ENTRIES = 2_000_000


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

    xa = as_scores(a, "a")
    xb = as_scores(b, "b")
    if xa.size == 0 or xb.size == 0:
        msg = "a and b must both be non-empty"
        raise ValueError(msg)
    wa = as_weights(a_weight, xa.shape[0], "a_weight")
    wb = as_weights(b_weight, xb.shape[0], "b_weight")
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
    s = as_scores(sig_score, "sig_score")
    b = as_scores(bkg_score, "bkg_score")
    ws = as_weights(sig_weight, s.shape[0], "sig_weight")
    wb = as_weights(bkg_weight, b.shape[0], "bkg_weight")
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
        pick = make_rng(random_state).choice(n, size=int(max_events), replace=False)
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
