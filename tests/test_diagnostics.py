"""Warnings panel: each check fires on a hand-made summary and stays quiet on a clean one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hepsel.config import WarningsConfig
from hepsel.diagnostics import diagnose


def _clean() -> dict[str, Any]:
    wp = {"eff": 0.8, "eff_fold_std": 0.005, "eff_folds": [0.8] * 5, "rate_khz": 660.0,
          "rate_khz_measured": 650.0, "rate_khz_measured_err": 20.0}
    return {
        "bdt": {
            "auc": 0.98, "auc_train": 0.982, "auc_fold_std": 0.001,
            "ks_pvalue": {"signal": 0.3, "background": 0.5},
            "ks_pvalue_folds": {"signal": [0.3, 0.2], "background": [0.5, 0.4]},
            "optimal_cut": {"min_background_candidates": 10,
                            "punzi": {"threshold": 0.9, "value": 1.0, "sig_eff": 0.5, "bkg_eff": 0.01},
                            "curve": {"punzi": [0.5, 1.0, 0.8]}},
            "eff_at_rate": {"660": wp},
            "trigger_events": {"n_signal_events": 10_000, "n_minbias_events": 100_000},
        },
        "_meta": {"folds": 5, "input_rate_khz": 30_000.0},
    }


def test_clean_summary_has_no_warnings() -> None:
    assert diagnose(_clean(), {"bdt": {"c2st_auc_mean": 0.52}}) == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        pytest.param(lambda s: s["bdt"]["ks_pvalue_folds"]["signal"].__setitem__(1, 0.001), "KS p-value", id="ks"),
        pytest.param(lambda s: s["bdt"].__setitem__("auc_train", 0.99), "exceeds test AUC", id="auc-gap"),
        pytest.param(lambda s: s["bdt"]["optimal_cut"]["curve"]["punzi"].append(1.5), "at the limit", id="optimal-cut"),
        pytest.param(lambda s: s["bdt"].__setitem__("auc_fold_std", 0.01), "AUC varies", id="auc-folds"),
        pytest.param(lambda s: s["bdt"]["eff_at_rate"]["660"].__setitem__("eff_fold_std", 0.05), "across folds", id="eff-folds"),
        pytest.param(lambda s: s["bdt"]["eff_at_rate"]["660"].__setitem__("rate_khz_measured_err", 300.0), "cannot resolve", id="rate-error"),
        pytest.param(lambda s: s["bdt"]["eff_at_rate"]["660"].__setitem__("rate_khz", 1.0), "minimum-bias events", id="few-events"),
    ],
)
def test_each_check_fires(change: Any, fragment: str) -> None:
    s = copy.deepcopy(_clean())
    change(s)
    found = diagnose(s)
    assert len(found) == 1
    assert found[0]["model"] == "bdt" and fragment in found[0]["message"]


def test_gan_fidelity_and_thresholds() -> None:
    fid = {"bdt": {"c2st_auc_mean": 0.89}}
    assert "AUC 0.890" in diagnose(_clean(), fid)[0]["message"]
    assert diagnose(_clean(), fid, WarningsConfig(c2st_auc=0.95)) == []
    # composition counts, where present, decide the resolution check
    s = _clean()
    s["bdt"]["background_composition"] = {"660": {"n_events": 3}}
    assert diagnose(s)[0]["severity"] == "error"
