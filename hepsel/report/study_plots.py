"""Plots of the studies: augmentation, efficiency vs cut, the DisCo scan, score pulls and robustness.

Same conventions as :mod:`hepsel.report.plotting` (mplhep's LHCb style; ``save`` writes PDF and PNG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .plotting import COLOURS, MARKERS, label, legend_outside, logit_ticks, new_figure

__all__ = [
    "augmentation_plot",
    "decorrelation_scan_plot",
    "efficiency_vs_cut_plot",
    "pull_fraction_plot",
    "pull_plot",
    "robustness_figure",
    "robustness_plot",
    "spectator_after_cut_plot",
]

#: What the robustness plots show per quantity: the key in robustness.json, the axis label and a scale.
_ROBUSTNESS_QUANTITIES: dict[str, tuple[str, float, bool]] = {
    "eff": (r"$\Delta\varepsilon_{sig}$ [%-points]", 100.0, False),
    "rate_khz": (r"$\Delta$rate / rate [%]", 100.0, True),
    "sig_eff": (r"$\Delta\varepsilon_{sig}$ [%-points]", 100.0, False),
    "bkg_eff": (r"$\Delta\varepsilon_{bkg}$ / $\varepsilon_{bkg}$ [%]", 100.0, True),
}


def augmentation_plot(
    rows: Sequence[Mapping[str, Any]],
    points: Sequence[Mapping[str, Any]],
    *,
    key: str,
    ylabel: str,
    ax: Any = None,
) -> Any:
    """A figure of merit vs the number of real signal training events, per model, with the seed spread."""
    if ax is None:
        _, ax = new_figure()
    models = sorted({r["model"] for r in rows})
    for i, m in enumerate(models):
        rr = sorted((r for r in rows if r["model"] == m), key=lambda r: r["n_real"])
        x = np.array([r["n_real"] for r in rr], dtype=float) * (
            1 + 0.04 * (i - (len(models) - 1) / 2)
        )
        y = np.array([r[f"{key}_mean"] for r in rr])
        e = np.array([r[f"{key}_std"] for r in rr])
        ax.errorbar(
            x,
            y,
            yerr=e,
            fmt="o-",
            ms=7,
            capsize=4,
            label=f"{m} (mean $\\pm$ std over seeds)",
            color=COLOURS[i],
        )
        px = [
            p["n_real"] * (1 + 0.04 * (i - (len(models) - 1) / 2))
            for p in points
            if p["model"] == m
        ]
        py = [p[key] for p in points if p["model"] == m]
        ax.plot(px, py, "x", color=COLOURS[i], alpha=0.5, ms=6)
    ax.set_xscale("log")
    xs = [r["n_real"] for r in rows]
    ax.set_xlim(min(xs) * 0.6, max(xs) * 1.6)
    ax.margins(y=0.15)
    ax.set_xlabel("Real signal training candidates $N_{real}$")
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", fontsize=18)
    label(ax)
    return ax


def efficiency_vs_cut_plot(
    threshold: np.ndarray,
    sig_eff: np.ndarray,
    bkg_eff: np.ndarray,
    *,
    ax: Any = None,
    xlabel: str = "Cut on the classifier response",
    working_points: Mapping[str, float] | None = None,
) -> Any:
    """Candidate-level signal and background efficiency vs the cut on the score.

    Both axes are logit scales when the cuts lie in (0, 1): the region near 1,
    where trigger working points sit, is resolved, as are efficiencies near 0
    and 1. ``working_points`` maps a label (``"660 kHz"``) to a cut, drawn as
    a labelled vertical line with the signal efficiency there.
    """
    if ax is None:
        _, ax = new_figure()
    thr = np.asarray(threshold, dtype=float)
    s, b = np.asarray(sig_eff, dtype=float), np.asarray(bkg_eff, dtype=float)
    finite = np.isfinite(thr)
    thr, s, b = thr[finite], s[finite], b[finite]
    (ls,) = ax.plot(thr, s, label="signal", color=COLOURS[0])
    ax.plot(thr, b, label="background", color=COLOURS[1])
    logit_x = bool(thr.size) and thr.min() > 0 and thr.max() < 1
    eps = 1e-6
    if logit_x:
        ax.set_xscale("logit")
        xlo, xhi = max(float(thr.min()), 1e-3), min(float(thr.max()), 1 - eps)
        ax.set_xlim(xlo, xhi)
        logit_ticks(ax.xaxis, xlo, xhi)
    else:
        ax.set_xlim(float(thr.min()), float(thr.max()))
    ax.set_yscale("logit")
    inside = np.concatenate([s, b])
    inside = inside[(inside > 0) & (inside < 1)]
    ylo = max(float(inside.min()) / 2, eps) if inside.size else eps
    yhi = min(1 - (1 - float(inside.max())) / 2, 1 - eps) if inside.size else 1 - eps
    ax.set_ylim(ylo, yhi)
    logit_ticks(ax.yaxis, ylo, yhi)
    order = np.argsort(thr)
    for k, (wl, cut) in enumerate((working_points or {}).items()):
        se = float(np.interp(cut, thr[order], s[order]))
        ax.axvline(cut, ls="--", color="dimgrey", lw=1.5, zorder=0)
        ax.plot(
            cut,
            se,
            MARKERS[k % len(MARKERS)],
            ms=10,
            mfc="white",
            mec=ls.get_color(),
            mew=2,
            zorder=5,
            label=f"{wl}: cut {cut:.4f}, $\\varepsilon_S$ = {se:.3f}",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Efficiency (candidates, score > cut)")
    legend_outside(ax)
    label(ax)
    return ax


def decorrelation_scan_plot(
    points: Sequence[Mapping[str, Any]],
    *,
    working_point: str,
    ax: Any = None,
    spectator: str = "spectator",
) -> Any:
    """Signal efficiency against the background dCor(score, spectator), one point per DisCo strength.

    ``points`` hold ``strength``, ``efficiency`` and ``distance_correlation``
    (as written by :func:`hepsel.workflow.disco_scan.scan_point`).
    """
    if ax is None:
        _, ax = new_figure()
    pts = sorted(points, key=lambda p: p["strength"])
    x = np.array([p["distance_correlation"] for p in pts], dtype=float)
    y = np.array([p["efficiency"] for p in pts], dtype=float)
    yerr = np.array([p.get("efficiency_err", np.nan) for p in pts], dtype=float)
    ax.plot(x, y, "-", color="0.6", lw=1.5, zorder=1)
    # one colour and marker per strength, named in the legend: strong strengths
    # crowd together at small dCor, where text labels next to the points collide
    for i, (xi, yi, p) in enumerate(zip(x, y, pts, strict=True)):
        ax.scatter(
            [xi],
            [yi],
            s=110,
            marker=MARKERS[i % len(MARKERS)],
            color=COLOURS[i % len(COLOURS)],
            zorder=2,
            label=f"$\\lambda$ = {p['strength']:g}",
        )
        if np.isfinite(yerr[i]):
            ax.errorbar(
                [xi], [yi], yerr=[yerr[i]], fmt="none", color=COLOURS[i % len(COLOURS)], capsize=4
            )
    ax.legend(loc="lower right", fontsize=18)
    ax.set_xlim(0, max(1e-3, float(np.nanmax(x))) * 1.3)
    ax.margins(y=0.2)
    ax.set_xlabel(f"Background dCor(score, {spectator})")
    ax.set_ylabel(f"Signal efficiency at {working_point}")
    label(ax)
    return ax


def spectator_after_cut_plot(
    edges: ArrayLike,
    before: ArrayLike,
    after: Mapping[str, ArrayLike],
    *,
    xlabel: str,
    ax: Any = None,
    after_sumw2: Mapping[str, ArrayLike] | None = None,
) -> Any:
    """Background distribution of a spectator (fraction per bin) before the cut and after it, per series.

    ``after_sumw2`` (per series, the sum of squared weights per bin) adds the
    statistical error bars of the passing background.

    ``after`` maps a label (``"lambda = 0"``) to the histogram of the
    background passing that series' cut, on the same ``edges``; shapes that
    follow ``before`` mean no sculpting.
    """
    if ax is None:
        _, ax = new_figure()
    e = np.asarray(edges, dtype=float)

    def density(h: ArrayLike) -> np.ndarray:
        c = np.clip(np.asarray(h, dtype=float), 0, None)
        total = float(c.sum())
        return c / total if total > 0 else c

    top = float(np.max(density(before), initial=0.0))
    ax.stairs(density(before), e, fill=True, color="0.85", label="background, no cut")
    for i, (name, h) in enumerate(after.items()):
        d = density(h)
        top = max(top, float(np.max(d, initial=0.0)))
        colour = COLOURS[(i + 1) % len(COLOURS)]
        ax.stairs(d, e, lw=2.5, color=colour, label=f"passing, {name}")
        if after_sumw2 is not None and name in after_sumw2:
            total = float(np.clip(np.asarray(h, dtype=float), 0, None).sum())
            err = np.sqrt(np.clip(np.asarray(after_sumw2[name], dtype=float), 0, None))
            err = err / total if total > 0 else err
            top = max(top, float(np.max(d + err, initial=0.0)))
            ax.errorbar(0.5 * (e[1:] + e[:-1]), d, yerr=err, fmt="none", color=colour, lw=1.5)
    ax.set_xlim(e[0], e[-1])
    ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Fraction of background per bin")
    ax.legend(loc="upper right", fontsize=16)
    label(ax)
    return ax


def pull_plot(
    pulls: ArrayLike, n_replicas: int, *, ax: Any = None, title: str | None = None
) -> Any:
    """Distribution of the uncertainty pulls against Student's t with ``n_replicas - 1`` dof.

    ``pulls`` as from :func:`hepsel.stats.uncertainty.pulls` (NaN entries are
    dropped); the outermost bins hold the overflow. A calibrated uncertainty
    follows the t curve (see :mod:`hepsel.stats.uncertainty`); the standard normal
    is drawn for reference.
    """
    from scipy.stats import norm, t

    if ax is None:
        _, ax = new_figure()
    p = np.asarray(pulls, dtype=float)
    p = p[np.isfinite(p)]
    edges = np.linspace(-5.0, 5.0, 51)
    h, _ = np.histogram(np.clip(p, edges[0] + 1e-9, edges[-1] - 1e-9), edges)
    dens = h / max(len(p), 1) / np.diff(edges)
    ax.stairs(
        dens, edges, fill=True, alpha=0.35, color=COLOURS[0], label=f"pulls ({len(p)} candidates)"
    )
    x = np.linspace(edges[0], edges[-1], 400)
    ax.plot(
        x,
        t.pdf(x, n_replicas - 1),
        color=COLOURS[1],
        lw=2,
        label=f"Student t, {n_replicas - 1} dof (calibrated)",
    )
    ax.plot(x, norm.pdf(x), color=COLOURS[2], lw=1.5, ls="--", label="standard normal")
    frac = float(np.mean(np.abs(p) > 1)) if len(p) else float("nan")
    dof = n_replicas - 1
    exp = float(2 * t.sf(1.0, dof))
    ax.axvline(-1, color="grey", lw=1, ls=":")
    ax.axvline(1, color="grey", lw=1, ls=":")
    ax.set_xlim(edges[0], edges[-1])
    # the tallest bin and the curves' peaks inside the frame, with room for the numbers
    peak = max(float(dens.max(initial=0.0)), float(t.pdf(0.0, dof)), float(norm.pdf(0.0)))
    ax.set_ylim(0, 1.3 * peak)
    if len(p) > 1:
        # robust location and width (Student t with few dof has no finite variance): the median
        # and half the central 68.3% interval, each against its Student t value
        lo68, med, hi68 = np.quantile(p, [0.15866, 0.5, 0.84134])
        ax.text(
            0.03,
            0.96,
            f"median {med:+.2f} (Student t: 0)\n"
            f"central 68% half-width {(hi68 - lo68) / 2:.2f} (Student t: {t.ppf(0.84134, dof):.2f})",
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=15,
        )
    ax.set_xlabel(r"Pull $(s_\mathrm{check} - \bar{s})\,/\,(\sigma\,(1 + 1/R)^{1/2})$")
    ax.set_ylabel("Density (outer bins: overflow)")
    ax.set_title(title or "", loc="right", fontsize=16)
    legend_outside(ax, title=f"|pull| > 1: {frac:.3f} (expected {exp:.3f})", title_fontsize=14)
    label(ax)
    return ax


def pull_fraction_plot(
    bins: Sequence[Mapping[str, Any]], expected: float, *, ax: Any = None, xlabel: str = "Score"
) -> Any:
    """Fraction of candidates with |pull| > 1 per score bin, against its expectation.

    ``bins`` as in :func:`hepsel.stats.uncertainty.calibration_figures`'s ``bins``,
    drawn one slot each and labelled with their score range; error bars are
    binomial (normal approximation).
    """
    if ax is None:
        _, ax = new_figure()
    lo = np.array([b["score_low"] for b in bins], dtype=float)
    hi = np.array([b["score_high"] for b in bins], dtype=float)
    f = np.array([b["fraction_beyond_1"] for b in bins], dtype=float)
    n = np.array([b["n_candidates"] for b in bins], dtype=float)
    err = np.sqrt(np.clip(f * (1 - f), 0, None) / np.maximum(n, 1))
    # bins of equal population crowd where most scores lie: one slot each, labelled with its range
    x = np.arange(len(f))
    ax.errorbar(x, f, yerr=err, xerr=0.5, fmt="o", color=COLOURS[0], label="measured")
    ax.axhline(expected, color=COLOURS[1], lw=2, label=f"expected ({expected:.3f})")
    ax.set_xticks(
        x,
        [f"{a:.3g}-{b:.3g}" for a, b in zip(lo, hi, strict=True)],
        rotation=30,
        ha="right",
        fontsize=14,
    )
    ax.minorticks_off()
    ax.set_xlim(-0.5, len(f) - 0.5)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Fraction with |pull| > 1")
    legend_outside(ax, title="bins of equal population", title_fontsize=14)
    label(ax)
    return ax


def robustness_plot(
    result: Mapping[str, Any], *, shift: str, quantity: str = "eff", ax: Any = None
) -> Any:
    """Change of ``quantity`` at each fixed working point, per model, for one shift (from ``robustness.json``).

    Working points along x, models side by side within each; points with
    their paired (event-level) standard errors. ``rate_khz`` and ``bkg_eff``
    are shown relative to their nominal values.
    """
    if ax is None:
        _, ax = new_figure()
    ylabel, scale, relative = _ROBUSTNESS_QUANTITIES[quantity]
    models = list(result["models"])
    # every working point of any model, in order (a model that cannot reach one has no entry for it)
    keys = list(dict.fromkeys(k for m in models for k in result["models"][m]["shifts"][shift]))
    width = 0.7
    spread = 0.0
    for i, m in enumerate(models):
        wps = result["models"][m]["shifts"][shift]
        dx = (i - (len(models) - 1) / 2) * width / max(len(models), 1)
        y, e = [], []
        for k in keys:
            if k not in wps:
                y.append(np.nan)
                e.append(np.nan)
                continue
            q = wps[k][quantity]
            norm = q["nominal"] if relative else 1.0
            ok = relative is False or (norm and np.isfinite(norm))
            y.append(scale * q["delta"] / norm if ok else np.nan)
            e.append(scale * q["delta_err"] / abs(norm) if ok else np.nan)
        ax.errorbar(
            np.arange(len(keys)) + dx,
            y,
            yerr=e,
            fmt=MARKERS[i % len(MARKERS)],
            ms=9,
            capsize=4,
            color=COLOURS[i % len(COLOURS)],
            label=m,
        )
        spread = max(spread, float(np.nanmax(np.abs(y) + np.nan_to_num(e), initial=0.0)))
    ax.axhline(0.0, color="grey", lw=1, ls="--")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    unit = result.get("working_point_unit", "")
    ax.set_xticks(np.arange(len(keys)))
    ax.set_xticklabels([f"{k} kHz" if unit == "kHz" else f"$\\varepsilon_S$={k}" for k in keys])
    ax.set_xlim(-0.6, len(keys) - 0.4)
    for x in np.arange(len(keys) - 1) + 0.5:
        ax.axvline(x, color="lightgrey", lw=1)
    ax.margins(y=0.12)
    ax.autoscale_view(scalex=False)
    if (
        spread == 0.0
    ):  # nothing moved (a scale of 1): a symmetric axis, not a range of rounding noise
        ax.set_ylim(-1.0, 1.0)
    ax.set_xlabel("Working point (threshold fixed at nominal)")
    ax.set_ylabel(ylabel)
    # above the experiment label (which sits just above the frame)
    ax.set_title(_shift_title(shift, result["shifts"].get(shift, {})), fontsize=20, pad=40)
    return ax


def _shift_title(name: str, patterns: Mapping[str, Mapping[str, float]]) -> str:
    parts = []
    for p, f in patterns.items():
        text = f"{p} $\\times$ {f['scale']:g}"
        if f.get("offset"):
            text += f" {f['offset']:+g}"
        parts.append(text)
    return f"{name}: {', '.join(parts)}"


def robustness_figure(result: Mapping[str, Any]) -> Any:
    """Every shift of ``robustness.json`` side by side: signal efficiency change (top), rate change (bottom)."""
    import matplotlib.pyplot as plt

    shifts = list(result["shifts"])
    rows = ("sig_eff", "bkg_eff") if result.get("offline") else ("eff", "rate_khz")
    fig, axes = plt.subplots(
        len(rows),
        len(shifts),
        figsize=(9 * len(shifts), 6.5 * len(rows)),
        squeeze=False,
        sharex="col",
    )
    for j, sh in enumerate(shifts):
        for i, q in enumerate(rows):
            ax = axes[i, j]
            robustness_plot(result, shift=sh, quantity=q, ax=ax)
            if i > 0:
                ax.set_title("")
            ax.set_xlabel("")  # one label under all columns
            if j > 0:  # one y label per row: the quantity is the same in every column
                ax.set_ylabel("")
    label(axes[0, 0])
    legend_outside(axes[0, -1])
    fig.supxlabel("Working point (threshold fixed at nominal)", fontsize=26)
    fig.tight_layout(w_pad=2.0, h_pad=1.5)
    return fig
