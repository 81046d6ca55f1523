"""Each workflow step imports only what it uses.

Every Snakemake job is a fresh interpreter, so a heavy module a step does not
need (torch, matplotlib, shap, ...) costs its import time in every job. Each
step runs here as the Snakefile runs it (``python -m hepsel.cli <step>``) on a
tiny bdt-only analysis, and the modules loaded when it exits are checked
against the step's forbidden list.

Some heavy modules are imported by what a step does use, and are allowed:
xgboost imports scikit-learn, scipy.stats and pandas itself; the efficiency
bands (plots) use scipy.stats (the cut-flow table takes its Beta quantiles
from scipy.special); pyarrow.dataset (rows read by a filter) imports pandas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, tiny_config, write_config

#: Runs ``hepsel.cli`` as ``python -m hepsel.cli`` does, then writes the loaded modules to a file.
_RUN_STEP = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["hepsel", *sys.argv[2:]]
runpy.run_module("hepsel.cli", run_name="__main__")
"""

#: Heavy modules, grouped by what loads them.
TORCH = ("torch",)
PLOTTING = ("matplotlib", "mplhep")
EXPLAINERS = ("shap", "lime", "numba")
XGBOOST = ("xgboost", "sklearn")

#: The modules each step of a bdt-only analysis must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "generate": TORCH + PLOTTING + EXPLAINERS + XGBOOST + ("scipy.stats",),
    "prepare": TORCH + PLOTTING + EXPLAINERS + XGBOOST + ("scipy.stats",),
    "gather": TORCH + PLOTTING + EXPLAINERS + XGBOOST + ("scipy.stats",),
    "train": TORCH + PLOTTING + EXPLAINERS,
    "evaluate": TORCH + PLOTTING + EXPLAINERS,
    "plots": TORCH + EXPLAINERS + XGBOOST + ("uproot", "awkward", "pyarrow"),
    "explain": TORCH + PLOTTING + ("lime", "numba"),
    "why": TORCH + PLOTTING + ("shap", "numba"),
    # with the explanations switched off: the report draws nothing of theirs
    "report": TORCH + EXPLAINERS + XGBOOST + ("uproot",),
}


def _step(work: Path, name: str, *args: str) -> list[str]:
    """Run one CLI step in a fresh interpreter; the modules it had loaded when it exited."""
    out = work / f"modules_{name}.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_STEP, str(out), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=work,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def step_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The modules loaded by each step of a tiny bdt-only analysis, run in order."""
    work = tmp_path_factory.mktemp("imports")
    analysis = work / "analyses" / "tiny"
    cfg = tiny_config("data", sig_events=1500, mb_events=6000, folds={"k": 2})
    path = write_config(analysis, cfg)
    c = ["--config", str(analysis)]
    loaded: dict[str, set[str]] = {}

    def run(name: str, *args: str) -> None:
        loaded[name] = set(_step(work, name, *args)) | loaded.get(name, set())

    run("generate", "generate", *c, "--no-progress")
    for sample in ("signal", "minbias"):
        run("prepare", "prepare", *c, "--sample", sample, "--no-progress")
    run("gather", "gather", *c)
    run("train", "train", *c, "--model", "bdt", "--no-progress")
    run("evaluate", "evaluate", *c, "--no-progress")
    run("plots", "plots", *c)
    run("explain", "explain", *c, "--model", "bdt")
    run("why", "explain", *c, "--local", "--model", "bdt")
    # the report of a study with its explanations switched off (their files are left over)
    cfg["evaluation"]["shap"] = {"enabled": False}
    cfg["explain"] = {"enabled": False}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run("report", "report", *c)
    report = (work / "results" / "tiny" / "report.html").read_text()
    assert "Why this candidate?" not in report
    assert "shap_" not in report
    return loaded


@pytest.mark.parametrize("step", list(FORBIDDEN))
def test_step_imports_only_what_it_uses(step_modules: dict[str, set[str]], step: str) -> None:
    loaded = step_modules[step]
    assert "hepsel.cli" in loaded or "__main__" in loaded
    present = sorted(m for m in FORBIDDEN[step] if m in loaded)
    assert not present, f"hepsel {step} imported {present}, which it does not use"


def test_cli_and_package_import_nothing_heavy() -> None:
    """``import hepsel`` and the command line's parser load no numerical library."""
    code = (
        "import sys, hepsel, hepsel.cli, hepsel.workflow; hepsel.cli.build_parser(); "
        "print(' '.join(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = set(proc.stdout.split())
    heavy = TORCH + PLOTTING + EXPLAINERS + XGBOOST + ("numpy", "scipy", "pandas", "awkward")
    assert not [m for m in heavy if m in loaded]
