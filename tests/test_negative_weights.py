"""Negative weights (sWeights, NLO): cell resampling, and every model kind trains on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from hepsel.config.schema import AnalysisConfig
from hepsel.prep.dataset import Dataset
from hepsel.train.kfold import fit_model, train_fold
from hepsel.train.negative_weights import cell_resample, weight_residuals

from .conftest import tiny_config

FEATURES = ["x0", "x1", "x2"]


def _cfg(models: dict, **training: object) -> AnalysisConfig:
    raw = tiny_config("data", models=models)
    raw["features"] = [{"name": f, "expr": f} for f in FEATURES]
    raw["spectators"] = ["mode"]
    raw["evaluation"] = {"bootstrap": 10}
    raw["training"] = training
    return AnalysisConfig.model_validate(raw)


# -- cell resampling against hand calculations ------------------------------------------


def test_cell_resampling_hand_example() -> None:
    # the seed (-0.5) takes its nearest neighbour (1.0); the far event is untouched
    r = cell_resample(np.array([[0.0], [0.1], [5.0]]), [1.0, -0.5, 2.0])
    np.testing.assert_allclose(r.weights, [1.0 * 0.5 / 1.5, 0.5 * 0.5 / 1.5, 2.0])
    assert r.n_negative == 1 and r.n_cells == 1 and r.cell_sizes == [2]


def test_cell_needs_several_neighbours() -> None:
    # -2.5 needs both +1 neighbours and the +1.5 one: cell sum 1.0 over |w| sum 6
    X = np.array([[0.0], [0.1], [0.2], [0.3], [10.0]])
    w = np.array([-2.5, 1.0, 1.0, 1.5, 3.0])
    r = cell_resample(X, w)
    np.testing.assert_allclose(r.weights[:4], np.abs(w[:4]) * 1.0 / 6.0)
    assert r.weights[4] == 3.0


def test_cell_resampling_keeps_totals_and_distributions() -> None:
    rng = np.random.default_rng(1)
    n = 20000
    X = rng.normal(size=(n, 2))
    # sWeight-like: positive on average, ~15% negative, uncorrelated with X
    w = rng.choice([1.4, -0.6], size=n, p=[0.85, 0.15])
    r = cell_resample(X, w)
    assert (r.weights >= 0).all()
    assert r.weights.sum() == pytest.approx(w.sum(), rel=1e-12)
    assert 0.14 < r.n_negative / n < 0.16
    # coarse weighted histograms agree within their statistical errors
    res = weight_residuals(X, w, r.weights, ["a", "b"], bins=10)
    for v in res.values():
        assert v["max_abs_pull"] < 3.0 and v["chi2_ndf"] < 2.0


def brute_cell_resample(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Cell resampling written out: most negative seed first, neighbours by full distance sort.

    Distances are Euclidean in features divided by their robust spread (scipy's
    normal-scaled interquartile range), as in arXiv:2109.07851.
    """
    spread = stats.iqr(X, axis=0, scale="normal")
    spread = np.where(
        spread > 0,
        spread,
        np.where(X.std(axis=0) > 0, X.std(axis=0) * 1.349 / stats.norm.ppf(0.75) / 2, 1.0),
    )
    Z = (X - np.median(X, axis=0)) / spread
    w = w.astype(np.float64).copy()
    sizes = []
    for seed in sorted(np.flatnonzero(w < 0), key=lambda i: (w[i], i)):
        if w[seed] >= 0:
            continue
        d = np.sqrt(((Z - Z[seed]) ** 2).sum(axis=1))
        order = [seed] + [i for i in np.argsort(d, kind="stable") if i != seed]
        total, cell = 0.0, []
        for i in order:
            cell.append(i)
            total += w[i]
            if total >= 0:
                break
        a = np.abs(w[cell]).sum()
        w[cell] = np.abs(w[cell]) * total / a
        sizes.append(len(cell))
    return w, sizes


