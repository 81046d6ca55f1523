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
    "binomial_band",
    "bulk_range",
    "count_text",
    "cutflow_plot",
    "efficiency_plot",
    "figure_of_merit_plot",
    "is_integer_binning",
    "label",
    "legend_outside",
    "lhcb_style",
    "mode_latex",
    "new_figure",
    "quantile_range",
    "rate_plot",
    "rate_text",
    "roc_plot",
    "save",
    "score_plot",
    "spans_decades",
    "tick_label",
]

# --------------------------------------------------------------------------
# pure helpers (no matplotlib)
# --------------------------------------------------------------------------
# particle base name -> (symbol, subscript) in mathtext
_PARTICLES: dict[str, tuple[str, str]] = {
    "B": ("B", ""),
    "Bs": ("B", "s"),
    "Bc": ("B", "c"),
    "D": ("D", ""),
    "Ds": ("D", "s"),
    "K": ("K", ""),
    "KS": ("K", "S"),
    "KL": ("K", "L"),
    "pi": (r"\pi", ""),
    "mu": (r"\mu", ""),
    "e": ("e", ""),
    "tau": (r"\tau", ""),
    "nu": (r"\nu", ""),
    "p": ("p", ""),
    "n": ("n", ""),
    "Lambda": (r"\Lambda", ""),
    "Lambdab": (r"\Lambda", "b"),
    "Lambda_b": (r"\Lambda", "b"),
    "Lambdac": (r"\Lambda", "c"),
    "Lambda_c": (r"\Lambda", "c"),
    "Xi": (r"\Xi", ""),
    "Omega": (r"\Omega", ""),
    "phi": (r"\phi", ""),
    "rho": (r"\rho", ""),
    "omega": (r"\omega", ""),
    "eta": (r"\eta", ""),
    "gamma": (r"\gamma", ""),
    "psi": (r"\psi", ""),
    "J/psi": (r"J/\psi", ""),
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

    funcs = {
        "clopper_pearson": intervals.clopper_pearson,
        "wilson": intervals.wilson,
        "normal": intervals.normal,
    }
    func = funcs.get(method, intervals.clopper_pearson)
    e = np.clip(np.asarray(eff, dtype=float), 0.0, 1.0)
    lo, hi = func(e * n, np.full_like(e, float(n)), cl=intervals.DEFAULT_CL if cl is None else cl)
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


def quantile_range(
    x: ArrayLike, q: tuple[float, float] = (0.005, 0.995), *, log: bool = False
) -> tuple[float, float]:
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


def tick_label(text: str) -> str:
    """A plot label without its trailing unit (``"$p_T$ [MeV]"`` -> ``"$p_T$"``), for crowded ticks."""
    return re.sub(r"\s*\[[^\[\]]*\]$", "", text) or text


def count_text(x: float) -> str:
    """An expected yield for a legend: ``1000``, ``25 000``, ``1.5 x 10^6`` (in mathtext)."""
    if not np.isfinite(x):
        return str(x)
    if abs(x) >= 1e5:
        exp = int(np.floor(np.log10(abs(x))))
        mant = x / 10.0**exp
        return f"${mant:.3g} \\times 10^{{{exp}}}$" if round(mant, 2) != 1 else f"$10^{{{exp}}}$"
    if abs(x) >= 1e4:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.4g}"


def bulk_range(
    x: ArrayLike,
    *,
    log: bool = False,
    fence: float = 3.0,
    min_q: float = 0.05,
    pad: float = 0.05,
) -> tuple[float, float]:
    """Axis range ``(lo, hi)`` over the bulk of ``x``, cut short of a long tail; padded by 5%.

    The 0.5%-99.5% quantiles, but no further than ``fence`` interquartile
    ranges beyond the quartiles (in log10 with ``log``), and never inside the
    ``min_q`` and ``1 - min_q`` quantiles: at most ``min_q`` of the values
    lie beyond either end. A feature with a long tail (a corrected mass that
    runs to 200 GeV for a few candidates) keeps its bulk readable.
    """
    v = np.asarray(x, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)] if log else v[np.isfinite(v)]
    if v.size == 0:
        return (0.1, 10.0) if log else (0.0, 1.0)
    t = np.log10(v) if log else v
    q_lo, q_in_lo, q1, q3, q_in_hi, q_hi = np.quantile(
        t, [0.005, min_q, 0.25, 0.75, 1 - min_q, 0.995]
    )
    iqr = q3 - q1
    lo = float(np.clip(q1 - fence * iqr, q_lo, q_in_lo))
    hi = float(np.clip(q3 + fence * iqr, q_in_hi, q_hi))
    margin = pad * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - margin, hi + margin
    return (float(10**lo), float(10**hi)) if log else (lo, hi)


