from __future__ import annotations

from hepsel.report.headline import headline_text

SUMMARY = {
    "bdt": {
        "auc": 0.98561,
        "auc_std": 0.00039,
        "eff_at_rate": {"660": {"eff": 0.8534}, "100": {"eff": 0.5591}},
        "eff_total": {"660": {"eff": 0.5576}, "100": {"eff": 0.3651}},
    },
    "fisher": {
        "auc": 0.9479,
        "auc_std": 0.0009,
        "eff_at_rate": {"660": {"eff": 0.565}, "100": {"eff": 0.044}},
    },
    "_meta": {"hepsel": "0.1.0"},
    "_inputs": {},
}


def test_headline_rows_and_columns() -> None:
    lines = headline_text(SUMMARY, "results/a/report.html").splitlines()
    assert lines[0].split("  ")[0] == "model"
    assert "eff @ 660 kHz" in lines[0] and "total @ 100 kHz" in lines[0]
    assert lines[1].split() == ["bdt", "0.9856", "±", "0.0004", "0.853", "0.558", "0.559", "0.365"]
    # a model without total efficiencies gets dashes, not an error
    assert lines[2].split() == ["fisher", "0.9479", "±", "0.0009", "0.565", "-", "0.044", "-"]
    assert lines[-1] == "report: results/a/report.html"
    assert len(lines) == 4  # metadata keys are not models


def test_headline_columns_line_up() -> None:
    lines = headline_text(SUMMARY).splitlines()
    starts = [line.index("0.9") for line in lines[1:]]
    assert len(set(starts)) == 1
    assert lines[0].index("AUC") == starts[0]
