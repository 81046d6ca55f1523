"""The explain step: SHAP values of each model, and their figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from .labels import feature_labels
from .layout import Layout

__all__ = [
    "explain",
]


def explainable_models(cfg: AnalysisConfig) -> list[str]:
    """Models with a SHAP explainer (BDTs, bonsai BDTs, MLPs and Lipschitz MLPs, including GAN-augmented ones, and autoencoders)."""
    from .cross_scoring import model_kind

    return [
        m
        for m in cfg.models
        if model_kind(cfg, m) in ("bdt", "bbdt", "mlp", "lipschitz_mlp", "autoencoder")
    ]


def explain(cfg: AnalysisConfig, model: str) -> dict[str, Any]:
    """SHAP values of a subsample, each candidate explained by the model that did not train on it.

    Writes ``shap/<model>.npz`` and ``shap/<model>.json``; :func:`explain_figures` draws them.
    """
    from ..explain.shap_values import explain_model, mean_abs_shap
    from ..io.storage import atomic_path, write_json
    from ..models import load_classifier
    from ..prep.dataset import feature_matrix, load_dataset
    from .cross_scoring import model_kind

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg, columns=["label", "fold", "truth"])
    kind = model_kind(cfg, model)
    rng = np.random.default_rng(cfg.seed)
    pool = np.flatnonzero(ds.truth)
    n = min(cfg.evaluation.shap.events, len(pool))
    index = np.sort(rng.choice(pool, size=n, replace=False))
    folds = [load_classifier(kind, lay.model(model, k)) for k in range(cfg.folds.k)]
    background_rows: list[np.ndarray] | None = None
    if kind in ("mlp", "lipschitz_mlp", "autoencoder"):
        nb = cfg.evaluation.shap.background_events
        background_rows = []
        for k in range(cfg.folds.k):
            train = (ds.fold != k) & ds.truth
            if kind == "autoencoder":
                # the reference is what the autoencoder learnt: background candidates
                train &= ds.y == 0
            train = np.flatnonzero(train)
            background_rows.append(rng.choice(train, size=min(nb, len(train)), replace=False))
    # the features of the explained and reference candidates only: memory does not grow with the data
    needed = np.unique(np.concatenate([index, *(background_rows or [])]))
    X_needed = feature_matrix(lay.dataset, cfg, rows=needed)

    def features(rows: np.ndarray) -> np.ndarray:
        return X_needed[np.searchsorted(needed, rows)]

    backgrounds = None if background_rows is None else [features(r) for r in background_rows]
    expl = explain_model(
        kind,
        folds,
        features(index),
        ds.fold[index],
        index,
        cfg.feature_names,
        backgrounds=backgrounds,
        random_state=cfg.seed,
        n_samples=cfg.evaluation.shap.mlp_samples,
    )
    with atomic_path(lay.shap(model), suffix=".npz") as tmp, tmp.open("wb") as fh:
        np.savez_compressed(
            fh,
            values=expl.values,
            base=expl.base,
            data=expl.data,
            index=expl.index,
            label=ds.y[index],
            feature_names=np.array(expl.feature_names),
        )
    ranking = mean_abs_shap(expl)
    info = {
        "model": model,
        "kind": kind,
        "output": expl.output,
        "n_events": n,
        "mean_abs_shap": ranking,
    }
    write_json(lay.shap(model).with_suffix(".json"), info)
    return info


def explain_figures(cfg: AnalysisConfig, model: str) -> list[Path]:
    """Draw ``plots/shap_*_<model>`` from the saved SHAP values (``shap/<model>.npz``).

    Drawn apart from :func:`explain`, with the config's feature labels, so that
    editing a label redraws the figures without recomputing the SHAP values.
    """
    from types import SimpleNamespace

    from ..explain.interactions import strongest_interaction
    from ..io.storage import read_json
    from ..report import explain_plots, plotting

    lay = Layout.of(cfg)
    info = read_json(lay.shap(model).with_suffix(".json"))
    with np.load(lay.shap(model), allow_pickle=False) as z:
        expl = SimpleNamespace(
            values=z["values"],
            base=z["base"],
            data=z["data"],
            feature_names=[str(n) for n in z["feature_names"]],
            output=info["output"],
        )
    # each dependence plot is coloured by the feature that explains most of its spread
    colour_by: dict[str, str | None] = {}
    for i, name in enumerate(expl.feature_names):
        j = strongest_interaction(expl.values, expl.data, i)
        colour_by[name] = None if j is None else expl.feature_names[j]
    title = f"{model}: {info['n_events']:,} candidates" if "n_events" in info else model
    written: list[Path] = []
    with plotting.lhcb_style():
        for name, fig in explain_plots.shap_figures(
            expl, max_dependence=3, labels=feature_labels(cfg), colour_by=colour_by, title=title
        ).items():
            written += plotting.save(fig, lay.plots / f"shap_{name}_{model}")
    return written
