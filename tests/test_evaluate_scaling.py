"""The evaluation at scale: block-wise scoring, subsampled bootstraps and vectorised grouping give the same figures."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from hepsel.config.schema import AnalysisConfig
from hepsel.io.storage import write_json
from hepsel.prep.dataset import Dataset
from hepsel.stats.metrics import roc, roc_auc_bootstrap
from hepsel.stats.performance import correlation_matrix
from hepsel.stats.trigger import EventScores, event_ids, threshold_for_rate
from hepsel.stats.uncertainty import bootstrap_subsample
from hepsel.train.kfold import train_fold
from hepsel.workflow import evaluation
from hepsel.workflow.cross_scoring import (
    CrossScores,
    _Moments,
    feature_blocks,
    one_per_event,
    score_models,
)
from hepsel.workflow.evaluation import _working_point_spread, model_summary
from hepsel.workflow.layout import Layout

from .conftest import tiny_config
from .test_negative_weights import FEATURES, _cfg, _dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[AnalysisConfig, Dataset, Layout]:
    ds = _dataset(n=3000)
    ds.columns["weight"] = np.abs(ds.columns["weight"])
    cfg = _cfg(
        {
            "bdt": {"type": "bdt", "params": {"n_estimators": 10, "n_jobs": 1}},
            "fisher": {"type": "fisher"},
        }
    )
    lay = Layout(tmp_path_factory.mktemp("models"))
    for model in cfg.models:
        for k in range(cfg.folds.k):
            write_json(
                lay.model_info(model, k),
                train_fold(cfg, ds, model, k, lay.model(model, k), progress=False),
            )
    return cfg, ds, lay


def test_block_scoring_equals_scoring_all_at_once(
    trained: tuple[AnalysisConfig, Dataset, Layout],
) -> None:
    cfg, ds, lay = trained
    X = ds.X
    whole = score_models(cfg, ds, list(cfg.models), lay, [(0, X)])
    # uneven blocks, some without a candidate of a fold
    edges = [0, 7, 700, 701, 1900, len(ds)]
    blocks = [(a, X[a:b]) for a, b in itertools.pairwise(edges)]
    corr: dict[str, np.ndarray] = {}
    parts = score_models(cfg, ds, list(cfg.models), lay, blocks, correlations=corr)
    for model in cfg.models:
        a, b = whole[model], parts[model]
        assert (
            np.isfinite(a.test).all()
            and np.isfinite(a.ranking).all()
            and np.isfinite(a.train).any()
        )
        # trees score each row alone; a matrix product may round differently with the block's size
        tol = 0 if model == "bdt" else 1e-12
        np.testing.assert_allclose(b.test, a.test, rtol=tol, atol=tol)
        np.testing.assert_allclose(b.ranking, a.ranking, rtol=tol, atol=tol)
        np.testing.assert_array_equal(np.isnan(b.train), np.isnan(a.train))
        np.testing.assert_allclose(b.train, a.train, rtol=tol, atol=tol)
    m = ds.truth
    for cls, code in (("signal", 1), ("background", 0)):
        sel = m & (ds.y == code)
        np.testing.assert_allclose(
            corr[cls], correlation_matrix(X[sel], ds.weight[sel]), rtol=0, atol=1e-12
        )


def test_feature_blocks_read_the_feature_matrix(tmp_path: Path) -> None:
    ds = _dataset(n=1000)
    path = tmp_path / "dataset.parquet"
    pq.write_table(pa.table(ds.columns), path, row_group_size=300)
    blocks = list(feature_blocks(path, FEATURES, block_rows=256))
    assert [start for start, _ in blocks] == [0, 300, 600, 900]  # whole row groups
    np.testing.assert_array_equal(np.concatenate([X for _, X in blocks]), ds.X)
    assert [start for start, _ in feature_blocks(path, FEATURES, block_rows=500)] == [0, 600]
    ((start, X),) = feature_blocks(path, FEATURES, block_rows=5000)
    assert start == 0
    np.testing.assert_array_equal(X, ds.X)


def test_moments_of_one_block_are_exactly_the_correlation_matrix() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4)) + 1e4
    w = rng.normal(1.0, 0.5, size=500)
    one = _Moments()
    one.add(X, w)
    np.testing.assert_array_equal(one.correlation(4), correlation_matrix(X, w))
    many = _Moments()
    for part in np.array_split(np.arange(500), 7):
        many.add(X[part], w[part])
    np.testing.assert_allclose(many.correlation(4), correlation_matrix(X, w), atol=1e-10)


def test_event_ids_match_numpy_unique_rows() -> None:
    rng = np.random.default_rng(4)
    keys = [rng.integers(0, 3, 5000), rng.integers(0, 5, 5000) * 10**9, rng.integers(0, 400, 5000)]
    ids, order, starts = event_ids(*keys)
    rows, inverse = np.unique(np.column_stack(keys), axis=0, return_inverse=True)
    np.testing.assert_array_equal(ids, inverse.ravel())
    np.testing.assert_array_equal(np.column_stack(keys)[order[starts]], rows)
    # stable: the first row of each tuple is its first occurrence
    first = np.unique(np.column_stack(keys), axis=0, return_index=True)[1]
    np.testing.assert_array_equal(order[starts], first)


def test_one_per_event_equals_the_reference_loop() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    cols = {
        "sample": rng.integers(0, 2, n).astype(np.int16),
        "runNumber": rng.integers(1, 3, n).astype(np.int64),
        "eventNumber": rng.integers(0, 600, n).astype(np.int64),
    }
    ds = Dataset(cols, [], {})
    mask = rng.random(n) < 0.7
    got = one_per_event(ds, mask, np.random.default_rng(9))
    # reference: a Python loop keeping the first candidate of each event in the permuted order
    idx = np.flatnonzero(mask)
    idx = idx[np.random.default_rng(9).permutation(len(idx))]
    seen: dict[tuple[int, int, int], int] = {}
    for i in idx:
        seen.setdefault(
            (int(cols["sample"][i]), int(cols["runNumber"][i]), int(cols["eventNumber"][i])), int(i)
        )
    np.testing.assert_array_equal(got, np.sort(list(seen.values())))


def _spread_reference(
    cfg: AnalysisConfig, mb: EventScores, signal: EventScores, target: float
) -> float:
    """The working-point bootstrap as a loop of rate curves, one sort per replica."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, int(target * 1000)]))
    effs = np.empty(cfg.evaluation.bootstrap)
    for r in range(len(effs)):
        k = rng.poisson(1.0, size=len(mb.weight))
        scale = float(np.sum(mb.weight * k)) / max(float(np.sum(mb.weight)), 1e-300)
        replica = EventScores(mb.score, mb.weight * k, mb.total_weight * scale)
        effs[r] = signal.pass_fraction(
            threshold_for_rate(replica, cfg.rates.input_rate_khz, target)
        )[0]
    return float(np.std(effs, ddof=1))


