"""Plots of explanations: SHAP summaries and dependence plots, one candidate's attributions.

Same conventions as :mod:`hepsel.report.plotting`: drawn with matplotlib in
mplhep's LHCb style (call inside :func:`~hepsel.report.plotting.lhcb_style`),
one function per plot kind taking ``ax=None``; ``save`` writes PDF and PNG.
The SHAP summaries are drawn here rather than by ``shap.plots``, so that they
share the fonts, ticks and label of every other figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .plotting import (
    COLOURS,
    bulk_range,
    label,
    log_ticks,
    new_figure,
    quantile_range,
    spans_decades,
    tick_label,
)

__all__ = [
    "bar_plot",
    "beeswarm_plot",
    "bulk_range",
    "dependence_plot",
    "explained_quantity",
    "format_sig",
    "quantile_colours",
    "shap_figures",
    "shap_method_short",
    "why_figure",
]

MINUS = "\N{MINUS SIGN}"
#: colour map of feature values (by quantile) in the beeswarm and dependence plots
CMAP = "coolwarm"
_RED, _BLUE = "#d62728", "#1f77b4"


# --------------------------------------------------------------------------
# pure helpers (no matplotlib)
# --------------------------------------------------------------------------
def format_sig(value: float, digits: int = 3, *, signed: bool = False) -> str:
    """``value`` with ``digits`` significant digits, as plain text (mathtext for extreme magnitudes).

    Plain decimals between 1e-3 and 1e5 (``0.0123``, ``6170``), ``a x 10^b``
    in mathtext outside; a true minus sign; ``signed`` adds ``+`` to positive
    values. Zero (also after rounding) is ``0``, never ``-0``.

    Examples
    --------
    >>> format_sig(3.6513), format_sig(0.2), format_sig(6171.3), format_sig(0.01234)
    ('3.65', '0.200', '6170', '0.0123')
    >>> format_sig(0.0004364)
    '$4.36\\\\times10^{-4}$'
    >>> format_sig(0.5913, signed=True), format_sig(-0.0, signed=True)
    ('+0.591', '0')
    """
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    rounded = float(f"{v:.{digits - 1}e}")
    if rounded == 0 or abs(rounded) < 1e-300:
        return "0"
    sign = MINUS if rounded < 0 else ("+" if signed else "")
    a = abs(rounded)
    e = math.floor(math.log10(a))
    if -3 <= e < 5:
        return sign + f"{a:.{max(digits - 1 - e, 0)}f}"
    mantissa = a / 10.0**e
    # mathtext draws "-" as a minus sign
    return f"${sign.replace(MINUS, '-')}{mantissa:.{digits - 1}f}\\times10^{{{e}}}$"


def explained_quantity(output: str) -> str:
    """What a model's SHAP values add up to, named the same way for every model kind.

    ``output`` is the ``output`` of a :class:`hepsel.explain.shap_values.Explanation`
    (``"margin (log-odds)"``, ``"logit"``, ``"reconstruction error"``) or a
    candidate's ``shap_method`` line. BDT margins, MLP logits and the Fisher
    discriminant are all the log-odds of the signal (the probability is their
    logistic), so they get one name; an autoencoder's score is its
    reconstruction error; a model explained on an unknown ``decision_function``
    is named by that.

    Examples
    --------
    >>> explained_quantity("margin (log-odds)"), explained_quantity("logit")
    ('log-odds', 'log-odds')
    >>> explained_quantity("reconstruction error")
    'reconstruction error'
    """
    text = output.lower()
    if "reconstruction error" in text:
        return "reconstruction error"
    if "permutation" in text or "decision_function" in text:
        return "decision function"
    return "log-odds"


def quantile_colours(values: ArrayLike) -> np.ndarray:
    """Each value's quantile in [0, 1] among the finite ones (ties share one); NaN where not finite."""
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=float).ravel()
    out = np.full(v.shape, np.nan)
    ok = np.isfinite(v)
    m = int(ok.sum())
    if m == 1:
        out[ok] = 0.5
    elif m > 1:
        out[ok] = (rankdata(v[ok]) - 1) / (m - 1)
    return out


