from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.metrics import roc_auc_score

from hepsel.exceptions import NonFiniteError
from hepsel.stats.fidelity import (
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
    assert classifier_two_sample_test(real, same, random_state=0)["auc"] == pytest.approx(
        0.5, abs=0.05
    )


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
    weighted = classifier_two_sample_test(real, generated, random_state=0, real_weight=weight)[
        "auc"
    ]
    assert unweighted > 0.6
    assert weighted == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match="non-negative"):
        classifier_two_sample_test(real, generated, random_state=0, real_weight=-weight)


# -- weighted real events: every figure compares with the weighted distribution -------------


def _exp_weighted(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Real N(0, 1) with weights exp(x): the weighted distribution is N(1, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1))
    return x, np.exp(x[:, 0]), rng


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The halves fidelity_report and baseline_distances use: the seed's first permutation."""
    first, second = np.array_split(np.random.RandomState(seed).permutation(n), 2)
    return first, second


def test_wasserstein_ratio_under_shape_changing_weights():
    """A generator that ignores the weights (N(0, 1)) is far worse than the baseline; a correct one (N(1, 1)) about as good."""
    ignoring, correct = [], []
    for seed in range(24):
        x, w, rng = _exp_weighted(seed, 4000)
        correct.append(
            fidelity_report(x, rng.normal(1.0, 1.0, (4000, 1)), ["x"], seed, real_weight=w)[
                "mean_wasserstein_ratio"
            ]
        )
        ignoring.append(
            fidelity_report(x, rng.normal(0.0, 1.0, (4000, 1)), ["x"], seed, real_weight=w)[
                "mean_wasserstein_ratio"
            ]
        )
    # W1(N(0,1), N(1,1)) = 1 against a baseline of ~0.08: ratios of ~12
    assert min(ignoring) > 4
    # the ratio of two noisy distances scatters by ~50 % per sample (heavy weights); its median is ~1
    assert 0.75 < np.median(correct) < 1.35
    assert np.median(ignoring) > 6 * np.median(correct)


def _weighted_baseline_expectation(n: int) -> float:
    """Asymptotic E[W1] between the two weighted halves of n events of N(0, 1) weighted by exp(x).

    The weighted ECDF of m events, F_m(t) = sum w 1{x <= t} / sum w, is asymptotically
    normal around G(t) = Phi(t - 1) with variance E[w^2 (1{x <= t} - G(t))^2] / (m E[w]^2)
    = e/m * E_{N(2,1)}[(1{x <= t} - G(t))^2]; E|N(0, s)| = s sqrt(2/pi), and
    E W1 = integral of E|F_A - F_B| over t.
    """
    from scipy import integrate

    def var_one(t: float, m: float) -> float:
        g, p = stats.norm.cdf(t - 1), stats.norm.cdf(t - 2)
        return np.e / m * (p * (1 - g) ** 2 + (1 - p) * g**2)

    integral = integrate.quad(lambda t: np.sqrt(2 * var_one(t, n / 2)), -12, 14, limit=200)[0]
    return float(np.sqrt(2 / np.pi) * integral)


def test_weighted_baseline_matches_its_analytic_expectation():
    n, seeds = 4000, range(300)
    b = np.array(
        [
            baseline_distances(x, s, real_weight=w)["wasserstein"][0]
            for s in seeds
            for x, w, _ in [_exp_weighted(s, n)]
        ]
    )
    expected = _weighted_baseline_expectation(n)
    error = b.std(ddof=1) / np.sqrt(b.size)
    # statistical error of the mean (~3 %) plus a few % for the finite-sample (non-asymptotic) bias
    assert abs(b.mean() - expected) < 3 * error + 0.05 * expected
    # an unweighted half B would sit at W1(N(1,1), N(0,1)) = 1
    assert b.mean() < 0.2


