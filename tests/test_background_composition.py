"""Background composition of a working point, on a hand-made minimum-bias sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hepsel.config.loading import load_config
from hepsel.prep.dataset import Dataset
from hepsel.workflow.evaluation import background_composition

from .conftest import tiny_config, write_config


def test_best_candidate_category_counts(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["evaluation"] = {
        "background_category": "mode",
        "background_category_names": {12: "displaced", 50: "real b"},
    }
    cfg = load_config(write_config(tmp_path / "analysis", raw))
    # four minimum-bias events (two candidates each but event 3) and one signal event
    evt = np.array([1, 1, 2, 2, 3, 4, 4, 9])
    score = np.array([0.9, 0.2, 0.3, 0.95, 0.1, 0.8, 0.85, 0.99])
    mode = np.array([12, 50, 12, 50, 12, 50, 12, 1])
    sample = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    cols = {
        "runNumber": np.ones(8, dtype=np.int64),
        "eventNumber": evt,
        "label": sample,
        "sample": sample,
        "weight": np.ones(8),
        "fold": evt % 2,
        "truth": np.ones(8, dtype=np.int8),
        "mode": mode,
    }
    samples = {
        "signal": {"index": 1, "normalisation": 1.0, "sum_gen_weights": 1.0, "n_events": 1},
        "minbias": {"index": 0, "normalisation": 1.0, "sum_gen_weights": 4.0, "n_events": 4},
    }
    ds = Dataset(cols, [], samples)
    out = background_composition(cfg, ds, score, {"loose": 0.5, "tight": 0.9})
    loose = out["loose"]
    assert loose["n_events"] == 3 and loose["column"] == "mode"
    # events 1 and 4 fire on a displaced candidate (scores 0.9, 0.85), event 2 on the real b (0.95)
    assert {k: v["n_events"] for k, v in loose["categories"].items()} == {
        "displaced": 2,
        "real b": 1,
    }
    d = loose["categories"]["displaced"]
    assert d["fraction"] == pytest.approx(2 / 3) and d["fraction_low"] < 2 / 3 < d["fraction_high"]
    assert {k: v["n_events"] for k, v in out["tight"]["categories"].items()} == {
        "displaced": 1,
        "real b": 1,
    }
    cfg.evaluation.background_category = None
    assert background_composition(cfg, ds, score, {"loose": 0.5}) == {}