def _trigger_cfg(bootstrap: int) -> AnalysisConfig:
    raw = tiny_config(
        "data", folds={"k": 2}, trigger={"input_rate_khz": 1000.0, "target_rates_khz": [100.0]}
    )
    raw["evaluation"] = {"bootstrap": bootstrap}
    return AnalysisConfig.model_validate(raw)


def test_working_point_spread_equals_the_reference_loop() -> None:
    cfg = _trigger_cfg(40)
    rng = np.random.default_rng(6)
    n = 3000
    # ties, an event without a firing candidate (-inf) and uneven weights
    mb = EventScores(np.round(rng.random(n), 3), rng.uniform(0.5, 2.0, n), 1.3 * n)
    mb.score[:5] = -np.inf
    signal = EventScores(rng.random(800), rng.uniform(0.5, 2.0, 800), 900.0)
    for target in (100.0, 330.0, 0.01):
        assert _working_point_spread(cfg, mb, signal, target) == _spread_reference(
            cfg, mb, signal, target
        )


def test_subsampled_working_point_spread_scales_to_the_full_one() -> None:
    """Spread of a subsample of m events times sqrt(m / n) = spread of all n events, within the bootstrap precision."""
    cfg = _trigger_cfg(400)
    rng = np.random.default_rng(8)
    n = 40000
    mb = EventScores(rng.random(n), np.ones(n), float(n))
    grid = np.linspace(0.0, 1.0, 20001)
    sig = EventScores(grid, np.ones(len(grid)), float(len(grid)))
    full = _working_point_spread(cfg, mb, sig, 500.0, max_events=n)
    sub = _working_point_spread(cfg, mb, sig, 500.0, max_events=n // 8)
    # each to ~1/sqrt(2 * 399) = 3.5%: their ratio to ~5%
    assert sub == pytest.approx(full, rel=0.2)
    assert full == pytest.approx(np.sqrt(0.5 * 0.5 / n), rel=0.15)
    # without the scale factor it would be sqrt(8) ~ 2.8 times larger
    assert not sub * np.sqrt(8) == pytest.approx(full, rel=0.5)


def test_bootstrap_subsample_law() -> None:
    keep, scale = bootstrap_subsample(100, 1000, 0)
    assert keep is None and scale == 1.0
    keep, scale = bootstrap_subsample(10_000, 2500, 0)
    assert keep is not None and len(np.unique(keep)) == 2500 and np.all(np.diff(keep) > 0)
    assert scale == 0.5
    np.testing.assert_array_equal(keep, bootstrap_subsample(10_000, 2500, 0)[0])


def test_subsampled_auc_spread_scales_to_the_full_one() -> None:
    """The AUC bootstrap on a quarter of the events, scaled by sqrt(1/4), agrees with the full bootstrap."""
    rng = np.random.default_rng(10)
    n_events = 20000
    size = rng.integers(1, 4, n_events)  # 1-3 correlated candidates per event
    event = np.repeat(np.arange(n_events), size)
    y = np.repeat(rng.random(n_events) < 0.3, size).astype(int)
    s = rng.normal(y * 1.2, 1.0) + np.repeat(rng.normal(0, 0.5, n_events), size)
    w = np.repeat(rng.uniform(0.5, 1.5, n_events), size)
    _, full, _ = roc_auc_bootstrap(y, s, w, n_bootstrap=300, random_state=1, groups=event)
    keep, scale = bootstrap_subsample(n_events, n_events // 4, 2)
    assert keep is not None
    sel = np.isin(event, keep)
    # each to ~1/sqrt(2 * 299) = 4%: their ratio to ~6%
    _, sub, _ = roc_auc_bootstrap(
        y[sel], s[sel], w[sel], n_bootstrap=300, random_state=1, groups=event[sel]
    )
    assert sub * scale == pytest.approx(full, rel=0.2)
    assert not sub == pytest.approx(full, rel=0.5)


def _summary_inputs(n_events: int) -> tuple[AnalysisConfig, Dataset, CrossScores]:
    rng = np.random.default_rng(11)
    size = rng.integers(1, 3, n_events)
    n = int(size.sum())
    label = np.repeat(rng.random(n_events) < 0.4, size).astype(np.int8)
    score = 1 / (1 + np.exp(-rng.normal(2.0 * label - 1.0, 1.0)))
    cols = {
        "runNumber": np.ones(n, dtype=np.int64),
        "eventNumber": np.repeat(np.arange(n_events), size).astype(np.int64),
        "label": label,
        "sample": (1 - label).astype(np.int16),
        "truth": np.ones(n, dtype=np.int8),
        "weight": np.repeat(rng.uniform(0.5, 1.5, n_events), size),
        "fold": (np.repeat(np.arange(n_events), size) % 3).astype(np.int8),
    }
    samples = {
        "minbias": {"index": 0, "label": 0, "normalisation": 1.0},
        "signal": {"index": 1, "label": 1, "normalisation": 1.0},
    }
    ds = Dataset(cols, [], samples)
    raw = tiny_config("data")
    raw["features"] = [{"name": f, "expr": f} for f in FEATURES]
    raw["evaluation"] = {"bootstrap": 200, "yields": "candidates"}
    raw["trigger"] = None
    cfg = AnalysisConfig.model_validate(raw)
    train = np.where(cols["fold"] == 0, score, np.nan)
    return cfg, ds, CrossScores(score, train, test_raw=np.log(score / (1 - score)))


def test_model_summary_subsamples_the_auc_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, ds, cs = _summary_inputs(20000)
    full = model_summary(cfg, ds, cs, random_state=3)
    assert full["auc_std_events"] == 20000
    # the AUC agrees with scikit-learn's
    assert full["auc"] == pytest.approx(
        roc_auc_score(ds.y, cs.test, sample_weight=ds.weight), rel=1e-12
    )
    monkeypatch.setattr(evaluation, "BOOTSTRAP_MAX_EVENTS", 5000)
    sub = model_summary(cfg, ds, cs, random_state=3)
    assert sub["auc_std_events"] == 5000
    assert sub["auc"] == full["auc"]
    # both to ~1/sqrt(2 * 199) = 5%
    assert sub["auc_std"] == pytest.approx(full["auc_std"], rel=0.25)
    assert _same_without_bootstrap(sub, full)


def _same_without_bootstrap(a: dict, b: dict) -> bool:
    """Every figure but the bootstrapped ones agrees (NaNs compared as equal)."""
    import json

    drop = ("auc_std", "auc_std_events")
    return json.dumps({k: v for k, v in a.items() if k not in drop}, default=str) == json.dumps(
        {k: v for k, v in b.items() if k not in drop}, default=str
    )


def test_roc_agrees_with_scikit_learn_on_ties_and_weights() -> None:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, 5000)
    s = np.round(rng.normal(y, 1.0), 1)  # many ties
    w = rng.uniform(0.1, 2.0, 5000)
    r = roc(y, s, w)
    fpr, tpr, _ = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(r.bkg_eff, fpr, atol=1e-12)
    np.testing.assert_allclose(r.sig_eff, tpr, atol=1e-12)
    assert r.auc == pytest.approx(roc_auc_score(y, s, sample_weight=w), rel=1e-12)
