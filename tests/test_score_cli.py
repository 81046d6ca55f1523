"""``hepsel score``: per model, entries, preselected entries and entries passing each working point, NaN-safe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hepsel.cli import main

from .test_apply import _selection, _write
from .test_selection import _expected_scores


def _hand_count(cols: dict[str, np.ndarray]) -> dict:
    """What ``hepsel score`` must report, counted with numpy from the stored thresholds."""
    sel = _selection()
    scores = _expected_scores(sel, cols)
    presel = cols["x"] > 0
    passing = {
        f"pass_fisher_{k.replace('.', 'p')}kHz": int(
            np.sum(presel & (np.nan_to_num(scores, nan=-np.inf) >= thr))
        )
        for k, thr in sel.working_points["fisher"].items()
    }
    return {
        "entries": len(presel),
        "preselected": int(presel.sum()),
        "models": {"fisher": {"mean_score": float(np.mean(scores[presel])), "passing": passing}},
    }


def _score(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hepsel.cli", "score", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_counts_equal_a_hand_count(tmp_path: Path) -> None:
    _selection().save(tmp_path / "sel")
    cols = _write(
        tmp_path / "in.root"
    )  # a fifth of the entries fail the preselection (x = 0): NaN scores
    assert (cols["x"] <= 0).sum() > 0
    proc = _score(str(tmp_path / "sel"), str(tmp_path / "in.root"), "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    want = _hand_count(cols)
    assert got["entries"] == want["entries"] and got["preselected"] == want["preselected"]
    assert got["models"]["fisher"]["passing"] == want["models"]["fisher"]["passing"]
    assert got["models"]["fisher"]["mean_score"] == pytest.approx(
        want["models"]["fisher"]["mean_score"], rel=1e-12
    )
    assert 0 < want["models"]["fisher"]["passing"]["pass_fisher_100kHz"] < want["preselected"]
    # the text form says the same, with no NaN anywhere
    proc = _score(str(tmp_path / "sel"), str(tmp_path / "in.root"))
    assert proc.returncode == 0, proc.stderr
    assert "nan" not in proc.stdout.lower()
    n100 = want["models"]["fisher"]["passing"]["pass_fisher_100kHz"]
    assert f"{want['entries']:,} entries, {want['preselected']:,} preselected" in proc.stdout
    assert (
        f"pass_fisher_100kHz: {n100:,} entries pass ({n100 / want['preselected']:.1%} of the preselected"
        in proc.stdout
    )
    assert f"mean score {want['models']['fisher']['mean_score']:.4f}" in proc.stdout


def test_nothing_preselected_and_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _selection().save(tmp_path / "sel")
    cols = _write(tmp_path / "in.root")
    import uproot

    with uproot.recreate(tmp_path / "rejected.root") as f:  # every entry fails x > 0
        data = dict(cols, x=np.zeros_like(cols["x"]))
        f.mktree("DecayTree", {k: v.dtype for k, v in data.items()})
        f["DecayTree"].extend(data)
    assert main(["score", str(tmp_path / "sel"), str(tmp_path / "rejected.root"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["preselected"] == 0 and got["models"]["fisher"]["mean_score"] is None
    assert set(got["models"]["fisher"]["passing"].values()) == {0}
    assert main(["score", str(tmp_path / "sel"), str(tmp_path / "rejected.root")]) == 0
    text = capsys.readouterr().out
    assert "nan" not in text.lower() and "0 preselected" in text and "n/a" in text
    _write(tmp_path / "empty.root", n_events=0)
    assert main(["score", str(tmp_path / "sel"), str(tmp_path / "empty.root"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["entries"] == 0 and got["models"]["fisher"]["mean_score"] is None
