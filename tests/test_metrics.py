"""Tests of hepsel.stats.metrics against scikit-learn, scipy and brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from hepsel.stats import metrics, shapes

# --------------------------------------------------------------------------
# samples
# --------------------------------------------------------------------------


def _sample(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Labels, scores and weights of a named test sample."""
    rng = np.random.default_rng(seed)
    n = 20_000 if kind.startswith("large") else 500
    y = rng.random(n) < 0.4
    score = rng.normal(loc=np.where(y, 0.8, 0.0))
    weight = None
    if kind.endswith("weighted"):
        weight = rng.lognormal(sigma=0.5, size=n)
    if "ties" in kind:
        score = np.round(score, 1)
    if "float32" in kind:
        # Negative, positive and signed zeros exercise the packed-key sort.
        score = score.astype(np.float32)
        score[:5] = [0.0, -0.0, 0.0, -0.0, 0.0]
        if "widened" in kind:
            score = score.astype(np.float64)
    if "int" in kind:
        score = np.round(score * 3).astype(np.int64)
    return y, score, weight


SAMPLES = [
    "unweighted",
    "weighted",
    "ties-unweighted",
    "ties-weighted",
    "large-float32-unweighted",
    "large-float32-weighted",
    "large-float32-widened-weighted",
    "large-ties-weighted",
    "large-float64-weighted",
    "int-weighted",
]