def _display_rows(importance: np.ndarray, max_display: int) -> tuple[list[int], list[int]]:
    """Features shown one by one (by decreasing ``importance``) and those summed into one row."""
    order = [int(i) for i in np.argsort(-importance, kind="stable")]
    if len(order) <= max_display:
        return order, []
    return order[: max_display - 1], order[max_display - 1 :]


def _swarm_offsets(x: np.ndarray, rng: np.random.Generator, width: float) -> np.ndarray:
    """Vertical offsets of a beeswarm row: uniform jitter scaled by the local density of ``x``."""
    ok = np.isfinite(x)
    out = np.zeros(x.shape)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        out[ok] = rng.uniform(-width, width, int(ok.sum()))
        return out
    counts, edges = np.histogram(x[ok], bins=60)
    # a little smoothing, so the envelope does not flicker bin to bin
    smooth = np.convolve(counts, [0.25, 0.5, 0.25], mode="same")
    idx = np.clip(np.searchsorted(edges, x[ok], side="right") - 1, 0, len(counts) - 1)
    density = np.sqrt(smooth[idx] / smooth.max())
    out[ok] = rng.uniform(-1.0, 1.0, int(ok.sum())) * width * np.maximum(density, 0.08)
    return out


def shap_method_short(method: str) -> str:
    """A few words naming how a candidate was explained, for a panel title (from ``shap_method``).

    Examples
    --------
    >>> shap_method_short("TreeSHAP (xgboost pred_contribs); exact")
    'TreeSHAP (exact)'
    """
    m = method.lower()
    if "bonsai" in m:
        return "TreeSHAP of the bonsai BDT's cell (exact)"
    if "treeshap" in m:
        return "TreeSHAP (exact)"
    if "linear" in m:
        return "linear model (exact)"
    if "expected gradients" in m:
        return "expected gradients (sampling estimate)"
    if "permutation" in m:
        return "permutation (sampling estimate)"
    return method.split(":")[0].split(";")[0]


def _label_with_value(text: str, value: float) -> str:
    """``"$p_T(B)$ [MeV]"`` and 539.4 -> ``"$p_T(B)$ = 539 MeV"`` (the unit after the number)."""
    import re

    m = re.match(r"^(.*?)\s*\[([^\[\]]*)\]$", text)
    if m:
        return f"{m[1]} = {format_sig(value)} {m[2]}"
    return f"{text} = {format_sig(value)}"


# --------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------
def _fit_texts(ax: Any, texts: Sequence[Any], *, pad_px: float = 8.0) -> None:
    """Widen the x range until every text of ``texts`` lies inside the axes (measured by the renderer)."""
    fig = ax.figure
    for _ in range(4):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        box = ax.get_window_extent(r)
        x0, x1 = ax.get_xlim()
        per_px = (x1 - x0) / box.width
        left = min((t.get_window_extent(r).x0 for t in texts), default=box.x0)
        right = max((t.get_window_extent(r).x1 for t in texts), default=box.x1)
        over_l = max(0.0, box.x0 + pad_px - left)
        over_r = max(0.0, right - (box.x1 - pad_px))
        if over_l == 0 and over_r == 0:
            return
        ax.set_xlim(x0 - 1.2 * over_l * per_px, x1 + 1.2 * over_r * per_px)


def _row_axis(ax: Any, names: Sequence[str], fontsize: float) -> None:
    """Rows of features top to bottom, labelled on the left, without tick marks."""
    from matplotlib.ticker import NullLocator

    n = len(names)
    ax.set_yticks(np.arange(n)[::-1], list(names), fontsize=fontsize)
    ax.yaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="y", which="both", length=0, left=False, right=False)
    ax.set_ylim(-0.6, n - 0.4)