def test_baseline_is_the_weighted_distance_between_the_two_halves():
    """Both halves weighted, checked against scipy and against events repeated by integer weights."""
    rng = np.random.default_rng(5)
    real = rng.normal(size=(501, 2))
    w = rng.integers(0, 4, 501).astype(float)
    first, second = _split(501, 3)
    base = baseline_distances(real, 3, real_weight=w)
    report = fidelity_report(real, rng.normal(size=(501, 2)), ["a", "b"], 3, real_weight=w)
    for j, name in enumerate(["a", "b"]):
        a, b = real[first, j], real[second, j]
        expected_w1 = wasserstein_distance(a, b, u_weights=w[first], v_weights=w[second])
        assert base["wasserstein"][j] == pytest.approx(expected_w1, rel=1e-12)
        assert report["features"][name]["baseline_wasserstein"] == pytest.approx(
            expected_w1, rel=1e-12
        )
        ra, rb = np.repeat(a, w[first].astype(int)), np.repeat(b, w[second].astype(int))
        assert base["wasserstein"][j] == pytest.approx(wasserstein_distance(ra, rb), rel=1e-9)
        assert base["ks"][j] == pytest.approx(ks_2samp(ra, rb).statistic, abs=1e-12)
        assert report["features"][name]["baseline_ks"] == pytest.approx(
            ks_2samp(ra, rb).statistic, abs=1e-12
        )
    # unweighted: the plain distances between the halves
    plain = baseline_distances(real, 3)
    assert plain["wasserstein"][0] == pytest.approx(
        wasserstein_distance(real[first, 0], real[second, 0]), rel=1e-12
    )
    assert plain["ks"][0] == pytest.approx(
        ks_2samp(real[first, 0], real[second, 0]).statistic, abs=1e-12
    )


def test_generated_sample_is_as_large_as_the_weighted_half_is_worth():
    x, w, rng = _exp_weighted(2, 3000)
    gen = rng.normal(1.0, 1.0, (3000, 1))
    _, second = _split(3000, 7)
    report = fidelity_report(x, gen, ["x"], 7, real_weight=w)
    kish = w[second].sum() ** 2 / (w[second] ** 2).sum()
    assert report["n_generated_compared"] == round(kish)
    assert (
        fidelity_report(x, gen, ["x"], 7)["n_generated_compared"] == second.size
    )  # unweighted: half B's size
    assert (
        fidelity_report(x, gen[:10], ["x"], 7)["n_generated_compared"] == 10
    )  # never more than there are


def test_weighted_correlation_of_an_exact_copy_is_zero():
    """Generated = real events repeated by their integer weights: the same weighted distribution, difference 0."""
    rng = np.random.default_rng(8)
    real = rng.normal(size=(2000, 3))
    # weights that make features 0 and 1 correlated
    w = np.where(real[:, 0] * real[:, 1] > 0, 4.0, 1.0)
    copy = np.repeat(real, w.astype(int), axis=0)
    difference, max_abs = correlation_difference(real, copy, real_weight=w)
    assert max_abs < 1e-12
    np.testing.assert_allclose(difference, 0.0, atol=1e-12)
    assert correlation_difference(real, copy)[1] > 0.3  # what ignoring the weights reported
    # the weighted Pearson matrix is numpy's with aweights
    cov = np.cov(real.T, aweights=w)
    reference = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    other = rng.normal(size=(500, 3))
    np.testing.assert_allclose(
        correlation_difference(real, other, real_weight=w)[0],
        np.corrcoef(other.T) - reference,
        atol=1e-12,
    )


def test_weighted_correlation_with_known_answer():
    """N(0, I) weighted by exp(0.3 x0 x1) is a Gaussian with correlation 0.3; a generator drawing it scores ~0."""
    rng = np.random.default_rng(9)
    real = rng.normal(size=(40_000, 2))
    w = np.exp(0.3 * real[:, 0] * real[:, 1])
    generated = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.3], [0.3, 1.0]], 40_000)
    assert correlation_difference(real, generated, real_weight=w)[1] < 0.03
    assert correlation_difference(real, generated)[1] > 0.25
    report = fidelity_report(real[:6000], generated[:6000], ["a", "b"], 0, real_weight=w[:6000])
    assert report["max_abs_correlation_difference"] < 0.06


@pytest.mark.parametrize("bad", ["negative", "zero"])
def test_negative_or_zero_weights_are_refused(bad: str):
    """A signed measure has no CDF; clipping would bias the reference: refuse, pointing to cell resampling."""
    x, w, rng = _exp_weighted(0, 200)
    gen = rng.normal(size=(200, 1))
    if bad == "negative":
        w[:3] = -0.5
        match = "3 negative values.*cell_resample"
    else:
        w[:] = 0.0
        match = "all zero"
    calls = [
        lambda: feature_distances(x, gen, real_weight=w),
        lambda: feature_distances(x, gen, generated_weight=w),
        lambda: baseline_distances(x, 0, real_weight=w),
        lambda: correlation_difference(x, gen, real_weight=w),
        lambda: fidelity_report(x, gen, ["x"], 0, real_weight=w),
        lambda: classifier_two_sample_test(x, gen, random_state=0, real_weight=w),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=match):
            call()


