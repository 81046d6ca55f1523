"""Tests of hepsel.intervals against scipy and the textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hepsel import intervals
from hepsel.intervals import DEFAULT_CL

GRID = [
    (k, n)
    for n in (1, 2, 3, 7, 10, 50, 333, 1000)
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n})
    if 0 <= k <= n
]
CLS = [DEFAULT_CL, 0.9, 0.95]


def _scipy_ci(k: int, n: int, cl: float, method: str) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=cl, method=method)
    return ci.low, ci.high


# --------------------------------------------------------------------------
# intervals from counts
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cl", CLS, ids=["1sigma", "90", "95"])
@pytest.mark.parametrize(
    ("func", "scipy_method"),
    [(intervals.clopper_pearson, "exact"), (intervals.wilson, "wilson")],
    ids=["clopper_pearson", "wilson"],
)
def test_intervals_match_scipy_binomtest(func, scipy_method: str, cl: float) -> None:
    k = np.array([g[0] for g in GRID])
    n = np.array([g[1] for g in GRID])
    lo, hi = func(k, n, cl)
    assert lo.shape == hi.shape == k.shape
    want = np.array([_scipy_ci(int(a), int(b), cl, scipy_method) for a, b in GRID])
    np.testing.assert_allclose(lo, want[:, 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(hi, want[:, 1], rtol=0, atol=1e-10)
    assert np.all(lo[k == 0] == 0.0)
    assert np.all(hi[k == n] == 1.0)


@pytest.mark.parametrize(
    "func",
    [intervals.clopper_pearson, intervals.wilson, intervals.normal],
    ids=lambda f: f.__name__,
)
def test_scalar_in_scalar_out_and_empty_is_nan(func) -> None:
    lo, hi = func(3, 10)
    assert isinstance(float(lo), float)
    assert np.ndim(lo) == 0
    assert lo < 0.3 < hi
    lo, hi = func([0, 2], [0, 4])
    assert np.isnan(lo[0])
    assert np.isnan(hi[0])
    assert np.isfinite(lo[1])


def test_normal_interval_formula() -> None:
    k = np.array([0, 1, 5, 9, 10, 40])
    n = np.array([10, 10, 10, 10, 10, 100])
    z = stats.norm.ppf(0.5 + 0.5 * DEFAULT_CL)
    p = k / n
    half = z * np.sqrt(p * (1 - p) / n)
    lo, hi = intervals.normal(k, n)
    np.testing.assert_allclose(lo, np.clip(p - half, 0, 1), rtol=1e-14)
    np.testing.assert_allclose(hi, np.clip(p + half, 0, 1), rtol=1e-14)
    assert z == pytest.approx(1.0, rel=1e-12)


def test_non_integer_counts_are_accepted() -> None:
    lo, hi = intervals.clopper_pearson(2.5, 7.3)
    lo_int, _hi_int = intervals.clopper_pearson(2, 7)
    assert np.isfinite(lo)
    assert np.isfinite(hi)
    assert lo > lo_int


@pytest.mark.parametrize(
    ("k", "n", "cl", "match"),
    [
        (5, 4, DEFAULT_CL, "0 <= k <= n"),
        (-1, 4, DEFAULT_CL, "0 <= k <= n"),
        (1, -2, DEFAULT_CL, "n must be non-negative"),
        (1, 4, 1.0, "cl must lie"),
    ],
    ids=["k>n", "k<0", "n<0", "cl=1"],
)
def test_bad_counts_raise(k, n, cl, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        intervals.clopper_pearson(k, n, cl)


def test_effective_counts() -> None:
    k_eff, n_eff = intervals.effective_counts([3, 0, 7], [7, 5, 7], [3, 0, 7], [7, 5, 7])
    np.testing.assert_array_equal(k_eff, [3, 0, 7])
    np.testing.assert_array_equal(n_eff, [7, 5, 7])

    rng = np.random.default_rng(1)
    w = rng.lognormal(size=200)
    passed = rng.random(200) < 0.3
    k_eff, n_eff = intervals.effective_counts(
        w[passed].sum(), w.sum(), (w[passed] ** 2).sum(), (w**2).sum()
    )
    assert n_eff == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-14)
    assert k_eff == pytest.approx(w[passed].sum() / w.sum() * n_eff, rel=1e-14)
    with pytest.raises(ValueError, match="pass_weights_sq_sum"):
        intervals.effective_counts(1.0, 2.0, 5.0, 3.0)


def test_labels() -> None:
    assert set(intervals.INTERVAL_LABELS) == set(intervals.METHODS)
    assert intervals.INTERVAL_LABELS["clopper_pearson"] == "Clopper-Pearson 68.3% CL"
    assert all("68.3% CL" in label for label in intervals.INTERVAL_LABELS.values())
    assert intervals.interval_label("wilson", 0.95) == "Wilson 95.0% CL"
    with pytest.raises(ValueError, match="method must be one of"):
        intervals.interval_label("jeffreys")


# --------------------------------------------------------------------------
# efficiency of a sample
# --------------------------------------------------------------------------


@pytest.fixture
def flags() -> np.ndarray:
    return np.random.default_rng(2).random(400) < 0.2


@pytest.mark.parametrize("method", ["clopper_pearson", "wilson", "normal"])
def test_unweighted_efficiency_uses_raw_counts(flags: np.ndarray, method: str) -> None:
    eff = intervals.efficiency_interval(flags, method=method, cl=0.9)
    lo, hi = getattr(intervals, method)(flags.sum(), flags.size, 0.9)
    assert eff.value == flags.mean()
    assert (eff.low, eff.high) == pytest.approx((lo, hi), abs=1e-15)
    assert eff.method == method
    assert eff.n_eff == flags.size
    assert eff.cl == 0.9
    assert eff.errors == pytest.approx((eff.value - lo, hi - eff.value))
    assert eff.label == intervals.interval_label(method, 0.9)


def test_unit_weights_equal_no_weights(flags: np.ndarray) -> None:
    for method in ("clopper_pearson", "wilson", "normal"):
        plain = intervals.efficiency_interval(flags, method=method)
        unit = intervals.efficiency_interval(flags, np.ones(flags.size), method=method)
        assert (unit.value, unit.low, unit.high, unit.n_eff) == pytest.approx(
            (plain.value, plain.low, plain.high, plain.n_eff), abs=1e-14
        )


def test_weighted_efficiency_value_and_effective_counts(flags: np.ndarray) -> None:
    w = np.random.default_rng(3).lognormal(sigma=0.7, size=flags.size)
    eff = intervals.efficiency_interval(flags, w)
    assert eff.value == pytest.approx(np.average(flags, weights=w), rel=1e-14)
    # by hand: Clopper-Pearson at the effective counts, from scipy's beta quantiles
    n_eff = w.sum() ** 2 / (w**2).sum()
    k_eff = w[flags].sum() / w.sum() * n_eff
    alpha = 1 - (stats.norm.cdf(1) - stats.norm.cdf(-1))
    lo = stats.beta.ppf(alpha / 2, k_eff, n_eff - k_eff + 1)
    hi = stats.beta.ppf(1 - alpha / 2, k_eff + 1, n_eff - k_eff)
    assert (eff.low, eff.high) == pytest.approx((lo, hi), abs=1e-12)
    assert eff.n_eff == pytest.approx(n_eff)
    assert eff.method == "clopper_pearson"


def test_weighted_normal_uses_weighted_variance(flags: np.ndarray) -> None:
    w = np.random.default_rng(4).lognormal(size=flags.size)
    eff = intervals.efficiency_interval(flags, w, method="normal")
    e = w[flags].sum() / w.sum()
    var = ((1 - 2 * e) * (w[flags] ** 2).sum() + e**2 * (w**2).sum()) / w.sum() ** 2
    assert (eff.low, eff.high) == pytest.approx((e - np.sqrt(var), e + np.sqrt(var)), rel=1e-10)


@pytest.mark.parametrize("method", ["clopper_pearson", "wilson"])
def test_negative_weights_fall_back_to_normal(flags: np.ndarray, method: str) -> None:
    w = np.random.default_rng(5).normal(1.0, 1.0, size=flags.size)
    assert (w < 0).any()
    eff = intervals.efficiency_interval(flags, w, method=method)
    ref = intervals.efficiency_interval(flags, w, method="normal")
    assert eff.method == "normal"
    assert np.isfinite([eff.value, eff.low, eff.high, eff.n_eff]).all()
    assert (eff.value, eff.low, eff.high) == (ref.value, ref.low, ref.high)
    assert eff.low <= eff.value <= eff.high


def test_bootstrap_is_seeded_and_close_to_normal() -> None:
    rng = np.random.default_rng(6)
    passed = rng.random(5000) < 0.3
    w = rng.lognormal(sigma=0.3, size=5000)
    first = intervals.efficiency_interval(passed, w, method="bootstrap", random_state=1)
    again = intervals.efficiency_interval(passed, w, method="bootstrap", random_state=1)
    assert first == again
    assert first.method == "bootstrap"
    normal = intervals.efficiency_interval(passed, w, method="normal")
    assert first.value == normal.value
    width = normal.high - normal.low
    assert first.high - first.low == pytest.approx(width, rel=0.25)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([],), {}, ValueError, "passed is empty"),
        (([True, False], [1.0]), {}, ValueError, "sample_weight has shape"),
        (([True, False], [1.0, -1.0]), {}, ValueError, "non-positive total"),
        (([True, False],), {"method": "jeffreys"}, ValueError, "method must be one of"),
        (([1, 2],), {}, ValueError, "passed must hold only"),
        ((["a", "b"],), {}, TypeError, "passed must hold booleans"),
    ],
    ids=["empty", "weight-shape", "zero-total", "method", "not-01", "strings"],
)
def test_efficiency_interval_errors(args, kwargs, error, match: str) -> None:
    with pytest.raises(error, match=match):
        intervals.efficiency_interval(*args, **kwargs)


# --------------------------------------------------------------------------
# binned efficiency
# --------------------------------------------------------------------------


def _manual_binned(x, passed, edges, weight, method):
    value, low, high = [], [], []
    for i in range(len(edges) - 1):
        upper = x <= edges[i + 1] if i == len(edges) - 2 else x < edges[i + 1]
        sel = (x >= edges[i]) & upper
        if not sel.any():
            value.append(np.nan)
            low.append(np.nan)
            high.append(np.nan)
            continue
        eff = intervals.efficiency_interval(
            passed[sel], None if weight is None else weight[sel], method=method
        )
        value.append(eff.value)
        low.append(eff.low)
        high.append(eff.high)
    return np.array(value), np.array(low), np.array(high)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("method", ["clopper_pearson", "wilson", "normal"])
def test_binned_efficiency_matches_per_bin_loop(method: str, weighted: bool) -> None:
    rng = np.random.default_rng(7)
    x = rng.exponential(2000.0, size=3000)  # e.g. a pT in MeV
    passed = rng.random(3000) < np.clip(x / 5000.0, 0.05, 0.95)
    weight = rng.lognormal(sigma=0.4, size=3000) if weighted else None
    edges = np.array([0.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 20000.0, 50000.0, 60000.0])
    x[0] = edges[-1]  # lands in the last bin, as with numpy.histogram
    x[1] = 1e6  # outside: ignored
    result = intervals.binned_efficiency(x, passed, edges, weight, method=method)
    value, low, high = _manual_binned(x, passed, edges, weight, method)
    np.testing.assert_array_equal(result["edges"], edges)
    np.testing.assert_allclose(result["centres"], 0.5 * (edges[1:] + edges[:-1]))
    np.testing.assert_allclose(result["value"], value, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(result["low"], low, rtol=1e-10, atol=1e-14, equal_nan=True)
    np.testing.assert_allclose(result["high"], high, rtol=1e-10, atol=1e-14, equal_nan=True)
    assert np.isnan(result["value"]).any()  # one bin is empty
    assert result["method"] == method


def test_binned_efficiency_integer_bins_and_negative_weights() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=2000)
    passed = x + rng.normal(size=2000) > 0
    weight = rng.normal(1.0, 0.8, size=2000)
    result = intervals.binned_efficiency(x, passed, 10, weight)
    np.testing.assert_allclose(result["edges"], np.histogram_bin_edges(x, 10))
    assert result["method"] == "normal"
    filled = np.isfinite(result["value"])
    assert filled.all()
    assert np.isfinite(result["low"][filled]).all()
    assert np.isfinite(result["high"][filled]).all()


def test_binned_bootstrap_is_seeded_and_brackets_value() -> None:
    rng = np.random.default_rng(9)
    x = rng.uniform(0, 10, size=4000)
    passed = rng.random(4000) < x / 10
    kwargs = {"method": "bootstrap", "random_state": 2, "n_bootstrap": 100}
    first = intervals.binned_efficiency(x, passed, [0, 2, 5, 10, 12], **kwargs)
    again = intervals.binned_efficiency(x, passed, [0, 2, 5, 10, 12], **kwargs)
    np.testing.assert_array_equal(first["low"], again["low"])
    assert np.isnan(first["low"][-1])
    inner = slice(0, 3)
    assert np.all(first["low"][inner] < first["value"][inner])
    assert np.all(first["value"][inner] < first["high"][inner])


@pytest.mark.parametrize(
    ("bins", "match"),
    [
        (0, "bins must be a positive integer"),
        ([1.0], "strictly increasing"),
        ([0.0, 2.0, 1.0], "strictly increasing"),
    ],
    ids=["zero", "one-edge", "decreasing"],
)
def test_binned_efficiency_bad_bins(bins, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        intervals.binned_efficiency([0.5, 1.5], [True, False], bins)


def test_public_api() -> None:
    for name in intervals.__all__:
        assert hasattr(intervals, name)
    assert {"clopper_pearson", "wilson", "normal", "efficiency_interval"} <= set(intervals.__all__)
