"""Global feature rankings of a cross-trained model, by several methods, and how far they agree.

* permutation importance: the drop in the AUC of the held-out scores (each
  candidate scored by the fold model that did not train on it) when one
  feature is shuffled within each test fold, with its spread over repetitions;
* xgboost's total gain (BDTs, bonsai BDTs), averaged over the fold models;
* mean |SHAP| and mean |LIME weight| come from :mod:`hepsel.explain.local`;
* Kendall's tau between every pair of rankings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

__all__ = ["kendall_table", "permutation_importance", "xgboost_gain"]


def _auc(y: np.ndarray, s: np.ndarray, w: np.ndarray | None) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s, sample_weight=w))


def permutation_importance(
    fold_models: Sequence[Any],
    X: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    *,
    weight: np.ndarray | None = None,
    n_repeats: int = 5,
    random_state: int | None = None,
) -> dict[str, np.ndarray | float]:
    """Drop in held-out AUC when each feature is permuted within each test fold.

    ``X`` (n, n_features), labels ``y`` (n,), folds ``fold`` (n,): row ``i``
    is scored by ``fold_models[fold[i]].decision_function``. Returns
    ``auc`` (unpermuted), ``drop`` (n_repeats, n_features), ``mean`` and
    ``std`` (over repetitions) of the drop per feature.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    fold = np.asarray(fold)
    if n_repeats < 2:
        msg = f"n_repeats must be at least 2 to give a spread, got {n_repeats}"
        raise ValueError(msg)
    if len(np.unique(y)) != 2:
        msg = "permutation importance needs both classes among the test candidates"
        raise ValueError(msg)
    rng = np.random.default_rng(random_state)
    members = [np.flatnonzero(fold == k) for k in range(len(fold_models))]

    def score(Z: np.ndarray) -> np.ndarray:
        s = np.empty(len(Z))
        for k, rows in enumerate(members):
            if len(rows):
                s[rows] = fold_models[k].decision_function(Z[rows])
        return np.clip(s, -50.0, 50.0)

    base = _auc(y, score(X), weight)
    drop = np.zeros((n_repeats, X.shape[1]))
    for r in range(n_repeats):
        for j in range(X.shape[1]):
            Z = X.copy()
            for rows in members:
                Z[rows, j] = X[rng.permutation(rows), j]
            drop[r, j] = base - _auc(y, score(Z), weight)
    return {"auc": base, "drop": drop, "mean": drop.mean(axis=0), "std": drop.std(axis=0, ddof=1)}


def xgboost_gain(fold_models: Sequence[Any], n_features: int) -> np.ndarray | None:
    """Total gain per feature (n_features,), normalised to sum 1 and averaged over the fold models.

    None for models without an xgboost booster. A bonsai BDT's gain is that of
    its internal BDT, mapped back to the features it uses.
    """
    out = np.zeros(n_features)
    for clf in fold_models:
        booster, cols = None, list(range(n_features))
        if hasattr(clf, "booster_"):
            booster = clf.booster_
        elif hasattr(clf, "feature_indices_") and hasattr(clf, "_inner"):
            try:
                booster = clf._inner().booster_
            except RuntimeError:
                return None
            cols = [int(c) for c in clf.feature_indices_]
        if booster is None:
            return None
        g = np.zeros(n_features)
        for key, v in booster.get_score(importance_type="total_gain").items():
            g[cols[int(str(key).lstrip("f"))]] = float(v)
        out += g / g.sum() if g.sum() > 0 else g
    return out / len(fold_models)


def kendall_table(
    rankings: Mapping[str, Sequence[float] | np.ndarray],
) -> dict[str, dict[str, float]]:
    """Kendall's tau (and its p-value) between every pair of importance vectors (same feature order).

    Returns ``{"a vs b": {"tau": ..., "pvalue": ...}}``; NaN where a vector is constant.
    """
    from scipy.stats import kendalltau

    out: dict[str, dict[str, float]] = {}
    for a, b in combinations(rankings, 2):
        va, vb = np.asarray(rankings[a], dtype=float), np.asarray(rankings[b], dtype=float)
        if np.ptp(va) == 0 or np.ptp(vb) == 0:
            out[f"{a} vs {b}"] = {"tau": float("nan"), "pvalue": float("nan")}
            continue
        res: Any = kendalltau(va, vb)
        out[f"{a} vs {b}"] = {"tau": float(res.statistic), "pvalue": float(res.pvalue)}
    return out
