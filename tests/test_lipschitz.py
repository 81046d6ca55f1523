from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hepsel.config.loading import load_config
from hepsel.exceptions import ConfigError, ModelFileError
from hepsel.models import make_classifier
from hepsel.models.bdt import BDTClassifier
from hepsel.models.lipschitz import LipschitzMLPClassifier, build_lipschitz_network
from hepsel.models.mlp import MLPClassifier

from .conftest import tiny_config, write_config

torch = pytest.importorskip("torch")
pytest.importorskip("monotonicnetworks")

#: feature 0 must be non-decreasing, feature 1 non-increasing, feature 2 is free
MONO = [1, -1, 0]
SCALE = np.array([1.0, 50.0, 1.0])  # physical units differ per feature
FAST = {
    "hidden_layers": (16, 16),
    "batch_size": 256,
    "max_epochs": 25,
    "device": "cpu",
    "n_jobs": 1,
}
LAMBDA = 2.0


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A toy whose true log-odds has a dip in feature 0 and a bump in feature 1: not monotone."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 3))
    logit = 2.0 * Z[:, 0] - 6.0 * np.exp(-(((Z[:, 0] - 0.7) / 0.5) ** 2)) - 1.5 * Z[:, 1]
    logit += 6.0 * np.exp(-(((Z[:, 1] + 0.5) / 0.5) ** 2)) + np.sin(2.0 * Z[:, 2])
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return Z * SCALE, y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _toy(5000, 0)


@pytest.fixture(scope="module")
def lipschitz(data) -> LipschitzMLPClassifier:
    X, y = data
    return LipschitzMLPClassifier(
        **FAST,
        lipschitz_const=LAMBDA,
        monotone_constraints=MONO,
        validation_fraction=0.0,
        random_state=0,
    ).fit(X, y)


def monotonicity_violations(
    f, X: np.ndarray, feature: int, sign: int, *, n_steps: int = 40, tol: float = 1e-5
) -> int:
    """Steps along ``feature`` (from each row of ``X``, increasing) where ``sign * f`` decreases by more than ``tol``."""
    lo, hi = X[:, feature].min(), X[:, feature].max()
    span = hi - lo
    grid = np.linspace(lo - 0.2 * span, hi + 0.2 * span, n_steps)
    rows = np.repeat(X, n_steps, axis=0)
    rows[:, feature] = np.tile(grid, len(X))
    scores = f(rows).reshape(len(X), n_steps)
    steps = sign * np.diff(scores, axis=1)
    return int((steps < -tol * np.maximum(1.0, np.abs(scores[:, 1:]))).sum())


