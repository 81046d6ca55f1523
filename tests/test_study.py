"""The augmentation study: the subset of real signal each point trains on, and the summary over seeds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import hepsel.workflow.study as study
from hepsel.prep.dataset import Dataset
from hepsel.workflow.study import augmentation_point, summarise

from .conftest import tiny_config
from .test_evaluation import brute_events, brute_threshold

FEATURES = ["x0", "x1"]


def _cfg():  # type: ignore[no-untyped-def]
    from hepsel.config.schema import AnalysisConfig

    raw = tiny_config(
        "data",
        models={"fisher": {"type": "fisher"}},
        folds={"k": 3},
        trigger={"input_rate_khz": 1000.0, "target_rates_khz": [100.0]},
    )
    raw["features"] = [{"name": f, "expr": f} for f in FEATURES]
    raw["evaluation"] = {"bootstrap": 0}
    return AnalysisConfig.model_validate(raw)


def _dataset() -> Dataset:
    """300 signal events (1-2 candidates, ~70% truth-matched) and 600 minimum-bias events (1-2 candidates) of 900 processed."""
    rng = np.random.default_rng(2)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("sample", "label", "runNumber", "eventNumber", "truth", "weight", *FEATURES)
    }
    for index, n_events in ((1, 300), (0, 600)):
        per = rng.integers(1, 3, n_events)
        evt = np.repeat(np.arange(n_events) + 5000 * index, per)
        n = len(evt)
        cols["sample"].append(np.full(n, index, dtype=np.int16))
        cols["label"].append(np.full(n, index, dtype=np.int8))
        cols["runNumber"].append(np.ones(n, dtype=np.int64))
        cols["eventNumber"].append(evt)
        cols["truth"].append((rng.random(n) < 0.7) if index == 1 else np.ones(n, dtype=bool))
        cols["weight"].append(
            np.repeat(rng.uniform(0.5, 1.5, n_events), per) if index == 1 else np.ones(n)
        )
        for j, f in enumerate(FEATURES):
            cols[f].append(rng.normal(index * (1.0 - 0.5 * j), 1.0, n))
    c = {k: np.concatenate(v) for k, v in cols.items()}
    c["truth"] = c["truth"].astype(np.int8)
    c["fold"] = (c["eventNumber"] % 3).astype(np.int8)
    samples = {
        "minbias": {
            "index": 0,
            "label": 0,
            "n_events": 900,
            "normalisation": 1.0,
            "sum_gen_weights": 900.0,
        },
        "signal": {
            "index": 1,
            "label": 1,
            "n_events": 300,
            "normalisation": 1.0,
            "sum_gen_weights": 300.0,
        },
    }
    return Dataset(c, FEATURES, samples)


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every fit_model call of the study: the rows it trained on and the fitted classifier."""
    calls: list[dict] = []
    real = study.fit_model

    def spy(cfg, mcfg, X, y, w, **kw):  # type: ignore[no-untyped-def]
        out = real(cfg, mcfg, X, y, w, **kw)
        calls.append({"X": X, "y": y, "clf": out[0]})
        return out

    monkeypatch.setattr(study, "fit_model", spy)
    return calls


def _rows(ds: Dataset, X: np.ndarray) -> np.ndarray:
    """Indices in ``ds`` of the training rows ``X`` (the feature values are unique)."""
    lookup = {tuple(r): i for i, r in enumerate(ds.X)}
    return np.array(sorted(lookup[tuple(r)] for r in X))


@pytest.mark.parametrize("n_real", [25, 100])
def test_point_trains_on_exactly_n_real_signal_candidates(fits: list[dict], n_real: int) -> None:
    cfg, ds = _cfg(), _dataset()
    out = augmentation_point(cfg, ds, "fisher", n_real, seed=1)
    rows = _rows(ds, fits[0]["X"])
    sig_pool = np.flatnonzero((ds.fold != 0) & ds.truth & (ds.y == 1))
    bkg_pool = np.flatnonzero((ds.fold != 0) & ds.truth & (ds.y == 0))
    sig = rows[ds.y[rows] == 1]
    assert len(sig) == n_real == out["n_real"] and out["n_real_requested"] == n_real
    assert set(sig) <= set(sig_pool)  # never fold 0, never a candidate that is not truth-matched
    np.testing.assert_array_equal(
        rows[ds.y[rows] == 0], bkg_pool
    )  # all the background of folds 1 and 2
    # each row keeps its own label
    lookup = {tuple(r): i for i, r in enumerate(ds.X)}
    np.testing.assert_array_equal(fits[0]["y"], [ds.y[lookup[tuple(r)]] for r in fits[0]["X"]])


