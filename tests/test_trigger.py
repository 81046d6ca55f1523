from __future__ import annotations

import numpy as np
import pytest

from hepsel.stats.trigger import (
    EventScores,
    event_max,
    group_events,
    output_rate,
    rate_curve,
    threshold_for_rate,
)


@pytest.fixture
def candidates() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    n_events = 400
    per = rng.integers(1, 5, n_events)
    evt = np.repeat(np.arange(n_events), per)
    perm = rng.permutation(len(evt))  # candidates need not be sorted
    return {
        "run": np.zeros(len(evt), dtype=np.int64)[perm],
        "event": evt[perm],
        "score": rng.random(len(evt))[perm],
        "weight": np.repeat(rng.uniform(0.5, 2.0, n_events), per)[perm],
    }


def _brute_event_max(c: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    events = np.unique(c["event"])
    best = np.array([c["score"][c["event"] == e].max() for e in events])
    w = np.array([c["weight"][c["event"] == e][0] for e in events])
    return best, w


def test_event_max_matches_loop(candidates: dict[str, np.ndarray]) -> None:
    ev = EventScores.from_candidates(
        candidates["run"], candidates["event"], candidates["score"], candidates["weight"]
    )
    best, w = _brute_event_max(candidates)
    np.testing.assert_allclose(ev.score, best)
    np.testing.assert_allclose(ev.weight, w)
    _order, starts = group_events(candidates["run"], candidates["event"])
    assert len(starts) == len(best)


def test_rate_counts_events_without_candidates(candidates: dict[str, np.ndarray]) -> None:
    best, w = _brute_event_max(candidates)
    total = w.sum() + 100.0  # 100 unit-weight events had no candidate
    total2 = (w**2).sum() + 100.0
    ev = EventScores.from_candidates(
        candidates["run"],
        candidates["event"],
        candidates["score"],
        candidates["weight"],
        total_weight=total,
        total_weight2=total2,
    )
    for thr in (0.1, 0.5, 0.9):
        f = w[best >= thr].sum() / total
        rate, err = output_rate(ev, thr, 30000.0)
        assert rate[0] == pytest.approx(30000.0 * f)
        # binomial error with the effective number of processed events (sum w)^2 / sum w^2
        assert err[0] == pytest.approx(
            30000.0 * np.sqrt(f * (1 - f) / (total**2 / total2)), rel=1e-12
        )


def test_threshold_for_rate_is_the_loosest_within_target(candidates: dict[str, np.ndarray]) -> None:
    ev = EventScores.from_candidates(
        candidates["run"], candidates["event"], candidates["score"], candidates["weight"]
    )
    thr = threshold_for_rate(ev, 1000.0, 100.0)
    rate_at, _ = output_rate(ev, thr, 1000.0)
    assert rate_at[0] <= 100.0 + 1e-9
    looser = ev.score[ev.score < thr].max()
    assert output_rate(ev, looser, 1000.0)[0][0] > 100.0
    thresholds, rates = rate_curve(ev, 1000.0)
    assert np.all(np.diff(thresholds) < 0) and np.all(np.diff(rates) >= 0)
    assert threshold_for_rate(ev, 1000.0, 1e-9) == np.inf


def test_mask_restricts_firing_candidates(candidates: dict[str, np.ndarray]) -> None:
    mask = candidates["score"] < 0.5
    ev = EventScores.from_candidates(
        candidates["run"], candidates["event"], candidates["score"], candidates["weight"], mask=mask
    )
    assert np.all(ev.score[np.isfinite(ev.score)] < 0.5)


def test_runs_separate_events_with_the_same_number() -> None:
    # (run, event): (1, 5) twice, (2, 5) twice, (2, 6), (3, 5); run changes while the event number does not
    run = np.array([2, 1, 3, 1, 2, 2])
    event = np.array([5, 5, 5, 5, 6, 5])
    score = np.array([0.3, 0.9, 0.1, 0.2, 0.7, 0.25])
    weight = np.array([2.0, 1.0, 3.0, 1.0, 4.0, 2.0])
    order, starts = group_events(run, event)
    keys = [(int(r), int(e)) for r, e in zip(run[order][starts], event[order][starts], strict=True)]
    assert keys == [(1, 5), (2, 5), (2, 6), (3, 5)]
    ev = EventScores.from_candidates(run, event, score, weight)
    np.testing.assert_array_equal(ev.score, [0.9, 0.3, 0.7, 0.1])
    np.testing.assert_array_equal(ev.weight, [1.0, 2.0, 4.0, 3.0])
    np.testing.assert_array_equal(ev.event, [5, 5, 6, 5])
    assert ev.total_weight == 10.0 and ev.total_weight2 is None


def test_one_candidate_and_no_candidate() -> None:
    order, starts = group_events(np.array([4]), np.array([9]))
    assert order.tolist() == [0] and starts.tolist() == [0]
    ev = EventScores.from_candidates(np.array([4]), np.array([9]), np.array([3]), np.array([2]))
    assert ev.score.tolist() == [3.0] and ev.score.dtype == np.float64
    assert (
        ev.weight.tolist() == [2.0] and ev.weight.dtype == np.float64 and ev.event.tolist() == [9]
    )
    empty = np.zeros(0)
    order, starts = group_events(empty, empty)
    assert order.shape == starts.shape == (0,) and starts.dtype == np.int64
    ev = EventScores.from_candidates(empty, empty.astype(np.int64), empty, empty, total_weight=5.0)
    assert ev.score.shape == ev.weight.shape == ev.event.shape == (0,)
    assert ev.event.dtype == np.int64 and ev.weight.dtype == np.float64 and ev.total_weight == 5.0
    assert ev.pass_fraction(0.5).tolist() == [0.0]


def test_masked_out_events_never_fire() -> None:
    run = np.zeros(4, dtype=np.int64)
    event = np.array([1, 1, 2, 3])
    score = np.array([0.8, 0.4, 0.9, 0.2])
    order, starts = group_events(run, event)
    best = event_max(score, order, starts, mask=np.array([False, True, False, True]))
    np.testing.assert_array_equal(best, [0.4, -np.inf, 0.2])
    ev = EventScores(best, np.ones(3), 3.0)
    assert output_rate(ev, -1e300, 30.0)[0][0] == pytest.approx(20.0)  # the masked event stays out
    assert event_max(score, order[:0], starts[:0]).shape == (0,)


def test_pass_fraction_at_and_beyond_the_scores() -> None:
    ev = EventScores(np.array([0.2, 0.9, 0.5, 0.5]), np.array([1.0, 2.0, 3.0, 4.0]), 20.0)
    thr = [1.0, 0.9, 0.6, 0.5, 0.3, 0.2, -1.0]
    want = [ev.weight[ev.score >= t].sum() / 20.0 for t in thr]
    np.testing.assert_allclose(ev.pass_fraction(thr), want, rtol=0, atol=0)
    assert want[:2] == [0.0, 0.1]


def test_rate_uncertainty_with_few_effective_events() -> None:
    # weights well below 1 and n_eff = (sum w)^2 / sum w^2 below 2: no floor on either
    w = np.array([0.01, 0.02, 0.005])
    ev = EventScores(np.array([0.9, 0.1, 0.5]), w, float(w.sum()))
    rate, err = output_rate(ev, 0.5, 1000.0)
    f = 0.015 / 0.035
    assert rate[0] == pytest.approx(1000.0 * f, rel=1e-12)
    assert err[0] == pytest.approx(
        1000.0 * np.sqrt(f * (1 - f) / (0.035**2 / np.sum(w**2))), rel=1e-12
    )
    ev = EventScores(np.array([0.9, 0.1]), np.array([1.0, 0.5]), 1.5, 1.25)  # n_eff = 1.8
    _, err = output_rate(ev, 0.5, 1.0)
    assert err[0] == pytest.approx(np.sqrt(2 / 9 / 1.8), rel=1e-12)


def test_rate_curve_merges_tied_events() -> None:
    ev = EventScores(np.array([0.5, 0.9, 0.5, 0.1, 0.9, -np.inf]), np.ones(6), 10.0)
    thresholds, rates = rate_curve(ev, 100.0)
    np.testing.assert_array_equal(thresholds, [0.9, 0.5, 0.1])
    np.testing.assert_allclose(rates, [20.0, 40.0, 50.0])


def test_threshold_for_rate_meets_a_target_reached_exactly() -> None:
    # ten events of weight 0.1: three pass at 300 kHz, which the float sums put at 300.00000000000006
    score = np.linspace(1.0, 0.1, 10)
    ev = EventScores(score, np.full(10, 0.1), float(np.full(10, 0.1).sum()))
    assert threshold_for_rate(ev, 1000.0, 300.0) == score[2]
    # a target equal to a rate on the curve is reached at that rate's threshold
    thresholds, rates = rate_curve(ev, 1000.0)
    for k in (0, 4, 9):
        assert threshold_for_rate(ev, 1000.0, rates[k]) == thresholds[k]
    assert threshold_for_rate(ev, 1000.0, 99.0) == np.inf
