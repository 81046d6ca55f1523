from __future__ import annotations

from pathlib import Path

import pytest

from hepsel.config.loading import load_config
from hepsel.exceptions import ConfigError

from .conftest import tiny_config, write_config


def test_default_analysis_loads(repo: Path) -> None:
    cfg = load_config(repo / "analyses" / "topo2body", base_dir=repo)
    assert cfg.name == "topo2body"
    assert cfg.output_dir == repo / "results" / "topo2body"
    assert cfg.signal_sample == "signal"
    assert cfg.minbias_sample == "minbias"
    assert "bdt" in cfg.models
    assert cfg.folds.k >= 2
    assert len(cfg.sample_files("minbias")) == cfg.samples["minbias"].generate.files


def test_defaults_live_in_schema(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, tiny_config("data")))
    assert cfg.reading.non_finite == "fail"
    assert cfg.training.negative_weights == "keep"
    assert cfg.candidates.mode == "all"
    assert cfg.evaluation.bkg_effs == [0.01, 0.1, 0.3]


def test_unknown_key_names_file_and_key_with_suggestion(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["folds"] = {"kk": 3}
    p = write_config(tmp_path, raw)
    with pytest.raises(ConfigError, match=r"folds\.kk: unknown key \(did you mean 'k'\?\)") as err:
        load_config(p)
    assert str(p) in str(err.value)


def test_wrong_type_and_missing_key(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["folds"] = {"k": "five"}
    del raw["features"]
    with pytest.raises(ConfigError, match=r"folds\.k") as err:
        load_config(write_config(tmp_path, raw))
    assert "features" in str(err.value)


def test_needs_signal_and_background(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["samples"]["minbias"]["label"] = 1
    with pytest.raises(ConfigError, match=r"one signal .* and one background"):
        load_config(write_config(tmp_path, raw))


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_glob_without_match_is_an_error(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["samples"]["minbias"] = {
        "files": ["nowhere/*.root"],
        "label": 0,
        "events_tree": "EventTuple",
    }
    cfg = load_config(write_config(tmp_path, raw), base_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"samples\.minbias\.files: pattern 'nowhere/\*\.root' matches no file"
    ):
        cfg.sample_files("minbias")


def test_misspelt_model_parameter(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["models"]["bdt"]["params"]["max_dept"] = 3
    with pytest.raises(
        ConfigError,
        match=r"models\.bdt\.params: unknown parameter 'max_dept' \(did you mean 'max_depth'",
    ):
        load_config(write_config(tmp_path, raw))


def test_evaluation_columns_must_be_kept(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["evaluation"]["mass"] = "B_MM"
    with pytest.raises(
        ConfigError, match=r"evaluation\.mass: 'B_MM' is neither a feature nor listed in spectators"
    ):
        load_config(write_config(tmp_path, raw))


@pytest.mark.parametrize(
    "name", ["../escape", "a/b", "sig nal", "-x", ".hidden", pytest.param("a" * 101, id="long")]
)
def test_sample_names_must_be_safe_file_names(tmp_path: Path, name: str) -> None:
    raw = tiny_config("data")
    raw["samples"][name] = raw["samples"].pop("minbias")
    with pytest.raises(
        ConfigError, match=r"samples\..*: sample names become file and directory names"
    ):
        load_config(write_config(tmp_path, raw))


@pytest.mark.parametrize(
    "name",
    [
        "../../escape",
        "a/b",
        "a\\b",
        ".hidden",
        "x\ny",
        " padded",
        pytest.param("a" * 101, id="long"),
    ],
)
def test_feature_names_must_be_usable_in_file_names(tmp_path: Path, name: str) -> None:
    raw = tiny_config("data")
    raw["features"][0]["name"] = name
    with pytest.raises(
        ConfigError, match=r"features \(.*\): feature names become parts of file names"
    ):
        load_config(write_config(tmp_path, raw))


def test_dotted_feature_names_are_allowed(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["features"][0]["name"] = "mu.pt"
    assert load_config(write_config(tmp_path, raw)).feature_names[0] == "mu.pt"


@pytest.mark.parametrize("name", ["bdt/x", pytest.param("a" * 101, id="long")])
def test_model_names_must_be_short_identifiers(tmp_path: Path, name: str) -> None:
    raw = tiny_config("data")
    raw["models"] = {name: {"type": "fisher"}}
    with pytest.raises(ConfigError, match=r"model names must be identifiers"):
        load_config(write_config(tmp_path, raw))


@pytest.mark.parametrize("mode", ["best", "all"])
def test_best_candidate_by_score_is_refused(tmp_path: Path, mode: str) -> None:
    raw = tiny_config("data")
    raw["candidates"] = {"mode": mode, "by": "score"}
    with pytest.raises(
        ConfigError, match=r"candidates\.by: .*'score' is not a selection criterion"
    ):
        load_config(write_config(tmp_path, raw))


def test_single_bootstrap_replica_is_refused(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["evaluation"]["bootstrap"] = 1
    with pytest.raises(
        ConfigError, match=r"evaluation\.bootstrap: .*use 0 \(no bootstrap\) or at least 2"
    ):
        load_config(write_config(tmp_path, raw))
