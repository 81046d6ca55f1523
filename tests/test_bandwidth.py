"""The menu figures and the bandwidth division, against brute-force computations written out here."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from hepsel.stats.bandwidth import divide_bandwidth
from hepsel.stats.menu import (
    MinBiasLines,
    SignalLines,
    evaluate_menu,
    naive_split,
    prescale_mask,
    split_even_odd,
)
from hepsel.stats.trigger import EventScores, output_rate, rate_curve, threshold_for_rate

INPUT = 30_000.0


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """These problems are small: one torch thread, which also keeps them fast on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy(
    seed: int = 1,
    n_mb: int = 4000,
    n_sig: int = 600,
    weights: str = "unit",
) -> tuple[MinBiasLines, SignalLines]:
    """Two overlapping lines, three channels: one served by each line, one by both."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_mb, 2))
    mb = np.column_stack([z[:, 0], 0.6 * z[:, 0] + 0.8 * z[:, 1]])
    mb[rng.random(n_mb) < 0.3, 1] = -np.inf
    ch = rng.choice(3, size=n_sig, p=[0.6, 0.3, 0.1])  # unequal channels: weighting matters
    shift = np.array([[2.5, 0.5], [0.5, 2.5], [1.5, 1.5]])[ch]
    sig = rng.normal(size=(n_sig, 2)) + shift
    sig[rng.random(n_sig) < 0.1, 0] = -np.inf
    if weights == "unit":
        w_mb, w_sig = np.ones(n_mb), np.ones(n_sig)
    elif weights == "positive":
        w_mb, w_sig = rng.uniform(0.5, 1.5, n_mb), rng.uniform(0.5, 1.5, n_sig)
    else:  # some negative, as from an sWeighted or NLO sample
        w_mb = np.where(rng.random(n_mb) < 0.1, -0.5, 1.0)
        w_sig = np.where(rng.random(n_sig) < 0.1, -0.5, 1.0)
    # a fifth of the processed minimum-bias events have no candidate: weight only in the total
    total = 1.25 * float(w_mb.sum())
    return (
        MinBiasLines(mb, w_mb, total, event=np.arange(n_mb)),
        SignalLines(sig, w_sig, ch, event=np.arange(n_sig)),
    )


# --------------------------------------------------------------------------
# brute force, written without the module
# --------------------------------------------------------------------------
def brute_fire(scores: np.ndarray, thr: np.ndarray) -> np.ndarray:
    return np.stack(
        [(col > -np.inf) & (col >= t) for col, t in zip(scores.T, thr, strict=True)], axis=1
    ).reshape(scores.shape)


def brute_objective(sig: SignalLines, thr: np.ndarray, a: np.ndarray | None = None) -> float:
    fire = brute_fire(sig.scores, thr).any(axis=1)
    a = np.ones(sig.n_channels) if a is None else a
    num = den = 0.0
    for c in range(sig.n_channels):
        m = sig.channel == c
        if sig.weight[m].sum() > 0:
            num += a[c] * sig.weight[m & fire].sum() / sig.weight[m].sum()
            den += a[c]
    return num / den


def brute_best(mb: MinBiasLines, sig: SignalLines, target: float) -> float:
    """The best feasible objective of two lines, every pair of minimum-bias score thresholds tried.

    Optimal thresholds sit at minimum-bias scores (raising one up to the next
    score changes no rate). For each threshold of line 0 (each distinct
    score, and inf) the best threshold of line 1 is the lowest whose rate
    still fits in what is left: the objective only grows as a threshold falls.
    """
    s, w, tot = mb.scores, mb.weight, mb.total_weight
    allowed = target / INPUT * tot * (1 + 1e-12)
    best = -1.0
    has1 = np.isfinite(s[:, 1])
    scores1 = s[has1, 1]
    order = np.argsort(-scores1, kind="stable")
    v, w1 = scores1[order], w[has1][order]
    last_of_tie = np.append(v[1:] != v[:-1], True)
    for t0 in np.append(np.unique(s[np.isfinite(s[:, 0]), 0]), np.inf):
        f0 = np.isfinite(s[:, 0]) & (s[:, 0] >= t0)
        used = w[f0].sum()
        if used > allowed:
            continue
        # positive weights: the rate grows as line 1's threshold falls (by the events line 0
        # leaves); line 1 may go down to just above the first score that overshoots
        cw = used + np.cumsum(np.where(f0[has1][order], 0.0, w1))
        bad = np.flatnonzero(last_of_tie & (cw > allowed))
        t1 = scores1[scores1 > v[bad[0]]].min(initial=np.inf) if len(bad) else scores1.min()
        best = max(best, brute_objective(sig, np.array([t0, t1])))
    return best


def brute_rate(mb: MinBiasLines, thr: np.ndarray) -> float:
    return INPUT * float(mb.weight @ brute_fire(mb.scores, thr).any(axis=1)) / mb.total_weight


# --------------------------------------------------------------------------
# the figures of a menu
# --------------------------------------------------------------------------
def test_evaluate_menu_matches_brute_force() -> None:
    mb, sig = toy(weights="positive", n_mb=500, n_sig=200)
    thr = np.array([1.0, 0.5])
    fig = evaluate_menu(thr, mb, sig, input_rate_khz=INPUT, channel_weights=[1.0, 2.0, 3.0])
    fire = brute_fire(mb.scores, thr)
    w, tot = mb.weight, mb.total_weight
    n_eff = tot**2 / np.sum(w**2)

    def err(f: float) -> float:
        return INPUT * np.sqrt(max(f * (1 - f), 0.0) / n_eff)

    any_f = sum(w[i] for i in range(len(w)) if fire[i].any()) / tot
    assert fig.rate == pytest.approx(INPUT * any_f, rel=1e-12)
    assert fig.rate_error == pytest.approx(err(any_f), rel=1e-12)
    for j in range(2):
        incl = sum(w[i] for i in range(len(w)) if fire[i, j]) / tot
        excl = sum(w[i] for i in range(len(w)) if fire[i, j] and fire[i].sum() == 1) / tot
        assert fig.inclusive_rate[j] == pytest.approx(INPUT * incl, rel=1e-12)
        assert fig.exclusive_rate[j] == pytest.approx(INPUT * excl, rel=1e-12)
        assert fig.exclusive_rate_error[j] == pytest.approx(err(excl), rel=1e-12)
        for k in range(2):
            both = sum(w[i] for i in range(len(w)) if fire[i, j] and fire[i, k]) / tot
            assert fig.overlap_rate[j, k] == pytest.approx(INPUT * both, rel=1e-12)
            assert fig.overlap_rate_error[j, k] == pytest.approx(err(both), rel=1e-12)
    # inclusion-exclusion for two lines
    assert fig.rate == pytest.approx(fig.inclusive_rate.sum() - fig.overlap_rate[0, 1], rel=1e-12)
    # one line alone is what output_rate says
    rate0, err0 = output_rate(EventScores(mb.scores[:, 0], w, tot), thr[0], INPUT)
    assert fig.inclusive_rate[0] == pytest.approx(rate0[0], rel=1e-12)
    assert fig.inclusive_rate_error[0] == pytest.approx(err0[0], rel=1e-12)

    sfire = brute_fire(sig.scores, thr)
    for c in range(3):
        m = sig.channel == c
        sw = sig.weight[m]
        eff = sw[sfire[m].any(axis=1)].sum() / sw.sum()
        n_eff_c = sw.sum() ** 2 / np.sum(sw**2)
        assert fig.efficiency[c] == pytest.approx(eff, rel=1e-12)
        assert fig.efficiency_error[c] == pytest.approx(
            np.sqrt(eff * (1 - eff) / n_eff_c), rel=1e-12
        )
        for j in range(2):
            assert fig.line_efficiency[c, j] == pytest.approx(
                sw[sfire[m, j]].sum() / sw.sum(), rel=1e-12
            )
    assert fig.objective == pytest.approx(
        brute_objective(sig, thr, np.array([1.0, 2.0, 3.0])), rel=1e-12
    )


def test_split_even_odd_shares_the_events_without_candidates() -> None:
    mb, sig = toy(weights="positive", n_mb=101, n_sig=50)
    even, odd = split_even_odd(mb)
    assert (even.event % 2 == 0).all() and (odd.event % 2 == 1).all()
    assert len(even.weight) + len(odd.weight) == 101
    assert even.total_weight + odd.total_weight == pytest.approx(mb.total_weight)
    rest = mb.total_weight - mb.weight.sum()
    assert even.total_weight == pytest.approx(even.weight.sum() + rest / 2)
    s_even, s_odd = split_even_odd(sig)
    assert len(s_even.channel) + len(s_odd.channel) == 50 and s_even.n_channels == 3
    with pytest.raises(ValueError, match="no event numbers"):
        split_even_odd(MinBiasLines(mb.scores, mb.weight, mb.total_weight))


def test_prescale_is_deterministic_and_keeps_its_fraction() -> None:
    ev = np.arange(200_000)
    keep = prescale_mask(ev, [1.0, 0.1, 0.5, 0.0], seed=3)
    assert keep[:, 0].all() and not keep[:, 3].any()
    assert keep[:, 1].mean() == pytest.approx(0.1, abs=0.003)
    assert keep[:, 2].mean() == pytest.approx(0.5, abs=0.005)
    assert (prescale_mask(ev[::-1], [1.0, 0.1], seed=3)[::-1, 1] == keep[:, 1]).all()
    assert not (prescale_mask(ev, [0.5], seed=4)[:, 0] == keep[:, 2]).all()
    mb, sig = toy(n_mb=300, n_sig=100)
    fig = evaluate_menu([0.0, 0.0], mb, sig, input_rate_khz=INPUT, prescales=[0.5, 1.0])
    masked = np.where(prescale_mask(mb.event, [0.5, 1.0]), mb.scores, -np.inf)
    assert fig.rate == pytest.approx(
        brute_rate(MinBiasLines(masked, mb.weight, mb.total_weight), np.zeros(2))
    )
    with pytest.raises(ValueError, match=r"^prescales below 1 need event numbers \(event=...\)"):
        evaluate_menu(
            [0.0, 0.0],
            MinBiasLines(mb.scores, mb.weight, mb.total_weight),
            sig,
            input_rate_khz=INPUT,
            prescales=[0.5, 1.0],
        )


def test_naive_split_gives_each_line_the_same_rate_within_the_target() -> None:
    mb, _ = toy()
    target = 1000.0
    thr = naive_split(mb, target, input_rate_khz=INPUT)
    assert brute_rate(mb, thr) <= target
    # each threshold is threshold_for_rate of its line at one common rate r
    r = max(
        output_rate(EventScores(mb.scores[:, j], mb.weight, mb.total_weight), t, INPUT)[0][0]
        for j, t in enumerate(thr)
    )
    for j in range(2):
        line = EventScores(mb.scores[:, j], mb.weight, mb.total_weight)
        assert thr[j] == threshold_for_rate(line, INPUT, r)
    # and r is the largest such: at the next rate any line reaches, the menu overshoots
    lines = [EventScores(mb.scores[:, j], mb.weight, mb.total_weight) for j in range(2)]
    steps = np.unique(np.concatenate([rate_curve(line, INPUT)[1] for line in lines]))
    r_next = steps[steps > r * (1 + 1e-12)][0]
    over = np.array([threshold_for_rate(line, INPUT, r_next) for line in lines])
    assert brute_rate(mb, over) > target


# --------------------------------------------------------------------------
# the division
# --------------------------------------------------------------------------
@pytest.mark.parametrize("target", [300.0, 1000.0, 3000.0], ids=str)
@pytest.mark.parametrize("seed", [1, 2, 3, 4], ids=str)
def test_two_lines_match_the_grid(seed: int, target: float) -> None:
    # enough events that a rate of 300 kHz (1%) keeps ~100 minimum-bias events on each half
    mb, sig = toy(seed=seed, n_mb=20_000, n_sig=6000)
    (res,) = divide_bandwidth(mb, sig, [target], input_rate_khz=INPUT)
    even_mb, _ = split_even_odd(mb)
    even_sig, odd_sig = split_even_odd(sig)
    best = brute_best(even_mb, even_sig, target)
    got = brute_objective(even_sig, res.thresholds)
    assert res.chosen.objective == pytest.approx(got, rel=1e-12)
    assert got >= 0.995 * best
    assert got <= best + 1e-12  # the grid holds the optimum: the result lies on it
    assert brute_rate(even_mb, res.thresholds) <= target
    assert res.measured.objective == pytest.approx(brute_objective(odd_sig, res.thresholds))
    assert res.gain == pytest.approx(res.measured.objective / res.naive_measured.objective - 1)


@pytest.mark.parametrize("weights", ["positive", "negative"])
def test_rate_never_exceeds_the_target_on_the_choosing_half(weights: str) -> None:
    mb, sig = toy(weights=weights, n_mb=2000, n_sig=300)
    targets = [100.0, 700.0, 5000.0]
    results = divide_bandwidth(mb, sig, targets, input_rate_khz=INPUT, n_steps=60)
    even, _ = split_even_odd(mb)
    for t, res in zip(targets, results, strict=True):
        assert res.chosen.rate <= t
        assert brute_rate(even, res.thresholds) <= t
        assert np.isfinite(res.chosen.objective) and np.isfinite(res.measured.rate)


def test_reproducible() -> None:
    mb, sig = toy(n_mb=1500, n_sig=300)
    kw = {"input_rate_khz": INPUT, "n_steps": 60, "random_state": 7}
    a = divide_bandwidth(mb, sig, [800.0], **kw)[0]
    b = divide_bandwidth(mb, sig, [800.0], **kw)[0]
    assert np.array_equal(a.thresholds, b.thresholds)
    assert a.smoothed_objective == b.smoothed_objective


def test_one_line_reduces_to_threshold_for_rate() -> None:
    mb, sig = toy()
    one_mb = MinBiasLines(mb.scores[:, :1], mb.weight, mb.total_weight, event=mb.event)
    one_sig = SignalLines(sig.scores[:, :1], sig.weight, sig.channel, event=sig.event)
    even, _ = split_even_odd(one_mb)
    for target in (200.0, 2000.0):
        (res,) = divide_bandwidth(one_mb, one_sig, [target], input_rate_khz=INPUT, n_steps=40)
        assert res.thresholds[0] == threshold_for_rate(even.line(0), INPUT, target)


def test_a_line_that_never_fires_and_a_channel_without_events() -> None:
    mb, sig = toy(n_mb=2000, n_sig=300)
    dead_mb = np.column_stack([mb.scores, np.full(2000, -np.inf)])
    dead_sig = np.column_stack([sig.scores, np.full(300, -np.inf)])
    mb3 = MinBiasLines(dead_mb, mb.weight, mb.total_weight, event=mb.event)
    sig3 = SignalLines(dead_sig, sig.weight, sig.channel, n_channels=5, event=sig.event)
    (res,) = divide_bandwidth(mb3, sig3, [1000.0], input_rate_khz=INPUT, n_steps=60)
    assert res.thresholds[2] == np.inf
    assert res.measured.inclusive_rate[2] == 0.0
    assert np.isnan(res.measured.efficiency[3:]).all()
    assert np.isfinite(res.measured.efficiency[:3]).all()
    _, odd_sig = split_even_odd(sig3)
    assert res.measured.objective == pytest.approx(brute_objective(odd_sig, res.thresholds))


def test_shared_thresholds_and_prescales() -> None:
    mb, sig = toy(n_mb=2000, n_sig=300)
    (res,) = divide_bandwidth(
        mb, sig, [1000.0], input_rate_khz=INPUT, groups=[4, 4], prescales=[1.0, 0.5], n_steps=60
    )
    assert res.thresholds[0] == res.thresholds[1]
    even, _ = split_even_odd(mb)
    masked = np.where(prescale_mask(even.event, [1.0, 0.5]), even.scores, -np.inf)
    assert (
        brute_rate(MinBiasLines(masked, even.weight, even.total_weight), res.thresholds) <= 1000.0
    )


def test_bad_inputs_say_what_is_wrong() -> None:
    mb, sig = toy(n_mb=100, n_sig=30)
    with pytest.raises(ValueError, match="two-dimensional"):
        MinBiasLines(np.zeros(5), np.ones(5), 5.0)
    with pytest.raises(ValueError, match="-inf"):
        MinBiasLines(np.full((2, 1), np.nan), np.ones(2), 2.0)
    with pytest.raises(ValueError, match=r"channel must lie in \[0, 2\)"):
        SignalLines(np.zeros((2, 1)), np.ones(2), np.array([0, 2]), n_channels=2)
    with pytest.raises(ValueError, match="groups"):
        divide_bandwidth(mb, sig, [10.0], input_rate_khz=INPUT, groups=[0])
    with pytest.raises(ValueError, match="signal has 3 lines but minbias has 2"):
        evaluate_menu(
            [0.0, 0.0, 0.0],
            mb,
            SignalLines(np.zeros((2, 3)), np.ones(2), np.zeros(2, dtype=int)),
            input_rate_khz=INPUT,
        )


def test_public_names_and_torch_loaded_only_when_dividing() -> None:
    import subprocess
    import sys

    from hepsel.stats import bandwidth, menu

    assert sorted(bandwidth.__all__) == ["BandwidthResult", "divide_bandwidth"]
    assert sorted(menu.__all__) == [
        "MenuFigures",
        "MinBiasLines",
        "SignalLines",
        "evaluate_menu",
        "naive_split",
        "prescale_mask",
        "split_even_odd",
    ]
    code = "import sys, hepsel.stats.bandwidth; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
