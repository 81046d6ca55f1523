"""The menu's figures, drawn from ``menu.json`` into ``plots/``."""

from __future__ import annotations

from pathlib import Path

from ..config.schema import AnalysisConfig
from .layout import Layout

__all__ = ["MENU_PLOTS", "menu_plots"]

MENU_PLOTS = ("menu_efficiency", "menu_overlap", "menu_exclusive")
"""Figure names (``plots/<name>.png`` and ``.pdf``); the overlap is drawn at the first target rate."""


def menu_plots(cfg: AnalysisConfig) -> list[Path]:
    """Draw the menu's figures; the files written."""
    from ..io.storage import read_json
    from ..report import menu_plots as mp
    from ..report import plotting

    lay = Layout.of(cfg)
    menu = read_json(lay.menu)
    first = next(iter(menu["rates"].values()))
    out: list[Path] = []
    with plotting.lhcb_style():
        axes = {
            "menu_efficiency": mp.menu_efficiency_plot(menu),
            "menu_overlap": mp.menu_overlap_plot(first),
            "menu_exclusive": mp.menu_exclusive_plot(menu),
        }
        for name, ax in axes.items():
            out += plotting.save(ax.figure, lay.plots / name)
    return out
