from __future__ import annotations

import pathlib

import numpy as np
import pytest

from hepsel.exceptions import ModelFileError
from hepsel.models.gan import WGANGP

from .conftest import interrupted_write

torch = pytest.importorskip("torch")

# Small networks and a higher learning rate so a toy trains in seconds. The
# gradient-penalty strength of the WGAN-GP paper's toy experiments (0.1) is
# used: on unit-scale toys the default of 10 makes the critic lag and the
# generator oscillate over the few hundred steps a test can afford, unless the
# critic is wider than the generator (test_default_gradient_penalty_...).
FAST = {
    "latent_dim": 4,
    "generator_layers": (32, 32),
    "critic_layers": (32, 32),
    "batch_size": 256,
    "learning_rate": 1e-3,
    "lambda_gp": 0.1,
    "selection_interval": 25,
    "device": "cpu",
    "n_jobs": 1,
}


@pytest.fixture(scope="module")
def toy() -> np.ndarray:
    rng = np.random.default_rng(0)
    pt = rng.lognormal(1.0, 0.5, 2000)  # positive, like a pT in GeV
    return np.column_stack([pt, rng.normal(5.0, 2.0, 2000) + 0.5 * pt])


@pytest.fixture(scope="module")
def fitted(toy) -> WGANGP:
    return WGANGP(**FAST, n_iterations=300, bounds=[(0.0, None), (None, None)], random_state=0).fit(
        toy
    )


def test_learns_toy(toy, fitted):
    generated = fitted.sample(4000, random_state=1)
    assert generated.shape == (4000, 2)
    shift = np.abs(generated.mean(axis=0) - toy.mean(axis=0)) / toy.std(axis=0)
    ratio = generated.std(axis=0) / toy.std(axis=0)
    assert (shift < 0.3).all()
    assert ((ratio > 0.6) & (ratio < 1.5)).all()
    assert fitted.fidelity_["best_iteration"] in fitted.history_["iteration"]
    assert fitted.fidelity_["best_w1"] == min(fitted.history_["val_w1"])


def test_tails_follow_the_training_data(toy, fitted):
    """About 1% of the generated events lie beyond each 1% tail of the real ones.

    The quantile map clamps generated values to the training range; a
    generator that overshot would pile events up at the extremes (and beyond
    the 1% quantiles), one that collapsed would leave the tails empty.
    """
    generated = fitted.sample(20000, random_state=2)
    lo, hi = np.quantile(toy, [0.01, 0.99], axis=0)
    for below in ((generated < lo).mean(axis=0), (generated > hi).mean(axis=0)):
        assert ((below > 0.001) & (below < 0.04)).all(), below
    at_extremes = (generated <= toy.min(axis=0)) | (generated >= toy.max(axis=0))
    assert at_extremes.mean() < 0.002
    np.testing.assert_array_equal(fitted.last_sample_clipped_, [0, 0])


def test_default_gradient_penalty_learns_a_bounded_toy():
    """With the default lambda_gp = 10 and no quantile map, the raw output respects the physical bounds.

    Standard scaling leaves clipping to the bounds as the only limit, so the
    clipped count measures how often the generator leaves them. The bounds
    sit 4 sigma out, where the real data has 6e-5 of its events. A critic
    wider than the generator keeps up with it at lambda_gp = 10.
    """
    rng = np.random.default_rng(1)
    x0 = rng.normal(5.0, 1.0, 2000)
    toy = np.column_stack([x0, rng.lognormal(1.0, 0.3, 2000) + 0.3 * x0])
    params = {**FAST, "critic_layers": (64, 64), "selection_interval": 5}
    del params["lambda_gp"]
    model = WGANGP(
        **params,
        n_iterations=300,
        preprocessing="standard",
        bounds=[(1.0, 9.0), (0.0, None)],
        random_state=0,
    )
    assert model.get_params()["lambda_gp"] == 10.0
    model.fit(toy)
    generated = model.sample(20000, random_state=1)
    assert (model.last_sample_clipped_ / 20000 < 0.005).all(), model.last_sample_clipped_
    shift = np.abs(generated.mean(axis=0) - toy.mean(axis=0)) / toy.std(axis=0)
    ratio = generated.std(axis=0) / toy.std(axis=0)
    assert (shift < 0.15).all(), shift
    assert ((ratio > 0.75) & (ratio < 1.25)).all(), ratio


def test_explicit_bounds_clip_and_count(toy):
    model = WGANGP(
        **{**FAST, "preprocessing": "standard"},
        n_iterations=5,
        bounds=[(2.0, 3.0), (None, None)],
        random_state=0,
    ).fit(toy)
    generated = model.sample(1000, random_state=0)
    assert generated[:, 0].min() >= 2.0
    assert generated[:, 0].max() <= 3.0
    assert model.last_sample_clipped_[0] > 0
    assert model.last_sample_clipped_[1] == 0


