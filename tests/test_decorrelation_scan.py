from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from hepsel.config.loading import load_config
from hepsel.config.provenance import step_digest
from hepsel.exceptions import ConfigError
from hepsel.report.html import render_report
from hepsel.workflow.disco_scan import jensen_shannon, summarise_scan

from .conftest import tiny_config, write_config

LIP = {
    "type": "lipschitz_mlp",
    "monotone": {"B_PT": 1},
    "decorrelate": {"spectator": "B_M", "strength": 10.0},
    "params": {"hidden_layers": [8], "max_epochs": 2},
}


def test_jensen_shannon_matches_scipy():
    rng = np.random.default_rng(0)
    p, q = rng.random(30), rng.random(30)
    q[:5] = 0.0
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, rel=1e-12)
    assert jensen_shannon(p, 3 * p) == pytest.approx(0.0, abs=1e-15)
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert np.isnan(jensen_shannon([0, 0], [1, 1]))


def _cfg(tmp_path, **scan):
    raw = tiny_config("data", models={"bdt": {"type": "bdt"}, "lip": LIP})
    if scan:
        raw["decorrelation_scan"] = scan
    return load_config(write_config(tmp_path, raw))


@pytest.mark.parametrize(
    ("scan", "match"),
    [
        ({"model": "nope"}, r"decorrelation_scan\.model: unknown model 'nope'"),
        ({"model": "bdt"}, r"decorrelation_scan\.model: model 'bdt' has no decorrelate block"),
        ({"model": "lip", "fold": 3}, r"decorrelation_scan\.fold: 3 out of range for folds\.k = 3"),
        ({"model": "lip", "strengths": [1, -1]}, r"decorrelation_scan\.strengths"),
    ],
    ids=["unknown-model", "no-decorrelate", "fold", "negative"],
)
def test_scan_config_errors(tmp_path, scan, match):
    with pytest.raises(ConfigError, match=match):
        _cfg(tmp_path, **scan)


def test_scan_settings_rerun_only_the_scan(tmp_path):
    a = _cfg(tmp_path / "a", model="lip", strengths=[0, 1])
    b = _cfg(tmp_path / "b", model="lip", strengths=[0, 1, 3])
    assert step_digest(a, "decorrelation_scan") != step_digest(b, "decorrelation_scan")
    for model in ("lip", "bdt"):
        assert step_digest(a, "train", model=model) == step_digest(b, "train", model=model)
    for step in ("evaluate", "plots", "report"):
        assert step_digest(a, step) == step_digest(b, step), step
    # the model's own block feeds the scan, and the report shows whether there is one
    c = _cfg(tmp_path / "c", model="lip", strengths=[0, 1])
    c.models["lip"].params["max_epochs"] = 3
    assert step_digest(a, "decorrelation_scan") != step_digest(c, "decorrelation_scan")
    none = _cfg(tmp_path / "d")
    assert step_digest(none, "report") != step_digest(a, "report")


def test_summary_and_report_section(tmp_path):
    cfg = _cfg(tmp_path, model="lip", strengths=[0, 3, 30], chosen=4.0)
    points = [
        {
            "strength": s,
            "efficiency": e,
            "distance_correlation": d,
            "jensen_shannon": j,
            "auc": 0.9,
            "working_point": "1000 kHz",
        }
        for s, e, d, j in ((30.0, 0.5, 0.05, 0.01), (0.0, 0.8, 0.5, 0.2), (3.0, 0.7, 0.2, 0.05))
    ]
    res = summarise_scan(cfg, points)
    assert [p["strength"] for p in res["points"]] == [0.0, 3.0, 30.0]
    assert res["chosen"] == 3.0  # the scanned strength nearest the requested 4
    assert res["spectator"] == "B_M" and res["kind"] == "lipschitz_mlp"
    html = render_report(tmp_path, {"_meta": {"analysis": "tiny"}}, decorrelation=res)
    assert "id='decorrelation'" in html and "3 (shown)" in html and "0.0500" in html
