"""Which feature interacts most with another, judged from SHAP values alone.

A SHAP dependence plot shows one feature's SHAP values against its value;
the spread of the points at a fixed value comes from the other features
(interactions). The feature that explains most of that spread is the one to
colour the points by. This is the idea of shap's
``shap.utils.approximate_interactions``, implemented here with numpy and
scipy's ranks, so that heavy-tailed features (a few huge values) do not
decide the choice.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

__all__ = [
    "interaction_strength",
    "strongest_interaction",
]


def interaction_strength(
    values: ArrayLike, data: ArrayLike, index: int, *, group_size: int = 50
) -> np.ndarray:
    """How much of the spread of feature ``index``'s SHAP values each feature explains, shape (n_features,).

    ``values`` and ``data`` are (n, n_features): SHAP values and feature
    values. The candidates are sorted by feature ``index`` and cut into
    groups of about ``group_size`` neighbours (nearly the same value of the
    feature); within each group the SHAP values' deviation from the group mean
    is the residual spread. For every other feature ``j``, a straight-line fit
    of that residual on the rank of ``j`` within the group gives the explained
    part. The result is the explained sum of squares over all groups divided
    by the residual sum of squares: a fraction in [0, 1], 0 for ``index``
    itself, for a feature constant within the groups and when there is no
    spread. Non-finite values of ``j`` count as its group median.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3))
    >>> shap = np.c_[X[:, 0] * (1 + X[:, 2]), X[:, 1], X[:, 2]]
    >>> int(np.argmax(interaction_strength(shap, X, 0)))
    2
    """
    v = np.asarray(values, dtype=float)
    d = np.asarray(data, dtype=float)
    if v.ndim != 2 or v.shape != d.shape:
        msg = f"values and data must be 2-d arrays of one shape; got {v.shape} and {d.shape}"
        raise ValueError(msg)
    n_features = d.shape[1]
    if not 0 <= index < n_features:
        msg = f"feature index {index} out of range for {n_features} features"
        raise ValueError(msg)
    x, s = d[:, index], v[:, index]
    ok = np.isfinite(x) & np.isfinite(s)
    order = np.flatnonzero(ok)[np.argsort(x[ok], kind="stable")]
    n_groups = max(1, len(order) // max(group_size, 3))
    explained = np.zeros(n_features)
    total = 0.0
    for group in np.array_split(order, n_groups):
        if len(group) < 3:
            continue
        r = s[group] - s[group].mean()
        ss = float(r @ r)
        if ss <= 0:
            continue
        total += ss
        other = d[group]
        bad = ~np.isfinite(other)
        if bad.any():
            other = other.copy()
            for j in np.flatnonzero(bad.any(axis=0)):
                fin = ~bad[:, j]
                other[~fin, j] = np.median(other[fin, j]) if fin.any() else 0.0
        z = rankdata(other, axis=0)
        z -= z.mean(axis=0)
        zz = np.einsum("ij,ij->j", z, z)
        zr = z.T @ r
        with np.errstate(invalid="ignore", divide="ignore"):
            explained += np.where(zz > 0, zr**2 / zz, 0.0)
    explained[index] = 0.0
    return explained / total if total > 0 else np.zeros(n_features)


def strongest_interaction(
    values: ArrayLike, data: ArrayLike, index: int, *, group_size: int = 50
) -> int | None:
    """The feature that explains most of the spread of feature ``index``'s SHAP values, or None.

    The largest :func:`interaction_strength`, if it is at least twice what a
    feature unrelated to the SHAP values explains by chance (``1 / (m - 1)``
    in a group of ``m``); None otherwise, and for a single feature.
    """
    strength = interaction_strength(values, data, index, group_size=group_size)
    n = int(np.sum(np.isfinite(np.asarray(data, dtype=float)[:, index])))
    m = min(max(group_size, 3), n)
    if strength.size < 2 or m < 3:
        return None
    best = int(np.argmax(strength))
    return best if strength[best] >= 2.0 / (m - 1) else None
