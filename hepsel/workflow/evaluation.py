"""The per-model figures of a trigger study, from the cross-scores.

The scores come from :mod:`hepsel.workflow.cross_scoring` (every candidate
scored by the fold model that did not train on it). :func:`model_summary` turns
them into the figures of
``summary.json``; :func:`curves` into the data behind the plots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..prep.dataset import Dataset
from ..report.diagnostics import overtraining_pvalue
from ..stats.intervals import efficiency_interval
from ..stats.metrics import efficiency_at_background_efficiency, roc, roc_auc, roc_auc_bootstrap
from ..stats.shapes import ks_2samp_weighted, separation
from ..stats.trigger import (
    EventScores,
    event_ids,
    event_max,
    group_events,
    output_rate,
    rate_curve,
    threshold_for_rate,
)
from ..stats.uncertainty import BOOTSTRAP_MAX_EVENTS, bootstrap_subsample
from .cross_scoring import CrossScores, one_per_event, overtraining_sets, rate_key

__all__ = [
    "EventViews",
    "background_composition",
    "event_views",
    "expected_yields",
    "measured_rate",
    "model_summary",
    "offline_figures",
    "performance",
    "proba_at",
    "rate_curves",
    "split_minbias",
]


@dataclass
class EventViews:
    """Event-level views of one model's scores.

    ``minbias``: best score per minimum-bias event (rate denominator: all
    processed events); ``signal_any`` / ``signal_tos``: best score of any
    candidate / of the truth-matched candidate, for signal events with a
    truth-matched candidate after the preselection; ``columns``: per such
    signal event, values of its truth-matched candidate.
    """

    minbias: EventScores
    signal_any: EventScores
    signal_tos: EventScores
    columns: dict[str, np.ndarray]
    counts: dict[str, int]


def event_views(
    cfg: AnalysisConfig, ds: Dataset, score: np.ndarray, columns: list[str] | None = None
) -> EventViews:
    """Group candidates into events once and build every event-level view of ``score``."""
    c = ds.columns
    mb = ds.sample_mask(cfg.minbias_sample)
    mb_info = ds.samples[cfg.minbias_sample]
    norm = float(mb_info["normalisation"])
    mb_total = float(mb_info["sum_gen_weights"]) * norm
    mb_total2 = float(mb_info.get("sum_gen_weights2", mb_info["sum_gen_weights"])) * norm**2
    mb_events = EventScores.from_candidates(
        c["runNumber"][mb],
        c["eventNumber"][mb],
        score[mb],
        ds.weight[mb],
        total_weight=mb_total,
        total_weight2=mb_total2,
    )
    sig = ds.sample_mask(cfg.signal_sample)
    run, evt, w, t = c["runNumber"][sig], c["eventNumber"][sig], ds.weight[sig], ds.truth[sig]
    order, starts = group_events(run, evt)
    w_ev = w[order][starts] if len(starts) else np.zeros(0)
    tos_score = event_max(score[sig], order, starts, mask=t)
    reco = np.isfinite(tos_score)
    any_score = event_max(score[sig], order, starts)
    any_sel = EventScores(any_score[reco], w_ev[reco], float(w_ev[reco].sum()))
    tos_sel = EventScores(tos_score[reco], w_ev[reco], float(w_ev[reco].sum()))
    cols = {}
    for col in columns or []:
        # one truth-matched candidate per event: its value is the masked maximum
        cols[col] = event_max(c[col][sig].astype(np.float64), order, starts, mask=t)[reco]
    counts = {"n_signal_events": int(reco.sum()), "n_minbias_events": int(mb_info["n_events"])}
    return EventViews(mb_events, any_sel, tos_sel, cols, counts)


def _ks(cfg: AnalysisConfig, ds: Dataset, cs: CrossScores) -> dict[str, Any]:
    """Train-vs-test KS test per fold model and class (weighted), one candidate per event."""
    y, w = ds.y, ds.weight
    per_fold: dict[str, list[float]] = {"signal": [], "background": []}
    stats: dict[str, list[float]] = {"signal": [], "background": []}
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 7]))
    for k in range(cfg.folds.k):
        tr, te = overtraining_sets(cfg, ds, cs, k)
        for name, cls in (("signal", 1), ("background", 0)):
            a = one_per_event(ds, tr & (y == cls), rng)
            b = one_per_event(ds, te & (y == cls), rng)
            if len(a) and len(b):
                stat, p = ks_2samp_weighted(cs.train[a], cs.test[b], w[a], w[b])
                per_fold[name].append(float(p))
                stats[name].append(float(stat))
    family = overtraining_pvalue(per_fold)
    return {
        # fold 0's model: one train/test split, as TMVA shows it
        "ks_pvalue": {k: v[0] for k, v in per_fold.items() if v},
        "ks_statistic": {k: v[0] for k, v in stats.items() if v},
        "ks_pvalue_folds": per_fold,
        # all of them at once, corrected for their number: what the overtraining warning tests
        "ks_pvalue_corrected": None if family is None else family["pvalue"],
        "ks_pvalue_correction": None
        if family is None
        else {"method": family["method"], "n_tests": family["n_tests"]},
    }


def model_summary(
    cfg: AnalysisConfig, ds: Dataset, cs: CrossScores, *, random_state: int | None = None
) -> dict[str, Any]:
    """All figures of one model for ``summary.json``."""
    m = ds.truth
    y, w, s = ds.y[m], ds.weight[m], cs.test[m]
    out: dict[str, Any] = {}
    r = roc(y, s, w)
    out["auc"] = float(r.auc)
    out["auc_std"] = float("nan")  # null in summary.json: no bootstrap
    if cfg.evaluation.bootstrap >= 2:
        # resample events, not candidates: the candidates of an event are correlated
        c = ds.columns
        events = event_ids(c["sample"][m], c["runNumber"][m], c["eventNumber"][m])[0]
        n_events = int(events.max()) + 1 if len(events) else 0
        # above BOOTSTRAP_MAX_EVENTS events: bootstrap a seeded subsample, its spread scaled to all events
        keep, scale = bootstrap_subsample(
            n_events, BOOTSTRAP_MAX_EVENTS, _subsample_seed(cfg, random_state, 0)
        )
        sub = slice(None) if keep is None else _rows_of_units(events, keep, n_events)
        _, std, _ = roc_auc_bootstrap(
            y[sub],
            s[sub],
            w[sub],
            n_bootstrap=cfg.evaluation.bootstrap,
            random_state=random_state,
            groups=events[sub],
        )
        out["auc_std"] = float(std) * scale
        out["auc_std_events"] = n_events if keep is None else len(keep)
    effs = efficiency_at_background_efficiency(y, s, w, bkg_eff=cfg.evaluation.bkg_effs)
    out["eff_at_bkg_eff"] = {
        f"{b:g}": float(e)
        for b, e in zip(cfg.evaluation.bkg_effs, np.atleast_1d(effs), strict=True)
    }
    seen = np.isfinite(cs.train)
    yt, wt, st = ds.y[seen], ds.weight[seen], cs.train[seen]
    effs_tr = efficiency_at_background_efficiency(yt, st, wt, bkg_eff=cfg.evaluation.bkg_effs)
    out["eff_at_bkg_eff_train"] = {
        f"{b:g}": float(e)
        for b, e in zip(cfg.evaluation.bkg_effs, np.atleast_1d(effs_tr), strict=True)
    }
    out["auc_train"] = float(roc_auc(yt, st, wt))
    out.update(_ks(cfg, ds, cs))
    out["separation"] = float(separation(s[y == 1], s[y == 0], w[y == 1], w[y == 0]))
    fold_aucs = []
    for k in range(cfg.folds.k):
        f = ds.fold[m] == k
        if len(np.unique(y[f])) == 2:
            fold_aucs.append(float(roc_auc(y[f], s[f], w[f])))
    out["auc_folds"] = fold_aucs
    out["auc_fold_std"] = float(np.std(fold_aucs, ddof=1)) if len(fold_aucs) > 1 else float("nan")
    raw = cs.ranking
    if cfg.trigger is None:
        out["offline"] = offline_figures(cfg, ds, raw)
        _add_probability_thresholds(out["offline"]["working_points"], raw, cs.test, ("threshold",))
        return out
    views = event_views(cfg, ds, raw, _event_columns(cfg, ds))
    out["eff_at_rate"] = _rates(cfg, views)
    _add_probability_thresholds(out["eff_at_rate"], raw, cs.test, ("threshold", "threshold_split"))
    out["trigger_events"] = views.counts
    return out


def proba_at(raw: np.ndarray, proba: np.ndarray, thresholds: float | np.ndarray) -> np.ndarray:
    """The cut on the probability that corresponds to each cut on the raw output.

    For each raw threshold ``t``: the lowest probability of the candidates with
    ``raw >= t`` (``inf`` where none passes, NaN for a NaN threshold), so every
    candidate passing ``raw >= t`` also passes ``proba >= proba_at(t)``. Where
    the probability is a fixed increasing function of the raw output (all
    kinds but the autoencoder, whose map depends on the fold model), the two
    cuts select the same candidates unless probabilities saturate at 1.
    """
    r, p = np.asarray(raw, dtype=np.float64), np.asarray(proba, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(p)
    order = np.argsort(-r[ok], kind="stable")
    r_sorted, low = r[ok][order], np.minimum.accumulate(p[ok][order]) if ok.any() else np.zeros(0)
    thr = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    n_pass = np.searchsorted(-r_sorted, -thr, side="right")
    out = np.where(n_pass > 0, low[np.maximum(n_pass - 1, 0)] if len(low) else np.inf, np.inf)
    return np.where(np.isnan(thr), np.nan, out)


def _add_probability_thresholds(
    wps: dict[str, Any], raw: np.ndarray, proba: np.ndarray, keys: tuple[str, ...]
) -> None:
    """Turn each working point's ``key`` (a cut on ``raw``) into ``key_raw`` and put its probability cut in ``key``.

    A null (unreachable) raw threshold stays null in both units.
    """
    todo = [(entry, key) for entry in wps.values() for key in keys if key in entry]
    cuts = [entry[key] for entry, key in todo]
    finite = [t for t in cuts if t is not None and np.isfinite(t)]
    # one sort for all of them
    at = iter(proba_at(raw, proba, np.asarray(finite, dtype=np.float64)) if finite else ())
    for (entry, key), t in zip(todo, cuts, strict=True):
        entry[f"{key}_raw"] = t
        entry[key] = t if t is None or not np.isfinite(t) else float(next(at))


def expected_yields(ds: Dataset, events: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Expected yield of each sample after the preselection.

    The sum of the normalised weights (raw weight x the sample's normalisation)
    of its class-representative (``truth``) candidates, so candidates, not
    events, are counted; with ``events`` (one candidate index per event, from
    :func:`offline_units`) the sum over those, each event once, and
    ``n_events``.
    """
    m = ds.truth
    sample, w = ds.columns["sample"], ds.weight
    out: dict[str, dict[str, Any]] = {}
    for name, info in sorted(ds.samples.items(), key=lambda kv: int(kv[1]["index"])):
        sel = m & (sample == info["index"])
        out[name] = {
            "label": int(info["label"]),
            "yield": float(w[sel].sum()),
            "n_candidates": int(sel.sum()),
            "normalisation": float(info["normalisation"]),
        }
        if events is not None:
            ev = events[sample[events] == info["index"]]
            out[name]["yield"] = float(w[ev].sum())
            out[name]["n_events"] = len(ev)
    return out


