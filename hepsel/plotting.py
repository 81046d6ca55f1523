"""Plots in mplhep's LHCb style.

One function per plot kind; each takes ``ax=None`` (keyword-only), draws on
it and returns the artists/axes. :func:`save` writes PDF and PNG; nothing here
calls ``plt.show()``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "augmentation_plot",
    "correlation_plot",
    "cutflow_plot",
    "efficiency_plot",
    "efficiency_vs_cut_plot",
    "figure_of_merit_plot",
    "label",
    "lhcb_style",
    "new_figure",
    "overlay_grid",
    "rate_plot",
    "roc_plot",
    "save",
    "score_plot",
    "shap_figures",
]

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


def save(fig: Any, path: str | os.PathLike[str]) -> list[Path]:
    """Write ``path.pdf`` and ``path.png`` (atomically) and close the figure.

    The extensions are appended, never substituted: a dot in ``path``'s name
    (a feature called ``mu.pt``, say) stays part of the name.
    """
    import matplotlib.pyplot as plt

    from .storage import atomic_path

    p = Path(path)
    out = []
    for ext in (".pdf", ".png"):
        target = p.with_name(p.name + ext)
        with atomic_path(target, suffix=ext) as tmp:
            fig.savefig(tmp, format=ext[1:], dpi=100 if ext == ".png" else None)
        out.append(target)
    plt.close(fig)
    return out


def roc_plot(curves: Mapping[str, Mapping[str, Any]], *, ax: Any = None, log: bool = True) -> Any:
    """Signal efficiency vs background efficiency, one curve per model.

    ``curves[model]`` holds ``bkg_eff``, ``sig_eff`` and optionally ``auc``, ``auc_std``.
    """
    if ax is None:
        _, ax = new_figure()
    for name, c in curves.items():
        lab = name
        if "auc" in c:
            lab += f" (AUC = {c['auc']:.4f}" + (f" $\\pm$ {c['auc_std']:.4f})" if c.get("auc_std") else ")")
        ax.plot(c["bkg_eff"], c["sig_eff"], label=lab)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
    else:
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("Background efficiency (candidates)")
    ax.set_ylabel("Signal efficiency (candidates)")
    ax.legend(loc="lower right", fontsize=20)
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
    ``("signal", "background")``.
    """
    import mplhep

    if ax is None:
        _, ax = new_figure()
    edges = np.linspace(0.0, 1.0, bins + 1)
    colours = {"signal": _COLOURS[0], "background": _COLOURS[1]}
    for cls in ("signal", "background"):
        s, w = test[cls]
        h, _ = np.histogram(s, edges, weights=w)
        norm = h.sum() * np.diff(edges)
        mplhep.histplot(h / norm, edges, ax=ax, histtype="fill", alpha=0.35, color=colours[cls], label=f"{cls} (test)")
        s, w = train[cls]
        h, _ = np.histogram(s, edges, weights=w)
        h2, _ = np.histogram(s, edges, weights=np.square(w))
        norm = h.sum() * np.diff(edges)
        p = ks_pvalue.get(cls) if ks_pvalue else None
        ptxt = "" if p is None else (f", KS p = {p:.3f}" if p >= 1e-3 else f", KS p = {p:.1e}")
        lab = f"{cls} (train){ptxt}"
        centres = 0.5 * (edges[1:] + edges[:-1])
        ax.errorbar(centres, h / norm, yerr=np.sqrt(h2) / norm, fmt="o", ms=4, color=colours[cls], label=lab)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Normalised entries / bin width")
    ax.legend(loc="upper center", fontsize=19)
    ymin, ymax = ax.get_ylim()
    ax.set_ylim(ymin, ymax * 300)
    label(ax)
    return ax