# -- the report, figure by figure, against independent computations ---------------------------


def _c2st_reference(real, generated, rng, weight=None):
    """classifier_two_sample_test written out: 2 stratified folds, 100 trees of depth 3, learning rate 0.1."""
    from sklearn.model_selection import StratifiedKFold
    from xgboost import XGBClassifier

    X = np.vstack([real, generated])
    y = np.r_[np.ones(len(real)), np.zeros(len(generated))]
    w = (
        np.ones(y.size)
        if weight is None
        else np.r_[weight / weight.mean(), np.ones(len(generated))]
    )
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=rng.randint(2**31 - 1))
    aucs = []
    for train, test in folds.split(X, y):
        model = XGBClassifier(
            n_estimators=100,
            max_depth=3,
            learning_rate=0.1,
            random_state=int(rng.randint(2**31 - 1)),
        )
        model.fit(X[train], y[train], sample_weight=w[train])
        aucs.append(
            roc_auc_score(y[test], model.predict_proba(X[test])[:, 1], sample_weight=w[test])
        )
    return float(np.mean(aucs)), float(np.std(aucs))


@pytest.mark.parametrize("weighted", [False, True])
def test_report_figures_equal_independent_computations(weighted: bool):
    """The seed draws, in order, the split into halves, the generated subsample and the two-sample test."""
    rng = np.random.default_rng(11)
    real = rng.multivariate_normal(
        [0.0, 1.0, 2.0], [[1.0, 0.4, 0.0], [0.4, 1.0, -0.3], [0.0, -0.3, 1.0]], 600
    )
    generated = rng.normal(size=(700, 3)) * [1.0, 1.2, 0.9] + [0.1, 1.0, 2.0]
    w = rng.uniform(0.2, 2.0, 600) if weighted else None
    report = fidelity_report(real, generated, ["a", "b", "c"], 4, real_weight=w)

    draws = np.random.RandomState(4)
    first, second = np.array_split(draws.permutation(600), 2)
    wa = None if w is None else w[first]
    wb = None if w is None else w[second]
    n_gen = 300 if w is None else round(wb.sum() ** 2 / (wb**2).sum())
    compared = generated[draws.permutation(700)[:n_gen]]
    assert report["n_generated_compared"] == n_gen
    ratios = []
    for j, name in enumerate("abc"):
        f = report["features"][name]
        w1 = wasserstein_distance(real[first, j], compared[:, j], u_weights=wa)
        base = wasserstein_distance(real[first, j], real[second, j], u_weights=wa, v_weights=wb)
        assert f["wasserstein"] == pytest.approx(w1, rel=1e-12)
        assert f["baseline_wasserstein"] == pytest.approx(base, rel=1e-12)
        assert f["wasserstein_ratio"] == pytest.approx(w1 / base, rel=1e-12)
        if w is None:
            assert f["ks"] == pytest.approx(
                ks_2samp(real[first, j], compared[:, j]).statistic, abs=1e-12
            )
        ratios.append(w1 / base)
    assert report["mean_wasserstein_ratio"] == pytest.approx(np.mean(ratios), rel=1e-12)
    cov = np.cov(real.T, aweights=w)
    expected = np.corrcoef(generated.T) - cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(report["correlation_difference"], expected, atol=1e-12)
    assert report["max_abs_correlation_difference"] == pytest.approx(
        np.abs(expected).max(), abs=1e-12
    )
    auc, auc_std = _c2st_reference(real, generated, draws, w)
    assert report["c2st_auc"] == pytest.approx(auc, abs=1e-12)
    assert report["c2st_auc_std"] == pytest.approx(auc_std, abs=1e-12)
    assert (report["n_real"], report["n_generated"]) == (600, 700)


def test_two_sample_test_is_the_documented_classifier():
    rng = np.random.default_rng(12)
    real, generated = rng.normal(size=(400, 2)), rng.normal(0.3, 1.0, (500, 2))
    w = rng.uniform(0.1, 3.0, 400)
    result = classifier_two_sample_test(real, generated, random_state=5, real_weight=w)
    auc, auc_std = _c2st_reference(real, generated, np.random.RandomState(5), w)
    assert result == {
        "auc": pytest.approx(auc, abs=1e-12),
        "auc_std": pytest.approx(auc_std, abs=1e-12),
        "n_folds": 2,
    }
    with pytest.raises(ValueError, match="n_folds must be at least 2, got 1"):
        classifier_two_sample_test(real, generated, random_state=5, n_folds=1)


