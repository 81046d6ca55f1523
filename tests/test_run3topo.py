"""The Run 3 classifiers analysis (analyses/run3topo) end to end, at small size.

The shipped config is read as it is and only shrunk: smaller samples, fewer
trees and epochs, fewer bootstrap replicas and scan strengths. Everything the
analysis promises must then be in its outputs: every model at every rate in
summary.json and the report, score uncertainties in scores.root, monotone
models that are monotone, the decorrelation scan and the robustness study.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from .conftest import REPO, write_config

pytestmark = pytest.mark.slow

CONFIG = REPO / "analyses" / "run3topo" / "config.yaml"


def small_run3topo(data_dir: str) -> dict:
    """The shipped run3topo config, shrunk for a test."""
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["name"] = "run3small"
    for name, s in cfg["samples"].items():
        s["files"] = [f"{data_dir}/{name}_{{index}}.root"]
        s["generate"]["events"] = 2000 if name == "signal" else 8000
    cfg["folds"] = {"k": 3}
    cfg["trigger"]["target_rates_khz"] = [1000, 500]
    cfg["evaluation"]["bootstrap"] = 10
    cfg["evaluation"]["shap"] = {"events": 200, "background_events": 40, "mlp_samples": 10}
    cfg["explain"] = {
        "candidates": {"background": 1, "signal": 1, "random": 0},
        "reference_events": 200,
        "lime_samples": 300,
        "lime_seeds": 2,
        "ranking_events": 5,
        "permutation_events": 500,
        "permutation_repeats": 2,
    }
    for m in cfg["models"].values():
        p = m["params"]
        if "n_estimators" in p:
            p["n_estimators"] = 30
        if "max_epochs" in p:
            p.update(max_epochs=3, patience=2)
        if "uncertainty" in m:
            m["uncertainty"]["replicas"] = 2
        if m["type"] == "lipschitz_mlp":
            # a few epochs at the shipped lambda and learning rate can leave the network saturated
            p.update(lipschitz_const=5.0, learning_rate=0.003)
    cfg["decorrelation_scan"]["strengths"] = [0, 10]
    # one training job per model: torch starts 6 times, not 18 (the same fold models)
    cfg["training"] = {"fold_jobs": "per_model"}
    return cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("run3")
    cfg = small_run3topo("data")
    write_config(work / "analyses" / "run3small", cfg)
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
        "analysis=analyses/run3small",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=work)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work / "results" / "run3small", cfg


def test_every_model_has_every_rate_in_summary_and_report(run: tuple[Path, dict]) -> None:
    root, cfg = run
    summary = json.loads((root / "summary.json").read_text())
    report = (root / "report.html").read_text()
    for m in cfg["models"]:
        assert set(summary[m]["eff_at_rate"]) == {"1000", "500"}, m
        assert 0.0 <= summary[m]["eff_at_rate"]["1000"]["eff"] <= 1.0
        assert f"model-{m}" in report
    for section in ("robustness", "decorrelation", "uncertainty", "why"):
        assert f"id='{section}'" in report, section


def test_uncertainty_only_for_models_with_replicas(run: tuple[Path, dict]) -> None:
    root, cfg = run
    with uproot.open(root / "scores.root") as f:
        keys = set(f["scores"].keys())
        err = f["scores"]["score_bdt_err"].array(library="np")
    with_replicas = {m for m, c in cfg["models"].items() if "uncertainty" in c}
    assert with_replicas == {"bdt"}
    assert {k for k in keys if k.endswith("_err")} == {f"score_{m}_err" for m in with_replicas}
    assert np.isfinite(err).all() and (err >= 0).all() and err.max() > 0


def test_monotone_models_are_monotone_on_real_candidates(run: tuple[Path, dict]) -> None:
    """Raising a monotone feature of real candidates never lowers the score of the fold models."""
    from hepsel.deploy.selection import Selection

    root, cfg = run
    sel = Selection.load(root / "selection")
    names = [f["name"] for f in cfg["features"]]
    rng = np.random.default_rng(0)
    ds = pd_features(root)[:300]
    for model in ("bdt_monotone", "lipschitz_mlp"):
        monotone = cfg["models"][model]["monotone"]
        for k, clf in enumerate(sel.fold_models(model)):
            for feat, sign in monotone.items():
                j = names.index(feat)
                steps = np.sort(rng.uniform(0, 2.0, 8))
                X = np.repeat(ds[None], len(steps), axis=0)
                X[:, :, j] += sign * steps[:, None]
                s = np.stack([clf.predict_proba(x)[:, 1] for x in X])
                assert (np.diff(s, axis=0) >= -1e-6).all(), (model, k, feat)


def pd_features(root: Path) -> np.ndarray:
    """Feature rows of the prepared data set (physical units)."""
    import pyarrow.parquet as pq

    from hepsel.config.loading import load_config

    cfg = load_config(root.parents[1] / "analyses" / "run3small")
    table = pq.read_table(root / "dataset.parquet", columns=cfg.feature_names)
    return np.column_stack([table[c].to_numpy() for c in cfg.feature_names]).astype(np.float64)


def test_scan_and_robustness_cover_the_configured_points(run: tuple[Path, dict]) -> None:
    root, cfg = run
    scan = json.loads((root / "decorrelation" / "scan.json").read_text())
    assert [p["strength"] for p in scan["points"]] == [0, 10]
    assert scan["fold"] == 0 and scan["spectator"] == "B_M" and scan["working_point"] == "1000 kHz"
    for p in scan["points"]:
        assert 0 <= p["efficiency"] <= 1 and 0 <= p["jensen_shannon"] <= 1
        assert len(p["background_before"]) == len(p["bins"]) - 1
    # the penalty does what it is for: less background dependence on the mass at lambda = 10
    dcor = {p["strength"]: p["distance_correlation"] for p in scan["points"]}
    assert dcor[10] < dcor[0]
    robust = json.loads((root / "robustness.json").read_text())
    assert set(robust["models"]) == set(cfg["models"])
    assert set(robust["shifts"]) == set(cfg["robustness"]["shifts"])
    assert (root / "plots" / "robustness.png").is_file()
    assert (root / "plots" / "decorrelation_scan.png").is_file()
    report = (root / "report.html").read_text()
    assert "plots/decorrelation_scan.png" in report and "plots/robustness.png" in report
    for m in cfg["models"]:  # every kind of this analysis has a SHAP explanation
        assert (root / "shap" / f"{m}.json").is_file(), m
