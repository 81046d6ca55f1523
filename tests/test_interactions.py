"""The feature a SHAP dependence plot is coloured by: the one that explains its spread."""

from __future__ import annotations

import numpy as np
import pytest

from hepsel.explain.interactions import interaction_strength, strongest_interaction


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 3000
    X = rng.normal(size=(n, 4))
    X[:, 3] = np.exp(3 * rng.normal(size=n))  # heavy-tailed, no interaction
    shap = np.c_[X[:, 0] * (1 + 0.8 * X[:, 2]), X[:, 1], 0.5 * X[:, 2], 0.01 * X[:, 3]]
    return shap, X


def test_finds_the_interacting_feature_as_shaps_heuristic_does() -> None:
    shap_lib = pytest.importorskip("shap")
    values, X = _data()
    assert strongest_interaction(values, X, 0) == 2
    assert int(shap_lib.utils.approximate_interactions(0, values, X)[0]) == 2


def test_strength_is_a_fraction_and_ignores_the_feature_itself() -> None:
    values, X = _data()
    s = interaction_strength(values, X, 0)
    assert s.shape == (4,)
    assert s[0] == 0
    assert np.all((s >= 0) & (s <= 1))
    assert s[2] > 0.5 > s[1] + s[3]


def test_nan_values_and_degenerate_cases() -> None:
    values, X = _data()
    X = X.copy()
    X[::7, 2] = np.nan
    assert strongest_interaction(values, X, 0) == 2
    # a single feature, or features that explain no more than chance: nothing to colour by
    assert strongest_interaction(values[:, :1], X[:, :1], 0) is None
    additive = np.nan_to_num(X[:, :2])
    assert strongest_interaction(additive, additive, 0) is None


def test_bad_shapes_are_refused() -> None:
    values, X = _data()
    with pytest.raises(ValueError, match="one shape"):
        interaction_strength(values, X[:, :2], 0)
    with pytest.raises(ValueError, match="out of range"):
        interaction_strength(values, X, 9)
