"""Offline selection studies: per-sample branch maps, no trigger block, several backgrounds."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot

from hepsel import workflow
from hepsel.config.loading import load_config
from hepsel.io.storage import read_table
from hepsel.prep.dataset import load_dataset

from .conftest import write_config


def write_jagged_signal(path: Path, n: int, seed: int) -> ak.Array:
    """A NanoAOD-like tree: one row per event, ``Muon_pt`` / ``Muon_eta`` collections sorted by pT."""
    rng = np.random.default_rng(seed)
    counts = 1 + rng.poisson(1.0, n)
    pt = ak.unflatten((5.0 + rng.exponential(20.0, int(counts.sum()))).astype(np.float32), counts)
    pt = ak.sort(pt, axis=1, ascending=False)
    eta = ak.unflatten(rng.uniform(-2.4, 2.4, int(counts.sum())).astype(np.float32), counts)
    muons = ak.zip({"pt": pt, "eta": eta})
    with uproot.recreate(path) as f:
        f.mktree("Events", {"run": np.int32, "event": np.int64, "Muon": muons.type.content})
        f["Events"].extend(
            {"run": np.ones(n, np.int32), "event": np.arange(n, dtype=np.int64), "Muon": muons}
        )
    return muons


def write_flat_background(path: Path, n: int, seed: int, scale: float) -> dict[str, np.ndarray]:
    """A flat tree naming the leading muon ``mu1_pt``, ``mu1_eta``, with a per-event weight."""
    rng = np.random.default_rng(seed)
    cols = {
        "run": np.full(n, 2, np.int32),
        "event": np.arange(n, dtype=np.int64) + 10**6,
        "mu1_pt": (5.0 + rng.exponential(scale, n)).astype(np.float32),
        "mu1_eta": rng.uniform(-2.4, 2.4, n).astype(np.float32),
        "w": rng.uniform(0.5, 1.5, n).astype(np.float32),
    }
    with uproot.recreate(path) as f:
        f["tree"] = cols
    return cols


def offline_config(data: Path, *, trigger: bool = False) -> dict:
    cfg: dict = {
        "name": "offline",
        "seed": 4,
        "samples": {
            "signal": {
                "files": [str(data / "signal.root")],
                "tree": "Events",
                "label": 1,
                "aliases": {
                    "lead_pt_in": "leading(Muon_pt, 0, default=0)",
                    "lead_eta_in": "leading(Muon_eta, 0, default=0)",
                },
                "normalisation": {"cross_section_pb": 2.0, "luminosity_pb": 300.0},
            },
            "bkg_a": {
                "files": [str(data / "bkg_a.root")],
                "tree": "tree",
                "label": 0,
                "weight": "w",
                "aliases": {"lead_pt_in": "mu1_pt", "lead_eta_in": "mu1_eta"},
                "normalisation": {"cross_section_pb": 50.0, "luminosity_pb": 300.0},
            },
            "bkg_b": {
                "files": [str(data / "bkg_b.root")],
                "tree": "tree",
                "label": 0,
                "weight": "w",
                "aliases": {"lead_pt_in": "mu1_pt", "lead_eta_in": "mu1_eta"},
                "normalisation": {"scale": 0.25},
            },
        },
        "reading": {"run_branch": "run", "event_branch": "event", "entries_are_events": True},
        "preselection": [{"name": "leading muon pT", "cut": "lead_pt_in > 8"}],
        "features": [
            {"name": "lead_pt", "expr": "lead_pt_in"},
            {"name": "lead_eta", "expr": "abs(lead_eta_in)"},
        ],
        "folds": {"k": 2},
        "models": {
            "bdt": {"type": "bdt", "params": {"n_estimators": 20, "max_depth": 2, "n_jobs": 1}}
        },
        "evaluation": {"bootstrap": 0},
    }
    if trigger:
        cfg["samples"]["bkg_a"]["n_events"] = 1000
        cfg["trigger"] = {
            "input_rate_khz": 1000,
            "target_rates_khz": [100],
            "minbias_sample": "bkg_a",
        }
    return cfg


def _write_inputs(data: Path) -> tuple[ak.Array, dict[str, np.ndarray], dict[str, np.ndarray]]:
    data.mkdir()
    sig = write_jagged_signal(data / "signal.root", 800, seed=1)
    a = write_flat_background(data / "bkg_a.root", 900, seed=2, scale=6.0)
    b = write_flat_background(data / "bkg_b.root", 700, seed=3, scale=4.0)
    return sig, a, b


def _best_significance(
    score: np.ndarray, y: np.ndarray, w: np.ndarray, min_background: int
) -> float:
    """Brute force: the largest S/sqrt(S+B) over every cut keeping ``min_background`` simulated background."""
    best = -np.inf
    for thr in np.unique(score):
        passed = score >= thr
        if np.sum(passed & (y == 0)) < min_background:
            continue
        s_, b_ = w[passed & (y == 1)].sum(), w[passed & (y == 0)].sum()
        best = max(best, s_ / np.sqrt(s_ + b_))
    return best


def test_per_sample_aliases_feed_the_same_features(tmp_path: Path) -> None:
    sig, a, b = _write_inputs(tmp_path / "data")
    cfg = load_config(
        write_config(
            tmp_path / "analyses" / "offline", offline_config(tmp_path / "data", trigger=True)
        ),
        base_dir=tmp_path,
    )
    for s in sorted(cfg.samples):
        workflow.prepare(cfg, s, 0, progress=False)
    workflow.gather(cfg)
    ds = load_dataset(workflow.Layout.of(cfg).dataset, cfg)
    c = ds.columns
    names = sorted(cfg.samples)
    lead_pt = ak.to_numpy(sig.pt[:, 0])
    lead_eta = ak.to_numpy(sig.eta[:, 0])
    keep = lead_pt > 8
    m = c["sample"] == names.index("signal")
    order = np.argsort(c["eventNumber"][m])
    np.testing.assert_array_equal(c["eventNumber"][m][order], np.flatnonzero(keep))
    np.testing.assert_allclose(c["lead_pt"][m][order], lead_pt[keep], rtol=1e-6)
    np.testing.assert_allclose(c["lead_eta"][m][order], np.abs(lead_eta[keep]), rtol=1e-6)
    for name, cols in (("bkg_a", a), ("bkg_b", b)):
        m = c["sample"] == names.index(name)
        order = np.argsort(c["eventNumber"][m])
        keep = cols["mu1_pt"] > 8
        np.testing.assert_allclose(c["lead_pt"][m][order], cols["mu1_pt"][keep], rtol=1e-6)
        np.testing.assert_allclose(
            c["lead_eta"][m][order], np.abs(cols["mu1_eta"][keep]), rtol=1e-6
        )


def _run_offline(
    tmp_path: Path, edit: Callable[[dict], None] | None = None
) -> tuple[Any, dict, tuple[ak.Array, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    from hepsel.io.storage import read_json

    inputs = _write_inputs(tmp_path / "data")
    raw = offline_config(tmp_path / "data")
    if edit is not None:
        edit(raw)
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", raw), base_dir=tmp_path)
    assert cfg.trigger is None
    for s in sorted(cfg.samples):
        workflow.prepare(cfg, s, 0, progress=False)
    workflow.gather(cfg)
    for k in range(cfg.folds.k):
        workflow.train(cfg, "bdt", k, progress=False)
    workflow.evaluate(cfg, progress=False)
    return cfg, read_json(workflow.Layout.of(cfg).summary), inputs


def test_offline_study_reports_expected_yields(tmp_path: Path) -> None:
    cfg, summary, (sig, a, b) = _run_offline(tmp_path)
    s = summary["bdt"]
    assert "eff_at_rate" not in s
    off = s["offline"]
    # hand-computed: cross-section x luminosity / sum of all weights, times the preselected weights
    lead = ak.to_numpy(sig.pt[:, 0])
    exp_sig = 2.0 * 300.0 / len(lead) * np.sum(lead > 8)
    exp_a = (
        50.0
        * 300.0
        / a["w"].astype(np.float64).sum()
        * a["w"][a["mu1_pt"] > 8].astype(np.float64).sum()
    )
    exp_b = 0.25 * b["w"][b["mu1_pt"] > 8].astype(np.float64).sum()
    np.testing.assert_allclose(off["yields"]["signal"]["yield"], exp_sig, rtol=1e-9)
    np.testing.assert_allclose(off["yields"]["bkg_a"]["yield"], exp_a, rtol=1e-6)
    np.testing.assert_allclose(off["yields"]["bkg_b"]["yield"], exp_b, rtol=1e-6)
    np.testing.assert_allclose(off["signal_yield"], exp_sig, rtol=1e-9)
    np.testing.assert_allclose(off["background_yield"], exp_a + exp_b, rtol=1e-6)
    # working points at fixed signal efficiency, and the optimal cut, from the stored scores
    with uproot.open(workflow.Layout.of(cfg).scores) as f:
        t = f["scores"].arrays(library="np")
    score, w, y = t["score_bdt"], t["weight"].astype(np.float64), t["label"]
    for key, wp in off["working_points"].items():
        passed = score >= wp["threshold"]
        # the working point is cut on the raw output; the probability cut selects the same candidates here
        np.testing.assert_array_equal(passed, t["raw_bdt"] >= wp["threshold_raw"])
        np.testing.assert_allclose(wp["signal_yield"], w[passed & (y == 1)].sum(), rtol=1e-6)
        np.testing.assert_allclose(wp["background_yield"], w[passed & (y == 0)].sum(), rtol=1e-6)
        assert wp["sig_eff"] >= float(key) - 1e-9
        np.testing.assert_allclose(
            wp["yields"]["bkg_a"] + wp["yields"]["bkg_b"], wp["background_yield"], rtol=1e-9
        )
    oc = s["optimal_cut"]
    np.testing.assert_allclose(oc["signal_yield"], exp_sig, rtol=1e-9)
    np.testing.assert_allclose(oc["background_yield"], exp_a + exp_b, rtol=1e-6)
    # brute force: S/sqrt(S+B) at every cut keeping enough simulated background
    best = _best_significance(score, y, w, cfg.evaluation.optimal_cut.min_background_candidates)
    np.testing.assert_allclose(oc["significance"]["value"], best, rtol=1e-5)
    # the report, plots and headline render without rate figures
    written = workflow.make_plots(cfg)
    drawn = {p: p.read_bytes() for p in written if p.suffix == ".png"}
    # drawn side by side in two processes: the same files, pixel for pixel
    assert workflow.make_plots(cfg, jobs=2) == written
    assert {p: p.read_bytes() for p in drawn} == drawn
    html = workflow.report(cfg).read_text()
    assert "Offline selection study" in html
    assert (
        "Expected yields after the preselection" in html
        and "B: bkg_a" in html
        and "B: bkg_b" in html
    )
    assert not (workflow.Layout.of(cfg).plots / "eff_vs_rate.png").exists()
    text = workflow.headline(cfg)
    assert text is not None
    assert "max S/sqrt(S+B)" in text and f"{oc['significance']['value']:.3g}" in text


def _text(page: str) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))


def _section(page: str, start: str, end: str) -> str:
    """The text between the headings with ids ``start`` and ``end``."""
    return _text(page[page.index(f"<h2 id='{start}'>") : page.index(f"<h2 id='{end}'>")])


def test_offline_report_compare_and_warnings_show_figures_of_merit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hepsel.cli import main
    from hepsel.report.compare import compare_summaries

    def edit(raw: dict) -> None:
        # every working point keeps fewer simulated background candidates than this: all flagged
        raw["evaluation"]["warnings"] = {"min_minbias_events": 10**6}

    cfg, summary, _ = _run_offline(tmp_path, edit)
    workflow.make_plots(cfg, jobs=2)
    # no explanation figures here: two jobs draw nothing side by side and change nothing
    page = workflow.report(cfg, jobs=2).read_text()
    text = _text(page)
    # nothing of a trigger study
    for absent in (
        "fraction of the ?",
        "None kHz",
        "kHz",
        "Working points (event level)",
        "minimum-bias",
        "minimum bias",
        "target rate",
        "TOS",
    ):
        assert absent not in text, absent
    oc = summary["bdt"]["optimal_cut"]["significance"]
    value = f"{oc['value']:.4g}"
    # the optimum's S/sqrt(S+B), with S and B there, in the headline and in the optimal-cut table
    headline = _section(page, "headline", "warnings")
    assert (
        value in headline
        and f"{oc['signal_yield']:.4g}" in headline
        and f"{oc['background_yield']:.4g}" in headline
    )
    np.testing.assert_allclose(
        oc["signal_yield"] / np.sqrt(oc["signal_yield"] + oc["background_yield"]),
        oc["value"],
        rtol=1e-9,
    )
    optimal = _text(page[page.index("<h3>Optimal cuts") : page.index("id='cutflow'")])
    assert value in optimal
    # each working point's S/sqrt(S+B) in its table and, as the background there is unresolved, in the warnings
    wps = _text(
        page[
            page.index("<h3>Working points at fixed signal efficiency") : page.index(
                "<h3>Optimal cuts"
            )
        ]
    )
    warnings = _section(page, "warnings", "global")
    for key, wp in summary["bdt"]["offline"]["working_points"].items():
        fom = wp["signal_yield"] / np.sqrt(wp["signal_yield"] + wp["background_yield"])
        assert f"{fom:.4g}" in wps
        assert (
            f"eff_S = {key} working point keeps {wp['n_background']} simulated background candidates"
            in warnings
        )
        assert f"S/sqrt(S+B) = {fom:.4g}" in warnings
    # hepsel compare: the figures of merit of both studies
    rows = {r["figure"]: r for r in compare_summaries(summary, summary)["models"]["bdt"]}
    assert rows["max S/sqrt(S+B)"]["a"] == oc["value"] and rows["max S/sqrt(S+B)"]["diff"] == 0
    wp = summary["bdt"]["offline"]["working_points"]["0.8"]
    assert rows["B @ eff_S = 0.8"]["b"] == wp["background_yield"]
    out = workflow.Layout.of(cfg).root
    assert main(["compare", str(out), str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "max S/sqrt(S+B)" in printed
        and f"{oc['value']:.4f}" in printed
        and "S @ eff_S = 0.5" in printed
    )
    # the headline printed at the end of a run: the optimum and S, B there
    head = workflow.headline(cfg)
    assert head is not None
    row = head.splitlines()[1].split()
    assert row[0] == "bdt" and row[-4:] == [
        f"{oc['value']:.3g}",
        f"{oc['sig_eff']:.3f}",
        f"{oc['signal_yield']:.4g}",
        f"{oc['background_yield']:.4g}",
    ]


def write_repeated_background(path: Path, n_events: int, seed: int) -> dict[str, np.ndarray]:
    """A flat tree with 1-4 entries (candidates) per (run, event), contiguous, sharing the event's weight."""
    rng = np.random.default_rng(seed)
    per_event = rng.integers(1, 5, n_events)
    evt = np.repeat(np.arange(n_events, dtype=np.int64) * 7 + 3, per_event)  # spread over folds
    n = len(evt)
    cols = {
        "run": np.full(n, 5, np.int32),
        "event": evt,
        "mu1_pt": (5.0 + rng.exponential(5.0, n)).astype(np.float32),
        "mu1_eta": rng.uniform(-2.4, 2.4, n).astype(np.float32),
        "w": np.repeat(rng.uniform(0.5, 1.5, n_events), per_event).astype(np.float32),
    }
    with uproot.recreate(path) as f:
        f["tree"] = cols
    return cols


