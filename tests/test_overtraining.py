"""Overtraining and leakage checks mean what they say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hepsel.config import AnalysisConfig
from hepsel.dataset import Dataset
from hepsel.evaluation import cross_scores, held_out, one_per_event
from hepsel.exceptions import ConfigError
from hepsel.metrics import ks_2samp_weighted
from hepsel.storage import write_json
from hepsel.training import event_validation_mask, fit_model, train_fold
from hepsel.workflow import Layout

from .conftest import tiny_config
from .test_negative_weights import _cfg, _dataset


def test_validation_split_takes_whole_events_and_is_reproducible() -> None:
    run = np.zeros(30000, dtype=np.int64)
    event = np.repeat(np.arange(10000), 3)
    m = event_validation_mask(run, event, 0.2, seed=11)
    assert m.reshape(-1, 3).all(axis=1).sum() == m.reshape(-1, 3).any(axis=1).sum()  # whole events
    assert m[::3].mean() == pytest.approx(0.2, abs=0.015)
    np.testing.assert_array_equal(m, event_validation_mask(run, event, 0.2, seed=11))
    assert (m != event_validation_mask(run, event, 0.2, seed=12)).any()


@pytest.mark.parametrize("model", ["bdt", "mlp", "fisher"])
def test_train_scores_only_rows_the_model_was_fitted_on(model: str, tmp_path: Path) -> None:
    ds = _dataset(n=3000)
    ds.columns["weight"] = np.abs(ds.columns["weight"])
    models = {
        "bdt": {"type": "bdt", "params": {"n_estimators": 10, "n_jobs": 1}},
        "mlp": {"type": "mlp", "params": {"hidden_layers": [4], "max_epochs": 1, "n_jobs": 1}},
        "fisher": {"type": "fisher"},
    }
    cfg = _cfg(models)
    lay = Layout(tmp_path)
    for k in range(cfg.folds.k):
        write_json(lay.model_info(model, k), train_fold(cfg, ds, model, k, lay.model(model, k), progress=False))
    cs = cross_scores(cfg, ds, model, lay)
    c = ds.columns
    for k in range(cfg.folds.k):
        prev = ds.fold == (k - 1) % cfg.folds.k
        info = json.loads(lay.model_info(model, k).read_text())
        if model == "fisher":
            assert "validation" not in info
            expected_val = np.zeros(len(ds), dtype=bool)
        else:
            v = info["validation"]
            expected_val = event_validation_mask(c["runNumber"], c["eventNumber"], v["fraction"], v["seed"])
            # the record counts exactly the held-out training candidates
            assert v["n_validation"] == int((expected_val & (ds.fold != k)).sum()) > 0
        np.testing.assert_array_equal(held_out(ds, lay.model_info(model, k)), expected_val)
        # 'train' scores exist exactly for the previous fold's candidates the model was fitted on
        np.testing.assert_array_equal(np.isfinite(cs.train) & prev, prev & ~expected_val)


def test_gan_augmented_early_stopping_sees_real_events_only() -> None:
    ds = _dataset(n=3000)
    w = np.abs(ds.weight)
    models = {
        "g": {
            "type": "gan_augmented", "base": "bdt", "params": {"n_estimators": 10, "n_jobs": 1},
            "gan": {"n_iterations": 20, "selection_interval": 10, "batch_size": 64, "n_jobs": 1}, "synthetic_ratio": 2.0,
        },
        "m": {
            "type": "gan_augmented", "base": "mlp", "params": {"hidden_layers": [4], "max_epochs": 1, "n_jobs": 1, "preprocessing": "standard"},
            "gan": {"n_iterations": 20, "selection_interval": 10, "batch_size": 64, "n_jobs": 1}, "synthetic_ratio": 2.0,
        },
    }
    cfg = _cfg(models)
    events = (ds.columns["runNumber"], ds.columns["eventNumber"])
    for name in models:
        clf, _, info = fit_model(cfg, cfg.models[name], ds.X, ds.y, w, seed=3, events=events)
        real_val = event_validation_mask(*events, info["validation"]["fraction"], info["validation"]["seed"])
        assert info["n_synthetic"] == 2 * int((ds.y == 1).sum())
        assert clf.n_validation_ == int(real_val.sum())
    # the MLP's scaling is fitted on the real training rows only: standard scaling means match them
    scaler = clf.scaler_.to_dict()
    real_train = ds.X[~real_val]
    np.testing.assert_allclose(scaler["mean"], real_train.mean(axis=0), rtol=1e-6, atol=1e-9)


# -- calibration of the KS p-values --------------------------------------------------------


def _correlated_sample(rng: np.random.Generator, n_events: int, offset: int, sample: int = 0) -> Dataset:
    """Events of 1-6 candidates whose scores share an event-level component (as candidates sharing tracks)."""
    per = rng.integers(1, 7, n_events)
    event = np.repeat(np.arange(n_events) + offset, per)
    shared = np.repeat(rng.normal(size=n_events), per)
    score = 0.9 * shared + 0.3 * rng.normal(size=len(event))
    cols = {
        "sample": np.full(len(event), sample, dtype=np.int16),
        "runNumber": np.zeros(len(event), dtype=np.int64),
        "eventNumber": event,
        "score": score,
        "weight": rng.uniform(0.5, 1.5, n_events).repeat(per),
    }
    return Dataset(cols, [], {})


def _pvalues(one_per: bool, n_trials: int = 300) -> np.ndarray:
    rng = np.random.default_rng(123)
    ps = []
    for _ in range(n_trials):
        a, b = _correlated_sample(rng, 300, 0), _correlated_sample(rng, 300, 10_000)
        ia = one_per_event(a, np.ones(len(a.columns["score"]), bool), rng) if one_per else slice(None)
        ib = one_per_event(b, np.ones(len(b.columns["score"]), bool), rng) if one_per else slice(None)
        ca, cb = a.columns, b.columns
        ps.append(ks_2samp_weighted(ca["score"][ia], cb["score"][ib], ca["weight"][ia], cb["weight"][ib])[1])
    return np.asarray(ps)


def test_ks_pvalues_are_uniform_without_overtraining() -> None:
    """Two independent samples of one distribution: one candidate per event gives uniform p-values."""
    p = _pvalues(one_per=True)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(p < 0.05) < 0.09


def test_candidate_level_ks_is_miscalibrated() -> None:
    """Counting correlated candidates as independent makes p-values far too small (what one-per-event fixes)."""
    p = _pvalues(one_per=False)
    assert np.mean(p < 0.05) > 0.15


def test_one_per_event_picks_one_candidate_of_each_event() -> None:
    rng = np.random.default_rng(0)
    ds = _correlated_sample(rng, 50, 0)
    ds.columns["sample"][:10] = 1  # same event numbers in another sample are other events
    idx = one_per_event(ds, np.ones(len(ds.columns["score"]), bool), rng)
    keys = {(int(ds.columns["sample"][i]), int(ds.columns["eventNumber"][i])) for i in idx}
    all_keys = set(zip(ds.columns["sample"].tolist(), ds.columns["eventNumber"].tolist(), strict=True))
    assert len(idx) == len(keys) == len(all_keys)


# -- folds need events ------------------------------------------------------------------------


def test_entry_numbers_as_events_are_refused_without_consent() -> None:
    raw = tiny_config("data", reading={"event_branch": None})
    with pytest.raises(ValueError, match="entries_are_events: true"):
        AnalysisConfig.model_validate(raw)
    raw["reading"]["entries_are_events"] = True
    assert AnalysisConfig.model_validate(raw).reading.event_branch is None


def test_decaytreetuple_with_several_candidates_per_event_is_refused(tmp_path: Path) -> None:
    from hepsel import workflow
    from hepsel.config import load_config

    from .conftest import write_config, write_flat_tree

    write_flat_tree(tmp_path / "s.root", seed=1)
    write_flat_tree(tmp_path / "b.root", seed=2)
    raw = {
        "name": "x",
        "samples": {
            "s": {"files": [str(tmp_path / "s.root")], "label": 1},
            "b": {"files": [str(tmp_path / "b.root")], "label": 0, "events_tree": "EventTuple"},
        },
        "features": ["B_PT"],
        "models": {"bdt": {"type": "bdt"}},
        "reading": {"event_branch": None, "entries_are_events": True},
        "output": str(tmp_path / "out"),
    }
    cfg = load_config(write_config(tmp_path / "a", raw))
    with pytest.raises(ConfigError, match="'nCandidate' shows up to 3 candidates per event"):
        workflow.prepare(cfg, "s", 0, progress=False)