def spans_decades(
    x: ArrayLike, *, decades: float = 2.0, q: tuple[float, float] = (0.01, 0.99)
) -> bool:
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
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<"]
COLOURS = ["#0057a8", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]


@contextlib.contextmanager
def lhcb_style() -> Iterator[None]:
    """Apply mplhep's LHCb style (non-interactive backend) within a block."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep
    from matplotlib.rcsetup import cycler

    with (
        plt.style.context(mplhep.style.LHCb2),
        mpl.rc_context({"axes.prop_cycle": cycler(color=COLOURS)}),
    ):
        yield


def new_figure(figsize: tuple[float, float] = (10, 8)) -> tuple[Any, Any]:
    """A figure and axes (call inside :func:`lhcb_style`)."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)


def label(ax: Any, text: str = "Simulation") -> None:
    """Experiment-style label: hepsel's simulated LHCb-like samples."""
    # above the frame, so it never collides with curves or legends
    ax.text(
        0.0,
        1.01,
        f"LHCb-like {text}",
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=24,
        fontweight="bold",
    )


def legend_outside(ax: Any, *, fontsize: float = 18, **kw: Any) -> Any:
    """Legend to the right of the axes, clear of the data (the saved figure grows to hold it)."""
    return ax.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=fontsize, **kw
    )


def log_ticks(axis: Any) -> None:
    """Every major label of a log axis as a power of ten (no mix of 0.01 and 10^-3)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(_power_of_ten))


def _decimal_log_ticks(axis: Any) -> None:
    """Labelled ticks at 1, 2 and 5 per decade as plain decimals: a log axis of one or two decades gets enough labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(
        FuncFormatter(lambda x, _pos: f"{x:.6g}" if x >= 1e-4 else _power_of_ten(x))
    )
    axis.set_minor_formatter(NullFormatter())


def _power_of_ten(x: float, _pos: int | None = None) -> str:
    return f"$10^{{{round(np.log10(x))}}}$" if x > 0 else ""


