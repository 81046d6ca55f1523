"""Plots in mplhep's LHCb style.

One function per plot kind; each takes ``ax=None`` (keyword-only), draws on
it and returns the artists/axes. :func:`save` writes PDF and PNG; nothing here
calls ``plt.show()``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "augmentation_plot",
    "binomial_band",
    "correlation_plot",
    "cutflow_plot",
    "decorrelation_scan_plot",
    "dependence_plot",
    "efficiency_plot",
    "efficiency_vs_cut_plot",
    "figure_of_merit_plot",
    "is_integer_binning",
    "label",
    "legend_outside",
    "lhcb_style",
    "mode_latex",
    "new_figure",
    "overlay_grid",
    "pull_fraction_plot",
    "pull_plot",
    "quantile_range",
    "rate_plot",
    "robustness_figure",
    "robustness_plot",
    "roc_plot",
    "save",
    "score_plot",
    "shap_figures",
    "spans_decades",
    "spectator_after_cut_plot",
    "why_figure",
]

# --------------------------------------------------------------------------
# pure helpers (no matplotlib)
# --------------------------------------------------------------------------
# particle base name -> (symbol, subscript) in mathtext
_PARTICLES: dict[str, tuple[str, str]] = {
    "B": ("B", ""), "Bs": ("B", "s"), "Bc": ("B", "c"), "D": ("D", ""), "Ds": ("D", "s"),
    "K": ("K", ""), "KS": ("K", "S"), "KL": ("K", "L"), "pi": (r"\pi", ""), "mu": (r"\mu", ""),
    "e": ("e", ""), "tau": (r"\tau", ""), "nu": (r"\nu", ""), "p": ("p", ""), "n": ("n", ""),
    "Lambda": (r"\Lambda", ""), "Lambdab": (r"\Lambda", "b"), "Lambda_b": (r"\Lambda", "b"),
    "Lambdac": (r"\Lambda", "c"), "Lambda_c": (r"\Lambda", "c"), "Xi": (r"\Xi", ""),
    "Omega": (r"\Omega", ""), "phi": (r"\phi", ""), "rho": (r"\rho", ""), "omega": (r"\omega", ""),
    "eta": (r"\eta", ""), "gamma": (r"\gamma", ""), "psi": (r"\psi", ""), "J/psi": (r"J/\psi", ""),
}
_PARTICLE_RE = re.compile(r"^(?P<base>[A-Za-z/_]+?)(?P<bar>~)?(?P<charge>\+\+|--|\+|-|0)?$")
_ARROWS = {"->": r"\to", "=>": r"\to", "-->": r"\to"}


def _particle_tex(token: str) -> str | None:
    m = _PARTICLE_RE.match(token)
    if m is None or m["base"] not in _PARTICLES:
        return None
    sym, sub = _PARTICLES[m["base"]]
    if m["bar"]:
        sym = rf"\bar{{{sym}}}"
    charge = m["charge"] or ""
    sup = f"^{{{charge}}}" if len(charge) > 1 else (f"^{charge}" if charge else "")
    return sym + sup + (f"_{sub}" if sub else "")


def mode_latex(name: str) -> str:
    """A decay written as text, ``"B0 -> K+ pi-"``, as mathtext, ``r"$B^0 \\to K^+ \\pi^-$"``.

    Particles are the usual names (``B0``, ``Bs0``, ``D-``, ``K+``, ``pi-``,
    ``mu+``, ``p``, ``Lambda``, ``Lambdab0``, ``J/psi``...; ``~`` after the
    name makes the antiparticle, ``D~0``). Runs of particles and arrows go
    into one math block; any other word (``(2 tracks)``) stays plain text. A
    name with no particle in it is returned unchanged.

    Examples
    --------
    >>> mode_latex("Bs0 -> K+ K- (2 tracks)")
    '$B^0_s \\\\to K^+ K^-$ (2 tracks)'
    """
    out: list[str] = []
    run: list[str] = []
    found = False
    for token in name.split():
        tex = _ARROWS.get(token) or _particle_tex(token)
        if tex is None:
            if run:
                out.append("$" + " ".join(run) + "$")
                run = []
            out.append(token)
        else:
            found = found or token not in _ARROWS
            run.append(tex)
    if run:
        out.append("$" + " ".join(run) + "$")
    return " ".join(out) if found else name


def binomial_band(
    eff: ArrayLike, n: float, *, method: str = "clopper_pearson", cl: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Statistical band of an efficiency measured on ``n`` events, at each point of a curve.

    ``k = eff * n`` passing events out of ``n`` (the signal sample), with the
    binomial interval ``method`` of :mod:`hepsel.stats.intervals` (``bootstrap``,
    which needs the events themselves, falls back to Clopper-Pearson). The
    band is the spread of the efficiency at a fixed threshold; the threshold
    itself is taken as exact.
    """
    from ..stats import intervals

    funcs = {"clopper_pearson": intervals.clopper_pearson, "wilson": intervals.wilson, "normal": intervals.normal}
    func = funcs.get(method, intervals.clopper_pearson)
    e = np.clip(np.asarray(eff, dtype=float), 0.0, 1.0)
    lo, hi = func(e * n, np.full_like(e, float(n)), cl=intervals.DEFAULT_CL if cl is None else cl)
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def quantile_range(x: ArrayLike, q: tuple[float, float] = (0.005, 0.995), *, log: bool = False) -> tuple[float, float]:
    """Axis range ``(lo, hi)`` covering the bulk of ``x`` (quantiles ``q``), padded by 5%.

    With ``log``, only positive values count and the padding is multiplicative.
    NaNs are ignored; a degenerate range is widened to a unit one.
    """
    v = np.asarray(x, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)] if log else v[np.isfinite(v)]
    if v.size == 0:
        return (0.1, 10.0) if log else (0.0, 1.0)
    lo, hi = (float(a) for a in np.quantile(v, q))
    if log:
        llo, lhi = np.log10(lo), np.log10(hi)
        pad = 0.05 * (lhi - llo) if lhi > llo else 0.5
        return float(10 ** (llo - pad)), float(10 ** (lhi + pad))
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


