"""The DisCo strength scan: efficiency against decorrelation for one model.

For each strength ``lambda`` of ``decorrelation_scan.strengths`` the model of
``decorrelation_scan.model`` is retrained on every fold but
``decorrelation_scan.fold`` (same seed for every strength, so that only
``lambda`` changes) and scored on that held-out fold. Each point records:

* the signal efficiency at the working point: the first
  ``trigger.target_rates_khz`` (event level, the held-out fold's events), or,
  offline, the first ``evaluation.bkg_effs`` (candidate level);
* the weighted distance correlation of the background score with the
  spectator (:func:`hepsel.stats.decorrelation.distance_correlation_np`);
* the sculpting of the spectator's background distribution by the cut: the
  Jensen-Shannon divergence (base 2, in [0, 1]) between the normalised
  background histograms before and after the cut, and the histograms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig, DecorrelateConfig
from ..prep.dataset import Dataset, training_weights
from ..stats.decorrelation import distance_correlation_np
from ..stats.metrics import roc_auc, threshold_at_background_efficiency

__all__ = ["jensen_shannon", "scan_edges", "scan_point", "summarise_scan"]

_BINS = 40


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2) of two histograms, each normalised to unit sum first.

    Returns a value in [0, 1]: 0 for identical shapes, 1 for disjoint ones.
    Negative bin contents (negative weights) are set to zero.
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 0, None)
    q = np.clip(np.asarray(q, dtype=np.float64), 0, None)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def scan_edges(cfg: AnalysisConfig, ds: Dataset) -> np.ndarray:
    """Bin edges of the spectator: 0.5 to 99.5 % quantiles of the held-out background (the same for every strength)."""
    scan = _scan(cfg)
    spectator = cfg.models[scan.model].decorrelate
    assert spectator is not None
    bkg = (ds.fold == scan.fold) & ds.truth & (ds.y == 0)
    lo, hi = np.quantile(ds.columns[spectator.spectator][bkg], [0.005, 0.995])
    return np.linspace(lo, hi, _BINS + 1)


def _scan(cfg: AnalysisConfig) -> Any:
    if cfg.decorrelation_scan is None:
        msg = "this needs a decorrelation_scan block (model, strengths, fold) in the config"
        raise ValueError(msg)
    return cfg.decorrelation_scan


def scan_point(cfg: AnalysisConfig, ds: Dataset, strength: float) -> dict[str, Any]:
    """Retrain the scan's model with DisCo strength ``strength`` and measure it on the held-out fold."""
    from ..stats.trigger import threshold_for_rate
    from ..train.kfold import fit_model, model_seed, training_mask
    from .evaluation import event_views, proba_at
    from .study import _fold_subset

    scan = _scan(cfg)
    base = cfg.models[scan.model]
    assert base.decorrelate is not None
    column = base.decorrelate.spectator
    mcfg = base.model_copy(
        update={"decorrelate": DecorrelateConfig(spectator=column, strength=float(strength))}
    )
    seed = model_seed(cfg, f"decorrelation/{scan.model}", scan.fold)
    idx = np.flatnonzero(training_mask(ds, scan.fold))
    y = ds.y[idx]
    w = training_weights(
        ds.weight[idx],
        y,
        negative=cfg.training.negative_weights,
        balance=cfg.training.balance_classes,
    )
    events = (ds.columns["runNumber"][idx], ds.columns["eventNumber"][idx])
    clf, _, info = fit_model(
        cfg, mcfg, ds.X[idx], y, w, seed=seed, events=events, spectator=ds.columns[column][idx]
    )

    test = ds.fold == scan.fold
    score = np.full(len(ds), np.nan)
    score[test] = clf.predict_proba(ds.X[test])[:, 1]
    # working points rank and cut the raw output (the probability saturates at 1)
    raw = np.full(len(ds), np.nan)
    raw[test] = clf.decision_function(ds.X[test])
    m = test & ds.truth
    sig, bkg = m & (ds.y == 1), m & (ds.y == 0)
    out: dict[str, Any] = {"strength": float(strength), "seed": seed, "seconds": info["seconds"]}
    out["auc"] = float(roc_auc(ds.y[m], score[m], ds.weight[m]))
    if cfg.trigger is not None:
        target = cfg.trigger.target_rates_khz[0]
        views = event_views(cfg, _fold_subset(cfg, ds, test), raw[test])
        thr = threshold_for_rate(views.minbias, cfg.trigger.input_rate_khz, target)
        sig_events = views.signal_any
        out["efficiency"] = float(sig_events.pass_fraction(thr)[0])
        sumw2 = (
            sig_events.total_weight2
            if sig_events.total_weight2 is not None
            else float(np.sum(sig_events.weight**2))
        )
        n_eff = sig_events.total_weight**2 / max(sumw2, 1e-300)
        out["working_point"] = f"{target:g} kHz"
    else:
        bkg_eff = cfg.evaluation.bkg_effs[0]
        thr = float(
            threshold_at_background_efficiency(ds.y[m], raw[m], ds.weight[m], bkg_eff=bkg_eff)
        )
        ws = ds.weight[sig]
        out["efficiency"] = float(ws[raw[sig] >= thr].sum() / ws.sum())
        n_eff = float(ws.sum() ** 2 / max(float(np.sum(ws**2)), 1e-300))
        out["working_point"] = f"eff_B = {bkg_eff:g}"
    # binomial error with the effective number of signal events
    eff = out["efficiency"]
    out["efficiency_err"] = float(np.sqrt(max(eff * (1 - eff), 0.0) / max(n_eff, 1.0)))
    out["threshold_raw"] = float(thr)
    out["threshold"] = (
        float(proba_at(raw[test], score[test], thr)[0]) if np.isfinite(thr) else float(thr)
    )
    spec, wb, sb = ds.columns[column][bkg], ds.weight[bkg], score[bkg]
    out["distance_correlation"] = distance_correlation_np(sb, spec, wb, random_state=cfg.seed)
    edges = scan_edges(cfg, ds)
    before = np.histogram(spec, bins=edges, weights=wb)[0]
    passed = raw[bkg] >= thr
    after = np.histogram(spec[passed], bins=edges, weights=wb[passed])[0]
    out["n_background_passing"] = int(passed.sum())
    out["jensen_shannon"] = jensen_shannon(before, after)
    out["background_before"] = before.tolist()
    out["background_after"] = after.tolist()
    out["background_after_sumw2"] = np.histogram(spec[passed], bins=edges, weights=wb[passed] ** 2)[
        0
    ].tolist()
    out["bins"] = edges.tolist()
    return out


def summarise_scan(cfg: AnalysisConfig, points: list[dict[str, Any]]) -> dict[str, Any]:
    """The scan's JSON: one entry per strength (sorted), and which strength the plots compare with 0."""
    scan = _scan(cfg)
    decorrelate = cfg.models[scan.model].decorrelate
    assert decorrelate is not None
    points = sorted(points, key=lambda p: p["strength"])
    chosen = scan.chosen if scan.chosen is not None else decorrelate.strength
    strengths = [p["strength"] for p in points]
    # the scanned strength nearest the requested one
    chosen = strengths[int(np.argmin(np.abs(np.asarray(strengths) - chosen)))]
    return {
        "model": scan.model,
        "kind": cfg.models[scan.model].type,
        "spectator": decorrelate.spectator,
        "fold": scan.fold,
        "working_point": points[0]["working_point"],
        "chosen": chosen,
        "points": points,
    }
