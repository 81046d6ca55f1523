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


def _train_request(work: Path, *extra: str) -> tuple[int, int, int]:
    """(threads, mem_mb, runtime) of the train job of model bdt (a dry run of it alone)."""
    target = work / "results" / "tiny" / "models" / "bdt" / "fold0.info.json"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
    ]
    cmd += ["-n", "--allowed-rules", "train", *extra, "--config", "analysis=analyses/tiny"]
    proc = subprocess.run(
        [*cmd, "--", str(target)], capture_output=True, text=True, check=False, cwd=work
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    block = proc.stdout.split("rule train:", 1)[1].split("\n\n", 1)[0]
    threads = re.search(r"threads: (\d+)", block)
    res = re.search(r"runtime=(\d+), mem_mb=(\d+)", block)
    assert res, block
    return int(threads.group(1)) if threads else 1, int(res.group(2)), int(res.group(1))


def test_per_model_train_request_follows_its_threads(tmp_path: Path) -> None:
    """A per_model job holds one fold per thread and trains the others in turn: (800 MB + 2 MB
    per MB of data set) per thread, (20 minutes + 3 s per MB) per round, whatever sets its threads."""
    write_config(
        tmp_path / "analyses" / "tiny", tiny_config("data", training={"fold_jobs": "per_model"})
    )
    dataset = tmp_path / "results" / "tiny" / "dataset.parquet"
    dataset.parent.mkdir(parents=True)
    dataset.write_bytes(bytes(1_000_000))  # 1 MB
    per_fold_mb, per_round_min = 800 + 2, 20 + 3 / 60
    # one model, 3 folds: its share of 16 cores is 3 threads, one round
    assert _train_request(tmp_path, "--cores", "16") == (3, 3 * per_fold_mb, int(per_round_min) + 1)
    # 2 cores: 2 threads, two rounds (two folds side by side, then the third)
    assert _train_request(tmp_path, "--cores", "2") == (
        2,
        2 * per_fold_mb,
        int(2 * per_round_min) + 1,
    )
    assert _train_request(tmp_path, "--cores", "16", "--set-threads", "train=1") == (
        1,
        per_fold_mb,
        int(3 * per_round_min) + 1,
    )
