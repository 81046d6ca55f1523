"""A sample file that turns bad after the workflow was planned, in a run over many files.

The file is cut short after its generation job has run (as a copy interrupted
on a storage element, or a remote read that stops): its prepare job fails with
one error line naming it and keeps nothing; ``--keep-going`` lets every
independent job finish; once the file is whole again, a rerun makes only the
failed job and what follows it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import tiny_config, write_config
from .test_rerun import _snakemake, planned_jobs

pytestmark = pytest.mark.slow


def test_a_file_gone_bad_fails_its_job_alone_and_a_rerun_picks_up_only_it(tmp_path: Path) -> None:
    work = tmp_path
    raw = tiny_config(
        "data", sig_events=1500, mb_events=6000, files=3, models={"fisher": {"type": "fisher"}}
    )
    raw["folds"] = {"k": 2}
    write_config(work / "analyses" / "tiny", raw)
    proc = _snakemake(work, "analyses/tiny", "generate_signal", "generate_minbias")
    assert proc.returncode == 0, proc.stderr[-3000:]

    bad = work / "data" / "signal_001.root"
    whole = bad.read_bytes()
    bad.write_bytes(whole[: int(0.7 * len(whole))])  # cut short after the run was planned

    proc = _snakemake(work, "analyses/tiny", "--keep-going")
    assert proc.returncode != 0
    root = work / "results" / "tiny"
    log = (root / "logs" / "prepare" / "signal_001.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("hepsel: error:")]
    assert len(errors) == 1 and "signal_001.root" in errors[0] and "truncated" in errors[0], log
    assert "Traceback" not in log
    # nothing partial of the failed job; every independent job finished
    prepared = sorted(
        str(p.relative_to(root / "prepared")) for p in (root / "prepared").rglob("*") if p.is_file()
    )
    assert "signal/001.parquet" not in prepared and not [
        p for p in prepared if "tmp" in p or p.startswith(".")
    ]
    for sample in ("signal", "minbias"):
        for index in ("000", "002") if sample == "signal" else ("000", "001", "002"):
            assert f"{sample}/{index}.parquet" in prepared
    assert not (root / "dataset.parquet").exists()

    bad.write_bytes(whole)
    jobs = planned_jobs(work, "analyses/tiny")
    prepares = {j for j in jobs if j.startswith("prepare[")}
    assert prepares == {"prepare[sample=signal, index=001]"}, jobs
    assert not [j for j in jobs if j.startswith("generate")], jobs
    assert jobs["gather"] == 1
    proc = _snakemake(work, "analyses/tiny")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (root / "summary.json").exists()
