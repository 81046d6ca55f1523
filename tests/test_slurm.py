"""The workflow on a real SLURM cluster, through the project's own profiles/slurm.

Needs a cluster that answers ``sinfo`` (CI starts a single-node one with
tests/data/slurm/start-cluster.sh) and snakemake-executor-plugin-slurm; skips
otherwise. The tiny analysis runs once through SLURM and once locally, and the
two give the same scores and figures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
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
        return "no SLURM client (sinfo) on PATH; CI starts one with tests/data/slurm/start-cluster.sh"
    try:
        proc = subprocess.run(["sinfo", "--noheader", "-o", "%T"], capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if proc.returncode != 0 or not proc.stdout.strip():
        return f"no SLURM cluster answers sinfo: {proc.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    pytest.importorskip("snakemake_executor_plugin_slurm")
    why = _cluster_answers()
    if why is not None:
        pytest.skip(why)


def _snakemake(work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(work),
           *extra, "--config", "analysis=analyses/tiny"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=work, timeout=600)


def _tiny(work: Path) -> Path:
    raw = tiny_config("data", sig_events=1000, mb_events=4000, models={"fisher": {"type": "fisher"}})
    raw["folds"] = {"k": 2}
    write_config(work / "analyses" / "tiny", raw)
    return work / "results" / "tiny"


# Through the profile as a user runs it; only the first status poll comes sooner
# (the plugin waits 40 s by default) and outputs are on a local disk.
SLURM_ARGS = ("--profile", str(REPO / "profiles" / "slurm"), "--slurm-init-seconds-before-status-checks", "2",
              "--latency-wait", "5")


def _job(jobid: str) -> dict[str, str]:
    """``scontrol show job`` as a dict (finished jobs stay listed for MinJobAge)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", jobid], capture_output=True, text=True, check=True).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def test_tiny_analysis_through_slurm_equals_local_run(slurm_cluster: None, tmp_path: Path) -> None:
    out = _tiny(tmp_path / "slurm")
    proc = _snakemake(tmp_path / "slurm", *SLURM_ARGS)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert (out / "report.html").is_file()

    # generate x2, prepare x2, gather, train x2, evaluate, plots, why, report: each a SLURM job
    # (why_settings is a local rule)
    jobids = SUBMITTED.findall(log)
    assert len(jobids) == len(set(jobids)) == 11, log[-4000:]
    jobs = {jobid: _job(jobid) for jobid in jobids}
    for job in jobs.values():
        assert job["JobState"] == "COMPLETED", job
        assert Path(job["WorkDir"]).resolve() == (tmp_path / "slurm").resolve()
    rules = sorted(job["Comment"].removeprefix("rule_").split("_wildcards")[0] for job in jobs.values())
    assert rules == sorted(["generate_signal", "generate_minbias", "prepare", "prepare", "gather", "train", "train",
                            "evaluate", "plots", "why", "report"])
    # the threads, memory and time each rule declares reach the scheduler (report: 500 MB, 10 + 1 minutes)
    report = next(job for job in jobs.values() if job["Comment"] == "rule_report")
    assert (report["NumCPUs"], report["MinMemoryNode"], report["TimeLimit"]) == ("1", "500M", "00:11:00")

    local = _tiny(tmp_path / "local")
    proc = _snakemake(tmp_path / "local", "--cores", "2", str(local / "summary.json"), str(local / "scores.root"))
    assert proc.returncode == 0, proc.stderr[-4000:]

    with uproot.open(out / "scores.root") as f, uproot.open(local / "scores.root") as g:
        a, b = f["scores"].arrays(library="np"), g["scores"].arrays(library="np")
    assert sorted(a) == sorted(b) and len(a["score_fisher"]) > 0
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert json.loads((out / "summary.json").read_text())["fisher"] == json.loads((local / "summary.json").read_text())["fisher"]