def offline_units(cfg: AnalysisConfig, ds: Dataset, score: np.ndarray) -> np.ndarray:
    """Indices of the candidates that offline yields count (``evaluation.yields``).

    ``candidates``: every class-representative (``truth``) candidate.
    ``events``: one per event (sample, run, event), its best-scoring
    class-representative candidate, so that an event passes a cut when any of
    them does and its weight counts once.
    """
    from ..stats.performance import best_candidate_per_event

    idx = np.flatnonzero(ds.truth)
    if cfg.evaluation.yields == "events":
        c = ds.columns
        idx = idx[
            best_candidate_per_event(
                c["sample"][idx], c["runNumber"][idx], c["eventNumber"][idx], score[idx]
            )
        ]
    return idx


def offline_figures(cfg: AnalysisConfig, ds: Dataset, score: np.ndarray) -> dict[str, Any]:
    """Expected yields, overall and per sample, at working points of fixed signal efficiency.

    A working point for signal efficiency ``e`` is the highest threshold that
    keeps at least the fraction ``e`` of the expected signal yield; S and B
    there are sums of normalised weights of the candidates scoring at or
    above it; with ``evaluation.yields: events`` of the events whose best
    candidate does (each event once). ``n_signal`` / ``n_background``: the
    simulated candidates (events) behind S and B.
    """
    m = offline_units(cfg, ds, score)
    events = m if cfg.evaluation.yields == "events" else None
    yields = expected_yields(ds, events)
    y, w, s, sample = ds.y[m], ds.weight[m], score[m], ds.columns["sample"][m]
    total_s = sum(v["yield"] for v in yields.values() if v["label"] == 1)
    total_b = sum(v["yield"] for v in yields.values() if v["label"] == 0)
    sig = y == 1
    order = np.argsort(-s[sig], kind="stable")
    s_sorted, cum = s[sig][order], np.cumsum(w[sig][order])
    wps: dict[str, Any] = {}
    for e in cfg.evaluation.signal_effs:
        if len(s_sorted) == 0 or total_s <= 0:
            continue
        i = min(int(np.searchsorted(cum, e * total_s - 1e-12 * abs(total_s))), len(s_sorted) - 1)
        thr = float(s_sorted[i])
        passed = s >= thr
        entry: dict[str, Any] = {
            "threshold": thr,
            "signal_yield": float(w[passed & sig].sum()),
            "background_yield": float(w[passed & ~sig].sum()),
        }
        entry["sig_eff"] = entry["signal_yield"] / total_s
        entry["bkg_eff"] = entry["background_yield"] / total_b if total_b else float("nan")
        entry["yields"] = {
            name: float(w[passed & (sample == ds.samples[name]["index"])].sum()) for name in yields
        }
        # simulated candidates (events) behind S and B: few of them leave B unresolved
        entry["n_signal"], entry["n_background"] = (
            int(np.sum(passed & sig)),
            int(np.sum(passed & ~sig)),
        )
        wps[f"{e:g}"] = entry
    return {
        "signal_yield": total_s,
        "background_yield": total_b,
        "yields": yields,
        "working_points": wps,
        "unit": cfg.evaluation.yields,
    }


