"""SHAP explanations of the trained classifiers.

BDTs are explained exactly with xgboost's native TreeSHAP (``pred_contribs``),
on the margin (log-odds) output. A bonsai BDT is explained the same way, by its
internal BDT on the bin indices of the candidate's cell, over the features it
uses only: the attributions sum (with the base value) to the margin of the
cell, and, within a cell, do not depend on where the candidate lies. MLPs (and Lipschitz
monotonic networks, ``lipschitz_mlp``) are explained with shap's
``GradientExplainer`` (expected gradients) on the logit output, in the
preprocessed feature space the network sees (the preprocessing is a monotone
per-feature map, so attributions stay per feature). Every candidate is
explained by the fold model that did not train on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Explanation",
    "explain_autoencoder",
    "explain_bdt",
    "explain_mlp",
    "explain_model",
    "mean_abs_shap",
]


@dataclass
class Explanation:
    """SHAP values of ``n`` candidates.

    ``values`` has shape (n, n_features) (for a bonsai BDT, the features it
    uses, named in ``feature_names``); ``base`` (n,) is the expected model
    output of the model that explained each row, so ``values.sum(1) + base``
    is that model's margin output; ``data`` (n, n_features) the feature values
    in physical units; ``index`` the candidates' rows in the data set.
    """

    values: np.ndarray
    base: np.ndarray
    data: np.ndarray
    index: np.ndarray
    feature_names: list[str]
    output: str


def explain_bdt(clf: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TreeSHAP values and base value (margin) of a :class:`~hepsel.models.bdt.BDTClassifier`
    or a :class:`~hepsel.models.bbdt.BonsaiBDTClassifier` (one column per feature it uses)."""
    values, base = clf.shap_values(X)
    return values, np.full(len(X), base)


def explain_mlp(
    clf: Any,
    X: np.ndarray,
    background: np.ndarray,
    *,
    random_state: int | None = None,
    n_samples: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected-gradients SHAP values of an MLP's logit output.

    ``background`` (n_bg, n_features) in physical units sets the reference
    distribution. The base value is the mean logit over the background, so
    values + base approximate the logit (exactly only in expectation: expected
    gradients are a sampling estimate).
    """
    return _expected_gradients(
        clf, clf.network_, X, background, random_state=random_state, n_samples=n_samples
    )


def explain_autoencoder(
    clf: Any,
    X: np.ndarray,
    background: np.ndarray,
    *,
    random_state: int | None = None,
    n_samples: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected-gradients SHAP values of an autoencoder's score (its reconstruction error).

    ``background`` (n_bg, n_features), in physical units, should be background
    candidates like those the model trained on. The base value is the mean
    score over it, so values + base approximate
    :meth:`~hepsel.models.autoencoder.AutoencoderSelector.decision_function`
    in expectation.
    """
    return _expected_gradients(
        clf, clf.score_module(), X, background, random_state=random_state, n_samples=n_samples
    )


def _expected_gradients(
    clf: Any,
    net: Any,
    X: np.ndarray,
    background: np.ndarray,
    *,
    random_state: int | None,
    n_samples: int,
) -> tuple[np.ndarray, np.ndarray]:
    """shap's GradientExplainer on ``net``, a module of the scaled inputs with one output column."""
    import shap
    import torch

    torch.manual_seed(0 if random_state is None else random_state)
    net.eval()
    dev = next(net.parameters()).device
    z_bg = torch.as_tensor(clf.scaler_.transform(background), dtype=torch.float32, device=dev)
    z = torch.as_tensor(clf.scaler_.transform(X), dtype=torch.float32, device=dev)
    explainer = shap.GradientExplainer(net, z_bg)
    vals = explainer.shap_values(z, nsamples=n_samples, rseed=random_state)
    vals = np.asarray(vals, dtype=np.float64)
    vals = vals.reshape(len(X), -1) if vals.ndim == 3 else vals
    with torch.no_grad():
        base = float(net(z_bg).double().mean().cpu())
    return vals, np.full(len(X), base)


def explain_model(
    kind: str,
    fold_models: list[Any],
    X: np.ndarray,
    fold: np.ndarray,
    index: np.ndarray,
    feature_names: list[str],
    *,
    backgrounds: list[np.ndarray] | None = None,
    random_state: int | None = None,
    n_samples: int = 50,
) -> Explanation:
    """Explain rows ``X`` (with folds ``fold``) by their own fold's model.

    ``backgrounds[k]`` is the reference sample for fold ``k``'s model (MLP
    and autoencoder only), drawn from that model's training folds (for an
    autoencoder, from their background candidates).
    """
    data, names = X, list(feature_names)
    if kind == "bbdt":
        # a bonsai BDT is explained on the features it uses (the others contribute nothing)
        cols = [int(c) for c in fold_models[0].feature_indices_]
        if any(list(clf.feature_indices_) != cols for clf in fold_models):
            msg = "the fold models of a bonsai BDT use different features; they cannot share one explanation"
            raise ValueError(msg)
        data, names = X[:, cols], [names[c] for c in cols]
    values = np.zeros_like(data, dtype=np.float64)
    base = np.zeros(len(X))
    for k, clf in enumerate(fold_models):
        m = fold == k
        if not m.any():
            continue
        if kind in ("bdt", "bbdt"):
            values[m], base[m] = explain_bdt(clf, X[m])
        elif kind in ("mlp", "lipschitz_mlp", "autoencoder"):
            if backgrounds is None:
                msg = f"an {kind} explanation needs a background sample"
                raise ValueError(msg)
            fn = explain_autoencoder if kind == "autoencoder" else explain_mlp
            values[m], base[m] = fn(
                clf, X[m], backgrounds[k], random_state=random_state, n_samples=n_samples
            )
        else:
            msg = f"no SHAP explainer for model kind {kind!r}"
            raise ValueError(msg)
    output = {
        "bdt": "margin (log-odds)",
        "bbdt": "margin (log-odds)",
        "autoencoder": "reconstruction error",
    }.get(kind, "logit")
    return Explanation(values, base, data, index, names, output)


def mean_abs_shap(expl: Explanation) -> dict[str, float]:
    """Mean |SHAP| per feature, in decreasing order."""
    m = np.mean(np.abs(expl.values), axis=0)
    order = np.argsort(-m)
    return {expl.feature_names[i]: float(m[i]) for i in order}
