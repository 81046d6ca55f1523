"""The command line: help texts, and what it writes when not on a terminal."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hepsel.cli import build_parser

from .conftest import REPO, tiny_config, write_config


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_every_subcommand_and_option_has_help(name: str) -> None:
    p = _subparsers()[name]
    assert p.description, f"hepsel {name} has no description"
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"hepsel {name} {action.option_strings or action.dest} has no help text"
    text = " ".join(p.format_help().split())
    for action in p._actions:
        if (
            action.option_strings
            and action.default not in (None, False, argparse.SUPPRESS)
            and not action.required
        ):
            assert f"default: {action.default}" in text, (
                f"hepsel {name} {action.option_strings[0]}: default not shown"
            )


def test_version_is_the_package_version() -> None:
    import hepsel

    proc = subprocess.run(
        [sys.executable, "-m", "hepsel.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"hepsel {hepsel.__version__}"
    from importlib.metadata import version

    assert hepsel.__version__ == version("hepsel")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # captured output is a pipe, not a terminal, as in a Snakemake log
    return subprocess.run(
        [sys.executable, "-m", "hepsel.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_steps_log_one_timed_line_without_progress_bars(tmp_path: Path) -> None:
    analysis = tmp_path / "tiny"
    write_config(analysis, tiny_config(str(tmp_path / "data"), sig_events=500, mb_events=2000))
    gen = _run("generate", "--config", str(analysis), cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr
    prep = _run("prepare", "--config", str(analysis), "--sample", "signal", cwd=tmp_path)
    assert prep.returncode == 0, prep.stderr
    for proc in (gen, prep):
        assert "\r" not in proc.stdout + proc.stderr
        assert "it/s" not in proc.stderr and "%|" not in proc.stderr
    assert re.search(
        r"^generate signal: 500 events in [\d.]+ s \([\d.]+k? ev/s\)$",
        gen.stdout,
        flags=re.MULTILINE,
    ), gen.stdout
    assert re.fullmatch(
        r"prepare signal\[0\]: [\d,]+ -> [\d,]+ candidates in [\d.]+ s \([\d.]+[kM]? cand/s\)\n",
        prep.stdout,
    )


def test_config_error_through_snakemake_has_no_traceback(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["folds"] = {"k": "three"}
    write_config(tmp_path / "analyses" / "bad", raw)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "-n",
            "--cores",
            "1",
            "--config",
            "analysis=analyses/bad",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert proc.stderr.startswith("hepsel: error: invalid analysis config analyses/bad/config.yaml")
    assert "folds.k" in proc.stderr
    assert (
        "Traceback" not in proc.stderr
        and "Snakefile" not in proc.stderr
        and 'File "' not in proc.stderr
    )


def test_every_rule_with_a_command_has_a_benchmark() -> None:
    text = (REPO / "Snakefile").read_text()
    blocks = re.split(r"\n\s*rule(?: \w+)?:\n", text)[1:]
    commands = [b.split("\nrule", 1)[0] for b in blocks if "shell:" in b.split("\nrule", 1)[0]]
    assert len(commands) >= 10
    for block in commands:
        assert "benchmark:" in block, block[:200]


# -- outputs that cannot be written: one line naming the path and the reason ------------------


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from hepsel.cli import main

    rc = main(list(args))
    return rc, capsys.readouterr().err


def _one_error_line(err: str, *parts: str) -> None:
    assert err.count("\n") == 1 and err.startswith("hepsel: error: ") and "Traceback" not in err, (
        err
    )
    for part in parts:
        assert part in err, (part, err)


@pytest.fixture
def saved_selection(tmp_path: Path) -> tuple[Path, Path]:
    """A saved selection and one input file it applies to."""
    from .test_apply import _selection, _write

    _selection().save(tmp_path / "sel")
    _write(tmp_path / "in.root")
    return tmp_path / "sel", tmp_path / "in.root"


def test_apply_and_export_under_a_regular_file(tmp_path: Path, saved_selection, capsys) -> None:
    sel, data = saved_selection
    (tmp_path / "plain").write_text("a file")
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, err = _main(
        capsys,
        "apply",
        "-s",
        str(sel),
        str(data),
        "-o",
        str(tmp_path / "plain" / "out"),
        "--no-progress",
    )
    assert rc == 1
    _one_error_line(
        err, f"'{tmp_path / 'plain' / 'out'}'", f"'{tmp_path / 'plain'}' is a file, not a directory"
    )
    rc, err = _main(
        capsys, "apply", "-s", str(sel), str(data), "-o", str(tmp_path / "plain"), "--no-progress"
    )
    assert rc == 1
    _one_error_line(err, f"'{tmp_path / 'plain'}'", "it is not a directory")
    for fmt in ("onnx", "bbdt"):
        rc, err = _main(
            capsys,
            "export",
            "-s",
            str(sel),
            "--format",
            fmt,
            "-o",
            str(tmp_path / "plain" / "deploy"),
        )
        assert rc == 1
        _one_error_line(err, f"'{tmp_path / 'plain' / 'deploy'}'", "is a file, not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file anywhere
    assert (tmp_path / "plain").read_text() == "a file"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_apply_into_proc(saved_selection, capsys) -> None:
    sel, data = saved_selection
    rc, err = _main(
        capsys, "apply", "-s", str(sel), str(data), "-o", "/proc/hepsel-out", "--no-progress"
    )
    assert rc == 1
    _one_error_line(err, "'/proc/hepsel-out'", "cannot create files in '/proc'")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories"
)
def test_apply_into_a_read_only_directory(tmp_path: Path, saved_selection, capsys) -> None:
    sel, data = saved_selection
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = _main(capsys, "apply", "-s", str(sel), str(data), "-o", str(ro), "--no-progress")
        assert rc == 1
        _one_error_line(err, f"'{ro}'", "Permission denied")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_output_file_in_the_way_leaves_no_temporary_file(
    tmp_path: Path, saved_selection, capsys
) -> None:
    """The output name is taken by a directory: the operating system's refusal in one line, the temporary file gone."""
    sel, data = saved_selection
    (tmp_path / "out" / "in_hepsel.root").mkdir(parents=True)
    rc, err = _main(
        capsys, "apply", "-s", str(sel), str(data), "-o", str(tmp_path / "out"), "--no-progress"
    )
    assert rc == 1
    _one_error_line(err, "in_hepsel.root", "Is a directory")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["in_hepsel.root"]


