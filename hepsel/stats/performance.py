"""The trigger-study figures beyond the headline numbers.

Efficiency vs true kinematics per decay mode and working point, total
efficiencies relative to all generated signal events, optimal cuts
(S/sqrt(S+B) and Punzi), the score-sculpting check on background, and input
feature correlations. Pure functions of arrays; the caller passes the
event-level or candidate-level arrays it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .intervals import binned_efficiency, efficiency_interval, interval_label
from .metrics import punzi_curve, roc, significance_curve
from .shapes import distance_correlation
from .trigger import event_max, group_events

__all__ = [
    "best_candidate_per_event",
    "correlation_matrix",
    "efficiency_vs",
    "generated_event_scores",
    "optimal_cuts",
    "preselection_efficiency",
    "sculpting",
    "total_efficiency",
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
        with ``binned`` as from :func:`hepsel.stats.intervals.binned_efficiency`.
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


def generated_event_scores(
    run: np.ndarray,
    event: np.ndarray,
    score: np.ndarray,
    truth: np.ndarray,
    generated_run: np.ndarray,
    generated_event: np.ndarray,
) -> np.ndarray:
    """Event score of every generated signal event, for efficiencies relative to all of them.

    Parameters
    ----------
    run, event, score, truth
        The preselected signal candidates: ids, classifier score and whether
        each is the truth-matched one, shape (n_candidates,).
    generated_run, generated_event
        Ids of every generated signal event, shape (n_generated,).

    Returns
    -------
    ndarray of float, shape (n_generated,)
        The best score of any candidate for events whose truth-matched
        candidate passed the preselection (the events of the efficiencies
        relative to preselected signal), ``-inf`` for the others, so that
        ``score >= threshold`` is the numerator of the total efficiency.
    """
    order, starts = group_events(run, event)
    reco = np.isfinite(event_max(score, order, starts, mask=np.asarray(truth, dtype=bool)))
    best = np.where(reco, event_max(score, order, starts), -np.inf)
    key_run = np.asarray(run)[order][starts]
    key_event = np.asarray(event)[order][starts]
    out = np.full(len(generated_event), -np.inf)
    gen_run, gen_event = np.asarray(generated_run), np.asarray(generated_event)
    for r in np.unique(key_run):
        # group_events sorts by (run, event): each run's events are an ordered block
        block = np.flatnonzero(key_run == r)
        sel = np.flatnonzero(gen_run == r)
        pos = np.searchsorted(key_event[block], gen_event[sel]).clip(0, len(block) - 1)
        found = key_event[block][pos] == gen_event[sel]
        out[sel[found]] = best[block][pos[found]]
    return out


def _efficiency_figures(
    passed: np.ndarray,
    weight: np.ndarray,
    *,
    method: str,
    modes: np.ndarray | None,
    mode_names: Mapping[int, str] | None,
) -> dict[str, Any]:
    def one(sel: np.ndarray) -> dict[str, Any]:
        e = efficiency_interval(passed[sel], weight[sel], method=method)
        return {
            "eff": float(e.value),
            "eff_low": float(e.low),
            "eff_high": float(e.high),
            "n_events": int(sel.sum()),
        }

    entry = one(np.ones(len(passed), dtype=bool))
    if modes is not None:
        entry["per_mode"] = {
            (mode_names or {}).get(int(code), str(int(code))): one(modes == code)
            for code in np.unique(modes)
        }
    return entry


def total_efficiency(
    event_score: np.ndarray,
    weight: np.ndarray,
    thresholds: Mapping[str, float],
    *,
    method: str = "clopper_pearson",
    modes: np.ndarray | None = None,
    mode_names: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Signal efficiency relative to all generated events at each working point.

    Parameters
    ----------
    event_score
        Per generated event, from :func:`generated_event_scores`, shape (n_generated,).
    weight
        Event weights, shape (n_generated,).
    thresholds
        Working-point name -> score threshold.
    modes
        Per-event decay-mode code; adds a per-mode breakdown.

    Returns
    -------
    dict
        ``{wp: {"eff", "eff_low", "eff_high", "n_events", "per_mode": {mode: {...}}}}``.

    Examples
    --------
    >>> score = np.array([0.9, 0.2, -np.inf, 0.7])
    >>> total_efficiency(score, np.ones(4), {"660": 0.5})["660"]["eff"]
    0.5
    """
    score = np.asarray(event_score, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    return {
        wp: _efficiency_figures(score >= thr, w, method=method, modes=modes, mode_names=mode_names)
        for wp, thr in thresholds.items()
    }


def preselection_efficiency(
    event_score: np.ndarray,
    weight: np.ndarray,
    *,
    method: str = "clopper_pearson",
    modes: np.ndarray | None = None,
    mode_names: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """Fraction of generated events whose truth-matched candidate passed the preselection.

    Same arguments and entry as :func:`total_efficiency`; an event counts when
    its score is finite.
    """
    score = np.asarray(event_score, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    return _efficiency_figures(
        np.isfinite(score), w, method=method, modes=modes, mode_names=mode_names
    )


def best_candidate_per_event(
    sample: np.ndarray, run: np.ndarray, event: np.ndarray, score: np.ndarray
) -> np.ndarray:
    """Index of the highest-scoring candidate of each event, events being (sample, run, event).

    Counting each event once, by its best candidate, turns candidate-level
    yields into event-level ones: an event passes a cut ``score >= t`` when
    any of its candidates does, and its weight (the candidates of an event
    share it) counts once. NaN scores rank last.

    Returns
    -------
    ndarray of int, shape (n_events,)
        Sorted indices into the input arrays.

    Examples
    --------
    >>> best_candidate_per_event(np.zeros(4), np.zeros(4), np.array([7, 7, 8, 7]), np.array([0.1, 0.9, 0.5, 0.3]))
    array([1, 2])
    """
    s = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=-np.inf)
    if len(s) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((-s, np.asarray(event), np.asarray(run), np.asarray(sample)))
    keys = np.column_stack([np.asarray(a)[order] for a in (sample, run, event)])
    first = np.ones(len(s), dtype=bool)
    first[1:] = np.any(keys[1:] != keys[:-1], axis=1)
    return np.sort(order[first])


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
            # the expected yields passing the cut, the S and B of the figure of merit
            "signal_yield": float(se[i] * signal_yield),
            "background_yield": float(be[i] * background_yield),
        }
    # a curve thinned evenly in signal efficiency, for plotting
    keep = np.unique(np.searchsorted(se, np.linspace(0, 1, 501)).clip(0, len(se) - 1))
    out["curve"] = {
        "threshold": thr[keep],
        "sig_eff": se[keep],
        "significance": sig[keep],
        "punzi": punzi[keep],
        "allowed": allowed[keep],
    }
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
    out["distance_correlation"] = float(
        distance_correlation(s, m, max_events=4000, random_state=random_state)
    )
    return out


def correlation_matrix(X: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted Pearson correlation matrix of the columns of ``X``, shape (n_features, n_features)."""
    cov = np.cov(X, rowvar=False, aweights=None if weight is None else np.abs(weight))
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = cov / np.outer(sd, sd)
    return np.asarray(np.nan_to_num(c), dtype=np.float64)
