"""Global rankings: permutation importance against pure noise, xgboost gain, Kendall's tau against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau
from sklearn.metrics import roc_auc_score

from hepsel.explain.rankings import kendall_table, permutation_importance, xgboost_gain
from hepsel.models.bdt import BDTClassifier
from hepsel.models.fisher import FisherClassifier


@pytest.fixture(scope="module")
def noisy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x0 separates the classes, x1 is pure noise, x2 separates weakly."""
    rng = np.random.default_rng(11)
    n = 6000
    y = rng.integers(0, 2, n)
    X = np.column_stack(
        [rng.normal(size=n) + 1.0 * y, rng.normal(size=n), rng.normal(size=n) + 0.3 * y]
    )
    return X, y, np.arange(n) % 3


@pytest.mark.parametrize("kind", ["fisher", "bdt"])
def test_noise_feature_has_no_permutation_importance(
    noisy: tuple[np.ndarray, np.ndarray, np.ndarray], kind: str
) -> None:
    X, y, fold = noisy

    def make(k: int) -> object:
        m = (
            FisherClassifier()
            if kind == "fisher"
            else BDTClassifier(n_estimators=40, max_depth=2, n_jobs=1, random_state=k)
        )
        return m.fit(X[fold != k], y[fold != k])

    models = [make(k) for k in range(3)]
    res = permutation_importance(models, X, y, fold, n_repeats=6, random_state=0)
    held_out = np.concatenate([models[k].decision_function(X[fold == k]) for k in range(3)])
    order = np.concatenate([np.flatnonzero(fold == k) for k in range(3)])
    assert res["auc"] == pytest.approx(roc_auc_score(y[order], held_out))
    mean, std = np.asarray(res["mean"]), np.asarray(res["std"])
    assert abs(mean[1]) <= 3 * std[1] + 1e-3  # compatible with zero within its spread
    assert mean[0] > 10 * std[0] and mean[0] > 0.05  # the real feature is not
    assert mean[0] > mean[2] > abs(mean[1])


def test_permutation_importance_needs_a_spread(
    noisy: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, y, fold = noisy
    models = [FisherClassifier().fit(X, y)] * 3
    with pytest.raises(ValueError, match="n_repeats must be at least 2"):
        permutation_importance(models, X, y, fold, n_repeats=1)


def test_xgboost_gain(noisy: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    X, y, _ = noisy
    models = [
        BDTClassifier(n_estimators=20, max_depth=2, n_jobs=1, random_state=k).fit(X, y)
        for k in range(2)
    ]
    gain = xgboost_gain(models, 3)
    assert gain is not None
    assert gain.sum() == pytest.approx(1.0)
    assert np.argmax(gain) == 0
    assert xgboost_gain([FisherClassifier().fit(X, y)], 3) is None


def test_kendall_table_matches_scipy() -> None:
    a, b, c = [3.0, 2.0, 1.0, 0.5], [2.9, 2.5, 0.1, 0.6], [1.0, 1.0, 1.0, 1.0]
    table = kendall_table({"a": a, "b": b, "c": c})
    assert table["a vs b"]["tau"] == pytest.approx(kendalltau(a, b).statistic)
    assert table["a vs b"]["tau"] == pytest.approx(4 / 6)  # one discordant pair of six
    assert np.isnan(table["a vs c"]["tau"])
    assert set(table) == {"a vs b", "a vs c", "b vs c"}