def rate_plot(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    *,
    targets_khz: Sequence[float] = (),
    tos: bool = False,
    ax: Any = None,
    input_rate_khz: float | None = None,
) -> Any:
    """Signal efficiency (event level) vs output rate [kHz], one curve per model."""
    if ax is None:
        _, ax = new_figure()
    key = "eff_tos" if tos else "eff"
    for name, c in curves.items():
        ax.plot(c["rate_khz"], c[key], label=name)
    for t in targets_khz:
        ax.axvline(t, ls="--", color="grey", lw=1)
        ax.text(t, 0.02, f" {t:g} kHz", rotation=90, color="grey", fontsize=14, ha="right", va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("Output rate [kHz]" + (f" (input {input_rate_khz:g} kHz)" if input_rate_khz else ""))
    ax.set_ylabel("Signal efficiency (events" + (", TOS)" if tos else ")"))
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right", fontsize=20)
    label(ax)
    return ax


def efficiency_plot(
    binned: Mapping[str, Mapping[str, np.ndarray]],
    *,
    xlabel: str,
    interval_label: str,
    ylabel: str = "Efficiency",
    ax: Any = None,
) -> Any:
    """Efficiency vs a variable with binomial intervals, one series per entry.

    ``binned[name]`` holds ``edges``, ``value``, ``low``, ``high`` (as from
    :func:`hepsel.intervals.binned_efficiency`).
    """
    if ax is None:
        _, ax = new_figure()
    for i, (name, b) in enumerate(binned.items()):
        edges = np.asarray(b["edges"])
        centres = 0.5 * (edges[1:] + edges[:-1]) + (i - len(binned) / 2) * 0.01 * (edges[-1] - edges[0])
        v, lo, hi = (np.asarray(b[k]) for k in ("value", "low", "high"))
        ax.errorbar(
            centres, v, yerr=[v - lo, hi - v], xerr=0.5 * np.diff(edges), fmt="o", ms=5, label=name
        )
    ax.set_ylim(0, 1.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", fontsize=18, title=interval_label, title_fontsize=16)
    label(ax)
    return ax


def cutflow_plot(tables: Mapping[str, Sequence[Mapping[str, Any]]], *, ax: Any = None) -> Any:
    """Cumulative efficiency after each cut, one series per sample."""
    if ax is None:
        _, ax = new_figure((12, 8))
    steps: list[str] = []
    for i, (sample, rows) in enumerate(tables.items()):
        steps = [r["step"] for r in rows]
        x = np.arange(len(rows)) + (i - (len(tables) - 1) / 2) * 0.1
        v = np.array([r["cumulative_eff"] for r in rows])
        lo = np.array([r["cumulative_eff_low"] for r in rows])
        hi = np.array([r["cumulative_eff_high"] for r in rows])
        ax.errorbar(x, v, yerr=[v - lo, hi - v], fmt="o-", ms=6, label=sample)
    ax.set_xticks(np.arange(len(steps)))
    ax.set_xticklabels([s if len(s) < 28 else s[:26] + "…" for s in steps], rotation=30, ha="right", fontsize=12)
    ax.set_yscale("log")
    ax.set_ylabel("Cumulative efficiency (candidates)")
    ax.legend(loc="lower left", fontsize=20)
    label(ax)
    return ax


def figure_of_merit_plot(opt: Mapping[str, Any], *, ax: Any = None, xlabel: str = "Signal efficiency (candidates)") -> Any:
    """S/sqrt(S+B) and Punzi figure of merit vs the signal efficiency of the cut, optima marked.

    ``opt`` is the output of :func:`hepsel.performance.optimal_cuts`.
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
    ax.legend(
        loc="upper left", fontsize=18,
        title=f"S = {opt['signal_yield']:g}, B = {opt['background_yield']:g} before the cut", title_fontsize=14,
    )
    label(ax)
    return ax


def correlation_plot(matrix: np.ndarray, names: Sequence[str], *, ax: Any = None, title: str = "") -> Any:
    """Feature correlation matrix (Pearson, in %)."""
    if ax is None:
        _, ax = new_figure((12, 10))
    im = ax.imshow(100 * matrix, cmap="RdBu_r", vmin=-100, vmax=100)
    n = len(names)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=12)
    ax.set_yticklabels(names, fontsize=12)
    ax.minorticks_off()
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{100 * matrix[i, j]:.0f}", ha="center", va="center", fontsize=9)
    ax.figure.colorbar(im, ax=ax, label="correlation [%]")
    ax.set_title(f"{title} input features", loc="right", fontsize=18)
    label(ax)
    return ax


def shap_figures(expl: Any, *, max_dependence: int = 3, max_display: int = 15) -> dict[str, Any]:
    """Beeswarm, mean |SHAP| bar and dependence plots of the top features, drawn by shap.

    ``expl`` is a :class:`hepsel.explain.Explanation`; returns name -> figure.
    """
    import matplotlib.pyplot as plt
    import shap

    e = shap.Explanation(
        values=expl.values, base_values=expl.base, data=expl.data, feature_names=list(expl.feature_names)
    )
    figs: dict[str, Any] = {}
    # shap lays out its own axes; the LHCb style's minor-tick locators break it
    with plt.style.context("default"):
        _draw_shap(e, expl, figs, max_display=max_display, max_dependence=max_dependence)
    return figs


def _draw_shap(e: Any, expl: Any, figs: dict[str, Any], *, max_display: int, max_dependence: int) -> None:
    import matplotlib.pyplot as plt
    import shap

    fig, ax = plt.subplots(figsize=(12, 9))
    shap.plots.beeswarm(e, max_display=max_display, ax=ax, show=False, plot_size=None)
    ax.set_xlabel(f"SHAP value (impact on the {expl.output})")
    figs["beeswarm"] = _finish_shap(fig, ax)
    fig, ax = plt.subplots(figsize=(12, 9))
    shap.plots.bar(e, max_display=max_display, ax=ax, show=False)
    ax.set_xlabel(f"mean |SHAP value| ({expl.output})")
    figs["bar"] = _finish_shap(fig, ax)
    order = np.argsort(-np.mean(np.abs(expl.values), axis=0))[:max_dependence]
    for i in order:
        fig, ax = plt.subplots(figsize=(10, 8))
        shap.plots.scatter(e[:, int(i)], color=e, ax=ax, show=False)
        ax.set_ylabel(f"SHAP value for {expl.feature_names[i]}")
        figs[f"dependence_{expl.feature_names[i]}"] = _finish_shap(fig, ax)


def _finish_shap(fig: Any, ax: Any) -> Any:
    ax.text(0.0, 1.01, "LHCb-like Simulation", transform=ax.transAxes, ha="left", va="bottom", fontsize=14, fontweight="bold")
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
) -> Any:
    """Real vs generated distributions of every feature, one panel each."""
    import matplotlib.pyplot as plt
    import mplhep

    n = len(names)
    ncol = 4
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 4.2 * nrow))
    for i, ax in enumerate(np.ravel(axes)):
        if i >= n:
            ax.set_visible(False)
            continue
        r, g = real[:, i], generated[:, i]
        # range from the real events: a few generated outliers must not squash the panel
        lo, hi = np.nanquantile(r, [0.01, 0.99])
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        hr, _ = np.histogram(r, edges)
        hg, _ = np.histogram(g, edges)
        mplhep.histplot(hr / max(len(r), 1), edges, ax=ax, histtype="fill", alpha=0.4, color=_COLOURS[0], label="real (held out)")
        mplhep.histplot(hg / max(len(g), 1), edges, ax=ax, histtype="step", lw=2, color=_COLOURS[1], label="generated")
        if i % ncol == 0:
            ax.set_ylabel("Fraction / bin", fontsize=13)
        name = names[i]
        ax.set_xlabel((labels or {}).get(name, name), fontsize=14)
        ax.tick_params(labelsize=11)
        if w1 is not None and baseline is not None:
            ax.set_title(f"W1 {w1[name]:.3g} (real-real {baseline[name]:.3g})", fontsize=11, loc="right")
        if i == 0:
            ax.legend(fontsize=11, loc="upper right")
    fig.suptitle("LHCb-like Simulation: GAN fidelity", fontsize=18, fontweight="bold")
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
    threshold: np.ndarray, sig_eff: np.ndarray, bkg_eff: np.ndarray, *, ax: Any = None, xlabel: str = "Cut on the classifier response"
) -> Any:
    """Candidate-level signal and background efficiency vs the cut on the score."""
    if ax is None:
        _, ax = new_figure()
    finite = np.isfinite(threshold)
    ax.plot(threshold[finite], sig_eff[finite], label="signal")
    ax.plot(threshold[finite], bkg_eff[finite], label="background")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 2)
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Efficiency (candidates, score > cut)")
    ax.legend(loc="lower left", fontsize=20)
    label(ax)
    return ax
