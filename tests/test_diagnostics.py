"""Warnings panel: each check fires on a hand-made summary and stays quiet on a clean one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hepsel.config.schema import WarningsConfig
from hepsel.report.diagnostics import diagnose


def _clean() -> dict[str, Any]:
    wp = {
        "eff": 0.8,
        "eff_fold_std": 0.005,
        "eff_folds": [0.8] * 5,
        "rate_khz": 660.0,
        "rate_khz_measured": 650.0,
        "rate_khz_measured_err": 20.0,
    }
    return {
        "bdt": {
            "auc": 0.98,
            "auc_train": 0.982,
            "auc_fold_std": 0.001,
            "ks_pvalue": {"signal": 0.3, "background": 0.5},
            "ks_pvalue_folds": {"signal": [0.3, 0.2], "background": [0.5, 0.4]},
            "optimal_cut": {
                "min_background_candidates": 10,
                "punzi": {"threshold": 0.9, "value": 1.0, "sig_eff": 0.5, "bkg_eff": 0.01},
                "curve": {"punzi": [0.5, 1.0, 0.8]},
            },
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
        pytest.param(
            lambda s: s["bdt"]["ks_pvalue_folds"]["signal"].__setitem__(1, 0.001),
            "KS p-value",
            id="ks",
        ),
        pytest.param(
            lambda s: s["bdt"].__setitem__("auc_train", 0.99), "exceeds test AUC", id="auc-gap"
        ),
        pytest.param(
            lambda s: s["bdt"]["optimal_cut"]["curve"]["punzi"].append(1.5),
            "at the limit",
            id="optimal-cut",
        ),
        pytest.param(
            lambda s: s["bdt"].__setitem__("auc_fold_std", 0.01), "AUC varies", id="auc-folds"
        ),
        pytest.param(
            lambda s: s["bdt"]["eff_at_rate"]["660"].__setitem__("eff_fold_std", 0.05),
            "across folds",
            id="eff-folds",
        ),
        pytest.param(
            lambda s: s["bdt"]["eff_at_rate"]["660"].__setitem__("rate_khz_measured_err", 300.0),
            "cannot resolve",
            id="rate-error",
        ),
        pytest.param(
            lambda s: s["bdt"]["eff_at_rate"]["660"].__setitem__("rate_khz", 1.0),
            "minimum-bias events",
            id="few-events",
        ),
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


# -- every warning word for word, and each threshold at its boundary -------------------------


def _only(
    model: dict[str, Any], meta: dict[str, Any] | None = None, **thresholds: Any
) -> list[dict[str, str]]:
    summary: dict[str, Any] = {"m": model}
    if meta is not None:
        summary["_meta"] = meta
    return diagnose(summary, thresholds=WarningsConfig(**thresholds))


def _warn(message: str, severity: str = "warning") -> list[dict[str, str]]:
    return [{"severity": severity, "model": "m", "message": message}]


def test_overtraining_messages_and_boundaries() -> None:
    folds = {"signal": [0.3, 0.001], "background": [0.5, 0.4]}
    assert _only({"ks_pvalue_folds": folds}) == _warn(
        "train/test KS p-value of the signal response is 0.001 in fold 1, 0.004 corrected for 4 tests "
        "(bonferroni; < 0.01): overtraining"
    )
    # summaries with fold 0's p-values only
    assert _only({"ks_pvalue": {"signal": 0.5, "background": 0.002}}) == _warn(
        "train/test KS p-value of the background response is 0.002 in fold 0, 0.004 corrected for 2 tests "
        "(bonferroni; < 0.01): overtraining"
    )
    # corrected p-value exactly at the threshold: not below it
    assert (
        _only(
            {"ks_pvalue_folds": {"signal": [0.125, 0.5], "background": [0.5, 0.5]}}, ks_pvalue=0.5
        )
        == []
    )
    assert (
        len(
            _only(
                {"ks_pvalue_folds": {"signal": [0.124, 0.5], "background": [0.5, 0.5]}},
                ks_pvalue=0.5,
            )
        )
        == 1
    )
    assert _only({"ks_pvalue_folds": {"signal": [None]}, "auc": None, "auc_train": 0.9}) == []
    assert _only({"auc": 0.98, "auc_train": 0.99}) == _warn(
        "training AUC 0.9900 exceeds test AUC 0.9800 by 0.0100 (> 0.005): overtraining"
    )
    assert (
        _only({"auc": 0.5, "auc_train": 0.75}, auc_gap=0.25) == []
    )  # gap exactly at the threshold
    assert len(_only({"auc": 0.5, "auc_train": 0.7500001}, auc_gap=0.25)) == 1


def _oc(name: str, curve: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "optimal_cut": {name: {"threshold": 0.9, "value": 1.0}, "curve": {name: curve}, **extra}
    }


def test_optimal_cut_messages_and_boundaries() -> None:
    tail = "only through background statistics; the true optimum is not resolved"
    assert _only(_oc("significance", [0.5, 1.5], min_background_candidates=10)) == _warn(
        "the S/sqrt(S+B) optimum 1 (threshold 0.9000) sits at the limit of 10 simulated background candidates: "
        f"a tighter cut reaches 1.5 {tail}"
    )
    assert _only(_oc("punzi", [1.2])) == _warn(
        f"the Punzi optimum 1 (threshold 0.9000) sits at the limit of ? simulated background candidates: a tighter cut reaches 1.2 {tail}"
    )
    assert _only(_oc("punzi", [1.0, float("nan")])) == []  # the optimum itself
    assert _only(_oc("punzi", [1.0 + 5e-10])) == []  # rounding, not a better cut
    assert _only(_oc("punzi", [1.0 * (1 + 1e-9)])) == []  # the tolerance itself
    assert len(_only(_oc("punzi", [1.0 + 5e-9]))) == 1
    assert _only(_oc("punzi", [])) == []
    assert _only({"optimal_cut": {"curve": {"punzi": [2.0]}}}) == []


def test_fold_spread_messages_and_boundaries() -> None:
    assert _only({"auc_fold_std": 0.01}) == _warn("the AUC varies across folds by 0.0100 (> 0.005)")
    assert _only({"auc_fold_std": 0.005}) == []

    def wp(fstd: float, eff: float = 0.8, n_folds: int = 5) -> dict[str, Any]:
        return {
            "eff_at_rate": {
                "660": {"eff": eff, "eff_fold_std": fstd, "eff_folds": [eff] * n_folds}
            },
            "trigger_events": {"n_signal_events": 10_000},
        }

    # binomial error of one fold: sqrt(0.8 * 0.2 / (10000 / 5)) = 0.0089; _meta's fold count first
    assert _only(wp(0.05, n_folds=3), {"folds": 5}) == _warn(
        "at 660 kHz the signal efficiency varies across folds by 0.0500, 5.6 times the binomial error of one fold (0.0089)"
    )
    # without the fold count in _meta, the number of per-fold efficiencies: sqrt(0.16 / 5000) = 0.0057
    assert _only(wp(0.05, n_folds=2)) == _warn(
        "at 660 kHz the signal efficiency varies across folds by 0.0500, 8.8 times the binomial error of one fold (0.0057)"
    )
    # exactly fold_spread (2) binomial errors, sqrt(0.25 / 100) = 0.05: not above
    exact = {
        "eff_at_rate": {"660": {"eff": 0.5, "eff_fold_std": 0.1}},
        "trigger_events": {"n_signal_events": 400},
    }
    assert _only(exact, {"folds": 4}) == []
    exact["eff_at_rate"]["660"]["eff_fold_std"] = 0.1000001
    assert len(_only(exact, {"folds": 4})) == 1
    # an efficiency of 1 has no binomial error: any spread is suspicious, and there is no division by zero
    assert "varies across folds" in _only(wp(1e-4, eff=1.0), {"folds": 5})[0]["message"]
    assert _only(wp(0.05) | {"trigger_events": {}}, {"folds": 5}) == []


def test_resolution_messages_and_boundaries() -> None:
    meta = {"input_rate_khz": 30_000.0}

    def wp(**e: Any) -> dict[str, Any]:
        return {"eff_at_rate": {"660": e}, "trigger_events": {"n_minbias_events": 100_000}}

    few = "the 660 kHz working point is passed by {} minimum-bias events (< 10): the sample cannot resolve this rate"
    # 2.7 kHz of 30 MHz: 9 of the 100000 minimum-bias events
    assert _only(wp(rate_khz=2.7), meta) == _warn(few.format(9), "error")
    assert _only(
        {"eff_at_rate": {"2.7": {}}, "trigger_events": {"n_minbias_events": 100_000}}, meta
    ) == _warn(few.replace("660", "2.7").format(9), "error")
    assert _only(wp(rate_khz=2.7)) == []  # no input rate: nothing to count
    comp = wp(rate_khz=660.0) | {"background_composition": {"660": {"n_events": 3}}}
    assert _only(comp, meta) == _warn(few.format(3), "error")
    comp["background_composition"]["660"]["n_events"] = 10
    assert _only(comp, meta) == []
    big = "the 660 kHz working point's measured rate has a 46 % error (> 30 %): the minimum-bias sample cannot resolve this rate"
    assert _only(
        wp(rate_khz=660.0, rate_khz_measured=650.0, rate_khz_measured_err=300.0), meta
    ) == _warn(big, "error")
    assert _only(wp(rate_khz_measured=500.0, rate_khz_measured_err=150.0)) == []  # exactly 30 %
    assert len(_only(wp(rate_khz_measured=500.0, rate_khz_measured_err=150.1))) == 1
    assert _only(wp(rate_khz_measured=0.0, rate_khz_measured_err=1.0)) == []
    # too few events is the stronger statement: one warning, not two
    assert _only(wp(rate_khz=2.7, rate_khz_measured=2.0, rate_khz_measured_err=2.0), meta) == _warn(
        few.format(9), "error"
    )


def test_gan_messages_and_boundaries() -> None:
    message = (
        "a classifier tells GAN-generated from real events apart with AUC 0.650 (> 0.6; "
        "0.5 = indistinguishable): the generated events are not a faithful copy"
    )
    expected = [{"severity": "warning", "model": "g", "message": message}]
    assert diagnose({"g": {}}, {"g": {"c2st_auc_mean": 0.65}}) == expected
    assert diagnose({"g": {}}, {"g": {"classifier_two_sample": {"auc": 0.65}}}) == expected
    assert diagnose({"g": {}}, {"g": {"c2st_auc_mean": 0.6}}) == []
    assert diagnose({"g": {}}, {"h": {"c2st_auc_mean": 0.9}}) == []
    # models in summary order, metadata skipped
    two = {
        "_meta": {"auc": 0.0, "auc_train": 1.0},
        "b": {"auc": 0.9, "auc_train": 1.0},
        "a": {"auc": 0.9, "auc_train": 1.0},
    }
    assert [w["model"] for w in diagnose(two)] == ["b", "a"]


def test_fold_spread_and_resolution_skip_what_they_cannot_judge() -> None:
    incomplete = {
        "eff_at_rate": {
            "660": {"eff": 0.8},
            "330": {"eff_fold_std": 0.05},
            "100": {"eff": 0.8, "eff_fold_std": 0.05},
        },
        "trigger_events": {"n_signal_events": 10_000},
    }
    (w,) = _only(incomplete, {"folds": 5})
    assert w["message"].startswith(
        "at 100 kHz the signal efficiency varies across folds by 0.0500, 5.6 times"
    )
    # a measured rate below 1 kHz is still a rate
    (w,) = _only({"eff_at_rate": {"1": {"rate_khz_measured": 0.5, "rate_khz_measured_err": 0.4}}})
    assert "has a 80 % error (> 30 %)" in w["message"]
    (w,) = _only(
        {"eff_at_rate": {"1": {"rate_khz_measured": 1.0, "rate_khz_measured_err": 1.0}}},
        max_rate_rel_error=0.9,
    )
    assert "has a 100 % error (> 90 %)" in w["message"]


def test_every_model_keeps_its_warnings() -> None:
    summary = {
        "a": {"auc": 0.9, "auc_train": 1.0, "ks_pvalue": {"signal": 1e-6}},
        "g": {"auc_fold_std": 0.01},
    }
    found = diagnose(summary, {"g": {"c2st_auc_mean": 0.9}})
    assert [(w["model"], w["message"][:12]) for w in found] == [
        ("a", "train/test K"),
        ("a", "training AUC"),
        ("g", "the AUC vari"),
        ("g", "a classifier"),
    ]
