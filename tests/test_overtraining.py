"""Overtraining and leakage checks mean what they say."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hepsel.config.schema import AnalysisConfig, WarningsConfig
from hepsel.exceptions import ConfigError
from hepsel.io.storage import write_json
from hepsel.prep.dataset import Dataset
from hepsel.report.diagnostics import diagnose, overtraining_pvalue
from hepsel.stats.shapes import ks_2samp_weighted
from hepsel.train.kfold import event_validation_mask, fit_model, train_fold
from hepsel.workflow.cross_scoring import cross_scores, held_out, one_per_event
from hepsel.workflow.evaluation import _ks
from hepsel.workflow.layout import Layout

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
        write_json(
            lay.model_info(model, k),
            train_fold(cfg, ds, model, k, lay.model(model, k), progress=False),
        )
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
            expected_val = event_validation_mask(
                c["runNumber"], c["eventNumber"], v["fraction"], v["seed"]
            )
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
            "type": "gan_augmented",
            "base": "bdt",
            "params": {"n_estimators": 10, "n_jobs": 1},
            "gan": {"n_iterations": 20, "selection_interval": 10, "batch_size": 64, "n_jobs": 1},
            "synthetic_ratio": 2.0,
        },
        "m": {
            "type": "gan_augmented",
            "base": "mlp",
            "params": {
                "hidden_layers": [4],
                "max_epochs": 1,
                "n_jobs": 1,
                "preprocessing": "standard",
            },
            "gan": {"n_iterations": 20, "selection_interval": 10, "batch_size": 64, "n_jobs": 1},
            "synthetic_ratio": 2.0,
        },
    }
    cfg = _cfg(models)
    events = (ds.columns["runNumber"], ds.columns["eventNumber"])
    for name in models:
        clf, _, info = fit_model(cfg, cfg.models[name], ds.X, ds.y, w, seed=3, events=events)
        real_val = event_validation_mask(
            *events, info["validation"]["fraction"], info["validation"]["seed"]
        )
        assert info["n_synthetic"] == 2 * int((ds.y == 1).sum())
        assert clf.n_validation_ == int(real_val.sum())
    # the MLP's scaling is fitted on the real training rows only: standard scaling means match them
    scaler = clf.scaler_.to_dict()
    real_train = ds.X[~real_val]
    np.testing.assert_allclose(scaler["mean"], real_train.mean(axis=0), rtol=1e-6, atol=1e-9)


# -- calibration of the KS p-values --------------------------------------------------------


def _correlated_sample(
    rng: np.random.Generator, n_events: int, offset: int, sample: int = 0
) -> Dataset:
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
        ia = (
            one_per_event(a, np.ones(len(a.columns["score"]), bool), rng)
            if one_per
            else slice(None)
        )
        ib = (
            one_per_event(b, np.ones(len(b.columns["score"]), bool), rng)
            if one_per
            else slice(None)
        )
        ca, cb = a.columns, b.columns
        ps.append(
            ks_2samp_weighted(ca["score"][ia], cb["score"][ib], ca["weight"][ia], cb["weight"][ib])[
                1
            ]
        )
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
    all_keys = set(
        zip(ds.columns["sample"].tolist(), ds.columns["eventNumber"].tolist(), strict=True)
    )
    assert len(idx) == len(keys) == len(all_keys)


# -- the overtraining warning's false-alarm rate -------------------------------------------


def _ks_pvalues(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ks_2samp_weighted's p-values (unweighted, equal sizes n) for many pairs of samples at once (last axis)."""
    n = a.shape[-1]
    steps = np.where(np.argsort(np.concatenate([a, b], axis=-1), axis=-1) < n, 1, -1)
    gap = np.abs(np.cumsum(steps, axis=-1)).max(axis=-1)
    # D = gap / n takes few distinct values: one survival-function call each
    values, inverse = np.unique(gap, return_inverse=True)
    return stats.kstwo.sf(values / n, round(n / 2))[inverse].reshape(gap.shape)


@functools.cache
def _null_toys(
    n_toys: int, *, shared_folds: bool, k: int = 5, n: int = 150
) -> list[dict[str, list[float]]]:
    """``ks_pvalue_folds`` of models that do not overtrain: train and test drawn from one distribution.

    ``shared_folds``: as in k-fold training, fold ``i`` is the test set of model ``i`` and
    the training set of model ``i + 1`` (dependent tests); otherwise every test has fresh samples.
    """
    rng = np.random.default_rng(2024)
    if shared_folds:
        folds = rng.normal(size=(n_toys, 2, k, n))
        p = _ks_pvalues(folds[:, :, np.arange(k) - 1], folds)
    else:
        p = _ks_pvalues(rng.normal(size=(n_toys, 2, k, n)), rng.normal(size=(n_toys, 2, k, n)))
    return [{"signal": toy[0].tolist(), "background": toy[1].tolist()} for toy in p]


