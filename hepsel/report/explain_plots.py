"""Plots of explanations: SHAP summaries and dependence plots, one candidate's attributions.

Same conventions as :mod:`hepsel.report.plotting` (mplhep's LHCb style; ``save`` writes PDF and PNG).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .plotting import COLOURS, label, log_ticks, new_figure, quantile_range, spans_decades

__all__ = [
    "dependence_plot",
    "shap_figures",
    "why_figure",
]


def shap_figures(
    expl: Any,
    *,
    max_dependence: int = 3,
    max_display: int = 15,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Beeswarm, mean |SHAP| bar and dependence plots of the top features.

    ``expl`` is a :class:`hepsel.explain.shap_values.Explanation`; ``labels`` maps feature
    names to axis labels with units (the config's ``features[i].label``).
    Beeswarm and bar are drawn by shap; the dependence plots are drawn here in
    the LHCb style, with axis ranges from the bulk of the data (quantiles) and
    a log x axis for a feature spanning decades. Returns name -> figure.
    """
    import matplotlib.pyplot as plt
    import shap

    names = [str(n) for n in expl.feature_names]
    shown = [(labels or {}).get(n, n) for n in names]
    e = shap.Explanation(
        values=expl.values, base_values=expl.base, data=expl.data, feature_names=shown
    )
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
        inter = [
            int(j) for j in shap.utils.approximate_interactions(i, values, data) if int(j) != i
        ]
        c = inter[0] if inter else None
        fig, ax = new_figure((11, 8))
        dependence_plot(
            data[:, i],
            values[:, i],
            ax=ax,
            xlabel=shown[i],
            ylabel=f"SHAP value ({expl.output})",
            colour=None if c is None else data[:, c],
            colour_label=None if c is None else shown[c],
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
        kw.update(color=COLOURS[0])
    sc = ax.scatter(x, y, **kw)
    ax.axhline(0, color="grey", ls=":", lw=1)
    if logx:
        ax.set_xscale("log")
        log_ticks(ax.xaxis)
    ax.set_xlim(*quantile_range(x, log=logx))
    ax.set_ylim(*quantile_range(y))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colour is not None:
        ax.figure.colorbar(sc, ax=ax, label=colour_label or "", extend="both")
    label(ax)
    return ax


def _finish_shap(fig: Any, ax: Any) -> Any:
    ax.text(
        0.0,
        1.01,
        "LHCb-like Simulation",
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=18,
        fontweight="bold",
    )
    fig.tight_layout()
    return fig


def _value_text(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}" if abs(v) < 1e8 else f"{v:.3e}"


def why_figure(
    expl: Any, *, labels: Mapping[str, str] | None = None, title: str = "", max_display: int = 10
) -> Any:
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
    shown, rest = order[: max_display - 1], order[max_display - 1 :]
    if len(rest) == 1:
        shown, rest = order, []
    rows = [
        f"{labels.get(names[i]) or names[i]} = {_value_text(float(expl.value[i]))}" for i in shown
    ]
    s_rows, l_rows, e_rows = (
        [shap_v[i] for i in shown],
        [lime_v[i] for i in shown],
        [lime_err[i] for i in shown],
    )
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
        ax1.text(
            start + v, yi, f" {v:+.3f} ", va="center", ha="left" if v >= 0 else "right", fontsize=14
        )
        start += v
    ax1.axvline(
        expl.shap_base, color="grey", ls=":", lw=1.5, label=f"base value {expl.shap_base:.3f}"
    )
    ax1.axvline(
        expl.output, color="black", ls="--", lw=1.5, label=f"model output {expl.output:.3f}"
    )
    ax1.set_yticks(y, rows, fontsize=14)
    lo = min(expl.shap_base, expl.output, *(expl.shap_base + np.cumsum(s_rows)))
    hi = max(expl.shap_base, expl.output, *(expl.shap_base + np.cumsum(s_rows)))
    pad = 0.25 * (hi - lo or 1.0)
    ax1.set_xlim(lo - pad, hi + pad)
    method = str(expl.shap_method)
    output = (
        "reconstruction error"
        if "reconstruction error" in method
        else "logit"
        if "logit" in method
        else "margin (log-odds)"
    )
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
    ax2.set_title(
        f"LIME surrogate: R$^2$ = {r2:.2f}, prediction {expl.lime_local_pred:.3f}", fontsize=16
    )
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=14)
        ax.minorticks_off()
    fig.suptitle(title, fontsize=18)
    fig.tight_layout()
    return fig