@pytest.fixture(params=SAMPLES, ids=SAMPLES)
def sample(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    return _sample(request.param)


def _brute_force_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> float:
    sig, bkg = s[y], s[~y]
    ws, wb = w[y], w[~y]
    above = (sig[:, None] > bkg[None, :]) + 0.5 * (sig[:, None] == bkg[None, :])
    return float(ws @ above @ wb / (ws.sum() * wb.sum()))


# --------------------------------------------------------------------------
# ROC curve and AUC
# --------------------------------------------------------------------------


@pytest.mark.parametrize("drop_intermediate", [False, True], ids=["all-points", "dropped"])
def test_roc_curve_matches_sklearn(sample, drop_intermediate: bool) -> None:
    y, score, weight = sample
    ours = metrics.roc_curve(y, score, weight, drop_intermediate=drop_intermediate)
    ref = sk_roc_curve(y, score, sample_weight=weight, drop_intermediate=drop_intermediate)
    for got, want in zip(ours, ref, strict=True):
        assert got.shape == want.shape
    np.testing.assert_allclose(ours[0], ref[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[1], ref[1], rtol=0, atol=1e-12)
    assert ours[2][0] == np.inf
    np.testing.assert_array_equal(ours[2], ref[2])


def test_roc_auc_matches_sklearn(sample) -> None:
    y, score, weight = sample
    assert metrics.roc_auc(y, score, weight) == pytest.approx(
        roc_auc_score(y, score, sample_weight=weight), abs=1e-9
    )


def test_roc_gives_curve_and_auc_of_the_separate_functions(sample) -> None:
    y, score, weight = sample
    result = metrics.roc(y, score, weight)
    curve = metrics.roc_curve(y, score, weight)
    np.testing.assert_array_equal(result.bkg_eff, curve[0])
    np.testing.assert_array_equal(result.sig_eff, curve[1])
    np.testing.assert_array_equal(result.thresholds, curve[2])
    assert result.auc == metrics.roc_auc(y, score, weight)


def test_zero_weight_candidates_are_ignored_like_sklearn() -> None:
    y, score, weight = _sample("weighted")
    weight = weight.copy()
    weight[::7] = 0.0
    ours = metrics.roc_curve(y, score, weight)
    ref = sk_roc_curve(y, score, sample_weight=weight, drop_intermediate=False)
    assert ours[0].shape == ref[0].shape
    np.testing.assert_allclose(ours[1], ref[1], atol=1e-12)
    assert metrics.roc_auc(y, score, weight) == pytest.approx(
        roc_auc_score(y, score, sample_weight=weight), abs=1e-9
    )


def test_efficiency_is_weighted_fraction_above_each_threshold() -> None:
    y, score, weight = _sample("ties-weighted")
    bkg_eff, sig_eff, thresholds = metrics.roc_curve(y, score, weight)
    for i in (1, 5, len(thresholds) // 2, len(thresholds) - 1):
        passed = score >= thresholds[i]
        assert sig_eff[i] == pytest.approx(weight[y & passed].sum() / weight[y].sum(), abs=1e-12)
        assert bkg_eff[i] == pytest.approx(weight[~y & passed].sum() / weight[~y].sum(), abs=1e-12)


def test_bool_and_integer_labels_agree() -> None:
    y, score, weight = _sample("weighted")
    assert metrics.roc_auc(y.astype(int), score, weight) == metrics.roc_auc(y, score, weight)
    assert metrics.roc_auc(y.astype(float), score, weight) == metrics.roc_auc(y, score, weight)


# --------------------------------------------------------------------------
# negative weights
# --------------------------------------------------------------------------


@pytest.fixture
def negative_weight_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 80
    y = rng.random(n) < 0.5
    score = np.round(rng.normal(loc=np.where(y, 0.5, 0.0)), 1)
    weight = rng.normal(loc=0.6, scale=1.0, size=n)
    assert (weight < 0).any()
    assert weight[y].sum() > 0
    assert weight[~y].sum() > 0
    return y, score, weight


def test_negative_weight_auc_is_pairwise_mann_whitney(negative_weight_sample) -> None:
    y, score, weight = negative_weight_sample
    auc = metrics.roc_auc(y, score, weight)
    assert np.isfinite(auc)
    assert auc == pytest.approx(_brute_force_auc(y, score, weight), abs=1e-12)


def test_negative_weight_roc_keeps_true_values_and_monotone_envelope(
    negative_weight_sample,
) -> None:
    y, score, weight = negative_weight_sample
    bkg_eff, sig_eff, thresholds = metrics.roc_curve(y, score, weight)
    for i in range(1, len(thresholds)):
        passed = score >= thresholds[i]
        assert sig_eff[i] == pytest.approx(weight[y & passed].sum() / weight[y].sum(), abs=1e-12)
    assert (np.diff(sig_eff) < 0).any() or (np.diff(bkg_eff) < 0).any()

    env = metrics.roc(y, score, weight, monotone=True)
    np.testing.assert_array_equal(env.sig_eff, np.maximum.accumulate(sig_eff))
    np.testing.assert_array_equal(env.bkg_eff, np.maximum.accumulate(bkg_eff))
    assert env.auc == metrics.roc_auc(y, score, weight)


def test_brute_force_auc_agrees_for_positive_weights() -> None:
    y, score, weight = _sample("ties-weighted")
    assert metrics.roc_auc(y, score, weight) == pytest.approx(
        _brute_force_auc(y, score, weight), abs=1e-12
    )


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


def test_single_class_raises() -> None:
    with pytest.raises(ValueError, match="background class"):
        metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="signal class"):
        metrics.roc_curve([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="signal class"):
        metrics.roc_auc([0, 1, 1], [0.1, 0.2, 0.3], [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_true": [0, 1], "score": [0.1, 0.2, 0.3]}, "y_true has 2 entries"),
        ({"y_true": [0, 1, 1], "score": [0.1, 0.2, 0.3], "sample_weight": [1.0]}, "sample_weight"),
        ({"y_true": [0, 2, 1], "score": [0.1, 0.2, 0.3]}, "y_true must hold only"),
        ({"y_true": [0, 1, 1], "score": [0.1, np.nan, 0.3]}, "score holds NaN"),
        ({"y_true": [[0, 1]], "score": [[0.1, 0.2]]}, "score must be one-dimensional"),
        ({"y_true": [], "score": []}, "score is empty"),
    ],
    ids=["short-labels", "short-weights", "bad-label", "nan-score", "2d", "empty"],
)
def test_bad_inputs_raise(kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        metrics.roc_curve(**kwargs)


# --------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    y, score, weight = _sample("weighted")
    auc, std, replicas = metrics.roc_auc_bootstrap(y, score, weight, n_bootstrap=50, random_state=7)
    _auc2, std2, replicas2 = metrics.roc_auc_bootstrap(
        y, score, weight, n_bootstrap=50, random_state=7
    )
    assert auc == metrics.roc_auc(y, score, weight)
    np.testing.assert_array_equal(replicas, replicas2)
    assert std == std2 == pytest.approx(np.std(replicas, ddof=1))
    _, _, other = metrics.roc_auc_bootstrap(y, score, weight, n_bootstrap=50, random_state=8)
    assert not np.array_equal(replicas, other)


def test_bootstrap_std_matches_spread_over_independent_samples() -> None:
    rng = np.random.default_rng(11)
    n = 1000

    def draw() -> tuple[np.ndarray, np.ndarray]:
        y = rng.random(n) < 0.5
        return y, rng.normal(loc=np.where(y, 1.0, 0.0))

    spread = np.std([metrics.roc_auc(*draw()) for _ in range(300)], ddof=1)
    _, std, replicas = metrics.roc_auc_bootstrap(*draw(), n_bootstrap=300, random_state=1)
    assert replicas.shape == (300,)
    # Both estimate the same standard error from 300 values each (~4% precision).
    assert std == pytest.approx(spread, rel=0.25)


def test_bootstrap_rejects_too_few_replicas() -> None:
    y, score, _ = _sample("unweighted")
    with pytest.raises(ValueError, match="n_bootstrap"):
        metrics.roc_auc_bootstrap(y, score, n_bootstrap=1)


# --------------------------------------------------------------------------
# working points
# --------------------------------------------------------------------------


def test_signal_efficiency_at_background_efficiency_gaussian() -> None:
    rng = np.random.default_rng(5)
    n_sig = n_bkg = 200_000
    shift = 1.5
    score = np.concatenate((rng.normal(shift, 1.0, n_sig), rng.normal(0.0, 1.0, n_bkg)))
    y = np.concatenate((np.ones(n_sig, bool), np.zeros(n_bkg, bool)))
    targets = np.array([0.01, 0.1, 0.5])
    got = metrics.efficiency_at_background_efficiency(y, score, bkg_eff=targets)

    cut = stats.norm.isf(targets)
    expected = stats.norm.sf(cut - shift)
    # Binomial spread of the signal efficiency plus the effect of the
    # background efficiency's spread through the local ROC slope.
    slope = stats.norm.pdf(cut - shift) / stats.norm.pdf(cut)
    sigma = np.sqrt(expected * (1 - expected) / n_sig + slope**2 * targets * (1 - targets) / n_bkg)
    assert np.all(np.abs(got - expected) < 5 * sigma)


def test_signal_efficiency_at_background_efficiency_follows_the_curve() -> None:
    y, score, weight = _sample("ties-weighted")
    bkg_eff, sig_eff, _ = metrics.roc_curve(y, score, weight)
    # On a point of the curve: the highest signal efficiency at that background efficiency.
    for i in (3, 10, len(bkg_eff) - 2):
        at = metrics.efficiency_at_background_efficiency(y, score, weight, bkg_eff=bkg_eff[i])
        assert isinstance(at, float)
        assert at == pytest.approx(sig_eff[bkg_eff == bkg_eff[i]].max(), abs=1e-12)
    # Between points: on the straight segment joining them.
    i = int(np.flatnonzero(np.diff(bkg_eff) > 0)[5])
    mid = 0.5 * (bkg_eff[i] + bkg_eff[i + 1])
    want = 0.5 * (sig_eff[i] + sig_eff[i + 1])
    got = metrics.efficiency_at_background_efficiency(y, score, weight, bkg_eff=[mid, 0.0, 1.0])
    np.testing.assert_allclose(got, [want, sig_eff[bkg_eff == 0].max(), 1.0], atol=1e-12)


def test_threshold_at_background_efficiency_brackets_the_target() -> None:
    y, score, weight = _sample("ties-weighted")
    _, _, thresholds = metrics.roc_curve(y, score, weight)
    bkg, w_bkg = score[~y], weight[~y]
    for target in (0.0, 0.05, 0.2, 0.7):
        thr = metrics.threshold_at_background_efficiency(y, score, weight, bkg_eff=target)
        assert metrics.efficiency(bkg, thr, w_bkg) <= target + 1e-12
        lower = thresholds[thresholds < thr]
        if lower.size:
            assert metrics.efficiency(bkg, lower.max(), w_bkg) > target
    assert metrics.threshold_at_background_efficiency(y, score, weight, bkg_eff=0.0) > bkg.max()
    arr = metrics.threshold_at_background_efficiency(y, score, weight, bkg_eff=[0.1, 0.2])
    assert isinstance(arr, np.ndarray)
    assert arr.shape == (2,)


@pytest.mark.parametrize("bad", [-0.1, 1.5, [0.1, 2.0]])
def test_working_point_rejects_out_of_range_targets(bad) -> None:
    y, score, _ = _sample("unweighted")
    with pytest.raises(ValueError, match=r"bkg_eff must lie in \[0, 1\]"):
        metrics.efficiency_at_background_efficiency(y, score, bkg_eff=bad)


def test_working_point_needs_a_target() -> None:
    y, score, _ = _sample("unweighted")
    with pytest.raises(TypeError, match="bkg_eff is required"):
        metrics.threshold_at_background_efficiency(y, score)


def test_efficiency_scalar_and_array_thresholds() -> None:
    rng = np.random.default_rng(2)
    score = np.round(rng.random(300), 2)
    weight = rng.random(300)
    thresholds = np.array([-1.0, 0.0, 0.25, 0.5, 0.99, 2.0])
    arr = metrics.efficiency(score, thresholds, weight)
    for t, got in zip(thresholds, arr, strict=True):
        want = weight[score >= t].sum() / weight.sum()
        assert got == pytest.approx(want, abs=1e-12)
        assert metrics.efficiency(score, t, weight) == pytest.approx(want, abs=1e-12)
    assert metrics.efficiency(score, 0.5) == np.mean(score >= 0.5)
    with pytest.raises(ValueError, match="sums to zero"):
        metrics.efficiency([1.0, 2.0], 1.5, [1.0, -1.0])


# --------------------------------------------------------------------------
# Kolmogorov-Smirnov
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_a", "n_b", "shift", "decimals"),
    [(200, 300, 0.0, None), (1000, 700, 0.2, None), (500, 500, 0.1, 1), (50, 4000, 0.5, 2)],
    ids=["same", "shifted", "ties", "unequal-sizes"],
)
def test_ks_unweighted_matches_scipy(n_a: int, n_b: int, shift: float, decimals) -> None:
    rng = np.random.default_rng(n_a + n_b)
    a = rng.normal(size=n_a)
    b = rng.normal(shift, size=n_b)
    if decimals is not None:
        a, b = np.round(a, decimals), np.round(b, decimals)
    statistic, pvalue = shapes.ks_2samp_weighted(a, b)
    # scipy's default ('exact' at these sizes) rounds D once from integers.
    assert statistic == stats.ks_2samp(a, b).statistic
    ref = stats.ks_2samp(a, b, method="asymp")
    assert statistic == pytest.approx(ref.statistic, abs=1e-15)
    assert pvalue == pytest.approx(ref.pvalue, abs=1e-6)


def test_ks_integer_weights_equal_repeated_samples() -> None:
    rng = np.random.default_rng(4)
    a = np.round(rng.normal(size=150), 1)
    b = rng.normal(0.3, size=120)
    wa = rng.integers(1, 4, size=a.size)
    wb = rng.integers(1, 4, size=b.size)
    statistic, _ = shapes.ks_2samp_weighted(a, b, wa, wb)
    ref = stats.ks_2samp(np.repeat(a, wa), np.repeat(b, wb))
    assert statistic == pytest.approx(ref.statistic, abs=1e-12)


def test_ks_weighted_pvalue_uses_effective_sizes() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=400), rng.normal(0.1, size=300)
    wa, wb = rng.lognormal(size=400), rng.lognormal(size=300)
    statistic, pvalue = shapes.ks_2samp_weighted(a, b, wa, wb)
    n_a = wa.sum() ** 2 / (wa**2).sum()
    n_b = wb.sum() ** 2 / (wb**2).sum()
    want = stats.kstwo.sf(statistic, np.round(n_a * n_b / (n_a + n_b)))
    assert pvalue == pytest.approx(want, rel=1e-12)


def test_ks_rejects_mismatched_weights() -> None:
    with pytest.raises(ValueError, match="a_weight has 2 entries"):
        shapes.ks_2samp_weighted([1.0, 2.0, 3.0], [1.0], a_weight=[1.0, 1.0])


# --------------------------------------------------------------------------
# separation and distance correlation
# --------------------------------------------------------------------------


def test_separation_limits_and_formula() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=2000)
    assert shapes.separation(x, x) == pytest.approx(0.0, abs=1e-15)
    assert shapes.separation(x, x + 100.0, bins=50) == pytest.approx(1.0, abs=1e-15)

    s, b = rng.normal(1.0, size=3000), rng.normal(size=2000)
    ws, wb = rng.random(3000), rng.random(2000)
    hs, edges = np.histogram(s, bins=40, range=(-3, 4), weights=ws)
    hb, _ = np.histogram(b, bins=edges, weights=wb)
    hs, hb = hs / hs.sum(), hb / hb.sum()
    filled = hs + hb > 0
    want = 0.5 * np.sum((hs - hb)[filled] ** 2 / (hs + hb)[filled])
    got = shapes.separation(s, b, ws, wb, bins=40, range=(-3, 4))
    assert got == pytest.approx(want, rel=1e-12)
    assert 0.0 < got < 1.0


def _reference_dcor(x: np.ndarray, y: np.ndarray) -> float:
    """Textbook V-statistic distance correlation with full double centring."""
    x = x.reshape(len(x), -1)
    y = y.reshape(len(y), -1)
    a = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    b = np.linalg.norm(y[:, None, :] - y[None, :, :], axis=-1)
    big_a = a - a.mean(axis=0) - a.mean(axis=1)[:, None] + a.mean()
    big_b = b - b.mean(axis=0) - b.mean(axis=1)[:, None] + b.mean()
    dcov2 = (big_a * big_b).mean()
    return float(np.sqrt(dcov2 / np.sqrt((big_a**2).mean() * (big_b**2).mean())))


def test_distance_correlation_matches_reference() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=300)
    y = np.sin(2 * x) + 0.5 * rng.normal(size=300)
    assert shapes.distance_correlation(x, y) == pytest.approx(_reference_dcor(x, y), rel=1e-10)
    x2 = rng.normal(size=(300, 3))
    y2 = x2[:, 0] ** 2 + rng.normal(size=300)
    assert shapes.distance_correlation(x2, y2) == pytest.approx(_reference_dcor(x2, y2), rel=1e-10)


