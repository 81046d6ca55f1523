"""The robustness step in the Snakemake workflow: outputs, report section and reruns.

One tiny analysis with a ``robustness`` block is run once; each edit is then
applied to its config and ``snakemake -n`` must list exactly the expected jobs.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from .conftest import config_editor, tiny_config, write_config
from .test_rerun import MODELS, _snakemake, planned_jobs

pytestmark = pytest.mark.slow

SHIFTS = {"ip": {"H?_IPCHI2_OWNPV": 1.2}, "pt": {"H?_PT": 0.98}}


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work directory where the tiny analysis with two shifts has run to completion."""
    work = tmp_path_factory.mktemp("robust_rerun")
    write_config(
        work / "analyses" / "tiny",
        tiny_config("data", models=MODELS, robustness={"shifts": SHIFTS}),
    )
    proc = _snakemake(work, "analyses/tiny")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


@pytest.fixture
def edit(done: Path):
    """Apply a change to the tiny config for one test, and put the original back afterwards."""
    yield from config_editor(done)


def test_default_target_makes_robustness_outputs_and_report_section(done: Path) -> None:
    root = done / "results" / "tiny"
    r = json.loads((root / "robustness.json").read_text())
    assert set(r["shifts"]) == set(SHIFTS)
    assert set(r["models"]) == set(MODELS)
    for m in MODELS:
        for shift in SHIFTS:
            assert set(r["models"][m]["shifts"][shift]) == {"1000", "500"}
    assert (root / "plots" / "robustness.png").is_file()
    assert (root / "benchmarks" / "robustness.tsv").is_file()
    report = (root / "report.html").read_text()
    assert "id='robustness'" in report and "plots/robustness.png" in report


def test_nothing_to_do_after_a_run(done: Path) -> None:
    assert planned_jobs(done, "analyses/tiny") == Counter()


def test_shift_edit_reruns_only_robustness_and_report(edit) -> None:
    work = edit(lambda c: c["robustness"]["shifts"]["pt"].update({"H?_PT": 0.97}))
    assert set(planned_jobs(work, "analyses/tiny")) == {"robustness", "report"}


def test_new_shift_reruns_only_robustness_and_report(edit) -> None:
    work = edit(
        lambda c: c["robustness"]["shifts"].update(vtx={"B_VTXCHI2": {"scale": 1.0, "offset": 0.5}})
    )
    assert set(planned_jobs(work, "analyses/tiny")) == {"robustness", "report"}


def test_removing_the_block_reruns_only_the_report(edit) -> None:
    work = edit(lambda c: c.pop("robustness"))
    assert set(planned_jobs(work, "analyses/tiny")) == {"report"}


def test_preselection_edit_reruns_robustness_too(edit) -> None:
    work = edit(lambda c: c["preselection"][0].update(cut="min(H1_PT, H2_PT) > 600"))
    assert "robustness" in planned_jobs(work, "analyses/tiny")
