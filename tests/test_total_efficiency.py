"""Efficiencies relative to all generated signal events (hepsel.performance)."""

from __future__ import annotations

import numpy as np
import pytest

from hepsel.intervals import efficiency_interval
from hepsel.performance import (
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
        assert total[wp]["per_mode"]["2"]["eff"] == pytest.approx(np.sum(w[m & (score >= thr)]) / np.sum(w[m]))


def test_total_efficiency_vs_variable_counts_every_generated_event() -> None:
    x = np.array([0.5, 1.5, 1.5, 2.5])
    score = np.array([0.9, -np.inf, 0.8, 0.1])
    out = efficiency_vs(x, score, np.ones(4), {"wp": 0.5}, [0, 1, 2, 3])
    np.testing.assert_allclose(out["all"]["wp"]["value"], [1.0, 0.5, 0.0])
