"""The evaluate step (cross-scores, ``summary.json``, ``scores.root``) and its plots."""

from __future__ import annotations

import functools
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..config.schema import AnalysisConfig
from .labels import column_label, feature_labels, working_point_thresholds, working_points, wp_label
from .layout import Layout
from .processes import map_in_processes

__all__ = [
    "comparison_plots",
    "evaluate",
    "make_plots",
    "model_plots",
]


def _downsample_index(n_points: int, n: int = 2000) -> np.ndarray:
    """Indices thinning a curve to about ``n`` points, dense at small efficiencies (log axes)."""
    if n_points <= n:
        return np.arange(n_points)
    return np.unique(
        np.concatenate(
            [
                np.geomspace(1, n_points, n).astype(int) - 1,
                np.linspace(0, n_points - 1, n // 4).astype(int),
            ]
        )
    )


def evaluate(
    cfg: AnalysisConfig, models: Sequence[str] | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Score every candidate with the fold models, write scores.root, summary.json and the selection."""
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from ..config.functions import module_path
    from ..deploy.selection import Selection
    from ..io.storage import atomic_path, read_json, write_json, write_root_tree
    from ..prep.dataset import load_dataset, load_generated_events
    from ..prep.features import FeatureSet
    from ..prep.ingest import training_branch_types
    from ..stats.metrics import roc
    from .cross_scoring import feature_blocks, model_kind, overtraining_sets, score_models
    from .evaluation import event_views, model_summary, performance, rate_curves

    lay = Layout.of(cfg)
    # everything but the features (and the raw weights): the models read the features block by block
    stored = pq.ParquetFile(lay.dataset).schema_arrow.names
    ds = load_dataset(
        lay.dataset,
        cfg,
        columns=[c for c in stored if c not in cfg.feature_names and c != "weight_raw"],
    )
    generated = load_generated_events(lay.dataset)
    t0 = time.perf_counter()
    names = list(models or cfg.models)
    correlations: dict[str, np.ndarray] = {}
    all_scores = score_models(
        cfg,
        ds,
        names,
        lay,
        feature_blocks(lay.dataset, cfg.feature_names),
        correlations=correlations,
    )
    summary: dict[str, Any] = {}
    curves: dict[str, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}
    raws: dict[str, np.ndarray] = {}
    errors: dict[str, np.ndarray] = {}
    for name in tqdm(
        names, desc="evaluate", unit="model", disable=None if progress else True
    ):  # None: off when not a terminal
        cs = all_scores.pop(name)
        scores[name] = cs.test
        raws[name] = cs.ranking
        s = model_summary(cfg, ds, cs, random_state=cfg.seed)
        s["kind"] = cfg.models[name].type
        wp, wp_raw = working_point_thresholds(s), working_point_thresholds(s, raw=True)
        s.update(
            performance(cfg, ds, cs.test, wp, generated, raw=cs.ranking, thresholds_raw=wp_raw)
        )
        s["training"] = [read_json(lay.model_info(name, k)) for k in range(cfg.folds.k)]
        if cs.err is not None:
            errors[name] = cs.err
            s["uncertainty"] = _uncertainty_summary(cfg, name, cs, curves)
        summary[name] = s
        m = ds.truth
        r = roc(ds.y[m], cs.test[m], ds.weight[m])
        idx = _downsample_index(len(r.bkg_eff))
        curves[f"{name}/roc_bkg_eff"], curves[f"{name}/roc_sig_eff"] = (
            r.bkg_eff[idx],
            r.sig_eff[idx],
        )
        curves[f"{name}/roc_threshold"] = r.thresholds[idx]
        if cfg.trigger is not None:
            for k, v in rate_curves(
                cfg, event_views(cfg, ds, cs.ranking), raw=cs.ranking, proba=cs.test
            ).items():
                curves[f"{name}/rate_{k}"] = v
        y = ds.y
        # the overtraining plot shows fold 0's model: its training fold vs its test fold
        train0, test0 = overtraining_sets(cfg, ds, cs, 0)
        for cls, code in (("signal", 1), ("background", 0)):
            t = test0 & (y == code)
            curves[f"{name}/test_{cls}_score"] = cs.test[t]
            curves[f"{name}/test_{cls}_weight"] = ds.weight[t]
            tr = train0 & (y == code)
            curves[f"{name}/train_{cls}_score"] = cs.train[tr]
            curves[f"{name}/train_{cls}_weight"] = ds.weight[tr]
    summary["_inputs"] = {
        "features": cfg.feature_names,
        "correlation_signal": correlations["signal"],
        "correlation_background": correlations["background"],
    }
    summary["_meta"] = {
        "analysis": cfg.name,
        "seed": cfg.seed,
        "folds": cfg.folds.k,
        "offline": cfg.trigger is None,
        "input_rate_khz": cfg.trigger.input_rate_khz if cfg.trigger is not None else None,
        "target_rates_khz": cfg.trigger.target_rates_khz if cfg.trigger is not None else [],
        "samples": ds.samples,
        "n_candidates": len(ds),
        "seconds": time.perf_counter() - t0,
    }
    c = ds.columns
    out_cols: dict[str, np.ndarray] = {
        "runNumber": c["runNumber"],
        "eventNumber": c["eventNumber"],
        "label": c["label"].astype(np.int32),
        "weight": c["weight"],
        "fold": c["fold"].astype(np.int32),
        "truth": c["truth"].astype(np.int32),
        "sample": c["sample"].astype(np.int32),
    }
    for name, score in scores.items():
        out_cols[f"score_{name}"] = score
        out_cols[f"raw_{name}"] = raws[name]
        if name in errors:
            out_cols[f"score_{name}_err"] = errors[name]
    for col in cfg.spectators:
        if col in c and col not in out_cols:
            out_cols[col] = c[col]
    write_root_tree(lay.scores, "scores", out_cols)
    with atomic_path(lay.curves, suffix=".npz") as tmp:
        with tmp.open("wb") as fh:
            np.savez_compressed(fh, **cast("dict[str, Any]", curves))
    # the selection analysts load: preselection + features + fold models + working points
    # unreachable working points (infinite threshold) are not stored
    wps = {
        n: {k: t for k, t in working_point_thresholds(summary[n]).items() if np.isfinite(t)}
        for n in names
    }
    fs = FeatureSet.from_config(cfg)
    # decisions cut on the raw output: the probability saturates at 1
    wps_raw = {
        n: {
            k: t
            for k, t in working_point_thresholds(summary[n], raw=True).items()
            if np.isfinite(t)
        }
        for n in names
    }
    for feature in fs.features:
        # labels are plot text, not part of the selection: editing one must not rerun the evaluation
        feature.label = None
    sel = Selection(
        preselection=[(p.name, p.cut) for p in cfg.preselection],
        features=fs,
        models={n: {"kind": model_kind(cfg, n), "folds": [None] * cfg.folds.k} for n in names},
        working_points=wps,
        working_points_raw=wps_raw,
        working_point_unit="kHz" if cfg.trigger is not None else "signal efficiency",
        # the selection scores files laid out like the signal sample's
        fold_branch=cfg.event_ids(cfg.signal_sample).event_branch,
        default_model=names[0],
        tree=cfg.samples[cfg.signal_sample].tree,
        rate_curves={
            n: {
                k: curves[f"{n}/rate_{k}"].tolist()
                for k in ("threshold", "threshold_raw", "rate_khz", "eff")
            }
            for n in names
            if f"{n}/rate_threshold" in curves
        },
        branch_types=training_branch_types(
            [
                lay.prepared(s, i).with_suffix(".json")
                for s in cfg.samples
                for i in range(len(cfg.sample_files(s)))
            ]
        ),
    )
    tmp_sel = lay.selection.with_name(".selection.tmp")
    if tmp_sel.exists():
        shutil.rmtree(tmp_sel)
    sel.save(tmp_sel, model_files={n: [lay.model(n, k) for k in range(cfg.folds.k)] for n in names})
    for f in cfg.features:
        if f.function:
            # the module travels with the selection, at the same relative path
            src = module_path(f.function, cfg.analysis_dir)
            dst = tmp_sel / src.relative_to(cfg.analysis_dir.resolve())
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    if lay.selection.exists():
        shutil.rmtree(lay.selection)
    tmp_sel.rename(lay.selection)
    write_json(lay.summary, summary)
    return summary


def _uncertainty_summary(
    cfg: AnalysisConfig, name: str, cs: Any, curves: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Summary figures of a model's score uncertainty, and its pulls into ``curves`` for the plot."""
    from ..stats.uncertainty import calibration_figures, pulls

    unc = cfg.models[name].uncertainty
    assert unc is not None and cs.err is not None
    out: dict[str, Any] = {
        "replicas": unc.replicas,
        "bootstrap": unc.bootstrap,
        "err": "sample standard deviation (ddof=1) of the scores of the replicas of the fold that did not see the candidate",
        "mean_err": float(np.mean(cs.err)),
        "median_err": float(np.median(cs.err)),
    }
    if unc.calibration and cs.check is not None:
        cal = calibration_figures(cs.check, cs.replica_mean, cs.err, unc.replicas, score=cs.test)
        out["calibration"] = cal
        curves[f"{name}/unc_pull"] = pulls(cs.check, cs.replica_mean, cs.err, unc.replicas)
    return out


def make_plots(cfg: AnalysisConfig, *, jobs: int = 1) -> list[Path]:
    """ROC, overtraining and rate plots from the evaluation outputs, and the cut-flow figure.

    ``jobs``: figure sets drawn at a time (the comparisons, then one set per
    model), each in a process of its own.
    """
    from ..io.storage import read_json

    names = [n for n in read_json(Layout.of(cfg).summary) if not n.startswith("_")]
    tasks: list[tuple[AnalysisConfig, str | None]] = [(cfg, None)] + [(cfg, n) for n in names]
    return [p for paths in map_in_processes(_figure_set, tasks, jobs) for p in paths]


def _figure_set(cfg: AnalysisConfig, model: str | None) -> list[Path]:
    return comparison_plots(cfg) if model is None else model_plots(cfg, model)


def comparison_plots(cfg: AnalysisConfig) -> list[Path]:
    """The figures of all models together (ROC, rates, input correlations) and the cut flow."""
    from ..io.storage import read_json
    from ..report import feature_plots, plotting

    lay = Layout.of(cfg)
    summary = read_json(lay.summary)
    names = [n for n in summary if not n.startswith("_")]
    ev = cfg.evaluation
    with np.load(lay.curves, allow_pickle=False) as npz:
        # the ROC and rate curves; the response histograms' arrays are each model's own set
        cv = {k: npz[k] for k in npz.files if k.rpartition("/")[2].startswith(("roc_", "rate_"))}
    written: list[Path] = []
    # drawn here, not by gather: the one step that loads matplotlib anyway
    tables = cutflow_series(read_json(lay.dataset.with_name("cutflow.json")))
    with plotting.lhcb_style():
        fig, ax = plotting.new_figure((12, 8))
        plotting.cutflow_plot(tables, ax=ax)
        fig.tight_layout()
        written += plotting.save(fig, lay.plots / "cutflow")
        fig, ax = plotting.new_figure()
        plotting.roc_plot(
            {
                n: {
                    "bkg_eff": cv[f"{n}/roc_bkg_eff"],
                    "sig_eff": cv[f"{n}/roc_sig_eff"],
                    "auc": summary[n]["auc"],
                    "auc_std": summary[n].get("auc_std"),
                    "threshold": cv[f"{n}/roc_threshold"],
                }
                for n in names
            },
            ax=ax,
            working_points={n: working_points(summary[n]) for n in names},
        )
        written += plotting.save(fig, lay.plots / "roc")
        for tos in (False, True) if cfg.trigger is not None else ():
            fig, ax = plotting.new_figure()
            plotting.rate_plot(
                {
                    n: {k: cv[f"{n}/rate_{k}"] for k in ("rate_khz", "eff", "eff_tos")}
                    for n in names
                },
                targets_khz=cfg.rates.target_rates_khz,
                tos=tos,
                ax=ax,
                input_rate_khz=cfg.rates.input_rate_khz,
                n_signal_events=_n_signal_events(summary, names),
                interval=ev.interval,
                working_points={n: summary[n].get("eff_at_rate", {}) for n in names},
            )
            written += plotting.save(fig, lay.plots / ("eff_vs_rate_tos" if tos else "eff_vs_rate"))
        inputs = summary.get("_inputs")
        if inputs:
            for cls in ("signal", "background"):
                fig, ax = plotting.new_figure((12, 10))
                feature_plots.correlation_plot(
                    np.asarray(inputs[f"correlation_{cls}"]),
                    inputs["features"],
                    ax=ax,
                    title=cls,
                    labels=feature_labels(cfg),
                )
                written += plotting.save(fig, lay.plots / f"correlation_{cls}")
    return written


def model_plots(cfg: AnalysisConfig, n: str) -> list[Path]:
    """One model's figures: response, efficiencies vs kinematics, cut scans, sculpting."""
    from ..io.storage import read_json
    from ..report import plotting, study_plots

    lay = Layout.of(cfg)
    summary = read_json(lay.summary)
    ev = cfg.evaluation
    with np.load(lay.curves, allow_pickle=False) as npz:
        cv = {k: npz[k] for k in npz.files if k.startswith(f"{n}/")}
    written: list[Path] = []
    with plotting.lhcb_style():
        fig, ax = plotting.new_figure()
        plotting.score_plot(
            {
                c: (cv[f"{n}/test_{c}_score"], cv[f"{n}/test_{c}_weight"])
                for c in ("signal", "background")
            },
            {
                c: (cv[f"{n}/train_{c}_score"], cv[f"{n}/train_{c}_weight"])
                for c in ("signal", "background")
            },
            ks_pvalue=summary[n]["ks_pvalue"],
            ax=ax,
            xlabel=f"{n} response",
        )
        written += plotting.save(fig, lay.plots / f"scores_{n}")
        perf = summary[n]
        # relative to preselected signal events, and to all generated ones (preselection included)
        for key, tag, ylabel in (
            ("efficiency_vs", "", "Efficiency (preselected signal events)"),
            ("efficiency_vs_total", "_total", "Efficiency (all generated signal events)"),
        ):
            for var, eff in perf.get(key, {}).items():
                xlabel = ev.efficiency_vs[var].label if var in ev.efficiency_vs else var
                figure = functools.partial(
                    _efficiency_figure, xlabel=xlabel, ylabel=ylabel, interval=eff["interval"]
                )
                written += figure(
                    {wp_label(wp, perf): b for wp, b in eff["all"].items()},
                    title=f"{n}: all modes",
                    path=lay.plots / f"eff_vs_{var}{tag}_{n}",
                )
                if eff["per_mode"]:
                    wp0 = next(iter(eff["all"]))
                    written += figure(
                        {plotting.mode_latex(mode): d[wp0] for mode, d in eff["per_mode"].items()},
                        title=f"{n} at {wp_label(wp0, perf)}",
                        path=lay.plots / f"eff_vs_{var}{tag}_{n}_per_mode",
                    )
        cal = (perf.get("uncertainty") or {}).get("calibration")
        if cal and f"{n}/unc_pull" in cv:
            fig, ax = plotting.new_figure()
            study_plots.pull_plot(cv[f"{n}/unc_pull"], int(cal["n_replicas"]), ax=ax, title=n)
            written += plotting.save(fig, lay.plots / f"uncertainty_pull_{n}")
            if cal.get("bins"):
                fig, ax = plotting.new_figure()
                study_plots.pull_fraction_plot(
                    cal["bins"],
                    float(cal["expected_fraction_beyond_1"]),
                    ax=ax,
                    xlabel=f"{n} response (bins of equal population)",
                )
                written += plotting.save(fig, lay.plots / f"uncertainty_bins_{n}")
        fig, ax = plotting.new_figure()
        study_plots.efficiency_vs_cut_plot(
            cv[f"{n}/roc_threshold"],
            cv[f"{n}/roc_sig_eff"],
            cv[f"{n}/roc_bkg_eff"],
            ax=ax,
            xlabel=f"Cut on the {n} response",
            working_points=working_points(perf),
        )
        written += plotting.save(fig, lay.plots / f"eff_vs_cut_{n}")
        if "optimal_cut" in perf:
            fig, ax = plotting.new_figure()
            # offline yields may count events (evaluation.yields: events)
            unit = (perf.get("offline") or {}).get("unit", "candidates")
            plotting.figure_of_merit_plot(
                perf["optimal_cut"], ax=ax, xlabel=f"Signal efficiency ({unit})"
            )
            written += plotting.save(fig, lay.plots / f"optimal_cut_{n}")
        if "sculpting" in perf:
            sc = perf["sculpting"]
            fig, ax = plotting.new_figure()
            plotting.efficiency_plot(
                {wp_label(wp, perf): b for wp, b in sc["efficiency"].items()},
                xlabel=column_label(cfg, sc["variable"]),
                interval_label=f"background; dCor(score, mass) = {sc['distance_correlation']:.3f}",
                ax=ax,
                logy=True,
            )
            ax.set_ylabel("Background efficiency")
            ax.set_title(n, loc="right", fontsize=18)
            written += plotting.save(fig, lay.plots / f"sculpting_{n}")
    return written


def _n_signal_events(summary: Mapping[str, Any], names: Sequence[str]) -> float | None:
    """Signal events behind the event-level efficiencies (the same sample for every model)."""
    for n in names:
        te = summary[n].get("trigger_events") or {}
        if te.get("n_signal_events"):
            return float(te["n_signal_events"])
    return None


def cutflow_series(cutflow: Mapping[str, Any]) -> dict[str, Any]:
    """The cut-flow figure's series: each sample's candidates, and its truth-matched ones where it has a truth."""
    series: dict[str, Any] = {}
    for sample, v in cutflow.items():
        if "truth_matched" in v:
            series[f"{sample}, all candidates"] = v["table"]
            series[f"{sample}, truth-matched"] = v["truth_matched"]["table"]
        else:
            series[sample] = v["table"]
    return series


def _efficiency_figure(
    binned: Mapping[str, Any],
    *,
    xlabel: str,
    ylabel: str,
    interval: str,
    title: str,
    path: Path,
) -> list[Path]:
    """One efficiency-vs-variable figure (call inside the LHCb style), saved to ``path``."""
    from ..report import plotting

    fig, ax = plotting.new_figure()
    plotting.efficiency_plot(binned, xlabel=xlabel, interval_label=interval, ylabel=ylabel, ax=ax)
    ax.set_title(title, loc="right", fontsize=18)
    return plotting.save(fig, path)
