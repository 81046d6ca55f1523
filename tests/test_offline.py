"""Offline selection studies: per-sample branch maps, no trigger block, several backgrounds."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from hepsel import workflow
from hepsel.config import load_config
from hepsel.dataset import load_dataset

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
        f["Events"].extend({"run": np.ones(n, np.int32), "event": np.arange(n, dtype=np.int64), "Muon": muons})
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
                "files": [str(data / "signal.root")], "tree": "Events", "label": 1,
                "aliases": {"lead_pt_in": "leading(Muon_pt, 0, default=0)", "lead_eta_in": "leading(Muon_eta, 0, default=0)"},
                "normalisation": {"cross_section_pb": 2.0, "luminosity_pb": 300.0},
            },
            "bkg_a": {
                "files": [str(data / "bkg_a.root")], "tree": "tree", "label": 0, "weight": "w",
                "aliases": {"lead_pt_in": "mu1_pt", "lead_eta_in": "mu1_eta"},
                "normalisation": {"cross_section_pb": 50.0, "luminosity_pb": 300.0},
            },
            "bkg_b": {
                "files": [str(data / "bkg_b.root")], "tree": "tree", "label": 0, "weight": "w",
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
        "models": {"bdt": {"type": "bdt", "params": {"n_estimators": 20, "max_depth": 2, "n_jobs": 1}}},
        "evaluation": {"bootstrap": 0},
    }
    if trigger:
        cfg["samples"]["bkg_a"]["n_events"] = 1000
        cfg["trigger"] = {"input_rate_khz": 1000, "target_rates_khz": [100], "minbias_sample": "bkg_a"}
    return cfg


def _write_inputs(data: Path) -> tuple[ak.Array, dict[str, np.ndarray], dict[str, np.ndarray]]:
    data.mkdir()
    sig = write_jagged_signal(data / "signal.root", 800, seed=1)
    a = write_flat_background(data / "bkg_a.root", 900, seed=2, scale=6.0)
    b = write_flat_background(data / "bkg_b.root", 700, seed=3, scale=4.0)
    return sig, a, b


def test_per_sample_aliases_feed_the_same_features(tmp_path: Path) -> None:
    sig, a, b = _write_inputs(tmp_path / "data")
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", offline_config(tmp_path / "data", trigger=True)), base_dir=tmp_path)
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
        np.testing.assert_allclose(c["lead_eta"][m][order], np.abs(cols["mu1_eta"][keep]), rtol=1e-6)


def _run_offline(tmp_path: Path) -> tuple[object, dict, tuple[ak.Array, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    from hepsel.storage import read_json

    inputs = _write_inputs(tmp_path / "data")
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", offline_config(tmp_path / "data")), base_dir=tmp_path)
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
    exp_a = 50.0 * 300.0 / a["w"].astype(np.float64).sum() * a["w"][a["mu1_pt"] > 8].astype(np.float64).sum()
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
        np.testing.assert_allclose(wp["yields"]["bkg_a"] + wp["yields"]["bkg_b"], wp["background_yield"], rtol=1e-9)
    oc = s["optimal_cut"]
    np.testing.assert_allclose(oc["signal_yield"], exp_sig, rtol=1e-9)
    np.testing.assert_allclose(oc["background_yield"], exp_a + exp_b, rtol=1e-6)
    # brute force: S/sqrt(S+B) at every cut keeping enough simulated background
    best = -np.inf
    for thr in np.unique(score):
        passed = score >= thr
        if np.sum(passed & (y == 0)) < cfg.evaluation.optimal_cut.min_background_candidates:
            continue
        s_, b_ = w[passed & (y == 1)].sum(), w[passed & (y == 0)].sum()
        best = max(best, s_ / np.sqrt(s_ + b_))
    np.testing.assert_allclose(oc["significance"]["value"], best, rtol=1e-5)
    # the report, plots and headline render without rate figures
    workflow.make_plots(cfg)
    html = workflow.report(cfg).read_text()
    assert "Offline selection study" in html
    assert "Expected yields after the preselection" in html and "B: bkg_a" in html and "B: bkg_b" in html
    assert not (workflow.Layout.of(cfg).plots / "eff_vs_rate.png").exists()
    text = workflow.headline(cfg)
    assert text is not None
    assert "max S/sqrt(S+B)" in text and f"{oc['significance']['value']:.3g}" in text
