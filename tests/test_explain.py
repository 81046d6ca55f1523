"""SHAP explanations: additivity against the models' own outputs."""

from __future__ import annotations

import numpy as np
import pytest

from hepsel.explain.shap_values import explain_bdt, explain_mlp, explain_model, mean_abs_shap
from hepsel.models.bdt import BDTClassifier
from hepsel.models.mlp import MLPClassifier


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2] + rng.normal(scale=0.7, size=3000) > 0.5).astype(
        int
    )
    return X, y


def test_bdt_shap_sums_to_margin(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    clf = BDTClassifier(n_estimators=60, max_depth=4, n_jobs=1, random_state=0).fit(X, y)
    values, base = explain_bdt(clf, X[:500])
    np.testing.assert_allclose(values.sum(axis=1) + base, clf.decision_function(X[:500]), atol=1e-4)
    # the informative features dominate, the noise features do not
    ranking = np.argsort(-np.abs(values).mean(axis=0))
    assert set(ranking[:3]) == {0, 1, 2}


def test_fold_models_explain_their_own_fold(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    fold = np.arange(len(y)) % 2
    models = [
        BDTClassifier(n_estimators=30, n_jobs=1, random_state=k).fit(X[fold != k], y[fold != k])
        for k in (0, 1)
    ]
    expl = explain_model("bdt", models, X, fold, np.arange(len(y)), [f"x{i}" for i in range(5)])
    for k in (0, 1):
        m = fold == k
        np.testing.assert_allclose(
            expl.values[m].sum(1) + expl.base[m], models[k].decision_function(X[m]), atol=1e-4
        )
    assert next(iter(mean_abs_shap(expl))) in {"x0", "x1", "x2"}


def test_mlp_expected_gradients_approximately_additive(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    clf = MLPClassifier(
        hidden_layers=(16,), max_epochs=15, n_jobs=1, random_state=0, preprocessing="standard"
    ).fit(X, y)
    values, base = explain_mlp(clf, X[:200], X[1000:1300], random_state=0, n_samples=200)
    logit = clf.decision_function(X[:200])
    # expected gradients are additive in expectation: the sampling error is small against the spread
    resid = values.sum(axis=1) + base - logit
    assert np.mean(np.abs(resid)) < 0.15 * np.std(logit)


def test_lipschitz_mlp_expected_gradients_approximately_additive(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    from hepsel.models.lipschitz import LipschitzMLPClassifier

    X, y = data
    clf = LipschitzMLPClassifier(
        hidden_layers=(16, 16),
        monotone_constraints=[1, 0, -1, 0, 0],
        max_epochs=15,
        n_jobs=1,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    fold = np.zeros(200, dtype=int)
    expl = explain_model(
        "lipschitz_mlp",
        [clf],
        X[:200],
        fold,
        np.arange(200),
        [f"x{i}" for i in range(5)],
        backgrounds=[X[1000:1300]],
        random_state=0,
        n_samples=200,
    )
    logit = clf.decision_function(X[:200])
    resid = expl.values.sum(axis=1) + expl.base - logit
    assert np.mean(np.abs(resid)) < 0.15 * np.std(logit)
    assert expl.output == "logit"
    assert next(iter(mean_abs_shap(expl))) in {"x0", "x1", "x2"}


def test_autoencoder_expected_gradients_approximately_additive(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    """Attributions + base reproduce the reconstruction error in expectation, on background and signal rows."""
    from hepsel.explain.shap_values import explain_autoencoder
    from hepsel.models.autoencoder import AutoencoderSelector

    X, y = data
    clf = AutoencoderSelector(
        hidden_layers=(16,),
        bottleneck=2,
        max_epochs=10,
        n_jobs=1,
        random_state=0,
        preprocessing="standard",
        device="cpu",
    ).fit(X, y)
    bkg = X[1000:][y[1000:] == 0][:300]
    values, base = explain_autoencoder(clf, X[:200], bkg, random_state=0, n_samples=200)
    score = clf.decision_function(X[:200])
    # the base is the mean score of the reference sample
    np.testing.assert_allclose(base, clf.decision_function(bkg).mean(), rtol=1e-4)
    resid = values.sum(axis=1) + base - score
    assert abs(np.mean(resid)) < 0.05 * np.std(score)
    assert np.mean(np.abs(resid)) < 0.2 * np.std(score)
    # explained through explain_model with per-fold backgrounds, like the workflow does
    expl = explain_model(
        "autoencoder",
        [clf, clf],
        X[:40],
        np.r_[np.zeros(20, int), np.ones(20, int)],
        np.arange(40),
        [f"x{i}" for i in range(5)],
        backgrounds=[bkg, bkg],
        random_state=0,
        n_samples=20,
    )
    assert expl.output == "reconstruction error" and expl.values.shape == (40, 5)