def _repeated_config(tmp_path: Path, **bkg_b: Any) -> dict:
    """Signal events numbered by entry (no event branches read), bkg_b with several entries per event."""
    _write_inputs(tmp_path / "data")
    write_repeated_background(tmp_path / "data" / "bkg_b.root", 400, seed=9)
    raw = offline_config(tmp_path / "data")
    raw["reading"] = {"run_branch": None, "event_branch": None, "entries_are_events": True}
    raw["samples"]["bkg_b"].update(bkg_b)
    return raw


def test_per_sample_event_branches_keep_an_event_in_one_fold(tmp_path: Path) -> None:
    raw = _repeated_config(
        tmp_path, run_branch="run", event_branch="event", entries_are_events=False
    )
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", raw), base_dir=tmp_path)
    assert (
        cfg.event_ids("bkg_b").event_branch == "event"
        and cfg.event_ids("signal").event_branch is None
    )
    for s in sorted(cfg.samples):
        workflow.prepare(cfg, s, 0, progress=False)
    info = workflow.gather(cfg)
    ds = load_dataset(workflow.Layout.of(cfg).dataset, cfg)
    c = ds.columns
    m = ds.sample_mask("bkg_b")
    cols = uproot.open(tmp_path / "data" / "bkg_b.root")["tree"].arrays(library="np")
    keep = cols["mu1_pt"] > 8
    # the file's event numbers, every copy of an event in the event's fold
    np.testing.assert_array_equal(np.sort(c["eventNumber"][m]), np.sort(cols["event"][keep]))
    assert set(c["runNumber"][m]) == {5}
    for evt in np.unique(c["eventNumber"][m]):
        folds = c["fold"][m][c["eventNumber"][m] == evt]
        assert len(set(folds)) == 1 and folds[0] == evt % cfg.folds.k
    assert (
        len(np.unique(c["eventNumber"][m])) < m.sum()
    )  # the check bites: some events have several candidates
    # events counted once: the normalisation's event count is the file's number of (run, event)
    assert info["bkg_b"]["n_events"] == len(np.unique(cols["event"]))
    # the samples without event branches keep entry numbers: each entry its own event
    sig = ds.sample_mask("signal")
    assert len(np.unique(c["eventNumber"][sig])) == sig.sum()


def test_entries_declared_events_must_not_repeat_an_event(tmp_path: Path) -> None:
    from hepsel.exceptions import ConfigError

    raw = _repeated_config(
        tmp_path, run_branch="run", event_branch="event", entries_are_events=True
    )
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", raw), base_dir=tmp_path)
    cols = uproot.open(tmp_path / "data" / "bkg_b.root")["tree"].arrays(library="np")
    n_repeats = len(cols["event"]) - len(np.unique(cols["event"]))
    assert n_repeats > 0
    out = workflow.Layout.of(cfg).prepared("bkg_b", 0)
    with pytest.raises(
        ConfigError,
        match=(
            rf"bkg_b\.root \(sample 'bkg_b'\): samples\.bkg_b\.entries_are_events is true, but {n_repeats} of its "
            rf"{len(cols['event'])} entries repeat the \(run, event\)"
        ),
    ):
        workflow.prepare(cfg, "bkg_b", 0, progress=False)
    assert not out.exists() and not out.with_suffix(".json").exists()  # nothing half-written
    # the same file with its entries grouped into events is accepted
    raw["samples"]["bkg_b"]["entries_are_events"] = False
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", raw), base_dir=tmp_path)
    workflow.prepare(cfg, "bkg_b", 0, progress=False)


def test_per_sample_event_keys_are_validated(tmp_path: Path) -> None:
    from hepsel.exceptions import ConfigError

    raw = offline_config(tmp_path / "data")
    raw["samples"]["bkg_b"]["event_branch"] = None  # entries_are_events (global) is true: fine
    load_config(write_config(tmp_path / "a", raw), base_dir=tmp_path)
    raw["reading"]["entries_are_events"] = False
    with pytest.raises(
        ConfigError,
        match=r"samples\.bkg_b\.event_branch: null numbers the events of sample 'bkg_b'.*reading\.entries_are_events: true",
    ):
        load_config(write_config(tmp_path / "b", raw), base_dir=tmp_path)
    raw["samples"]["bkg_b"]["entries_are_events"] = True
    load_config(write_config(tmp_path / "c", raw), base_dir=tmp_path)