def test_distance_correlation_detects_dependence() -> None:
    rng = np.random.default_rng(10)
    x = rng.uniform(-1, 1, size=3000)
    independent = shapes.distance_correlation(x, rng.uniform(-1, 1, size=3000))
    squared = shapes.distance_correlation(x, x**2)
    assert independent < 0.06
    assert squared > 0.3
    assert np.corrcoef(x, x**2)[0, 1] == pytest.approx(0.0, abs=0.05)
    assert shapes.distance_correlation(x, 3 * x + 1) == pytest.approx(1.0, abs=1e-12)
    assert shapes.distance_correlation(x, np.ones_like(x)) == 0.0


def test_distance_correlation_subsample_is_seeded() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=1500)
    y = x + rng.normal(size=1500)
    first = shapes.distance_correlation(x, y, max_events=400, random_state=3)
    again = shapes.distance_correlation(x, y, max_events=400, random_state=3)
    assert first == again
    pick = np.random.default_rng(3).choice(1500, size=400, replace=False)
    assert first == pytest.approx(_reference_dcor(x[pick], y[pick]), rel=1e-10)
    with pytest.raises(ValueError, match="x has 1500 entries but y has 10"):
        shapes.distance_correlation(x, y[:10])


# --------------------------------------------------------------------------
# figures of merit
# --------------------------------------------------------------------------


