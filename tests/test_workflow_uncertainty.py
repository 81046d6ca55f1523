"""End to end through the command line: an autoencoder next to a BDT with score-uncertainty replicas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot
from sklearn.metrics import roc_auc_score

from .conftest import tiny_config, write_config

pytestmark = pytest.mark.slow

MODELS = {
    "bdt": {
        "type": "bdt",
        "params": {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 1},
        "uncertainty": {"replicas": 3},
    },
    "ae": {
        "type": "autoencoder",
        "params": {
            "hidden_layers": [16],
            "bottleneck": 2,
            "max_epochs": 15,
            "learning_rate": 0.003,
            "n_jobs": 1,
            "device": "cpu",
        },
    },
}


def _cli(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hepsel.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("unc")
    analysis = work / "analysis"
    raw = tiny_config(str(work / "data"), models=MODELS, sig_events=1000, mb_events=4000)
    raw["output"] = str(work / "results")
    raw["evaluation"]["shap"] = {"events": 100, "background_events": 30, "mlp_samples": 10}
    write_config(analysis, raw)
    c = ("--config", str(analysis))
    _cli("generate", *c, cwd=work)
    for sample in ("signal", "minbias"):
        _cli("prepare", *c, "--sample", sample, cwd=work)
    for step in ("gather", "train", "evaluate", "plots"):
        _cli(step, *c, cwd=work)
    _cli("explain", *c, "--model", "ae", cwd=work)
    _cli("report", *c, cwd=work)
    return work / "results", analysis


def _scores(root: Path) -> dict[str, np.ndarray]:
    with uproot.open(root / "scores.root") as f:
        return f["scores"].arrays(library="np")


def test_err_branch_only_for_models_with_replicas(run: tuple[Path, Path]) -> None:
    t = _scores(run[0])
    assert {"score_bdt", "score_bdt_err", "score_ae"} <= set(t)
    assert "score_ae_err" not in t
    assert np.all(t["score_bdt_err"] > 0)


def test_err_recomputed_from_the_saved_replicas(run: tuple[Path, Path]) -> None:
    from hepsel.config.loading import load_config
    from hepsel.models.bdt import BDTClassifier
    from hepsel.prep.dataset import load_dataset

    root, analysis = run
    cfg = load_config(analysis)
    ds = load_dataset(root / "dataset.parquet", cfg)
    t = _scores(root)
    np.testing.assert_array_equal(t["eventNumber"], ds.columns["eventNumber"])
    want = np.full(len(ds), np.nan)
    for k in range(3):
        m = ds.fold == k
        reps = [
            BDTClassifier.load(root / "models" / "bdt" / f"fold{k}_replica{r}").predict_proba(
                ds.X[m]
            )[:, 1]
            for r in range(3)
        ]
        want[m] = np.std(reps, axis=0, ddof=1)
    np.testing.assert_allclose(t["score_bdt_err"], want, rtol=1e-6, atol=1e-9)


def test_summary_report_and_plots(run: tuple[Path, Path]) -> None:
    root = run[0]
    s = json.loads((root / "summary.json").read_text())
    u = s["bdt"]["uncertainty"]
    assert u["replicas"] == 3
    cal = u["calibration"]
    assert cal["expected_fraction_beyond_1"] == pytest.approx(
        2 * __import__("scipy").stats.t.sf(1, 2)
    )
    assert 0.0 < cal["fraction_beyond_1"] < 1.0
    assert "uncertainty" not in s["ae"]
    for p in (
        "uncertainty_pull_bdt.png",
        "uncertainty_bins_bdt.png",
        "scores_ae.png",
        "shap_bar_ae.png",
    ):
        assert (root / "plots" / p).is_file(), p
    html = (root / "report.html").read_text()
    assert "Score uncertainty" in html and "uncertainty_pull_bdt.png" in html
    shap = json.loads((root / "shap" / "ae.json").read_text())
    assert shap["output"] == "reconstruction error"


def test_autoencoder_end_to_end(run: tuple[Path, Path]) -> None:
    from hepsel.deploy.selection import Selection

    root = run[0]
    t = _scores(root)
    m = t["truth"] == 1
    auc = roc_auc_score(t["label"][m], t["score_ae"][m], sample_weight=t["weight"][m])
    assert auc > 0.6
    s = json.loads((root / "summary.json").read_text())
    assert s["ae"]["auc"] == pytest.approx(auc, abs=1e-9)
    assert set(s["ae"]["eff_at_rate"]) == {"1000", "500"}
    # the saved selection scores like the evaluation (each candidate by its own fold's model)
    sel = Selection.load(root / "selection")
    from hepsel.config.loading import load_config
    from hepsel.prep.dataset import load_dataset

    ds = load_dataset(root / "dataset.parquet", load_config(run[1]))
    got = sel.predict(ds.X, ds.columns["eventNumber"], model="ae")
    np.testing.assert_allclose(got, t["score_ae"], rtol=1e-12)
    # replicas are not part of the deployed selection
    assert not list((root / "selection" / "models" / "bdt").glob("*replica*"))