def test_features_without_spread_have_no_ratio():
    """A feature constant in the real events has a zero baseline: its ratio is None (0/0 or x/0), not a warning."""
    rng = np.random.default_rng(13)
    real = np.column_stack([rng.normal(size=300), np.full(300, 2.0), np.full(300, 2.0)])
    generated = np.column_stack([rng.normal(size=300), np.full(300, 2.0), np.full(300, 3.0)])
    report = fidelity_report(real, generated, ["x", "same", "shifted"], 0)
    assert report["features"]["same"]["wasserstein_ratio"] is None  # 0 / 0
    assert report["features"]["shifted"]["wasserstein_ratio"] is None  # 1 / 0
    assert report["features"]["shifted"]["wasserstein"] == pytest.approx(1.0)
    assert report["mean_wasserstein_ratio"] == pytest.approx(
        report["features"]["x"]["wasserstein_ratio"]
    )
    only_constant = fidelity_report(real[:, 1:], generated[:, 1:], ["same", "shifted"], 0)
    assert only_constant["mean_wasserstein_ratio"] is None


def test_one_dominant_weight_leaves_one_generated_event():
    rng = np.random.default_rng(14)
    real = rng.normal(size=(100, 1))
    w = np.ones(100)
    _, second = _split(100, 0)
    w[second[0]] = 1e9  # half B is worth one event
    report = fidelity_report(real, rng.normal(size=(100, 1)), ["x"], 0, real_weight=w)
    assert report["n_generated_compared"] == 1
    w_zero = np.ones(100)
    w_zero[second] = 0.0
    with pytest.raises(
        ValueError, match="one random half of the held-out events has zero total weight"
    ):
        baseline_distances(real, 0, real_weight=w_zero)


def test_correlation_edge_cases():
    rng = np.random.default_rng(15)
    x = rng.normal(size=101)
    # a feature constant over the weighted events is uncorrelated, whatever its unweighted events do
    real = np.column_stack([x, np.where(np.arange(101) < 50, 5.17, x)])
    w = np.r_[rng.uniform(0.5, 2.0, 50), np.zeros(51)]
    generated = np.column_stack([x, 2 * x + rng.normal(size=101)])
    difference, _ = correlation_difference(real, generated, real_weight=w)
    np.testing.assert_allclose(difference, np.corrcoef(generated.T) - np.eye(2), atol=1e-12)
    # perfectly (anti)correlated features stay within [-1, 1] despite rounding: the difference is exactly 2
    x = np.random.default_rng(1).normal(size=101)
    difference, max_abs = correlation_difference(
        np.column_stack([x, 3.7 * x + 1]), np.column_stack([x, -3.7 * x + 1])
    )
    assert max_abs == 2.0
    assert difference[0, 1] == -2.0
    with pytest.raises(NonFiniteError, match="real_holdout"):
        baseline_distances(np.array([[np.nan], [1.0]]), 0)


