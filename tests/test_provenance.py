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
