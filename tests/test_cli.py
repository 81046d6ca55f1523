"""The command line: help texts, and what it writes when not on a terminal."""

from __future__ import annotations

import argparse
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
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and not action.required:
            assert f"default: {action.default}" in text, f"hepsel {name} {action.option_strings[0]}: default not shown"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # captured output is a pipe, not a terminal, as in a Snakemake log
    return subprocess.run([sys.executable, "-m", "hepsel.cli", *args], capture_output=True, text=True, check=False, cwd=cwd)


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
    assert re.search(r"^generate signal: 500 events in [\d.]+ s \([\d.]+k? ev/s\)$", gen.stdout, flags=re.MULTILINE), gen.stdout
    assert re.fullmatch(r"prepare signal\[0\]: [\d,]+ -> [\d,]+ candidates in [\d.]+ s \([\d.]+[kM]? cand/s\)\n", prep.stdout)


def test_config_error_through_snakemake_has_no_traceback(tmp_path: Path) -> None:
    raw = tiny_config("data")
    raw["folds"] = {"k": "three"}
    write_config(tmp_path / "analyses" / "bad", raw)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "-n", "--cores", "1", "--config", "analysis=analyses/bad"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert proc.stderr.startswith("hepsel: error: invalid analysis config analyses/bad/config.yaml")
    assert "folds.k" in proc.stderr
    assert "Traceback" not in proc.stderr and "Snakefile" not in proc.stderr and 'File "' not in proc.stderr


def test_every_rule_with_a_command_has_a_benchmark() -> None:
    text = (REPO / "Snakefile").read_text()
    blocks = re.split(r"\n\s*rule(?: \w+)?:\n", text)[1:]
    commands = [b.split("\nrule", 1)[0] for b in blocks if "shell:" in b.split("\nrule", 1)[0]]
    assert len(commands) >= 10
    for block in commands:
        assert "benchmark:" in block, block[:200]
