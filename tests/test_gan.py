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
    return WGANGP(**FAST, n_iterations=300, bounds=[(0.0, None), (None, None)], random_state=0).fit(toy)


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
    model = WGANGP(**params, n_iterations=300, preprocessing="standard", bounds=[(1.0, 9.0), (0.0, None)], random_state=0)
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
        **{**FAST, "preprocessing": "standard"}, n_iterations=5, bounds=[(2.0, 3.0), (None, None)], random_state=0
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
    model = WGANGP(**FAST, n_iterations=5, n_conditions=3, random_state=0).fit(toy, conditions=labels)
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
    np.testing.assert_array_equal(loaded.sample(200, random_state=3), fitted.sample(200, random_state=3))
    assert loaded.fidelity_ == fitted.fidelity_
    with pytest.raises(ModelFileError, match="not found"):
        WGANGP.load(tmp_path / "missing")


def test_sample_weights(toy):
    with pytest.raises(ValueError, match="negative values"):
        WGANGP(**FAST, n_iterations=1).fit(toy, sample_weight=np.r_[-1.0, np.ones(toy.shape[0] - 1)])
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
    assert {k: v for k, v in after.items() if k.endswith(failed)} == {k: v for k, v in before.items() if k.endswith(failed)}
    assert WGANGP.load(tmp_path / "gan").n_features_in_ == fitted.n_features_in_
