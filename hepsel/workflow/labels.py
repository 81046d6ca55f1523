"""How the steps name things in tables and figures: working points and feature labels.

Shared by the evaluate, why and robustness steps, so that no step imports another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError

__all__ = [
    "column_label",
    "feature_labels",
    "working_point_thresholds",
    "working_points",
    "wp_label",
]


def working_point_thresholds(perf: Mapping[str, Any], *, raw: bool = False) -> dict[str, float]:
    """Working-point key -> score threshold in a model's summary.

    Rate keys (``"660"``) in a trigger study; signal-efficiency keys (``"0.8"``)
    in an offline one. A working point the model cannot reach (threshold
    ``null``: e.g. more background at the top score than the target rate
    allows) has no threshold and is left out. ``raw``: the cuts on the raw
    output (``threshold_raw``, what decisions use) instead of those on the
    probability (``threshold``).

    Raises
    ------
    ConfigError
        If ``raw`` and the summary predates raw thresholds (evaluate again).
    """
    wps = perf.get("eff_at_rate") or (perf.get("offline") or {}).get("working_points") or {}
    key = "threshold_raw" if raw else "threshold"
    if raw and any(key not in wp for wp in wps.values()):
        msg = "summary.json has no raw-output thresholds ('threshold_raw'); run the evaluate step again"
        raise ConfigError(msg)
    return {k: float(wp[key]) for k, wp in wps.items() if wp.get(key) is not None}


def wp_label(key: str, perf: Mapping[str, Any]) -> str:
    """How a working point is named in plots and tables: ``660 kHz`` or ``eff_S = 0.8``."""
    return f"{key} kHz" if "eff_at_rate" in perf else f"eff_S = {key}"


def working_points(perf: Mapping[str, Any]) -> dict[str, float]:
    """``{"660 kHz": cut}`` (trigger) or ``{"eff_S = 0.8": cut}`` (offline) for a model's summary."""
    return {wp_label(k, perf): thr for k, thr in working_point_thresholds(perf).items()}


def feature_labels(cfg: AnalysisConfig) -> dict[str, str]:
    """The features' plot labels (those that set one), by feature name."""
    return {f.name: f.label for f in cfg.features if f.label}


def column_label(cfg: AnalysisConfig, column: str) -> str:
    """Axis label of a feature or spectator column: its configured label (with unit), else its name."""
    ev = cfg.evaluation
    if column == ev.mass and ev.mass_label:
        return ev.mass_label
    if column in ev.efficiency_vs and ev.efficiency_vs[column].label:
        return ev.efficiency_vs[column].label
    return feature_labels(cfg).get(column, column)
