"""Warnings computed from a study's results, for the report's warnings panel.

Each check is a pure function of ``summary.json`` (and the GAN fidelity
reports); thresholds come from ``evaluation.warnings`` in the config
(:class:`hepsel.config.schema.WarningsConfig`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from ..config.schema import WarningsConfig

__all__ = ["diagnose", "overtraining_pvalue"]

#: How :func:`overtraining_pvalue` corrects for the number of KS tests.
OVERTRAINING_CORRECTION = "bonferroni"


def _warning(severity: str, model: str, message: str) -> dict[str, str]:
    return {"severity": severity, "model": model, "message": message}


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, int | float) and math.isfinite(x)


def overtraining_pvalue(pvalue_folds: Mapping[str, Sequence[Any]]) -> dict[str, Any] | None:
    """Family-wise p-value of a model's train/test KS tests (every fold model and class).

    A model is flagged when *any* of its ``m`` tests (``k`` fold models x 2
    classes, typically 10) is significant, so the smallest p-value is corrected
    for ``m``: ``min(1, m * min(p))``, Bonferroni's bound, which is also the
    smallest Holm-Bonferroni adjusted p-value (both flag a model on the same
    condition). Under no overtraining the chance of a false alarm is then at
    most ``alpha`` per model whatever the dependence between the tests: they
    are dependent (fold ``k``'s events are the test set of model ``k`` and the
    training set of model ``k + 1``), which rules out combinations that assume
    independence (Fisher, Stouffer, Sidak); and a combination would dilute one
    overtrained fold model among nine good ones, which a bound on the minimum
    does not.

    Parameters
    ----------
    pvalue_folds : mapping
        Class name -> per-fold p-values (``ks_pvalue_folds`` of ``summary.json``);
        values that are not finite numbers are skipped.

    Returns
    -------
    dict or None
        ``pvalue`` (corrected), ``method``, ``n_tests``, ``min_pvalue`` (the
        uncorrected smallest one) with its ``class`` and ``fold``; ``None``
        without any finite p-value.

    Examples
    --------
    >>> overtraining_pvalue({"signal": [0.5, 0.004], "background": [0.3, 0.9]})["pvalue"]
    0.016
    """
    valid = [
        (p, cls, k) for cls, ps in pvalue_folds.items() for k, p in enumerate(ps) if _finite(p)
    ]
    if not valid:
        return None
    p, cls, k = min(valid)
    return {
        "pvalue": min(1.0, len(valid) * p),
        "method": OVERTRAINING_CORRECTION,
        "n_tests": len(valid),
        "min_pvalue": p,
        "class": cls,
        "fold": k,
    }


def _overtraining(model: str, s: Mapping[str, Any], t: WarningsConfig) -> list[dict[str, str]]:
    out = []
    folds = s.get("ks_pvalue_folds") or {k: [v] for k, v in (s.get("ks_pvalue") or {}).items()}
    family = overtraining_pvalue(folds)
    if family is not None and family["pvalue"] < t.ks_pvalue:
        out.append(
            _warning(
                "warning",
                model,
                f"train/test KS p-value of the {family['class']} response is {family['min_pvalue']:.3g} in fold "
                f"{family['fold']}, {family['pvalue']:.3g} corrected for {family['n_tests']} tests "
                f"({family['method']}; < {t.ks_pvalue:g}): overtraining",
            )
        )
    auc, auc_train = s.get("auc"), s.get("auc_train")
    if _finite(auc) and _finite(auc_train) and auc_train - auc > t.auc_gap:
        out.append(
            _warning(
                "warning",
                model,
                f"training AUC {auc_train:.4f} exceeds test AUC {auc:.4f} by {auc_train - auc:.4f} (> {t.auc_gap:g}): overtraining",
            )
        )
    return out


def _optimal_cut(model: str, s: Mapping[str, Any]) -> list[dict[str, str]]:
    """The cut is at the minimum-background-statistics limit when a better value was excluded by it."""
    oc = s.get("optimal_cut") or {}
    curve = oc.get("curve") or {}
    # offline yields may count events (evaluation.yields: events), and so does the minimum
    unit = (s.get("offline") or {}).get("unit", "candidates")
    out = []
    for name, label in (("significance", "S/sqrt(S+B)"), ("punzi", "Punzi")):
        best = oc.get(name)
        values = [v for v in curve.get(name, []) if _finite(v)]
        if not best or not values:
            continue
        if max(values) > best["value"] * (1 + 1e-9):
            yields = ""
            if _finite(best.get("signal_yield")) and _finite(best.get("background_yield")):
                yields = f", S = {best['signal_yield']:.4g}, B = {best['background_yield']:.4g}"
            out.append(
                _warning(
                    "warning",
                    model,
                    f"the {label} optimum {best['value']:.4g} (threshold {best['threshold']:.4f}{yields}) sits at the "
                    f"limit of {oc.get('min_background_candidates', '?')} simulated background {unit}: a tighter cut "
                    f"reaches {max(values):.4g} only through background statistics; the true optimum is not resolved",
                )
            )
    return out


def _offline_resolution(
    model: str, s: Mapping[str, Any], t: WarningsConfig
) -> list[dict[str, str]]:
    """Offline working points whose background yield rests on too few simulated background candidates (events)."""
    off = s.get("offline") or {}
    unit = off.get("unit", "candidates")
    out = []
    for key, wp in (off.get("working_points") or {}).items():
        n_b, b = wp.get("n_background"), wp.get("background_yield")
        n_s = wp.get("signal_yield")
        if (
            not (isinstance(n_b, int) and _finite(b) and _finite(n_s))
            or n_b >= t.min_minbias_events
        ):
            continue
        fom = n_s / math.sqrt(n_s + b) if n_s + b > 0 else float("nan")
        out.append(
            _warning(
                "error",
                model,
                f"the eff_S = {key} working point keeps {n_b} simulated background {unit} (< {t.min_minbias_events}): "
                f"B = {b:.4g} and S/sqrt(S+B) = {fom:.4g} there are not resolved by the background samples",
            )
        )
    return out


def _fold_spread(
    model: str, s: Mapping[str, Any], folds: int | None, t: WarningsConfig
) -> list[dict[str, str]]:
    out = []
    std = s.get("auc_fold_std")
    if _finite(std) and std > t.auc_fold_std:
        out.append(
            _warning(
                "warning", model, f"the AUC varies across folds by {std:.4f} (> {t.auc_fold_std:g})"
            )
        )
    n_sig = (s.get("trigger_events") or {}).get("n_signal_events")
    for rate, e in (s.get("eff_at_rate") or {}).items():
        fstd, eff = e.get("eff_fold_std"), e.get("eff")
        n_folds = folds or len(e.get("eff_folds", []))
        if not (_finite(fstd) and _finite(eff) and n_sig and n_folds):
            continue
        expected = math.sqrt(max(eff * (1 - eff), 1e-12) / (n_sig / n_folds))
        if fstd > t.fold_spread * expected:
            out.append(
                _warning(
                    "warning",
                    model,
                    f"at {rate} kHz the signal efficiency varies across folds by {fstd:.4f}, "
                    f"{fstd / expected:.1f} times the binomial error of one fold ({expected:.4f})",
                )
            )
    return out


def _resolution(
    model: str, s: Mapping[str, Any], meta: Mapping[str, Any], t: WarningsConfig
) -> list[dict[str, str]]:
    out = []
    n_mb = (s.get("trigger_events") or {}).get("n_minbias_events")
    rate_in = meta.get("input_rate_khz")
    composition = s.get("background_composition") or {}
    for rate, e in (s.get("eff_at_rate") or {}).items():
        if rate in composition:
            n_pass: float | None = composition[rate]["n_events"]
        elif n_mb and rate_in:
            n_pass = e.get("rate_khz", float(rate)) / rate_in * n_mb
        else:
            n_pass = None
        measured, err = e.get("rate_khz_measured"), e.get("rate_khz_measured_err")
        rel = err / measured if _finite(measured) and _finite(err) and measured > 0 else None
        if n_pass is not None and n_pass < t.min_minbias_events:
            out.append(
                _warning(
                    "error",
                    model,
                    f"the {rate} kHz working point is passed by {n_pass:.0f} minimum-bias events "
                    f"(< {t.min_minbias_events}): the sample cannot resolve this rate",
                )
            )
        elif rel is not None and rel > t.max_rate_rel_error:
            out.append(
                _warning(
                    "error",
                    model,
                    f"the {rate} kHz working point's measured rate has a {100 * rel:.0f} % error "
                    f"(> {100 * t.max_rate_rel_error:.0f} %): the minimum-bias sample cannot resolve this rate",
                )
            )
    return out


def _gan(model: str, fid: Mapping[str, Any], t: WarningsConfig) -> list[dict[str, str]]:
    auc = fid.get("c2st_auc_mean", (fid.get("classifier_two_sample") or {}).get("auc"))
    if _finite(auc) and auc > t.c2st_auc:
        return [
            _warning(
                "warning",
                model,
                f"a classifier tells GAN-generated from real events apart with AUC {auc:.3f} (> {t.c2st_auc:g}; "
                "0.5 = indistinguishable): the generated events are not a faithful copy",
            )
        ]
    return []


def diagnose(
    summary: Mapping[str, Any],
    fidelity: Mapping[str, Mapping[str, Any]] | None = None,
    thresholds: WarningsConfig | None = None,
) -> list[dict[str, str]]:
    """Warnings about a study's results.

    Parameters
    ----------
    summary : mapping
        The contents of ``summary.json`` (model names map to their figures;
        keys starting with ``_`` are metadata).
    fidelity : mapping, optional
        GAN model name -> its ``fidelity/<model>.json``.
    thresholds : WarningsConfig, optional
        Default: the schema's defaults.

    Returns
    -------
    list of dict
        ``{"severity": "warning" | "error", "model": ..., "message": ...}``,
        models in the order of ``summary``.

    Examples
    --------
    >>> diagnose({"bdt": {"auc": 0.98, "auc_train": 0.99}})[0]["message"][:12]
    'training AUC'
    """
    t = thresholds or WarningsConfig()
    meta = summary.get("_meta", {})
    out: list[dict[str, str]] = []
    for model, s in summary.items():
        if model.startswith("_"):
            continue
        out += _overtraining(model, s, t)
        out += _optimal_cut(model, s)
        out += _fold_spread(model, s, meta.get("folds"), t)
        out += _resolution(model, s, meta, t)
        out += _offline_resolution(model, s, t)
        if fidelity and model in fidelity:
            out += _gan(model, fidelity[model], t)
    return out