def test_input_shapes_and_types():
    rng = np.random.default_rng(16)
    x, y = rng.normal(size=50), rng.normal(size=60)
    # one feature as a 1-d array
    d = feature_distances(x, y)
    assert d["wasserstein"].shape == (1,)
    assert d["wasserstein"][0] == pytest.approx(wasserstein_distance(x, y))
    # boolean and integer features are numbers
    flags = np.column_stack([x > 0, x > 1])
    other = np.column_stack([y > 0, y > 0.5])
    difference, _ = correlation_difference(flags, other)
    np.testing.assert_allclose(
        difference,
        np.corrcoef(other.T.astype(float)) - np.corrcoef(flags.T.astype(float)),
        atol=1e-12,
    )
    assert feature_distances(flags, other)["wasserstein"][0] == pytest.approx(
        abs((x > 0).mean() - (y > 0).mean())
    )
    with pytest.raises(
        ValueError, match=r"non-empty array of shape \(n_events, n_features\), got shape \(0, 2\)"
    ):
        feature_distances(np.zeros((0, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 2\)"):
        feature_distances(np.zeros((2, 2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"generated_weight has 3 entries but generated has 60"):
        feature_distances(x, y, generated_weight=np.ones(3))
    # two events split into two halves of one; one cannot be split
    assert baseline_distances(np.array([[0.0], [2.0]]), 0)["wasserstein"][0] == pytest.approx(2.0)
    with pytest.raises(
        ValueError, match="real_holdout needs at least 2 events to split into halves"
    ):
        baseline_distances(np.array([[0.0]]), 0)
    with pytest.raises(
        ValueError, match="real_holdout needs at least 2 events to split into halves"
    ):
        fidelity_report(np.array([[0.0]]), np.array([[0.0]]), ["x"], 0)


def test_error_messages_name_the_input():
    rng = np.random.default_rng(17)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(30, 2))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(
        NonFiniteError, match=r"^real holds NaN or infinite values; drop those events first$"
    ):
        feature_distances(bad, y)
    with pytest.raises(NonFiniteError, match=r"^generated holds NaN or infinite values"):
        feature_distances(x, np.vstack([y, bad]))
    with pytest.raises(NonFiniteError, match=r"^real_holdout holds NaN"):
        baseline_distances(bad, 0)
    with pytest.raises(ValueError, match=r"^real has 2 features but generated has 3$"):
        correlation_difference(x, rng.normal(size=(30, 3)))
    with pytest.raises(ValueError, match=r"^real_weight has 3 entries but real has 20"):
        feature_distances(x, y, real_weight=np.ones(3))
    with pytest.raises(
        ValueError, match=r"^real_holdout needs at least 2 events to split into halves$"
    ):
        baseline_distances(x[:1], 0)
    w = np.ones(20)
    w[:2], w[5] = -1.0, 0.0  # a zero weight is not a negative one
    with pytest.raises(
        ValueError,
        match=(
            r"^real_weight holds 2 negative values \(min -1\); distances and correlations compare probability "
            r"distributions: make the weights non-negative first with hepsel.train.negative_weights.cell_resample "
            r"\(clipping or dropping them would bias the reference\)$"
        ),
    ):
        feature_distances(x, y, real_weight=w)


def test_small_weights_are_weights():
    """Only the shape counts: weights summing to less than one are fine; a half without any weight is not."""
    rng = np.random.default_rng(18)
    real, gen = rng.normal(size=(40, 1)), rng.normal(size=(40, 1))
    w = np.full(40, 1e-3)
    small, plain = (
        fidelity_report(real, gen, ["x"], 0, real_weight=w),
        fidelity_report(real, gen, ["x"], 0),
    )
    assert small["features"]["x"] == {
        k: pytest.approx(v, rel=1e-12) for k, v in plain["features"]["x"].items()
    }
    first, _ = _split(40, 0)
    w = np.ones(40)
    w[first] = 0.0
    with pytest.raises(
        ValueError,
        match=r"^real_weight: one random half of the held-out events has zero total weight",
    ):
        baseline_distances(real, 0, real_weight=w)


def test_constant_features_contribute_exact_zeros():
    """A feature constant over the weighted events, whatever rounding leaves of its mean, gives exactly the figures of a zero column."""
    rng = np.random.default_rng(19)
    x = rng.normal(size=7)
    w = np.r_[rng.uniform(0.1, 3.0, 6), 0.0]
    const = np.column_stack([x, np.r_[np.full(6, 5.167034084532541), 1.0]])
    zero = np.column_stack([x, np.r_[np.zeros(6), 1.0]])
    gen = rng.normal(size=(9, 2))
    np.testing.assert_array_equal(
        correlation_difference(const, gen, real_weight=w)[0],
        correlation_difference(zero, gen, real_weight=w)[0],
    )


def test_constant_features_are_exactly_uncorrelated():
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 3.0, 7)
    value = 5.167034084532541
    assert (
        np.average(np.full(7, value), weights=w) != value
    )  # the weighted mean carries a rounding residue
    x = rng.normal(size=7)
    real = np.column_stack([x, np.full(7, value)])
    generated = np.column_stack([rng.normal(size=9), np.full(9, -1.0)])
    np.testing.assert_array_equal(
        correlation_difference(real, generated, real_weight=w)[0], np.zeros((2, 2))
    )
    # two constant features are not correlated with each other either
    both = np.full((7, 2), value)
    other = rng.normal(size=(9, 2))
    np.testing.assert_allclose(
        correlation_difference(both, other, real_weight=w)[0],
        np.corrcoef(other.T) - np.eye(2),
        atol=1e-12,
    )
