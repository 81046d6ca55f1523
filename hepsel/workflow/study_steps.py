"""The study steps: augmentation-study points and summary, the DisCo strength scan."""

from __future__ import annotations

from typing import Any

from ..config.schema import AnalysisConfig
from .layout import Layout

__all__ = [
    "study_point",
    "study_summary",
]


def study_point(cfg: AnalysisConfig, model: str, n_real: str, seed: int) -> dict[str, Any]:
    """One point of the augmentation study, written to ``study/<model>_<n_real>_<seed>.json``."""
    from ..io.storage import write_json
    from ..prep.dataset import load_dataset
    from .study import augmentation_point

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg)
    n: int | str = n_real if n_real == "all" else int(n_real)
    res = augmentation_point(cfg, ds, model, n, seed)
    write_json(lay.root / "study" / f"{model}_{n_real}_{seed}.json", res)
    return res


def decorrelation_scan(cfg: AnalysisConfig) -> dict[str, Any]:
    """The DisCo strength scan: ``decorrelation/scan.json`` and ``plots/decorrelation_scan``."""
    from ..io.storage import write_json
    from ..prep.dataset import load_dataset
    from ..report import plotting, study_plots
    from ..report.plotting import tick_label
    from .disco_scan import scan_point, summarise_scan
    from .labels import column_label

    lay = Layout.of(cfg)
    if cfg.decorrelation_scan is None:
        msg = "no decorrelation_scan block in the config: add one (model, strengths, fold) to run the scan"
        raise ValueError(msg)
    ds = load_dataset(lay.dataset, cfg)
    points = [scan_point(cfg, ds, s) for s in cfg.decorrelation_scan.strengths]
    res = summarise_scan(cfg, points)
    write_json(lay.root / "decorrelation" / "scan.json", res)
    pts = res["points"]
    zero = min(pts, key=lambda p: p["strength"])
    chosen = next(p for p in pts if p["strength"] == res["chosen"])
    shown = {f"$\\lambda$ = {p['strength']:g}": p for p in (zero, chosen)}
    after = {k: p["background_after"] for k, p in shown.items()}
    after_sumw2 = {k: p["background_after_sumw2"] for k, p in shown.items()}
    name = column_label(cfg, res["spectator"])
    with plotting.lhcb_style():
        fig, (ax1, ax2) = _two_panels()
        study_plots.decorrelation_scan_plot(
            pts, working_point=res["working_point"], ax=ax1, spectator=tick_label(name)
        )
        ax1.set_title(f"{res['model']}, fold {res['fold']}", loc="right", fontsize=18)
        study_plots.spectator_after_cut_plot(
            zero["bins"],
            zero["background_before"],
            after,
            xlabel=name,
            ax=ax2,
            after_sumw2=after_sumw2,
        )
        ax2.set_title(f"background passing {res['working_point']}", loc="right", fontsize=18)
        plotting.save(fig, lay.plots / "decorrelation_scan")
    return res


def _two_panels() -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(24, 9))
    fig.subplots_adjust(wspace=0.3)
    return fig, axes


def study_summary(cfg: AnalysisConfig) -> dict[str, Any]:
    """Gather the study points: table, JSON and the plot of AUC and efficiency vs N_real."""
    from ..io.storage import read_json, write_json
    from ..report import plotting, study_plots
    from .study import study_models, summarise

    lay = Layout.of(cfg)
    points = [
        read_json(lay.root / "study" / f"{m}_{n}_{s}.json")
        for m in study_models(cfg)
        for n in cfg.study.n_real
        for s in cfg.study.seeds
    ]
    res = summarise(points)
    write_json(lay.root / "study" / "augmentation.json", res)
    with plotting.lhcb_style():
        keys = [("auc", "AUC (test fold)")]
        if cfg.trigger is not None:
            keys.append(("eff_at_rate", f"Signal eff. at {cfg.trigger.target_rates_khz[0]:g} kHz"))
        for key, ylabel in keys:
            fig, ax = plotting.new_figure()
            study_plots.augmentation_plot(res["rows"], res["points"], key=key, ylabel=ylabel, ax=ax)
            plotting.save(fig, lay.plots / f"augmentation_{key}")
    return res
