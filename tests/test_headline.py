from __future__ import annotations

import math

import pytest

from hepsel.report.headline import headline_text, rank_models

SUMMARY = {
    "bdt": {
        "auc": 0.98561,
        "auc_std": 0.00039,
        "eff_at_rate": {"660": {"eff": 0.8534}, "100": {"eff": 0.5591}},
        "eff_total": {"660": {"eff": 0.5576}, "100": {"eff": 0.3651}},
        "trigger_events": {"n_signal_events": 13047},
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
    # efficiencies in percent, as in the report; bdt alone has the figure "best" is decided on
    assert lines[1].split() == [
        *("bdt", "(best)", "0.9856", "±", "0.0004"),
        *("85.3", "%", "55.8", "%", "55.9", "%", "36.5", "%"),
    ]
    # a model without total efficiencies gets dashes, not an error
    assert lines[2].split() == [
        "fisher",
        "0.9479",
        "±",
        "0.0009",
        "56.5",
        "%",
        "-",
        "4.4",
        "%",
        "-",
    ]
    assert lines[-1] == "report: results/a/report.html"


def test_headline_says_what_each_efficiency_counts() -> None:
    text = headline_text(SUMMARY)
    assert "best: highest total efficiency at 660 kHz" in text
    assert "eff: of the 13,047 signal events with a preselected truth-matched candidate" in text
    assert "total: the same passing events, of all generated signal events" in text


def test_headline_columns_line_up() -> None:
    lines = headline_text(SUMMARY).splitlines()[:3]
    starts = [line.index("0.9") for line in lines[1:]]
    assert len(set(starts)) == 1
    assert lines[0].index("AUC") == starts[0]


def _eff(v: float, half: float) -> dict[str, float]:
    return {"eff": v, "eff_low": v - half, "eff_high": v + half}


@pytest.mark.parametrize(
    ("gap", "compatible"),
    [
        (0.0003, True),
        (0.9 * math.hypot(0.0035, 0.0020), True),
        (1.1 * math.hypot(0.0035, 0.0020), False),
    ],
    ids=["far-inside", "just-inside", "just-outside"],
)
def test_models_within_one_combined_sigma_of_the_best_are_compatible(
    gap: float, compatible: bool
) -> None:
    s = {
        "mlp": {"eff_total": {"660": _eff(0.5579, 0.0035)}},
        "bdt": {"eff_total": {"660": _eff(0.5579 - gap, 0.0020)}},
        "_meta": {"target_rates_khz": [660.0]},
    }
    r = rank_models(s)
    assert r.best == "mlp" and r.figure == "total efficiency at 660 kHz"
    assert r.compatible == (("bdt",) if compatible else ())


def test_ranking_falls_back_to_the_signal_efficiency_then_the_auc() -> None:
    s = {
        "a": {"eff_at_rate": {"100": _eff(0.50, 0.01)}, "auc": 0.90, "auc_std": 0.01},
        "b": {"eff_at_rate": {"100": _eff(0.40, 0.01)}, "auc": 0.95, "auc_std": 0.01},
    }
    assert rank_models(s, rate_khz="100") == ("a", (), "signal efficiency at 100 kHz")
    aucs = {k: {"auc": v["auc"], "auc_std": v["auc_std"]} for k, v in s.items()}
    assert rank_models(aucs) == ("b", (), "AUC")  # 0.05 apart, combined standard deviation 0.014
    aucs["a"]["auc"] = 0.94
    assert rank_models(aucs) == ("b", ("a",), "AUC")  # 0.01 apart: compatible