def _event_arrays(
    t: dict[str, np.ndarray], model: str
) -> dict[tuple[int, int, int], tuple[float, float, int]]:
    """Brute force: (sample, run, event) -> (best score of its truth candidates, its weight, label)."""
    events: dict[tuple[int, int, int], tuple[float, float, int]] = {}
    for i in np.flatnonzero(t["truth"] == 1):
        key = (int(t["sample"][i]), int(t["runNumber"][i]), int(t["eventNumber"][i]))
        s = float(t[f"score_{model}"][i])
        if key not in events or s > events[key][0]:
            events[key] = (s, float(t["weight"][i]), int(t["label"][i]))
    return events


def test_offline_yields_in_events_equal_brute_force(tmp_path: Path) -> None:
    def edit(raw: dict) -> None:
        # bkg_b: several candidates per event
        write_repeated_background(tmp_path / "data" / "bkg_b.root", 600, seed=11)
        raw["evaluation"]["yields"] = "events"
        raw["samples"]["bkg_b"].update(
            run_branch="run", event_branch="event", entries_are_events=False
        )

    cfg, summary, _ = _run_offline(tmp_path, edit)
    off = summary["bdt"]["offline"]
    assert off["unit"] == "events"
    with uproot.open(workflow.Layout.of(cfg).scores) as f:
        t = f["scores"].arrays(library="np")
    events = _event_arrays(t, "bdt")
    score = np.array([v[0] for v in events.values()])
    w = np.array([v[1] for v in events.values()])
    y = np.array([v[2] for v in events.values()])
    sample = np.array([k[0] for k in events])
    names = sorted(cfg.samples)
    # yields: each event once
    for name in names:
        sel = sample == names.index(name)
        np.testing.assert_allclose(off["yields"][name]["yield"], w[sel].sum(), rtol=1e-9)
        assert off["yields"][name]["n_events"] == sel.sum()
    b_cands = t["weight"][(t["truth"] == 1) & (t["sample"] == names.index("bkg_b"))].sum()
    assert (
        off["yields"]["bkg_b"]["yield"] < 0.8 * b_cands
    )  # candidates would count repeated events several times
    np.testing.assert_allclose(off["signal_yield"], w[y == 1].sum(), rtol=1e-9)
    np.testing.assert_allclose(off["background_yield"], w[y == 0].sum(), rtol=1e-9)
    # working points: an event passes when its best candidate does
    for key, wp in off["working_points"].items():
        passed = score >= wp["threshold"]
        np.testing.assert_allclose(wp["signal_yield"], w[passed & (y == 1)].sum(), rtol=1e-9)
        np.testing.assert_allclose(wp["background_yield"], w[passed & (y == 0)].sum(), rtol=1e-9)
        assert wp["n_background"] == np.sum(passed & (y == 0))
        assert wp["sig_eff"] >= float(key) - 1e-9
        for name in names:
            np.testing.assert_allclose(
                wp["yields"][name],
                w[passed & (sample == names.index(name))].sum(),
                rtol=1e-9,
                atol=1e-12,
            )
        # the highest such threshold: one step tighter loses the target efficiency
        tighter = score > wp["threshold"]
        assert w[tighter & (y == 1)].sum() < float(key) * w[y == 1].sum()
    # the optimal cut on events
    oc = summary["bdt"]["optimal_cut"]["significance"]
    best = _best_significance(score, y, w, cfg.evaluation.optimal_cut.min_background_candidates)
    np.testing.assert_allclose(oc["value"], best, rtol=1e-6)
    np.testing.assert_allclose(
        summary["bdt"]["optimal_cut"]["background_yield"], w[y == 0].sum(), rtol=1e-9
    )
    # the report says what is counted
    workflow.make_plots(cfg)
    text = _text(workflow.report(cfg).read_text())
    assert "Expected yields after the preselection (events)" in text
    assert (
        f"fewer than {cfg.evaluation.optimal_cut.min_background_candidates} simulated background events are not considered"
        in text
    )