def spans_decades(x: ArrayLike, *, decades: float = 2.0, q: tuple[float, float] = (0.01, 0.99)) -> bool:
    """Whether the bulk of ``x`` is positive and spans at least ``decades`` orders of magnitude.

    Such a feature is drawn on a log axis. The quantiles ``q`` (not the
    extremes) decide, so a few outliers do not switch the scale.
    """
    v = np.asarray(x, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return False
    lo, hi = np.quantile(v, q)
    return bool(lo > 0 and np.log10(hi / lo) >= decades)


def is_integer_binning(edges: ArrayLike) -> bool:
    """Whether bin edges sit half-way between integers (0.5, 2.5, ...): an integer variable."""
    e = np.asarray(edges, dtype=float)
    return bool(e.size > 1 and np.allclose(e - np.floor(e), 0.5))


# --------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<"]
_COLOURS = ["#0057a8", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]


@contextlib.contextmanager
def lhcb_style() -> Iterator[None]:
    """Apply mplhep's LHCb style (non-interactive backend) within a block."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep
    from matplotlib.rcsetup import cycler

    with plt.style.context(mplhep.style.LHCb2), mpl.rc_context({"axes.prop_cycle": cycler(color=_COLOURS)}):
        yield


def new_figure(figsize: tuple[float, float] = (10, 8)) -> tuple[Any, Any]:
    """A figure and axes (call inside :func:`lhcb_style`)."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)


def label(ax: Any, text: str = "Simulation") -> None:
    """Experiment-style label: hepsel's simulated LHCb-like samples."""
    # above the frame, so it never collides with curves or legends
    ax.text(0.0, 1.01, f"LHCb-like {text}", transform=ax.transAxes, ha="left", va="bottom", fontsize=24, fontweight="bold")


def legend_outside(ax: Any, *, fontsize: float = 18, **kw: Any) -> Any:
    """Legend to the right of the axes, clear of the data (the saved figure grows to hold it)."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=fontsize, **kw)


def _log_ticks(axis: Any) -> None:
    """Every major label of a log axis as a power of ten (no mix of 0.01 and 10^-3)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(_power_of_ten))


def _power_of_ten(x: float, _pos: int | None = None) -> str:
    return f"$10^{{{round(np.log10(x))}}}$" if x > 0 else ""


