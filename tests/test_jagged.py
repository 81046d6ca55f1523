"""NanoAOD-style jagged collections through the whole workflow, configured without Python."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from .conftest import write_config

pytestmark = pytest.mark.slow


def _objects(rng: np.random.Generator, counts: np.ndarray, pt_scale: float) -> ak.Array:
    n = int(counts.sum())
    flat = {
        "pt": (20.0 + rng.exponential(pt_scale, n)).astype(np.float32),
        "eta": rng.uniform(-2.4, 2.4, n).astype(np.float32),
        "phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        "mass": np.full(n, 0.1057, dtype=np.float32),
    }
    # NanoAOD collections are sorted by decreasing pT
    arr = ak.unflatten(ak.zip(flat), counts)
    return arr[ak.argsort(arr.pt, axis=1, ascending=False)]


def write_nanoaod(path: Path, n: int, *, ttbar: bool, seed: int) -> None:
    """A small NanoAOD-like file: jagged Jet_* and Muon_* collections, one row per event."""
    rng = np.random.default_rng(seed)
    n_jet = rng.poisson(6.0 if ttbar else 1.5, n)
    n_mu = rng.poisson(0.8, n) if ttbar else 2 + rng.poisson(0.2, n)
    jets = _objects(rng, n_jet, 60.0 if ttbar else 25.0)
    muons = _objects(rng, n_mu, 30.0)
    with uproot.recreate(path) as f:
        f.mktree(
            "Events",
            {
                "run": np.int32,
                "event": np.int64,
                "MET_pt": np.float32,
                "Jet": jets.type.content,
                "Muon": muons.type.content,
            },
        )
        f["Events"].extend(
            {
                "run": np.ones(n, dtype=np.int32),
                "event": np.arange(n, dtype=np.int64) + (0 if ttbar else 10**6),
                "MET_pt": rng.exponential(60.0 if ttbar else 15.0, n).astype(np.float32),
                "Jet": jets,
                "Muon": muons,
            }
        )


FEATURES_PY = '''
import awkward as ak
import numpy as np


def jet_ht_fraction(arrays):
    """Scalar sum of the two leading jet pT over the total HT (analyst code, reused from Python)."""
    pt = arrays["Jet_pt"]
    lead = ak.sum(pt[:, :2], axis=1)
    return np.asarray(ak.fill_none(lead / ak.where(ak.sum(pt, axis=1) > 0, ak.sum(pt, axis=1), 1.0), 0.0))
'''


def test_nanoaod_jagged_workflow(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_nanoaod(data / "ttbar.root", 1500, ttbar=True, seed=1)
    write_nanoaod(data / "dy.root", 3000, ttbar=False, seed=2)
    muons = "p4_ptetaphim(Muon_pt, Muon_eta, Muon_phi, Muon_mass)"
    cfg = {
        "name": "nano",
        "samples": {
            "ttbar": {"files": [str(data / "ttbar.root")], "tree": "Events", "label": 1},
            "dy": {
                "files": [str(data / "dy.root")],
                "tree": "Events",
                "events_tree": "Events",
                "label": 0,
            },
        },
        "reading": {"run_branch": "run", "event_branch": "event", "step_size": 500},
        "preselection": [{"name": ">= 1 jet above 30 GeV", "cut": "count(Jet_pt > 30) >= 1"}],
        "aliases": {"mu": muons},
        "features": [
            {"name": "n_jets_30", "expr": "count(Jet_pt > 30)"},
            {"name": "ht", "expr": "sum(Jet_pt[Jet_pt > 30])"},
            {"name": "lead_mu_pt", "expr": "leading(Muon_pt, 0, default=0)"},
            {
                "name": "mumu_mass",
                "expr": "where(count(Muon_pt) >= 2, inv_mass(leading(mu, 0), leading(mu, 1)), -1)",
            },
            {"name": "met", "expr": "MET_pt"},
            {
                "name": "ht_frac",
                "function": "lib/features.py:jet_ht_fraction",
                "inputs": ["Jet_pt"],
            },
        ],
        "folds": {"k": 2},
        "models": {
            "bdt": {"type": "bdt", "params": {"n_estimators": 30, "max_depth": 3, "n_jobs": 1}}
        },
        "trigger": {"input_rate_khz": 1000, "target_rates_khz": [100]},
        "evaluation": {"bootstrap": 5, "shap": {"events": 200}},
    }
    analysis = tmp_path / "analyses" / "nano"
    write_config(analysis, cfg)
    (analysis / "lib").mkdir()
    (analysis / "lib" / "features.py").write_text(
        FEATURES_PY
    )  # nested modules travel with the selection
    proc = subprocess.run(
        [sys.executable, "-m", "hepsel.cli", "run", "--config", str(analysis), "--no-progress"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results" / "nano"
    s = json.loads((out / "summary.json").read_text())
    assert s["bdt"]["auc"] > 0.8
    # the features equal a direct awkward/vector computation
    from hepsel.io.storage import read_table

    t = read_table(out / "prepared" / "ttbar" / "000.parquet")
    ev = uproot.open(data / "ttbar.root")["Events"].arrays(library="ak")
    ev = ev[ak.sum(ev.Jet_pt > 30, axis=1) >= 1]
    np.testing.assert_array_equal(t["n_jets_30"], ak.to_numpy(ak.sum(ev.Jet_pt > 30, axis=1)))
    np.testing.assert_allclose(
        t["ht"], ak.to_numpy(ak.sum(ev.Jet_pt[ev.Jet_pt > 30], axis=1)), rtol=1e-6
    )
    two = ak.num(ev.Muon_pt) >= 2
    mu = ev[two]
    px = mu.Muon_pt[:, :2] * np.cos(mu.Muon_phi[:, :2])
    py = mu.Muon_pt[:, :2] * np.sin(mu.Muon_phi[:, :2])
    pz = mu.Muon_pt[:, :2] * np.sinh(mu.Muon_eta[:, :2])
    e = np.sqrt(px**2 + py**2 + pz**2 + mu.Muon_mass[:, :2] ** 2)
    m2 = (
        ak.sum(e, axis=1) ** 2
        - ak.sum(px, axis=1) ** 2
        - ak.sum(py, axis=1) ** 2
        - ak.sum(pz, axis=1) ** 2
    )
    np.testing.assert_allclose(
        t["mumu_mass"][ak.to_numpy(two)], np.sqrt(ak.to_numpy(m2)), rtol=1e-4
    )
    assert np.all(t["mumu_mass"][~ak.to_numpy(two)] == -1)
    # the selection applies the analyst's function too
    import hepsel

    sel = hepsel.Selection.load(out / "selection")
    scores = sel.score(str(data / "ttbar.root"), tree="Events")
    keep = ak.to_numpy(
        ak.sum(uproot.open(data / "ttbar.root")["Events"]["Jet_pt"].array() > 30, axis=1) >= 1
    )
    assert len(scores) == 1500
    # each kept event gets the score the evaluation gave it with the fold model that did not train on it
    with uproot.open(out / "scores.root") as f:
        t = f["scores"].arrays(library="np")
    tt = t["sample"] == 1  # samples in sorted name order: dy 0, ttbar 1
    stored = dict(zip(t["eventNumber"][tt].tolist(), t["score_bdt"][tt].tolist(), strict=True))
    events = uproot.open(data / "ttbar.root")["Events"]["event"].array(library="np")
    assert sorted(stored) == sorted(events[keep].tolist())
    np.testing.assert_allclose(scores[keep], [stored[e] for e in events[keep].tolist()], rtol=1e-6)
    assert np.isnan(scores[~keep]).all()  # rejected by the preselection: not scored


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.mark.skipif(
    not (REAL / "uproot-HZZ.root").exists(), reason="real CMS open-data files not available"
)
def test_real_cms_tutorial_tree_features() -> None:
    """The CMS HZZ tutorial tree (jagged Px/Py/Pz/E collections) through features and cuts."""
    from hepsel.prep.cuts import CutSequence
    from hepsel.prep.features import Feature, FeatureSet

    arrays = uproot.open(REAL / "uproot-HZZ.root")["events"].arrays(library="ak")
    mu = "p4_xyzt(Muon_Px, Muon_Py, Muon_Pz, Muon_E)"
    fs = FeatureSet(
        [
            Feature("m_mumu", expr="inv_mass(leading(mu, 0), leading(mu, 1))"),
            Feature("n_jets", expr="count(Jet_Px)"),
        ],
        aliases={"mu": mu},
    )
    keep = CutSequence([("2 mu", "count(Muon_Px) >= 2")]).mask(arrays, np.ones(len(arrays)))
    cols = fs.columns(arrays[keep])
    assert np.all(np.isfinite(cols["m_mumu"]))
    assert 80 < np.median(cols["m_mumu"]) < 100  # Z -> mu mu dominates
