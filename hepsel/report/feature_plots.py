"""Feature distributions and correlations: input correlation matrices, real vs generated overlays.

Drawn in the LHCb style of :mod:`hepsel.report.plotting` (call inside
:func:`~hepsel.report.plotting.lhcb_style`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .plotting import (
    COLOURS,
    bulk_range,
    label,
    log_ticks,
    new_figure,
    spans_decades,
    tick_label,
)

__all__ = ["correlation_plot", "overlay_grid"]


def correlation_plot(
    matrix: np.ndarray,
    names: Sequence[str],
    *,
    ax: Any = None,
    title: str = "",
    difference: bool = False,
    labels: Mapping[str, str] | None = None,
) -> Any:
    """Feature correlation matrix (Pearson, in %), numbers in every cell.

    With ``difference``, ``matrix`` is a difference of two correlation
    matrices: it is drawn as a fraction (as the report's table quotes it), on
    a colour scale set by its own largest entry. ``labels`` maps a feature
    name to its plot label (the unit in brackets is dropped on the ticks).
    """
    if ax is None:
        _, ax = new_figure((12, 10))
    m = np.asarray(matrix, dtype=float)
    n = len(names)
    if difference:
        vmax_shown = float(np.nanmax(np.abs(m))) or 1.0
        # two decimals, without a "-0.00" or "+0.00"
        shown, fmt, cbar = np.round(m, 2) + 0.0, "{:+.2f}", r"$\Delta\rho$ (generated $-$ real)"
    else:
        # whole percent, without a "-0"
        vmax_shown, shown, fmt, cbar = 100.0, np.round(100 * m) + 0.0, "{:.0f}", "correlation [%]"
    im = ax.imshow(shown, cmap="RdBu_r", vmin=-vmax_shown, vmax=vmax_shown)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    tick_size = 16 if n <= 10 else 14
    tick_names = [tick_label((labels or {}).get(n_, n_)) for n_ in names]
    ax.set_xticklabels(
        tick_names, rotation=60, ha="right", rotation_mode="anchor", fontsize=tick_size
    )
    ax.set_yticklabels(tick_names, fontsize=tick_size)
    ax.minorticks_off()
    # outward ticks on two sides only: inward ones would strike through the edge cells' numbers
    ax.tick_params(which="both", direction="out", top=False, right=False, length=5)
    cell_size = 16 if n <= 10 else (14 if n <= 14 else 10)
    for i in range(n):
        for j in range(n):
            val = shown[i, j]
            dark = abs(val) > 0.6 * vmax_shown
            ax.text(
                j,
                i,
                "0" if val == 0 else fmt.format(val),
                ha="center",
                va="center",
                fontsize=cell_size,
                color="white" if dark else "black",
            )
    ax.figure.colorbar(im, ax=ax, label=cbar)
    ax.set_title(title or "input features", loc="right", fontsize=18)
    label(ax)
    return ax


def overlay_grid(
    real: np.ndarray,
    generated: np.ndarray,
    names: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    w1: Mapping[str, float] | None = None,
    baseline: Mapping[str, float] | None = None,
    bins: int = 40,
    title: str = "GAN fidelity",
) -> Any:
    """Real vs generated distributions of every feature, with a generated/real ratio panel under each.

    Each panel covers the bulk of the real events (:func:`bulk_range`: a long
    tail is cut short, and what lies beyond is counted in the outermost bins);
    a feature spanning decades gets log-spaced bins on a log axis. The real
    histogram is a filled area with its statistical band, the generated one
    points with Poisson error bars; the ratio panel propagates both errors.
    ``title`` should say which fold(s) are shown.
    """
    import matplotlib.pyplot as plt

    n = len(names)
    ncol = 4
    nrow = int(np.ceil(n / ncol))
    fig = plt.figure(figsize=(6.5 * ncol, 7.2 * nrow))
    # one cell per feature (room between cells for labels and titles), split into histogram and ratio
    outer = fig.add_gridspec(nrow, ncol, hspace=0.5, wspace=0.3)
    for i in range(n):
        row, col = divmod(i, ncol)
        cell = outer[row, col].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.06)
        ax = fig.add_subplot(cell[0])
        rax = fig.add_subplot(cell[1], sharex=ax)
        r, g = real[:, i], generated[:, i]
        logx = spans_decades(r)
        lo, hi = bulk_range(r, log=logx)
        edges = np.geomspace(lo, hi, bins + 1) if logx else np.linspace(lo, hi, bins + 1)
        # values beyond the range fall into the outermost bins
        hr, _ = np.histogram(np.clip(r, edges[0], edges[-1]), edges)
        hg, _ = np.histogram(np.clip(g, edges[0], edges[-1]), edges)
        nr, ng = max(len(r), 1), max(len(g), 1)
        fr, fg = hr / nr, hg / ng
        er, eg = np.sqrt(hr) / nr, np.sqrt(hg) / ng
        centres = np.sqrt(edges[1:] * edges[:-1]) if logx else 0.5 * (edges[1:] + edges[:-1])
        ax.stairs(fr, edges, fill=True, alpha=0.35, color=COLOURS[0], label="real (held out)")
        ax.stairs(
            fr + er, edges, baseline=fr - er, fill=True, alpha=0.35, color=COLOURS[0], hatch="///"
        )
        ax.errorbar(
            centres, fg, yerr=eg, fmt="o", ms=4, color=COLOURS[1], elinewidth=1.5, label="generated"
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(hr > 0, fg / fr, np.nan)
            rerr = ratio * np.sqrt(np.where(hg > 0, 1 / hg, 0.0) + np.where(hr > 0, 1 / hr, 0.0))
        rax.axhline(1.0, color="grey", lw=1, ls="--")
        rax.errorbar(centres, ratio, yerr=rerr, fmt="o", ms=3, color=COLOURS[1], elinewidth=1.2)
        rax.set_ylim(0.5, 1.5)
        if logx:
            ax.set_xscale("log")
            log_ticks(ax.xaxis)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(
            0, 1.3 * max(float((fr + er).max(initial=0)), float((fg + eg).max(initial=0)), 1e-12)
        )
        ax.tick_params(labelbottom=False, labelsize=15)
        rax.tick_params(labelsize=13)
        if col == 0:
            ax.set_ylabel("Fraction / bin", fontsize=18)
            rax.set_ylabel("gen./real", fontsize=15)
        name = names[i]
        rax.set_xlabel((labels or {}).get(name, name), fontsize=20)
        if w1 is not None and baseline is not None:
            ax.set_title(
                f"$W_1$ = {w1[name]:.3g} (real-real {baseline[name]:.3g})", fontsize=15, loc="right"
            )
        if i == 0:
            ax.legend(fontsize=15, loc="upper right")
    fig.suptitle(f"LHCb-like Simulation: {title}", fontsize=24, fontweight="bold", y=0.995)
    fig.subplots_adjust(
        left=0.06, right=0.98, top=1 - 0.9 / (7.2 * nrow), bottom=0.5 / nrow / 7.2 * 1.6
    )
    return fig
