"""The workflow runs through a batch-system executor: every job is self-contained.

Snakemake's cluster-generic executor submits each job as its own script; here the
"batch system" is tests/data/local_submit.sh, which runs it in the background on
this machine. Nothing is shared between jobs but the files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, tiny_config, write_config

pytestmark = pytest.mark.slow


def test_tiny_analysis_through_cluster_generic_executor(tmp_path: Path) -> None:
    pytest.importorskip("snakemake_executor_plugin_cluster_generic")
    raw = tiny_config("data", sig_events=1000, mb_events=4000, models={"fisher": {"type": "fisher"}})
    raw["folds"] = {"k": 2}
    write_config(tmp_path / "analyses" / "tiny", raw)
    submitted = tmp_path / "submitted.txt"
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
        "--executor", "cluster-generic",
        "--cluster-generic-submit-cmd", f"bash {REPO / 'tests' / 'data' / 'local_submit.sh'}",
        "--jobs", "2", "--latency-wait", "5", "--seconds-between-status-checks", "1",
        "--config", "analysis=analyses/tiny",
    ]
    env = {**os.environ, "HEPSEL_SUBMIT_LOG": str(submitted)}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "results" / "tiny"
    assert (out / "summary.json").exists() and (out / "report.html").exists()
    # generate x2, prepare x2, gather, train x2, evaluate, plots, why, report: each one a submitted script
    jobs = submitted.read_text().split()
    assert len(jobs) == 11
    assert sorted(p.name for p in (out / "benchmarks").rglob("*.tsv")) == sorted(
        ["evaluate.tsv", "gather.tsv", "generate_minbias.tsv", "generate_signal.tsv", "plots.tsv", "report.tsv",
         "fisher_fold0.tsv", "fisher_fold1.tsv", "signal_000.tsv", "minbias_000.tsv", "fisher.tsv",
         "fisher.tsv"]  # why, and why_settings (a local rule: not submitted)
    )
    # the run ends with the headline table
    assert "report: " + str(out / "report.html") in proc.stdout


@pytest.mark.parametrize("profile", ["slurm", "htcondor"])
def test_cluster_profiles_name_real_rules(profile: str) -> None:
    cfg = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
    assert cfg["executor"] == profile
    rules = {line.split()[1].rstrip(":") for line in (REPO / "Snakefile").read_text().splitlines() if line.startswith("rule ")}
    assert set(cfg["set-resources"]) <= rules
    assert {"prepare", "train", "evaluate"} <= set(cfg["set-resources"])
    for res in cfg["set-resources"].values():
        assert res["mem_mb"] > 0 and res["runtime"] > 0
