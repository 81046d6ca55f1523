"""Which config settings each step's digest covers: the explain block reruns the 'why' step only."""

from __future__ import annotations

from pathlib import Path

import pytest

from hepsel.config.loading import load_config
from hepsel.config.provenance import step_digest, step_settings
from hepsel.exceptions import ConfigError

from .conftest import tiny_config, write_config


def test_explain_block_drives_only_the_why_step(tmp_path: Path) -> None:
    base = load_config(write_config(tmp_path / "a", tiny_config("data")), base_dir=tmp_path)
    edited = load_config(
        write_config(
            tmp_path / "b", tiny_config("data", explain={"min_lime_r2": 0.8, "lime_seeds": 5})
        ),
        base_dir=tmp_path,
    )
    assert edited.explain.min_lime_r2 == 0.8
    assert step_settings(edited, "why", model="bdt")["explain"]["lime_seeds"] == 5
    assert step_digest(base, "why", model="bdt") != step_digest(edited, "why", model="bdt")
    for step in ("evaluate", "plots", "report"):
        assert step_digest(base, step) == step_digest(edited, step), step
    assert step_digest(base, "explain", model="bdt") == step_digest(edited, "explain", model="bdt")
    with pytest.raises(ConfigError, match="step 'why' needs one of the models"):
        step_settings(base, "why", model="nope")


def test_bad_explain_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="explain"):
        load_config(
            write_config(tmp_path, tiny_config("data", explain={"lime_seed": 3})), base_dir=tmp_path
        )


def test_switching_explanations_off_reruns_only_the_report(tmp_path: Path) -> None:
    """shap / explain / report switches: the digests of train, evaluate and plots stay; at their default
    the switches leave every digest as it was before they existed."""
    base = tiny_config("data")
    on = load_config(write_config(tmp_path / "on", base))
    explicit = load_config(
        write_config(
            tmp_path / "explicit",
            {
                **base,
                "evaluation": {**base["evaluation"], "shap": {"enabled": True}},
                "explain": {"enabled": True},
                "report": {"enabled": True},
            },
        )
    )
    off = load_config(
        write_config(
            tmp_path / "off",
            {
                **base,
                "evaluation": {**base["evaluation"], "shap": {"enabled": False}},
                "explain": {"enabled": False},
                "report": {"enabled": False},
            },
        )
    )
    for step, kw in [
        ("gather", {}),
        ("train", {"model": "bdt"}),
        ("evaluate", {}),
        ("plots", {}),
        ("report", {}),
        ("explain", {"model": "bdt"}),
        ("why", {"model": "bdt"}),
    ]:
        assert step_digest(on, step, **kw) == step_digest(explicit, step, **kw), step
        same = step in ("gather", "train", "evaluate", "plots")
        assert (step_digest(on, step, **kw) == step_digest(off, step, **kw)) is same, step
    assert "enabled" not in step_settings(on, "explain", model="bdt")["shap"]
    assert "enabled" not in step_settings(on, "why", model="bdt")["explain"]


def test_fold_jobs_changes_no_digest(tmp_path: Path) -> None:
    """How the folds are grouped into train jobs changes no output: no step's digest reads it."""
    base = tiny_config("data")
    default = load_config(write_config(tmp_path / "default", base))
    per_model = load_config(
        write_config(tmp_path / "per_model", {**base, "training": {"fold_jobs": "per_model"}})
    )
    assert per_model.training.fold_jobs == "per_model"
    for step, kw in [
        ("train", {"model": "bdt"}),
        ("evaluate", {}),
        ("plots", {}),
        ("study", {"model": "bdt"}),
        ("report", {}),
    ]:
        assert step_digest(default, step, **kw) == step_digest(per_model, step, **kw), step
    assert "fold_jobs" not in step_settings(default, "train", model="bdt")["training"]


def test_bad_fold_jobs_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fold_jobs"):
        load_config(
            write_config(tmp_path, tiny_config("data", training={"fold_jobs": "per_sample"})),
            base_dir=tmp_path,
        )