def test_event_yields_need_an_offline_study(tmp_path: Path) -> None:
    from hepsel.exceptions import ConfigError

    raw = offline_config(tmp_path / "data", trigger=True)
    raw["evaluation"]["yields"] = "events"
    with pytest.raises(
        ConfigError, match=r"evaluation\.yields: counts the expected yields of offline studies"
    ):
        load_config(write_config(tmp_path / "a", raw), base_dir=tmp_path)


def test_a_sample_listing_one_file_twice_is_refused(tmp_path: Path) -> None:
    from hepsel.exceptions import ConfigError

    raw = _repeated_config(tmp_path)
    # entries are events in the signal file, numbered by its event branch; listed twice, each event repeats
    raw["samples"]["signal"].update(run_branch="run", event_branch="event")
    raw["samples"]["signal"]["files"] *= 2
    raw["samples"]["bkg_b"].update(run_branch="run", event_branch="event", entries_are_events=False)
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", raw), base_dir=tmp_path)
    for s in sorted(cfg.samples):
        for i in range(len(cfg.sample_files(s))):
            workflow.prepare(cfg, s, i, progress=False)
    n_pre = len(read_table(workflow.Layout.of(cfg).prepared("signal", 0))["eventNumber"])
    with pytest.raises(
        ConfigError,
        match=(
            rf"samples\.signal: reading\.entries_are_events is true, but {n_pre} preselected entries repeat a \(run, "
            r"event\) of another of its files \(first: run 1, event \d+ in .*signal\.root and .*signal\.root\)"
        ),
    ):
        workflow.gather(cfg)
    assert not workflow.Layout.of(cfg).dataset.exists()


