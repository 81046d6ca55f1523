"""hepsel.stats.menu against references written here: the prescale hash, the even/odd split, the naive split."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hepsel.stats.menu import (
    MinBiasLines,
    SignalLines,
    evaluate_menu,
    naive_split,
    prescale_mask,
    split_even_odd,
)
from hepsel.stats.trigger import EventScores, rate_curve, threshold_for_rate

from .test_bandwidth import INPUT, brute_rate, toy

MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """SplitMix64's output for state ``x`` (Steele, Lea, Flood 2014), in Python integers."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def test_reference_splitmix64_vectors() -> None:
    # the generator's published first outputs from seed 0: state 0, then state 0 + golden gamma
    assert splitmix64(0) == 0xE220A8397B1DCDAF
    assert splitmix64(0x9E3779B97F4A7C15) == 0x6E789E6AA1B965F4


@pytest.mark.parametrize("seed", [0, 7, 123456])
def test_prescale_mask_is_the_documented_hash(seed: int) -> None:
    """keep = splitmix64(event ^ splitmix64(seed * 1000003 + line)) >> 11, times 2^-53, below the prescale."""
    events = np.array([0, 1, 2, 3, 17, 1000, 123456789, 2**40 + 5, 2**62 + 11], dtype=np.int64)
    prescales = [0.5, 0.25, 0.9, 0.01]
    keep = prescale_mask(events, prescales, seed=seed)
    for line, p in enumerate(prescales):
        salt = splitmix64(seed * 1_000_003 + line)
        for i, ev in enumerate(events.tolist()):
            u = (splitmix64(ev ^ salt) >> 11) * 2.0**-53
            assert keep[i, line] == (u < p), (seed, line, ev)
    # a prescale of exactly the hash value does not keep the event (strict <)
    salt = splitmix64(seed * 1_000_003)
    u0 = (splitmix64(5 ^ salt) >> 11) * 2.0**-53
    assert not prescale_mask(np.array([5]), [u0], seed=seed)[0, 0]
    assert prescale_mask(np.array([5]), [np.nextafter(u0, 1.0)], seed=seed)[0, 0]


def test_prescale_lines_are_independent() -> None:
    ev = np.arange(400_000)
    keep = prescale_mask(ev, [0.5, 0.5, 0.3], seed=1)
    assert keep[:, 0].mean() == pytest.approx(0.5, abs=0.003)
    assert keep[:, 2].mean() == pytest.approx(0.3, abs=0.003)
    assert (keep[:, 0] & keep[:, 1]).mean() == pytest.approx(0.25, abs=0.003)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prescale_mask(ev[:3], [1.5])


def test_split_even_odd_keeps_rows_and_both_weight_sums() -> None:
    mb, _ = toy(weights="positive", n_mb=301)
    w2_total = float(np.sum(mb.weight**2)) * 1.4
    full = MinBiasLines(mb.scores, mb.weight, mb.total_weight, w2_total, event=mb.event)
    even, odd = split_even_odd(full)
    for half, parity in ((even, 0), (odd, 1)):
        rows = mb.event % 2 == parity
        np.testing.assert_array_equal(half.scores, mb.scores[rows])
        np.testing.assert_array_equal(half.weight, mb.weight[rows])
        np.testing.assert_array_equal(half.event, mb.event[rows])
        rest = mb.total_weight - mb.weight.sum()
        rest2 = w2_total - np.sum(mb.weight**2)
        assert half.total_weight == pytest.approx(mb.weight[rows].sum() + rest / 2, rel=1e-12)
        assert half.total_weight2 == pytest.approx(
            np.sum(mb.weight[rows] ** 2) + rest2 / 2, rel=1e-12
        )
    # without a total_weight2 each half has none either: its rows' own sum is used
    assert split_even_odd(mb)[0].total_weight2 is None


def test_line_view_carries_every_field() -> None:
    mb, _ = toy(weights="positive", n_mb=50)
    full = MinBiasLines(mb.scores, mb.weight, mb.total_weight, 77.0, event=mb.event)
    line = full.line(1)
    np.testing.assert_array_equal(line.score, mb.scores[:, 1])
    np.testing.assert_array_equal(line.weight, mb.weight)
    np.testing.assert_array_equal(line.event, mb.event)
    assert line.total_weight == mb.total_weight
    assert line.total_weight2 == 77.0


