"""The workflow runs through a batch-system executor: every job is self-contained.

Snakemake's cluster-generic executor submits each job as its own script; here the
"batch system" is tests/data/local_submit.sh, which runs it in the background on
this machine. Nothing is shared between jobs but the files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, tiny_config, write_config

pytestmark = pytest.mark.slow


def test_tiny_analysis_through_cluster_generic_executor(tmp_path: Path) -> None:
    pytest.importorskip("snakemake_executor_plugin_cluster_generic")
    raw = tiny_config(
        "data", sig_events=1000, mb_events=4000, models={"fisher": {"type": "fisher"}}
    )
    raw["folds"] = {"k": 2}
    write_config(tmp_path / "analyses" / "tiny", raw)
    submitted = tmp_path / "submitted.txt"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--executor",
        "cluster-generic",
        "--cluster-generic-submit-cmd",
        f"bash {REPO / 'tests' / 'data' / 'local_submit.sh'}",
        "--jobs",
        "2",
        "--latency-wait",
        "5",
        "--seconds-between-status-checks",
        "1",
        "--config",
        "analysis=analyses/tiny",
    ]
    env = {**os.environ, "HEPSEL_SUBMIT_LOG": str(submitted)}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, cwd=tmp_path, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "results" / "tiny"
    assert (out / "summary.json").exists() and (out / "report.html").exists()
    # generate x2, prepare x2, gather, train x2, evaluate, plots, why, report: each one a submitted script
    jobs = submitted.read_text().split()
    assert len(jobs) == 11
    # and the local rule why_settings
    assert sorted(
        str(p.relative_to(out / "benchmarks")) for p in (out / "benchmarks").rglob("*.tsv")
    ) == sorted(
        [
            "evaluate.tsv",
            "gather.tsv",
            "generate_minbias/minbias_000.root.tsv",
            "generate_signal/signal_000.root.tsv",
            "plots.tsv",
            "report.tsv",
            "train/fisher_fold0.tsv",
            "train/fisher_fold1.tsv",
            "prepare/signal_000.tsv",
            "prepare/minbias_000.tsv",
            "why/fisher.tsv",
            "why_settings/fisher.tsv",
        ]
    )
    # the run ends with the headline table
    assert "report: " + str(out / "report.html") in proc.stdout


@pytest.mark.parametrize("profile", ["slurm", "htcondor"])
def test_cluster_profiles_name_real_rules(profile: str) -> None:
    cfg = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
    assert cfg["executor"] == profile
    rules = {
        line.split()[1].rstrip(":")
        for line in (REPO / "Snakefile").read_text().splitlines()
        if line.lstrip().startswith("rule ")
    }
    assert set(cfg.get("set-resources", {})) <= rules
    # threads, mem_mb and runtime are declared once, by the rules in the Snakefile: a profile does not override them
    assert "set-threads" not in cfg
    for res in [cfg.get("default-resources", {}), *cfg.get("set-resources", {}).values()]:
        assert not {"mem_mb", "runtime", "threads"} & set(res)


def test_every_rule_declares_its_resources() -> None:
    """Each rule that runs a job states threads, mem_mb and runtime (a cluster sizes its slots from them)."""
    blocks = re.split(r"\n\s*rule\b", (REPO / "Snakefile").read_text())[1:]
    assert len(blocks) >= 15
    for body in blocks:
        name = body.split(":", 1)[0].strip() or "generate"
        if "shell:" not in body or "localrule: True" in body:
            continue
        # threads: 1, or a count the job uses (a per-model train job's parallel folds)
        assert (
            re.search(r"\n\s*threads: \S", body)
            and "mem_mb=mem_mb(" in body
            and "runtime=runtime(" in body
        ), name
