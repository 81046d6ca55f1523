"""Autoencoder selection: background-only training, reconstruction-error score, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from hepsel.exceptions import ModelFileError
from hepsel.models import CLASSIFIER_KINDS, load_classifier, make_classifier
from hepsel.models.autoencoder import AutoencoderSelector

# background on a 2D plane in 5D (plus a little noise); signal off the plane
_A = np.array([[1.0, 0.5], [0.3, 1.0], [1.0, -1.0], [-0.5, 0.8], [0.7, 0.2]])


def _toy(n_bkg: int, n_sig: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xb = rng.normal(size=(n_bkg, 2)) @ _A.T + 0.05 * rng.normal(size=(n_bkg, 5))
    xs = 1.2 * rng.normal(size=(n_sig, 5))
    return np.vstack([xb, xs]), np.r_[np.zeros(n_bkg, dtype=int), np.ones(n_sig, dtype=int)]


def _ae(**kw: object) -> AutoencoderSelector:
    p: dict[str, object] = {
        "hidden_layers": (16,),
        "bottleneck": 2,
        "max_epochs": 25,
        "learning_rate": 3e-3,
        "preprocessing": "standard",
        "random_state": 1,
        "n_jobs": 1,
        "device": "cpu",
    }
    p.update(kw)
    return AutoencoderSelector(**p)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fitted() -> AutoencoderSelector:
    X, y = _toy(2000, 500, 0)
    return _ae().fit(X, y)


def test_registered() -> None:
    assert "autoencoder" in CLASSIFIER_KINDS
    clf = make_classifier("autoencoder", {"bottleneck": 3}, random_state=4)
    assert isinstance(clf, AutoencoderSelector)
    assert clf.random_state == 4


def test_separates_signal_off_the_background_manifold(fitted: AutoencoderSelector) -> None:
    X, y = _toy(2000, 1000, 9)  # independent test sample
    s = fitted.decision_function(X)
    assert roc_auc_score(y, s) > 0.9
    # predict_proba is a monotone map of the score: the same ranking
    assert roc_auc_score(y, fitted.predict_proba(X)[:, 1]) == pytest.approx(
        roc_auc_score(y, s), abs=1e-12
    )
    p = fitted.predict_proba(X)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_score_is_the_reconstruction_error(fitted: AutoencoderSelector) -> None:
    """Recomputed from the network and scaler with torch directly."""
    X, _ = _toy(300, 100, 3)
    z = torch.as_tensor(fitted.scaler_.transform(X), dtype=torch.float32)
    with torch.no_grad():
        want = ((fitted.network_(z) - z) ** 2).double().mean(dim=1).numpy()
    np.testing.assert_allclose(fitted.decision_function(X), want, rtol=1e-6)


@pytest.mark.parametrize("validation", [False, True], ids=["random-split", "given-split"])
def test_signal_rows_do_not_change_the_fit(validation: bool) -> None:
    Xb, _ = _toy(1500, 0, 1)
    Xs, _ = _toy(0, 700, 2)
    val_b = np.random.default_rng(5).random(len(Xb)) < 0.2
    # signal rows interleaved among the background rows (kept in order), with weights and validation flags of their own
    n = len(Xb) + len(Xs)
    is_sig = np.zeros(n, dtype=bool)
    is_sig[np.random.default_rng(6).choice(n, size=len(Xs), replace=False)] = True
    Xm = np.empty((n, Xb.shape[1]))
    Xm[~is_sig], Xm[is_sig] = Xb, Xs
    ym = is_sig.astype(int)
    w = np.ones(n)
    w[ym == 1] = 3.0
    val = np.zeros(n, dtype=bool)
    val[ym == 0] = val_b
    val[ym == 1] = True
    kw_only = {"validation": val_b} if validation else {}
    kw_mix = {"validation": val} if validation else {}
    a = _ae(max_epochs=8).fit(Xb, np.zeros(len(Xb), dtype=int), **kw_only)
    b = _ae(max_epochs=8).fit(Xm, ym, sample_weight=w, **kw_mix)
    probe, _ = _toy(200, 200, 11)
    np.testing.assert_array_equal(a.decision_function(probe), b.decision_function(probe))
    assert a.n_background_ == b.n_background_ and a.n_validation_ == b.n_validation_
    if validation:
        assert a.n_validation_ == int(val_b.sum())


def test_feature_error_scaling() -> None:
    X, y = _toy(1500, 300, 4)
    clf = _ae(error_scaling="feature", validation_fraction=0.0, max_epochs=5).fit(X, y)
    bkg = X[y == 0]
    z = torch.as_tensor(clf.scaler_.transform(bkg), dtype=torch.float32)
    with torch.no_grad():
        sq = ((clf.network_(z) - z) ** 2).double().numpy()
    # every feature contributes one on average over the background it trained on
    np.testing.assert_allclose(clf.error_scale_, sq.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(clf.feature_errors(bkg).mean(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        clf.decision_function(bkg), (sq / sq.mean(axis=0)).mean(axis=1), rtol=1e-5
    )


def test_save_load_round_trip(fitted: AutoencoderSelector, tmp_path: Path) -> None:
    prefix = fitted.save(tmp_path / "fold0")
    assert {p.name for p in tmp_path.iterdir()} == {"fold0.pt", "fold0.json"}
    # plain tensors only: loadable without pickle
    torch.load(prefix.with_suffix(".pt"), weights_only=True)
    back = load_classifier("autoencoder", prefix)
    X, _ = _toy(300, 300, 12)
    np.testing.assert_array_equal(back.decision_function(X), fitted.decision_function(X))
    np.testing.assert_array_equal(back.predict_proba(X), fitted.predict_proba(X))
    assert back.get_params() == {**fitted.get_params(), "device": "cpu"}
    with pytest.raises(ModelFileError, match="not found"):
        AutoencoderSelector.load(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("params", "y_kind", "match"),
    [
        (
            {"bottleneck": 5},
            "mixed",
            r"bottleneck \(5\) must be smaller than the number of features \(5\)",
        ),
        ({"error_scaling": "max"}, "mixed", "error_scaling must be one of"),
        ({"bottleneck": 0}, "mixed", "bottleneck must be a positive integer"),
        ({}, "signal", r"no background rows \(y == 0\)"),
    ],
    ids=["wide-bottleneck", "bad-scaling", "zero-bottleneck", "no-background"],
)
def test_bad_input(params: dict[str, object], y_kind: str, match: str) -> None:
    X, y = _toy(100, 50, 0)
    if y_kind == "signal":
        y = np.ones_like(y)
    with pytest.raises(ValueError, match=match):
        _ae(**params).fit(X, y)


def test_negative_background_weights_are_refused() -> None:
    X, y = _toy(100, 50, 0)
    w = np.ones(len(y))
    w[3] = -1.0
    with pytest.raises(ValueError, match="must not be negative"):
        _ae().fit(X, y, sample_weight=w)


@pytest.mark.parametrize(
    ("preprocessing", "activation", "error_scaling"),
    [
        ("standard", "silu", "none"),
        ("quantile", "relu", "feature"),
        ("quantile", "tanh", "none"),
        ("standard", "elu", "feature"),
    ],
)
def test_onnx_export_matches(preprocessing: str, activation: str, error_scaling: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    from hepsel.deploy.export import onnx_model

    X, y = _toy(1500, 300, 4)
    clf = _ae(
        preprocessing=preprocessing,
        activation=activation,
        error_scaling=error_scaling,
        max_epochs=3,
    ).fit(X, y)
    probe, _ = _toy(2000, 2000, 13)
    for dtype in ("float64", "float32"):
        model = onnx_model(clf, dtype=dtype)
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        Xd = probe.astype(dtype)
        (got,) = session.run(["score"], {"features": Xd})
        want = clf.predict_proba(Xd.astype(np.float64))[:, 1]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_negative_background_weights_are_resampled_for_the_autoencoder(tmp_path: Path) -> None:
    """Under negative_weights: keep the autoencoder gets positive weights (cell resampling), and trains."""
    from hepsel.config.loading import load_config
    from hepsel.train.kfold import TAKES_NEGATIVE_WEIGHTS, fit_model

    from .conftest import tiny_config, write_config

    assert "autoencoder" not in TAKES_NEGATIVE_WEIGHTS
    raw = tiny_config(
        "data",
        models={
            "ae": {
                "type": "autoencoder",
                "params": {"bottleneck": 2, "max_epochs": 2, "n_jobs": 1, "device": "cpu"},
            }
        },
    )
    cfg = load_config(write_config(tmp_path, raw), base_dir=tmp_path)
    X, y = _toy(1500, 300, 0)
    w = np.where(np.random.default_rng(1).random(len(y)) < 0.1, -0.5, 1.0)
    clf, _, info = fit_model(cfg, cfg.models["ae"], X, y, w, seed=3)
    assert isinstance(clf, AutoencoderSelector)
    assert info["negative_weights"]["learner"] == "autoencoder"
    assert info["negative_weights"]["background"]["n_negative"] == int((w[y == 0] < 0).sum())
    assert np.isfinite(clf.decision_function(X)).all()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"bottleneck": 5},
            r"models\.ae\.params\.bottleneck: 5 must be smaller than the number of features \(5\)",
        ),
        ({"error_scaling": "maximum"}, r"models\.ae\.params: error_scaling must be one of"),
        (
            {"botleneck": 2},
            r"models\.ae\.params: unknown parameter 'botleneck' \(did you mean 'bottleneck'\?\)",
        ),
    ],
    ids=["wide-bottleneck", "bad-scaling", "misspelt"],
)
def test_config_errors_name_the_key(tmp_path: Path, params: dict[str, object], match: str) -> None:
    from hepsel.config.loading import load_config
    from hepsel.exceptions import ConfigError

    from .conftest import tiny_config, write_config

    raw = tiny_config("data", models={"ae": {"type": "autoencoder", "params": params}})
    with pytest.raises(ConfigError, match=match):
        load_config(write_config(tmp_path, raw), base_dir=tmp_path)
