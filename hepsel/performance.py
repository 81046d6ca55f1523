"""The trigger-study figures beyond the headline numbers.

Efficiency vs true kinematics per decay mode and working point, optimal cuts
(S/sqrt(S+B) and Punzi), the score-sculpting check on background, and input
feature correlations. Pure functions of arrays; the caller passes the
event-level or candidate-level arrays it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .intervals import binned_efficiency, interval_label
from .metrics import distance_correlation, punzi_curve, roc, significance_curve

__all__ = [
    "correlation_matrix",
    "efficiency_vs",
    "optimal_cuts",
    "sculpting",
]


def efficiency_vs(
    x: np.ndarray,
    event_score: np.ndarray,
    weight: np.ndarray,
    thresholds: Mapping[str, float],
    bins: Sequence[float],
    *,
    method: str = "clopper_pearson",
    modes: np.ndarray | None = None,
    mode_names: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Event-level signal efficiency in bins of ``x`` at each working point.

    Parameters
    ----------
    x
        Per-event variable (e.g. true decay time in ps), shape (n_events,).
    event_score
        Per-event score (best candidate), shape (n_events,).
    thresholds
        Working-point name -> score threshold.
    modes
        Per-event decay-mode code; adds a per-mode breakdown.

    Returns
    -------
    dict
        ``{"all": {wp: binned}, "per_mode": {mode: {wp: binned}}, "interval": label}``
        with ``binned`` as from :func:`hepsel.intervals.binned_efficiency`.
    """
    out: dict[str, Any] = {"all": {}, "per_mode": {}}
    edges = np.asarray(bins, dtype=np.float64)
    for wp, thr in thresholds.items():
        passed = event_score >= thr
        out["all"][wp] = binned_efficiency(x, passed, edges, weight, method=method)
        if modes is not None:
            for code in np.unique(modes):
                name = (mode_names or {}).get(int(code), str(int(code)))
                m = modes == code
                out["per_mode"].setdefault(name, {})[wp] = binned_efficiency(
                    x[m], passed[m], edges, weight[m], method=method
                )
    method_used = next(iter(out["all"].values()))["method"] if out["all"] else method
    out["interval"] = interval_label(method_used)
    return out


def optimal_cuts(
    y: np.ndarray,
    score: np.ndarray,
    weight: np.ndarray,
    *,
    signal_yield: float,
    background_yield: float,
    punzi_sigma: float = 5.0,
    min_background_candidates: int = 10,
) -> dict[str, Any]:
    """Cuts maximising S/sqrt(S+B) and the Punzi figure of merit.

    ``signal_yield`` and ``background_yield`` are the expected yields before
    the score cut; S and B scale them by the candidate-level efficiencies.
    Cuts that keep fewer than ``min_background_candidates`` simulated
    background candidates are not considered: there the background
    efficiency is a fluctuation of the simulated sample, not a measurement.
    """
    r = roc(y, score, weight, monotone=True)
    thr, se, be = r.thresholds[1:], r.sig_eff[1:], r.bkg_eff[1:]
    sig = significance_curve(se, be, n_signal=signal_yield, n_background=background_yield)
    punzi = punzi_curve(se, be, n_background=background_yield, sigma=punzi_sigma)
    bkg_scores = np.sort(np.asarray(score)[np.asarray(y) == 0])
    n_bkg_pass = len(bkg_scores) - np.searchsorted(bkg_scores, thr, side="left")
    allowed = n_bkg_pass >= min_background_candidates
    if not allowed.any():
        allowed[:] = True
    out: dict[str, Any] = {
        "signal_yield": signal_yield,
        "background_yield": background_yield,
        "punzi_sigma": punzi_sigma,
        "min_background_candidates": min_background_candidates,
    }
    for name, fom in (("significance", sig), ("punzi", punzi)):
        i = int(np.nanargmax(np.where(allowed, fom, -np.inf)))
        out[name] = {
            "threshold": float(thr[i]),
            "value": float(fom[i]),
            "sig_eff": float(se[i]),
            "bkg_eff": float(be[i]),
        }
    # a curve thinned evenly in signal efficiency, for plotting
    keep = np.unique(np.searchsorted(se, np.linspace(0, 1, 501)).clip(0, len(se) - 1))
    out["curve"] = {"threshold": thr[keep], "sig_eff": se[keep], "significance": sig[keep], "punzi": punzi[keep]}
    return out


def sculpting(
    mass: np.ndarray,
    score: np.ndarray,
    weight: np.ndarray,
    thresholds: Mapping[str, float],
    bins: Sequence[float] | int = 20,
    *,
    method: str = "clopper_pearson",
    random_state: int | None = None,
) -> dict[str, Any]:
    """Background efficiency vs mass at each working point, and dCor(score, mass).

    A selection that sculpts the background mass distribution (efficiency
    varying with mass) fakes peaks; the distance correlation is 0 for
    independent score and mass.
    """
    finite = np.isfinite(mass)
    m, s, w = mass[finite], score[finite], weight[finite]
    edges: Sequence[float] | np.ndarray
    if isinstance(bins, int):
        lo, hi = np.quantile(m, [0.005, 0.995])
        edges = np.linspace(lo, hi, bins + 1)
    else:
        edges = bins
    out: dict[str, Any] = {"bins": np.asarray(edges), "efficiency": {}}
    for wp, thr in thresholds.items():
        out["efficiency"][wp] = binned_efficiency(m, s >= thr, edges, w, method=method)
    out["distance_correlation"] = float(distance_correlation(s, m, max_events=4000, random_state=random_state))
    return out


def correlation_matrix(X: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted Pearson correlation matrix of the columns of ``X``, shape (n_features, n_features)."""
    cov = np.cov(X, rowvar=False, aweights=None if weight is None else np.abs(weight))
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = cov / np.outer(sd, sd)
    return np.asarray(np.nan_to_num(c), dtype=np.float64)
