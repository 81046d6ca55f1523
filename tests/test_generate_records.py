"""Generated files shared between analyses: settings recorded beside the files, other settings refused.

Two analyses whose samples name the same generated paths used to overwrite
each other's files in turn. Now the settings and the config that made a file
are recorded beside it (``.<name>.hepsel-generate.json``): equal settings
share the file, other settings from another config are refused naming both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hepsel.config.schema import GenerateConfig
from hepsel.exceptions import ConfigError
from hepsel.sim.generate import check_generated, generate_sample, needs_generation, record_path

from .conftest import REPO, tiny_config, write_config

SIGNAL = GenerateConfig(kind="signal", events=300, files=2, seed=5)


def _state(paths: list[Path]) -> list[tuple[bytes, int]]:
    """Contents and modification times: what must not change when files are shared or refused."""
    return [(p.read_bytes(), p.stat().st_mtime_ns) for p in paths]


@pytest.fixture
def made(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "data" / f"sig_{i:03d}.root" for i in range(2)]
    out, generated = generate_sample(SIGNAL, paths, source="/an/a/config.yaml", progress=False)
    assert generated and out == paths
    return paths


def test_record_beside_each_file(made: list[Path]) -> None:
    for i, p in enumerate(made):
        rec = json.loads(record_path(p).read_text())
        assert rec["config"] == "/an/a/config.yaml"
        assert rec["generate"] == SIGNAL.model_dump(mode="json")
        assert rec["file"] == i and rec["files"] == [m.name for m in made]
    assert record_path(made[0]).name == ".sig_000.root.hepsel-generate.json"


def test_equal_settings_share_the_files(made: list[Path]) -> None:
    before = _state(made)
    equal = GenerateConfig.model_validate(json.loads(json.dumps(SIGNAL.model_dump())))
    out, generated = generate_sample(equal, made, source="/an/b/config.yaml", progress=False)
    assert not generated and out == made
    assert _state(made) == before
    assert json.loads(record_path(made[0]).read_text())["config"] == "/an/a/config.yaml"
    assert not needs_generation(equal, made, source="/an/b/config.yaml")


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        ({"seed": 7}, "seed: 7 instead of 5"),
        ({"events": 301}, "events: 301 instead of 300"),
        ({"kind": "minbias"}, "kind: 'minbias' instead of 'signal'"),
    ],
)
def test_other_settings_from_another_config_are_refused(
    made: list[Path], change: dict, shown: str
) -> None:
    before = _state(made)
    records = [record_path(p).read_text() for p in made]
    other = SIGNAL.model_copy(update=change)
    pattern = (
        rf"sig_000\.root was generated for the analysis config '/an/a/config\.yaml', but '/an/b/config\.yaml' "
        rf"asks for other generate settings \({shown}\)"
    )
    with pytest.raises(ConfigError, match=pattern) as err:
        generate_sample(other, made, source="/an/b/config.yaml", progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=pattern):
        needs_generation(other, made, source="/an/b/config.yaml")
    assert _state(made) == before
    assert [record_path(p).read_text() for p in made] == records


def test_same_path_as_another_file_of_the_set_is_refused(made: list[Path]) -> None:
    """Equal settings but the file at another position holds other events."""
    with pytest.raises(ConfigError, match=r"sig_001\.root .* \(file: 0 instead of 1\)"):
        check_generated(SIGNAL, [made[1], made[0]], source="/an/b/config.yaml")


def test_the_recording_config_may_change_its_own_settings(made: list[Path]) -> None:
    before = _state(made)
    other = SIGNAL.model_copy(update={"seed": 8})
    assert needs_generation(other, made, source="/an/a/config.yaml")
    _, generated = generate_sample(other, made, source="/an/a/config.yaml", progress=False)
    assert generated and _state(made) != before
    assert json.loads(record_path(made[0]).read_text())["generate"]["seed"] == 8


def test_files_without_a_record_are_kept_by_run_and_a_missing_file_is_made(
    tmp_path: Path, made: list[Path]
) -> None:
    for p in made:
        record_path(p).unlink()
    assert not needs_generation(
        SIGNAL.model_copy(update={"seed": 9}), made, source="/an/b/config.yaml"
    )
    made[1].unlink()
    assert needs_generation(SIGNAL, made, source="/an/b/config.yaml")


# -- two analyses in temporary directories, through the command line and Snakemake -------------


def _analyses(work: Path, **minbias_b: object) -> None:
    """Analyses 'a' and 'b' naming the same generated files data/{signal,minbias}_000.root."""
    a = tiny_config("data", sig_events=300, mb_events=600)
    b = tiny_config("data", sig_events=300, mb_events=600)
    b["name"] = "b"
    b["samples"]["minbias"]["generate"].update(minbias_b)
    write_config(work / "analyses" / "a", a)
    write_config(work / "analyses" / "b", b)


def _hepsel(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hepsel.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=work,
    )


def test_cli_second_analysis_shares_or_is_refused(tmp_path: Path) -> None:
    _analyses(tmp_path, seed=7)
    proc = _hepsel(tmp_path, "generate", "-c", "analyses/a", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    data = sorted((tmp_path / "data").glob("*.root"))
    assert [p.name for p in data] == ["minbias_000.root", "signal_000.root"]
    before = _state(data)
    proc = _hepsel(tmp_path, "generate", "-c", "analyses/b", "--no-progress")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hepsel: error: "), proc.stderr
    assert str(tmp_path / "analyses" / "a" / "config.yaml") in lines[0]
    assert str(tmp_path / "analyses" / "b" / "config.yaml") in lines[0]
    assert "minbias_000.root" in lines[0] and "seed: 7 instead of 6" in lines[0]
    assert _state(data) == before  # nothing regenerated, not even the signal sample b agrees on
    # nor by a generation without a config
    proc = _hepsel(
        tmp_path,
        "generate",
        "--kind",
        "minbias",
        "--events",
        "600",
        "--seed",
        "99",
        "-o",
        "data/minbias_000.root",
        "--no-progress",
    )
    assert (
        proc.returncode == 1
        and "seed: 99 instead of 6" in proc.stderr
        and "without an analysis config" in proc.stderr
    )
    assert _state(data) == before
    # with equal settings, b shares the files
    _analyses(tmp_path)
    proc = _hepsel(tmp_path, "generate", "-c", "analyses/b", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("up to date") == 2
    assert _state(data) == before


def _snakemake(work: Path, analysis: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--cores",
        "1",
        *extra,
        "--config",
        f"analysis={analysis}",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=work)


@pytest.mark.slow
def test_snakemake_shares_equal_settings_and_refuses_others_before_deleting(tmp_path: Path) -> None:
    _analyses(tmp_path)
    data = [tmp_path / "data" / "signal_000.root", tmp_path / "data" / "minbias_000.root"]
    proc = _snakemake(tmp_path, "analyses/a", *map(str, data))
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = _state(data)
    # equal settings: Snakemake's params trigger sees the same spec; the recorded config is not a compared param
    proc = _snakemake(tmp_path, "analyses/b", "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "generate_" not in proc.stdout and "prepare" in proc.stdout
    # other settings: refused when the Snakefile is read, before Snakemake deletes the outputs to rerun
    _analyses(tmp_path, seed=7)
    for extra in (["-n"], []):
        proc = _snakemake(tmp_path, "analyses/b", *extra)
        assert proc.returncode != 0
        errors = [
            x for x in (proc.stdout + proc.stderr).splitlines() if x.startswith("hepsel: error: ")
        ]
        assert (
            len(errors) == 1
            and "seed: 7 instead of 6" in errors[0]
            and "analyses/a/config.yaml" in errors[0]
        )
        assert "Traceback" not in proc.stderr
    assert _state(data) == before
    # and the first analysis still finds its files up to date
    proc = _snakemake(tmp_path, "analyses/a", "-n", *map(str, data))
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


def test_one_file_alone_is_the_file_a_run_of_all_writes(tmp_path: Path) -> None:
    """Generation fans out one job per file: file i alone holds exactly what a run writing all holds."""
    import numpy as np
    import uproot

    gen = GenerateConfig(kind="minbias", events=25_000, files=3, seed=9)
    every = [tmp_path / "all" / f"mb_{i:03d}.root" for i in range(3)]
    generate_sample(gen, every, source=None, progress=False)
    alone = [tmp_path / "one" / f"mb_{i:03d}.root" for i in range(3)]
    out, made = generate_sample(gen, alone, source=None, progress=False, only=[1])
    assert made and out == [alone[1]]
    assert not alone[0].exists() and not alone[2].exists()
    assert (
        not record_path(alone[0]).exists()
        and json.loads(record_path(alone[1]).read_text())["file"] == 1
    )
    for tree in ("DecayTree", "EventTuple"):
        with uproot.open(every[1]) as a, uproot.open(alone[1]) as b:
            x, y = a[tree].arrays(library="np"), b[tree].arrays(library="np")
        assert list(x) == list(y) and len(x["eventNumber"]) > 0
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    # the others are then made as a full run would, and the set is complete and shared
    generate_sample(gen, alone, source=None, progress=False, only=[0, 2])
    assert check_generated(gen, alone, source=None)
    with pytest.raises(ValueError, match="file index 3 out of range for 3 file"):
        generate_sample(gen, alone, source=None, progress=False, only=[3])


@pytest.mark.slow
def test_snakemake_generates_one_job_per_file(tmp_path: Path) -> None:
    cfg = tiny_config(
        str(tmp_path / "data"),
        sig_events=300,
        mb_events=25_000,
        files=3,
        output=str(tmp_path / "out"),
    )
    write_config(tmp_path / "analyses" / "a", cfg)
    proc = _snakemake(
        tmp_path,
        "analyses/a",
        *(str(tmp_path / "data" / f"minbias_{i:03d}.root") for i in range(3)),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    benchmarks = sorted(
        p.name for p in (tmp_path / "out" / "benchmarks" / "generate_minbias").iterdir()
    )
    assert benchmarks == [f"minbias_{i:03d}.root.tsv" for i in range(3)]
    logs = [
        (tmp_path / "out" / "logs" / "generate_minbias" / f"minbias_{i:03d}.root.log").read_text()
        for i in range(3)
    ]
    assert [f"(file {i} of 3)" in text for i, text in enumerate(logs)] == [True] * 3
    # a bad index on the command line is one line
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hepsel.cli",
            "generate",
            "--spec",
            json.dumps({"kind": "signal", "events": 10, "files": 1}),
            "--paths",
            str(tmp_path / "x.root"),
            "--file-index",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [
        "hepsel: error: --file-index 1 is out of range for the 1 file(s) of --paths"
    ]
