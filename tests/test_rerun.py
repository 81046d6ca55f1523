"""Snakemake reruns exactly the jobs a config edit affects (and nothing else).

One tiny analysis is run once; then each edit is applied to a copy of its
config and ``snakemake -n`` must list exactly the expected jobs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, config_editor, tiny_config, write_config

pytestmark = pytest.mark.slow

MODELS = {
    "bdt": {
        "type": "bdt",
        "params": {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 1},
    },
    "fisher": {"type": "fisher"},
}


def _snakemake(
    work: Path, analysis: str, *extra: str, config: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--cores",
        "2",
        *extra,
        "--config",
        f"analysis={analysis}",
        *config,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=work)


def planned_jobs(work: Path, analysis: str, *, config: tuple[str, ...] = ()) -> Counter[str]:
    """Jobs a dry run would execute, as 'rule[wildcards]' -> count (the 'all' target left out)."""
    proc = _snakemake(work, analysis, "-n", config=config)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs: Counter[str] = Counter()
    for block in re.split(r"\n(?:localrule|rule) ", proc.stdout)[1:]:
        name = block.split(":", 1)[0].strip()
        if name == "all":
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, flags=re.MULTILINE)
        jobs[f"{name}[{wc.group(1)}]" if wc else name] += 1
    return jobs


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work directory where the tiny analysis (bdt + fisher) has run to completion."""
    work = tmp_path_factory.mktemp("rerun")
    write_config(work / "analyses" / "tiny", tiny_config("data", models=MODELS))
    proc = _snakemake(work, "analyses/tiny")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


@pytest.fixture
def edit(done: Path):
    """Apply a change to the tiny config for one test, and put the original back afterwards."""
    yield from config_editor(done)


TRAIN = {f"train[model={m}, fold={k}]" for m in MODELS for k in range(3)}
# everything after training, when every model retrains
DOWNSTREAM = {
    "evaluate",
    "plots",
    "report",
    "explain[model=bdt]",
    "why[model=bdt]",
    "why[model=fisher]",
}


def test_nothing_to_do_after_a_run(done: Path) -> None:
    assert planned_jobs(done, "analyses/tiny") == Counter()


def test_preselection_edit_reruns_prepare_and_everything_downstream(edit) -> None:
    work = edit(lambda c: c["preselection"][0].update(cut="min(H1_PT, H2_PT) > 600"))
    jobs = planned_jobs(work, "analyses/tiny")
    expected = {
        "prepare[sample=signal, index=000]",
        "prepare[sample=minbias, index=000]",
        "gather",
        *TRAIN,
        *DOWNSTREAM,
    }
    assert set(jobs) == expected


# one model retrained: its own explanations, the evaluation of all, plots and report (not the other model's "why")
BDT_RETRAINED = {
    "train[model=bdt, fold=0]",
    "train[model=bdt, fold=1]",
    "train[model=bdt, fold=2]",
    "evaluate",
    "plots",
    "report",
    "explain[model=bdt]",
    "why_settings[model=bdt]",
    "why[model=bdt]",
}


def test_model_param_edit_retrains_only_that_model(edit) -> None:
    work = edit(lambda c: c["models"]["bdt"]["params"].update(max_depth=2))
    assert set(planned_jobs(work, "analyses/tiny")) == BDT_RETRAINED


def test_other_models_param_edit_reruns_only_its_own_why(edit) -> None:
    # the fisher's working points are unchanged: its "why" job must not follow the bdt's
    work = edit(lambda c: c["models"]["fisher"].update(params={"ridge": 1e-6}))
    jobs = set(planned_jobs(work, "analyses/tiny"))
    assert jobs == {f"train[model=fisher, fold={k}]" for k in range(3)} | {
        "evaluate",
        "plots",
        "report",
        "why_settings[model=fisher]",
        "why[model=fisher]",
    }


def test_adding_score_uncertainty_retrains_only_that_model(edit) -> None:
    work = edit(lambda c: c["models"]["bdt"].update(uncertainty={"replicas": 2}))
    # "why" explains the nominal model, which does not read the replica settings
    assert set(planned_jobs(work, "analyses/tiny")) == BDT_RETRAINED - {"why_settings[model=bdt]"}