def test_significance_curve() -> None:
    sig_eff = np.array([0.0, 0.2, 0.5, 1.0])
    bkg_eff = np.array([0.0, 0.01, 0.1, 1.0])
    got = metrics.significance_curve(sig_eff, bkg_eff, n_signal=50.0, n_background=1e4)
    s, b = 50.0 * sig_eff[1:], 1e4 * bkg_eff[1:]
    np.testing.assert_allclose(got[1:], s / np.sqrt(s + b), rtol=1e-15)
    assert got[0] == 0.0


def test_punzi_curve() -> None:
    sig_eff = np.array([0.0, 0.3, 0.9])
    bkg_eff = np.array([0.0, 0.04, 0.5])
    got = metrics.punzi_curve(sig_eff, bkg_eff, n_background=400.0, sigma=3.0)
    np.testing.assert_allclose(got, sig_eff / (1.5 + np.sqrt(400.0 * bkg_eff)), rtol=1e-15)
    np.testing.assert_allclose(
        metrics.punzi_curve(sig_eff, bkg_eff, n_background=400.0),
        sig_eff / (2.5 + np.sqrt(400.0 * bkg_eff)),
    )


def test_figures_of_merit_check_shapes() -> None:
    with pytest.raises(ValueError, match="sig_eff has shape"):
        metrics.punzi_curve([0.1, 0.2], [0.1], n_background=1.0)
    with pytest.raises(ValueError, match="sig_eff has shape"):
        metrics.significance_curve([0.1, 0.2], [0.1], n_signal=1.0, n_background=1.0)


def test_public_api() -> None:
    assert sorted(metrics.__all__) == sorted(
        [
            "Roc",
            "efficiency",
            "efficiency_at_background_efficiency",
            "punzi_curve",
            "roc",
            "roc_auc",
            "roc_auc_bootstrap",
            "roc_curve",
            "significance_curve",
            "threshold_at_background_efficiency",
        ]
    )
    for name in metrics.__all__:
        assert hasattr(metrics, name)
    assert sorted(shapes.__all__) == ["distance_correlation", "ks_2samp_weighted", "separation"]
    for name in shapes.__all__:
        assert hasattr(shapes, name)