def bar_plot(
    values: ArrayLike,
    names: Sequence[str],
    *,
    ax: Any = None,
    labels: Mapping[str, str] | None = None,
    quantity: str = "log-odds",
    max_display: int = 15,
) -> Any:
    """Mean |SHAP value| of each feature as horizontal bars, largest on top, its value at the bar's end.

    ``values`` (n, n_features) are SHAP values, ``names`` the features
    (``labels`` maps them to axis labels). Beyond ``max_display`` rows the
    smallest are summed into one. Numbers have three significant digits.
    """
    v = np.abs(np.asarray(values, dtype=float))
    mean = np.nanmean(v, axis=0) if len(v) else np.zeros(len(names))
    shown, rest = _display_rows(mean, max_display)
    rows = [(labels or {}).get(names[i], names[i]) for i in shown]
    heights = [float(mean[i]) for i in shown]
    if rest:
        rows.append(f"sum of {len(rest)} other features")
        heights.append(float(mean[rest].sum()))
    if ax is None:
        _, ax = new_figure((12, 2.4 + 0.62 * len(rows)))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, heights, height=0.7, color=COLOURS[0])
    texts = [
        ax.annotate(
            format_sig(h),
            (h, yi),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            fontsize=18,
        )
        for yi, h in zip(y, heights, strict=True)
    ]
    _row_axis(ax, rows, 20)
    ax.set_xlim(0, 1.05 * max(heights, default=1.0) or 1.0)
    ax.set_xlabel(f"mean |SHAP value| (contribution to the {quantity})", fontsize=22)
    ax.tick_params(axis="x", labelsize=20)
    _fit_texts(ax, texts)
    label(ax)
    return ax