def test_workflow_output_under_a_regular_file(tmp_path: Path, capsys) -> None:
    """--output of a workflow command (and generate's output file) under a regular file: one line, nothing written."""
    analysis = tmp_path / "tiny"
    write_config(analysis, tiny_config(str(tmp_path / "data")))
    (tmp_path / "plain").write_text("a file")
    bad = tmp_path / "plain" / "results"
    for cmd in (("gather",), ("prepare", "--sample", "signal"), ("evaluate",)):
        rc, err = _main(capsys, *cmd, "--config", str(analysis), "--output", str(bad))
        assert rc == 1
        _one_error_line(err, f"'{bad}'", "is a file, not a directory")
    rc, err = _main(
        capsys,
        "generate",
        "--kind",
        "signal",
        "--events",
        "10",
        "--output",
        str(bad / "x.root"),
        "--no-progress",
    )
    assert rc == 1
    _one_error_line(err, str(tmp_path / "plain"), "Not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "tiny"]


def _snakemake_dry(
    tmp_path: Path, *config: str, target: str = "all"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "-n",
            "--cores",
            "1",
            target,
            "--config",
            "analysis=analyses/tiny",
            *config,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )


def test_snakemake_output_under_a_regular_file_and_apply_errors_in_one_line(tmp_path: Path) -> None:
    write_config(
        tmp_path / "analyses" / "tiny",
        tiny_config("data", apply={"datasets": {"d": {"files": ["none/**/*.root"]}}}),
    )
    (tmp_path / "plain").write_text("a file")
    proc = _snakemake_dry(tmp_path, "output=plain/results")
    assert proc.returncode != 0
    _one_error_line(
        proc.stderr,
        f"'{tmp_path / 'plain' / 'results'}'",
        f"'{tmp_path / 'plain'}' is a file, not a directory",
    )
    proc = _snakemake_dry(tmp_path, target="apply")
    assert proc.returncode != 0
    line = [x for x in proc.stderr.splitlines() if x.startswith("hepsel: error: ")]
    assert line == [
        "hepsel: error: apply.datasets.d.files: pattern 'none/**/*.root' matches no file"
    ], proc.stderr
    assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr
