"""The trigger menu end to end: the menu_line and menu rules, menu.json, the saved selection and apply.

Every figure of ``menu.json`` is recomputed here from the lines' event
tables with plain numpy (the event OR written out), and ``hepsel apply``'s
menu decisions must reproduce the measured menu rate exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot

from hepsel.config.loading import load_config
from hepsel.config.provenance import step_digest

from .conftest import tiny_config, write_config
from .test_workflow import _snakemake

pytestmark = pytest.mark.slow

MENU = {
    "lines": {
        "TwoBody": {"model": "bdt"},
        "TwoBodyPT": {
            "score": "B_PT",
            "cut": "B_MCORR > 3000 and log_fd > 4",
            "preselection": True,
        },
        "OneTrack": {
            "tree": "TrackTuple",
            "cut": "TRACK_PT > 1000 and TRACK_IPCHI2_OWNPV > 9",
            "train": {
                "features": [
                    "log(TRACK_PT)",
                    "log(TRACK_IPCHI2_OWNPV)",
                    "TRACK_CHI2NDOF",
                    "TRACK_GhostProb",
                ],
                "params": {"n_estimators": 30, "max_depth": 2, "learning_rate": 0.3},
            },
        },
    },
    "channel_weights": {1: 1.0, 2: 2.0, 3: 1.0},
    "bandwidth": {"n_steps": 60, "curve_points": 2},
}


def _config(**extra: object) -> dict:
    cfg = tiny_config(
        "data",
        aliases={"log_fd": "log(B_FDCHI2_OWNPV)"},
        menu=MENU,
        apply={"datasets": {"minbias": {"files": ["data/minbias_000.root"]}}},
        **extra,
    )
    cfg["trigger"]["target_rates_khz"] = [1000, 300]
    cfg["explain"] = {"enabled": False}
    cfg["evaluation"]["shap"] = {"enabled": False}
    return cfg


@pytest.fixture(scope="module")
def menu_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("menu")
    analysis = work / "analyses" / "tiny"
    write_config(analysis, _config())
    proc = _snakemake(work, analysis, "all", "apply")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def _tables(results: Path, lines: list[str]) -> list[dict[str, np.ndarray]]:
    return [pq.read_table(results / "menu" / "lines" / f"{n}.parquet").to_pydict() for n in lines]


def test_menu_json_figures_recomputed_from_the_line_tables(menu_run: Path) -> None:
    results = menu_run / "results" / "tiny"
    menu = json.loads((results / "menu.json").read_text())
    lines = list(MENU["lines"])
    assert list(menu["lines"]) == lines
    assert set(menu["rates"]) == {"1000", "300"}
    assert len(menu["curve"]) == 2
    tables = [{k: np.asarray(v) for k, v in t.items()} for t in _tables(results, lines)]
    n_mb = menu["n_minbias_events"]
    gen = pq.read_table(results / "signal_events.parquet").to_pydict()
    g_event = np.asarray(gen["eventNumber"])
    g_mode = np.asarray(gen["mode"])
    g_w = np.asarray(gen["weight"])
    odd_gen = g_event % 2 == 1
    for key, point in menu["rates"].items():
        thr = point["thresholds"]
        fired_mb: set[int] = set()
        line_mb: dict[str, set[int]] = {}
        fired_sig: dict[str, set[int]] = {}
        for name, t in zip(lines, tables, strict=True):
            th = np.inf if thr[name] is None else thr[name]
            ok = (t["score"] >= th) & (t["eventNumber"] % 2 == 1)
            mb = set(t["eventNumber"][ok & (t["signal"] == 0)].tolist())
            line_mb[name] = mb
            fired_mb |= mb
            fired_sig[name] = set(t["eventNumber"][ok & (t["signal"] == 1)].tolist())
        # minimum bias: unit weights; the odd half's processed events are its rows plus half of
        # the events in which no line has a candidate (those are not rows: split_even_odd)
        all_rows = set().union(*(set(t["eventNumber"][t["signal"] == 0].tolist()) for t in tables))
        odd_rows = sum(1 for e in all_rows if e % 2 == 1)
        n_odd = odd_rows + 0.5 * (n_mb - len(all_rows))
        assert menu["n_minbias_rows"] == len(all_rows)
        rate = 30000 * len(fired_mb) / n_odd
        assert point["rate_khz"]["value"] == pytest.approx(rate, rel=1e-9)
        for name in lines:
            incl = 30000 * len(line_mb[name]) / n_odd
            others = set().union(*(line_mb[o] for o in lines if o != name))
            excl = 30000 * len(line_mb[name] - others) / n_odd
            assert point["inclusive_rate_khz"][name]["value"] == pytest.approx(incl, rel=1e-9)
            assert point["exclusive_rate_khz"][name]["value"] == pytest.approx(excl, rel=1e-9)
        ov = np.asarray(point["overlap_rate_khz"]["value"])
        a, b = lines[0], lines[2]
        assert ov[0, 2] == pytest.approx(30000 * len(line_mb[a] & line_mb[b]) / n_odd, rel=1e-9)
        np.testing.assert_allclose(
            np.diag(ov), [point["inclusive_rate_khz"][n]["value"] for n in lines]
        )
        # signal: per channel over every generated event of the odd half (weighted), TOS
        any_sig = set().union(*fired_sig.values())
        effs = {}
        for code in (1, 2, 3):
            m = odd_gen & (g_mode == code)
            passed = np.isin(g_event, list(any_sig)) & m
            effs[code] = g_w[passed].sum() / g_w[m].sum()
            assert point["efficiency"][str(code)]["value"] == pytest.approx(effs[code], rel=1e-9)
        objective = (effs[1] + 2 * effs[2] + effs[3]) / 4
        assert point["objective"] == pytest.approx(objective, rel=1e-9)
        # thresholds are chosen on the even half: there the rate is within the target
        assert point["chosen"]["rate_khz"] <= float(key) * (1 + 1e-9)
        assert point["gain"] == pytest.approx(point["objective"] / point["naive"]["objective"] - 1)


def test_menu_figures_and_report(menu_run: Path) -> None:
    results = menu_run / "results" / "tiny"
    for name in ("menu_efficiency", "menu_overlap", "menu_exclusive"):
        assert (results / "plots" / f"{name}.png").stat().st_size > 10_000
    html = (results / "report.html").read_text()
    assert "Trigger menu" in html
    assert "plots/menu_efficiency.png" in html


def test_apply_reproduces_the_menu_decisions(menu_run: Path) -> None:
    """hepsel apply's pass_<line> and pass_menu, event by event, are the study's (from the line tables)."""
    results = menu_run / "results" / "tiny"
    menu = json.loads((results / "menu.json").read_text())
    lines = list(MENU["lines"])
    tables = [{k: np.asarray(v) for k, v in t.items()} for t in _tables(results, lines)]
    (friend,) = (results / "apply" / "minbias").rglob("*_hepsel.root")
    with uproot.open(friend) as f:
        ev = f["hepsel_events"].arrays(library="np")
        cand = f["hepsel"].arrays(library="np")
    n_fired = 0
    for key, point in menu["rates"].items():
        fired_any = np.zeros(len(ev["eventNumber"]), dtype=bool)
        for name, t in zip(lines, tables, strict=True):
            th = np.inf if point["thresholds"][name] is None else point["thresholds"][name]
            fired = set(t["eventNumber"][(t["signal"] == 0) & (t["score"] >= th)].tolist())
            expected = np.isin(ev["eventNumber"], list(fired))
            np.testing.assert_array_equal(
                ev[f"pass_{name}_{key}kHz"], expected, err_msg=f"{name} {key}"
            )
            fired_any |= expected
        np.testing.assert_array_equal(ev[f"pass_menu_{key}kHz"], fired_any)
        n_fired += int(fired_any.sum())
        # per candidate: its event's decision
        per_cand = np.isin(cand["eventNumber"], ev["eventNumber"][fired_any])
        np.testing.assert_array_equal(cand[f"pass_menu_{key}kHz"], per_cand)
    assert n_fired > 0
    # the one-track line (read from the file's track tree) fires in some of these events
    assert any(ev[f"pass_OneTrack_{k}kHz"].any() for k in menu["rates"])


def test_selection_decisions_carry_the_menu(menu_run: Path) -> None:
    from hepsel import Selection

    results = menu_run / "results" / "tiny"
    sel = Selection.load(results / "selection")
    assert sel.menu is not None
    d = sel.decisions(str(menu_run / "data" / "signal_000.root"))
    assert {"pass_menu_1000kHz", "pass_OneTrack_300kHz", "pass_TwoBody_1000kHz"} <= set(d)
    # a looser rate keeps every event a tighter one keeps
    assert not (d["pass_menu_300kHz"] & ~d["pass_menu_1000kHz"]).any()
    # arrays of the candidate tree cannot give a track line's decision
    arrays = uproot.open(menu_run / "data" / "signal_000.root")["DecayTree"].arrays(
        [*sel.branches, "runNumber", "eventNumber"], library="np"
    )
    with pytest.raises(ValueError, match="OneTrack"):
        sel.decisions(arrays)
    assert "pass_menu_1000kHz" not in sel.decisions(arrays, menu=False)


def test_editing_the_menu_reruns_only_the_menu(menu_run: Path) -> None:
    analysis = menu_run / "analyses" / "tiny"
    cfg = _config()
    cfg["menu"] = {**MENU, "channel_weights": {1: 1.0, 2: 1.0, 3: 1.0}}
    write_config(analysis, cfg)
    proc = _snakemake(menu_run, analysis, "-n", "all", "apply")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = {
        line.split()[0]
        for line in proc.stdout.splitlines()
        if line.split()[:1] and line.split()[-1:] and line.split()[-1].isdigit()
    }
    assert "menu" in jobs
    assert not {"train", "evaluate", "menu_line", "prepare", "gather"} & jobs
    # a line's cut: that line's job only
    before = load_config(analysis)
    cfg["menu"]["lines"] = {
        **MENU["lines"],
        "TwoBodyPT": {**MENU["lines"]["TwoBodyPT"], "cut": "B_MCORR > 3500"},
    }
    write_config(analysis, cfg)
    after = load_config(analysis)
    for line in ("TwoBody", "OneTrack"):
        assert step_digest(before, "menu_line", model=line) == step_digest(
            after, "menu_line", model=line
        )
    assert step_digest(before, "menu_line", model="TwoBodyPT") != step_digest(
        after, "menu_line", model="TwoBodyPT"
    )
    assert step_digest(before, "evaluate") == step_digest(after, "evaluate")
    write_config(analysis, _config())


def test_export_describes_the_menu(menu_run: Path, tmp_path: Path) -> None:
    """The ONNX export's side file carries every line and its threshold at every rate."""
    from hepsel.deploy.export import export_onnx

    results = menu_run / "results" / "tiny"
    menu = json.loads((results / "menu.json").read_text())
    export_onnx(results / "selection", tmp_path / "onnx", models=["bdt"])
    side = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert set(side["menu"]["lines"]) == set(MENU["lines"])
    for key, point in menu["rates"].items():
        assert side["menu"]["thresholds"][key] == point["thresholds"]