def test_bootstrap_groups_share_one_factor() -> None:
    """Duplicated candidates are not independent: grouping them restores the original spread."""
    from hepsel.stats.metrics import roc_auc_bootstrap

    rng = np.random.default_rng(3)
    n = 2000
    y = rng.random(n) < 0.5
    s = rng.normal(y.astype(float), 1.0)
    _, std, _ = roc_auc_bootstrap(y, s, n_bootstrap=300, random_state=1)
    y2, s2, ids = np.repeat(y, 2), np.repeat(s, 2), np.repeat(np.arange(n), 2)
    _, std_naive, _ = roc_auc_bootstrap(y2, s2, n_bootstrap=300, random_state=1)
    _, std_grouped, _ = roc_auc_bootstrap(y2, s2, n_bootstrap=300, random_state=1, groups=ids)
    assert std_grouped == pytest.approx(std, rel=0.2)
    assert std_naive == pytest.approx(std / np.sqrt(2), rel=0.2)


# --------------------------------------------------------------------------
# edge cases and messages (each pins a behaviour a changed formula would break)
# --------------------------------------------------------------------------


def test_unweighted_roc_defaults_match_sklearn() -> None:
    y, score, _ = _sample("ties-unweighted")
    fpr, tpr, thr = sk_roc_curve(y, score, drop_intermediate=False)
    for got in (metrics.roc(y, score), metrics.roc_curve(y, score)):
        b, s, t = (
            (got.bkg_eff, got.sig_eff, got.thresholds) if isinstance(got, metrics.Roc) else got
        )
        np.testing.assert_allclose(b, fpr, rtol=0, atol=1e-15)
        np.testing.assert_allclose(s, tpr, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(t[1:], thr[1:])
    fpr, tpr, _ = sk_roc_curve(y, score, drop_intermediate=True)
    got = metrics.roc_curve(y, score, drop_intermediate=True, monotone=True)
    np.testing.assert_allclose(got[0], fpr, atol=1e-15)
    np.testing.assert_allclose(got[1], tpr, atol=1e-15)


@pytest.mark.parametrize(
    ("y", "s"),
    [
        ([0, 1], [0.2, 0.4]),
        ([1, 0, 1], [0.1, 0.5, 0.9]),
        ([0, 0, 1], [0.3, 0.3, 0.3]),
        ([0, 1, 1, 0], [4, 3, 2, 1]),
        ([1, 0, 1, 0, 1, 0], [3, 3, 2, 2, 1, 1]),
    ],  # the last: three collinear points, the middle one dropped
)
def test_tiny_curves_match_sklearn(y: list[int], s: list[float]) -> None:
    w = np.full(len(y), 0.25)  # class totals at or below 1
    for drop in (False, True):
        fpr, tpr, thr = sk_roc_curve(y, s, sample_weight=w, drop_intermediate=drop)
        b, e, t = metrics.roc_curve(y, s, w, drop_intermediate=drop)
        np.testing.assert_allclose(b, fpr, atol=1e-15)
        np.testing.assert_allclose(e, tpr, atol=1e-15)
        np.testing.assert_array_equal(t[1:], thr[1:])
    assert metrics.roc_auc(y, s, w) == pytest.approx(
        roc_auc_score(y, s, sample_weight=w), abs=1e-15
    )
    assert metrics.roc_auc(y, s) == pytest.approx(
        _brute_force_auc(np.array(y, bool), np.array(s, float), np.ones(len(y))), abs=1e-15
    )


def test_packed_sort_of_scores_beyond_float32() -> None:
    rng = np.random.default_rng(2)
    n = 5000
    y = rng.random(n) < 0.5
    score = rng.normal(np.where(y, 1.0, 0.0)) * 1e300  # no float32 form: the plain sort
    np.testing.assert_allclose(
        metrics.roc_curve(y, score)[1], sk_roc_curve(y, score, drop_intermediate=False)[1]
    )
    assert metrics.roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def _brute_envelope(
    y: np.ndarray, s: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    thr = np.array([np.inf, *sorted(set(s), reverse=True)])
    se = np.array([w[y & (s >= t)].sum() for t in thr]) / w[y].sum()
    be = np.array([w[~y & (s >= t)].sum() for t in thr]) / w[~y].sum()
    return np.maximum.accumulate(be), np.maximum.accumulate(se), thr


def test_working_points_use_the_monotone_envelope(negative_weight_sample) -> None:
    y, score, weight = negative_weight_sample
    be, se, thr = _brute_envelope(y, score, weight)
    levels = np.unique(be[be <= 1.0])  # with negative weights the envelope may pass 1
    for t in levels:
        at = be == t
        assert metrics.efficiency_at_background_efficiency(
            y, score, weight, bkg_eff=t
        ) == pytest.approx(se[at].max(), abs=1e-12)
    for t in (levels[1:] + levels[:-1]) / 2:  # between two levels: no rounding ambiguity
        assert (
            metrics.threshold_at_background_efficiency(y, score, weight, bkg_eff=t)
            == thr[be <= t].min()
        )


def test_bootstrap_replicas_equal_poisson_reweighted_aucs() -> None:
    rng = np.random.default_rng(4)
    n = 60
    y = rng.random(n) < 0.5
    s = np.round(rng.normal(y.astype(float)), 1)
    w = rng.uniform(0.1, 0.3, n)  # class totals of a replica often below 1
    w[:6] = 0.0  # dropped, also from the groups
    groups = rng.integers(0, 25, n) * 7
    auc, std, replicas = metrics.roc_auc_bootstrap(
        y, s, w, n_bootstrap=40, random_state=9, groups=groups
    )
    keep = w != 0
    _, inverse = np.unique(groups[keep], return_inverse=True)
    draw = np.random.default_rng(9)
    want = []
    for _ in range(40):
        k = draw.poisson(1.0, inverse.max() + 1)[inverse]
        wr = w[keep] * k
        ok = wr[y[keep]].sum() > 0 and wr[~y[keep]].sum() > 0
        want.append(roc_auc_score(y[keep], s[keep], sample_weight=wr) if ok else np.nan)
    np.testing.assert_allclose(replicas, want, rtol=1e-12)
    assert auc == pytest.approx(roc_auc_score(y[keep], s[keep], sample_weight=w[keep]), abs=1e-12)
    assert std == pytest.approx(np.nanstd(want, ddof=1), rel=1e-12)
    with pytest.raises(
        ValueError, match=r"^groups must have the shape of score \(60,\), got \(3,\)$"
    ):
        metrics.roc_auc_bootstrap(y, s, w, groups=[1, 2, 3])


def test_bootstrap_replicas_with_an_empty_class_are_nan() -> None:
    # one signal and one background candidate of weight 0.5: a replica is defined only when both are drawn
    seen = set()
    for seed in range(40):
        _, std, rep = metrics.roc_auc_bootstrap(
            [0, 1], [0.1, 0.9], [0.5, 0.5], n_bootstrap=2, random_state=seed, groups=[0, 1]
        )
        k = np.random.default_rng(seed).poisson(1.0, (2, 2))
        defined = (k > 0).all(axis=1)
        np.testing.assert_array_equal(np.isfinite(rep), defined)
        np.testing.assert_array_equal(rep[defined], 1.0)
        assert (std == 0.0) if defined.all() else np.isnan(std)
        seen.add(int(defined.sum()))
    assert seen == {0, 1, 2}


def test_bootstrap_keeps_the_weights() -> None:
    # weights that reverse the ranking: the replicas scatter around the weighted AUC
    rng = np.random.default_rng(6)
    n = 400
    y = rng.random(n) < 0.5
    s = rng.normal(y.astype(float))
    w = np.where(y == (s > 0.5), 0.02, 1.0)
    auc, std, rep = metrics.roc_auc_bootstrap(y, s, w, n_bootstrap=50, random_state=1)
    assert auc < 0.5 < metrics.roc_auc(y, s)
    assert abs(np.mean(rep) - auc) < 3 * std


def test_efficiency_unweighted_thresholds() -> None:
    s = np.array([0.1, 0.5, 0.9, 0.9, 0.3])
    thr = np.array([0.0, 0.3, 0.9, 1.0])
    np.testing.assert_allclose(
        metrics.efficiency(s, thr), [(s >= t).mean() for t in thr], rtol=0, atol=0
    )


def test_ks_weighted_matches_brute_force_sup() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=40), rng.normal(0.3, size=30) - 0.5
    b[0] = a.min() - 1.0  # b has the smallest value: F_a is 0 there
    wa, wb = rng.uniform(0.01, 0.02, 40), rng.uniform(0.5, 1.5, 30)  # a's weights sum below 1
    pts = np.concatenate((a, b))
    d = max(abs(wa[a <= x].sum() / wa.sum() - wb[b <= x].sum() / wb.sum()) for x in pts)
    stat, p = shapes.ks_2samp_weighted(a, b, wa, wb)
    assert stat == pytest.approx(d, abs=1e-14)
    na, nb = wa.sum() ** 2 / (wa**2).sum(), wb.sum() ** 2 / (wb**2).sum()
    assert p == pytest.approx(stats.kstwo.sf(d, np.round(na * nb / (na + nb))), rel=1e-12)
    # one sample weighted: still the weighted ECDFs
    d1 = max(abs(wa[a <= x].sum() / wa.sum() - (b <= x).mean()) for x in pts)
    assert shapes.ks_2samp_weighted(a, b, wa)[0] == pytest.approx(d1, abs=1e-14)
    d2 = max(abs((a <= x).mean() - wb[b <= x].sum() / wb.sum()) for x in pts)
    assert shapes.ks_2samp_weighted(a, b, None, wb)[0] == pytest.approx(d2, abs=1e-14)
    # tiny samples: the Kolmogorov distribution of one effective event
    stat, p = shapes.ks_2samp_weighted([0.0, 2.0], [1.0])
    assert stat == 0.5 and p == pytest.approx(stats.kstwo.sf(0.5, 1), rel=1e-12)


def test_separation_bins_and_small_weights() -> None:
    s, b = np.array([0.1, 0.2, 0.9]), np.array([0.15, 0.8, 0.85])
    ws, wb = np.array([0.1, 0.2, 0.1]), np.array([0.05, 0.05, 0.1])
    assert shapes.separation(s, b, bins=1) == 0.0
    hs, edges = np.histogram(s, bins=2, weights=ws, range=(0.1, 0.9))
    hb, _ = np.histogram(b, bins=edges, weights=wb)
    hs, hb = hs / hs.sum(), hb / hb.sum()
    assert shapes.separation(s, b, ws, wb, bins=2) == pytest.approx(
        0.5 * np.sum((hs - hb) ** 2 / (hs + hb)), rel=1e-12
    )


def test_distance_correlation_smallest_inputs() -> None:
    x, y = np.array([0.0, 1.0]), np.array([3.0, 1.0])
    assert shapes.distance_correlation(x, y) == pytest.approx(_reference_dcor(x, y), rel=1e-12)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert shapes.distance_correlation(x, y, max_events=2, random_state=0) == pytest.approx(1.0)


def test_figures_of_merit_below_one_event() -> None:
    z = metrics.significance_curve([0.5, 0.0], [0.0, 0.0], n_signal=1.0, n_background=10.0)
    np.testing.assert_allclose(z, [0.5 / np.sqrt(0.5), 0.0], rtol=1e-15)


NUMERIC = r"must hold numbers, got dtype <U1"
BOTH = "total weight; an efficiency needs both classes"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: metrics.roc_auc([0, 1], ["a", "b"]), TypeError, "score " + NUMERIC),
        (
            lambda: metrics.roc_auc(["a", "b"], [0.1, 0.2]),
            TypeError,
            "y_true must hold 0/1 or booleans, got dtype <U1",
        ),
        (
            lambda: metrics.roc_auc([0, 1], [0.1, 0.2], ["a", "b"]),
            TypeError,
            "sample_weight " + NUMERIC,
        ),
        (
            lambda: metrics.roc_auc([0, 3], [0.1, 0.2]),
            ValueError,
            "y_true must hold only 0 (background) and 1 (signal)",
        ),
        (
            lambda: metrics.roc_auc([[0, 1]], [0.1, 0.2]),
            ValueError,
            "y_true must be one-dimensional, got shape (1, 2)",
        ),
        (
            lambda: metrics.roc_auc([], []),
            ValueError,
            "score is empty; a ROC curve needs signal and background candidates",
        ),
        (
            lambda: metrics.roc_auc([0, 1], [0.1, 0.2], [1.0]),
            ValueError,
            "sample_weight has 1 entries but score has 2 (sample_weight has shape (1,), needs (2,))",
        ),
        (
            lambda: metrics.roc_auc([0, 0], [0.1, 0.2]),
            ValueError,
            "y_true: the signal class (y_true == 1) has no candidates or a non-positive " + BOTH,
        ),
        (
            lambda: metrics.roc_auc([1, 1], [0.1, 0.2]),
            ValueError,
            "y_true: the background class (y_true == 0) has no candidates or a non-positive "
            + BOTH,
        ),
        (
            lambda: metrics.roc_auc_bootstrap([0, 1], [0.1, 0.2], n_bootstrap=1.5),
            ValueError,
            "n_bootstrap must be an integer >= 2, got 1.5",
        ),
        (
            lambda: metrics.efficiency_at_background_efficiency([0, 1], [0.1, 0.2]),
            TypeError,
            "bkg_eff is required: the background efficiency (or efficiencies) to evaluate at",
        ),
        (
            lambda: metrics.threshold_at_background_efficiency([0, 1], [0.1, 0.2], bkg_eff=[[0.1]]),
            ValueError,
            "bkg_eff must be a number or a 1-d sequence, got shape (1, 1)",
        ),
        (
            lambda: metrics.efficiency([], 0.5),
            ValueError,
            "score is empty or sample_weight sums to zero; the efficiency is undefined",
        ),
        (
            lambda: metrics.efficiency([0.1], [[0.5]]),
            ValueError,
            "threshold must be a number or 1-d, got shape (1, 1)",
        ),
        (lambda: shapes.ks_2samp_weighted([], [1.0]), ValueError, "a and b must both be non-empty"),
        (lambda: shapes.ks_2samp_weighted([1.0], []), ValueError, "a and b must both be non-empty"),
        (lambda: shapes.ks_2samp_weighted(["a"], [1.0]), TypeError, "a " + NUMERIC),
        (lambda: shapes.ks_2samp_weighted([1.0], ["a"]), TypeError, "b " + NUMERIC),
        (
            lambda: shapes.ks_2samp_weighted([1.0], [1.0], a_weight=[0.0]),
            ValueError,
            "a_weight sums to a non-positive total; the ECDF is undefined",
        ),
        (
            lambda: shapes.ks_2samp_weighted([1.0], [1.0], b_weight=[-1.0]),
            ValueError,
            "b_weight sums to a non-positive total; the ECDF is undefined",
        ),
        (
            lambda: shapes.ks_2samp_weighted([1.0], [1.0], a_weight=["a"]),
            TypeError,
            "a_weight " + NUMERIC,
        ),
        (
            lambda: shapes.ks_2samp_weighted([1.0], [1.0], b_weight=["a"]),
            TypeError,
            "b_weight " + NUMERIC,
        ),
        (
            lambda: shapes.separation([0.1], [0.2], bins=1.5),
            ValueError,
            "bins must be a positive integer, got 1.5",
        ),
        (
            lambda: shapes.separation([0.1], [0.2], bins=0),
            ValueError,
            "bins must be a positive integer, got 0",
        ),
        (
            lambda: shapes.separation([], [0.2]),
            ValueError,
            "sig_score and bkg_score must both be non-empty",
        ),
        (
            lambda: shapes.separation([0.1], []),
            ValueError,
            "sig_score and bkg_score must both be non-empty",
        ),
        (lambda: shapes.separation(["a"], [0.2]), TypeError, "sig_score " + NUMERIC),
        (lambda: shapes.separation([0.1], ["a"]), TypeError, "bkg_score " + NUMERIC),
        (lambda: shapes.separation([0.1], [0.2], ["a"]), TypeError, "sig_weight " + NUMERIC),
        (lambda: shapes.separation([0.1], [0.2], None, ["a"]), TypeError, "bkg_weight " + NUMERIC),
        (
            lambda: shapes.separation([0.1], [0.2], [0.0]),
            ValueError,
            "sig_score has no positive weight inside range=(0.1, 0.2)",
        ),
        (
            lambda: shapes.separation([0.1], [0.2], None, [0.0]),
            ValueError,
            "bkg_score has no positive weight inside range=(0.1, 0.2)",
        ),
        (
            lambda: shapes.distance_correlation(np.zeros((2, 2, 2)), np.zeros(2)),
            ValueError,
            "x must have shape (n,) or (n, d), got (2, 2, 2)",
        ),
        (
            lambda: shapes.distance_correlation([0.0, np.nan], [0.0, 1.0]),
            ValueError,
            "x holds NaN or infinite values",
        ),
        (
            lambda: shapes.distance_correlation([0.0, 1.0], [0.0, np.inf]),
            ValueError,
            "y holds NaN or infinite values",
        ),
        (
            lambda: shapes.distance_correlation([0.0, 1.0], [0.0, 1.0], max_events=2.5),
            ValueError,
            "max_events must be an integer >= 2, got 2.5",
        ),
        (
            lambda: shapes.distance_correlation([0.0, 1.0], [0.0, 1.0], max_events=1),
            ValueError,
            "max_events must be an integer >= 2, got 1",
        ),
        (
            lambda: shapes.distance_correlation([0.0], [1.0]),
            ValueError,
            "x and y need at least two entries",
        ),
        (
            lambda: metrics.significance_curve([0.1, 0.2], [0.1], n_signal=1, n_background=1),
            ValueError,
            "sig_eff has shape (2,) but bkg_eff has shape (1,)",
        ),
        (
            lambda: metrics.punzi_curve([0.1], [-0.1], n_background=1.0),
            ValueError,
            "bkg_eff * n_background is negative somewhere; the Punzi figure needs B >= 0",
        ),
    ],
)
def test_error_messages(call, error: type[Exception], message: str) -> None:
    import re

    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call()