def _event_columns(cfg: AnalysisConfig, ds: Dataset) -> list[str]:
    cols = ["fold", *cfg.evaluation.efficiency_vs]
    if cfg.evaluation.mode_column:
        cols.append(cfg.evaluation.mode_column)
    return [c for c in dict.fromkeys(cols) if c in ds.columns]


def _working_point_spread(
    cfg: AnalysisConfig,
    mb: EventScores,
    signal: EventScores,
    target: float,
    *,
    max_events: int | None = None,
) -> float:
    """Spread of the signal efficiency from the statistical uncertainty of the working point.

    The minimum-bias events are Poisson-bootstrapped, the threshold for the
    target rate is found again in each replica, and the signal efficiency at
    that threshold is recomputed; returns the standard deviation. The scores
    are sorted once: each replica only sums its weights in that order. With
    more than ``max_events`` (default :data:`~hepsel.stats.uncertainty.BOOTSTRAP_MAX_EVENTS`)
    minimum-bias events, a seeded subsample of that many is bootstrapped and
    its spread scaled by ``sqrt(max_events / n)``.
    """
    n = cfg.evaluation.bootstrap
    if n < 2 or len(mb.score) == 0:
        return float("nan")
    limit = BOOTSTRAP_MAX_EVENTS if max_events is None else max_events
    keep, factor = bootstrap_subsample(len(mb.score), limit, [cfg.seed, int(target * 1000), 1])
    if keep is not None:
        # events without candidates are subsampled alike: the denominator shrinks with the weight kept
        kept = float(np.sum(mb.weight[keep])) / max(float(np.sum(mb.weight)), 1e-300)
        mb = EventScores(mb.score[keep], mb.weight[keep], mb.total_weight * kept)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, int(target * 1000)]))
    # the rate curve's thresholds (trigger.rate_curve): distinct finite scores, decreasing
    order = np.argsort(-mb.score, kind="stable")
    s = mb.score[order]
    finite = np.flatnonzero(np.isfinite(s))
    last = np.ones(len(finite), dtype=bool)
    last[:-1] = s[finite][1:] != s[finite][:-1]
    at = finite[last]
    thresholds = s[at]
    # the signal efficiency at any threshold (EventScores.pass_fraction)
    sig_order = np.argsort(-signal.score, kind="stable")
    sig_score = signal.score[sig_order]
    sig_cw = np.concatenate(([0.0], np.cumsum(signal.weight[sig_order])))
    rate_in = cfg.rates.input_rate_khz
    effs = np.empty(n)
    for r in range(n):
        k = rng.poisson(1.0, size=len(mb.weight))
        weight = mb.weight * k
        # events without candidates are resampled too: scale the denominator with the replica
        scale = float(np.sum(weight)) / max(float(np.sum(mb.weight)), 1e-300)
        rates = rate_in * np.cumsum(weight[order])[at] / (mb.total_weight * scale)
        ok = np.flatnonzero(rates <= target * (1 + 1e-12))
        thr = float(thresholds[ok[-1]]) if len(ok) else float("inf")
        effs[r] = sig_cw[np.searchsorted(-sig_score, -thr, side="right")] / signal.total_weight
    return float(np.std(effs, ddof=1)) * factor