def _logit_ticks(axis: Any, lo: float, hi: float) -> None:
    """Ticks of a logit axis as plain numbers: powers of ten below 0.1, 0.9, 0.99, ... above."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = [10.0**-k for k in range(8, 0, -1)] + [0.5] + [1 - 10.0**-k for k in range(1, 9)]
    ticks = [t for t in ticks if lo <= t <= hi]
    if len(ticks) > 9:
        # every other decade, so that the labels of a wide range do not overlap
        ticks = [t for t in ticks if t == 0.5 or round(np.log10(min(t, 1 - t))) % 2 == 0]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_minor_locator(NullLocator())
    axis.set_ticklabels([_power_of_ten(t) if t < 0.1 else f"{t:.{max(1, round(-np.log10(1 - t)))}f}".rstrip("0") for t in ticks])


def save(fig: Any, path: str | os.PathLike[str]) -> list[Path]:
    """Write ``path.pdf`` and ``path.png`` (atomically) and close the figure.

    The extensions are appended, never substituted: a dot in ``path``'s name
    (a feature called ``mu.pt``, say) stays part of the name. The saved area
    is fitted to the drawn content, so legends placed outside the axes are kept.
    """
    import matplotlib.pyplot as plt

    from ..io.storage import atomic_path

    p = Path(path)
    out = []
    for ext in (".pdf", ".png"):
        target = p.with_name(p.name + ext)
        with atomic_path(target, suffix=ext) as tmp:
            fig.savefig(tmp, format=ext[1:], dpi=100 if ext == ".png" else None, bbox_inches="tight", pad_inches=0.15)
        out.append(target)
    plt.close(fig)
    return out


def _wp_handles(labels: Sequence[str]) -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], ls="none", marker=_MARKERS[i % len(_MARKERS)], ms=11, mfc="white", mec="black", mew=2, label=lab)
        for i, lab in enumerate(labels)
    ]


def roc_plot(
    curves: Mapping[str, Mapping[str, Any]],
    *,
    ax: Any = None,
    log: bool = True,
    working_points: Mapping[str, Mapping[str, float]] | None = None,
) -> Any:
    """Signal efficiency vs background efficiency, one curve per model.

    ``curves[model]`` holds ``bkg_eff``, ``sig_eff`` and optionally ``auc``,
    ``auc_std`` and ``threshold`` (the score cut of each point).
    ``working_points[model]`` maps a label (``"660 kHz"``) to a score cut; each
    is marked on the model's curve (needs ``threshold``), one marker shape per label.
    """
    if ax is None:
        _, ax = new_figure()
    wp_labels: list[str] = []
    for i, (name, c) in enumerate(curves.items()):
        lab = name
        if "auc" in c:
            lab += f" (AUC = {c['auc']:.4f}" + (f" $\\pm$ {c['auc_std']:.4f})" if c.get("auc_std") else ")")
        (line,) = ax.plot(c["bkg_eff"], c["sig_eff"], label=lab, color=_COLOURS[i % len(_COLOURS)])
        wps = (working_points or {}).get(name, {})
        if wps and "threshold" in c:
            thr = np.asarray(c["threshold"], dtype=float)
            ok = np.isfinite(thr)
            # thresholds decrease along the curve; np.interp wants them increasing
            t, x, y = thr[ok][::-1], np.asarray(c["bkg_eff"])[ok][::-1], np.asarray(c["sig_eff"])[ok][::-1]
            for wl, cut in wps.items():
                if wl not in wp_labels:
                    wp_labels.append(wl)
                m = _MARKERS[wp_labels.index(wl) % len(_MARKERS)]
                ax.plot(np.interp(cut, t, x), np.interp(cut, t, y), ls="none", marker=m, ms=11, mfc="white",
                        mec=line.get_color(), mew=2, zorder=5)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
        _log_ticks(ax.xaxis)
    else:
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("Background efficiency (candidates)")
    ax.set_ylabel("Signal efficiency (candidates)")
    handles, labels = ax.get_legend_handles_labels()
    wp_h = _wp_handles(wp_labels)
    legend_outside(ax, handles=handles + wp_h, labels=labels + [f"cut at {w}" for w in wp_labels])
    label(ax)
    return ax


def score_plot(
    test: Mapping[str, tuple[np.ndarray, np.ndarray]],
    train: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    ks_pvalue: Mapping[str, float] | None = None,
    bins: int = 40,
    ax: Any = None,
    xlabel: str = "Classifier response",
) -> Any:
    """Overtraining check: normalised score distributions, test (filled) vs train (points).

    ``test[cls]`` and ``train[cls]`` are ``(scores, weights)`` for ``cls`` in
    ``("signal", "background")``. The log y-range is fitted to the drawn
    contents; the legend sits outside the axes.
    """
    import mplhep

    if ax is None:
        _, ax = new_figure()
    edges = np.linspace(0.0, 1.0, bins + 1)
    colours = {"signal": _COLOURS[0], "background": _COLOURS[1]}
    drawn: list[np.ndarray] = []
    for cls in ("signal", "background"):
        s, w = test[cls]
        h, _ = np.histogram(s, edges, weights=w)
        norm = h.sum() * np.diff(edges)
        mplhep.histplot(h / norm, edges, ax=ax, histtype="fill", alpha=0.35, color=colours[cls], label=f"{cls} (test)")
        drawn.append(h / norm)
        s, w = train[cls]
        h, _ = np.histogram(s, edges, weights=w)
        h2, _ = np.histogram(s, edges, weights=np.square(w))
        norm = h.sum() * np.diff(edges)
        p = ks_pvalue.get(cls) if ks_pvalue else None
        ptxt = "" if p is None else (f", KS p = {p:.3f}" if p >= 1e-3 else f", KS p = {p:.1e}")
        lab = f"{cls} (train){ptxt}"
        centres = 0.5 * (edges[1:] + edges[:-1])
        ax.errorbar(centres, h / norm, yerr=np.sqrt(h2) / norm, xerr=0.5 * np.diff(edges), fmt="o", ms=4,
                    color=colours[cls], label=lab)
        drawn.append(h / norm)
    ax.set_yscale("log")
    vals = np.concatenate(drawn)
    pos = vals[np.isfinite(vals) & (vals > 0)]
    if pos.size:
        ax.set_ylim(pos.min() / 2, pos.max() * 2)
    _log_ticks(ax.yaxis)
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Normalised entries / bin width")
    legend_outside(ax)
    label(ax)
    return ax


def rate_plot(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    *,
    targets_khz: Sequence[float] = (),
    tos: bool = False,
    ax: Any = None,
    input_rate_khz: float | None = None,
    n_signal_events: float | None = None,
    interval: str = "clopper_pearson",
) -> Any:
    """Signal efficiency (event level) vs output rate [kHz], one curve per model.

    With ``n_signal_events``, each curve gets the statistical band of the
    signal sample at fixed threshold (:func:`binomial_band`, ``interval``).
    Each target rate is a labelled vertical line, with the models' efficiencies
    there marked on their curves.
    """
    from ..stats.intervals import interval_label

    if ax is None:
        _, ax = new_figure()
    key = "eff_tos" if tos else "eff"
    for i, (name, c) in enumerate(curves.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        r, e = np.asarray(c["rate_khz"], dtype=float), np.asarray(c[key], dtype=float)
        ax.plot(r, e, label=name, color=colour)
        if n_signal_events:
            lo, hi = binomial_band(e, n_signal_events, method=interval)
            ax.fill_between(r, lo, hi, color=colour, alpha=0.3, lw=0)
        order = np.argsort(r)
        for k, t in enumerate(targets_khz):
            ax.plot(t, np.interp(t, r[order], e[order]), _MARKERS[k % len(_MARKERS)], ms=10, mfc="white", mec=colour,
                    mew=2, zorder=5)
    for t in targets_khz:
        ax.axvline(t, ls="--", color="dimgrey", lw=1.5, zorder=0)
        # inside the frame, left of the line, where the efficiency curves have not yet reached
        ax.text(t, 0.985, f"{t:g} kHz ", rotation=90, color="dimgrey", fontsize=17, ha="right", va="top",
                transform=ax.get_xaxis_transform())
    ax.set_xscale("log")
    _log_ticks(ax.xaxis)
    ax.set_xlabel("Output rate [kHz]" + (f" (input {input_rate_khz:g} kHz)" if input_rate_khz else ""))
    ax.set_ylabel("Signal efficiency (events" + (", TOS)" if tos else ")"))
    ax.set_ylim(0, 1.05)
    title = None
    if n_signal_events:
        title = f"band: {interval_label(interval if interval != 'bootstrap' else 'clopper_pearson')},\n{n_signal_events:g} signal events"
    legend_outside(ax, title=title, title_fontsize=14)
    label(ax)
    return ax


def efficiency_plot(
    binned: Mapping[str, Mapping[str, np.ndarray]],
    *,
    xlabel: str,
    interval_label: str,
    ylabel: str = "Efficiency",
    ax: Any = None,
    integer: bool | None = None,
) -> Any:
    """Efficiency vs a variable with binomial intervals, one series per entry.

    ``binned[name]`` holds ``edges``, ``value``, ``low``, ``high`` (as from
    :func:`hepsel.stats.intervals.binned_efficiency`). Points sit at the true bin
    centres with x error bars to the bin edges; series sharing bins are told
    apart by marker and colour, never shifted. ``integer`` (default: bin
    edges at half-integers) puts integer ticks on the x axis.
    """
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = new_figure()
    several = len(binned) > 1
    all_edges = []
    for i, (name, b) in enumerate(binned.items()):
        edges = np.asarray(b["edges"], dtype=float)
        all_edges.append(edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        v, lo, hi = (np.asarray(b[k], dtype=float) for k in ("value", "low", "high"))
        ax.errorbar(
            centres, v, yerr=[v - lo, hi - v], xerr=0.5 * np.diff(edges), fmt=_MARKERS[i % len(_MARKERS)],
            ms=8 if several else 6, mfc="white" if i % 2 else None, mew=1.5, capsize=0, elinewidth=2,
            alpha=0.8 if several else 1.0, label=name, color=_COLOURS[i % len(_COLOURS)],
        )
    if all_edges:
        ax.set_xlim(min(e[0] for e in all_edges), max(e[-1] for e in all_edges))
        if integer is None:
            integer = all(is_integer_binning(e) for e in all_edges)
    if integer:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_minor_locator(MaxNLocator(integer=True, nbins=40))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    legend_outside(ax, title=interval_label, title_fontsize=14)
    label(ax)
    return ax


def cutflow_plot(tables: Mapping[str, Sequence[Mapping[str, Any]]], *, ax: Any = None) -> Any:
    """Cumulative efficiency after each cut, one series per sample."""
    if ax is None:
        _, ax = new_figure((12, 8))
    steps: list[str] = []
    lows: list[float] = []
    for i, (sample, rows) in enumerate(tables.items()):
        steps = [r["step"] for r in rows]
        x = np.arange(len(rows))
        v = np.array([r["cumulative_eff"] for r in rows], dtype=float)
        lo = np.array([r["cumulative_eff_low"] for r in rows], dtype=float)
        hi = np.array([r["cumulative_eff_high"] for r in rows], dtype=float)
        ax.errorbar(x, v, yerr=[v - lo, hi - v], fmt=_MARKERS[i % len(_MARKERS)] + "-", ms=9, label=sample,
                    color=_COLOURS[i % len(_COLOURS)])
        lows.extend(lo[lo > 0])
    ax.set_xticks(np.arange(len(steps)))
    ax.set_xticklabels(steps, rotation=30, ha="right", rotation_mode="anchor", fontsize=17)
    ax.minorticks_off()
    ax.set_xlim(-0.4, len(steps) - 0.6)
    ax.set_yscale("log")
    # room above 1 and below the lowest point, so no marker is cut by the frame
    ax.set_ylim((min(lows) if lows else 1e-3) / 1.6, 1.6)
    ax.set_ylabel("Cumulative efficiency (candidates)")
    legend_outside(ax, fontsize=20)
    label(ax)
    return ax


def figure_of_merit_plot(opt: Mapping[str, Any], *, ax: Any = None, xlabel: str = "Signal efficiency (candidates)") -> Any:
    """S/sqrt(S+B) and Punzi figure of merit vs the signal efficiency of the cut, optima marked.

    ``opt`` is the output of :func:`hepsel.stats.performance.optimal_cuts`.
    """
    if ax is None:
        _, ax = new_figure()
    c = opt["curve"]
    eff = np.asarray(c["sig_eff"], dtype=float)
    sig = np.asarray(c["significance"], dtype=float)
    pun = np.asarray(c["punzi"], dtype=float)
    l1 = ax.plot(eff, sig / np.nanmax(sig), label="S/√(S+B)")
    l2 = ax.plot(eff, pun / np.nanmax(pun), label=f"Punzi, $\\sigma$ = {opt['punzi_sigma']:g}")
    for line, key, y in ((l1[0], "significance", 0.08), (l2[0], "punzi", 0.18)):
        o = opt[key]
        ax.axvline(o["sig_eff"], color=line.get_color(), ls="--", lw=1.5)
        ax.annotate(f" cut > {o['threshold']:.4f}", (o["sig_eff"], y), color=line.get_color(), fontsize=16)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Figure of merit / maximum")
    legend_outside(ax, title=f"S = {opt['signal_yield']:g}, B = {opt['background_yield']:g}\nbefore the cut", title_fontsize=14)
    label(ax)
    return ax


def correlation_plot(
    matrix: np.ndarray,
    names: Sequence[str],
    *,
    ax: Any = None,
    title: str = "",
    difference: bool = False,
) -> Any:
    """Feature correlation matrix (Pearson, in %), numbers in every cell.

    With ``difference``, ``matrix`` is a difference of two correlation
    matrices: it is drawn as a fraction (as the report's table quotes it), on
    a colour scale set by its own largest entry.
    """
    if ax is None:
        _, ax = new_figure((12, 10))
    m = np.asarray(matrix, dtype=float)
    n = len(names)
    if difference:
        vmax_shown = float(np.nanmax(np.abs(m))) or 1.0
        shown, fmt, cbar = m, "{:+.2f}", r"$\Delta\rho$ (generated $-$ real)"
    else:
        # whole percent, without a "-0"
        vmax_shown, shown, fmt, cbar = 100.0, np.round(100 * m) + 0.0, "{:.0f}", "correlation [%]"
    im = ax.imshow(shown, cmap="RdBu_r", vmin=-vmax_shown, vmax=vmax_shown)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    tick_size = 16 if n <= 10 else 14
    ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor", fontsize=tick_size)
    ax.set_yticklabels(names, fontsize=tick_size)
    ax.minorticks_off()
    cell_size = 16 if n <= 10 else (14 if n <= 14 else 10)
    for i in range(n):
        for j in range(n):
            val = shown[i, j]
            dark = abs(val) > 0.6 * vmax_shown
            ax.text(j, i, fmt.format(val), ha="center", va="center", fontsize=cell_size,
                    color="white" if dark else "black")
    ax.figure.colorbar(im, ax=ax, label=cbar)
    ax.set_title(title or "input features", loc="right", fontsize=18)
    label(ax)
    return ax


def shap_figures(
    expl: Any,
    *,
    max_dependence: int = 3,
    max_display: int = 15,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Beeswarm, mean |SHAP| bar and dependence plots of the top features.

    ``expl`` is a :class:`hepsel.explain.shap.Explanation`; ``labels`` maps feature
    names to axis labels with units (the config's ``features[i].label``).
    Beeswarm and bar are drawn by shap; the dependence plots are drawn here in
    the LHCb style, with axis ranges from the bulk of the data (quantiles) and
    a log x axis for a feature spanning decades. Returns name -> figure.
    """
    import matplotlib.pyplot as plt
    import shap

    names = [str(n) for n in expl.feature_names]
    shown = [(labels or {}).get(n, n) for n in names]
    e = shap.Explanation(values=expl.values, base_values=expl.base, data=expl.data, feature_names=shown)
    figs: dict[str, Any] = {}
    # shap lays out its own axes; the LHCb style's minor-tick locators break it
    with plt.style.context("default"), plt.rc_context({"font.size": 15}):
        fig, ax = plt.subplots(figsize=(12, 9))
        shap.plots.beeswarm(e, max_display=max_display, ax=ax, show=False, plot_size=None)
        ax.set_xlabel(f"SHAP value (impact on the {expl.output})", fontsize=17)
        ax.tick_params(labelsize=16)
        figs["beeswarm"] = _finish_shap(fig, ax)
        fig, ax = plt.subplots(figsize=(12, 9))
        shap.plots.bar(e, max_display=max_display, ax=ax, show=False)
        ax.set_xlabel(f"mean |SHAP value| ({expl.output})", fontsize=17)
        ax.tick_params(labelsize=16)
        figs["bar"] = _finish_shap(fig, ax)
    values = np.asarray(expl.values, dtype=float)
    data = np.asarray(expl.data, dtype=float)
    order = np.argsort(-np.mean(np.abs(values), axis=0))[:max_dependence]
    for i in order:
        i = int(i)
        # colour by the feature that interacts most with this one, as shap does
        inter = [int(j) for j in shap.utils.approximate_interactions(i, values, data) if int(j) != i]
        c = inter[0] if inter else None
        fig, ax = new_figure((11, 8))
        dependence_plot(
            data[:, i], values[:, i], ax=ax, xlabel=shown[i], ylabel=f"SHAP value ({expl.output})",
            colour=None if c is None else data[:, c], colour_label=None if c is None else shown[c],
        )
        figs[f"dependence_{names[i]}"] = fig
    return figs


def dependence_plot(
    x: np.ndarray,
    shap_values: np.ndarray,
    *,
    ax: Any = None,
    xlabel: str = "",
    ylabel: str = "SHAP value",
    colour: np.ndarray | None = None,
    colour_label: str | None = None,
) -> Any:
    """SHAP value of one feature vs its value, one point per candidate.

    The x, y and colour ranges cover the bulk of the data (0.5%-99.5%
    quantiles; 5%-95% for the colour), so a few outliers do not squash the
    plot; a feature spanning decades (:func:`spans_decades`) gets a log x axis.
    """
    if ax is None:
        _, ax = new_figure((11, 8))
    x = np.asarray(x, dtype=float)
    y = np.asarray(shap_values, dtype=float)
    logx = spans_decades(x)
    kw: dict[str, Any] = {"s": 10, "alpha": 0.7, "lw": 0, "rasterized": True}
    if colour is not None:
        cq = np.nanquantile(np.asarray(colour, dtype=float), [0.05, 0.95])
        kw.update(c=colour, cmap="coolwarm", vmin=cq[0], vmax=cq[1] if cq[1] > cq[0] else cq[0] + 1)
    else:
        kw.update(color=_COLOURS[0])
    sc = ax.scatter(x, y, **kw)
    ax.axhline(0, color="grey", ls=":", lw=1)
    if logx:
        ax.set_xscale("log")
        _log_ticks(ax.xaxis)
    ax.set_xlim(*quantile_range(x, log=logx))
    ax.set_ylim(*quantile_range(y))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colour is not None:
        ax.figure.colorbar(sc, ax=ax, label=colour_label or "", extend="both")
    label(ax)
    return ax


def _finish_shap(fig: Any, ax: Any) -> Any:
    ax.text(0.0, 1.01, "LHCb-like Simulation", transform=ax.transAxes, ha="left", va="bottom", fontsize=18, fontweight="bold")
    fig.tight_layout()
    return fig


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
    """Real vs generated distributions of every feature, one panel each.

    The range of each panel covers the bulk of the real events (0.5%-99.5%);
    a feature spanning decades gets log-spaced bins on a log axis; the y
    range holds both histograms. ``title`` should say which fold(s) are shown.
    """
    import matplotlib.pyplot as plt
    import mplhep

    n = len(names)
    ncol = 4
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 5.2 * nrow))
    for i, ax in enumerate(np.ravel(axes)):
        if i >= n:
            ax.set_visible(False)
            continue
        r, g = real[:, i], generated[:, i]
        logx = spans_decades(r)
        # range from the real events: a few generated outliers must not squash the panel
        lo, hi = quantile_range(r, log=logx)
        edges = np.geomspace(lo, hi, bins + 1) if logx else np.linspace(lo, hi, bins + 1)
        hr, _ = np.histogram(r, edges)
        hg, _ = np.histogram(g, edges)
        fr, fg = hr / max(len(r), 1), hg / max(len(g), 1)
        mplhep.histplot(fr, edges, ax=ax, histtype="fill", alpha=0.4, color=_COLOURS[0], label="real (held out)")
        mplhep.histplot(fg, edges, ax=ax, histtype="step", lw=2, color=_COLOURS[1], label="generated")
        if logx:
            ax.set_xscale("log")
            _log_ticks(ax.xaxis)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, 1.25 * max(float(fr.max(initial=0)), float(fg.max(initial=0)), 1e-12))
        if i % ncol == 0:
            ax.set_ylabel("Fraction / bin", fontsize=18)
        name = names[i]
        ax.set_xlabel((labels or {}).get(name, name), fontsize=20)
        ax.tick_params(labelsize=15)
        if w1 is not None and baseline is not None:
            ax.set_title(f"$W_1$ = {w1[name]:.3g} (real-real {baseline[name]:.3g})", fontsize=15, loc="right")
        if i == 0:
            ax.legend(fontsize=15, loc="upper right")
    fig.suptitle(f"LHCb-like Simulation: {title}", fontsize=24, fontweight="bold")
    fig.tight_layout()
    return fig


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
        x = np.array([r["n_real"] for r in rr], dtype=float) * (1 + 0.04 * (i - (len(models) - 1) / 2))
        y = np.array([r[f"{key}_mean"] for r in rr])
        e = np.array([r[f"{key}_std"] for r in rr])
        ax.errorbar(x, y, yerr=e, fmt="o-", ms=7, capsize=4, label=f"{m} (mean $\\pm$ std over seeds)", color=_COLOURS[i])
        px = [p["n_real"] * (1 + 0.04 * (i - (len(models) - 1) / 2)) for p in points if p["model"] == m]
        py = [p[key] for p in points if p["model"] == m]
        ax.plot(px, py, "x", color=_COLOURS[i], alpha=0.5, ms=6)
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
    (ls,) = ax.plot(thr, s, label="signal", color=_COLOURS[0])
    ax.plot(thr, b, label="background", color=_COLOURS[1])
    logit_x = bool(thr.size) and thr.min() > 0 and thr.max() < 1
    eps = 1e-6
    if logit_x:
        ax.set_xscale("logit")
        xlo, xhi = max(float(thr.min()), 1e-3), min(float(thr.max()), 1 - eps)
        ax.set_xlim(xlo, xhi)
        _logit_ticks(ax.xaxis, xlo, xhi)
    else:
        ax.set_xlim(float(thr.min()), float(thr.max()))
    ax.set_yscale("logit")
    inside = np.concatenate([s, b])
    inside = inside[(inside > 0) & (inside < 1)]
    ylo = max(float(inside.min()) / 2, eps) if inside.size else eps
    yhi = min(1 - (1 - float(inside.max())) / 2, 1 - eps) if inside.size else 1 - eps
    ax.set_ylim(ylo, yhi)
    _logit_ticks(ax.yaxis, ylo, yhi)
    order = np.argsort(thr)
    for k, (wl, cut) in enumerate((working_points or {}).items()):
        se = float(np.interp(cut, thr[order], s[order]))
        ax.axvline(cut, ls="--", color="dimgrey", lw=1.5, zorder=0)
        ax.plot(cut, se, _MARKERS[k % len(_MARKERS)], ms=10, mfc="white", mec=ls.get_color(), mew=2, zorder=5,
                label=f"{wl}: cut {cut:.4f}, $\\varepsilon_S$ = {se:.3f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Efficiency (candidates, score > cut)")
    legend_outside(ax)
    label(ax)
    return ax


