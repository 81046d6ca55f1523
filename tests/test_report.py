"""The HTML report: tables from summary.json, plots of the configured models only."""

from __future__ import annotations

from pathlib import Path

from hepsel.report import render_report


def test_report_tables_and_plots(tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ("roc", "scores_bdt", "scores_old_model", "eff_vs_B_TRUETAU_bdt_per_mode"):
        (plots / f"{name}.png").write_bytes(b"")
    eff = {"threshold": 0.9, "rate_khz": 660.0, "rate_khz_err": 14.0, "eff": 0.86, "eff_low": 0.85, "eff_high": 0.87,
           "eff_tos": 0.85, "eff_tos_low": 0.84, "eff_tos_high": 0.86, "eff_wp_std": 0.002, "eff_folds": [0.86, 0.87],
           "eff_fold_std": 0.007, "per_mode": {"B0 -> K+ pi-": {"eff": 0.97, "eff_low": 0.96, "eff_high": 0.98,
                                                               "eff_tos": 0.96, "eff_tos_low": 0.95, "eff_tos_high": 0.97}}}
    summary = {
        "bdt": {"auc": 0.98, "auc_std": 0.0005, "eff_at_bkg_eff": {"0.01": 0.72, "0.1": 0.94}, "ks_pvalue": {"signal": 0.2, "background": 0.5},
                "separation": 0.78, "auc_folds": [0.98, 0.981], "auc_fold_std": 0.001, "eff_at_rate": {"660": eff}},
        "_meta": {"analysis": "demo", "input_rate_khz": 30000, "target_rates_khz": [660], "folds": 2, "seed": 1, "n_candidates": 10},
    }
    html = render_report(tmp_path, summary, cutflow_markdown="| step |")
    assert "Trigger study: demo" in html
    assert "0.9800 &plusmn; 0.0005" in html
    assert "B0 -&gt; K+ pi-" in html
    assert 'src="plots/scores_bdt.png"' in html and 'src="plots/roc.png"' in html
    assert 'src="plots/eff_vs_B_TRUETAU_bdt_per_mode.png"' in html
    assert "scores_old_model" not in html  # left over from a model no longer configured


def test_report_shows_total_efficiencies(tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    for name in ("eff_vs_B_TRUEPT_bdt_per_mode", "eff_vs_B_TRUEPT_total_bdt_per_mode"):
        (tmp_path / "plots" / f"{name}.png").write_bytes(b"")
    mode = {"eff": 0.8, "eff_low": 0.79, "eff_high": 0.81, "n_events": 100}
    eff = {"threshold": 0.9, "rate_khz": 660.0, "rate_khz_err": 14.0, "eff": 0.86, "eff_low": 0.85, "eff_high": 0.87,
           "eff_tos": 0.85, "eff_tos_low": 0.84, "eff_tos_high": 0.86}
    summary = {
        "bdt": {"auc": 0.98, "eff_at_rate": {"660": eff},
                "eff_total": {"660": {"eff": 0.56, "eff_low": 0.55, "eff_high": 0.57, "per_mode": {"B0 -> K+ pi-": mode}}},
                "eff_preselection": {"eff": 0.651, "eff_low": 0.64, "eff_high": 0.66, "per_mode": {"B0 -> K+ pi-": mode}}},
        "_meta": {"analysis": "demo", "target_rates_khz": [660]},
    }
    html = render_report(tmp_path, summary)
    assert "total signal eff. @ 660 kHz" in html
    assert "56.0<sup>+1.0</sup>" in html  # in the comparison and working-point tables
    assert "<td>preselection</td><td></td><td>65.1" in html
    assert 'src="plots/eff_vs_B_TRUEPT_total_bdt_per_mode.png"' in html