def test_subset_is_seeded(fits: list[dict]) -> None:
    cfg, ds = _cfg(), _dataset()

    def signal_rows(seed: int) -> set[int]:
        augmentation_point(cfg, ds, "fisher", 50, seed=seed)
        rows = _rows(ds, fits[-1]["X"])
        return set(rows[ds.y[rows] == 1])

    first, again, other = signal_rows(1), signal_rows(1), signal_rows(2)
    assert first == again
    assert first != other


def test_all_and_more_than_available_use_every_signal_candidate(fits: list[dict]) -> None:
    cfg, ds = _cfg(), _dataset()
    n_pool = int(((ds.fold != 0) & ds.truth & (ds.y == 1)).sum())
    for n_real in ("all", 10 * n_pool):
        out = augmentation_point(cfg, ds, "fisher", n_real, seed=1)
        assert out["n_real"] == n_pool and out["n_real_requested"] == n_real
        assert int((fits[-1]["y"] == 1).sum()) == n_pool


def test_point_figures_on_the_test_fold(fits: list[dict]) -> None:
    """AUC (sklearn) and efficiency at the target rate (loops) from fold 0 alone, with the fold's share of the processed events."""
    cfg, ds = _cfg(), _dataset()
    out = augmentation_point(cfg, ds, "fisher", 100, seed=3)
    score = fits[0]["clf"].predict_proba(ds.X)[:, 1]
    test = (ds.fold == 0) & ds.truth
    assert out["auc"] == pytest.approx(
        roc_auc_score(ds.y[test], score[test], sample_weight=ds.weight[test]), abs=1e-12
    )
    c = ds.columns
    f0 = ds.fold == 0
    mb, sg = f0 & (ds.y == 0), f0 & (ds.y == 1)
    mb_ev = brute_events(c["runNumber"][mb], c["eventNumber"][mb], score[mb], ds.weight[mb])
    # fold 0 holds a third of the 900 processed minimum-bias events
    thr = brute_threshold(
        [e["any"] for e in mb_ev.values()], [e["w"] for e in mb_ev.values()], 300.0, 1000.0, 100.0
    )
    sig_ev = [
        e
        for e in brute_events(
            c["runNumber"][sg], c["eventNumber"][sg], score[sg], ds.weight[sg], ds.truth[sg]
        ).values()
        if e["tos"] is not None
    ]
    eff = sum(e["w"] for e in sig_ev if e["any"] >= thr) / sum(e["w"] for e in sig_ev)
    assert out["eff_at_rate"] == pytest.approx(eff, abs=1e-12)
    assert out["target_rate_khz"] == 100.0
    assert 0.0 < eff < 1.0


def test_summarise_by_hand() -> None:
    points = [
        {
            "model": "bdt",
            "n_real": 500,
            "n_real_requested": 500,
            "seed": 1,
            "auc": 0.90,
            "eff_at_rate": 0.50,
        },
        {
            "model": "bdt",
            "n_real": 500,
            "n_real_requested": 500,
            "seed": 2,
            "auc": 0.92,
            "eff_at_rate": 0.56,
        },
        {
            "model": "bdt",
            "n_real": 500,
            "n_real_requested": 500,
            "seed": 3,
            "auc": 0.94,
            "eff_at_rate": 0.59,
        },
        {
            "model": "gan_bdt",
            "n_real": 500,
            "n_real_requested": 500,
            "seed": 1,
            "auc": 0.93,
            "eff_at_rate": 0.60,
        },
        {
            "model": "bdt",
            "n_real": 1234,
            "n_real_requested": "all",
            "seed": 1,
            "auc": 0.97,
            "eff_at_rate": 0.70,
        },
    ]
    out = summarise(points)
    rows = {(r["model"], r["n_real_requested"]): r for r in out["rows"]}
    assert set(rows) == {("bdt", "500"), ("gan_bdt", "500"), ("bdt", "all")}
    r = rows[("bdt", "500")]
    # mean 0.92, deviations -0.02, 0, 0.02: sample std sqrt(0.0008 / 2) = 0.02
    assert (r["n_seeds"], r["n_real"]) == (3, 500)
    assert r["auc_mean"] == pytest.approx(0.92) and r["auc_std"] == pytest.approx(0.02)
    # 0.50, 0.56, 0.59: mean 0.55, deviations -0.05, 0.01, 0.04: std sqrt(0.0042 / 2)
    assert r["eff_at_rate_mean"] == pytest.approx(0.55) and r["eff_at_rate_std"] == pytest.approx(
        np.sqrt(0.0021)
    )
    one = rows[("gan_bdt", "500")]
    assert one["n_seeds"] == 1 and one["auc_mean"] == 0.93 and np.isnan(one["auc_std"])
    # rows sorted by model, then by the number of real candidates
    assert [(r["model"], r["n_real"]) for r in out["rows"]] == [
        ("bdt", 500),
        ("bdt", 1234),
        ("gan_bdt", 500),
    ]
    assert out["points"] is points
    lines = out["table"].splitlines()
    assert len(lines) == 4 and "0.9200 +- 0.0200" in lines[1]
