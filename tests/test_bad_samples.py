"""Samples that cannot be trained on stop at prepare/gather with a clear message; the advice works."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from hepsel import workflow
from hepsel.config.loading import load_config
from hepsel.exceptions import ConfigError, NonFiniteError
from hepsel.prep.ingest import FINITE_STEP

from .conftest import write_flat_tree


def _analysis(
    tmp_path: Path,
    change_signal: Callable[[dict[str, np.ndarray]], None] | None = None,
    **cfg_changes: object,
) -> Path:
    """Two flat samples and a config; ``change_signal`` edits the signal tree's columns in place."""
    write_flat_tree(tmp_path / "sig.root", seed=1)
    write_flat_tree(tmp_path / "bkg.root", seed=2)
    if change_signal is not None:
        with uproot.open(tmp_path / "sig.root") as f:
            t = f["DecayTree"].arrays(library="np")
            ev = f["EventTuple"].arrays(library="np")
        change_signal(t)
        with uproot.recreate(tmp_path / "sig.root") as f:
            f.mktree("DecayTree", {k: v.dtype for k, v in t.items()})
            f["DecayTree"].extend(t)
            f.mktree("EventTuple", {k: v.dtype for k, v in ev.items()})
            f["EventTuple"].extend(ev)
    cfg: dict = {
        "name": "bad",
        "samples": {
            "signal": {
                "files": [str(tmp_path / "sig.root")],
                "label": 1,
                "weight": "eventWeight",
                "truth": "truth_matched == 1",
            },
            "minbias": {
                "files": [str(tmp_path / "bkg.root")],
                "label": 0,
                "weight": "eventWeight",
                "events_tree": "EventTuple",
            },
        },
        "preselection": [{"name": "pt", "cut": "H1_PT > 300"}],
        "features": [
            {"name": "log_pt", "expr": "B_PT", "transform": "log"},
            "H1_PT",
            "B_IPCHI2_OWNPV",
        ],
        "folds": {"k": 2},
        "models": {"bdt": {"type": "bdt", "params": {"n_estimators": 5, "n_jobs": 1}}},
        "output": str(tmp_path / "out"),
    }
    for key, value in cfg_changes.items():
        cfg[key] = value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def _run(directory: Path) -> dict:
    cfg = load_config(directory)
    for s in cfg.samples:
        workflow.prepare(cfg, s, 0, progress=False)
    info = workflow.gather(cfg)
    workflow.train(cfg, "bdt", 0, progress=False)
    return info


def test_all_zero_weights_stop_at_gather(tmp_path: Path) -> None:
    d = _analysis(tmp_path, lambda t: t["eventWeight"].__setitem__(slice(None), 0.0))
    with pytest.raises(
        ConfigError,
        match=r"samples\.signal\.weight = 'eventWeight'.*sample 'signal' have a total weight of 0",
    ):
        _run(d)


def test_truth_matching_nothing_stops_at_gather(tmp_path: Path) -> None:
    d = _analysis(tmp_path)
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["samples"]["signal"]["truth"] = "truth_matched == 5"
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        ConfigError, match=r"samples\.signal\.truth = 'truth_matched == 5' matches none"
    ):
        _run(d)


def _nan_weight_where_preselection_removes(t: dict[str, np.ndarray]) -> None:
    t["eventWeight"][t["H1_PT"] <= 300] = np.nan


def test_nan_weights_on_removed_candidates_stop_at_prepare(tmp_path: Path) -> None:
    d = _analysis(tmp_path, _nan_weight_where_preselection_removes)
    with pytest.raises(
        NonFiniteError, match=r"sample 'signal'.*'eventWeight' is NaN.*reading\.non_finite: drop"
    ):
        _run(d)


def test_advice_non_finite_drop_works_for_nan_weights(tmp_path: Path) -> None:
    """Following the message's advice runs through gather and training; nothing is NaN downstream."""
    d = _analysis(tmp_path, _nan_weight_where_preselection_removes, reading={"non_finite": "drop"})
    with uproot.open(d / "sig.root") as f:
        t = f["DecayTree"].arrays(library="np")
    n_nan = int(np.sum(~np.isfinite(t["eventWeight"])))
    info = _run(d)
    assert info["signal"]["non_finite_dropped"] == {"weight (eventWeight)": n_nan}
    assert np.isfinite(info["signal"]["sum_gen_weights"])
    flow = json.loads((d / "out" / "cutflow.json").read_text())["signal"]["counts"]
    # the NaN-weight entries never enter the cut-flow: it starts from the finite ones
    assert flow["raw"][0] == len(t["eventWeight"]) - n_nan
    assert all(np.isfinite(x) for x in flow["weighted"])


def _zero_pt(t: dict[str, np.ndarray]) -> None:
    t["B_PT"][:25] = 0.0  # log(0) = -inf for these candidates


def test_advice_non_finite_drop_works_for_features(tmp_path: Path) -> None:
    d = _analysis(tmp_path, _zero_pt)
    with pytest.raises(
        NonFiniteError, match=r"'log_pt': \d+ candidates.*set reading\.non_finite: drop"
    ):
        _run(d)
    d = _analysis(tmp_path, _zero_pt, reading={"non_finite": "drop"})
    _run(d)
    cutflow = json.loads((d / "out" / "cutflow.json").read_text())["signal"]["counts"]
    # the dropped candidates are a step of the cut-flow, and its last count is what was kept
    assert cutflow["steps"][-1] == FINITE_STEP
    samples = json.loads((d / "out" / "samples.json").read_text())
    assert cutflow["raw"][-1] == samples["signal"]["n_candidates"]
    dropped = samples["signal"]["non_finite_dropped"]["log_pt"]
    assert cutflow["raw"][-2] - cutflow["raw"][-1] == dropped > 0


def test_advice_add_to_spectators_works(tmp_path: Path) -> None:
    d = _analysis(tmp_path, evaluation={"mass": "B_IPCHI2_OWNPV_x"})
    with pytest.raises(ConfigError, match="add it to spectators"):
        load_config(d)
    d = _analysis(tmp_path, evaluation={"mass": "nCandidate"}, spectators=["nCandidate"])
    assert load_config(d).evaluation.mass == "nCandidate"