def brute_naive(mb: MinBiasLines, target: float, scores: np.ndarray) -> np.ndarray:
    """The largest common line rate for which the menu fits, by trying every rate a line can take."""
    lines = [EventScores(scores[:, j], mb.weight, mb.total_weight) for j in range(scores.shape[1])]
    steps = np.unique(
        np.concatenate([rate_curve(line, INPUT)[1] for line in lines] + [np.zeros(1)])
    )
    best = np.full(len(lines), np.inf)
    for r in steps:
        thr = np.array([threshold_for_rate(line, INPUT, r) for line in lines])
        if brute_rate(MinBiasLines(scores, mb.weight, mb.total_weight), thr) <= target * (
            1 + 1e-12
        ):
            best = thr
    return best


@pytest.mark.parametrize("target", [0.0, 5.0, 300.0, 1000.0, 4000.0, 40_000.0])
@pytest.mark.parametrize("weights", ["unit", "positive", "negative"])
def test_naive_split_matches_a_brute_force_search(target: float, weights: str) -> None:
    mb, _ = toy(weights=weights, n_mb=600)
    thr = naive_split(mb, target, input_rate_khz=INPUT)
    np.testing.assert_array_equal(thr, brute_naive(mb, target, mb.scores))


def test_naive_split_with_prescales_uses_the_kept_events() -> None:
    mb, _ = toy(n_mb=600)
    prescales = [0.5, 1.0]
    masked = np.where(prescale_mask(mb.event, prescales, seed=0), mb.scores, -np.inf)
    thr = naive_split(mb, 1000.0, input_rate_khz=INPUT, prescales=prescales)
    np.testing.assert_array_equal(thr, brute_naive(mb, 1000.0, masked))
    other = np.where(prescale_mask(mb.event, prescales, seed=9), mb.scores, -np.inf)
    np.testing.assert_array_equal(
        naive_split(mb, 1000.0, input_rate_khz=INPUT, prescales=prescales, prescale_seed=9),
        brute_naive(mb, 1000.0, other),
    )
    fig = evaluate_menu(thr, mb, toy(n_mb=600)[1], input_rate_khz=INPUT, prescales=prescales)
    assert fig.rate <= 1000.0 * (1 + 1e-12)


def test_split_without_event_numbers_says_so() -> None:
    mb, _ = toy(n_mb=20)
    with pytest.raises(ValueError, match=r"^the sample has no event numbers; give event="):
        split_even_odd(MinBiasLines(mb.scores, mb.weight, mb.total_weight))


def test_prescales_of_one_need_no_event_numbers_and_lengths_are_checked() -> None:
    mb, sig = toy(n_mb=300, n_sig=100)
    bare_mb = MinBiasLines(mb.scores, mb.weight, mb.total_weight)
    bare_sig = SignalLines(sig.scores, sig.weight, sig.channel)
    # nothing is prescaled: no hash, so no event numbers are needed
    unscaled = evaluate_menu([0.5, 0.5], bare_mb, bare_sig, input_rate_khz=INPUT)
    same = evaluate_menu([0.5, 0.5], bare_mb, bare_sig, input_rate_khz=INPUT, prescales=[1.0, 1.0])
    assert same.rate == unscaled.rate
    np.testing.assert_array_equal(same.efficiency, unscaled.efficiency)
    with pytest.raises(ValueError, match=r"^prescales has 3 entries for 2 lines$"):
        evaluate_menu([0.5, 0.5], mb, sig, input_rate_khz=INPUT, prescales=[0.5, 1.0, 1.0])


@pytest.mark.parametrize("seed", [0, 9])
def test_prescales_act_on_both_samples_with_the_given_seed(seed: int) -> None:
    mb, sig = toy(n_mb=600, n_sig=300)
    prescales = [0.4, 1.0]
    thr = np.array([0.0, 1.0])
    fig = evaluate_menu(thr, mb, sig, input_rate_khz=INPUT, prescales=prescales, prescale_seed=seed)
    kept_mb = np.where(prescale_mask(mb.event, prescales, seed), mb.scores, -np.inf)
    kept_sig = np.where(prescale_mask(sig.event, prescales, seed), sig.scores, -np.inf)
    assert fig.rate == pytest.approx(
        brute_rate(MinBiasLines(kept_mb, mb.weight, mb.total_weight), thr), rel=1e-12
    )
    fire = (kept_sig >= thr).any(axis=1)
    for c in range(3):
        m = sig.channel == c
        assert fig.efficiency[c] == pytest.approx(
            sig.weight[m & fire].sum() / sig.weight[m].sum(), rel=1e-12
        )