def beeswarm_plot(
    values: ArrayLike,
    data: ArrayLike,
    names: Sequence[str],
    *,
    ax: Any = None,
    labels: Mapping[str, str] | None = None,
    quantity: str = "log-odds",
    max_display: int = 15,
    seed: int = 0,
) -> Any:
    """SHAP value of every candidate for each feature, one row per feature, coloured by the feature's value.

    Rows are sorted by mean |SHAP|; within a row the points are jittered
    vertically by the local density (a seeded random generator: the figure is
    reproducible). The colour is the quantile of the candidate's value of that
    feature (low blue, high red), so heavy tails do not wash it out. Beyond
    ``max_display`` rows the rest are summed into one grey row.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    v = np.asarray(values, dtype=float)
    d = np.asarray(data, dtype=float)
    shown, rest = _display_rows(np.nanmean(np.abs(v), axis=0), max_display)
    rows: list[tuple[str, np.ndarray, np.ndarray | None]] = [
        ((labels or {}).get(names[i], names[i]), v[:, i], quantile_colours(d[:, i])) for i in shown
    ]
    if rest:
        rows.append((f"sum of {len(rest)} other features", v[:, rest].sum(axis=1), None))
    if ax is None:
        _, ax = new_figure((13, 2.4 + 0.62 * len(rows)))
    rng = np.random.default_rng(seed)
    n = len(rows)
    for k, (_, s, q) in enumerate(rows):
        yk = n - 1 - k
        y = yk + _swarm_offsets(s, rng, 0.38)
        kw: dict[str, Any] = {"s": 9, "lw": 0, "rasterized": True, "zorder": 2}
        if q is None:
            ax.scatter(s, y, color="grey", **kw)
            continue
        good = np.isfinite(q)
        ax.scatter(s[~good], y[~good], color="grey", **kw)
        ax.scatter(s[good], y[good], c=q[good], cmap=CMAP, vmin=0, vmax=1, **kw)
    ax.axvline(0, color="grey", lw=1, zorder=1)
    finite = v[np.isfinite(v)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.03 * (hi - lo or 1.0)
        ax.set_xlim(min(lo, 0.0) - pad, max(hi, 0.0) + pad)
    _row_axis(ax, [r[0] for r in rows], 20)
    ax.set_xlabel(f"SHAP value (contribution to the {quantity})", fontsize=22)
    ax.tick_params(axis="x", labelsize=20)
    cbar = ax.figure.colorbar(
        ScalarMappable(Normalize(0, 1), cmap=CMAP), ax=ax, ticks=[0, 1], pad=0.02, aspect=40
    )
    cbar.ax.set_yticklabels(["low", "high"], fontsize=18)
    cbar.ax.minorticks_off()
    cbar.set_label(r"feature value (low $\rightarrow$ high)", fontsize=20, loc="center")
    label(ax)
    return ax


def shap_figures(
    expl: Any,
    *,
    max_dependence: int = 3,
    max_display: int = 15,
    labels: Mapping[str, str] | None = None,
    colour_by: Mapping[str, str | None] | None = None,
    title: str = "",
) -> dict[str, Any]:
    """Beeswarm, mean |SHAP| bar and dependence plots of the top features; name -> figure.

    ``expl`` is a :class:`hepsel.explain.shap_values.Explanation` (or anything
    with ``values``, ``data``, ``feature_names`` and ``output``); ``labels``
    maps feature names to axis labels with units (the config's
    ``features[i].label``); ``colour_by`` maps a feature to the feature its
    dependence plot is coloured by (see
    :func:`hepsel.explain.interactions.strongest_interaction`; none: one
    colour). The output is named by :func:`explained_quantity`, the same for
    every model whose output is the log-odds. ``title`` goes top right.
    """
    names = [str(n) for n in expl.feature_names]
    shown = [(labels or {}).get(n, n) for n in names]
    quantity = explained_quantity(str(expl.output))
    values = np.asarray(expl.values, dtype=float)
    data = np.asarray(expl.data, dtype=float)
    figs: dict[str, Any] = {}
    figs["beeswarm"] = beeswarm_plot(
        values, data, names, labels=labels, quantity=quantity, max_display=max_display
    ).figure
    figs["bar"] = bar_plot(
        values, names, labels=labels, quantity=quantity, max_display=max_display
    ).figure
    if title:
        for fig in figs.values():
            fig.axes[0].set_title(title, loc="right", fontsize=18)
    order = np.argsort(-np.nanmean(np.abs(values), axis=0), kind="stable")[:max_dependence]
    for i in (int(i) for i in order):
        partner = (colour_by or {}).get(names[i])
        c = names.index(partner) if partner in names else None
        fig, ax = new_figure((12, 8.5))
        dependence_plot(
            data[:, i],
            values[:, i],
            ax=ax,
            xlabel=shown[i],
            ylabel=f"SHAP value of {tick_label(shown[i])}\n(contribution to the {quantity})",
            colour=None if c is None else data[:, c],
            colour_label=None if c is None else shown[c],
        )
        figs[f"dependence_{names[i]}"] = fig
    return figs


def dependence_plot(
    x: ArrayLike,
    shap_values: ArrayLike,
    *,
    ax: Any = None,
    xlabel: str = "",
    ylabel: str = "SHAP value",
    colour: ArrayLike | None = None,
    colour_label: str | None = None,
) -> Any:
    """SHAP value of one feature vs its value, one point per candidate.

    The x range covers the bulk of the data (:func:`bulk_range`: the
    0.5%-99.5% quantiles, cut short of a long tail), the y range the
    0.5%-99.5% quantiles; candidates beyond are drawn at the edge as open
    triangles pointing out, and counted above the frame. A feature spanning
    decades (:func:`~hepsel.report.plotting.spans_decades`) gets a log x
    axis. ``colour`` (another feature) colours the points by its quantile; the
    colour bar is labelled with its values at the 10%, 50% and 90% quantiles.
    """
    if ax is None:
        _, ax = new_figure((11, 8))
    xv = np.asarray(x, dtype=float)
    yv = np.asarray(shap_values, dtype=float)
    logx = spans_decades(xv)
    xlo, xhi = bulk_range(xv, log=logx)
    ylo, yhi = quantile_range(yv)
    # candidates beyond the bulk are drawn at its edge, half-way into the frame's padding
    exlo, exhi = bulk_range(xv, log=logx, pad=0.025)
    eylo, eyhi = ylo + 0.025 * (yhi - ylo) / 1.1, yhi - 0.025 * (yhi - ylo) / 1.1
    xc, yc = np.clip(xv, exlo, exhi), np.clip(yv, eylo, eyhi)
    inside = (xc == xv) & (yc == yv)
    kw: dict[str, Any] = {"s": 10, "alpha": 0.8, "lw": 0, "rasterized": True}
    q = None if colour is None else quantile_colours(colour)
    if q is not None:
        ok = np.isfinite(q)
        ax.scatter(xv[inside & ~ok], yv[inside & ~ok], color="grey", **kw)
        sel = inside & ok
        kw.update(c=q[sel], cmap=CMAP, vmin=0.0, vmax=1.0)
        sc = ax.scatter(xv[sel], yv[sel], **kw)
    else:
        sc = ax.scatter(xv[inside], yv[inside], color=COLOURS[0], **kw)
    outside = ~inside & np.isfinite(xv) & np.isfinite(yv)
    for mask, marker in (
        (xv > exhi, ">"),
        (xv < exlo, "<"),
        ((yv > eyhi) & (xc == xv), "^"),
        ((yv < eylo) & (xc == xv), "v"),
    ):
        m = mask & outside
        if m.any():
            ax.scatter(
                xc[m],
                yc[m],
                marker=marker,
                s=60,
                facecolors="none",
                edgecolors="black",
                lw=1,
                zorder=3,
            )
    ax.axhline(0, color="grey", ls=":", lw=1)
    if logx:
        ax.set_xscale("log")
        log_ticks(ax.xaxis)
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(ylo, yhi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    n_out = int(outside.sum())
    if n_out:
        ax.set_title(
            f"{n_out} of {int(np.isfinite(xv).sum())} candidates beyond the range,\n"
            "drawn at its edge (open triangles)",
            loc="right",
            fontsize=16,
        )
    if q is not None:
        ticks = [0.1, 0.5, 0.9]
        values = np.nanquantile(np.asarray(colour, dtype=float), ticks)
        cbar = ax.figure.colorbar(sc, ax=ax, ticks=ticks)
        cbar.ax.set_yticklabels([format_sig(v) for v in values])
        cbar.ax.minorticks_off()
        cbar.set_label(colour_label or "", loc="center", labelpad=12)
    label(ax)
    return ax


def _place_value_labels(
    ax: Any,
    rows: Sequence[tuple[float, float, float, str, bool]],
    avoid: Sequence[float],
    *,
    fontsize: float,
    gap_px: float = 6.0,
) -> list[Any]:
    """Value labels beside horizontal bars, clear of the bars and of the vertical lines at ``avoid``.

    ``rows`` are ``(y, lo, hi, text, right)``: the row, the extent of its bar
    (error bar included) in data units, the label, and whether it goes right
    of ``hi`` (else left of ``lo``). A label that would cross a line goes to
    the other side of its bar, else just past the line. The x range grows to
    hold every label. Returns the texts.
    """
    texts = [
        ax.text(0.0, y, t, va="center", ha="left", fontsize=fontsize) for y, _, _, t, _ in rows
    ]
    base_lo = min([r[1] for r in rows] + list(avoid))
    base_hi = max([r[2] for r in rows] + list(avoid))
    span = base_hi - base_lo or 1.0
    ax.set_xlim(base_lo - 0.05 * span, base_hi + 0.05 * span)
    # sizes in pixels do not change with the x range: measured once, the rest is arithmetic
    r = ax.figure.canvas.get_renderer()
    widths_px = [t.get_window_extent(r).width for t in texts]
    axis_px = ax.get_window_extent(r).width
    for _ in range(6):
        x0, x1 = ax.get_xlim()
        per_px = (x1 - x0) / axis_px
        gap, margin = gap_px * per_px, 0.5 * gap_px * per_px
        spans = []
        for text, w_px, (_, lo, hi, _, right) in zip(texts, widths_px, rows, strict=True):
            w = w_px * per_px
            sides = [hi + gap, lo - gap - w]
            if not right:
                sides.reverse()
            a = next((s for s in sides if _clear_of(s, s + w, avoid, margin)), None)
            if a is None:
                a = sides[0]
                # past each line it would cross, outwards
                for line in sorted(avoid, reverse=not right):
                    if not _clear_of(a, a + w, [line], margin):
                        a = line + gap if right else line - gap - w
            text.set_x(a)
            spans.append((a, a + w))
        lo_all = min(base_lo, *(s for s, _ in spans))
        hi_all = max(base_hi, *(e for _, e in spans))
        pad = 0.04 * (hi_all - lo_all)
        new = (lo_all - pad, hi_all + pad)
        if np.allclose(new, (x0, x1), rtol=0, atol=1e-3 * (x1 - x0)):
            break
        ax.set_xlim(*new)
    return texts


def _clear_of(a: float, b: float, lines: Sequence[float], margin: float) -> bool:
    """Whether the interval ``[a, b]``, widened by ``margin``, crosses none of ``lines``."""
    return not any(a - margin <= line <= b + margin for line in lines)


def why_figure(
    expl: Any,
    *,
    labels: Mapping[str, str] | None = None,
    title: str = "",
    max_display: int = 10,
    min_r2: float | None = None,
) -> Any:
    """One candidate's SHAP waterfall (left) and LIME attributions (right), on the model's output.

    ``expl`` is a :class:`hepsel.explain.local.LocalExplanation`. Features are sorted
    by |SHAP|; the ``max_display - 1`` largest are shown, the others summed
    in one bar. Each is named by its label with the candidate's value in
    physical units (three significant digits, the unit after the number). The
    waterfall starts at the base value and ends at base + sum of SHAP values
    (marked with the model's own output); the LIME panel shows
    ``weight * (x - mean) / std`` per feature, with the spread over LIME seeds
    as error bars. Each bar's value sits beyond its end (and error bar), never
    on a line. When LIME's local prediction has the opposite sign to the
    model's output, or its mean R^2 is below ``min_r2``, the LIME panel's title
    is a warning in a red frame.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    labels = dict(labels or {})
    names = list(expl.feature_names)
    shap_v, lime_v = np.asarray(expl.shap, float), np.asarray(expl.lime_contribution, float)
    lime_err = np.asarray(expl.lime_weight_std, float) * np.abs(np.asarray(expl.lime_offset, float))
    order = [int(i) for i in np.argsort(-np.abs(shap_v), kind="stable")]
    shown, rest = order[: max_display - 1], order[max_display - 1 :]
    if len(rest) == 1:
        shown, rest = order, []
    rows = [
        _label_with_value(labels.get(names[i]) or names[i], float(expl.value[i])) for i in shown
    ]
    s_rows = [float(shap_v[i]) for i in shown]
    l_rows = [float(lime_v[i]) for i in shown]
    e_rows = [float(lime_err[i]) for i in shown]
    if rest:
        rows.append(f"{len(rest)} other features")
        s_rows.append(float(shap_v[rest].sum()))
        l_rows.append(float(lime_v[rest].sum()))
        e_rows.append(float(np.sqrt(np.sum(lime_err[rest] ** 2))))
    n = len(rows)
    y = np.arange(n)[::-1]
    quantity = explained_quantity(str(expl.shap_method))
    base, output = float(expl.shap_base), float(expl.output)
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(20, 2.2 + 0.62 * n), sharey=True, layout="constrained"
    )
    # waterfall: each bar runs from the running sum before the feature to the one after it
    start = base
    s_labels = []
    for yi, v in zip(y, s_rows, strict=True):
        ax1.barh(yi, v, left=start, color=_RED if v > 0 else _BLUE, height=0.7)
        s_labels.append(
            (
                float(yi),
                min(start, start + v),
                max(start, start + v),
                format_sig(v, signed=True),
                v >= 0,
            )
        )
        start += v
    ax1.axvline(base, color="grey", ls=":", lw=2, zorder=0)
    ax1.axvline(output, color="black", ls="--", lw=2, zorder=0)
    _row_axis(ax1, rows, 17)
    ax1.set_xlabel(f"{quantity} (model output)", fontsize=22)
    ax1.set_title("SHAP: " + shap_method_short(str(expl.shap_method)), fontsize=17)
    colors = [_RED if v > 0 else _BLUE for v in l_rows]
    ax2.barh(y, l_rows, xerr=e_rows, color=colors, height=0.7, capsize=4, error_kw={"lw": 1.5})
    ax2.axvline(0, color="black", lw=1, zorder=0)
    l_labels = [
        (float(yi), min(0.0, v - e), max(0.0, v + e), format_sig(v, signed=True), v >= 0)
        for yi, v, e in zip(y, l_rows, e_rows, strict=True)
    ]
    ax2.set_xlabel(f"LIME contribution to the {quantity}", fontsize=22)
    r2s = np.atleast_1d(np.asarray(expl.lime_r2, dtype=float))
    r2 = float(np.mean(r2s))
    pred = float(expl.lime_local_pred)
    head = f"LIME surrogate: $R^2$ = {r2:.2f}, prediction {format_sig(pred)}"
    problems = []
    if np.sign(pred) != np.sign(output) and pred != 0 and output != 0 and quantity == "log-odds":
        problems.append(f"opposite sign to the model's {format_sig(output, signed=True)}")
    if min_r2 is not None and r2 < min_r2:
        problems.append(f"$R^2$ below {min_r2:g}")
    if problems:
        ax2.set_title(
            head + "\nWARNING: " + "; ".join(problems) + ": do not trust this surrogate",
            fontsize=16,
            color=_RED,
            bbox={"boxstyle": "round,pad=0.35", "edgecolor": _RED, "facecolor": "#fdecea", "lw": 2},
        )
    else:
        ax2.set_title(head, fontsize=17)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=18)
        ax.minorticks_off()
        ax.tick_params(axis="y", which="both", length=0)
    handles = [
        Line2D([], [], color="grey", ls=":", lw=2, label=f"base value {format_sig(base)}"),
        Line2D([], [], color="black", ls="--", lw=2, label=f"model output {format_sig(output)}"),
        Line2D(
            [],
            [],
            color="black",
            marker="|",
            ms=12,
            lw=1.5,
            label=f"LIME spread over {len(r2s)} seed{'s' if len(r2s) > 1 else ''}",
        ),
    ]
    if title:
        fig.suptitle(title, fontsize=18)
    # the layout is settled and frozen, then the value labels are placed (their room is
    # measured in pixels) and the legend goes right under the axis labels (the saved area is
    # fitted to the drawn content, so it adds no blank band)
    canvas: Any = fig.canvas  # Agg (lhcb_style): it has a renderer
    canvas.draw()
    fig.set_layout_engine("none")
    _place_value_labels(ax1, s_labels, [base, output], fontsize=15)
    _place_value_labels(ax2, l_labels, [0.0], fontsize=15)
    r = canvas.get_renderer()
    bottom = min(a.get_tightbbox(r).y0 for a in (ax1, ax2))
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, (bottom - 6) / fig.bbox.height),
        ncol=3,
        fontsize=16,
        frameon=False,
        borderaxespad=0.0,
    )
    return fig