def test_sample_reproducible(fitted):
    a = fitted.sample(100, random_state=5)
    np.testing.assert_array_equal(a, fitted.sample(100, random_state=5))
    assert not np.array_equal(a, fitted.sample(100, random_state=6))


def test_fit_reproducible(toy):
    a = WGANGP(**FAST, n_iterations=10, random_state=4).fit(toy).sample(50, random_state=0)
    b = WGANGP(**FAST, n_iterations=10, random_state=4).fit(toy).sample(50, random_state=0)
    np.testing.assert_array_equal(a, b)


def test_conditioning(toy):
    labels = np.arange(toy.shape[0]) % 3
    model = WGANGP(**FAST, n_iterations=5, n_conditions=3, random_state=0).fit(
        toy, conditions=labels
    )
    assert model.sample(7, conditions=1).shape == (7, 2)
    assert model.sample(4, conditions=[0, 1, 2, 0]).shape == (4, 2)
    with pytest.raises(ValueError, match="pass conditions"):
        model.sample(4)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.sample(2, conditions=[0, 3])


def test_save_load_round_trip(tmp_path, fitted, monkeypatch):
    fitted.save(tmp_path / "gan")
    calls = []
    original = torch.load

    def checked_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    loaded = WGANGP.load(tmp_path / "gan")
    assert calls == [True]
    np.testing.assert_array_equal(
        loaded.sample(200, random_state=3), fitted.sample(200, random_state=3)
    )
    assert loaded.fidelity_ == fitted.fidelity_
    with pytest.raises(ModelFileError, match="not found"):
        WGANGP.load(tmp_path / "missing")


def test_sample_weights(toy):
    with pytest.raises(ValueError, match="negative values"):
        WGANGP(**FAST, n_iterations=1).fit(
            toy, sample_weight=np.r_[-1.0, np.ones(toy.shape[0] - 1)]
        )
    # Zero weight on the upper half of feature 0: generated events follow the lower half.
    w = (toy[:, 0] < np.median(toy[:, 0])).astype(float)
    model = WGANGP(**FAST, n_iterations=150, random_state=0).fit(toy, sample_weight=w)
    generated = model.sample(2000, random_state=0)
    assert np.median(generated[:, 0]) < np.median(toy[:, 0])


def test_errors(toy):
    with pytest.raises(ValueError, match="bounds has 1 entries"):
        WGANGP(**FAST, n_iterations=1, bounds=[(0.0, None)]).fit(toy)
    with pytest.raises(ValueError, match="unconditional"):
        WGANGP(**FAST, n_iterations=1).fit(toy, conditions=np.zeros(toy.shape[0], dtype=int))


@pytest.mark.parametrize("writer", ["torch.save", "Path.write_text"])
def test_save_is_atomic(tmp_path, fitted, monkeypatch, writer):
    """A save that fails half-way (disk full) leaves the previous files intact and no stray file."""
    fitted.save(tmp_path / "gan")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if writer == "torch.save":
        monkeypatch.setattr(torch, "save", interrupted_write)
    else:
        monkeypatch.setattr(pathlib.Path, "write_text", interrupted_write)
    with pytest.raises(OSError, match="No space left"):
        fitted.save(tmp_path / "gan")
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(after) == sorted(before)
    # the file that failed is untouched; the other one may have been rewritten whole
    failed = ".pt" if writer == "torch.save" else ".json"
    assert {k: v for k, v in after.items() if k.endswith(failed)} == {
        k: v for k, v in before.items() if k.endswith(failed)
    }
    assert WGANGP.load(tmp_path / "gan").n_features_in_ == fitted.n_features_in_