def _subsample_seed(cfg: AnalysisConfig, random_state: int | None, tag: int) -> list[int] | None:
    """Seed of a bootstrap's subsample, apart from the bootstrap's own draws (``None``: unseeded)."""
    return None if random_state is None else [int(random_state), cfg.seed, 3, tag]


def _rows_of_units(units: np.ndarray, keep: np.ndarray, n_units: int) -> np.ndarray:
    """Mask of the rows whose unit (an id in ``[0, n_units)``) is in ``keep``."""
    chosen = np.zeros(n_units, dtype=bool)
    chosen[keep] = True
    return chosen[units]


#: How the minimum-bias events are split to measure rates independently of the threshold choice.
RATE_SPLIT = "threshold chosen on minimum-bias events with even eventNumber, rate measured on those with odd eventNumber"


def split_minbias(mb: EventScores) -> tuple[EventScores, EventScores]:
    """The minimum-bias events with even and with odd event number.

    Events without candidates are not in ``mb``'s arrays, only in its total
    weight; each half gets half of it (event numbers split the events at
    random, so the error of this is ~1/sqrt(N) relative, far below the rate
    errors).
    """
    if mb.event is None:
        msg = "the minimum-bias events carry no event numbers; cannot split them"
        raise ValueError(msg)
    halves = []
    for parity in (0, 1):
        m = (mb.event % 2) == parity
        tw2 = None if mb.total_weight2 is None else 0.5 * mb.total_weight2
        halves.append(EventScores(mb.score[m], mb.weight[m], 0.5 * mb.total_weight, tw2))
    return halves[0], halves[1]