def logit_ticks(axis: Any, lo: float, hi: float) -> None:
    """Ticks of a logit axis as decimals (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, ...), one notation throughout."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = [10.0**-k for k in range(8, 0, -1)] + [0.5] + [1 - 10.0**-k for k in range(1, 9)]
    ticks = [t for t in ticks if lo <= t <= hi]
    if len(ticks) > 9:
        # every other decade, so that the labels of a wide range do not overlap
        ticks = [t for t in ticks if t == 0.5 or round(np.log10(min(t, 1 - t))) % 2 == 0]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_minor_locator(NullLocator())
    axis.set_ticklabels([logit_tick_text(t) for t in ticks])


def logit_tick_text(t: float) -> str:
    """``0.001``, ``0.5``, ``0.999``: one notation (decimals) on both sides of a logit axis."""
    digits = max(1, round(-np.log10(min(t, 1 - t))))
    return f"{t:.{digits}f}"


def save(fig: Any, path: str | os.PathLike[str]) -> list[Path]:
    """Write ``path.pdf`` and ``path.png`` (atomically) and close the figure.

    The extensions are appended, never substituted: a dot in ``path``'s name
    (a feature called ``mu.pt``, say) stays part of the name. The saved area
    is fitted to the drawn content, so legends placed outside the axes are kept.
    """
    import matplotlib.pyplot as plt

    from ..io.storage import atomic_path

    p = Path(path)
    # the content's extent, laid out once without rendering and used for both formats
    # (``bbox_inches="tight"`` would lay the figure out again for each)
    fig.draw_without_rendering()
    bbox = fig.get_tightbbox().padded(0.15)
    out = []
    for ext in (".pdf", ".png"):
        target = p.with_name(p.name + ext)
        with atomic_path(target, suffix=ext) as tmp:
            fig.savefig(tmp, format=ext[1:], dpi=100 if ext == ".png" else None, bbox_inches=bbox)
        out.append(target)
    plt.close(fig)
    return out


def _wp_handles(labels: Sequence[str]) -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D(
            [],
            [],
            ls="none",
            marker=MARKERS[i % len(MARKERS)],
            ms=11,
            mfc="white",
            mec="black",
            mew=2,
            label=lab,
        )
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
            lab += f" (AUC = {c['auc']:.4f}" + (
                f" $\\pm$ {c['auc_std']:.4f})" if c.get("auc_std") else ")"
            )
        (line,) = ax.plot(c["bkg_eff"], c["sig_eff"], label=lab, color=COLOURS[i % len(COLOURS)])
        wps = (working_points or {}).get(name, {})
        if wps and "threshold" in c:
            thr = np.asarray(c["threshold"], dtype=float)
            ok = np.isfinite(thr)
            # thresholds decrease along the curve; np.interp wants them increasing
            t, x, y = (
                thr[ok][::-1],
                np.asarray(c["bkg_eff"])[ok][::-1],
                np.asarray(c["sig_eff"])[ok][::-1],
            )
            for wl, cut in wps.items():
                if wl not in wp_labels:
                    wp_labels.append(wl)
                m = MARKERS[wp_labels.index(wl) % len(MARKERS)]
                ax.plot(
                    np.interp(cut, t, x),
                    np.interp(cut, t, y),
                    ls="none",
                    marker=m,
                    ms=11,
                    mfc="white",
                    mec=line.get_color(),
                    mew=2,
                    zorder=5,
                )
    if log:
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
        log_ticks(ax.xaxis)
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
    colours = {"signal": COLOURS[0], "background": COLOURS[1]}
    drawn: list[np.ndarray] = []
    for cls in ("signal", "background"):
        s, w = test[cls]
        h, _ = np.histogram(s, edges, weights=w)
        norm = h.sum() * np.diff(edges)
        mplhep.histplot(
            h / norm,
            edges,
            ax=ax,
            histtype="fill",
            alpha=0.35,
            color=colours[cls],
            label=f"{cls} (test)",
        )
        drawn.append(h / norm)
        s, w = train[cls]
        h, _ = np.histogram(s, edges, weights=w)
        h2, _ = np.histogram(s, edges, weights=np.square(w))
        norm = h.sum() * np.diff(edges)
        p = ks_pvalue.get(cls) if ks_pvalue else None
        ptxt = "" if p is None else (f", KS p = {p:.3f}" if p >= 1e-3 else f", KS p = {p:.1e}")
        lab = f"{cls} (train){ptxt}"
        centres = 0.5 * (edges[1:] + edges[:-1])
        ax.errorbar(
            centres,
            h / norm,
            yerr=np.sqrt(h2) / norm,
            xerr=0.5 * np.diff(edges),
            fmt="o",
            ms=4,
            color=colours[cls],
            label=lab,
        )
        drawn.append(h / norm)
    ax.set_yscale("log")
    vals = np.concatenate(drawn)
    pos = vals[np.isfinite(vals) & (vals > 0)]
    if pos.size:
        ax.set_ylim(pos.min() / 2, pos.max() * 2)
    log_ticks(ax.yaxis)
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
    working_points: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> Any:
    """Signal efficiency (event level) vs output rate [kHz], one curve per model.

    Each target rate is a labelled vertical line. ``working_points[model][target]``
    (a model's ``eff_at_rate`` entries) marks each working point at its
    *measured* rate, with the rate's error (the minimum-bias half that did not
    choose the threshold) and the efficiency's ``interval``; without it, the
    markers sit on the curves at the target rates.
    """
    from ..stats.intervals import interval_label

    if ax is None:
        _, ax = new_figure()
    key = "eff_tos" if tos else "eff"
    for i, (name, c) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        r, e = np.asarray(c["rate_khz"], dtype=float), np.asarray(c[key], dtype=float)
        ax.plot(r, e, label=name, color=colour)
        order = np.argsort(r)
        wps = (working_points or {}).get(name, {})
        for k, t in enumerate(targets_khz):
            wp = wps.get(f"{t:g}")
            marker = {"ms": 10, "mfc": "white", "mec": colour, "mew": 2, "zorder": 5}
            if wp is not None and "rate_khz_measured" in wp:
                y = wp[key]
                ax.errorbar(
                    wp["rate_khz_measured"],
                    y,
                    xerr=wp["rate_khz_measured_err"],
                    yerr=[[y - wp[f"{key}_low"]], [wp[f"{key}_high"] - y]],
                    fmt=MARKERS[k % len(MARKERS)],
                    color=colour,
                    elinewidth=2,
                    capsize=3,
                    **marker,
                )
            else:
                ax.plot(t, np.interp(t, r[order], e[order]), MARKERS[k % len(MARKERS)], **marker)
    for t in targets_khz:
        ax.axvline(t, ls="--", color="dimgrey", lw=1.5, zorder=0)
        # inside the frame, left of the line, where the efficiency curves have not yet reached
        ax.text(
            t,
            0.985,
            f"{t:g} kHz ",
            rotation=90,
            color="dimgrey",
            fontsize=17,
            ha="right",
            va="top",
            transform=ax.get_xaxis_transform(),
        )
    ax.set_xscale("log")
    log_ticks(ax.xaxis)
    ax.set_xlabel(
        "Output rate [kHz]" + (f" (input {rate_text(input_rate_khz)})" if input_rate_khz else "")
    )
    ax.set_ylabel("Signal efficiency (events" + (", TOS)" if tos else ")"))
    ax.set_ylim(0, 1.05)
    title = None
    if working_points:
        band = interval_label(interval if interval != "bootstrap" else "clopper_pearson")
        title = "markers: rate measured on the\nother minimum-bias half ($\\pm 1\\sigma$),\n"
        title += f"efficiency {band}"
        if n_signal_events:
            title += f"\non {n_signal_events:,.0f} signal events".replace(",", " ")
    legend_outside(ax, title=title, title_fontsize=14)
    label(ax)
    return ax


def rate_text(khz: float) -> str:
    """A rate for people: ``30 MHz``, ``660 kHz``, ``1.5 kHz``, ``20 Hz``."""
    if khz >= 1000:
        return f"{khz / 1000:.4g} MHz"
    if khz >= 1:
        return f"{khz:.4g} kHz"
    return f"{khz * 1000:.4g} Hz"


def efficiency_plot(
    binned: Mapping[str, Mapping[str, np.ndarray]],
    *,
    xlabel: str,
    interval_label: str,
    ylabel: str = "Efficiency",
    ax: Any = None,
    integer: bool | None = None,
    logy: bool = False,
) -> Any:
    """Efficiency vs a variable with binomial intervals, one series per entry.

    ``binned[name]`` holds ``edges``, ``value``, ``low``, ``high`` (as from
    :func:`hepsel.stats.intervals.binned_efficiency`). Points sit at the true bin
    centres with x error bars to the bin edges; series sharing bins are told
    apart by marker and colour, never shifted. ``integer`` (default: bin
    edges at half-integers) puts integer ticks on the x axis. With ``logy``
    the y axis is logarithmic and reaches below the lowest interval; a bin
    with no passing event is drawn as an upper limit (arrow at its upper edge).
    """
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = new_figure()
    several = len(binned) > 1
    all_edges = []
    lows: list[float] = []
    for i, (name, b) in enumerate(binned.items()):
        edges = np.asarray(b["edges"], dtype=float)
        all_edges.append(edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        v, lo, hi = (np.asarray(b[k], dtype=float) for k in ("value", "low", "high"))
        if logy:
            lows.extend(lo[lo > 0])
            lows.extend(v[v > 0])
            zero = v <= 0
            if zero.any():  # nothing passed: the interval is an upper limit
                ax.errorbar(
                    centres[zero],
                    hi[zero],
                    yerr=0.4 * hi[zero],
                    xerr=0.5 * np.diff(edges)[zero],
                    uplims=True,
                    fmt="none",
                    elinewidth=2,
                    alpha=0.8 if several else 1.0,
                    color=COLOURS[i % len(COLOURS)],
                )
            v, lo, hi = (np.where(zero, np.nan, a) for a in (v, lo, hi))
        ax.errorbar(
            centres,
            v,
            yerr=[v - lo, hi - v],
            xerr=0.5 * np.diff(edges),
            fmt=MARKERS[i % len(MARKERS)],
            ms=8 if several else 6,
            mfc="white" if i % 2 else None,
            mew=1.5,
            capsize=0,
            elinewidth=2,
            alpha=0.8 if several else 1.0,
            label=name,
            color=COLOURS[i % len(COLOURS)],
        )
    if all_edges:
        ax.set_xlim(min(e[0] for e in all_edges), max(e[-1] for e in all_edges))
        if integer is None:
            integer = all(is_integer_binning(e) for e in all_edges)
    if integer:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_minor_locator(MaxNLocator(integer=True, nbins=40))
    if logy:
        ax.set_yscale("log")
        log_ticks(ax.yaxis)
        # every interval inside the frame: below the lowest lower edge, above 1
        ax.set_ylim(max(min(lows, default=1e-3) / 2, 1e-7), 2.0)
    else:
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
        ax.errorbar(
            x,
            v,
            yerr=[v - lo, hi - v],
            fmt=MARKERS[i % len(MARKERS)] + "-",
            ms=9,
            label=sample,
            color=COLOURS[i % len(COLOURS)],
        )
        lows.extend(lo[lo > 0])
    ax.set_xticks(np.arange(len(steps)))
    ax.set_xticklabels(steps, rotation=30, ha="right", rotation_mode="anchor", fontsize=17)
    ax.minorticks_off()
    ax.set_xlim(-0.4, len(steps) - 0.6)
    ax.set_yscale("log")
    # room above 1 and below the lowest point, so no marker is cut by the frame
    ax.set_ylim((min(lows) if lows else 1e-3) / 1.6, 1.6)
    _decimal_log_ticks(ax.yaxis)
    ax.set_ylabel("Cumulative efficiency (candidates)")
    legend_outside(ax, fontsize=20)
    label(ax)
    return ax


def figure_of_merit_plot(
    opt: Mapping[str, Any], *, ax: Any = None, xlabel: str = "Signal efficiency (candidates)"
) -> Any:
    """S/sqrt(S+B) and Punzi figure of merit vs the signal efficiency of the cut, optima marked.

    ``opt`` is the output of :func:`hepsel.stats.performance.optimal_cuts`.
    Each curve is divided by its maximum over the allowed cuts; the cuts that
    keep too little simulated background (``curve["allowed"]`` false) are
    shaded, and the curves there are drawn dashed.
    """
    if ax is None:
        _, ax = new_figure()
    c = opt["curve"]
    eff = np.asarray(c["sig_eff"], dtype=float)
    allowed = np.asarray(c.get("allowed", np.ones(len(eff), dtype=bool)), dtype=bool)
    curves = {
        "significance": ("S/√(S+B)", np.asarray(c["significance"], dtype=float)),
        "punzi": (
            f"Punzi, $\\sigma$ = {opt['punzi_sigma']:g}",
            np.asarray(c["punzi"], dtype=float),
        ),
    }
    top = 1.0
    for i, (key, (name, fom)) in enumerate(curves.items()):
        colour = COLOURS[i]
        ref = np.nanmax(np.where(allowed, fom, np.nan)) if allowed.any() else np.nanmax(fom)
        y = fom / ref
        ax.plot(eff, np.where(allowed, y, np.nan), color=colour, label=name)
        ax.plot(eff, np.where(allowed, np.nan, y), color=colour, ls=":", lw=1.5)
        top = max(top, float(np.nanmax(y, initial=1.0)))
        o = opt[key]
        ax.axvline(o["sig_eff"], color=colour, ls="--", lw=1.5)
        ax.annotate(
            f" cut > {o['threshold']:.4f}",
            (o["sig_eff"], 0.08 + 0.1 * i),
            color=colour,
            fontsize=16,
        )
    if not allowed.all():
        # the excluded cuts are the tightest ones: low signal efficiency
        edge = float(np.nanmin(eff[allowed])) if allowed.any() else 1.0
        ax.axvspan(
            0.0,
            edge,
            color="0.85",
            zorder=0,
            label=f"< {opt.get('min_background_candidates', '?')} simulated\nbackground pass",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, min(1.1 * top, 2.0) if top > 1.0 else 1.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Figure of merit / maximum")
    legend_outside(
        ax,
        title=f"S = {count_text(opt['signal_yield'])}, B = {count_text(opt['background_yield'])}"
        "\nbefore the cut",
        title_fontsize=14,
    )
    label(ax)
    return ax
