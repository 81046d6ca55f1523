"""The steps of an analysis, as called by the Snakefile rules and the CLI.

Each step reads its inputs from, and writes its outputs to, the places given
by :class:`~hepsel.workflow.layout.Layout`, so the Snakefile and the CLI agree
on file names. One module per step (``data_steps``: generate, prepare, gather;
``train_step``; ``evaluate_step``; ``explain_steps``; ``why_steps``;
``fidelity_step``; ``study_steps``; ``robustness_step``; ``menu_lines``,
``menu_step`` and ``menu_plots_step``; ``report_steps``),
over the modules they share: ``layout`` and ``labels`` (the lowest), ``cross_scoring`` and
``evaluation`` (the figures of ``summary.json``), ``study`` and
``disco_scan``.

The step functions are also available here (``workflow.prepare(cfg, ...)``);
each loads its module on first use, so that a step imports only what it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Layout",
    "decorrelation_scan",
    "evaluate",
    "explain",
    "explain_figures",
    "explainable_models",
    "fidelity",
    "gan_models",
    "gather",
    "generate",
    "headline",
    "make_plots",
    "menu",
    "menu_line",
    "menu_plots",
    "prepare",
    "report",
    "robustness",
    "study_point",
    "study_summary",
    "train",
    "why",
    "why_candidate",
    "why_figures",
    "working_point_thresholds",
    "wp_label",
]

_LAZY = {
    "Layout": "layout",
    "generate": "data_steps",
    "prepare": "data_steps",
    "gather": "data_steps",
    "train": "train_step",
    "menu_line": "menu_lines",
    "menu": "menu_step",
    "menu_plots": "menu_plots_step",
    "evaluate": "evaluate_step",
    "make_plots": "evaluate_step",
    "working_point_thresholds": "labels",
    "wp_label": "labels",
    "explainable_models": "explain_steps",
    "explain": "explain_steps",
    "explain_figures": "explain_steps",
    "why": "why_steps",
    "why_candidate": "why_steps",
    "why_figures": "why_steps",
    "headline": "report_steps",
    "report": "report_steps",
    "gan_models": "fidelity_step",
    "fidelity": "fidelity_step",
    "study_point": "study_steps",
    "decorrelation_scan": "study_steps",
    "study_summary": "study_steps",
    "robustness": "robustness_step",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    msg = f"module 'hepsel.workflow' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
