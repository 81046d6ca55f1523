"""Per-candidate score uncertainty from fold-model replicas, and its calibration check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hepsel.models as models_module
from hepsel.config.loading import load_config
from hepsel.config.provenance import step_digest
from hepsel.exceptions import ConfigError
from hepsel.prep.dataset import Dataset
from hepsel.stats.uncertainty import (
    calibration_figures,
    expected_fraction_beyond,
    pulls,
    replica_spread,
)
from hepsel.train.kfold import _bootstrap_rows, replica_prefix, train_fold
from hepsel.workflow.cross_scoring import replica_scores
from hepsel.workflow.layout import Layout

from .conftest import tiny_config, write_config

_J = 256  # random Fourier features of the toy's noise


def _sigma(X: np.ndarray) -> np.ndarray:
    """The toy's per-candidate spread over seeds (score units)."""
    return 0.02 * (1.0 + 0.5 * np.tanh(X[:, 0]))


class NoisyToy:
    """A stand-in classifier whose score over training seeds has a known spread.

    score(x) = 0.5 + 0.2 tanh(x_1) + sigma(x) eps_seed(x), with eps a sum of
    random Fourier features: for every x, a standard normal variable over
    seeds (mean 0, variance 1 exactly, nearly Gaussian), decorrelated
    between candidates.
    """

    def __init__(self, random_state: int | None = None, n_jobs: int | None = None) -> None:
        # the workflow trains torch kinds (this toy stands in for an mlp) on a fixed thread count
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None, **_: Any) -> NoisyToy:
        self.seed_ = int(np.random.default_rng(self.random_state).integers(2**31))
        self.n_train_ = len(X)
        self.n_features_in_ = X.shape[1]
        return self

    def _eps(self, X: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.seed_)
        g = rng.normal(size=_J)
        omega = rng.normal(scale=5.0, size=(_J, X.shape[1]))
        phi = rng.uniform(0, 2 * np.pi, size=_J)
        return np.asarray(np.cos(X @ omega.T + phi) @ g * np.sqrt(2.0 / _J))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = 0.5 + 0.2 * np.tanh(X[:, 1]) + _sigma(X) * self._eps(X)
        return np.column_stack([1 - p, p])

    def save(self, prefix: Path) -> Path:
        Path(prefix).with_suffix(".json").write_text(
            json.dumps({"seed": self.seed_, "n_train": self.n_train_})
        )
        return Path(prefix)

    @classmethod
    def load(cls, prefix: Path) -> NoisyToy:
        d = json.loads(Path(prefix).with_suffix(".json").read_text())
        out = cls()
        out.seed_, out.n_train_ = d["seed"], d["n_train"]
        return out


def _real_cls(kind: str) -> Any:
    return _ORIGINAL_CLS(kind)


_ORIGINAL_CLS = models_module._cls