def test_seeds_are_taken_most_negative_first() -> None:
    # -1.5 (at 2.2) seeds first and takes +3 (cell sum 1.5, |w| sum 4.5); then -1 (at 0) takes
    # what is left of +3 (1.0): sum 0. Seeding -1 first would give [0.5, 0, 0] instead
    r = cell_resample(np.array([[0.0], [1.0], [2.2]]), [-1.0, 3.0, -1.5])
    np.testing.assert_allclose(r.weights, [0.0, 0.0, 0.5], atol=1e-15)
    assert r.cell_sizes == [2, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cell_resampling_matches_the_algorithm_written_out(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    X = rng.normal(size=(n, 2)) * [1.0, 25.0]  # unequal spreads: standardisation matters
    w = rng.choice([1.0, -0.7], size=n, p=[0.75, 0.25]) * rng.uniform(0.5, 1.5, n)
    r = cell_resample(X, w, k_start=4)  # small k_start: the neighbour search has to grow
    want, sizes = brute_cell_resample(X, w)
    np.testing.assert_allclose(r.weights, want, rtol=1e-12, atol=1e-15)
    assert r.cell_sizes == sizes and r.n_cells == len(sizes) and r.n_negative == int((w < 0).sum())


def test_features_without_quartile_spread_use_their_std() -> None:
    # column 1 is constant but for 10% outliers (interquartile range 0), column 2 constant:
    # the first falls back to its standard deviation, the second to unit scale
    rng = np.random.default_rng(11)
    n = 200
    X = np.column_stack(
        [
            rng.normal(size=n),
            np.where(rng.random(n) < 0.1, rng.normal(0, 50, n), 0.0),
            np.full(n, 3.0),
        ]
    )
    w = rng.choice([1.0, -0.6], size=n, p=[0.7, 0.3])
    r = cell_resample(X, w)
    want, sizes = brute_cell_resample(X, w)
    np.testing.assert_allclose(r.weights, want, rtol=1e-12, atol=1e-15)
    assert r.cell_sizes == sizes


def test_info_summarises_the_cells() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    w = rng.choice([1.0, -0.5], size=300, p=[0.8, 0.2])
    r = cell_resample(X, w)
    sizes = np.array(r.cell_sizes)
    assert r.info() == {
        "method": "cell resampling (arXiv:2109.07851)",
        "n_negative": int((w < 0).sum()),
        "n_cells": len(sizes),
        "cell_size_median": float(np.median(sizes)),
        "cell_size_max": int(sizes.max()),
        "events_in_cells": int(sizes.sum()),
    }
    assert len(set(sizes)) > 1  # the median and the maximum differ
    none = cell_resample(X, np.abs(w))
    np.testing.assert_array_equal(none.weights, np.abs(w))
    assert none.info() == {
        "method": "cell resampling (arXiv:2109.07851)",
        "n_negative": 0,
        "n_cells": 0,
        "cell_size_median": 0.0,
        "cell_size_max": 0,
        "events_in_cells": 0,
    }


def test_weight_residuals_are_bin_pulls() -> None:
    rng = np.random.default_rng(5)
    n = 500
    X = rng.normal(size=(n, 2))
    before = rng.uniform(0.5, 1.5, n)
    after = before * rng.uniform(0.7, 1.3, n)
    res = weight_residuals(X, before, after, ["a", "b"], bins=5)
    for j, name in enumerate(["a", "b"]):
        x = X[:, j]
        edges = np.quantile(x, np.linspace(0, 1, 6))
        b = np.clip(
            np.searchsorted(edges, x, side="right") - 1, 0, 4
        )  # the last edge closes the last bin
        pulls = []
        for k in range(5):
            in_bin = b == k
            pulls.append(
                (after[in_bin].sum() - before[in_bin].sum()) / np.sqrt((before[in_bin] ** 2).sum())
            )
        pulls = np.array(pulls)
        assert res[name]["max_abs_pull"] == pytest.approx(np.abs(pulls).max(), rel=1e-12)
        assert res[name]["chi2_ndf"] == pytest.approx(np.mean(pulls**2), rel=1e-12)
    # unchanged weights: no pull; a feature of one value: nothing to compare
    same = weight_residuals(np.c_[X[:, 0], np.ones(n)], before, before, bins=5)
    assert same == {
        "x0": {"max_abs_pull": 0.0, "chi2_ndf": 0.0},
        "x1": {"max_abs_pull": 0.0, "chi2_ndf": 0.0},
    }


def test_quartile_edges_and_small_spreads_set_the_scale() -> None:
    # column 0 jumps right at its lower quartile; column 1 has no quartile spread and a std below 1
    rng = np.random.default_rng(12)
    n = 100
    a = np.concatenate([np.zeros(25), np.full(75, 10.0)]) + rng.normal(0, 1e-3, n)
    a[25:] = 10.0 + rng.normal(0, 3.0, 75)
    b = np.where(rng.random(n) < 0.1, rng.normal(0, 0.3, n), 0.0)
    X = rng.permutation(np.column_stack([a, b]))
    w = rng.choice([1.0, -0.5], size=n, p=[0.7, 0.3])
    want, sizes = brute_cell_resample(X, w)
    r = cell_resample(X, w)
    np.testing.assert_allclose(r.weights, want, rtol=1e-12, atol=1e-15)
    assert r.cell_sizes == sizes


def test_tied_seeds_go_in_index_order() -> None:
    rng = np.random.default_rng(13)
    n = 400
    X = rng.normal(size=(n, 2))
    # two levels of tied negative weights, interleaved: numpy's default (unstable) sort reorders the ties
    u = rng.random(n)
    w = np.where(u < 0.15, -1.0, np.where(u < 0.3, -0.5, 1.0))
    want, sizes = brute_cell_resample(X, w)
    r = cell_resample(X, w)
    np.testing.assert_allclose(r.weights, want, rtol=1e-12, atol=1e-15)
    assert r.cell_sizes == sizes


def test_a_negative_event_absorbed_into_a_cell_is_no_seed() -> None:
    # the -2 seed takes the -1 and the +3: the cell sums to 0, so the -1 (now 0) seeds no cell of its own
    r = cell_resample(np.array([0.0, 1.0, 2.0, 50.0]), [-2.0, -1.0, 3.0, 5.0])
    np.testing.assert_array_equal(r.weights, [0.0, 0.0, 0.0, 5.0])
    assert r.cell_sizes == [3] and r.n_negative == 2 and r.n_cells == 1
    # zero weights are not negative ones
    r = cell_resample(np.array([[0.0], [1.0], [2.0]]), [0.0, 1.0, 0.0])
    assert r.n_negative == 0 and r.n_cells == 0
    r = cell_resample(np.array([[0.0], [1.0], [2.0]]), [0.0, 1.0, -0.5])
    assert r.n_negative == 1 and r.cell_sizes == [2]
    # a 1-d X is one feature
    np.testing.assert_array_equal(
        cell_resample(np.array([0.0, 0.1, 5.0]), [1.0, -0.5, 2.0]).weights,
        cell_resample(np.array([[0.0], [0.1], [5.0]]), [1.0, -0.5, 2.0]).weights,
    )


def test_cell_resampling_messages() -> None:
    import re

    with pytest.raises(
        ValueError,
        match=re.escape(
            "the sample: the total weight is 0 <= 0 (1 of 2 weights negative); "
            "negative weights cannot be made positive while keeping the total"
        ),
    ):
        cell_resample(np.zeros((2, 1)), [-1.0, 1.0])
    with pytest.raises(
        ValueError,
        match=re.escape("weights has 1 entries but X has 2 (weights has shape (1,), needs (2,))"),
    ):
        cell_resample(np.zeros((2, 1)), [1.0])


def test_weight_residuals_small_weights_empty_bins_and_few_values() -> None:
    rng = np.random.default_rng(6)
    n = 400
    x = rng.normal(size=n)
    before = rng.uniform(0.001, 0.01, n)  # bin errors well below 1
    before[x < np.quantile(x, 0.05)] = (
        0.0  # the first of 20 bins has no weight before: no pull there
    )
    after = before * rng.uniform(0.5, 1.5, n)
    after[x < np.quantile(x, 0.05)] = 0.01
    two = np.where(x > 0, 1.0, 0.0)  # two values: one bin
    const = np.full(n, 4.0)  # one value: nothing to compare
    res = weight_residuals(np.column_stack([const, x, two]), before, after)  # 20 bins by default
    assert res["x0"] == {"max_abs_pull": 0.0, "chi2_ndf": 0.0}
    edges = np.quantile(x, np.linspace(0, 1, 21))
    b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 19)
    pulls = np.zeros(20)
    for k in range(20):
        e = np.sqrt((before[b == k] ** 2).sum())
        pulls[k] = (after[b == k].sum() - before[b == k].sum()) / e if e > 0 else 0.0
    assert pulls[0] == 0.0 and np.count_nonzero(pulls) == 19
    assert res["x1"]["max_abs_pull"] == pytest.approx(np.abs(pulls).max(), rel=1e-12)
    assert res["x1"]["chi2_ndf"] == pytest.approx(np.mean(pulls**2), rel=1e-12)
    one = (after.sum() - before.sum()) / np.sqrt((before**2).sum())
    assert res["x2"] == {
        "max_abs_pull": pytest.approx(abs(one), rel=1e-12),
        "chi2_ndf": pytest.approx(one**2, rel=1e-12),
    }
    assert weight_residuals(x, before, after, bins=20) == {"x0": res["x1"]}  # 1-d X


def test_negative_total_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="total weight is -1"):
        cell_resample(np.zeros((2, 1)), [-2.0, 1.0], where="x")