def test_defaults_of_roc_bootstrap_separation_and_dcor(negative_weight_sample) -> None:
    y, score, weight = negative_weight_sample
    curve = metrics.roc(y, score, weight)  # the true curve unless monotone is asked for
    np.testing.assert_array_equal(curve.sig_eff, metrics.roc_curve(y, score, weight)[1])
    assert (np.diff(curve.sig_eff) < 0).any() or (np.diff(curve.bkg_eff) < 0).any()
    assert metrics.roc_auc_bootstrap(y, score, random_state=0)[2].shape == (200,)
    rng = np.random.default_rng(3)
    s, b = rng.normal(1.0, size=300), rng.normal(size=200)
    hs, edges = np.histogram(s, bins=100, range=(min(s.min(), b.min()), max(s.max(), b.max())))
    hb, _ = np.histogram(b, bins=edges)
    hs, hb = hs / hs.sum(), hb / hb.sum()
    filled = hs + hb > 0
    assert shapes.separation(s, b) == pytest.approx(
        0.5 * np.sum((hs - hb)[filled] ** 2 / (hs + hb)[filled]), rel=1e-12
    )
    x = rng.normal(size=5001)
    z = x + rng.normal(size=5001)
    pick = np.random.default_rng(4).choice(5001, size=5000, replace=False)
    assert shapes.distance_correlation(x, z, random_state=4) == pytest.approx(
        shapes.distance_correlation(x[pick], z[pick]), rel=1e-12
    )


