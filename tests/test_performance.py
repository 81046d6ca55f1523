"""hepsel.stats.performance against brute-force calculations on small hand-made samples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from hepsel.stats.performance import (
    correlation_matrix,
    efficiency_vs,
    optimal_cuts,
    sculpting,
    total_efficiency,
)

CL = float(stats.norm.cdf(1.0) - stats.norm.cdf(-1.0))


def brute_cp(k: int, n: int) -> tuple[float, float]:
    """Clopper-Pearson 68.3% interval for k of n, from scipy's beta quantiles."""
    alpha = 1 - CL
    lo = 0.0 if k == 0 else stats.beta.ppf(alpha / 2, k, n - k + 1)
    hi = 1.0 if k == n else stats.beta.ppf(1 - alpha / 2, k + 1, n - k)
    return float(lo), float(hi)


def brute_binned(x, passed, edges) -> list[tuple[float, float, float] | None]:
    """Per bin (last bin closed on the right, entries outside ignored): efficiency and interval, unit weights."""
    out = []
    for b in range(len(edges) - 1):
        last = b == len(edges) - 2
        inside = [
            p
            for xi, p in zip(x, passed, strict=True)
            if edges[b] <= xi < edges[b + 1] or (last and xi == edges[b + 1])
        ]
        if not inside:
            out.append(None)
            continue
        k, n = sum(inside), len(inside)
        out.append((k / n, *brute_cp(k, n)))
    return out


def _check_binned(got: dict, want: list) -> None:
    for b, w in enumerate(want):
        if w is None:
            assert np.isnan(got["value"][b])
        else:
            assert (got["value"][b], got["low"][b], got["high"][b]) == pytest.approx(
                w, abs=1e-12
            ), b


# -- efficiency vs a variable -----------------------------------------------------------------

# per event: true decay time [ps], best score, decay mode
TAU = np.array([0.2, 0.5, 0.9, 1.0, 1.5, 1.9, 2.5, 3.0, 3.9, 4.0, 6.0, -0.1])
SCORE = np.array([0.1, 0.7, 0.9, 0.3, 0.6, 0.95, 0.4, 0.85, 0.65, 0.2, 0.99, 0.9])
MODE = np.array([1, 2, 1, 1, 2, 2, 1, 1, 2, 1, 2, 1])


def test_efficiency_vs_bin_by_bin() -> None:
    thresholds = {"660": 0.5, "330": 0.8}
    edges = [0.0, 1.0, 2.0, 4.0]
    out = efficiency_vs(
        TAU, SCORE, np.ones(len(TAU)), thresholds, edges, modes=MODE, mode_names={1: "B0 -> K+ pi-"}
    )
    # by hand at 0.5: [0, 1): 0.7, 0.9 pass of 3; [1, 2): 0.6, 0.95 of 3 (1.0 is in it); [2, 4]: 0.85, 0.65 of 4 (4.0 in it)
    assert list(out["all"]["660"]["value"]) == pytest.approx([2 / 3, 2 / 3, 2 / 4])
    # 6.0 and -0.1 lie outside the edges
    assert out["all"]["660"]["n_eff"].sum() == 10
    for wp, thr in thresholds.items():
        _check_binned(out["all"][wp], brute_binned(TAU, SCORE >= thr, edges))
        for code, name in ((1, "B0 -> K+ pi-"), (2, "2")):
            m = MODE == code
            _check_binned(out["per_mode"][name][wp], brute_binned(TAU[m], SCORE[m] >= thr, edges))
    assert out["interval"] == "Clopper-Pearson 68.3% CL"


def test_efficiency_vs_weighted_values() -> None:
    w = np.linspace(0.5, 2.0, len(TAU))
    out = efficiency_vs(TAU, SCORE, w, {"wp": 0.5}, [0.0, 2.0, 4.0])
    for b, (lo, hi) in enumerate([(0.0, 2.0), (2.0, 4.0)]):
        inside = (TAU >= lo) & ((TAU < hi) | ((b == 1) & (TAU == hi)))
        want = w[inside & (SCORE >= 0.5)].sum() / w[inside].sum()
        assert out["all"]["wp"]["value"][b] == pytest.approx(want, rel=1e-12)