def test_xgboost_bdt_refuses_negative_weights_with_a_hint() -> None:
    from hepsel.models.bdt import BDTClassifier

    with pytest.raises(ValueError, match="cell_resample"):
        BDTClassifier(n_estimators=2).fit(
            np.zeros((4, 1)), np.array([0, 1, 0, 1]), np.array([1, -1, 1, 1.0])
        )


# -- an sWeighted signal sample --------------------------------------------------------


def _sweights(
    m: np.ndarray, ns: float, nb: float, lo: float, hi: float, mu: float, sigma: float
) -> np.ndarray:
    """Signal sWeights of a Gaussian peak over a flat background with known shapes and yields (Pivk, Le Diberder)."""
    fs = stats.norm.pdf(m, mu, sigma) / (
        stats.norm.cdf(hi, mu, sigma) - stats.norm.cdf(lo, mu, sigma)
    )
    fb = np.full_like(m, 1.0 / (hi - lo))
    den = ns * fs + nb * fb
    F = np.stack([fs, fb])
    V = np.linalg.inv((F[:, None, :] * F[None, :, :] / den**2).sum(-1))
    return (V[0, 0] * fs + V[0, 1] * fb) / den


def _sweighted_sample(seed: int, n_sig: int = 3000, n_bkg: int = 6000):
    """Data with an sWeighted signal, a background training sample, and a truth test set."""
    rng = np.random.default_rng(seed)

    def sig(n):
        return rng.normal([1.0, 0.0, 0.0], 1.0, size=(n, 3))

    def data_bkg(n):  # background under the peak: unlike the bulk of the background sample
        return rng.normal([0.0, 2.0, 0.0], 0.7, size=(n, 3))

    def bkg(n):
        k = rng.random(n) < 0.5
        return np.where(k[:, None], rng.normal([-1.0, 0.0, 0.0], 1.0, size=(n, 3)), data_bkg(n))

    X_data = np.concatenate([sig(n_sig), data_bkg(n_bkg)])
    m = np.concatenate([rng.normal(5280.0, 20.0, n_sig), rng.uniform(5000.0, 5600.0, n_bkg)])
    keep = (m > 5000) & (m < 5600)
    X_data, m = X_data[keep], m[keep]
    sw = _sweights(m, n_sig, n_bkg, 5000.0, 5600.0, 5280.0, 20.0)
    X_b = bkg(9000)
    X = np.concatenate([X_data, X_b])
    y = np.r_[np.ones(len(X_data), dtype=np.int64), np.zeros(len(X_b), dtype=np.int64)]
    w = np.r_[sw, np.ones(len(X_b))]
    X_test = np.concatenate([sig(20000), bkg(20000)])
    y_test = np.r_[np.ones(20000), np.zeros(20000)]
    return X, y, w, X_test, y_test