def test_warnings_give_the_offline_figures_of_merit() -> None:
    from hepsel.config.schema import WarningsConfig
    from hepsel.report.diagnostics import diagnose

    wp = {"threshold": 0.8, "signal_yield": 30.0, "background_yield": 70.0, "n_background": 9}
    oc = {
        "min_background_candidates": 10,
        "significance": {
            "threshold": 0.9,
            "value": 2.5,
            "sig_eff": 0.2,
            "bkg_eff": 0.01,
            "signal_yield": 20.0,
            "background_yield": 44.0,
        },
        "punzi": {"threshold": 0.9, "value": 0.01, "sig_eff": 0.2, "bkg_eff": 0.01},
        "curve": {"significance": [1.0, 2.5, 3.1], "punzi": [0.005, 0.01]},
    }
    summary = {
        "bdt": {"offline": {"unit": "events", "working_points": {"0.5": wp}}, "optimal_cut": oc}
    }
    messages = [
        w["message"] for w in diagnose(summary, thresholds=WarningsConfig(min_minbias_events=10))
    ]
    assert (
        "the eff_S = 0.5 working point keeps 9 simulated background events (< 10): B = 70 and S/sqrt(S+B) = 3 "
        "there are not resolved by the background samples" in messages
    )
    assert any(
        m.startswith(
            "the S/sqrt(S+B) optimum 2.5 (threshold 0.9000, S = 20, B = 44) sits at the limit of "
            "10 simulated background events: a tighter cut reaches 3.1"
        )
        for m in messages
    )
    assert not any(
        m.startswith("the Punzi optimum") for m in messages
    )  # its curve peaks at the optimum
    # as many background events as required: resolved
    wp["n_background"] = 10
    assert not any(
        "working point keeps" in w["message"]
        for w in diagnose(summary, thresholds=WarningsConfig(min_minbias_events=10))
    )
