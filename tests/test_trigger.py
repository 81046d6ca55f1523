from __future__ import annotations

import numpy as np
import pytest

from hepsel.trigger import EventScores, group_events, output_rate, rate_curve, threshold_for_rate


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
    ev = EventScores.from_candidates(candidates["run"], candidates["event"], candidates["score"], candidates["weight"])
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
        candidates["run"], candidates["event"], candidates["score"], candidates["weight"],
        total_weight=total, total_weight2=total2,
    )
    for thr in (0.1, 0.5, 0.9):
        f = w[best >= thr].sum() / total
        rate, err = output_rate(ev, thr, 30000.0)
        assert rate[0] == pytest.approx(30000.0 * f)
        # binomial error with the effective number of processed events (sum w)^2 / sum w^2
        assert err[0] == pytest.approx(30000.0 * np.sqrt(f * (1 - f) / (total**2 / total2)), rel=1e-12)


def test_threshold_for_rate_is_the_loosest_within_target(candidates: dict[str, np.ndarray]) -> None:
    ev = EventScores.from_candidates(candidates["run"], candidates["event"], candidates["score"], candidates["weight"])
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
