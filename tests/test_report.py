"""The HTML report: tables from summary.json, plots of the configured models only.

The report of a real study in a browser (layout, images, links) is checked in tests/test_why.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hepsel.config.loading import load_config
from hepsel.io.storage import read_json, write_json
from hepsel.prep.dataset import Dataset
from hepsel.report.formatting import value_error
from hepsel.report.html import render_report
from hepsel.workflow.cross_scoring import CrossScores
from hepsel.workflow.evaluation import model_summary

from .conftest import tiny_config, write_config


def test_report_tables_and_plots(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ("roc", "scores_bdt", "scores_old_model", "eff_vs_B_TRUETAU_bdt_per_mode"):
        (plots / f"{name}.png").write_bytes(b"")
    eff = {
        "threshold": 0.9,
        "rate_khz": 660.0,
        "rate_khz_err": 14.0,
        "eff": 0.86,
        "eff_low": 0.85,
        "eff_high": 0.87,
        "eff_tos": 0.85,
        "eff_tos_low": 0.84,
        "eff_tos_high": 0.86,
        "eff_wp_std": 0.002,
        "eff_folds": [0.86, 0.87],
        "eff_fold_std": 0.007,
        "per_mode": {
            "B0 -> K+ pi-": {
                "eff": 0.97,
                "eff_low": 0.96,
                "eff_high": 0.98,
                "eff_tos": 0.96,
                "eff_tos_low": 0.95,
                "eff_tos_high": 0.97,
            }
        },
    }
    summary = {
        "bdt": {
            "auc": 0.98,
            "auc_std": 0.0005,
            "eff_at_bkg_eff": {"0.01": 0.72, "0.1": 0.94},
            "ks_pvalue": {"signal": 0.2, "background": 0.5},
            "separation": 0.78,
            "auc_folds": [0.98, 0.981],
            "auc_fold_std": 0.001,
            "eff_at_rate": {"660": eff},
        },
        "_meta": {
            "analysis": "demo",
            "input_rate_khz": 30000,
            "target_rates_khz": [660],
            "folds": 2,
            "seed": 1,
            "n_candidates": 10,
        },
    }
    html = render_report(tmp_path, summary, cutflow_markdown="| step |")
    assert "Trigger study: demo" in html
    assert "0.9800 &plusmn; 0.0005" in html
    assert "B0 -&gt; K+ pi-" in html
    assert 'src="plots/scores_bdt.png"' in html and 'src="plots/roc.png"' in html
    assert 'src="plots/eff_vs_B_TRUETAU_bdt_per_mode.png"' in html
    assert "scores_old_model" not in html  # left over from a model no longer configured
    assert "id='uncertainty'" not in html  # no model with replicas: no section


def test_report_score_uncertainty_section(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ("uncertainty_pull_bdt", "uncertainty_bins_bdt", "scores_bdt"):
        (plots / f"{name}.png").write_bytes(b"")
    cal = {
        "fraction_beyond_1": 0.4512,
        "expected_fraction_beyond_1": 0.4226,
        "median_abs_pull": 0.83,
        "expected_median_abs_pull": 0.816,
        "n_zero_err": 0,
        "n_replicas": 3,
    }
    summary = {
        "bdt": {
            "auc": 0.98,
            "uncertainty": {
                "replicas": 3,
                "bootstrap": False,
                "median_err": 0.0123,
                "calibration": cal,
            },
        },
        "fisher": {"auc": 0.9},
        "_meta": {"analysis": "demo", "folds": 2, "seed": 1, "n_candidates": 10},
    }
    html = render_report(tmp_path, summary)
    section = html[html.index("id='uncertainty'") : html.index("id='tables'")]
    assert "<td>bdt</td><td>3</td><td>no</td><td>0.0123</td><td>0.451</td><td>0.423</td>" in section
    assert "<td>fisher</td>" not in section
    # the uncertainty plots are in their section, not in the model's panel
    assert section.count('src="plots/uncertainty_') == 2
    assert html.count('src="plots/uncertainty_pull_bdt.png"') == 1


def _toy_dataset() -> Dataset:
    """Signal and minimum-bias candidates, one to two per event, in three folds."""
    rng = np.random.default_rng(4)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("runNumber", "eventNumber", "label", "sample", "weight", "fold", "truth")
    }
    for sample_index, label, n_events in ((1, 1, 300), (0, 0, 900)):
        per_event = rng.integers(1, 3, n_events)
        evt = np.repeat(np.arange(n_events) + 10_000 * sample_index, per_event)
        n = len(evt)
        cols["runNumber"].append(np.ones(n, dtype=np.int64))
        cols["eventNumber"].append(evt)
        cols["label"].append(np.full(n, label))
        cols["sample"].append(np.full(n, sample_index))
        cols["weight"].append(np.ones(n))
        cols["fold"].append(evt % 3)
        cols["truth"].append(
            np.ones(n, dtype=np.int8) if label == 0 else (rng.random(n) < 0.7).astype(np.int8)
        )
    columns = {k: np.concatenate(v) for k, v in cols.items()}
    samples = {
        "signal": {"index": 1, "normalisation": 1.0, "sum_gen_weights": 300.0, "n_events": 300},
        "minbias": {"index": 0, "normalisation": 1.0, "sum_gen_weights": 1000.0, "n_events": 1000},
    }
    return Dataset(columns, [], samples)


@pytest.mark.parametrize("bootstrap", [0, 2])
def test_summary_and_report_with_few_bootstrap_replicas(tmp_path: Path, bootstrap: int) -> None:
    raw = tiny_config(
        "data", folds={"k": 3}, trigger={"input_rate_khz": 1000, "target_rates_khz": [100]}
    )
    raw["evaluation"] = {"bootstrap": bootstrap}
    cfg = load_config(write_config(tmp_path / "analysis", raw))
    ds = _toy_dataset()
    rng = np.random.default_rng(5)
    test = np.clip(rng.normal(0.35 + 0.3 * ds.y, 0.15), 0, 1)
    cs = CrossScores(test, np.clip(test + rng.normal(0, 0.01, len(test)), 0, 1))
    summary = {
        "bdt": model_summary(cfg, ds, cs, random_state=1),
        "_meta": {"analysis": "toy", "target_rates_khz": [100]},
    }
    write_json(tmp_path / "summary.json", summary)
    stored = read_json(tmp_path / "summary.json")
    html = render_report(tmp_path, stored)
    auc = stored["bdt"]["auc"]
    wp = stored["bdt"]["eff_at_rate"]["100"]
    if bootstrap == 0:
        assert stored["bdt"]["auc_std"] is None and wp["eff_wp_std"] is None
        assert f"<td>{auc:.4f}</td>" in html
    else:
        # two replicas give a spread; without bootstrap (above) there is none
        assert stored["bdt"]["auc_std"] > 0 and wp["eff_wp_std"] is not None
        want = value_error(auc, stored["bdt"]["auc_std"]).replace("±", "&plusmn;")
        assert f"<td>{want}</td>" in html


def test_report_shows_total_efficiencies(tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    for name in ("eff_vs_B_TRUEPT_bdt_per_mode", "eff_vs_B_TRUEPT_total_bdt_per_mode"):
        (tmp_path / "plots" / f"{name}.png").write_bytes(b"")
    mode = {"eff": 0.8, "eff_low": 0.79, "eff_high": 0.81, "n_events": 100}
    eff = {
        "threshold": 0.9,
        "rate_khz": 660.0,
        "rate_khz_err": 14.0,
        "eff": 0.86,
        "eff_low": 0.85,
        "eff_high": 0.87,
        "eff_tos": 0.85,
        "eff_tos_low": 0.84,
        "eff_tos_high": 0.86,
    }
    summary = {
        "bdt": {
            "auc": 0.98,
            "eff_at_rate": {"660": eff},
            "eff_total": {
                "660": {
                    "eff": 0.56,
                    "eff_low": 0.55,
                    "eff_high": 0.57,
                    "per_mode": {"B0 -> K+ pi-": mode},
                }
            },
            "eff_preselection": {
                "eff": 0.651,
                "eff_low": 0.64,
                "eff_high": 0.66,
                "per_mode": {"B0 -> K+ pi-": mode},
            },
        },
        "_meta": {"analysis": "demo", "target_rates_khz": [660]},
    }
    html = render_report(tmp_path, summary)
    assert "total signal eff. @ 660 kHz" in html
    assert "56.0 &plusmn; 1.0 %" in html  # in the comparison and working-point tables
    assert "<td>preselection</td><td></td><td>65.1" in html
    assert 'src="plots/eff_vs_B_TRUEPT_total_bdt_per_mode.png"' in html


def test_report_headline_warnings_composition_and_cutflow(tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    for name in ("roc", "eff_vs_rate", "scores_bdt", "scores_gan_bdt", "eff_vs_cut_bdt", "cutflow"):
        (tmp_path / "plots" / f"{name}.png").write_bytes(b"")
    eff = {
        "threshold": 0.9,
        "rate_khz": 660.0,
        "rate_khz_err": 14.0,
        "eff": 0.86,
        "eff_low": 0.85,
        "eff_high": 0.87,
    }
    comp = {
        "660": {
            "n_events": 10,
            "column": "mode",
            "categories": {
                "displaced": {
                    "n_events": 9,
                    "fraction": 0.9,
                    "fraction_low": 0.8,
                    "fraction_high": 0.95,
                }
            },
        }
    }
    model = {
        "auc": 0.98,
        "auc_train": 0.99,
        "eff_at_rate": {"660": eff},
        "background_composition": comp,
        "trigger_events": {"n_signal_events": 123},
    }
    summary = {
        "bdt": model,
        "gan_bdt": {**model, "auc_train": 0.98, "background_composition": {}},
        "_meta": {"analysis": "demo", "target_rates_khz": [660]},
    }
    cutflow = {
        "signal": {
            "table": [
                {
                    "step": "all",
                    "raw": 10,
                    "weighted": 10.0,
                    "step_eff": 1.0,
                    "step_eff_low": 0.9,
                    "step_eff_high": 1.0,
                    "cumulative_eff": 1.0,
                    "cumulative_eff_low": 0.9,
                    "cumulative_eff_high": 1.0,
                }
            ]
        }
    }
    html = render_report(tmp_path, summary, cutflow=cutflow)
    assert html.index("id='headline'") < html.index("id='warnings'") < html.index("id='background'")
    assert "of the 123 signal events" in html
    assert "&#9733; best" in html
    assert "exceeds test AUC" in html  # bdt's train/test gap, computed
    assert "<td>displaced</td><td>9 (90<sup>+5</sup><sub>&minus;10</sub> %)" in html
    assert "<td>all</td><td>10</td>" in html  # the cut-flow as a table
    assert "<details id='model-bdt'" in html and "<details id='model-gan_bdt'" in html
    for png in ("roc", "eff_vs_rate", "scores_bdt", "scores_gan_bdt", "eff_vs_cut_bdt", "cutflow"):
        assert html.count(f'src="plots/{png}.png"') == 1
    # scores_gan_bdt belongs to gan_bdt's section, not bdt's
    gan = html.index("<details id='model-gan_bdt'")
    assert (
        html.index('src="plots/scores_gan_bdt.png"')
        > gan
        > html.index('src="plots/scores_bdt.png"')
    )
    assert "Response of <b>bdt</b>" in html


def test_report_tabulates_the_jobs(tmp_path: Path) -> None:
    summary = {"_meta": {"analysis": "demo", "target_rates_khz": []}}
    rows = [
        {
            "rule": "train",
            "jobs": 3,
            "seconds": 12.0,
            "max_seconds": 4.5,
            "cpu_seconds": 11.0,
            "max_rss_mb": 512.0,
        }
    ]
    html = render_report(tmp_path, summary, benchmarks=rows)
    assert "Jobs: time and memory" in html and "<td>train</td>" in html
    assert "Jobs: time and memory" not in render_report(tmp_path, summary)


def test_offline_report_without_rates(tmp_path: Path) -> None:
    """An offline summary (here an older one: no ``offline`` flag in ``_meta``, no S and B at the optimum)."""
    (tmp_path / "plots").mkdir()
    for name in ("roc", "correlation_background", "eff_vs_x_bdt"):
        (tmp_path / "plots" / f"{name}.png").write_bytes(b"")
    wp = {
        "threshold": 0.7,
        "sig_eff": 0.5,
        "bkg_eff": 0.01,
        "signal_yield": 50.0,
        "background_yield": 350.0,
        "yields": {"sig": 50.0, "bkg": 350.0},
    }
    offline = {
        "signal_yield": 100.0,
        "background_yield": 35000.0,
        "working_points": {"0.5": wp},
        "yields": {
            "sig": {"label": 1, "yield": 100.0, "n_candidates": 10, "normalisation": 1.0},
            "bkg": {"label": 0, "yield": 35000.0, "n_candidates": 900, "normalisation": 2.0},
        },
    }
    oc = {
        "signal_yield": 100.0,
        "background_yield": 35000.0,
        "punzi_sigma": 5.0,
        "min_background_candidates": 10,
        "significance": {"threshold": 0.9, "value": 0.1234, "sig_eff": 0.2, "bkg_eff": 0.001},
        "punzi": {"threshold": 0.95, "value": 0.0031, "sig_eff": 0.1, "bkg_eff": 0.0002},
    }
    summary = {
        "bdt": {
            "auc": 0.9,
            "auc_folds": [0.9, 0.91],
            "auc_fold_std": 0.007,
            "offline": offline,
            "optimal_cut": oc,
        },
        "_meta": {"analysis": "demo", "target_rates_khz": []},
    }
    html = render_report(tmp_path, summary)
    assert "Offline selection study: demo" in html
    for absent in (
        "kHz",
        "fraction of the ?",
        "Working points (event level)",
        "minimum-bias",
        "target rate",
    ):
        assert absent not in html, absent
    # S and B at the optimum from the efficiencies: 0.2 x 100 and 0.001 x 35000
    assert (
        "<td>0.1234</td><td>0.9000</td><td>0.200</td><td>20</td><td>35</td><td>0.0031</td>" in html
    )
    assert "<td>0.1234</td><td>0.9000 (eff. 0.200)</td><td>20 / 35</td>" in html
    assert f"<td>{50 / np.sqrt(400):.4g}</td>" in html  # S/sqrt(S+B) at the working point
    assert "Signal efficiency of <b>bdt</b> at each working point against x" in html