def test_figures_do_not_depend_on_the_weights_scale() -> None:
    """Rates, efficiencies and their effective-N errors are unchanged when every weight is scaled."""
    mb, sig = toy(weights="positive", n_mb=400, n_sig=200)
    thr = [0.8, 0.3]
    ref = evaluate_menu(thr, mb, sig, input_rate_khz=INPUT)
    k = 1e-3  # sums of weights and of squared weights below 1
    small = evaluate_menu(
        thr,
        MinBiasLines(mb.scores, k * mb.weight, k * mb.total_weight),
        SignalLines(sig.scores, k * sig.weight, sig.channel),
        input_rate_khz=INPUT,
    )
    np.testing.assert_array_equal(small.thresholds, [0.8, 0.3])
    for name in (
        "rate",
        "rate_error",
        "inclusive_rate_error",
        "overlap_rate_error",
        "efficiency",
        "efficiency_error",
        "line_efficiency",
        "line_efficiency_error",
        "objective",
    ):
        np.testing.assert_allclose(getattr(small, name), getattr(ref, name), rtol=1e-9)


def test_errors_of_few_effective_events_and_empty_channels() -> None:
    # channel 0: weights 1 and 3, only the first fires: eff 1/4, n_eff = 16/10 (below 2)
    # channel 1: no events
    mb, _ = toy(n_mb=50)
    sig = SignalLines(
        np.array([[2.0, -np.inf], [-1.0, -np.inf]]),
        np.array([1.0, 3.0]),
        np.array([0, 0]),
        n_channels=2,
    )
    fig = evaluate_menu([0.0, 0.0], mb, sig, input_rate_khz=INPUT)
    assert fig.efficiency[0] == pytest.approx(0.25, rel=1e-12)
    expected = np.sqrt(0.25 * 0.75 / 1.6)
    assert fig.efficiency_error[0] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(fig.line_efficiency_error[0], [expected, 0.0], rtol=1e-12)
    # the empty channel: NaN figures (floats, not None) and left out of the objective
    for name in ("efficiency", "efficiency_error"):
        value = getattr(fig, name)
        assert value.dtype == np.float64 and np.isnan(value[1])
    assert fig.line_efficiency_error.dtype == np.float64
    assert np.isnan(fig.line_efficiency_error[1]).all()
    assert fig.objective == pytest.approx(0.25, rel=1e-12)


def test_channel_weights_set_the_objective_and_are_checked() -> None:
    mb, sig = toy(n_mb=300, n_sig=300)
    fig = evaluate_menu([0.5, 0.5], mb, sig, input_rate_khz=INPUT, channel_weights=[1.0, 0, 0])
    assert fig.objective == pytest.approx(fig.efficiency[0], rel=1e-12)
    # weights only on channels without events: no objective, and no 0/0 warning
    empty = SignalLines(sig.scores, sig.weight, sig.channel, n_channels=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        none = evaluate_menu(
            [0.5, 0.5], mb, empty, input_rate_khz=INPUT, channel_weights=[0, 0, 0, 1]
        )
    assert np.isnan(none.objective)
    with pytest.raises(ValueError, match=r"^channel_weights holds 1 negative values"):
        evaluate_menu([0.5, 0.5], mb, sig, input_rate_khz=INPUT, channel_weights=[1.0, -1.0, 1.0])
    with pytest.raises(
        ValueError, match=r"^channel_weights has 2 entries but signal.n_channels has 3"
    ):
        evaluate_menu([0.5, 0.5], mb, sig, input_rate_khz=INPUT, channel_weights=[1.0, 1.0])


@pytest.mark.parametrize("thresholds", [[0.5], [0.5, 0.5, 0.5], [None, 0.5], [np.nan, 0.5]])
def test_thresholds_must_be_one_number_per_line(thresholds: list) -> None:
    mb, sig = toy(n_mb=100, n_sig=50)
    with pytest.raises(
        ValueError, match=r"^thresholds must be 2 numbers \(inf switches a line off\)"
    ):
        evaluate_menu(thresholds, mb, sig, input_rate_khz=INPUT)


def test_naive_split_takes_a_rate_equal_to_the_target() -> None:
    # unit weights, 1000 processed events, input 1000 kHz: a line's rates are whole kHz, exactly
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(1000, 1))
    mb = MinBiasLines(scores, np.ones(1000), 1000.0, event=np.arange(1000))
    for target in (1.0, 37.0, 250.0):
        thr = naive_split(mb, target, input_rate_khz=1000.0)
        # the threshold that keeps exactly `target` events, not one fewer
        assert (scores[:, 0] >= thr[0]).sum() == target
    # a negative target fits nothing
    np.testing.assert_array_equal(naive_split(mb, -1.0, input_rate_khz=1000.0), [np.inf])