def test_sweights_really_have_negative_entries() -> None:
    _X, y, w, *_ = _sweighted_sample(1)
    assert 0.3 < np.mean(w[y == 1] < 0) < 0.7
    assert w[y == 1].sum() == pytest.approx(3000, rel=0.05)


@pytest.mark.parametrize("seed", [1, 2])
def test_bdt_on_sweights_beats_dropping_negative_weights(seed: int) -> None:
    """The default (keep: cell resampling for xgboost) removes the background under the peak; drop does not."""
    from hepsel.prep.dataset import training_weights

    X, y, w, X_test, y_test = _sweighted_sample(seed)
    models = {"bdt": {"type": "bdt", "params": {"n_estimators": 100, "max_depth": 3, "n_jobs": 1}}}
    auc = {}
    for policy in ("keep", "drop"):
        cfg = _cfg(models, negative_weights=policy)
        wt = training_weights(w, y, negative=policy, balance=True)
        clf, _, info = fit_model(cfg, cfg.models["bdt"], X, y, wt, seed=seed)
        auc[policy] = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])
        if policy == "keep":
            rec = info["negative_weights"]["signal"]
            assert rec["n_negative"] == int((w < 0).sum())
            assert set(rec["residuals"]) == set(FEATURES)
    assert auc["keep"] > auc["drop"] + 0.005, auc


# -- every model kind, through train_fold, with ~10% negative weights -------------------