def _alarm_rate(toys: list[dict[str, list[float]]], alpha: float) -> float:
    t = WarningsConfig(ks_pvalue=alpha, auc_gap=1.0)
    alarms = [
        any(
            "KS p-value" in w["message"]
            for w in diagnose({"m": {"ks_pvalue_folds": toy}}, thresholds=t)
        )
        for toy in toys
    ]
    return float(np.mean(alarms))


def test_vectorised_toy_pvalues_are_the_pipelines() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, 150)), rng.normal(size=(20, 150))
    expected = [ks_2samp_weighted(x, y)[1] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(_ks_pvalues(a, b), expected, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_overtraining_false_alarm_rate_on_null_toys_is_alpha(alpha: float) -> None:
    """10 independent KS tests per model (5 folds x 2 classes): one model is flagged at rate ~alpha, not ~10 alpha."""
    n_toys = 4000
    toys = _null_toys(n_toys, shared_folds=False)
    rate = _alarm_rate(toys, alpha)
    expected = 1 - (1 - alpha / 10) ** 10  # Bonferroni with independent tests: just below alpha
    sigma = np.sqrt(expected * (1 - expected) / n_toys)
    # KS p-values are discrete (slightly conservative at n = 150): 4 binomial sigma below, 3 above
    assert expected - 4 * sigma < rate < expected + 3 * sigma
    assert rate < alpha + 3 * sigma
    # the uncorrected minimum flagged 1 - (1 - alpha)^10 of them: 9.6 % at 0.01, 40 % at 0.05
    uncorrected = np.mean([min(min(p) for p in toy.values()) < alpha for toy in toys])
    assert uncorrected > 0.7 * (1 - (1 - alpha) ** 10)


def test_overtraining_false_alarm_rate_with_shared_folds_stays_below_alpha() -> None:
    """k-fold training makes consecutive tests share a fold; the bound holds under any dependence."""
    n_toys, alpha = 4000, 0.05
    rate = _alarm_rate(_null_toys(n_toys, shared_folds=True), alpha)
    assert rate < alpha + 3 * np.sqrt(alpha * (1 - alpha) / n_toys)
    assert rate > alpha / 2  # and it is not a test that never fires


def test_overtraining_pvalue_is_bonferroni_over_every_fold_and_class() -> None:
    folds = {"signal": [0.5, 0.004, None, float("nan")], "background": [0.3, 0.9, 0.02]}
    family = overtraining_pvalue(folds)
    assert family == {
        "pvalue": 5 * 0.004,
        "method": "bonferroni",
        "n_tests": 5,
        "min_pvalue": 0.004,
        "class": "signal",
        "fold": 1,
    }
    assert overtraining_pvalue({"signal": [0.5], "background": [0.3, 0.1]})[
        "pvalue"
    ] == pytest.approx(0.3)
    assert overtraining_pvalue({"signal": [0.9, 0.8]})["pvalue"] == 1.0  # capped
    assert overtraining_pvalue({"signal": [None], "background": []}) is None
    # the warning fires on the corrected value, and says so
    t = WarningsConfig(ks_pvalue=0.01)
    assert (
        diagnose(
            {"m": {"ks_pvalue_folds": {"signal": [0.004, 0.5], "background": [0.5, 0.5]}}},
            thresholds=t,
        )
        == []
    )
    (w,) = diagnose(
        {"m": {"ks_pvalue_folds": {"signal": [0.5, 0.5], "background": [0.5, 0.002]}}}, thresholds=t
    )
    assert (
        "background response is 0.002 in fold 1, 0.008 corrected for 4 tests (bonferroni"
        in w["message"]
    )


def test_summary_records_the_corrected_pvalue(tmp_path: Path) -> None:
    ds = _dataset(n=3000)
    ds.columns["weight"] = np.abs(ds.columns["weight"])
    cfg = _cfg({"fisher": {"type": "fisher"}})
    lay = Layout(tmp_path)
    for k in range(cfg.folds.k):
        write_json(
            lay.model_info("fisher", k),
            train_fold(cfg, ds, "fisher", k, lay.model("fisher", k), progress=False),
        )
    out = _ks(cfg, ds, cross_scores(cfg, ds, "fisher", lay))
    ps = out["ks_pvalue_folds"]["signal"] + out["ks_pvalue_folds"]["background"]
    assert len(ps) == 2 * cfg.folds.k
    assert out["ks_pvalue_corrected"] == pytest.approx(min(1.0, len(ps) * min(ps)), rel=1e-12)
    assert out["ks_pvalue_correction"] == {"method": "bonferroni", "n_tests": len(ps)}


# -- folds need events ------------------------------------------------------------------------


def test_entry_numbers_as_events_are_refused_without_consent() -> None:
    raw = tiny_config("data", reading={"event_branch": None})
    with pytest.raises(ValueError, match="entries_are_events: true"):
        AnalysisConfig.model_validate(raw)
    raw["reading"]["entries_are_events"] = True
    assert AnalysisConfig.model_validate(raw).reading.event_branch is None


def test_decaytreetuple_with_several_candidates_per_event_is_refused(tmp_path: Path) -> None:
    from hepsel import workflow
    from hepsel.config.loading import load_config

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
