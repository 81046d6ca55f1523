"""Efficiencies relative to all generated signal events (hepsel.stats.performance)."""

from __future__ import annotations

import numpy as np
import pytest

from hepsel.stats.intervals import efficiency_interval
from hepsel.stats.performance import (
    efficiency_vs,
    generated_event_scores,
    preselection_efficiency,
    total_efficiency,
)


def test_generated_event_scores_match_events_across_runs() -> None:
    # candidates of events (7, 3), (7, 1), (8, 3) in random order; (7, 1) has no truth-matched one
    run = np.array([7, 8, 7, 7, 8])
    event = np.array([3, 3, 1, 3, 3])
    score = np.array([0.2, 0.4, 0.9, 0.7, 0.1])
    truth = np.array([True, True, False, False, False])
    gen_run = np.array([7, 7, 7, 8, 9])
    gen_event = np.array([0, 1, 3, 3, 3])
    out = generated_event_scores(run, event, score, truth, gen_run, gen_event)
    # event (7, 3): best of any candidate; (7, 1): not preselected; (7, 0), (9, 3): no candidate
    np.testing.assert_array_equal(out, [-np.inf, -np.inf, 0.7, 0.4, -np.inf])


def test_total_efficiency_is_preselection_times_preselected_efficiency() -> None:
    rng = np.random.default_rng(1)
    n = 5000
    score = np.where(rng.random(n) < 0.6, rng.random(n), -np.inf)
    w = rng.uniform(0.5, 1.5, n)
    modes = rng.integers(1, 3, n)
    total = total_efficiency(score, w, {"a": 0.3, "b": 0.8}, modes=modes, mode_names={1: "one"})
    presel = preselection_efficiency(score, w, modes=modes, mode_names={1: "one"})
    reco = np.isfinite(score)
    for wp, thr in (("a", 0.3), ("b", 0.8)):
        relative = np.sum(w[reco & (score >= thr)]) / np.sum(w[reco])
        assert total[wp]["eff"] == pytest.approx(relative * presel["eff"], rel=1e-12)
        ref = efficiency_interval(score >= thr, w)
        assert (total[wp]["eff_low"], total[wp]["eff_high"]) == pytest.approx((ref.low, ref.high))
        assert total[wp]["n_events"] == n
        assert set(total[wp]["per_mode"]) == {"one", "2"}
        m = modes == 2
        assert total[wp]["per_mode"]["2"]["eff"] == pytest.approx(
            np.sum(w[m & (score >= thr)]) / np.sum(w[m])
        )


def test_total_efficiency_vs_variable_counts_every_generated_event() -> None:
    x = np.array([0.5, 1.5, 1.5, 2.5])
    score = np.array([0.9, -np.inf, 0.8, 0.1])
    out = efficiency_vs(x, score, np.ones(4), {"wp": 0.5}, [0, 1, 2, 3])
    np.testing.assert_allclose(out["all"]["wp"]["value"], [1.0, 0.5, 0.0])


def test_generated_events_beyond_the_last_candidate_event_of_a_run() -> None:
    run = np.array([1, 1, 2])
    event = np.array([4, 6, 5])
    score = np.array([0.3, 0.8, 0.5])
    truth = np.array([True, True, True])
    out = generated_event_scores(
        run, event, score, truth, np.array([1, 1, 1, 1, 2, 2, 3]), np.array([2, 4, 6, 9, 5, 7, 6])
    )
    np.testing.assert_array_equal(out, [-np.inf, 0.3, 0.8, -np.inf, 0.5, -np.inf, -np.inf])


def test_preselection_efficiency_per_mode_written_out() -> None:
    score = np.array([0.9, -np.inf, 0.2, -np.inf, 0.4, 0.7])
    w = np.array([1.0, 2.0, 1.0, 1.0, 0.5, 1.5])
    modes = np.array([1, 1, 2, 2, 2, 3])
    out = preselection_efficiency(score, w, method="wilson", modes=modes, mode_names={3: "three"})
    reco = np.isfinite(score)
    ref = efficiency_interval(reco, w, method="wilson")
    assert out == {
        "eff": pytest.approx(4.0 / 7.0),
        "eff_low": pytest.approx(ref.low),
        "eff_high": pytest.approx(ref.high),
        "n_events": 6,
        "per_mode": {
            "1": {
                "eff": pytest.approx(1 / 3),
                "eff_low": pytest.approx(efficiency_interval(reco[:2], w[:2], method="wilson").low),
                "eff_high": pytest.approx(
                    efficiency_interval(reco[:2], w[:2], method="wilson").high
                ),
                "n_events": 2,
            },
            "2": {
                "eff": pytest.approx(1.5 / 2.5),
                "eff_low": pytest.approx(
                    efficiency_interval(reco[2:5], w[2:5], method="wilson").low
                ),
                "eff_high": pytest.approx(
                    efficiency_interval(reco[2:5], w[2:5], method="wilson").high
                ),
                "n_events": 3,
            },
            "three": {
                "eff": 1.0,
                "eff_low": pytest.approx(efficiency_interval(reco[5:], w[5:], method="wilson").low),
                "eff_high": 1.0,
                "n_events": 1,
            },
        },
    }
    total = total_efficiency(score, w, {"wp": 0.5}, method="wilson")
    assert total["wp"]["eff"] == pytest.approx(2.5 / 7.0) and "per_mode" not in total["wp"]
