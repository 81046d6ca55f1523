"""The fidelity step: how close each GAN's generated events are to real ones."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from .layout import Layout

__all__ = [
    "fidelity",
    "gan_models",
]


def gan_models(cfg: AnalysisConfig) -> list[str]:
    """Models with a GAN (``gan_augmented``)."""
    return [m for m, c in cfg.models.items() if c.type == "gan_augmented"]


def fidelity(cfg: AnalysisConfig, model: str) -> dict[str, Any]:
    """Fidelity of each fold's GAN on the held-out signal of its own fold (never seen by it)."""
    from ..io.storage import read_json, write_json
    from ..models.gan import WGANGP
    from ..prep.dataset import load_dataset
    from ..report import feature_plots, plotting
    from ..stats.fidelity import fidelity_report

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg)
    mcfg = cfg.models[model]
    folds = []
    real_all, gen_all = [], []
    for k in range(cfg.folds.k):
        gan = WGANGP.load(lay.model(model, k).with_name(f"fold{k}_gan"), device="cpu")
        hold = (ds.fold == k) & ds.truth & (ds.y == 1)
        real = ds.X[hold]
        cond = None
        if mcfg.condition_on:
            cats = np.asarray(read_json(lay.model_info(model, k))["condition_categories"])
            cond = np.searchsorted(cats, ds.columns[mcfg.condition_on][hold])
        gen = gan.sample(len(real), conditions=cond, random_state=cfg.seed + k)
        # the GAN learns the weighted signal distribution: compare it with the weighted held-out signal
        weight = ds.weight[hold]
        weighted = bool((weight >= 0).all() and weight.sum() > 0)
        rep = fidelity_report(
            real,
            gen,
            cfg.feature_names,
            random_state=cfg.seed + k,
            real_weight=weight if weighted else None,
        )
        rep["weighted"] = weighted
        unweighted = (
            fidelity_report(real, gen, cfg.feature_names, random_state=cfg.seed + k)
            if weighted
            else rep
        )
        rep["unweighted"] = {key: unweighted[key] for key in ("c2st_auc", "mean_wasserstein_ratio")}
        rep["fold"] = k
        rep["clipped"] = np.asarray(gan.last_sample_clipped_).tolist()
        rep["selected_iteration"] = gan.fidelity_.get("best_iteration")
        folds.append(rep)
        real_all.append(real)
        gen_all.append(gen)
    feats = cfg.feature_names
    out: dict[str, Any] = {
        "model": model,
        "folds": folds,
        "c2st_auc_mean": float(np.mean([f["c2st_auc"] for f in folds])),
        "mean_wasserstein_ratio": float(np.mean([f["mean_wasserstein_ratio"] for f in folds])),
        "max_abs_correlation_difference": float(
            np.max([f["max_abs_correlation_difference"] for f in folds])
        ),
        "wasserstein": {
            n: float(np.mean([f["features"][n]["wasserstein"] for f in folds])) for n in feats
        },
        "baseline_wasserstein": {
            n: float(np.mean([f["features"][n]["baseline_wasserstein"] for f in folds]))
            for n in feats
        },
        "classifier_two_sample": {"auc": float(np.mean([f["c2st_auc"] for f in folds]))},
    }
    write_json(lay.root / "fidelity" / f"{model}.json", out)
    real, gen = np.concatenate(real_all), np.concatenate(gen_all)
    labels = {f.name: (f.label or f.name) for f in cfg.features}
    with plotting.lhcb_style():
        fig = feature_plots.overlay_grid(
            real,
            gen,
            feats,
            labels=labels,
            w1=out["wasserstein"],
            baseline=out["baseline_wasserstein"],
            title=f"{model} GAN fidelity, folds 0-{cfg.folds.k - 1} pooled (each fold's GAN vs its own held-out signal)",
        )
        plotting.save(fig, lay.plots / f"gan_overlay_{model}")
        fig, ax = plotting.new_figure((12, 10))
        # the fold with the largest |difference|: the one the report's table quotes
        worst = int(np.argmax([f["max_abs_correlation_difference"] for f in folds]))
        diff = np.asarray(folds[worst]["correlation_difference"])
        feature_plots.correlation_plot(
            diff,
            feats,
            ax=ax,
            difference=True,
            labels=labels,
            title=f"{model}, fold {worst}: max $|\\Delta\\rho|$ = {folds[worst]['max_abs_correlation_difference']:.3f}",
        )
        plotting.save(fig, lay.plots / f"gan_correlation_{model}")
    return out