def decorrelation_scan_plot(
    points: Sequence[Mapping[str, Any]], *, working_point: str, ax: Any = None
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
    ax.plot(x, y, "-", color="0.6", lw=1.5, zorder=1)
    # one colour and marker per strength, named in the legend: strong strengths
    # crowd together at small dCor, where text labels next to the points collide
    for i, (xi, yi, p) in enumerate(zip(x, y, pts, strict=True)):
        ax.scatter(
            [xi], [yi], s=110, marker=_MARKERS[i % len(_MARKERS)], color=_COLOURS[i % len(_COLOURS)],
            zorder=2, label=f"$\\lambda$ = {p['strength']:g}",
        )
    ax.legend(loc="lower right", fontsize=18)
    ax.set_xlim(0, max(1e-3, float(np.nanmax(x))) * 1.3)
    ax.margins(y=0.2)
    ax.set_xlabel("Background dCor(score, spectator)")
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
) -> Any:
    """Background distribution of a spectator (fraction per bin) before the cut and after it, per series.

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
        ax.stairs(d, e, lw=2.5, color=_COLOURS[(i + 1) % len(_COLOURS)], label=f"passing, {name}")
    ax.set_xlim(e[0], e[-1])
    ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Fraction of background per bin")
    ax.legend(loc="upper right", fontsize=16)
    label(ax)
    return ax
def _value_text(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}" if abs(v) < 1e8 else f"{v:.3e}"


def why_figure(expl: Any, *, labels: Mapping[str, str] | None = None, title: str = "", max_display: int = 10) -> Any:
    """One candidate's SHAP waterfall (left) and LIME attributions (right), on the model's margin.

    ``expl`` is a :class:`hepsel.explain.local.LocalExplanation`. Features are sorted
    by |SHAP|; the ``max_display - 1`` largest are shown, the others summed
    in one bar. Each is named by its label with the candidate's value in
    physical units. The waterfall starts at the base value and ends at
    base + sum of SHAP values (marked with the model's own output); the LIME
    panel shows ``weight * (x - mean) / std`` per feature, with the spread
    over LIME seeds as error bars and the surrogate's R^2.
    """
    import matplotlib.pyplot as plt

    labels = dict(labels or {})
    names = list(expl.feature_names)
    shap_v, lime_v = np.asarray(expl.shap, float), np.asarray(expl.lime_contribution, float)
    lime_err = np.asarray(expl.lime_weight_std, float) * np.abs(np.asarray(expl.lime_offset, float))
    order = list(np.argsort(-np.abs(shap_v), kind="stable"))
    shown, rest = order[: max_display - 1], order[max_display - 1:]
    if len(rest) == 1:
        shown, rest = order, []
    rows = [f"{labels.get(names[i]) or names[i]} = {_value_text(float(expl.value[i]))}" for i in shown]
    s_rows, l_rows, e_rows = [shap_v[i] for i in shown], [lime_v[i] for i in shown], [lime_err[i] for i in shown]
    if rest:
        rows.append(f"{len(rest)} other features")
        s_rows.append(float(shap_v[rest].sum()))
        l_rows.append(float(lime_v[rest].sum()))
        e_rows.append(float(np.sqrt(np.sum(lime_err[rest] ** 2))))
    n = len(rows)
    y = np.arange(n)[::-1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(20, 1.0 + 0.75 * n + 2.5), sharey=True)
    # waterfall: each bar runs from the running sum before the feature to the one after it
    start = expl.shap_base
    for yi, v in zip(y, s_rows, strict=True):
        color = "#d62728" if v > 0 else "#1f77b4"
        ax1.barh(yi, v, left=start, color=color, height=0.7)
        ax1.text(start + v, yi, f" {v:+.3f} ", va="center",
                 ha="left" if v >= 0 else "right", fontsize=14)
        start += v
    ax1.axvline(expl.shap_base, color="grey", ls=":", lw=1.5, label=f"base value {expl.shap_base:.3f}")
    ax1.axvline(expl.output, color="black", ls="--", lw=1.5, label=f"model output {expl.output:.3f}")
    ax1.set_yticks(y, rows, fontsize=14)
    lo = min(expl.shap_base, expl.output, *(expl.shap_base + np.cumsum(s_rows)))
    hi = max(expl.shap_base, expl.output, *(expl.shap_base + np.cumsum(s_rows)))
    pad = 0.25 * (hi - lo or 1.0)
    ax1.set_xlim(lo - pad, hi + pad)
    method = str(expl.shap_method)
    output = "reconstruction error" if "reconstruction error" in method else "logit" if "logit" in method else "margin (log-odds)"
    ax1.set_xlabel(output, fontsize=18)
    ax1.set_title("SHAP: " + expl.shap_method.split(":")[0].split(";")[0], fontsize=16)
    ax1.legend(fontsize=13, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    colors = ["#d62728" if v > 0 else "#1f77b4" for v in l_rows]
    ax2.barh(y, l_rows, xerr=e_rows, color=colors, height=0.7, capsize=3)
    ax2.axvline(0, color="black", lw=1)
    for yi, v in zip(y, l_rows, strict=True):
        ax2.text(v, yi, f" {v:+.3f} ", va="bottom", ha="left" if v >= 0 else "right", fontsize=13)
    lo2, hi2 = min(0.0, *l_rows), max(0.0, *l_rows)
    pad2 = 0.2 * (hi2 - lo2 or 1.0)
    ax2.set_xlim(lo2 - pad2, hi2 + pad2)
    r2 = float(np.mean(expl.lime_r2))
    ax2.set_xlabel("LIME weight x (value - mean) / std", fontsize=18)
    ax2.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax2.set_title(f"LIME surrogate: R$^2$ = {r2:.2f}, prediction {expl.lime_local_pred:.3f}", fontsize=16)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=14)
        ax.minorticks_off()
    fig.suptitle(title, fontsize=18)
    fig.tight_layout()
    return fig


def pull_plot(pulls: ArrayLike, n_replicas: int, *, ax: Any = None, title: str | None = None) -> Any:
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
    ax.stairs(dens, edges, fill=True, alpha=0.35, color=_COLOURS[0], label=f"pulls ({len(p)} candidates)")
    x = np.linspace(edges[0], edges[-1], 400)
    ax.plot(x, t.pdf(x, n_replicas - 1), color=_COLOURS[1], lw=2, label=f"Student t, {n_replicas - 1} dof (calibrated)")
    ax.plot(x, norm.pdf(x), color=_COLOURS[2], lw=1.5, ls="--", label="standard normal")
    frac = float(np.mean(np.abs(p) > 1)) if len(p) else float("nan")
    exp = float(2 * t.sf(1.0, n_replicas - 1))
    ax.axvline(-1, color="grey", lw=1, ls=":")
    ax.axvline(1, color="grey", lw=1, ls=":")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel(r"Pull $(s_\mathrm{check} - \bar{s})\,/\,(\sigma\,(1 + 1/R)^{1/2})$")
    ax.set_ylabel("Density (outer bins: overflow)")
    ax.set_title(title or "", loc="right", fontsize=16)
    legend_outside(ax, title=f"|pull| > 1: {frac:.3f} (expected {exp:.3f})", title_fontsize=14)
    label(ax)
    return ax


def pull_fraction_plot(bins: Sequence[Mapping[str, Any]], expected: float, *, ax: Any = None, xlabel: str = "Score") -> Any:
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
    ax.errorbar(x, f, yerr=err, xerr=0.5, fmt="o", color=_COLOURS[0], label="measured")
    ax.axhline(expected, color=_COLOURS[1], lw=2, label=f"expected ({expected:.3f})")
    ax.set_xticks(x, [f"{a:.3g}-{b:.3g}" for a, b in zip(lo, hi, strict=True)], rotation=30, ha="right", fontsize=14)
    ax.minorticks_off()
    ax.set_xlim(-0.5, len(f) - 0.5)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Fraction with |pull| > 1")
    legend_outside(ax, title="bins of equal population", title_fontsize=14)
    label(ax)
    return ax


#: What the robustness plots show per quantity: the key in robustness.json, the axis label and a scale.
_ROBUSTNESS_QUANTITIES: dict[str, tuple[str, float, bool]] = {
    "eff": (r"$\Delta\varepsilon_{sig}$ [%-points]", 100.0, False),
    "rate_khz": (r"$\Delta$rate / rate [%]", 100.0, True),
    "sig_eff": (r"$\Delta\varepsilon_{sig}$ [%-points]", 100.0, False),
    "bkg_eff": (r"$\Delta\varepsilon_{bkg}$ / $\varepsilon_{bkg}$ [%]", 100.0, True),
}


def robustness_plot(result: Mapping[str, Any], *, shift: str, quantity: str = "eff", ax: Any = None) -> Any:
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
            np.arange(len(keys)) + dx, y, yerr=e, fmt=_MARKERS[i % len(_MARKERS)], ms=9, capsize=4,
            color=_COLOURS[i % len(_COLOURS)], label=m,
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
    if spread == 0.0:  # nothing moved (a scale of 1): a symmetric axis, not a range of rounding noise
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
        len(rows), len(shifts), figsize=(9 * len(shifts), 6.5 * len(rows)), squeeze=False, sharex="col"
    )
    for j, sh in enumerate(shifts):
        for i, q in enumerate(rows):
            ax = axes[i, j]
            robustness_plot(result, shift=sh, quantity=q, ax=ax)
            if i > 0:
                ax.set_title("")
            if i < len(rows) - 1:
                ax.set_xlabel("")
    label(axes[0, 0])
    legend_outside(axes[0, -1])
    fig.tight_layout()
    return fig
