"""k-fold cross-training: no leakage, reproducibility, GAN augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hepsel.config.loading import load_config
from hepsel.prep.dataset import Dataset, training_weights
from hepsel.train.kfold import train_fold, training_mask

from .conftest import tiny_config, write_config

MODELS = {
    "bdt": {"type": "bdt", "params": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1}},
    "mlp": {
        "type": "mlp",
        "params": {
            "hidden_layers": [16],
            "max_epochs": 20,
            "batch_size": 256,
            "learning_rate": 0.01,
            "n_jobs": 1,
            "device": "cpu",
            "preprocessing": "standard",
        },
    },
    "gan_bdt": {
        "type": "gan_augmented",
        "params": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1},
        "gan": {"n_iterations": 30, "selection_interval": 10, "n_jobs": 1, "device": "cpu"},
        "synthetic_ratio": 0.5,
        "condition_on": "mode",
    },
    "fisher": {"type": "fisher"},
    "bbdt": {
        "type": "bbdt",
        "params": {
            "features": ["B_PT", "B_MCORR", "log_fdchi2"],
            "bins": 5,
            "n_estimators": 20,
            "max_depth": 3,
            "n_jobs": 1,
        },
    },
}


@pytest.fixture
def setup(tmp_path: Path) -> tuple:  # type: ignore[type-arg]
    cfg = load_config(write_config(tmp_path, tiny_config("data", models=MODELS)), base_dir=tmp_path)
    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.4).astype(np.int8)
    cols: dict[str, np.ndarray] = {
        "runNumber": np.zeros(n, dtype=np.int64),
        "eventNumber": np.arange(n, dtype=np.int64),
        "label": y,
        "sample": y.astype(np.int16),  # minbias 0, signal 1
        "truth": np.where(y == 1, rng.random(n) < 0.9, True).astype(np.int8),
        "weight": rng.uniform(0.5, 1.5, n),
        "fold": (np.arange(n) % 3).astype(np.int8),
        "mode": np.where(y == 1, rng.integers(1, 4, n), 10).astype(np.float64),
    }
    for i, f in enumerate(cfg.feature_names):
        cols[f] = rng.normal(y * (0.5 + 0.2 * i), 1.0) + (
            100.0 if "PT" in f or "MCORR" in f else 0.0
        )
        cols[f] = np.abs(cols[f]) if f in ("B_PT", "B_MCORR", "vtx_chi2") else cols[f]
    samples = {
        "minbias": {"index": 0, "n_events": n, "sum_gen_weights": n, "normalisation": 1.0},
        "signal": {"index": 1, "n_events": n, "sum_gen_weights": n, "normalisation": 1.0},
    }
    return cfg, Dataset(cols, cfg.feature_names, samples)


def test_training_weights_policies() -> None:
    w = np.array([1.0, -0.5, 2.0, 1.0])
    y = np.array([1, 1, 0, 0])
    np.testing.assert_allclose(
        training_weights(w, y, negative="abs", balance=False), [1, 0.5, 2, 1]
    )
    np.testing.assert_allclose(training_weights(w, y, negative="drop", balance=False), [1, 0, 2, 1])
    b = training_weights(w, y, negative="keep", balance=True)
    assert b[y == 1].sum() == pytest.approx(b[y == 0].sum())
    assert b.sum() == pytest.approx(len(w))


@pytest.mark.parametrize("model", ["bdt", "mlp", "fisher", "gan_bdt", "bbdt"])
def test_fold_model_sees_only_other_folds(
    setup, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    cfg, ds = setup
    seen: dict[str, np.ndarray] = {}
    import hepsel.train.kfold as training

    real_fit = training.fit_model

    def spy(cfg_, mcfg, X, y, w, **kw):  # type: ignore[no-untyped-def]
        seen["X"] = X
        return real_fit(cfg_, mcfg, X, y, w, **kw)

    monkeypatch.setattr(training, "fit_model", spy)
    if model == "gan_bdt":
        from hepsel.models import gan as gan_module

        real_gan_fit = gan_module.WGANGP.fit

        def gan_spy(self, X, conditions=None, sample_weight=None):  # type: ignore[no-untyped-def]
            seen["gan_X"] = np.asarray(X)
            return real_gan_fit(self, X, conditions=conditions, sample_weight=sample_weight)

        monkeypatch.setattr(gan_module.WGANGP, "fit", gan_spy)
    info = train_fold(cfg, ds, model, 1, tmp_path / model / "fold1", progress=False)
    expected = ds.X[training_mask(ds, 1)]
    # models train on float32 features
    assert seen["X"].dtype == np.float32
    np.testing.assert_array_equal(seen["X"], expected.astype(np.float32))
    assert not np.any(ds.fold[training_mask(ds, 1)] == 1)
    assert info["n_train"] == len(expected)
    if model == "gan_bdt":
        sig = training_mask(ds, 1) & (ds.y == 1)
        np.testing.assert_array_equal(seen["gan_X"], ds.X[sig].astype(np.float32))
        assert info["n_synthetic"] == round(0.5 * sig.sum())
        assert (tmp_path / model / "fold1_gan.pt").is_file()


@pytest.mark.parametrize("model", ["bdt", "mlp", "gan_bdt", "bbdt"])
def test_same_seed_same_scores(setup, model: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hepsel.models import load_classifier
    from hepsel.workflow.cross_scoring import model_kind

    cfg, ds = setup
    preds = []
    for run in ("a", "b"):
        train_fold(cfg, ds, model, 0, tmp_path / run / "fold0", progress=False)
        clf = load_classifier(model_kind(cfg, model), tmp_path / run / "fold0")
        preds.append(clf.predict_proba(ds.X)[:, 1])
    np.testing.assert_array_equal(preds[0], preds[1])


def test_gan_is_given_the_feature_ranges_as_bounds(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The fold's GAN clips to the configured feature ranges, and on this sample never has to."""
    from hepsel.models.gan import WGANGP

    cfg, ds = setup
    train_fold(cfg, ds, "gan_bdt", 0, tmp_path / "fold0", progress=False)
    gan = WGANGP.load(tmp_path / "fold0_gan")
    want = [list(f.range) if f.range is not None else [-np.inf, np.inf] for f in cfg.features]
    assert any(f.range is not None for f in cfg.features) and any(
        f.range is None for f in cfg.features
    )
    np.testing.assert_array_equal(gan.bounds_, want)
    x = gan.sample(5000, conditions=np.zeros(5000, dtype=int), random_state=1)
    assert np.all(np.isfinite(x))
    # the real signal lies well inside the ranges and the quantile map keeps samples within it: nothing clipped
    sig = training_mask(ds, 0) & (ds.y == 1)
    assert np.all((ds.X[sig] > np.array(want)[:, 0]) & (ds.X[sig] < np.array(want)[:, 1]))
    np.testing.assert_array_equal(gan.last_sample_clipped_, np.zeros(len(want)))