def _dataset(seed: int = 0, n: int = 4000) -> Dataset:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.int8)
    X = rng.normal(size=(n, 3)) + y[:, None] * np.array([1.0, 0.5, 0.0])
    w = np.where(rng.random(n) < 0.1, -0.5, 1.2) * np.exp(
        0.3 * X[:, 0]
    )  # ~10% negative, feature-dependent
    cols = {
        "runNumber": np.zeros(n, dtype=np.int64),
        "eventNumber": np.arange(n, dtype=np.int64),
        "label": y,
        "sample": (1 - y).astype(np.int16),
        "truth": np.ones(n, dtype=np.int8),
        "weight": w,
        "fold": (np.arange(n) % 3).astype(np.int8),
        "mode": rng.integers(1, 3, n).astype(np.float64),
        **{f: X[:, j] for j, f in enumerate(FEATURES)},
    }
    samples = {"minbias": {"index": 0, "label": 0}, "signal": {"index": 1, "label": 1}}
    return Dataset(cols, FEATURES, samples)


MODEL_KINDS = {
    "bdt": {"type": "bdt", "params": {"n_estimators": 20, "n_jobs": 1}},
    "mlp": {"type": "mlp", "params": {"hidden_layers": [8], "max_epochs": 2, "n_jobs": 1}},
    "fisher": {"type": "fisher"},
    "gan_bdt": {
        "type": "gan_augmented",
        "base": "bdt",
        "params": {"n_estimators": 20, "n_jobs": 1},
        "gan": {"n_iterations": 20, "selection_interval": 10, "batch_size": 64, "n_jobs": 1},
        "condition_on": "mode",
    },
    "gan_mlp": {
        "type": "gan_augmented",
        "base": "mlp",
        "params": {"hidden_layers": [8], "max_epochs": 2, "n_jobs": 1},
        "gan": {"n_iterations": 20, "selection_interval": 10, "batch_size": 64, "n_jobs": 1},
    },
}


@pytest.mark.parametrize("model", list(MODEL_KINDS))
def test_every_model_kind_trains_with_negative_weights_by_default(
    model: str, tmp_path: Path
) -> None:
    ds = _dataset()
    assert 0.05 < np.mean(ds.weight < 0) < 0.15
    cfg = _cfg(MODEL_KINDS)
    assert cfg.training.negative_weights == "keep"
    info = train_fold(cfg, ds, model, 0, tmp_path / "m", progress=False)
    assert info["n_negative_weights"] > 0
    # xgboost and the GAN get resampled weights; mlp and fisher take them as they are
    resampled = "negative_weights" in info
    assert resampled == (model in ("bdt", "gan_bdt"))
    if model.startswith("gan"):
        assert "negative_weights_gan" in info or model == "gan_bdt"


# -- the GAN learns the weighted signal ---------------------------------------------------


def test_gan_learns_the_weighted_signal_distribution() -> None:
    """Signal weights that depend on a feature shift its weighted mean; the GAN (default lambda_gp = 10) follows them."""
    rng = np.random.default_rng(4)
    n = 6000
    y = np.r_[np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)]
    X = rng.normal(size=(2 * n, 3))
    w = np.ones(2 * n)
    w[:n] = np.exp(X[:n, 0])  # weighted mean of x0 over the signal: ~1 (unweighted: 0)
    weighted_mean = np.average(X[:n, 0], weights=w[:n])
    assert weighted_mean > 0.8
    models = {
        "gan": {
            "type": "gan_augmented",
            "base": "bdt",
            "params": {"n_estimators": 5, "n_jobs": 1},
            "gan": {
                "n_iterations": 600,
                "selection_interval": 200,
                "batch_size": 128,
                "n_jobs": 1,
                "device": "cpu",
            },
        }
    }
    cfg = _cfg(models)
    mcfg = cfg.models["gan"]
    _, gan, info = fit_model(cfg, mcfg, X, y, w, seed=1)
    assert gan.lambda_gp == 10.0
    gen = gan.sample(20000, random_state=2)
    # the generated mean sits at the weighted mean, far from the unweighted one (0 +- 0.013)
    assert abs(gen[:, 0].mean() - weighted_mean) < 0.25
    assert gen[:, 0].mean() > 0.6
    assert info["n_synthetic"] == n


def test_report_shows_the_resampling_residuals(tmp_path: Path) -> None:
    from hepsel.report.html import render_report

    ds = _dataset()
    cfg = _cfg(MODEL_KINDS)
    info = train_fold(cfg, ds, "bdt", 0, tmp_path / "m", progress=False)
    summary = {"bdt": {"eff_at_rate": {}, "training": [info]}, "_meta": {"target_rates_khz": []}}
    html = render_report(tmp_path, summary)
    assert "Negative training weights made positive" in html
    rec = info["negative_weights"]["signal"]
    assert f"<td>{rec['n_negative']}</td><td>{rec['n_cells']}</td>" in html
