"""The augmentation study: does GAN-generated signal help when real signal is scarce?

For each number of real signal training candidates ``N_real`` and each seed,
the baseline and the GAN-augmented classifiers are trained on a seeded random
subset of ``N_real`` signal candidates of folds 1..k-1 (all background of
those folds) and tested on fold 0, which no model or GAN of the study sees.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..prep.dataset import Dataset, training_weights
from ..stats.metrics import roc_auc
from ..stats.trigger import threshold_for_rate
from ..train.kfold import fit_model, model_seed
from .evaluation import event_views

__all__ = ["augmentation_point", "study_models", "summarise"]

TEST_FOLD = 0


def study_models(cfg: AnalysisConfig) -> list[str]:
    """Models compared in the study (config ``study.models``, default: all but Fisher)."""
    return cfg.study.models or [m for m, c in cfg.models.items() if c.type != "fisher"]


def augmentation_point(
    cfg: AnalysisConfig, ds: Dataset, model: str, n_real: int | str, seed: int
) -> dict[str, Any]:
    """Train ``model`` with ``n_real`` real signal candidates and test it on fold 0."""
    mcfg = cfg.models[model]
    train = (ds.fold != TEST_FOLD) & ds.truth
    idx = np.flatnonzero(train)
    y_all = ds.y
    sig_idx = idx[y_all[idx] == 1]
    s = model_seed(cfg, f"study/{model}", TEST_FOLD, seed)
    if n_real != "all" and int(n_real) < len(sig_idx):
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, seed, int(n_real)]))
        sig_idx = np.sort(rng.choice(sig_idx, size=int(n_real), replace=False))
    idx = np.sort(np.concatenate([sig_idx, idx[y_all[idx] == 0]]))
    y = y_all[idx]
    w = training_weights(
        ds.weight[idx],
        y,
        negative=cfg.training.negative_weights,
        balance=cfg.training.balance_classes,
    )
    cond = ds.columns[mcfg.condition_on][idx] if mcfg.condition_on else None
    spec = ds.columns[mcfg.decorrelate.spectator][idx] if mcfg.decorrelate else None
    clf, _, info = fit_model(cfg, mcfg, ds.X[idx], y, w, seed=s, conditions=cond, spectator=spec)
    test = ds.fold == TEST_FOLD
    score = np.full(len(ds), np.nan)
    score[test] = clf.predict_proba(ds.X[test])[:, 1]
    m = test & ds.truth
    out: dict[str, Any] = {
        "model": model,
        "n_real": len(sig_idx),
        "n_real_requested": n_real,
        "seed": seed,
        "auc": float(roc_auc(ds.y[m], score[m], ds.weight[m])),
        "n_synthetic": info.get("n_synthetic", 0),
    }
    # event-level efficiency at the first target rate, from the test fold's events only,
    # ranked on the raw output (probabilities saturate at 1)
    raw = clf.decision_function(ds.X[test])
    views = event_views(cfg, _fold_subset(cfg, ds, test), raw)
    target = cfg.rates.target_rates_khz[0]
    thr = threshold_for_rate(views.minbias, cfg.rates.input_rate_khz, target)
    out["eff_at_rate"] = float(views.signal_any.pass_fraction(thr)[0])
    out["target_rate_khz"] = target
    return out


def _fold_subset(cfg: AnalysisConfig, ds: Dataset, mask: np.ndarray) -> Dataset:
    """The candidates of one fold, with event totals scaled to that fold's share (1/k) of the events."""
    samples = {}
    for name, info in ds.samples.items():
        scaled = dict(info)
        for key in ("sum_gen_weights", "sum_gen_weights2"):
            if key in scaled:
                scaled[key] = scaled[key] / cfg.folds.k
        samples[name] = scaled
    return Dataset({k: v[mask] for k, v in ds.columns.items()}, ds.feature_names, samples)


def summarise(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over seeds for each (model, N_real)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault((p["model"], str(p["n_real_requested"])), []).append(p)
    rows = []
    for (model, n_req), ps in groups.items():
        auc = np.array([p["auc"] for p in ps])
        eff = np.array([p["eff_at_rate"] for p in ps])
        rows.append(
            {
                "model": model,
                "n_real": int(np.mean([p["n_real"] for p in ps])),
                "n_real_requested": n_req,
                "n_seeds": len(ps),
                "auc_mean": float(auc.mean()),
                "auc_std": float(auc.std(ddof=1)) if len(ps) > 1 else float("nan"),
                "eff_at_rate_mean": float(eff.mean()),
                "eff_at_rate_std": float(eff.std(ddof=1)) if len(ps) > 1 else float("nan"),
            }
        )
    rows.sort(key=lambda r: (r["model"], r["n_real"]))
    lines = [f"{'model':<10} {'N_real':>7} {'AUC':>18} {'eff@rate':>18}"]
    for r in rows:
        lines.append(
            f"{r['model']:<10} {r['n_real']:>7} {r['auc_mean']:.4f} +- {r['auc_std']:.4f} "
            f"{r['eff_at_rate_mean']:.4f} +- {r['eff_at_rate_std']:.4f}"
        )
    return {"rows": rows, "points": points, "table": "\n".join(lines)}