def measured_rate(mb: EventScores, input_rate_khz: float, target_khz: float) -> dict[str, float]:
    """Threshold for ``target_khz`` chosen on one half of ``mb``, rate (with error) measured on the other.

    The pull compares the measured rate with the target: both halves
    fluctuate (the threshold inherits the choosing half's fluctuation), so its
    denominator adds the two halves' binomial errors in quadrature. The halves
    are the same for every model, so the models' pulls are correlated.
    """
    choose, measure = split_minbias(mb)
    thr = threshold_for_rate(choose, input_rate_khz, target_khz)
    rate, err = output_rate(measure, thr, input_rate_khz)
    _, err_choose = output_rate(choose, thr, input_rate_khz)
    sigma = float(np.hypot(err[0], err_choose[0]))
    return {
        "threshold_split": thr,
        "rate_khz_measured": float(rate[0]),
        "rate_khz_measured_err": float(err[0]),
        "rate_khz_measured_pull": (float(rate[0]) - target_khz) / sigma
        if sigma > 0
        else float("nan"),
    }


def _rates(cfg: AnalysisConfig, views: EventViews) -> dict[str, Any]:
    mb, anyc, tos = views.minbias, views.signal_any, views.signal_tos
    rate_in = cfg.rates.input_rate_khz
    out: dict[str, Any] = {}
    col = cfg.evaluation.mode_column
    modes = views.columns[col].astype(np.int64) if col and col in views.columns else None
    ev_fold = views.columns["fold"].astype(np.int64)
    for target in cfg.rates.target_rates_khz:
        thr = threshold_for_rate(mb, rate_in, target)
        rate, rate_err = output_rate(mb, thr, rate_in)
        entry: dict[str, Any] = {
            "threshold": thr,
            "rate_khz": float(rate[0]),
            "rate_khz_err": float(rate_err[0]),
            "rate_target_khz": float(target),
            **measured_rate(mb, rate_in, target),
            "rate_split": RATE_SPLIT,
        }
        for name, ev in (("", anyc), ("_tos", tos)):
            e = efficiency_interval(ev.score >= thr, ev.weight, method=cfg.evaluation.interval)
            entry[f"eff{name}"] = float(e.value)
            entry[f"eff{name}_low"] = float(e.low)
            entry[f"eff{name}_high"] = float(e.high)
        # spread across folds: each fold's signal events at the common working point
        passed = anyc.score >= thr
        folds = [
            float(np.sum(anyc.weight[passed & (ev_fold == k)]) / np.sum(anyc.weight[ev_fold == k]))
            for k in range(cfg.folds.k)
            if np.any(ev_fold == k)
        ]
        entry["eff_folds"] = folds
        entry["eff_fold_std"] = float(np.std(folds, ddof=1)) if len(folds) > 1 else float("nan")
        entry["eff_wp_std"] = _working_point_spread(cfg, mb, anyc, target)
        entry["eff_wp_std_events"] = min(len(mb.score), BOOTSTRAP_MAX_EVENTS)
        if modes is not None:
            per_mode = {}
            for code in np.unique(modes):
                sel = modes == code
                label = cfg.evaluation.mode_names.get(int(code), str(int(code)))
                pm = {}
                for name, ev in (("eff", anyc), ("eff_tos", tos)):
                    e = efficiency_interval(
                        ev.score[sel] >= thr, ev.weight[sel], method=cfg.evaluation.interval
                    )
                    pm[name] = float(e.value)
                    pm[f"{name}_low"], pm[f"{name}_high"] = float(e.low), float(e.high)
                pm["n_events"] = int(sel.sum())
                per_mode[label] = pm
            entry["per_mode"] = per_mode
        out[rate_key(target)] = entry
    return out


