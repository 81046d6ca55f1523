from __future__ import annotations

import pathlib

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from hepsel.exceptions import ModelFileError
from hepsel.models.fisher import FisherClassifier

from .conftest import interrupted_write


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    cov = [[1.0, 0.6, 0.0], [0.6, 2.0, 0.0], [0.0, 0.0, 1e4]]  # mixed scales, as MeV vs mm
    background = rng.multivariate_normal([0.0, 0.0, 0.0], cov, 1500)
    signal = rng.multivariate_normal([1.0, 0.2, 40.0], cov, 1500)
    return np.vstack([background, signal]), np.r_[np.zeros(1500), np.ones(1500)]


@pytest.mark.parametrize("solver", ["lsqr", "eigen"])
def test_matches_sklearn_lda(data, solver):
    X, y = data
    ours = FisherClassifier().fit(X, y)
    ref = LinearDiscriminantAnalysis(solver=solver).fit(X, y)
    cosine = ours.coef_ @ ref.coef_[0] / np.linalg.norm(ours.coef_) / np.linalg.norm(ref.coef_[0])
    assert cosine > 0.999
    # Equal class sizes: the LDA log prior ratio vanishes and the scores coincide.
    np.testing.assert_allclose(
        ours.decision_function(X), ref.decision_function(X), rtol=1e-6, atol=1e-6
    )


def test_weights_change_the_direction(data):
    X, y = data
    w = np.where(X[:, 0] > 0.5, 5.0, 1.0)
    unweighted = FisherClassifier().fit(X, y).coef_
    weighted = FisherClassifier().fit(X, y, sample_weight=w).coef_
    assert not np.allclose(unweighted, weighted)
    duplicated = FisherClassifier().fit(np.vstack([X, X]), np.r_[y, y]).coef_
    doubled = FisherClassifier().fit(X, y, sample_weight=np.full(y.size, 2.0)).coef_
    np.testing.assert_allclose(duplicated, doubled)


def test_proba_and_midpoint(data):
    X, y = data
    clf = FisherClassifier().fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.decision_function(clf.means_).sum(), 0.0, atol=1e-9)


def test_save_load(tmp_path, data):
    X, y = data
    clf = FisherClassifier().fit(X, y)
    clf.save(tmp_path / "fisher")
    loaded = FisherClassifier.load(tmp_path / "fisher")
    np.testing.assert_array_equal(loaded.decision_function(X), clf.decision_function(X))
    with pytest.raises(ModelFileError, match="not found"):
        FisherClassifier.load(tmp_path / "missing")


def test_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="binary classifier"):
        FisherClassifier().fit(X, np.zeros(X.shape[0]))
    with pytest.raises(ValueError, match="non-positive total weight"):
        FisherClassifier().fit(X, y, sample_weight=np.where(y == 1, 0.0, 1.0))


def test_save_is_atomic(tmp_path, data, monkeypatch):
    """A save that fails half-way (disk full) leaves the previous file intact and no stray file."""
    X, y = data
    clf = FisherClassifier().fit(X, y)
    clf.save(tmp_path / "fisher")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(pathlib.Path, "write_text", interrupted_write)
    with pytest.raises(OSError, match="No space left"):
        FisherClassifier().fit(X[::-1], y).save(tmp_path / "fisher")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    np.testing.assert_array_equal(FisherClassifier.load(tmp_path / "fisher").coef_, clf.coef_)
