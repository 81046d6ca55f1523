from __future__ import annotations

import numpy as np
import pytest

from hepsel.models.lipschitz import LipschitzMLPClassifier
from hepsel.models.mlp import MLPClassifier
from hepsel.stats.decorrelation import distance_correlation, distance_correlation_np

torch = pytest.importorskip("torch")
dcor = pytest.importorskip("dcor")


@pytest.mark.parametrize("relation", ["independent", "linear", "quadratic"])
def test_unweighted_matches_dcor(relation):
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    noise = rng.normal(size=300)
    y = {"independent": noise, "linear": x + 0.5 * noise, "quadratic": x**2 + 0.3 * noise}[relation]
    ours = distance_correlation(torch.as_tensor(x), torch.as_tensor(y))
    np.testing.assert_allclose(float(ours), dcor.distance_correlation(x, y), rtol=1e-10)
    ours2 = distance_correlation(torch.as_tensor(x), torch.as_tensor(y), squared=True)
    np.testing.assert_allclose(float(ours2), dcor.distance_correlation_sqr(x, y), rtol=1e-10)


def test_integer_weights_equal_repeated_rows():
    # dcor has no weights: a row of weight k is the same as the row repeated k times
    rng = np.random.default_rng(2)
    x = rng.normal(size=120)
    y = np.sin(2 * x) + 0.4 * rng.normal(size=120)
    k = rng.integers(0, 5, size=120)
    expected = dcor.distance_correlation(np.repeat(x, k), np.repeat(y, k))
    ours = distance_correlation(
        torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(k, dtype=torch.float64)
    )
    np.testing.assert_allclose(float(ours), expected, rtol=1e-10)
    # weights are normalised: scaling them changes nothing
    np.testing.assert_allclose(distance_correlation_np(x, y, 2.5 * k), expected, rtol=1e-10)


def test_gradient_and_degenerate_inputs():
    x = torch.linspace(0, 1, 50, dtype=torch.float64, requires_grad=True)
    y = (x.detach() ** 2).clone()
    d = distance_correlation(x, y, squared=True)
    d.backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert (
        float(
            distance_correlation(
                torch.ones(10, dtype=torch.float64), torch.randn(10, dtype=torch.float64)
            )
        )
        == 0.0
    )
    assert float(distance_correlation(torch.randn(10), torch.randn(10), torch.zeros(10))) == 0.0
    assert np.isnan(distance_correlation_np([1.0], [2.0]))


def _sculpting_toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background whose discriminating feature 0 carries the spectator; feature 1 separates without it."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(int)
    mass = np.where(y == 1, rng.normal(5300.0, 30.0, n), rng.uniform(4800.0, 5800.0, n))
    x0 = np.where(
        y == 1, rng.normal(1.0, 1.0, n), (mass - 5300.0) / 300.0 + 0.5 * rng.normal(size=n)
    )
    x1 = rng.normal(np.where(y == 1, 1.0, -0.5), 1.0)
    return np.column_stack([x0, x1]), y, mass


@pytest.mark.parametrize(
    "cls", [MLPClassifier, LipschitzMLPClassifier], ids=["mlp", "lipschitz_mlp"]
)
def test_disco_lowers_background_distance_correlation(cls):
    X, y, mass = _sculpting_toy(4000, 3)
    X_test, y_test, mass_test = _sculpting_toy(3000, 4)
    fast = {
        "hidden_layers": (16,),
        "batch_size": 512,
        "max_epochs": 15,
        "device": "cpu",
        "n_jobs": 1,
        "random_state": 0,
    }
    bkg = y_test == 0
    result = {}
    for strength in (0.0, 30.0):
        clf = cls(**fast, decorrelation_strength=strength).fit(X, y, decorrelate_with=mass)
        score = clf.predict_proba(X_test)[:, 1]
        result[strength] = dcor.distance_correlation(score[bkg], mass_test[bkg])
        assert clf.history_["val_loss"]
    assert result[0.0] > 0.3  # the toy sculpts without the penalty
    assert result[30.0] < 0.5 * result[0.0]


def test_disco_needs_the_spectator():
    X, y, mass = _sculpting_toy(200, 5)
    with pytest.raises(ValueError, match="needs the spectator"):
        MLPClassifier(decorrelation_strength=1.0, max_epochs=1, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="decorrelate_with must have shape"):
        MLPClassifier(max_epochs=1, device="cpu").fit(X, y, decorrelate_with=mass[:10])
    with pytest.raises(ValueError, match="decorrelation_strength must be"):
        MLPClassifier(decorrelation_strength=-1.0, max_epochs=1, device="cpu").fit(
            X, y, decorrelate_with=mass
        )