# -- optimal cuts -----------------------------------------------------------------------------


def _scan(
    y, s, w, *, ns: float, nb: float, sigma: float, min_bkg: int
) -> dict[str, tuple[float, float]]:
    """Best (threshold, value) of S/sqrt(S+B) and of Punzi over every score as a cut, by explicit loops."""
    best = {"significance": (np.nan, -np.inf), "punzi": (np.nan, -np.inf)}
    ws, wb = (
        sum(w[i] for i in range(len(y)) if y[i] == 1),
        sum(w[i] for i in range(len(y)) if y[i] == 0),
    )
    for t in sorted(set(s)):
        es = sum(w[i] for i in range(len(y)) if y[i] == 1 and s[i] >= t) / ws
        eb = sum(w[i] for i in range(len(y)) if y[i] == 0 and s[i] >= t) / wb
        if sum(1 for i in range(len(y)) if y[i] == 0 and s[i] >= t) < min_bkg:
            continue
        S, B = ns * es, nb * eb
        for name, fom in (
            ("significance", S / np.sqrt(S + B) if S + B > 0 else 0.0),
            ("punzi", es / (sigma / 2 + np.sqrt(B))),
        ):
            if fom > best[name][1]:
                best[name] = (t, fom)
    return best


def _toy(seed: int, n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    s = np.round(rng.beta(2 + 3 * y, 5 - 3 * y), 3)
    return y, s, rng.uniform(0.5, 1.5, n)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("min_bkg", [0, 5])
def test_optimal_cuts_are_the_brute_force_maxima(seed: int, min_bkg: int) -> None:
    y, s, w = _toy(seed)
    out = optimal_cuts(
        y,
        s,
        w,
        signal_yield=50.0,
        background_yield=400.0,
        punzi_sigma=3.0,
        min_background_candidates=min_bkg,
    )
    want = _scan(y, s, w, ns=50.0, nb=400.0, sigma=3.0, min_bkg=min_bkg)
    for name in ("significance", "punzi"):
        assert out[name]["threshold"] == want[name][0], name
        assert out[name]["value"] == pytest.approx(want[name][1], rel=1e-12), name
        t = want[name][0]
        assert out[name]["sig_eff"] == pytest.approx(
            w[(y == 1) & (s >= t)].sum() / w[y == 1].sum(), rel=1e-12
        )
        assert out[name]["bkg_eff"] == pytest.approx(
            w[(y == 0) & (s >= t)].sum() / w[y == 0].sum(), rel=1e-12
        )


def test_minimum_background_count_moves_the_punzi_cut() -> None:
    """Punzi prefers cuts that keep almost no background; with too few simulated candidates left they are refused."""
    y, s, w = _toy(0)
    free = _scan(y, s, w, ns=50.0, nb=400.0, sigma=3.0, min_bkg=0)["punzi"][0]
    out = optimal_cuts(
        y,
        s,
        w,
        signal_yield=50.0,
        background_yield=400.0,
        punzi_sigma=3.0,
        min_background_candidates=5,
    )
    assert np.sum((y == 0) & (s >= free)) < 5
    assert out["punzi"]["threshold"] < free
    assert np.sum((y == 0) & (s >= out["punzi"]["threshold"])) >= 5


# -- sculpting --------------------------------------------------------------------------------


def naive_dcor(x: np.ndarray, y: np.ndarray) -> float:
    """Distance correlation with explicit loops over all pairs (V-statistic, Szekely et al. 2007)."""
    n = len(x)
    a = [[abs(x[i] - x[j]) for j in range(n)] for i in range(n)]
    b = [[abs(y[i] - y[j]) for j in range(n)] for i in range(n)]

    def centred(d):
        row = [sum(r) / n for r in d]
        grand = sum(row) / n
        return [[d[i][j] - row[i] - row[j] + grand for j in range(n)] for i in range(n)]

    A, B = centred(a), centred(b)
    pairs = list(itertools.product(range(n), repeat=2))
    dcov = sum(A[i][j] * B[i][j] for i, j in pairs) / n**2
    vx = sum(A[i][j] ** 2 for i, j in pairs) / n**2
    vy = sum(B[i][j] ** 2 for i, j in pairs) / n**2
    return float(np.sqrt(dcov / np.sqrt(vx * vy)))


def test_sculpting_efficiency_and_distance_correlation() -> None:
    rng = np.random.default_rng(4)
    n = 40
    mass = rng.uniform(5000.0, 5600.0, n)  # MeV
    score = np.clip(
        (mass - 5000.0) / 600.0 + rng.normal(0, 0.2, n), 0, 1
    )  # sculpts: higher mass, higher score
    mass[3] = np.nan  # dropped
    edges = [5000.0, 5200.0, 5400.0, 5600.0]
    out = sculpting(mass, score, np.ones(n), {"wp": 0.5}, edges, random_state=0)
    finite = np.isfinite(mass)
    _check_binned(out["efficiency"]["wp"], brute_binned(mass[finite], score[finite] >= 0.5, edges))
    np.testing.assert_array_equal(out["bins"], edges)
    want = naive_dcor(score[finite], mass[finite])
    assert out["distance_correlation"] == pytest.approx(want, rel=1e-10)
    assert want > 0.5
    # the same scores shuffled against the masses: no sculpting
    indep = sculpting(mass, rng.permutation(score), np.ones(n), {"wp": 0.5}, edges)
    assert indep["distance_correlation"] < want


def test_sculpting_default_bins_span_the_central_masses() -> None:
    rng = np.random.default_rng(5)
    mass = rng.normal(5300.0, 100.0, 1000)
    out = sculpting(mass, rng.random(1000), np.ones(1000), {}, 4)
    lo, hi = np.quantile(mass, [0.005, 0.995])
    np.testing.assert_allclose(
        out["bins"], [lo, lo + (hi - lo) / 4, lo + (hi - lo) / 2, lo + 3 * (hi - lo) / 4, hi]
    )


# -- input correlations -----------------------------------------------------------------------


def test_correlation_matrix_weighted_by_hand() -> None:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(30, 3))
    X[:, 2] = X[:, 0] + 0.1 * X[:, 2]
    w = rng.uniform(0.2, 2.0, 30)
    got = correlation_matrix(X, w)
    for i, j in itertools.product(range(3), repeat=2):
        mi, mj = np.sum(w * X[:, i]) / w.sum(), np.sum(w * X[:, j]) / w.sum()
        cov = np.sum(w * (X[:, i] - mi) * (X[:, j] - mj))
        var_i, var_j = np.sum(w * (X[:, i] - mi) ** 2), np.sum(w * (X[:, j] - mj) ** 2)
        assert got[i, j] == pytest.approx(cov / np.sqrt(var_i * var_j), rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(correlation_matrix(X), np.corrcoef(X.T), rtol=1e-12)


def test_correlation_matrix_takes_weight_magnitudes_and_zeroes_constant_columns() -> None:
    rng = np.random.default_rng(7)
    X = np.column_stack([rng.normal(size=25), rng.normal(size=25), np.zeros(25)])
    w = rng.uniform(0.2, 2.0, 25) * np.where(
        np.arange(25) % 5 == 0, -1.0, 1.0
    )  # sWeight-like signs
    got = correlation_matrix(X, w)
    a = np.abs(w)
    m = (a[:, None] * X).sum(axis=0) / a.sum()
    cov = ((X - m) * a[:, None]).T @ (X - m)
    want = np.zeros((3, 3))
    want[:2, :2] = cov[:2, :2] / np.sqrt(np.outer(np.diag(cov)[:2], np.diag(cov)[:2]))
    np.testing.assert_allclose(
        got, want, rtol=1e-12, atol=1e-15
    )  # the constant column: 0, also on the diagonal
    assert got.dtype == np.float64


def test_optimal_cuts_without_enough_background_consider_every_cut() -> None:
    y, s, w = _toy(1)
    out = optimal_cuts(
        y, s, w, signal_yield=50.0, background_yield=400.0, min_background_candidates=1000
    )
    want = _scan(y, s, w, ns=50.0, nb=400.0, sigma=5.0, min_bkg=0)
    assert out["significance"]["threshold"] == want["significance"][0]
    assert out["punzi"]["threshold"] == want["punzi"][0]
    assert (
        out["signal_yield"],
        out["background_yield"],
        out["punzi_sigma"],
        out["min_background_candidates"],
    ) == (50.0, 400.0, 5.0, 1000)
    curve = out["curve"]
    assert np.all(np.diff(curve["threshold"]) < 0) and np.all(np.isin(curve["threshold"], s))
    for t, e, z in zip(curve["threshold"], curve["sig_eff"], curve["significance"], strict=True):
        es = w[(y == 1) & (s >= t)].sum() / w[y == 1].sum()
        eb = w[(y == 0) & (s >= t)].sum() / w[y == 0].sum()
        assert e == pytest.approx(es, rel=1e-12)
        assert z == pytest.approx(50.0 * es / np.sqrt(50.0 * es + 400.0 * eb), rel=1e-12)


def test_efficiency_vs_names_modes_and_the_method_used() -> None:
    out = efficiency_vs(TAU, SCORE, np.ones(len(TAU)), {}, [0.0, 4.0], method="wilson")
    assert out == {"all": {}, "per_mode": {}, "interval": "Wilson 68.3% CL"}
    w = np.ones(len(TAU))
    w[0] = -0.5  # a negative weight: the normal approximation names every point
    out = efficiency_vs(TAU, SCORE, w, {"wp": 0.5}, [0.0, 2.0, 4.0], modes=MODE)
    assert out["interval"] == "Normal approx. 68.3% CL"
    assert sorted(out["per_mode"]) == ["1", "2"]
    m = MODE == 2
    inside = m & (TAU >= 0.0) & (TAU < 2.0)
    assert out["per_mode"]["2"]["wp"]["value"][0] == pytest.approx((SCORE[inside] >= 0.5).mean())


def test_working_points_keep_scores_equal_to_the_threshold() -> None:
    w = np.linspace(0.5, 2.0, len(TAU))
    out = efficiency_vs(TAU, SCORE, w, {"wp": 0.7}, [0.0, 2.0, 4.0], method="wilson", modes=MODE)
    inside = (TAU >= 0.0) & (TAU < 2.0)
    assert out["all"]["wp"]["value"][0] == pytest.approx(
        w[inside & (SCORE >= 0.7)].sum() / w[inside].sum()
    )
    assert out["all"]["wp"]["method"] == "wilson" and out["interval"] == "Wilson 68.3% CL"
    m1 = inside & (MODE == 1)  # weighted per mode too
    assert out["per_mode"]["1"]["wp"]["value"][0] == pytest.approx(
        w[m1 & (SCORE >= 0.7)].sum() / w[m1].sum()
    )
    assert out["per_mode"]["1"]["wp"]["method"] == "wilson"
    tot = total_efficiency(SCORE, w, {"wp": 0.7})
    assert tot["wp"]["eff"] == pytest.approx(w[SCORE >= 0.7].sum() / w.sum())
    mass = 5000.0 + 100.0 * np.arange(len(TAU))
    sc = sculpting(mass, SCORE, w, {"wp": 0.7}, [5000.0, 5600.0, 6100.0], method="wilson")
    lo = mass < 5600.0
    assert sc["efficiency"]["wp"]["value"][0] == pytest.approx(
        w[lo & (SCORE >= 0.7)].sum() / w[lo].sum()
    )
    assert sc["efficiency"]["wp"]["method"] == "wilson"


def test_sculpting_defaults_and_subsample() -> None:
    from hepsel.stats.shapes import distance_correlation

    rng = np.random.default_rng(9)
    n = 4100
    mass = rng.normal(5300.0, 100.0, n)
    score = rng.random(n) + (mass - 5300.0) / 1000.0
    out = sculpting(mass, score, np.ones(n), {}, random_state=3)
    assert len(out["bins"]) == 21  # 20 bins by default
    assert out["distance_correlation"] == distance_correlation(
        score, mass, max_events=4000, random_state=3
    )


def _brute_roc_points(y, s, w) -> list[tuple[float, float]]:
    """(threshold, signal efficiency) at every distinct score, decreasing thresholds."""
    return [
        (t, w[(y == 1) & (s >= t)].sum() / w[y == 1].sum()) for t in sorted(set(s), reverse=True)
    ]


def test_optimal_cut_curve_and_default_background_floor() -> None:
    y, s, w = _toy(2, n=60)
    out = optimal_cuts(y, s, w, signal_yield=50.0, background_yield=400.0)
    want = _scan(y, s, w, ns=50.0, nb=400.0, sigma=5.0, min_bkg=10)
    assert out["min_background_candidates"] == 10
    assert out["significance"]["threshold"] == want["significance"][0]
    assert out["punzi"]["threshold"] == want["punzi"][0]
    # the plotted curve: for each of 501 signal efficiencies from 0 to 1, the first cut that reaches it
    pts = _brute_roc_points(y, s, w)
    chosen = sorted(
        {
            next((i for i, (_, e) in enumerate(pts) if e >= t - 1e-12), len(pts) - 1)
            for t in np.linspace(0, 1, 501)
        }
    )
    np.testing.assert_array_equal(out["curve"]["threshold"], [pts[i][0] for i in chosen])
    assert sorted(out["curve"]) == ["allowed", "punzi", "sig_eff", "significance", "threshold"]
    # a cut is allowed when at least 10 simulated background candidates (unweighted) pass it
    np.testing.assert_array_equal(
        out["curve"]["allowed"], [int(((y == 0) & (s >= pts[i][0])).sum()) >= 10 for i in chosen]
    )
    assert not out["curve"]["allowed"].all() and out["curve"]["allowed"].any()
    np.testing.assert_allclose(
        out["curve"]["punzi"],
        [
            pts[i][1]
            / (2.5 + np.sqrt(400.0 * w[(y == 0) & (s >= pts[i][0])].sum() / w[y == 0].sum()))
            for i in chosen
        ],
        rtol=1e-12,
    )


def test_optimal_cut_curve_reaches_the_last_cut_and_follows_fine_steps() -> None:
    # the lowest score is a signal candidate: only the loosest cut keeps all the signal
    y, s, w = np.array([1, 0, 1, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6, 0.1]), np.ones(5)
    curve = optimal_cuts(
        y, s, w, signal_yield=5.0, background_yield=5.0, min_background_candidates=0
    )["curve"]
    assert curve["threshold"][-1] == 0.1 and curve["sig_eff"][-1] == 1.0
    # many small weighted steps: exactly the cuts that first reach each of the 501 targets
    rng = np.random.default_rng(8)
    n = 3000
    y = (rng.random(n) < 0.5).astype(np.int64)
    s = rng.normal(y.astype(float))
    w = rng.uniform(0.5, 1.5, n)
    curve = optimal_cuts(y, s, w, signal_yield=5.0, background_yield=5.0)["curve"]
    order = np.argsort(-s)
    se = np.cumsum(np.where(y[order] == 1, w[order], 0.0)) / w[y == 1].sum()
    chosen = np.unique(np.searchsorted(se, np.linspace(0, 1, 501) - 1e-12).clip(0, n - 1))
    np.testing.assert_array_equal(curve["threshold"], s[order][chosen])


def test_optimal_cuts_with_negative_weights_use_the_envelope() -> None:
    y, s, w = _toy(3)
    w = w * np.where(np.arange(len(w)) % 4 == 1, -0.6, 1.0)  # sWeight-like signal weights
    out = optimal_cuts(
        y, s, w, signal_yield=50.0, background_yield=400.0, min_background_candidates=0
    )
    pts = _brute_roc_points(y, s, w)
    envelope = np.maximum.accumulate([e for _, e in pts])
    assert not np.all(np.diff([e for _, e in pts]) >= 0)  # the true curve goes down somewhere
    for t, e in zip(out["curve"]["threshold"], out["curve"]["sig_eff"], strict=True):
        i = [p[0] for p in pts].index(t)
        assert e == pytest.approx(envelope[i], rel=1e-12)
