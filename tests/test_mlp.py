from __future__ import annotations

import pathlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from hepsel.exceptions import ModelFileError
from hepsel.models.mlp import MLPClassifier, build_network

from .conftest import interrupted_write

torch = pytest.importorskip("torch")

FAST = {"hidden_layers": (16,), "batch_size": 128, "max_epochs": 8, "device": "cpu", "n_jobs": 1}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3)) * [1.0, 1.0, 100.0]
    y = (X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=2000) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def fitted(data) -> MLPClassifier:
    X, y = data
    return MLPClassifier(**FAST, random_state=0).fit(X, y)


def test_learns_separable_problem(data, fitted):
    X, y = data
    assert roc_auc_score(y, fitted.decision_function(X)) > 0.9
    proba = fitted.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_allclose(proba[:, 1], 1.0 / (1.0 + np.exp(-fitted.decision_function(X))))
    assert set(fitted.history_) >= {"train_loss", "val_loss"}
    assert fitted.decision_function(X).dtype == np.float64


def test_same_seed_identical_different_seed_differs(data, fitted):
    X, y = data
    again = MLPClassifier(**FAST, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.decision_function(X), fitted.decision_function(X))
    other = MLPClassifier(**FAST, random_state=1).fit(X, y)
    assert not np.array_equal(other.decision_function(X), fitted.decision_function(X))


def test_scaler_fitted_on_training_portion_only(data):
    X, y = data
    params = {**FAST, "max_epochs": 1, "preprocessing": "standard"}
    model = MLPClassifier(**params, random_state=3).fit(X, y)
    # Reproduce the split fit() draws: the scaler must see exactly its training part.
    rng = np.random.RandomState(np.random.RandomState(3).randint(0, 2**31 - 1))
    split_seed = rng.randint(0, 2**31 - 1)
    train, _ = train_test_split(
        np.arange(len(y)), test_size=0.2, random_state=split_seed, stratify=y
    )
    mean = model.scaler_.transformer_.mean_
    np.testing.assert_allclose(mean, X[train].mean(axis=0))
    assert not np.allclose(mean, X.mean(axis=0))
    # Fitted on a subset, the statistics are those of the subset, not of the full sample.
    subset = MLPClassifier(**params, validation_fraction=0.0, random_state=3).fit(X[:500], y[:500])
    np.testing.assert_allclose(subset.scaler_.transformer_.mean_, X[:500].mean(axis=0))


def test_weights_change_the_model(data, fitted):
    X, y = data
    # Zero weight on the signal events with x0 > 0 hides that region from training.
    w = np.where((y == 1) & (X[:, 0] > 0.5), 0.0, 1.0)
    weighted = MLPClassifier(**FAST, random_state=0).fit(X, y, sample_weight=w)
    assert not np.allclose(weighted.history_["train_loss"], fitted.history_["train_loss"])
    assert not np.allclose(weighted.decision_function(X), fitted.decision_function(X))


def test_save_load_round_trip_uses_weights_only(tmp_path, data, fitted, monkeypatch):
    X, _ = data
    prefix = fitted.save(tmp_path / "model")
    assert prefix.with_suffix(".pt").is_file()
    assert prefix.with_suffix(".json").is_file()
    calls = []
    original = torch.load

    def checked_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    loaded = MLPClassifier.load(tmp_path / "model")
    assert calls == [True]
    np.testing.assert_array_equal(loaded.decision_function(X), fitted.decision_function(X))
    assert loaded.best_epoch_ == fitted.best_epoch_
    with pytest.raises(ModelFileError, match="not found"):
        MLPClassifier.load(tmp_path / "missing")


def test_early_stopping_on_plateau():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 2))
    y = rng.integers(0, 2, 1000)  # pure noise: the validation loss cannot keep improving
    model = MLPClassifier(
        hidden_layers=(8,),
        max_epochs=200,
        patience=2,
        learning_rate=1e-2,
        device="cpu",
        n_jobs=1,
        random_state=0,
    ).fit(X, y)
    n_epochs = len(model.history_["train_loss"])
    assert n_epochs < 200
    assert n_epochs == model.best_epoch_ + 1 + 2
    assert model.history_["val_loss"][model.best_epoch_] == min(model.history_["val_loss"])


def test_build_network_shape():
    net = build_network(5, (7, 3), "silu")
    assert net(torch.zeros(4, 5)).shape == (4, 1)
    with pytest.raises(ValueError, match="unknown activation"):
        build_network(5, (7,), "sigmoid")


def test_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="binary classifier"):
        MLPClassifier(**FAST).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="preprocessing"):
        MLPClassifier(preprocessing="robust").fit(X, y)
    with pytest.raises(ValueError, match="positive total weight"):
        MLPClassifier(**FAST).fit(X, y, sample_weight=np.where(y == 1, 0.0, 1.0))


@pytest.mark.parametrize("writer", ["torch.save", "Path.write_text"])
def test_save_is_atomic(tmp_path, data, fitted, monkeypatch, writer):
    """A save that fails half-way (disk full) leaves the previous files intact and no stray file."""
    fitted.save(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if writer == "torch.save":
        monkeypatch.setattr(torch, "save", interrupted_write)
    else:
        monkeypatch.setattr(pathlib.Path, "write_text", interrupted_write)
    with pytest.raises(OSError, match="No space left"):
        fitted.save(tmp_path / "model")
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(after) == sorted(before)
    # the file that failed is untouched; the other one may have been rewritten whole
    failed = ".pt" if writer == "torch.save" else ".json"
    assert {k: v for k, v in after.items() if k.endswith(failed)} == {
        k: v for k, v in before.items() if k.endswith(failed)
    }
    np.testing.assert_array_equal(
        MLPClassifier.load(tmp_path / "model").decision_function(data[0]),
        fitted.decision_function(data[0]),
    )
