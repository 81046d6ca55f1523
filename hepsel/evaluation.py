"""Cross-scoring and the per-model figures of a trigger study.

:func:`cross_scores` scores every candidate with the fold model that did not
train on it (and, for the overtraining check, each training candidate with the
models that did). :func:`model_summary` turns scores into the figures of
``summary.json``; :func:`curves` into the data behind the plots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import AnalysisConfig
from .dataset import Dataset
from .intervals import efficiency_interval
from .metrics import (
    efficiency_at_background_efficiency,
    ks_2samp_weighted,
    roc,
    roc_auc,
    roc_auc_bootstrap,
    separation,
)
from .models import load_classifier
from .trigger import EventScores, output_rate, rate_curve, threshold_for_rate

__all__ = ["CrossScores", "cross_scores", "model_kind", "model_summary", "rate_key", "trigger_events"]


def rate_key(rate_khz: float) -> str:
    """Key of a target rate in ``summary.json`` (e.g. ``"660"``)."""
    return f"{rate_khz:g}"


def model_kind(cfg: AnalysisConfig, model: str) -> str:
    """The classifier kind saved for ``model`` (``gan_augmented`` saves its base)."""
    m = cfg.models[model]
    return m.base if m.type == "gan_augmented" else m.type


def fold_prefix(model_dir: str | os.PathLike[str], model: str, fold: int) -> Path:
    """Where the model of ``fold`` is saved."""
    return Path(model_dir) / model / f"fold{fold}"


@dataclass
class CrossScores:
    """Scores of one model.

    ``test`` holds each candidate's score from the model that did not see it.
    For the overtraining check, ``train_score`` holds, for the training
    candidates ``train_index``, the score from one model that did train on
    them (the model of the next fold, ``(fold + 1) % k``), so that each
    candidate enters the train distribution once.
    """

    test: np.ndarray
    train_index: np.ndarray
    train_score: np.ndarray


def cross_scores(cfg: AnalysisConfig, ds: Dataset, model: str, model_dir: str | os.PathLike[str]) -> CrossScores:
    """Score all candidates of ``ds`` with the fold models of ``model``."""
    X = ds.X
    fold = ds.fold
    truth = ds.truth
    k_folds = cfg.folds.k
    test = np.full(len(ds), np.nan)
    train = np.full(len(ds), np.nan)
    kind = model_kind(cfg, model)
    for k in range(k_folds):
        clf = load_classifier(kind, fold_prefix(model_dir, model, k))
        in_fold = fold == k
        test[in_fold] = clf.predict_proba(X[in_fold])[:, 1]
        # candidates of the previous fold were in this model's training set
        seen = (fold == (k - 1) % k_folds) & truth
        train[seen] = clf.predict_proba(X[seen])[:, 1]
    idx = np.flatnonzero(truth)
    return CrossScores(test, idx, train[idx])


def trigger_events(
    cfg: AnalysisConfig, ds: Dataset, score: np.ndarray
) -> tuple[EventScores, EventScores, EventScores, dict[str, Any]]:
    """Event-level views: minimum bias, signal (any candidate), signal (truth candidate, TOS-like).

    The signal denominator is the signal events with at least one
    truth-matched candidate after the preselection.
    """
    c = ds.columns
    mb = ds.sample_mask(cfg.minbias_sample)
    mb_info = ds.samples[cfg.minbias_sample]
    mb_total = float(mb_info["sum_gen_weights"]) * float(mb_info["normalisation"])
    mb_events = EventScores.from_candidates(
        c["runNumber"][mb], c["eventNumber"][mb], score[mb], ds.weight[mb], total_weight=mb_total
    )
    sig = ds.sample_mask(cfg.signal_sample)
    run, evt, s, w, t = c["runNumber"][sig], c["eventNumber"][sig], score[sig], ds.weight[sig], ds.truth[sig]
    tos = EventScores.from_candidates(run, evt, s, w, mask=t)
    reco = np.isfinite(tos.score) & (tos.score > -np.inf)
    anyc = EventScores.from_candidates(run, evt, s, w)
    any_sel = EventScores(anyc.score[reco], anyc.weight[reco], float(anyc.weight[reco].sum()))
    tos_sel = EventScores(tos.score[reco], tos.weight[reco], float(tos.weight[reco].sum()))
    extra = {"n_signal_events": int(reco.sum()), "n_minbias_events": int(mb_info["n_events"])}
    return mb_events, any_sel, tos_sel, extra


def _ks(values: np.ndarray, weights: np.ndarray, values2: np.ndarray, weights2: np.ndarray) -> tuple[float, float]:
    stat, p = ks_2samp_weighted(values, values2, weights, weights2)
    return float(stat), float(p)


def model_summary(
    cfg: AnalysisConfig, ds: Dataset, cs: CrossScores, *, random_state: int | None = None
) -> dict[str, Any]:
    """All figures of one model for ``summary.json``."""
    m = ds.truth
    y, w, s = ds.y[m], ds.weight[m], cs.test[m]
    out: dict[str, Any] = {}
    r = roc(y, s, w)
    out["auc"] = float(r.auc)
    if cfg.evaluation.bootstrap:
        _, std, _ = roc_auc_bootstrap(y, s, w, n_bootstrap=cfg.evaluation.bootstrap, random_state=random_state)
        out["auc_std"] = float(std)
    effs = efficiency_at_background_efficiency(y, s, w, bkg_eff=cfg.evaluation.bkg_effs)
    out["eff_at_bkg_eff"] = {f"{b:g}": float(e) for b, e in zip(cfg.evaluation.bkg_effs, np.atleast_1d(effs), strict=True)}
    yt, wt, st = ds.y[cs.train_index], ds.weight[cs.train_index], cs.train_score
    effs_tr = efficiency_at_background_efficiency(yt, st, wt, bkg_eff=cfg.evaluation.bkg_effs)
    out["eff_at_bkg_eff_train"] = {
        f"{b:g}": float(e) for b, e in zip(cfg.evaluation.bkg_effs, np.atleast_1d(effs_tr), strict=True)
    }
    out["auc_train"] = float(roc_auc(yt, st, wt))
    ks_p, ks_stat = {}, {}
    for name, cls in (("signal", 1), ("background", 0)):
        a = (y == cls)
        b = (yt == cls)
        stat, p = _ks(st[b], wt[b], s[a], w[a])
        ks_p[name], ks_stat[name] = p, stat
    out["ks_pvalue"] = ks_p
    out["ks_statistic"] = ks_stat
    out["separation"] = float(separation(s[y == 1], s[y == 0], w[y == 1], w[y == 0]))
    fold_aucs = []
    for k in range(cfg.folds.k):
        f = ds.fold[m] == k
        if len(np.unique(y[f])) == 2:
            fold_aucs.append(float(roc_auc(y[f], s[f], w[f])))
    out["auc_folds"] = fold_aucs
    out["auc_fold_std"] = float(np.std(fold_aucs, ddof=1)) if len(fold_aucs) > 1 else float("nan")
    out["eff_at_rate"] = _rates(cfg, ds, cs.test)
    return out


def _rates(cfg: AnalysisConfig, ds: Dataset, score: np.ndarray) -> dict[str, Any]:
    mb, anyc, tos, extra = trigger_events(cfg, ds, score)
    rate_in = cfg.trigger.input_rate_khz
    out: dict[str, Any] = {}
    modes = _event_modes(cfg, ds)
    ev_fold = signal_event_columns(cfg, ds, ["fold"])["fold"].astype(np.int64)
    for target in cfg.trigger.target_rates_khz:
        thr = threshold_for_rate(mb, rate_in, target)
        rate, rate_err = output_rate(mb, thr, rate_in)
        entry: dict[str, Any] = {
            "threshold": thr,
            "rate_khz": float(rate[0]),
            "rate_khz_err": float(rate_err[0]),
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
        if modes is not None:
            per_mode = {}
            for code in np.unique(modes):
                sel = modes == code
                label = cfg.evaluation.mode_names.get(int(code), str(int(code)))
                pm = {}
                for name, ev in (("eff", anyc), ("eff_tos", tos)):
                    e = efficiency_interval(ev.score[sel] >= thr, ev.weight[sel], method=cfg.evaluation.interval)
                    pm[name] = float(e.value)
                    pm[f"{name}_low"], pm[f"{name}_high"] = float(e.low), float(e.high)
                pm["n_events"] = int(sel.sum())
                per_mode[label] = pm
            entry["per_mode"] = per_mode
        out[rate_key(target)] = entry
    out["_events"] = extra
    return out


def _event_modes(cfg: AnalysisConfig, ds: Dataset) -> np.ndarray | None:
    """Decay mode of each selected signal event (from its truth-matched candidate)."""
    col = cfg.evaluation.mode_column
    if col is None or col not in ds.columns:
        return None
    sig = ds.sample_mask(cfg.signal_sample)
    c = ds.columns
    mode = np.where(ds.truth[sig], c[col][sig], -np.inf)
    tos = EventScores.from_candidates(c["runNumber"][sig], c["eventNumber"][sig], mode, ds.weight[sig], mask=ds.truth[sig])
    return tos.score[np.isfinite(tos.score)].astype(np.int64)


def rate_curves(cfg: AnalysisConfig, ds: Dataset, score: np.ndarray) -> dict[str, np.ndarray]:
    """Signal efficiency (any, TOS) vs output rate [kHz], for plotting."""
    mb, anyc, tos, _ = trigger_events(cfg, ds, score)
    thresholds, rates = rate_curve(mb, cfg.trigger.input_rate_khz)
    keep = np.unique(np.geomspace(1, len(thresholds), 400).astype(int) - 1) if len(thresholds) else np.zeros(0, int)
    thr = thresholds[keep]
    return {
        "threshold": thr,
        "rate_khz": rates[keep],
        "eff": anyc.pass_fraction(thr),
        "eff_tos": tos.pass_fraction(thr),
    }


def signal_event_columns(cfg: AnalysisConfig, ds: Dataset, columns: list[str]) -> dict[str, np.ndarray]:
    """Per selected signal event, the value of ``columns`` on its truth-matched candidate.

    Events are in the order of :func:`trigger_events`' signal views.
    """
    sig = ds.sample_mask(cfg.signal_sample)
    c = ds.columns
    run, evt, t, w = c["runNumber"][sig], c["eventNumber"][sig], ds.truth[sig], ds.weight[sig]
    out = {}
    for col in columns:
        # one truth-matched candidate per event: its value is the masked maximum
        ev = EventScores.from_candidates(run, evt, c[col][sig].astype(np.float64), w, mask=t)
        out[col] = ev.score
    reco = np.isfinite(EventScores.from_candidates(run, evt, np.zeros(len(run)), w, mask=t).score)
    return {k: v[reco] for k, v in out.items()}


def performance(cfg: AnalysisConfig, ds: Dataset, score: np.ndarray, thresholds: dict[str, float]) -> dict[str, Any]:
    """Efficiencies vs kinematics, optimal cuts and the sculpting check for one model."""
    from .performance import efficiency_vs, optimal_cuts, sculpting

    ev = cfg.evaluation
    out: dict[str, Any] = {}
    _, anyc, _, _ = trigger_events(cfg, ds, score)
    cols = list(ev.efficiency_vs)
    if ev.mode_column:
        cols.append(ev.mode_column)
    cols = [c for c in cols if c in ds.columns]
    per_event = signal_event_columns(cfg, ds, cols)
    modes = per_event[ev.mode_column].astype(np.int64) if ev.mode_column in per_event else None
    out["efficiency_vs"] = {
        var: efficiency_vs(
            per_event[var], anyc.score, anyc.weight, thresholds, binning.bins,
            method=ev.interval, modes=modes, mode_names=ev.mode_names,
        )
        for var, binning in ev.efficiency_vs.items()
        if var in per_event
    }
    m = ds.truth
    oc = ev.optimal_cut
    out["optimal_cut"] = optimal_cuts(
        ds.y[m], score[m], ds.weight[m], signal_yield=oc.signal_yield,
        background_yield=oc.background_yield, punzi_sigma=oc.punzi_sigma,
    )
    if ev.mass and ev.mass in ds.columns:
        b = m & (ds.y == 0)
        out["sculpting"] = sculpting(
            ds.columns[ev.mass][b], score[b], ds.weight[b], thresholds, method=ev.interval, random_state=cfg.seed
        )
        out["sculpting"]["variable"] = ev.mass
    return out
