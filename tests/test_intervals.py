"""Tests of hepsel.stats.intervals against scipy and the textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hepsel.stats import intervals
from hepsel.stats.intervals import DEFAULT_CL

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


# --------------------------------------------------------------------------
# edge cases against brute force, and exact messages
# --------------------------------------------------------------------------


def _brute_bootstrap(passed, weight, edges, x, cl, n_bootstrap, seed):
    """Poisson-bootstrap percentile interval per bin, written out with the same random stream."""
    passed = np.asarray(passed, bool)
    base = np.ones(len(passed)) if weight is None else np.asarray(weight, float)
    rng = np.random.default_rng(seed)
    n_bins = len(edges) - 1
    reps = np.full((n_bootstrap, n_bins), np.nan)
    for r in range(n_bootstrap):
        w = base * rng.poisson(1.0, len(passed))
        for j in range(n_bins):
            last = j == n_bins - 1
            inb = (x >= edges[j]) & ((x <= edges[j + 1]) if last else (x < edges[j + 1]))
            if w[inb].sum() > 0:
                reps[r, j] = w[inb & passed].sum() / w[inb].sum()
    lo = [
        np.percentile(c[np.isfinite(c)], 50 * (1 - cl)) if np.isfinite(c).any() else np.nan
        for c in reps.T
    ]
    hi = [
        np.percentile(c[np.isfinite(c)], 50 * (1 + cl)) if np.isfinite(c).any() else np.nan
        for c in reps.T
    ]
    return np.array(lo), np.array(hi)


@pytest.mark.parametrize("weighted", [False, True])
def test_bootstrap_interval_equals_the_percentiles_written_out(weighted: bool) -> None:
    rng = np.random.default_rng(8)
    n = 30
    passed = rng.random(n) < 0.6
    weight = rng.uniform(0.01, 0.05, n) if weighted else None  # totals below 1
    eff = intervals.efficiency_interval(
        passed, weight, method="bootstrap", random_state=4
    )  # default 200 replicas
    lo, hi = _brute_bootstrap(
        passed, weight, np.array([0.0, 1.0]), np.full(n, 0.5), DEFAULT_CL, 200, 4
    )
    assert (eff.low, eff.high) == pytest.approx((lo[0], hi[0]), rel=1e-12)
    assert eff.method == "bootstrap"
    x = rng.uniform(0, 3, n)
    edges = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # the last bin stays empty
    out = intervals.binned_efficiency(
        x, passed, edges, weight, method="bootstrap", random_state=5, cl=0.9
    )
    lo, hi = _brute_bootstrap(passed, weight, edges, x, 0.9, 200, 5)
    np.testing.assert_allclose(out["low"], lo, rtol=1e-12)
    np.testing.assert_allclose(out["high"], hi, rtol=1e-12)
    assert np.isnan(out["low"][-1]) and np.isnan(out["value"][-1]) and np.isnan(out["n_eff"][-1])
    eff2 = intervals.efficiency_interval(
        passed, weight, method="bootstrap", n_bootstrap=2, random_state=4
    )
    lo, hi = _brute_bootstrap(
        passed, weight, np.array([0.0, 1.0]), np.full(n, 0.5), DEFAULT_CL, 2, 4
    )
    assert (eff2.low, eff2.high) == pytest.approx((lo[0], hi[0]), rel=1e-12)


def test_integer_and_float_flags_equal_booleans() -> None:
    flags = np.array([True, False, True, True, False])
    want = intervals.efficiency_interval(flags, method="wilson")
    for other in (flags.astype(int), flags.astype(float)):
        assert intervals.efficiency_interval(other, method="wilson") == want


def test_small_weights_and_zero_weights() -> None:
    # weights summing below 1, and zero weights, keep the exact methods and the raw formulas
    passed = np.array([True, True, False, True, False])
    w = np.array([0.1, 0.0, 0.2, 0.05, 0.0])
    eff = intervals.efficiency_interval(passed, w)
    assert eff.method == "clopper_pearson"
    assert eff.value == pytest.approx(0.15 / 0.35, rel=1e-14)
    n_eff = 0.35**2 / 0.0525
    assert eff.n_eff == pytest.approx(n_eff, rel=1e-14)
    lo, hi = intervals.clopper_pearson(eff.value * n_eff, n_eff)
    assert (eff.low, eff.high) == pytest.approx((lo, hi), rel=1e-12)
    k_eff, n_eff = intervals.effective_counts([0.1, 0.0], [0.3, 0.0], [0.01, 0.0], [0.05, 0.0])
    np.testing.assert_allclose(k_eff, [0.1 * 0.3 / 0.05, 0.0], rtol=1e-14)
    np.testing.assert_allclose(n_eff, [0.09 / 0.05, 0.0], rtol=1e-14)


def test_weighted_normal_interval_is_clipped_only_without_negative_weights() -> None:
    passed = np.array([True, True, True, False])
    w = np.array([0.5, 0.4, 0.5, 0.05])  # positive, below 1: the interval passes 1 and is clipped
    eff = intervals.efficiency_interval(passed, w, method="normal", cl=0.95)
    z = stats.norm.ppf(0.975)
    e = 1.4 / 1.45
    half = z * np.sqrt(((1 - 2 * e) * 0.66 + e**2 * (0.66 + 0.0025)) / 1.45**2)
    assert eff.high == 1.0 and e + half > 1.0
    assert eff.low == pytest.approx(e - half, rel=1e-12)
    # a zero weight is not a negative one: still clipped
    zero = intervals.efficiency_interval(
        np.append(passed, True), np.append(w, 0.0), method="normal", cl=0.95
    )
    assert zero.high == 1.0 and zero.low == eff.low
    passed0 = ~passed
    eff0 = intervals.efficiency_interval(passed0, w, method="normal", cl=0.95)
    assert eff0.low == 0.0
    # negative weights: the efficiency leaves [0, 1] and the interval is kept as it is
    neg = intervals.efficiency_interval(
        [True, True, False], [2.0, 2.0, -1.0], method="clopper_pearson"
    )
    assert neg.method == "normal"
    assert neg.value == pytest.approx(4 / 3) and neg.high > neg.value > 1.0
    lo_n, hi_n = intervals.normal(1, 3, cl=0.95)
    p, half = 1 / 3, stats.norm.ppf(0.975) * np.sqrt(2 / 27)
    assert (lo_n, hi_n) == (0.0, pytest.approx(p + half)) and p - half < 0
    lo_n, hi_n = intervals.normal(2, 3, cl=0.95)
    assert hi_n == 1.0 and lo_n == pytest.approx(2 / 3 - half)


def test_binned_edges_single_candidates_and_empty_totals() -> None:
    x = np.array([0.0, 0.5, 0.5, 1.0, 1.5, 2.0])
    passed = np.array([True, False, True, True, False, True])
    w = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.5])
    # a value on an inner edge belongs to the bin above; the upper edge closes the last bin
    out = intervals.binned_efficiency(x, passed, [0.0, 0.5, 1.0, 2.0], w, method="wilson")
    assert out["value"][0] == 1.0  # only x = 0.0
    assert out["value"][1] == 0.5
    # bin [1, 2]: weights 0, 0 and 0.5 -> value 1; bin [0.5, 1): two candidates
    np.testing.assert_allclose(out["value"], [1.0, 0.5, 1.0])
    np.testing.assert_allclose(out["n_eff"], [1.0, 2.0, 1.0])
    assert out["method"] == "wilson" and out["cl"] == DEFAULT_CL
    assert sorted(out) == ["centres", "cl", "edges", "high", "low", "method", "n_eff", "value"]
    zero = intervals.binned_efficiency(
        x, passed, [0.0, 1.0, 1.6, 2.0], np.where(x >= 1.0, 0.0, 1.0)
    )
    assert np.isnan(zero["value"][1]) and np.isnan(zero["low"][1]) and np.isnan(zero["n_eff"][1])
    one = intervals.binned_efficiency([5.0], [True], 2)
    np.testing.assert_allclose(one["edges"], [4.5, 5.0, 5.5])
    np.testing.assert_allclose(one["value"], [np.nan, 1.0])
    assert len(intervals.binned_efficiency(x, passed, 1)["value"]) == 1
    fine = intervals.binned_efficiency(x, passed, [0.0, 2.0])
    np.testing.assert_allclose(fine["value"], [4 / 6])
    small = intervals.binned_efficiency(x, passed, [0.0, 0.25, 2.0])
    np.testing.assert_allclose(small["value"], [1.0, 3 / 5])
    assert len(intervals.binned_efficiency(np.arange(20.0), np.ones(20, bool), 5)["edges"]) == 6


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: intervals.interval_label("jeffreys"),
            ValueError,
            "method must be one of 'clopper_pearson', 'wilson', 'normal', 'bootstrap'; got 'jeffreys'",
        ),
        (
            lambda: intervals.wilson(1, 2, cl=0.0),
            ValueError,
            "cl must lie strictly between 0 and 1, got 0.0",
        ),
        (lambda: intervals.wilson(np.nan, 2), ValueError, "k and n must be finite"),
        (lambda: intervals.wilson(1, np.inf), ValueError, "k and n must be finite"),
        (lambda: intervals.wilson(1, -2), ValueError, "n must be non-negative"),
        (lambda: intervals.wilson(3, 2), ValueError, "k must satisfy 0 <= k <= n"),
        (
            lambda: intervals.effective_counts(1.0, 2.0, -1.0, 3.0),
            ValueError,
            "pass_weights_sq_sum must satisfy 0 <= pass_weights_sq_sum <= total_weights_sq_sum",
        ),
        (
            lambda: intervals.efficiency_interval([[True, False]]),
            ValueError,
            "passed must be one-dimensional, got shape (1, 2)",
        ),
        (
            lambda: intervals.efficiency_interval(["a"]),
            TypeError,
            "passed must hold booleans (or 0/1), got dtype <U1",
        ),
        (
            lambda: intervals.efficiency_interval([0, 2]),
            ValueError,
            "passed must hold only booleans or 0/1",
        ),
        (
            lambda: intervals.efficiency_interval([]),
            ValueError,
            "passed is empty; the efficiency of no candidates is undefined",
        ),
        (
            lambda: intervals.efficiency_interval([True, False], [1.0]),
            ValueError,
            "sample_weight has 1 entries but passed has 2 (sample_weight has shape (1,), needs (2,))",
        ),
        (
            lambda: intervals.efficiency_interval([True, False], [1.0, -1.0]),
            ValueError,
            "sample_weight sums to a non-positive total; the efficiency is undefined",
        ),
        (
            lambda: intervals.efficiency_interval(
                [True, False], method="bootstrap", n_bootstrap=1.5
            ),
            ValueError,
            "n_bootstrap must be an integer >= 2, got 1.5",
        ),
        (
            lambda: intervals.efficiency_interval(
                [True, False], method="bootstrap", n_bootstrap=2.5
            ),
            ValueError,
            "n_bootstrap must be an integer >= 2, got 2.5",
        ),
        (
            lambda: intervals.binned_efficiency([[1.0]], [True], 2),
            ValueError,
            "x must be one-dimensional, got shape (1, 1)",
        ),
        (
            lambda: intervals.binned_efficiency([1.0, 2.0], [True], 2),
            ValueError,
            "passed has shape (1,) but x has shape (2,)",
        ),
        (
            lambda: intervals.binned_efficiency([1.0], [True], 0),
            ValueError,
            "bins must be a positive integer or a sequence of edges, got 0",
        ),
        (
            lambda: intervals.binned_efficiency([1.0], [True], 1.5),
            ValueError,
            "bins must be a positive integer or a sequence of edges, got 1.5",
        ),
        (
            lambda: intervals.binned_efficiency([np.nan], [True], 2),
            ValueError,
            "x has no finite values to derive bin edges from; pass explicit edges",
        ),
        (
            lambda: intervals.binned_efficiency([1.0], [True], [1.0]),
            ValueError,
            "bins given as edges must be a 1-d, strictly increasing sequence of at least 2 values",
        ),
        (
            lambda: intervals.binned_efficiency([1.0], [True], [0.0, 1.0, 1.0]),
            ValueError,
            "bins given as edges must be a 1-d, strictly increasing sequence of at least 2 values",
        ),
        (
            lambda: intervals.binned_efficiency([1.0], [True], [0.0, np.inf]),
            ValueError,
            "bins edges must be finite",
        ),
    ],
)
def test_error_messages(call, error: type[Exception], message: str) -> None:
    import re

    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call()


def test_binned_intervals_with_negative_weights_are_not_clipped() -> None:
    x = np.array([0.5, 0.6, 0.7, 1.5, 1.6])
    out = intervals.binned_efficiency(
        x, [True, True, False, True, False], [0.0, 1.0, 2.0], [2.0, 2.0, -1.0, 1.0, 1.0]
    )
    assert out["method"] == "normal"
    assert out["value"][0] == pytest.approx(4 / 3) and out["high"][0] > out["value"][0] > 1.0
