"""Rates are measurements: processed-event counts are required, thresholds and rates use disjoint events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from hepsel import workflow
from hepsel.config.loading import load_config
from hepsel.exceptions import ConfigError
from hepsel.stats.trigger import EventScores
from hepsel.workflow.evaluation import measured_rate, split_minbias

from .conftest import write_flat_tree


def _write(tmp_path: Path, minbias: dict) -> Path:
    write_flat_tree(tmp_path / "sig.root", seed=1)
    write_flat_tree(tmp_path / "mb.root", seed=2)
    cfg = {
        "name": "rates",
        "samples": {
            "signal": {
                "files": [str(tmp_path / "sig.root")],
                "label": 1,
                "truth": "truth_matched == 1",
            },
            "minbias": {
                "files": [str(tmp_path / "mb.root")],
                "label": 0,
                "weight": "eventWeight",
                **minbias,
            },
        },
        "features": ["H1_PT", "B_PT"],
        "models": {"bdt": {"type": "bdt"}},
        "trigger": {"input_rate_khz": 30000},
        "output": str(tmp_path / "out"),
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def test_rate_sample_without_event_count_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"samples\.minbias: output rates need the number of processed events.*'events_tree'.*'n_events'",
    ):
        load_config(_write(tmp_path, {}))


def test_events_tree_and_n_events_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="either 'events_tree' or 'n_events'"):
        load_config(_write(tmp_path, {"events_tree": "EventTuple", "n_events": 10}))


def test_explicit_event_count_sets_the_rate_denominator(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, {"n_events": 1000}))
    for s in cfg.samples:
        workflow.prepare(cfg, s, 0, progress=False)
    info = workflow.gather(cfg)["minbias"]
    with uproot.open(tmp_path / "mb.root") as f:
        t = f["DecayTree"].arrays(["eventNumber", "eventWeight"], library="np")
    # by hand: one weight per event that has candidates, the mean carried over to all 1000 events
    _, first = np.unique(t["eventNumber"], return_index=True)
    mean_w = float(np.mean(t["eventWeight"][first].astype(np.float64)))
    assert info["n_events"] == 1000
    assert info["sum_gen_weights"] == pytest.approx(1000 * mean_w, rel=1e-9)
    assert "n_events" in info["events_source"][0]


def test_event_count_below_the_events_with_candidates_is_refused(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, {"n_events": 50}))
    for s in cfg.samples:
        workflow.prepare(cfg, s, 0, progress=False)
    with pytest.raises(
        ConfigError, match=r"samples\.minbias\.n_events = 50 is smaller than the 200 events"
    ):
        workflow.gather(cfg)


# -- threshold on one half, rate on the other ---------------------------------------------


def _brute_force(score, weight, event, total, input_khz, target_khz):
    """Threshold from the even events, rate and error from the odd ones, by explicit loops."""
    even, odd = event % 2 == 0, event % 2 == 1
    half = total / 2
    best = np.inf
    for t in sorted(set(score[even]), reverse=True):
        rate = input_khz * weight[even & (score >= t)].sum() / half
        if rate <= target_khz:
            best = t
        else:
            break
    f = weight[odd & (score >= best)].sum() / half
    n_eff = half  # unit weights: the number of events in the half
    return best, input_khz * f, input_khz * np.sqrt(f * (1 - f) / n_eff)


def test_measured_rate_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    n_with, n_total = 3000, 10000  # 7000 events without candidates
    event = rng.permutation(n_total)[:n_with]
    score = rng.random(n_with)
    mb = EventScores(score, np.ones(n_with), float(n_total), float(n_total), event)
    got = measured_rate(mb, 30000.0, 1000.0)
    thr, rate, err = _brute_force(score, np.ones(n_with), event, n_total, 30000.0, 1000.0)
    assert got["threshold_split"] == thr
    assert got["rate_khz_measured"] == pytest.approx(rate, rel=1e-12)
    assert got["rate_khz_measured_err"] == pytest.approx(err, rel=1e-12)


def test_measured_rate_is_not_the_target_by_construction_but_agrees_within_errors() -> None:
    rng = np.random.default_rng(5)
    n = 200_000
    mb = EventScores(rng.random(n), np.ones(n), float(n), float(n), np.arange(n))
    got = measured_rate(mb, 30000.0, 660.0)
    assert got["rate_khz_measured"] != pytest.approx(660.0, abs=1e-6)
    assert abs(got["rate_khz_measured"] - 660.0) < 4 * got["rate_khz_measured_err"]
    expected_err = 30000.0 * np.sqrt((660 / 30000) * (1 - 660 / 30000) / (n / 2))
    assert got["rate_khz_measured_err"] == pytest.approx(expected_err, rel=0.05)


def test_split_halves_share_the_denominator() -> None:
    mb = EventScores(
        np.array([0.1, 0.9, 0.5]), np.array([1.0, 2.0, 3.0]), 10.0, 20.0, np.array([4, 7, 9])
    )
    even, odd = split_minbias(mb)
    assert even.score.tolist() == [0.1] and odd.score.tolist() == [0.9, 0.5]
    assert even.total_weight == odd.total_weight == 5.0
    assert even.total_weight2 == odd.total_weight2 == 10.0


def test_summary_reports_target_and_measured_rate(tmp_path: Path) -> None:
    """Through the evaluation: the new keys sit next to the old ones."""
    from hepsel.workflow.evaluation import _rates, event_views

    from .test_negative_weights import _cfg, _dataset

    ds = _dataset(n=6000)
    ds.columns["weight"] = np.abs(ds.columns["weight"])
    ds.samples["minbias"].update(
        n_events=5000, normalisation=1.0, sum_gen_weights=float(ds.weight[ds.y == 0].sum()) * 2
    )
    cfg = _cfg({"bdt": {"type": "bdt"}})
    views = event_views(cfg, ds, ds.columns["x0"], ["fold"])
    out = _rates(cfg, views)
    for key, e in out.items():
        assert e["rate_target_khz"] == float(key)
        assert {
            "threshold",
            "rate_khz",
            "rate_khz_err",
            "threshold_split",
            "rate_khz_measured",
            "rate_khz_measured_err",
            "rate_split",
        } <= set(e)
    json.dumps(out)


def test_measured_rate_pull_is_standard_normal_over_splits() -> None:
    """The pull's denominator holds both halves' fluctuations: over many minimum-bias samples
    its spread is 1 (the measuring half's error alone would give ~sqrt(2))."""
    rng = np.random.default_rng(11)
    n, pulls = 20_000, []
    for _ in range(400):
        mb = EventScores(rng.random(n), np.ones(n), float(n), float(n), np.arange(n))
        got = measured_rate(mb, 30000.0, 660.0)
        # above the target: a positive pull
        assert np.sign(got["rate_khz_measured_pull"]) == np.sign(got["rate_khz_measured"] - 660.0)
        pulls.append(got["rate_khz_measured_pull"])
    assert abs(np.mean(pulls)) < 0.15
    assert np.std(pulls) == pytest.approx(1.0, abs=0.1)
