"""End-to-end: the 'why' rule on a tiny analysis, ``hepsel explain --candidate`` against its saved explanation,
and the study's report (every section, the explanation tables included) in a real browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from .browser import report_problems
from .conftest import REPO, tiny_config, write_config

pytestmark = pytest.mark.slow

_EXPLAIN = {
    "candidates": {"background": 1, "signal": 1, "random": 1},
    "reference_events": 300,
    "lime_samples": 600,
    "lime_seeds": 2,
    "ranking_events": 6,
    "permutation_events": 3000,
    "permutation_repeats": 3,
}


@pytest.fixture(scope="module")
def why_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("why")
    analysis = work / "analyses" / "tiny"
    models = {
        "bdt": {
            "type": "bdt",
            "params": {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 1},
        },
        "fisher": {"type": "fisher"},
    }
    write_config(
        analysis,
        tiny_config("data", models=models, sig_events=1500, mb_events=8000, explain=_EXPLAIN),
    )
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
        "--config",
        f"analysis={analysis}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, analysis


def _cli(work: Path, analysis: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hepsel.cli", "explain", "--config", str(analysis), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=work,
    )


def test_why_outputs_and_report(why_run: tuple[Path, Path]) -> None:
    work, _ = why_run
    root = work / "results" / "tiny"
    for m in ("bdt", "fisher"):
        info = json.loads((root / "explain" / f"{m}.json").read_text())
        roles = [c["role"] for c in info["candidates"]]
        assert roles == ["background passing", "signal failing", "random"]
        for c in info["candidates"]:
            assert (root / c["png"]).is_file()
            assert len(c["lime_r2"]) == 2
            assert np.asarray(c["shap_folds"]).shape == (3, 5)
        bkg, sig = info["candidates"][0], info["candidates"][1]
        assert bkg["label"] == 0 and bkg["passes"] and bkg["score"] >= info["threshold"]
        assert sig["label"] == 1 and sig["truth"] and not sig["passes"]
        r = info["rankings"]
        assert set(r["methods"]) >= {"mean |SHAP|", "mean |LIME weight|", "permutation (AUC drop)"}
        assert ("xgboost gain" in r["methods"]) == (m == "bdt")
        assert "mean |SHAP| vs mean |LIME weight|" in r["kendall_tau"]
    bdt = json.loads((root / "explain" / "bdt.json").read_text())
    for c in bdt["candidates"]:
        assert c["shap_sum"] == pytest.approx(c["margin"], abs=1e-4)
    fisher = json.loads((root / "explain" / "fisher.json").read_text())
    assert "linear" in fisher["shap_method"]
    page = (root / "report.html").read_text()
    assert "Why this candidate?" in page and "Kendall &tau;" in page


def test_report_reads_in_a_browser(why_run: tuple[Path, Path], chromium: Any) -> None:
    """The study's report in headless Chromium at 1400 x 900 px (``tests/browser.py``).

    Every image loads, every link in the page or to a file beside it
    resolves, no table or figure is wider than the window (all sections
    open), and the headline table and the warnings start above the fold.
    """
    work, _ = why_run
    assert report_problems(chromium, work / "results" / "tiny" / "report.html") == []


def _table(stdout: str) -> dict[str, tuple[float, float, float, float]]:
    rows = {}
    for line in stdout.splitlines():
        m = re.match(
            r"^\s+(\w+)\s+(\S+)\s+(-?\d+\.\d{6})\s+(-?\d+\.\d{6})\s+(-?\d+\.\d{6})\s*$", line
        )
        if m:
            rows[m.group(1)] = tuple(float(m.group(i)) for i in range(2, 6))
    return rows  # type: ignore[return-value]


def test_explain_candidate_prints_the_saved_contributions(why_run: tuple[Path, Path]) -> None:
    work, analysis = why_run
    root = work / "results" / "tiny"
    saved = json.loads((root / "explain" / "bdt.json").read_text())["candidates"][0]
    proc = _cli(work, analysis, "--model", "bdt", "--candidate", saved["candidate"])
    assert proc.returncode == 0, proc.stderr
    table = _table(proc.stdout)
    written = json.loads(
        next(
            root.glob(f"explain/candidates/bdt_{saved['candidate'].replace(':', '_')}.json")
        ).read_text()
    )
    assert (root / written["png"]).is_file() or Path(written["png"]).is_file()
    assert set(table) == {c["feature"] for c in written["contributions"]} and len(table) == 5
    for source in (
        written,
        saved,
    ):  # the CLI's own file, and the workflow's explanation of the same candidate
        for c in source["contributions"]:
            value, shap, weight, contribution = table[c["feature"]]
            assert value == pytest.approx(c["value"], rel=1e-5)
            assert shap == pytest.approx(c["shap"], abs=1e-6)
            assert weight == pytest.approx(c["lime_weight"], abs=1e-6)
            assert contribution == pytest.approx(c["lime_contribution"], abs=1e-6)
    assert sum(v[1] for v in table.values()) + written["shap_base"] == pytest.approx(
        written["margin"], abs=1e-4
    )


def test_bad_candidates_give_clear_errors(why_run: tuple[Path, Path]) -> None:
    work, analysis = why_run
    cols = pq.read_table(
        work / "results" / "tiny" / "dataset.parquet", columns=["runNumber", "eventNumber"]
    ).to_pydict()
    keys = list(zip(cols["runNumber"], cols["eventNumber"], strict=True))
    counts: dict[tuple[int, int], int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    run, evt = next(k for k, n in counts.items() if n > 1)
    n = counts[(run, evt)]
    cases = [
        (["--candidate", "12-34"], "candidate '12-34' is not RUN:EVENT"),
        (["--candidate", "999999:999999"], "no candidate with run 999999 and event 999999"),
        (
            ["--candidate", f"{run}:{evt}"],
            f"run {run} event {evt} has {n} candidates; choose one with RUN:EVENT:INDEX",
        ),
        (["--candidate", f"{run}:{evt}:{n}"], f"run {run} event {evt} has no candidate index {n}"),
        (["--candidate", "1:1", "--model", "nope"], "model 'nope' is not in the config"),
    ]
    for args, message in cases:
        proc = (
            _cli(work, analysis, "--model", "bdt", *args)
            if "--model" not in args
            else _cli(work, analysis, *args)
        )
        assert proc.returncode == 1, (args, proc.stdout)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_why_reuses_the_stored_raw_outputs_only_while_they_are_the_models(
    why_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring every candidate again costs minutes at 100x: the raw outputs of scores.root are read
    instead, unless a sample scored by the fold models disagrees (models trained again since)."""
    import shutil

    import uproot

    from hepsel.config.loading import load_config
    from hepsel.io.storage import write_root_tree
    from hepsel.workflow import why_steps
    from hepsel.workflow.layout import Layout

    work, analysis = why_run
    monkeypatch.chdir(work)
    cfg = load_config(analysis)
    lay = Layout.of(cfg)
    scored: list[int] = []
    real = why_steps._held_out_margin

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        scored.append(len(out))
        return out

    monkeypatch.setattr(why_steps, "_held_out_margin", spy)
    ctx = why_steps._why_context(cfg, "bdt")
    assert scored == []
    with uproot.open(lay.scores) as f:
        stored = f["scores"]["raw_bdt"].array(library="np")
    np.testing.assert_array_equal(ctx.margin, stored)
    # scores.root from other models (a stale file): found out and computed again, equal to the true ones
    backup = lay.scores.with_name("scores.backup.root")
    shutil.copy2(lay.scores, backup)
    try:
        with uproot.open(lay.scores) as f:
            cols = f["scores"].arrays(library="np")
        cols["raw_bdt"] = cols["raw_bdt"] + 0.5
        write_root_tree(lay.scores, "scores", cols)
        ctx = why_steps._why_context(cfg, "bdt")
        assert scored == [len(stored)]
        np.testing.assert_allclose(ctx.margin, stored, rtol=1e-6, atol=1e-6)
    finally:
        shutil.move(backup, lay.scores)