def test_monotone_and_decorrelate_reach_the_estimator(
    tmp_path: Path, setup, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from hepsel.models.lipschitz import LipschitzMLPClassifier

    _, ds = setup
    models = {
        "lip": {
            "type": "lipschitz_mlp",
            "monotone": {"log_fdchi2": 1, "B_PT": -1},
            "decorrelate": {"spectator": "nPVs", "strength": 2.5},
            "params": {"hidden_layers": [8], "max_epochs": 2, "n_jobs": 1, "device": "cpu"},
        }
    }
    cfg = load_config(
        write_config(tmp_path / "c", tiny_config("data", models=models)), base_dir=tmp_path
    )
    ds.columns["nPVs"] = np.arange(len(ds.y), dtype=np.float64) % 7
    seen: dict = {}
    original = LipschitzMLPClassifier.fit

    def recording_fit(self, X, y, sample_weight=None, **kw):  # type: ignore[no-untyped-def]
        seen.update(kw, params=self.get_params())
        return original(self, X, y, sample_weight, **kw)

    monkeypatch.setattr(LipschitzMLPClassifier, "fit", recording_fit)
    info = train_fold(cfg, ds, "lip", 1, tmp_path / "m" / "fold1", progress=False)
    assert seen["params"]["monotone_constraints"] == [-1, 0, 1, 0, 0]
    assert seen["params"]["decorrelation_strength"] == 2.5
    idx = np.flatnonzero(training_mask(ds, 1))
    np.testing.assert_array_equal(seen["decorrelate_with"], ds.columns["nPVs"][idx])
    assert info["decorrelate"] == {"spectator": "nPVs", "strength": 2.5}