def rate_curves(
    cfg: AnalysisConfig,
    views: EventViews,
    *,
    raw: np.ndarray | None = None,
    proba: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Signal efficiency (any, TOS) vs output rate [kHz], for plotting.

    ``threshold`` are cuts on the scores ``views`` were built from. With the
    candidates' ``raw`` outputs (those scores) and probabilities ``proba``,
    ``threshold_raw`` holds those cuts and ``threshold`` the matching cuts on
    the probability (:func:`proba_at`).
    """
    thresholds, rates = rate_curve(views.minbias, cfg.rates.input_rate_khz)
    keep = (
        np.unique(np.geomspace(1, len(thresholds), 400).astype(int) - 1)
        if len(thresholds)
        else np.zeros(0, int)
    )
    thr = thresholds[keep]
    out = {
        "threshold": thr,
        "rate_khz": rates[keep],
        "eff": views.signal_any.pass_fraction(thr),
        "eff_tos": views.signal_tos.pass_fraction(thr),
    }
    if raw is not None and proba is not None:
        out["threshold_raw"] = thr
        out["threshold"] = proba_at(raw, proba, thr)
    return out


def performance(
    cfg: AnalysisConfig,
    ds: Dataset,
    score: np.ndarray,
    thresholds: dict[str, float],
    generated: dict[str, np.ndarray] | None = None,
    *,
    raw: np.ndarray | None = None,
    thresholds_raw: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Efficiencies vs kinematics, optimal cuts and the sculpting check for one model.

    With ``generated`` (one row per generated signal event, as from
    :func:`hepsel.prep.dataset.load_generated_events`) also the efficiencies
    relative to all generated signal events, preselection included.

    With the raw outputs ``raw`` and the working points' cuts on them
    (``thresholds_raw``, same keys as ``thresholds``), the figures at working
    points and the optimal cuts are ranked on the raw output (which does not
    saturate); the distance correlation stays on the probability ``score``.
    Each threshold is given on both (``threshold_raw`` and ``threshold``).
    """
    from ..stats.performance import efficiency_vs, optimal_cuts, sculpting

    ev = cfg.evaluation
    out: dict[str, Any] = {}
    proba, proba_thresholds = score, thresholds
    if raw is not None and thresholds_raw is not None:
        score, thresholds = raw, thresholds_raw
    views = event_views(cfg, ds, score, _event_columns(cfg, ds))
    anyc = views.signal_any
    col = ev.mode_column
    modes = views.columns[col].astype(np.int64) if col and col in views.columns else None
    out["efficiency_vs"] = {
        var: efficiency_vs(
            views.columns[var],
            anyc.score,
            anyc.weight,
            thresholds,
            binning.bins,
            method=ev.interval,
            modes=modes,
            mode_names=ev.mode_names,
        )
        for var, binning in ev.efficiency_vs.items()
        if var in views.columns
    }
    m = ds.truth
    oc = ev.optimal_cut
    n_sig, n_bkg = oc.signal_yield, oc.background_yield
    units: np.ndarray = m
    if cfg.trigger is None:
        # offline: the samples' expected yields, unless the config gives them, in evaluation.yields' unit
        units = offline_units(cfg, ds, score)
        yields = expected_yields(ds, units if ev.yields == "events" else None)
        if "signal_yield" not in oc.model_fields_set:
            n_sig = sum(v["yield"] for v in yields.values() if v["label"] == 1)
        if "background_yield" not in oc.model_fields_set:
            n_bkg = sum(v["yield"] for v in yields.values() if v["label"] == 0)
    out["optimal_cut"] = optimal_cuts(
        ds.y[units],
        score[units],
        ds.weight[units],
        signal_yield=n_sig,
        background_yield=n_bkg,
        punzi_sigma=oc.punzi_sigma,
        min_background_candidates=oc.min_background_candidates,
    )
    if score is not proba:
        # ranked on the raw output; each cut also on the probability
        opt = out["optimal_cut"]
        _add_probability_thresholds(
            {k: opt[k] for k in ("significance", "punzi")}, score[m], proba[m], ("threshold",)
        )
        opt["curve"]["threshold_raw"] = opt["curve"]["threshold"]
        opt["curve"]["threshold"] = proba_at(score[m], proba[m], opt["curve"]["threshold_raw"])
    if ev.mass and ev.mass in ds.columns:
        b = m & (ds.y == 0)
        out["sculpting"] = sculpting(
            ds.columns[ev.mass][b],
            score[b],
            ds.weight[b],
            thresholds,
            method=ev.interval,
            random_state=cfg.seed,
        )
        if (
            score is not proba
        ):  # dCor is not invariant under the monotone map: keep it on the probability
            out["sculpting"]["distance_correlation"] = sculpting(
                ds.columns[ev.mass][b], proba[b], ds.weight[b], {}, random_state=cfg.seed
            )["distance_correlation"]
        out["sculpting"]["variable"] = ev.mass
    if generated is not None:
        out.update(_total_efficiencies(cfg, ds, score, thresholds, generated))
    composition = background_composition(cfg, ds, score, thresholds)
    if score is not proba:
        for key, entry in composition.items():
            entry["threshold_raw"] = entry["threshold"]
            entry["threshold"] = float(proba_thresholds[key])
    if composition:
        out["background_composition"] = composition
    return out


def background_composition(
    cfg: AnalysisConfig, ds: Dataset, score: np.ndarray, thresholds: dict[str, float]
) -> dict[str, Any]:
    """Which minimum-bias categories fire each working point (event level).

    A minimum-bias event passes when its best-scoring candidate passes; the
    event is counted in that candidate's category (``evaluation.background_category``).
    Fractions are of the passing events, with ``evaluation.interval`` binomial
    intervals. Empty without a configured category column.
    """
    ev = cfg.evaluation
    col = ev.background_category
    if not col or col not in ds.columns:
        return {}
    c = ds.columns
    mb = ds.sample_mask(cfg.minbias_sample)
    order, starts = group_events(c["runNumber"][mb], c["eventNumber"][mb])
    s = score[mb][order]
    if len(starts) == 0:
        return {}
    event_id = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(s))))
    # within each event's block, the best-scoring candidate first
    best = np.lexsort((-s, event_id))[starts]
    best_score = s[best]
    category = c[col][mb][order][best].astype(np.int64)
    weight = ds.weight[mb][order][best]
    out: dict[str, Any] = {}
    for key, thr in thresholds.items():
        passed = best_score >= thr
        cats, w = category[passed], weight[passed]
        counts = {int(code): int(np.sum(cats == code)) for code in np.unique(cats)}
        entry: dict[str, Any] = {
            "threshold": float(thr),
            "column": col,
            "n_events": int(passed.sum()),
            "weighted": float(w.sum()),
        }
        categories = {}
        for code in sorted(counts, key=lambda k: -counts[k]):
            e = efficiency_interval(cats == code, w, method=ev.interval)
            categories[ev.background_category_names.get(code, str(code))] = {
                "code": code,
                "n_events": counts[code],
                "weighted": float(w[cats == code].sum()),
                "fraction": float(e.value),
                "fraction_low": float(e.low),
                "fraction_high": float(e.high),
            }
        entry["categories"] = categories
        out[key] = entry
    return out