@pytest.fixture
def toy_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kind ``mlp`` builds and loads the toy."""
    monkeypatch.setattr(
        models_module, "_cls", lambda kind: NoisyToy if kind == "mlp" else _real_cls(kind)
    )


def _setup(
    tmp_path: Path, uncertainty: dict[str, Any] | None, n: int = 3000, output: Path | None = None
) -> tuple[Any, Dataset]:
    m: dict[str, Any] = {"type": "mlp"}
    if uncertainty is not None:
        m["uncertainty"] = uncertainty
    raw = tiny_config("data", models={"toy": m})
    raw["output"] = str(output or tmp_path / "out")
    cfg = load_config(write_config(tmp_path, raw), base_dir=tmp_path)
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.4).astype(np.int8)
    cols: dict[str, np.ndarray] = {
        "runNumber": np.zeros(n, dtype=np.int64),
        "eventNumber": np.arange(n, dtype=np.int64) // 2,  # two candidates per event
        "label": y,
        "sample": y.astype(np.int16),
        "truth": np.ones(n, dtype=np.int8),
        "weight": np.ones(n),
        "fold": ((np.arange(n) // 2) % 3).astype(np.int8),
    }
    for f in cfg.feature_names:
        cols[f] = rng.normal(size=n)
    samples = {
        "minbias": {"index": 0, "n_events": n, "sum_gen_weights": n, "normalisation": 1.0},
        "signal": {"index": 1, "n_events": n, "sum_gen_weights": n, "normalisation": 1.0},
    }
    return cfg, Dataset(cols, cfg.feature_names, samples)


def _train(cfg: Any, ds: Dataset) -> Layout:
    lay = Layout.of(cfg)
    for k in range(cfg.folds.k):
        train_fold(cfg, ds, "toy", k, lay.model("toy", k), progress=False)
    return lay


@pytest.mark.usefixtures("toy_kind")
def test_err_matches_the_known_spread(tmp_path: Path) -> None:
    cfg, ds = _setup(tmp_path, {"replicas": 3})
    lay = _train(cfg, ds)
    err, mean, check = replica_scores(cfg, ds, "toy", lay)
    sigma = _sigma(ds.X)
    # E[err**2] = sigma**2 for the sample variance of R draws: unbiased, whatever R
    ratio = np.mean(err**2 / sigma**2)
    assert ratio == pytest.approx(1.0, abs=0.1)
    # the replica mean scatters around the noiseless score by sigma / sqrt(R)
    truth = 0.5 + 0.2 * np.tanh(ds.X[:, 1])
    assert np.mean((mean - truth) ** 2 / sigma**2) == pytest.approx(1 / 3, abs=0.05)
    assert np.isfinite(check).all()
    # replicas differ from each other, from the calibration replica and from the nominal model
    seeds = {
        json.loads(p.read_text())["seed"] for p in (lay.root / "models" / "toy").glob("fold0*.json")
    }
    assert len(seeds) == 5  # nominal, 3 replicas, check


@pytest.mark.usefixtures("toy_kind")
def test_calibration_fraction_near_expectation_and_far_when_misscaled(tmp_path: Path) -> None:
    cfg, ds = _setup(tmp_path, {"replicas": 3})
    err, mean, check = replica_scores(cfg, ds, "toy", _train(cfg, ds))
    good = calibration_figures(check, mean, err, 3, score=mean)
    expected = expected_fraction_beyond(3)
    assert good["expected_fraction_beyond_1"] == pytest.approx(expected)
    assert good["fraction_beyond_1"] == pytest.approx(expected, abs=0.04)
    assert len(good["bins"]) == 5 and sum(b["n_candidates"] for b in good["bins"]) == len(ds)
    small = calibration_figures(check, mean, 0.5 * err, 3)["fraction_beyond_1"]
    large = calibration_figures(check, mean, 2.0 * err, 3)["fraction_beyond_1"]
    assert small > expected + 0.15
    assert large < expected - 0.15


@pytest.mark.parametrize("n_replicas", [2, 3, 10])
def test_expected_fraction_by_brute_force(n_replicas: int) -> None:
    """Gaussian replicas with per-candidate sigma: the pull fraction beyond 1 matches the t prediction."""
    rng = np.random.default_rng(n_replicas)
    n = 200_000
    sigma = rng.uniform(0.1, 2.0, n)
    mu = rng.normal(size=n)
    reps = mu + sigma * rng.normal(size=(n_replicas, n))
    new = mu + sigma * rng.normal(size=n)
    m, err = replica_spread(reps)
    frac = np.mean(np.abs(pulls(new, m, err, n_replicas)) > 1)
    assert frac == pytest.approx(expected_fraction_beyond(n_replicas), abs=0.005)


def test_replica_spread_is_the_sample_std() -> None:
    s = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    m, e = replica_spread(s)
    np.testing.assert_allclose(m, [3.0, 2.0])
    np.testing.assert_allclose(e, [2.0, 0.0])  # sqrt(((-2)^2 + 0 + 2^2) / 2)
    assert np.isnan(pulls(np.array([1.0, 1.0]), m, e, 3)[1])
    with pytest.raises(ValueError, match="n_replicas >= 2"):
        replica_spread(s[:1])


@pytest.mark.usefixtures("toy_kind")
def test_bootstrap_replicas_resample_whole_events(tmp_path: Path) -> None:
    cfg, ds = _setup(tmp_path, {"replicas": 2, "bootstrap": True, "calibration": False})
    lay = _train(cfg, ds)
    n_nominal = json.loads(lay.model("toy", 0).with_suffix(".json").read_text())["n_train"]
    for r in range(2):
        n_rep = json.loads(replica_prefix(lay.model("toy", 0), r).with_suffix(".json").read_text())[
            "n_train"
        ]
        # a Poisson(1) bootstrap leaves out about exp(-1) of the events
        assert n_rep / n_nominal == pytest.approx(1 - np.exp(-1), abs=0.05)
    assert not replica_prefix(lay.model("toy", 0), "check").with_suffix(".json").exists()
    counts = _bootstrap_rows((np.zeros(4000, dtype=np.int64), np.arange(4000) // 2), seed=3)
    np.testing.assert_array_equal(counts[::2], counts[1::2])
    assert counts.mean() == pytest.approx(1.0, abs=0.08)


@pytest.mark.usefixtures("toy_kind")
def test_stale_replicas_are_removed_and_missing_ones_reported(tmp_path: Path) -> None:
    cfg, ds = _setup(tmp_path, {"replicas": 2})
    lay = _train(cfg, ds)
    assert replica_prefix(lay.model("toy", 1), 1).with_suffix(".json").is_file()
    cfg_off, _ = _setup(
        tmp_path / "off", None, output=tmp_path / "out"
    )  # same outputs, uncertainty now off
    train_fold(cfg_off, ds, "toy", 1, lay.model("toy", 1), progress=False)
    assert not list((lay.root / "models" / "toy").glob("fold1_*"))
    with pytest.raises(
        ConfigError, match=r"models\.toy\.uncertainty: replica 0 of fold 1 not found"
    ):
        replica_scores(cfg, ds, "toy", lay)
    with pytest.raises(ConfigError, match=r"models\.toy has no 'uncertainty' block"):
        replica_scores(cfg_off, ds, "toy", lay)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    for bad, key in (
        ({"replicas": 1}, r"models\.bdt\.uncertainty\.replicas"),
        ({"replica": 3}, r"models\.bdt\.uncertainty\.replica"),
    ):
        raw = tiny_config("data", models={"bdt": {"type": "bdt", "uncertainty": bad}})
        with pytest.raises(ConfigError, match=key):
            load_config(write_config(tmp_path / str(len(str(bad))), raw), base_dir=tmp_path)


def test_digests(tmp_path: Path) -> None:
    """Replicas rerun train and evaluate, not explain; configs without them keep their digests."""

    def cfg(unc: dict[str, Any] | None, name: str) -> Any:
        m: dict[str, Any] = {"type": "bdt", "params": {"n_estimators": 5}}
        if unc is not None:
            m["uncertainty"] = unc
        return load_config(
            write_config(tmp_path / name, tiny_config("data", models={"bdt": m})),
            base_dir=tmp_path / name,
        )

    off, on, more = cfg(None, "a"), cfg({"replicas": 3}, "b"), cfg({"replicas": 4}, "c")
    for step in ("train", "evaluate"):
        kw = {"model": "bdt"} if step == "train" else {}
        digests = {step_digest(c, step, **kw) for c in (off, on, more)}
        assert len(digests) == 3, step
    assert step_digest(off, "explain", model="bdt") == step_digest(on, "explain", model="bdt")
    from hepsel.config.provenance import step_settings

    assert "uncertainty" not in step_settings(off, "train", model="bdt")["model_cfg"]


def test_calibration_figures_written_out() -> None:
    from scipy import stats

    rng = np.random.default_rng(3)
    n, r = 204, 4  # 197 pulls: the quartiles fall on candidates, which open the bin above
    err = rng.uniform(0.5, 2.0, n)
    err[:7] = 0.0  # no pull
    mean = rng.normal(size=n)
    check = mean + err * rng.normal(size=n) * 1.3
    score = rng.uniform(size=n)
    out = calibration_figures(check, mean, err, r, score=score, n_bins=4)
    pull = [
        (c - m) / (e * np.sqrt(1 + 1 / r))
        for c, m, e in zip(check, mean, err, strict=True)
        if e > 0
    ]
    pull = np.array(pull)
    assert out["definition"] == (
        "pull = (s_check - mean of the R replica scores) / (err * sqrt(1 + 1/R)), "
        "s_check from one more independent replica; Student t with R-1 dof if err is calibrated"
    )
    assert out["n_replicas"] == r and out["n_candidates"] == n - 7 and out["n_zero_err"] == 7
    assert out["fraction_beyond_1"] == pytest.approx(np.mean(np.abs(pull) > 1), rel=1e-14)
    assert out["expected_fraction_beyond_1"] == pytest.approx(2 * stats.t.sf(1, r - 1), rel=1e-14)
    assert out["pull_mean"] == pytest.approx(pull.mean(), rel=1e-12)
    assert out["pull_std"] == pytest.approx(pull.std(ddof=1), rel=1e-12)
    assert out["median_abs_pull"] == pytest.approx(np.median(np.abs(pull)), rel=1e-14)
    assert out["expected_median_abs_pull"] == pytest.approx(stats.t.ppf(0.75, r - 1), rel=1e-14)
    assert out["mean_err"] == pytest.approx(err.mean(), rel=1e-14)
    assert out["median_err"] == pytest.approx(np.median(err), rel=1e-14)
    # four bins of equal population in the nominal score of the candidates with a pull
    s, e = score[err > 0], err[err > 0]
    edges = np.quantile(s, [0, 0.25, 0.5, 0.75, 1])
    assert len(out["bins"]) == 4
    for b, got in enumerate(out["bins"]):
        inb = (s >= edges[b]) & ((s < edges[b + 1]) if b < 3 else (s <= edges[b + 1]))
        assert got == {
            "score_low": edges[b],
            "score_high": edges[b + 1],
            "n_candidates": int(inb.sum()),
            "fraction_beyond_1": pytest.approx(np.mean(np.abs(pull[inb]) > 1), rel=1e-14),
            "median_err": pytest.approx(np.median(e[inb]), rel=1e-14),
        }
    assert sum(b["n_candidates"] for b in out["bins"]) == n - 7


def test_calibration_figures_with_few_pulls() -> None:
    # exactly n_bins candidates with a pull: one per bin; one pull: no spread; none: NaN figures
    err = np.array([1.0, 1.0, 0.0, 1.0])
    out = calibration_figures(
        np.array([2.0, 0.0, 5.0, 0.5]),
        np.zeros(4),
        err,
        3,
        score=np.array([0.1, 0.2, 0.3, 0.4]),
        n_bins=3,
    )
    assert [b["n_candidates"] for b in out["bins"]] == [1, 1, 1]
    assert "bins" not in calibration_figures(
        np.zeros(4), np.zeros(4), err, 3, score=np.arange(4.0), n_bins=4
    )
    one = calibration_figures(np.array([2.0]), np.array([0.0]), np.array([1.0]), 3)
    assert one["n_candidates"] == 1 and np.isnan(one["pull_std"])
    assert one["fraction_beyond_1"] == 1.0 and one["pull_mean"] == pytest.approx(2 / np.sqrt(4 / 3))
    two = calibration_figures(np.array([1.0, -3.0]), np.zeros(2), np.ones(2), 3)
    p2 = np.array([1.0, -3.0]) / np.sqrt(4 / 3)
    assert two["pull_std"] == pytest.approx(np.std(p2, ddof=1), rel=1e-14)
    # a pull of exactly 1 is not beyond 1
    err1 = np.array([0.3, 0.3])
    at = calibration_figures(err1 * np.sqrt(1 + 1 / 3) * np.array([1.0, 1.5]), np.zeros(2), err1, 3)
    assert at["fraction_beyond_1"] == 0.5
    at = calibration_figures(
        err1 * np.sqrt(1 + 1 / 3) * np.array([1.0, 1.5]),
        np.zeros(2),
        err1,
        3,
        score=np.array([0.1, 0.2]),
        n_bins=1,
    )
    assert at["bins"][0]["fraction_beyond_1"] == 0.5
    # tied scores leave the first of two bins empty
    tied = calibration_figures(
        np.array([1.0, 0.2, 3.0, 0.1]),
        np.zeros(4),
        np.ones(4),
        3,
        score=np.array([0.5, 0.5, 0.5, 0.9]),
        n_bins=2,
    )
    assert tied["bins"][0]["n_candidates"] == 0
    assert np.isnan(tied["bins"][0]["fraction_beyond_1"]) and np.isnan(
        tied["bins"][0]["median_err"]
    )
    assert tied["bins"][1]["n_candidates"] == 4 and tied["bins"][1]["fraction_beyond_1"] == 0.25
    none = calibration_figures(np.zeros(2), np.zeros(2), np.zeros(2), 3)
    assert none["n_candidates"] == 0 and none["n_zero_err"] == 2
    for key in ("fraction_beyond_1", "pull_mean", "pull_std", "median_abs_pull"):
        assert np.isnan(none[key]), key
    empty = calibration_figures(np.zeros(0), np.zeros(0), np.zeros(0), 3)
    assert np.isnan(empty["mean_err"]) and np.isnan(empty["median_err"])


def test_pulls_and_expected_fraction_edges() -> None:
    p = pulls([1.0, 3.0, 2.0], [0.0, 1.0, 2.0], [1.0, 2.0, 0.0], 2)
    np.testing.assert_allclose(p[:2], [1 / np.sqrt(1.5), 2 / (2 * np.sqrt(1.5))], rtol=1e-15)
    assert np.isnan(p[2])
    assert expected_fraction_beyond(2) == pytest.approx(0.5, rel=1e-12)  # Cauchy: P(|t| > 1) = 1/2
    assert expected_fraction_beyond(5, k=2.0) == pytest.approx(
        2 * (1 - __import__("scipy").stats.t.cdf(2.0, 4)), rel=1e-12
    )
    with pytest.raises(ValueError, match=r"^n_replicas must be at least 2, got 1$"):
        expected_fraction_beyond(1)
    with pytest.raises(
        ValueError, match=r"^scores must have shape \(n_replicas >= 2, n_candidates\), got \(3,\)$"
    ):
        replica_spread(np.zeros(3))
    m, e = replica_spread([[1, 2], [3, 4]])  # integers are averaged as floats
    np.testing.assert_array_equal(m, [2.0, 3.0])
    np.testing.assert_allclose(e, [np.sqrt(2), np.sqrt(2)])
