"""Comparing two studies' headline figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from hepsel.cli import main
from hepsel.exceptions import HepselError
from hepsel.io.storage import write_json
from hepsel.report.compare import compare, compare_summaries, format_comparison


def _summary(auc: float, eff: float, err: float) -> dict[str, Any]:
    e = {"eff": eff, "eff_low": eff - err, "eff_high": eff + err}
    return {
        "bdt": {
            "auc": auc,
            "auc_std": 0.001,
            "eff_at_rate": {"660": e, "100": e},
            "eff_total": {"660": e},
        },
        "_meta": {},
    }


def test_differences_and_significance() -> None:
    a, b = _summary(0.980, 0.80, 0.01), _summary(0.981, 0.85, 0.01)
    b["bdt"]["eff_at_rate"].pop("100")
    b["mlp"] = b["bdt"]
    out = compare_summaries(a, b)
    rows = {r["figure"]: r for r in out["models"]["bdt"]}
    assert set(rows) == {"AUC", "signal eff. @ 660 kHz", "total signal eff. @ 660 kHz"}
    auc = rows["AUC"]
    assert auc["diff"] == pytest.approx(0.001)
    assert auc["diff_err"] == pytest.approx(math.sqrt(2) * 0.001)
    assert not auc["significant"]
    eff = rows["signal eff. @ 660 kHz"]
    assert eff["sigma"] == pytest.approx(0.05 / (math.sqrt(2) * 0.01))
    assert eff["significant"]
    assert out["only_b"] == ["mlp"] and out["only_a"] == []
    assert "independent" in out["note"]


def test_compare_directories_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_json(tmp_path / "a" / "summary.json", _summary(0.98, 0.8, 0.01))
    write_json(tmp_path / "b" / "summary.json", _summary(0.98, 0.9, 0.01))
    out = compare(tmp_path / "a", tmp_path / "b")
    text = format_comparison(out)
    assert "signal eff. @ 660 kHz" in text and " *" in text
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "total signal eff. @ 660 kHz" in capsys.readouterr().out
    with pytest.raises(HepselError, match=r"no summary\.json"):
        compare(tmp_path / "a", tmp_path / "missing")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "missing")]) == 1


def test_offline_figures_of_merit() -> None:
    def offline(fom: float, b: float) -> dict[str, Any]:
        wp = {"bkg_eff": b / 1000, "signal_yield": 40.0, "background_yield": b}
        return {
            "bdt": {
                "auc": 0.9,
                "offline": {"working_points": {"0.5": wp}},
                "optimal_cut": {
                    "significance": {"value": fom, "sig_eff": 0.3},
                    "punzi": {"value": fom / 100, "sig_eff": 0.2},
                },
            }
        }

    out = compare_summaries(offline(1.5, 200.0), offline(2.0, 150.0))
    rows = {r["figure"]: r for r in out["models"]["bdt"]}
    assert rows["max S/sqrt(S+B)"]["diff"] == pytest.approx(0.5)
    assert rows["max S/sqrt(S+B)"]["sigma"] is None  # no errors: no significance claimed
    assert rows["max Punzi"]["a"] == pytest.approx(0.015)
    assert rows["signal eff. at max S/sqrt(S+B)"]["b"] == pytest.approx(0.3)
    assert rows["B @ eff_S = 0.5"]["diff"] == pytest.approx(-50.0)
    assert rows["bkg eff. @ eff_S = 0.5"]["a"] == pytest.approx(0.2)
    text = format_comparison(out)
    assert "signal eff. at max S/sqrt(S+B)" in text and "-50.0000" in text
    # a trigger study has none of them
    assert all(
        "S/sqrt" not in r["figure"]
        for r in compare_summaries(_summary(0.9, 0.8, 0.01), _summary(0.9, 0.8, 0.01))["models"][
            "bdt"
        ]
    )


@pytest.mark.parametrize("as_json", [False, True])
def test_closed_pipe_ends_quietly(tmp_path: Path, as_json: bool) -> None:
    """``hepsel compare A B | head -5``: a reader that goes away ends the command quietly (status 141, no traceback)."""
    import subprocess
    import sys

    write_json(tmp_path / "a" / "summary.json", _summary(0.98, 0.8, 0.01))
    write_json(tmp_path / "b" / "summary.json", _summary(0.98, 0.9, 0.01))
    cmd = [
        sys.executable,
        "-m",
        "hepsel.cli",
        "compare",
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        *(["--json"] if as_json else []),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command (still importing) writes anything
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert stderr == ""
    # the same through a shell pipe into head, as users write it
    shell = subprocess.run(
        " ".join(map(str, cmd)) + " | head -1; echo status=${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in shell.stderr and "BrokenPipeError" not in shell.stderr
    assert shell.stdout.splitlines()[-1] in ("status=0", "status=141")
