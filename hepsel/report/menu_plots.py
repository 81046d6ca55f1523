"""Figures of a trigger menu (from ``menu.json``): efficiency vs rate, overlaps, exclusive rates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .plotting import COLOURS, MARKERS, label, legend_outside, log_ticks, mode_latex, new_figure

__all__ = ["menu_efficiency_plot", "menu_exclusive_plot", "menu_overlap_plot"]


def _points(menu: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every division (targets and curve points), by increasing measured rate."""
    pts = [*menu["rates"].values(), *menu.get("curve", [])]
    return sorted(pts, key=lambda p: p["rate_khz"]["value"])


def menu_efficiency_plot(menu: Mapping[str, Any], ax: Any = None) -> Any:
    """Efficiency of each signal channel vs the menu's total output rate: optimised (solid) vs naive (dashed).

    Rates and efficiencies are those measured on the odd-numbered events;
    error bars are binomial. The target rates are marked.
    """
    if ax is None:
        _, ax = new_figure((11, 8))
    pts = _points(menu)
    for i, (code, ch) in enumerate(menu["channels"].items()):
        colour = COLOURS[i % len(COLOURS)]
        for which, style, mfc in (("optimised", "-", colour), ("naive", "--", "white")):
            src = [p if which == "optimised" else p["naive"] for p in pts]
            r = np.array([s["rate_khz"]["value"] for s in src])
            e = np.array([s["efficiency"][code]["value"] for s in src])
            de = np.array([s["efficiency"][code]["error"] for s in src])
            order = np.argsort(r)
            ax.errorbar(
                r[order],
                e[order],
                yerr=de[order],
                fmt=MARKERS[i % len(MARKERS)],
                ls=style,
                color=colour,
                mfc=mfc,
                ms=7,
                capsize=2,
                lw=2,
                label=f"{mode_latex(ch['name'])}" if which == "optimised" else None,
            )
    # the legend says which style is which
    ax.plot([], [], "-", color="black", label="optimised division")
    ax.plot([], [], "--", color="black", label="naive split (equal rates)")
    for t in menu["rates"].values():
        ax.axvline(t["target_khz"], ls=":", color="dimgrey", lw=1.5, zorder=0)
    ax.set_xscale("log")
    log_ticks(ax.xaxis)
    ax.set_xlabel(f"Menu output rate [kHz] (input {menu['input_rate_khz']:g} kHz)")
    ax.set_ylabel("Signal efficiency (events, TOS)")
    ax.set_ylim(0, 1.05)
    legend_outside(ax, title="channel", title_fontsize=16)
    label(ax)
    return ax


def menu_overlap_plot(point: Mapping[str, Any], ax: Any = None) -> Any:
    """The rate [kHz] of events in which both lines fire, at one working point (diagonal: inclusive)."""
    ov = point["overlap_rate_khz"]
    lines = ov["lines"]
    m = np.asarray(ov["value"], dtype=float)
    if ax is None:
        side = 3.0 + 1.6 * len(lines)
        _, ax = new_figure((side + 2.0, side))
    from matplotlib.colors import LogNorm

    positive = m[m > 0]
    lo = float(positive.min()) if len(positive) else 1e-3
    hi = max(float(m.max()), lo * 10)
    # a log scale: the lines' own rates (diagonal) dwarf their overlaps
    im = ax.imshow(np.where(m > 0, m, np.nan), cmap="Blues", norm=LogNorm(vmin=lo / 2, vmax=hi))
    for i in range(len(lines)):
        for j in range(len(lines)):
            v = m[i, j]
            dark = v > 0 and np.log(v / (lo / 2)) > 0.6 * np.log(hi / (lo / 2))
            ax.text(
                j,
                i,
                f"{v:.3g}",
                ha="center",
                va="center",
                fontsize=20,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(lines)), lines, rotation=30, ha="right")
    ax.set_yticks(range(len(lines)), lines)
    ax.tick_params(which="minor", length=0)
    ax.figure.colorbar(im, ax=ax, label="rate of events firing both [kHz]")
    ax.set_title(
        f"target {point['target_khz']:g} kHz: menu {point['rate_khz']['value']:.0f} kHz",
        fontsize=22,
        pad=12,
    )
    return ax


def menu_exclusive_plot(menu: Mapping[str, Any], ax: Any = None) -> Any:
    """Each line's rate at each target: exclusive (it alone fires, solid) and shared (hatched)."""
    rates = list(menu["rates"].values())
    lines = list(menu["lines"])
    if ax is None:
        _, ax = new_figure((11, 7))
    width = 0.8 / max(len(rates), 1)
    x = np.arange(len(lines))
    for k, r in enumerate(rates):
        excl = np.array([r["exclusive_rate_khz"][n]["value"] for n in lines])
        incl = np.array([r["inclusive_rate_khz"][n]["value"] for n in lines])
        err = np.array([r["exclusive_rate_khz"][n]["error"] for n in lines])
        colour = COLOURS[k % len(COLOURS)]
        pos = x + (k - (len(rates) - 1) / 2) * width
        ax.bar(
            pos,
            excl,
            width,
            color=colour,
            yerr=err,
            capsize=3,
            label=f"{r['target_khz']:g} kHz: exclusive",
        )
        ax.bar(pos, incl - excl, width, bottom=excl, color="none", edgecolor=colour, hatch="//")
        for xp, v in zip(pos, incl, strict=True):
            if v <= 0:  # nothing to draw on a log axis: say so
                ax.text(
                    xp,
                    0.02,
                    "0",
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    fontsize=16,
                    color=colour,
                )
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    handles.append(
        Patch(facecolor="none", edgecolor="black", hatch="//", label="shared with other lines")
    )
    values = [
        r[k][n]["value"]
        for r in rates
        for n in lines
        for k in ("inclusive_rate_khz", "exclusive_rate_khz")
    ]
    positive = [v for v in values if v > 0] or [1.0]
    ax.set_xticks(x, lines)
    ax.tick_params(axis="x", which="minor", length=0)
    ax.set_ylabel("Line rate [kHz]")
    ax.set_yscale("log")
    ax.set_ylim(min(positive) / 3, 3 * max(positive))
    legend_outside(ax, handles=handles, title="menu target", title_fontsize=16)
    label(ax)
    return ax