def _random_points(X: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return X[rng.choice(len(X), n)] + rng.normal(size=(n, X.shape[1])) * SCALE * 0.3


def test_lipschitz_mlp_is_monotone_where_unconstrained_mlp_is_not(data, lipschitz):
    X, y = data
    points = _random_points(X, 150, 1)
    for feature, sign in ((0, 1), (1, -1)):
        assert monotonicity_violations(lipschitz.decision_function, points, feature, sign) == 0
    free = MLPClassifier(**FAST, learning_rate=3e-3, random_state=0).fit(X, y)
    # the toy's dips are learnt by a free network: the check can fail
    assert monotonicity_violations(free.decision_function, points, 0, 1) > 0
    assert monotonicity_violations(free.decision_function, points, 1, -1) > 0
    X_test, y_test = _toy(3000, 7)
    assert roc_auc_score(y_test, lipschitz.decision_function(X_test)) > 0.8


def test_constrained_bdt_is_monotone_where_free_bdt_is_not(data):
    X, y = data
    points = _random_points(X, 150, 2)
    params = {"n_estimators": 60, "max_depth": 3, "n_jobs": 1, "random_state": 0}
    free = BDTClassifier(**params).fit(X, y)
    mono = BDTClassifier(**params, monotone_constraints=MONO).fit(X, y)
    for feature, sign in ((0, 1), (1, -1)):
        assert monotonicity_violations(mono.decision_function, points, feature, sign, tol=0.0) == 0
        assert monotonicity_violations(free.decision_function, points, feature, sign, tol=0.0) > 0
    with pytest.raises(ValueError, match="monotone_constraints must hold 3 values"):
        BDTClassifier(n_estimators=2, monotone_constraints=[1, 0]).fit(X, y)


def _pairs(X: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = _random_points(X, n, seed)
    # near pairs (where the bound is tightest) and far ones
    b = a + rng.normal(size=a.shape) * SCALE * rng.choice([0.01, 0.3, 3.0], size=(n, 1))
    return a, b


def test_lipschitz_bound_in_standardised_space(data, lipschitz):
    X, _ = data
    a, b = _pairs(X, 2000, 3)
    # independent of the model's scaler: validation_fraction = 0 standardises with all of X
    za, zb = (a - X.mean(0)) / X.std(0), (b - X.mean(0)) / X.std(0)
    with torch.no_grad():
        fa, fb = (
            lipschitz.network_(torch.as_tensor(z, dtype=torch.float32)).squeeze(1).double().numpy()
            for z in (za, zb)
        )
    bound = LAMBDA * np.sum((1 + np.abs(MONO)) * np.abs(za - zb), axis=1)
    assert np.all(np.abs(fa - fb) <= bound * (1 + 1e-4) + 1e-5)
    # the bound binds: some pair comes within a factor of 10 of it
    assert np.max(np.abs(fa - fb) / bound) > 0.1


def test_lipschitz_bound_in_physical_units(data, lipschitz):
    X, _ = data
    a, b = _pairs(X, 2000, 4)
    expected = LAMBDA * (1 + np.abs(MONO)) / X.std(0)
    np.testing.assert_allclose(lipschitz.lipschitz_bounds(), expected, rtol=1e-10)
    diff = np.abs(lipschitz.decision_function(a) - lipschitz.decision_function(b))
    assert np.all(diff <= np.abs(a - b) @ expected * (1 + 1e-4) + 1e-5)


def test_save_load_round_trip_uses_weights_only(tmp_path, data, lipschitz, monkeypatch):
    X, _ = data
    prefix = lipschitz.save(tmp_path / "model")
    assert prefix.with_suffix(".pt").is_file() and prefix.with_suffix(".json").is_file()
    calls = []
    original = torch.load

    def checked_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    loaded = LipschitzMLPClassifier.load(tmp_path / "model")
    assert calls == [True]
    assert list(loaded.monotone_constraints) == MONO
    np.testing.assert_array_equal(loaded.decision_function(X), lipschitz.decision_function(X))
    with pytest.raises(ModelFileError, match="does not describe a saved MLPClassifier"):
        MLPClassifier.load(tmp_path / "model")
    (tmp_path / "dir").mkdir()
    lipschitz.save(tmp_path / "dir")
    assert (tmp_path / "dir" / "lipschitz_mlp.pt").is_file()


def test_registered_kind_and_bad_parameters(data):
    X, y = data
    clf = make_classifier("lipschitz_mlp", {"hidden_layers": [8]}, random_state=1)
    assert isinstance(clf, LipschitzMLPClassifier)
    with pytest.raises(ValueError, match="even widths"):
        build_lipschitz_network(3, (5,))
    with pytest.raises(ValueError, match="lipschitz_const must be"):
        build_lipschitz_network(3, (4,), lipschitz_const=0.0)
    with pytest.raises(ValueError, match="monotone_constraints has 2 values but X has 3"):
        LipschitzMLPClassifier(**FAST, monotone_constraints=[1, 0]).fit(X, y)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (
            {"type": "lipschitz_mlp", "monotone": {"B_PTX": 1}},
            r"models\.m\.monotone: 'B_PTX' is not a feature",
        ),
        (
            {"type": "mlp", "monotone": {"B_PT": 1}},
            r"models\.m\.monotone: a mlp model cannot be constrained",
        ),
        ({"type": "fisher", "monotone": {"B_PT": 1}}, r"models\.m\.monotone: a fisher model"),
        ({"type": "bbdt", "monotone": {"B_PT": 1}}, r"models\.m\.monotone: a bbdt model"),
        (
            {"type": "gan_augmented", "monotone": {"B_PT": 1}},
            r"models\.m\.monotone: a gan_augmented model",
        ),
        ({"type": "bdt", "monotone": {"B_PT": 2}}, r"models\.m\.monotone\.B_PT"),
        (
            {"type": "bdt", "params": {"monotone_constraints": [1]}},
            r"models\.m\.params\.monotone_constraints: set it with models\.m\.monotone",
        ),
        (
            {"type": "mlp", "decorrelate": {"spectator": "B_MX", "strength": 1}},
            r"models\.m\.decorrelate\.spectator: 'B_MX' must be listed in spectators",
        ),
        (
            {"type": "bdt", "decorrelate": {"spectator": "B_M", "strength": 1}},
            r"models\.m\.decorrelate: a bdt model cannot be decorrelated",
        ),
        (
            {"type": "mlp", "decorrelate": {"spectator": "B_M", "strength": -1}},
            r"models\.m\.decorrelate\.strength",
        ),
    ],
    ids=[
        "unknown-feature",
        "mlp",
        "fisher",
        "bbdt",
        "gan",
        "bad-sign",
        "raw-param",
        "unknown-spectator",
        "bdt-disco",
        "negative-strength",
    ],
)
def test_config_errors(tmp_path, model, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write_config(tmp_path, tiny_config("data", models={"m": model})))


def test_config_monotone_in_feature_order(tmp_path):
    cfg = load_config(
        write_config(
            tmp_path,
            tiny_config(
                "data", models={"m": {"type": "bdt", "monotone": {"vtx_chi2": -1, "B_PT": 1}}}
            ),
        )
    )
    assert cfg.monotone_constraints("m") == [1, 0, 0, -1, 0]


def test_onnx_export_matches_predictions(data, lipschitz):
    ort = pytest.importorskip("onnxruntime")
    from hepsel.deploy.export import onnx_model

    X, _ = data
    points = np.vstack([X[:500], _random_points(X, 500, 9)])
    for dtype in ("float64", "float32"):
        model = onnx_model(lipschitz, dtype=dtype)
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        p = session.run(None, {"features": points.astype(dtype)})[0]
        assert p.shape == (len(points),)
        np.testing.assert_allclose(
            p, lipschitz.predict_proba(points.astype(dtype))[:, 1], rtol=0, atol=1e-5
        )