def test_samples_store_numpy_arrays_and_floats() -> None:
    mb = MinBiasLines([[1, 2], [3, -np.inf]], [1, 2], 5, total_weight2=7, event=[4, 9])
    for array, dtype in ((mb.scores, np.float64), (mb.weight, np.float64), (mb.event, np.int64)):
        assert isinstance(array, np.ndarray) and array.dtype == dtype
    assert type(mb.total_weight) is float and type(mb.total_weight2) is float
    assert MinBiasLines([[1.0]], [1.0], 0.5).total_weight == 0.5  # any positive total
    sig = SignalLines([[1, 2]], [1], np.array([2], dtype=np.int32), event=[3])
    assert sig.scores.dtype == np.float64 and isinstance(sig.weight, np.ndarray)
    assert sig.channel.dtype == np.int64 and sig.n_channels == 3
    assert isinstance(sig.event, np.ndarray)
    assert SignalLines(np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=int)).n_channels == 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MinBiasLines([1.0, 2.0], [1, 1], 2.0), r"^minbias\.scores must be two-dim"),
        (
            lambda: MinBiasLines([[1.0]], [1, 1], 2.0),
            r"^minbias\.weight has 2 entries but scores has 1",
        ),
        (
            lambda: MinBiasLines([[1.0]], [1], 0.0),
            r"^minbias\.total_weight must be positive, got 0\.0$",
        ),
        (
            lambda: MinBiasLines([[1.0]], [1], 1.0, event=[1.5]),
            r"^minbias\.event must be integer event numbers of shape \(1,\)",
        ),
        (
            lambda: MinBiasLines([[1.0]], [1], 1.0, event=[1, 2]),
            r"^minbias\.event must be integer event numbers of shape \(1,\)",
        ),
        (lambda: SignalLines([[np.nan]], [1], [0]), r"^signal\.scores holds NaN or \+inf"),
        (
            lambda: SignalLines([[1.0]], [1, 1], [0]),
            r"^signal\.weight has 2 entries but scores has 1",
        ),
        (
            lambda: SignalLines([[1.0]], [1], [0.0]),
            r"^signal\.channel must be integer ids of shape \(1,\)",
        ),
        (
            lambda: SignalLines([[1.0]], [1], [0, 0]),
            r"^signal\.channel must be integer ids of shape \(1,\)",
        ),
        (
            lambda: SignalLines([[1.0]], [1], [0], n_channels=0),
            r"^signal\.channel must lie in \[0, 0\)",
        ),
        (lambda: SignalLines([[1.0]], [1], [0], event=[0.5]), r"^signal\.event must be integer"),
    ],
)
def test_bad_samples_name_the_field(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_naive_split_at_zero_rate_with_cancelling_weights() -> None:
    # a negative weight cancels: the looser threshold has a rate of exactly 0, which fits 0 kHz
    mb = MinBiasLines([[3.0], [2.0]], [1.0, -1.0], 10.0)
    line = EventScores(mb.scores[:, 0], mb.weight, mb.total_weight)
    assert threshold_for_rate(line, INPUT, 0.0) == 2.0
    np.testing.assert_array_equal(naive_split(mb, 0.0, input_rate_khz=INPUT), [2.0])
