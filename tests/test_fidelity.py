from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.metrics import roc_auc_score

from hepsel.fidelity import (
    baseline_distances,
    classifier_two_sample_test,
    correlation_difference,
    feature_distances,
    fidelity_report,
)


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    cov = [[1.0, 0.5], [0.5, 1.0]]
    real = rng.multivariate_normal([0.0, 0.0], cov, 2000)
    same = rng.multivariate_normal([0.0, 0.0], cov, 2000)
    shifted = rng.multivariate_normal([1.0, 0.0], [[1.0, -0.5], [-0.5, 1.0]], 2000)
    return real, same, shifted


def test_distances_match_scipy(samples):
    real, _, shifted = samples
    d = feature_distances(real, shifted)
    for j in range(2):
        assert d["wasserstein"][j] == pytest.approx(wasserstein_distance(real[:, j], shifted[:, j]))
        assert d["ks"][j] == pytest.approx(ks_2samp(real[:, j], shifted[:, j]).statistic)


def test_weighted_distances_match_scipy_and_integer_weights(samples):
    real, _, shifted = samples
    w = np.random.default_rng(1).integers(0, 3, real.shape[0]).astype(float)
    d = feature_distances(real, shifted, real_weight=w)
    repeated = np.repeat(real, w.astype(int), axis=0)
    for j in range(2):
        assert d["wasserstein"][j] == pytest.approx(
            wasserstein_distance(real[:, j], shifted[:, j], u_weights=w)
        )
        assert d["ks"][j] == pytest.approx(ks_2samp(repeated[:, j], shifted[:, j]).statistic)


def test_identical_distributions_look_like_baseline(samples):
    real, same, _ = samples
    d = feature_distances(real, same)
    base = baseline_distances(real, 0)
    assert (d["wasserstein"] < 3 * base["wasserstein"]).all()
    assert classifier_two_sample_test(real, same, random_state=0)["auc"] == pytest.approx(0.5, abs=0.05)


def test_shifted_distribution_is_detected(samples):
    """The two-sample classifier gets close to the AUC of the exact likelihood ratio (Neyman-Pearson), never above it."""
    real, _, shifted = samples
    result = classifier_two_sample_test(real, shifted, random_state=0)
    a = stats.multivariate_normal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]])
    b = stats.multivariate_normal([1.0, 0.0], [[1.0, -0.5], [-0.5, 1.0]])
    rng = np.random.default_rng(1)
    x = np.vstack([a.rvs(100_000, random_state=rng), b.rvs(100_000, random_state=rng)])
    optimal = roc_auc_score(np.r_[np.ones(100_000), np.zeros(100_000)], a.logpdf(x) - b.logpdf(x))
    # statistical error of an AUC from 2000 + 2000 events: ~0.007
    assert optimal - 0.04 < result["auc"] < optimal + 0.015
    assert result["auc_std"] < 0.03
    difference, max_abs = correlation_difference(real, shifted)
    np.testing.assert_allclose(difference, np.corrcoef(shifted.T) - np.corrcoef(real.T), atol=1e-12)
    assert max_abs == pytest.approx(np.abs(difference).max())


def test_constant_feature_has_zero_correlation():
    a = np.column_stack([np.arange(10.0), np.ones(10)])
    difference, max_abs = correlation_difference(a, a)
    assert max_abs == 0.0
    assert np.isfinite(difference).all()


def test_report_is_json(samples):
    real, same, _ = samples
    report = fidelity_report(real, same, ["pt", "eta"], 0)
    json.dumps(report)
    assert set(report["features"]) == {"pt", "eta"}
    assert report["c2st_auc"] == pytest.approx(0.5, abs=0.05)  # two samples of one distribution
    with pytest.raises(ValueError, match="feature_names"):
        fidelity_report(real, same, ["pt"], 0)


def test_weighted_two_sample_test_compares_with_the_weighted_distribution():
    """Real events weighted to look like N(0.5, 1) vs generated N(0.5, 1): indistinguishable only with the weights."""
    rng = np.random.default_rng(4)
    real = rng.normal(0.0, 1.0, (6000, 1))
    # exp(0.5 x) turns N(0, 1) into N(0.5, 1)
    weight = np.exp(0.5 * real[:, 0] - 0.125)
    generated = rng.normal(0.5, 1.0, (6000, 1))
    unweighted = classifier_two_sample_test(real, generated, random_state=0)["auc"]
    weighted = classifier_two_sample_test(real, generated, random_state=0, real_weight=weight)["auc"]
    assert unweighted > 0.6
    assert weighted == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match="non-negative"):
        classifier_two_sample_test(real, generated, random_state=0, real_weight=-weight)