def test_bootstrap_replica_with_signal_only_in_the_lowest_group() -> None:
    # the signal candidate scores lowest: a replica is defined when both are drawn, its AUC is 0
    for seed in range(10):
        _, _, rep = metrics.roc_auc_bootstrap(
            [0, 1], [0.9, 0.1], n_bootstrap=2, random_state=seed, groups=[0, 1]
        )
        k = np.random.default_rng(seed).poisson(1.0, (2, 2))
        defined = (k > 0).all(axis=1)
        np.testing.assert_array_equal(np.isfinite(rep), defined)
        np.testing.assert_array_equal(rep[defined], 0.0)


def test_efficiency_at_background_efficiency_on_the_last_segment() -> None:
    # ROC points (b, s): (0, 0), (0, 0.5), (0.25, 0.5), (0.25, 1), (0.5, 1), (1, 1)
    y = [1, 0, 1, 0, 0, 0]
    score = [0.9, 0.8, 0.7, 0.6, 0.5, 0.5]
    for target, want in ((0.1, 0.5), (0.3, 1.0), (0.75, 1.0), (0.99, 1.0)):
        assert metrics.efficiency_at_background_efficiency(
            y, score, bkg_eff=target
        ) == pytest.approx(want, abs=1e-15)
    # a last segment that rises: (0.5, 0.5) -> (1, 1)
    y2, s2 = [1, 0, 1, 0], [0.9, 0.8, 0.1, 0.1]
    assert metrics.efficiency_at_background_efficiency(y2, s2, bkg_eff=0.75) == pytest.approx(
        0.75, abs=1e-15
    )
    assert metrics.efficiency_at_background_efficiency(y2, s2, bkg_eff=0.5) == pytest.approx(
        0.5, abs=1e-15
    )


def test_efficiency_names_its_arguments() -> None:
    import re

    with pytest.raises(TypeError, match=re.escape("score must hold numbers, got dtype <U1")):
        metrics.efficiency(["a"], 0.5)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "sample_weight has 2 entries but score has 1 (sample_weight has shape (2,), needs (1,))"
        ),
    ):
        metrics.efficiency([0.1], 0.5, [1.0, 2.0])


def test_threshold_on_a_background_curve_that_goes_down() -> None:
    # negative background weights: the raw curve dips below 0.25 after first passing it;
    # the envelope keeps the budget, so the threshold is the last one before the first crossing
    rng = np.random.default_rng(1)
    n = 30
    y = rng.random(n) < 0.5
    s = rng.normal(np.where(y, 0.5, 0.0))
    w = rng.normal(0.6, 1.0, n)
    be, _, thr = _brute_envelope(y, s, w)
    for t in np.linspace(0.05, 0.95, 19):
        want = thr[be <= t].min()
        assert metrics.threshold_at_background_efficiency(y, s, w, bkg_eff=t) == want, t
