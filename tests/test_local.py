"""Local explanations of one candidate: SHAP and LIME against closed forms and the models' own outputs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hepsel.exceptions import CandidateError
from hepsel.explain.local import (
    explain_candidate,
    find_candidate,
    lime_attribution,
    parse_candidate,
    shap_attribution,
    shap_method,
)
from hepsel.models.bbdt import BonsaiBDTClassifier
from hepsel.models.bdt import BDTClassifier
from hepsel.models.fisher import FisherClassifier


@pytest.fixture(scope="module")
def linear_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four features on very different scales (MeV, mm, ...), two folds."""
    rng = np.random.default_rng(3)
    n = 6000
    y = rng.integers(0, 2, n)
    scale = np.array([1000.0, 0.1, 5.0, 1.0])
    shift = np.array([1.0, -0.6, 0.3, 0.0])
    X = (rng.normal(size=(n, 4)) + y[:, None] * shift) * scale
    return X, y, np.arange(n) % 2


@pytest.fixture(scope="module")
def fisher_folds(linear_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[FisherClassifier]:
    X, y, fold = linear_data
    return [FisherClassifier().fit(X[fold != k], y[fold != k]) for k in (0, 1)]


def test_fisher_lime_and_shap_follow_coefficient_times_offset(
    linear_data: tuple[np.ndarray, np.ndarray, np.ndarray], fisher_folds: list[FisherClassifier]
) -> None:
    X, _, fold = linear_data
    refs = [X[fold != k] for k in (0, 1)]
    names = ["pt", "doca", "chi2", "eta"]
    checked = 0
    for row in range(300):
        if checked == 5:
            break
        k = int(fold[row])
        clf = fisher_folds[k]
        expected = clf.coef_ * (X[row] - refs[k].mean(axis=0))  # independent closed form
        # candidates whose attributions are well separated, so a ranking is defined
        mags = np.sort(np.abs(expected))
        if np.min(np.diff(mags)) < 0.05 * mags[-1] or mags[0] < 0.02 * mags[-1]:
            continue
        e = explain_candidate(
            fisher_folds, X[row], k, refs, names, lime_seeds=(1, 2), lime_samples=3000
        )
        np.testing.assert_allclose(e.shap, expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            e.shap.sum() + e.shap_base, clf.decision_function(X[row : row + 1])[0], atol=1e-9
        )
        assert np.array_equal(np.sign(e.shap), np.sign(expected))
        assert np.array_equal(np.sign(e.lime_contribution), np.sign(expected))
        order = np.argsort(-np.abs(expected))
        assert np.array_equal(np.argsort(-np.abs(e.shap)), order)
        assert np.array_equal(np.argsort(-np.abs(e.lime_contribution)), order)
        # a linear model is fitted exactly by a linear surrogate
        assert min(e.lime_r2) > 0.99
        assert e.sign_flips == []
        checked += 1
    assert checked == 5
    assert "linear" in shap_method(fisher_folds[0])


def test_bdt_waterfall_sums_to_margin(
    linear_data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from hepsel.report.explain_plots import why_figure

    X, y, fold = linear_data
    models = [
        BDTClassifier(n_estimators=40, max_depth=3, n_jobs=1, random_state=k).fit(
            X[fold != k], y[fold != k]
        )
        for k in (0, 1)
    ]
    refs = [X[fold != k][:500] for k in (0, 1)]
    for row in (0, 7, 13):
        k = int(fold[row])
        e = explain_candidate(
            models, X[row], k, refs, ["a", "b", "c", "d"], lime_seeds=(0,), lime_samples=500
        )
        margin = models[k].decision_function(X[row : row + 1])[0]
        assert e.output == pytest.approx(margin, abs=1e-6)
        assert e.shap.sum() + e.shap_base == pytest.approx(margin, abs=1e-4)
        # the other fold's model explains the same candidate, summing to its own margin
        other = 1 - k
        v, b = shap_attribution(models[other], X[row : row + 1], refs[other])
        assert v.sum() + b[0] == pytest.approx(
            models[other].decision_function(X[row : row + 1])[0], abs=1e-4
        )
        np.testing.assert_allclose(e.shap_folds[other], v[0])
        fig = why_figure(e, labels={"a": "$p_T$ [MeV]"}, title="t")
        bars = [p for p in fig.axes[0].patches]
        end = bars[-1].get_x() + bars[-1].get_width()  # the waterfall's last bar ends at base + sum
        assert end == pytest.approx(margin, abs=1e-4)
        # the label with the candidate's value, the unit after the number
        ticks = " ".join(t.get_text() for t in fig.axes[0].get_yticklabels())
        assert re.search(r"\$p_T\$ = \S+ MeV", ticks)
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_bonsai_bdt_unused_features_get_zero(
    linear_data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, y, _ = linear_data
    clf = BonsaiBDTClassifier(
        features=[0, 2], bins=8, n_estimators=20, max_depth=3, n_jobs=1, random_state=0
    ).fit(X, y)
    v, b = shap_attribution(clf, X[:20], X)
    assert np.all(v[:, [1, 3]] == 0)
    np.testing.assert_allclose(v.sum(1) + b, clf.decision_function(X[:20]), atol=1e-4)


class _Opaque:
    """A model with no native SHAP path: only decision_function."""

    def __init__(self, w: np.ndarray) -> None:
        self.w = w

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X) @ self.w


def test_model_agnostic_fallback_matches_linear_closed_form() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(300, 3))
    w = np.array([2.0, -1.0, 0.5])
    clf = _Opaque(w)
    assert "permutation" in shap_method(clf)
    x = np.array([[1.0, 2.0, -1.0]])
    v, b = shap_attribution(clf, x, ref)
    bg = ref[np.random.default_rng(0).choice(300, 100, replace=False)]
    np.testing.assert_allclose(v[0], w * (x[0] - bg.mean(0)), atol=1e-8)
    assert v.sum() + b[0] == pytest.approx(float(x[0] @ w), abs=1e-8)
    # with an interaction the values are estimates, but still sum to the output
    inter = _Opaque(w)
    inter.decision_function = lambda X: np.asarray(X)[:, 0] * np.asarray(X)[:, 1]  # type: ignore[method-assign]
    v, b = shap_attribution(inter, x, ref)
    assert v.sum() + b[0] == pytest.approx(2.0, abs=1e-8)
    assert v[0, 2] == pytest.approx(0.0, abs=1e-12)


def test_torch_models_take_the_gradient_path(
    linear_data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    from hepsel.models.mlp import MLPClassifier

    X, y, _ = linear_data
    clf = MLPClassifier(
        hidden_layers=(8,), max_epochs=2, n_jobs=1, random_state=0, preprocessing="standard"
    ).fit(X[:2000], y[:2000])
    assert "expected gradients" in shap_method(clf)
    v, b = shap_attribution(clf, X[:50], X[2000:2300], n_samples=100)
    resid = v.sum(1) + b - clf.decision_function(X[:50])
    assert np.mean(np.abs(resid)) < 0.2 * np.std(clf.decision_function(X[:50])) + 1e-3


def test_autoencoder_is_explained_on_its_reconstruction_error(
    linear_data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """One value per feature, summing (in expectation) to the score the autoencoder gives, not to a logit."""
    from hepsel.models.autoencoder import AutoencoderSelector

    X, y, _ = linear_data
    clf = AutoencoderSelector(
        hidden_layers=(8,),
        bottleneck=1,
        max_epochs=3,
        n_jobs=1,
        random_state=0,
        preprocessing="standard",
    ).fit(X[:2000], y[:2000])
    assert "reconstruction error" in shap_method(clf)
    v, b = shap_attribution(clf, X[:50], X[2000:2300][y[2000:2300] == 0], n_samples=100)
    assert v.shape == (50, X.shape[1])
    score = clf.decision_function(X[:50])
    assert np.mean(np.abs(v.sum(1) + b - score)) < 0.2 * np.std(score) + 1e-3


def test_lime_score_flags_a_nonlinear_surface() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(1000, 2))
    linear = lime_attribution(
        lambda z: z @ np.array([1.0, -2.0]), np.array([0.3, 0.1]), ref, num_samples=2000
    )
    wiggly = lime_attribution(
        lambda z: np.sin(6 * z[:, 0]) * np.cos(6 * z[:, 1]),
        np.array([0.3, 0.1]),
        ref,
        num_samples=2000,
    )
    assert linear["r2"] > 0.99
    assert wiggly["r2"] < 0.5


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("abc", "is not RUN:EVENT", id="not-numbers"),
        pytest.param("12", "is not RUN:EVENT", id="no-event"),
        pytest.param("1:2:3:4", "is not RUN:EVENT", id="too-many-parts"),
        pytest.param("1:x", "is not RUN:EVENT", id="event-not-integer"),
    ],
)
def test_parse_candidate_rejects_malformed(text: str, match: str) -> None:
    with pytest.raises(CandidateError, match=match):
        parse_candidate(text)


def test_find_candidate() -> None:
    run = np.array([1, 1, 1, 2, 2])
    evt = np.array([5, 6, 6, 6, 7])
    assert parse_candidate("1:5") == (1, 5, None)
    assert find_candidate(run, evt, (1, 5, None)) == 0
    assert find_candidate(run, evt, (1, 6, 1)) == 2
    with pytest.raises(
        CandidateError, match=r"run 1 event 6 has 2 candidates.*1:6:0 \(row 1\); 1:6:1 \(row 2\)"
    ):
        find_candidate(run, evt, (1, 6, None))
    with pytest.raises(CandidateError, match="no candidate index 2"):
        find_candidate(run, evt, (1, 6, 2))
    with pytest.raises(CandidateError, match="no candidate with run 3 and event 5"):
        find_candidate(run, evt, (3, 5, None))
