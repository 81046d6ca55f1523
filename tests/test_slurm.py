"""The workflow on a real SLURM cluster, through the project's own profiles/slurm.

Needs a cluster that answers ``sinfo`` (CI starts a single-node one with
tests/data/slurm/start-cluster.sh) and snakemake-executor-plugin-slurm; skips
otherwise. The tiny analysis runs once through SLURM, with one training job killed
mid-way (scancel), and once locally; the two give the same scores and figures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uproot

from .conftest import REPO, tiny_config, write_config

pytestmark = pytest.mark.slow

# "Job 3 has been submitted with SLURM jobid 17 (log: ...)": the executor's line per submitted job
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")


def _cluster_answers() -> str | None:
    """Why the SLURM tests cannot run here, or None when a cluster answers."""
    if shutil.which("sinfo") is None:
        return (
            "no SLURM client (sinfo) on PATH; CI starts one with tests/data/slurm/start-cluster.sh"
        )
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader", "-o", "%T"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if proc.returncode != 0 or not proc.stdout.strip():
        return f"no SLURM cluster answers sinfo: {proc.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    why = _cluster_answers()
    if why is not None:
        pytest.skip(why)
    # after the cluster check: the plugin runs `which sacct` as it is imported
    pytest.importorskip("snakemake_executor_plugin_slurm")


def _snakemake(work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        *extra,
        "--config",
        "analysis=analyses/tiny",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=work, timeout=600)


def _tiny(work: Path) -> Path:
    raw = tiny_config(
        "data", sig_events=1000, mb_events=4000, models={"fisher": {"type": "fisher"}}
    )
    raw["folds"] = {"k": 2}
    write_config(work / "analyses" / "tiny", raw)
    return work / "results" / "tiny"


# Through the profile as a user runs it; only the first status poll comes sooner
# (the plugin waits 40 s by default) and outputs are on a local disk.
SLURM_ARGS = (
    "--profile",
    str(REPO / "profiles" / "slurm"),
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--seconds-between-status-checks",
    "3",
    "--latency-wait",
    "5",
)


def _job(jobid: str) -> dict[str, str]:
    """``scontrol show job`` as a dict (finished jobs stay listed for MinJobAge)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", jobid], capture_output=True, text=True, check=True
    ).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def _cancel_when_running(
    comment: str, workdir: Path, stop: threading.Event, cancelled: list[str]
) -> None:
    """``scancel`` the first job of this workflow whose comment (Snakemake's rule and wildcards) is ``comment``, once it runs."""
    while not stop.is_set():
        out = subprocess.run(
            ["squeue", "--noheader", "--states=RUNNING", "--format=%i|%k|%Z"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for line in out.splitlines():
            jobid, job_comment, job_dir = line.split("|", 2)
            if job_comment == comment and Path(job_dir).resolve() == workdir.resolve():
                subprocess.run(["scancel", jobid], check=True)
                cancelled.append(jobid)
                return
        time.sleep(0.2)


def test_tiny_analysis_through_slurm_equals_local_run(slurm_cluster: None, tmp_path: Path) -> None:
    work = tmp_path / "slurm"
    out = _tiny(work)
    stop, cancelled = threading.Event(), []
    killer = threading.Thread(
        target=_cancel_when_running, args=("rule_train_wildcards_fisher_0", work, stop, cancelled)
    )
    killer.start()
    try:
        proc = _snakemake(work, *SLURM_ARGS)
    finally:
        stop.set()
        killer.join()
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert (out / "report.html").is_file()

    # generate x2, prepare x2, gather, train x2, evaluate, plots, why, report: each a SLURM job
    # (why_settings is a local rule); the cancelled training is reported and submitted again
    # (the profile's retries: 1), with twice the memory
    assert len(cancelled) == 1
    assert f"SLURM-job '{cancelled[0]}' failed, SLURM status is: 'CANCELLED'" in log, log[-4000:]
    jobids = SUBMITTED.findall(log)
    assert len(jobids) == len(set(jobids)) == 12, log[-4000:]
    jobs = {jobid: _job(jobid) for jobid in jobids}
    assert jobs[cancelled[0]]["JobState"] == "CANCELLED"
    for jobid, job in jobs.items():
        assert job["JobState"] == "COMPLETED" or jobid in cancelled, job
        assert Path(job["WorkDir"]).resolve() == work.resolve()
    rules = sorted(
        job["Comment"].removeprefix("rule_").split("_wildcards")[0] for job in jobs.values()
    )
    assert rules == sorted(
        [
            "generate_signal_file",
            "generate_minbias_file",
            "prepare",
            "prepare",
            "gather",
            "train",
            "train",
            "train",
            "evaluate",
            "plots",
            "why",
            "report",
        ]
    )
    retried = next(
        j
        for i, j in jobs.items()
        if j["Comment"] == "rule_train_wildcards_fisher_0" and i not in cancelled
    )
    mem = [int(j["MinMemoryNode"].removesuffix("M")) for j in (jobs[cancelled[0]], retried)]
    assert mem[1] >= 2 * mem[0] - 1 > 0
    # the threads, memory and time each rule declares reach the scheduler (report: 2 threads,
    # 250 + 2 x 250 MB, 10 + 1 minutes)
    report = next(job for job in jobs.values() if job["Comment"] == "rule_report")
    assert (report["NumCPUs"], report["MinMemoryNode"], report["TimeLimit"]) == (
        "2",
        "750M",
        "00:11:00",
    )

    local = _tiny(tmp_path / "local")
    proc = _snakemake(
        tmp_path / "local", "--cores", "2", str(local / "summary.json"), str(local / "scores.root")
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    with uproot.open(out / "scores.root") as f, uproot.open(local / "scores.root") as g:
        a, b = f["scores"].arrays(library="np"), g["scores"].arrays(library="np")
    assert sorted(a) == sorted(b) and len(a["score_fisher"]) > 0
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # every figure equal; the training's own wall time aside
    a, b = (json.loads((run / "summary.json").read_text())["fisher"] for run in (out, local))
    for fold in (*a["training"], *b["training"]):
        fold.pop("seconds")
    assert a == b

    # nothing partial was taken for complete: the workflow has nothing left to do
    proc = _snakemake(work, "--cores", "1", "-n")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[
        -2000:
    ]