def test_target_rate_edit_reruns_every_why(edit) -> None:
    # "why" reads the first working point: a new target rate moves every model's threshold
    work = edit(lambda c: c["trigger"].update(target_rates_khz=[800, 500]))
    assert {"evaluate", "why[model=bdt]", "why[model=fisher]"} <= set(
        planned_jobs(work, "analyses/tiny")
    )


def test_apply_edit_reruns_nothing_of_the_analysis(edit) -> None:
    # the apply target reads the saved selection; the analysis does not read the apply block
    work = edit(
        lambda c: c.update(
            apply={"datasets": {"more": {"files": ["data/signal_*.root"]}}, "copy_branches": True}
        )
    )
    assert planned_jobs(work, "analyses/tiny") == Counter()


def test_feature_label_edit_redraws_only_the_report(edit) -> None:
    # labels are plot text: the report draws the SHAP and "why" figures, nothing is recomputed
    work = edit(lambda c: c["features"][0].update(label="p_{T}(B) [MeV]"))
    assert set(planned_jobs(work, "analyses/tiny")) == {"report"}


def test_switching_explanations_off_reruns_only_the_report(edit) -> None:
    # the SHAP and "why" jobs leave the default target; train, evaluate and plots stay done
    def off(c: dict) -> None:
        c["evaluation"].setdefault("shap", {})["enabled"] = False
        c.setdefault("explain", {})["enabled"] = False

    assert set(planned_jobs(edit(off), "analyses/tiny")) == {"report"}


def test_fold_jobs_switch_reruns_nothing(edit) -> None:
    # one train job per model instead of one per fold: the same outputs, the same shell command
    work = edit(lambda c: c.setdefault("training", {}).update(fold_jobs="per_model"))
    assert planned_jobs(work, "analyses/tiny") == Counter()


def test_plot_label_edit_reruns_only_plots_and_report(edit) -> None:
    work = edit(
        lambda c: c["evaluation"]["efficiency_vs"]["B_TRUETAU"].update(label="decay time [ps]")
    )
    assert set(planned_jobs(work, "analyses/tiny")) == {"plots", "report"}


def test_generate_edit_regenerates_only_that_sample(edit) -> None:
    work = edit(lambda c: c["samples"]["minbias"]["generate"].update(seed=99))
    jobs = planned_jobs(work, "analyses/tiny")
    # one job per generated file, named by the file
    assert "generate_minbias_file[generated_minbias=minbias_000.root]" in jobs
    assert not [j for j in jobs if j.startswith("generate_signal")]
    assert "prepare[sample=signal, index=000]" not in jobs
    assert {"prepare[sample=minbias, index=000]", "gather", *TRAIN} <= set(jobs)


def test_other_output_directory_does_not_regenerate(done: Path, tmp_path: Path) -> None:
    jobs = planned_jobs(done, "analyses/tiny", config=(f"output={tmp_path / 'elsewhere'}",))
    assert not [j for j in jobs if j.startswith("generate")]
    assert "prepare[sample=signal, index=000]" in jobs


def test_second_analysis_reuses_generated_data_and_has_its_own_results(done: Path) -> None:
    # a copy that keeps name: tiny and the same generate settings
    src, dst = done / "analyses" / "tiny", done / "analyses" / "tiny_copy"
    shutil.copytree(src, dst, dirs_exist_ok=True)
    jobs = planned_jobs(done, "analyses/tiny_copy")
    assert not [j for j in jobs if j.startswith("generate")]
    # its results go to results/tiny_copy, not into the original's directory
    assert "gather" in jobs
    proc = _snakemake(done, "analyses/tiny_copy", "-n", "-p")
    assert "results/tiny_copy/dataset.parquet" in proc.stdout
    assert planned_jobs(done, "analyses/tiny") == Counter()


def test_explicit_output_owned_by_another_config_is_refused(done: Path) -> None:
    dst = done / "analyses" / "intruder"
    cfg = yaml.safe_load((done / "analyses" / "tiny" / "config.yaml").read_text())
    cfg["output"] = "results/tiny"
    write_config(dst, cfg)
    proc = _snakemake(done, "analyses/intruder", "-n")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "belongs to the analysis config" in text and "analyses/tiny/config.yaml" in text