def _total_efficiencies(
    cfg: AnalysisConfig,
    ds: Dataset,
    score: np.ndarray,
    thresholds: dict[str, float],
    gen: dict[str, np.ndarray],
) -> dict[str, Any]:
    from ..stats.performance import (
        efficiency_vs,
        generated_event_scores,
        preselection_efficiency,
        total_efficiency,
    )

    ev, c = cfg.evaluation, ds.columns
    sig = ds.sample_mask(cfg.signal_sample)
    gen_score = generated_event_scores(
        c["runNumber"][sig],
        c["eventNumber"][sig],
        score[sig],
        ds.truth[sig],
        gen["runNumber"],
        gen["eventNumber"],
    )
    w = gen["weight"]
    col = ev.mode_column
    modes = gen[col].astype(np.int64) if col and col in gen else None
    kw: dict[str, Any] = {"method": ev.interval, "modes": modes, "mode_names": ev.mode_names}
    return {
        "eff_total": total_efficiency(gen_score, w, thresholds, **kw),
        "eff_preselection": preselection_efficiency(gen_score, w, **kw),
        "efficiency_vs_total": {
            var: efficiency_vs(gen[var], gen_score, w, thresholds, binning.bins, **kw)
            for var, binning in ev.efficiency_vs.items()
            if var in gen
        },
    }