def test_inverse_feature_map_is_exact(toy, fitted):
    """Physical units -> Gaussianised space -> physical units gives back the training events."""
    z = fitted.scaler_.transform(toy)
    assert abs(z.mean()) < 0.1
    back = fitted.scaler_.inverse_transform(z)
    # exact inside the range of the training portion; held-out events beyond it come back on its edge
    low, high = fitted.scaler_.transformer_.quantiles_[[0, -1]]
    inside = ((toy >= low) & (toy <= high)).all(axis=1)
    assert inside.mean() > 0.99
    np.testing.assert_allclose(back[inside], toy[inside], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(back, np.clip(toy, low, high), rtol=1e-12, atol=1e-12)
    # the marginal calibration is monotone per feature: it keeps the generator's rank correlations
    generated_q, real_q = fitted.calibration_["generated"], fitted.calibration_["real"]
    assert (np.diff(generated_q, axis=-1) >= 0).all()
    assert (np.diff(real_q, axis=-1) >= 0).all()


def test_conditions_are_respected():
    """Each category's events come out with that category's distribution, not the mixture."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 3000)
    centre = np.array([-4.0, 0.0, 4.0])[labels]
    X = np.column_stack([rng.normal(centre, 1.0), rng.lognormal(0.0, 0.3, 3000) * (labels + 1)])
    model = WGANGP(**FAST, n_iterations=100, n_conditions=3, random_state=0).fit(
        X, conditions=labels
    )
    for label in range(3):
        generated = model.sample(2000, conditions=label, random_state=label)
        real = X[labels == label]
        assert abs(np.median(generated[:, 0]) - np.median(real[:, 0])) < 0.3, label
        assert abs(np.median(generated[:, 1]) / np.median(real[:, 1]) - 1.0) < 0.1, label
        # no event from a neighbouring category's range
        assert (np.abs(generated[:, 0] - np.median(real[:, 0])) < 3.5).mean() > 0.99, label


#: the WGAN-GP as it was before the training recipe was tuned: no schedule, no weight
#: averaging, no noise skip, no marginal calibration, selection on the marginals only
OLD_RECIPE = {
    "lr_schedule": "constant",
    "ema_decay": 0.0,
    "generator_skip": False,
    "calibrate_marginals": False,
    "selection_projections": 0,
    "learning_rate": 1e-4,
    "betas": (0.0, 0.9),
}
NEW_RECIPE = {"learning_rate": 1e-3, "betas": (0.5, 0.9), "validation_fraction": 0.0}


@pytest.fixture(scope="module")
def two_body_toy() -> tuple[np.ndarray, np.ndarray]:
    """Two-track kinematics in MeV with the hard relations the real features have."""
    rng = np.random.default_rng(7)
    n = 3000
    mode = rng.integers(0, 2, n)
    pt1 = rng.lognormal(7.8 + 0.3 * mode, 0.5)
    pt2 = rng.lognormal(7.6 + 0.3 * mode, 0.5)
    eta = rng.normal(3.3, 0.6, n)
    log_ip = rng.normal(2.0 + 0.5 * mode, 1.0, n) - 0.3 * (eta - 3.3)
    X = np.column_stack(
        [pt1 + pt2, np.minimum(pt1, pt2), eta, log_ip, log_ip + rng.exponential(1.0, n)]
    )
    return X, mode


def _c2st_after(params: dict, X: np.ndarray, mode: np.ndarray) -> float:
    from hepsel.stats.fidelity import classifier_two_sample_test

    train, test = np.arange(X.shape[0]) % 2 == 0, np.arange(X.shape[0]) % 2 == 1
    base = {
        **FAST,
        "lambda_gp": 10.0,
        "critic_layers": (64, 64),
        "latent_dim": 8,
        "n_iterations": 200,
    }
    model = WGANGP(**{**base, **params}, n_conditions=2, random_state=0).fit(
        X[train], conditions=mode[train]
    )
    generated = model.sample(int(test.sum()), conditions=mode[test], random_state=1)
    return classifier_two_sample_test(X[test], generated, random_state=0, n_jobs=1)["auc"]


def test_tuned_recipe_fools_the_classifier_better(two_body_toy):
    """Same networks and steps: the tuned recipe is much harder to tell from real events."""
    X, mode = two_body_toy
    old, new = _c2st_after(OLD_RECIPE, X, mode), _c2st_after(NEW_RECIPE, X, mode)
    assert new < old - 0.1, (old, new)
    assert new < 0.75, new


def test_files_without_the_new_parameters_load_as_before(tmp_path, toy):
    """A file written before the tuned recipe existed loads with the old behaviour."""
    import json

    old = WGANGP(**{**FAST, **OLD_RECIPE}, n_iterations=5, random_state=0).fit(toy)
    old.save(tmp_path / "gan")
    meta_path = tmp_path / "gan.json"
    meta = json.loads(meta_path.read_text())
    for key in (
        "lr_schedule",
        "ema_decay",
        "generator_skip",
        "calibrate_marginals",
        "selection_projections",
    ):
        del meta["params"][key]
    del meta["calibration"]
    meta_path.write_text(json.dumps(meta))
    loaded = WGANGP.load(tmp_path / "gan")
    assert loaded.get_params()["generator_skip"] is False
    np.testing.assert_array_equal(loaded.sample(50, random_state=0), old.sample(50, random_state=0))


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("lr_schedule", "step", "lr_schedule"),
        ("ema_decay", 1.0, "ema_decay"),
        ("selection_projections", -1, "selection_projections"),
    ],
)
def test_bad_recipe_parameters(toy, param, value, match):
    with pytest.raises(ValueError, match=match):
        WGANGP(**FAST, n_iterations=1, **{param: value}).fit(toy)


def test_category_absent_from_training_is_left_uncalibrated(toy):
    """A category without training events gets the identity map, not a clamp onto [-1, 1]."""
    labels = np.arange(toy.shape[0]) % 2  # category 2 of 3 never seen
    model = WGANGP(**FAST, n_iterations=5, n_conditions=3, random_state=0).fit(
        toy, conditions=labels
    )
    z = np.linspace(-4.0, 4.0, 9)[:, None].repeat(2, axis=1)
    np.testing.assert_allclose(model._apply_calibration(z, np.full(9, 2)), z, atol=1e-9)
    assert not np.allclose(model._apply_calibration(z, np.zeros(9, dtype=int)), z)
