"""The steps of an analysis, as called by the Snakefile rules and the CLI.

Each step reads its inputs from, and writes its outputs to, the places given
by :class:`Layout`, so the Snakefile and the CLI agree on file names.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from .config import AnalysisConfig
from .exceptions import ConfigError

__all__ = [
    "Layout",
    "evaluate",
    "explain",
    "fidelity",
    "gan_models",
    "gather",
    "generate",
    "headline",
    "make_plots",
    "prepare",
    "report",
    "study_point",
    "study_summary",
    "train",
]


@dataclass(frozen=True)
class Layout:
    """Where every output of an analysis lives (under ``cfg.output_dir``)."""

    root: Path

    @classmethod
    def of(cls, cfg: AnalysisConfig) -> Layout:
        """The layout of ``cfg``."""
        return cls(cfg.output_dir)

    def prepared(self, sample: str, index: int) -> Path:
        """Prepared Parquet table of input file ``index`` of ``sample``."""
        return self.root / "prepared" / sample / f"{index:03d}.parquet"

    @property
    def dataset(self) -> Path:
        """The gathered table of all samples."""
        return self.root / "dataset.parquet"

    def model(self, model: str, fold: int) -> Path:
        """Prefix of a fold model's files."""
        return self.root / "models" / model / f"fold{fold}"

    def model_info(self, model: str, fold: int) -> Path:
        """Training record of a fold model."""
        return self.root / "models" / model / f"fold{fold}.info.json"

    @property
    def scores(self) -> Path:
        """Per-candidate scores (a contract: TTree ``scores``)."""
        return self.root / "scores.root"

    @property
    def summary(self) -> Path:
        """Per-model figures (a contract)."""
        return self.root / "summary.json"

    @property
    def curves(self) -> Path:
        """Curves and histograms behind the plots."""
        return self.root / "curves.npz"

    @property
    def selection(self) -> Path:
        """The saved :class:`~hepsel.Selection`."""
        return self.root / "selection"

    def shap(self, model: str) -> Path:
        """SHAP values of a model (npz)."""
        return self.root / "shap" / f"{model}.npz"

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.root / "report.html"

    @property
    def plots(self) -> Path:
        """Plot directory."""
        return self.root / "plots"


def generate(cfg: AnalysisConfig, sample: str, *, progress: bool = True) -> list[Path]:
    """Make the files of a sample that has a ``generate`` block."""
    from .generate import generate_files

    gen = cfg.samples[sample].generate
    if gen is None:
        msg = f"samples.{sample} has no 'generate' block; its files must exist"
        raise ConfigError(msg)
    paths = cfg.sample_files(sample)
    return generate_files(
        gen.kind, paths, gen.events, seed=gen.seed, pileup=gen.pileup, signal_modes=gen.modes, progress=progress
    )


def prepare(cfg: AnalysisConfig, sample: str, index: int, *, progress: bool = True) -> dict[str, Any]:
    """Preselect input file ``index`` of ``sample`` into its Parquet table."""
    from .ingest import prepare_file

    files = cfg.sample_files(sample)
    if not 0 <= index < len(files):
        msg = f"samples.{sample}: file index {index} out of range (the sample has {len(files)} files)"
        raise ConfigError(msg)
    return prepare_file(cfg, sample, files[index], Layout.of(cfg).prepared(sample, index), file_index=index, progress=progress)


def gather(cfg: AnalysisConfig) -> dict[str, Any]:
    """Merge the prepared tables, write the cut-flow table and plot."""
    from . import plotting
    from .dataset import gather as gather_tables
    from .storage import read_json

    lay = Layout.of(cfg)
    prepared = {s: [lay.prepared(s, i) for i in range(len(cfg.sample_files(s)))] for s in cfg.samples}
    info = gather_tables(cfg, prepared, lay.dataset)
    tables = {s: v["table"] for s, v in read_json(lay.dataset.with_name("cutflow.json")).items()}
    with plotting.lhcb_style():
        fig, ax = plotting.new_figure((12, 8))
        plotting.cutflow_plot(tables, ax=ax)
        fig.tight_layout()
        plotting.save(fig, lay.plots / "cutflow")
    return info


def train(cfg: AnalysisConfig, model: str, fold: int, *, progress: bool = True) -> dict[str, Any]:
    """Train one fold model."""
    from .dataset import load_dataset
    from .storage import write_json
    from .training import train_fold

    if model not in cfg.models:
        msg = f"unknown model {model!r}; the config has {sorted(cfg.models)}"
        raise ConfigError(msg)
    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg)
    info = train_fold(cfg, ds, model, fold, lay.model(model, fold), progress=progress)
    write_json(lay.model_info(model, fold), info)
    return info


def _downsample_index(n_points: int, n: int = 2000) -> np.ndarray:
    """Indices thinning a curve to about ``n`` points, dense at small efficiencies (log axes)."""
    if n_points <= n:
        return np.arange(n_points)
    return np.unique(
        np.concatenate([np.geomspace(1, n_points, n).astype(int) - 1, np.linspace(0, n_points - 1, n // 4).astype(int)])
    )


def evaluate(cfg: AnalysisConfig, models: Sequence[str] | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Score every candidate with the fold models, write scores.root, summary.json and the selection."""
    from tqdm.auto import tqdm

    from .dataset import load_dataset, load_generated_events
    from .evaluation import (
        cross_scores,
        event_views,
        model_kind,
        model_summary,
        overtraining_sets,
        performance,
        rate_curves,
    )
    from .features import FeatureSet, module_path
    from .metrics import roc
    from .performance import correlation_matrix
    from .selection import Selection
    from .storage import atomic_path, read_json, write_json, write_root_tree

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg)
    generated = load_generated_events(lay.dataset)
    names = list(models or cfg.models)
    summary: dict[str, Any] = {}
    curves: dict[str, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    for name in tqdm(names, desc="evaluate", unit="model", disable=None if progress else True):  # None: off when not a terminal
        cs = cross_scores(cfg, ds, name, lay)
        scores[name] = cs.test
        s = model_summary(cfg, ds, cs, random_state=cfg.seed)
        s["kind"] = cfg.models[name].type
        wp = working_point_thresholds(s)
        s.update(performance(cfg, ds, cs.test, wp, generated))
        s["training"] = [read_json(lay.model_info(name, k)) for k in range(cfg.folds.k)]
        summary[name] = s
        m = ds.truth
        r = roc(ds.y[m], cs.test[m], ds.weight[m])
        idx = _downsample_index(len(r.bkg_eff))
        curves[f"{name}/roc_bkg_eff"], curves[f"{name}/roc_sig_eff"] = r.bkg_eff[idx], r.sig_eff[idx]
        curves[f"{name}/roc_threshold"] = r.thresholds[idx]
        if cfg.trigger is not None:
            for k, v in rate_curves(cfg, event_views(cfg, ds, cs.test)).items():
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
    m = ds.truth
    summary["_inputs"] = {
        "features": cfg.feature_names,
        "correlation_signal": correlation_matrix(ds.X[m & (ds.y == 1)], ds.weight[m & (ds.y == 1)]),
        "correlation_background": correlation_matrix(ds.X[m & (ds.y == 0)], ds.weight[m & (ds.y == 0)]),
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
    for col in cfg.spectators:
        if col in c and col not in out_cols:
            out_cols[col] = c[col]
    write_root_tree(lay.scores, "scores", out_cols)
    with atomic_path(lay.curves, suffix=".npz") as tmp:
        with tmp.open("wb") as fh:
            np.savez_compressed(fh, **cast("dict[str, Any]", curves))
    # the selection analysts load: preselection + features + fold models + working points
    wps = {n: working_point_thresholds(summary[n]) for n in names}
    fs = FeatureSet.from_config(cfg)
    sel = Selection(
        preselection=[(p.name, p.cut) for p in cfg.preselection],
        features=fs,
        models={n: {"kind": model_kind(cfg, n), "folds": [None] * cfg.folds.k} for n in names},
        working_points=wps,
        fold_branch=cfg.reading.event_branch,
        default_model=names[0],
        tree=cfg.samples[cfg.signal_sample].tree,
        rate_curves={
            n: {k: curves[f"{n}/rate_{k}"].tolist() for k in ("threshold", "rate_khz", "eff")}
            for n in names
            if f"{n}/rate_threshold" in curves
        },
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


def make_plots(cfg: AnalysisConfig) -> list[Path]:
    """ROC, overtraining and rate plots from the evaluation outputs."""
    from . import plotting
    from .storage import read_json

    lay = Layout.of(cfg)
    summary = read_json(lay.summary)
    names = [n for n in summary if not n.startswith("_")]
    ev = cfg.evaluation
    with np.load(lay.curves, allow_pickle=False) as npz:
        cv = {k: npz[k] for k in npz.files}
    written: list[Path] = []
    with plotting.lhcb_style():
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
            working_points={n: _working_points(summary[n]) for n in names},
        )
        written += plotting.save(fig, lay.plots / "roc")
        for tos in (False, True) if cfg.trigger is not None else ():
            fig, ax = plotting.new_figure()
            plotting.rate_plot(
                {n: {k: cv[f"{n}/rate_{k}"] for k in ("rate_khz", "eff", "eff_tos")} for n in names},
                targets_khz=cfg.rates.target_rates_khz,
                tos=tos,
                ax=ax,
                input_rate_khz=cfg.rates.input_rate_khz,
                n_signal_events=_n_signal_events(summary, names),
                interval=ev.interval,
            )
            written += plotting.save(fig, lay.plots / ("eff_vs_rate_tos" if tos else "eff_vs_rate"))
        for n in names:
            fig, ax = plotting.new_figure()
            plotting.score_plot(
                {c: (cv[f"{n}/test_{c}_score"], cv[f"{n}/test_{c}_weight"]) for c in ("signal", "background")},
                {c: (cv[f"{n}/train_{c}_score"], cv[f"{n}/train_{c}_weight"]) for c in ("signal", "background")},
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
                    fig, ax = plotting.new_figure()
                    plotting.efficiency_plot(
                        {wp_label(wp, perf): b for wp, b in eff["all"].items()}, xlabel=xlabel, interval_label=eff["interval"],
                        ylabel=ylabel, ax=ax,
                    )
                    ax.set_title(f"{n}: all modes", loc="right", fontsize=18)
                    written += plotting.save(fig, lay.plots / f"eff_vs_{var}{tag}_{n}")
                    if eff["per_mode"]:
                        wp0 = next(iter(eff["all"]))
                        fig, ax = plotting.new_figure()
                        plotting.efficiency_plot(
                            {plotting.mode_latex(mode): d[wp0] for mode, d in eff["per_mode"].items()}, xlabel=xlabel,
                            interval_label=eff["interval"], ylabel=ylabel, ax=ax,
                        )
                        ax.set_title(f"{n} at {wp_label(wp0, perf)}", loc="right", fontsize=18)
                        written += plotting.save(fig, lay.plots / f"eff_vs_{var}{tag}_{n}_per_mode")
            fig, ax = plotting.new_figure()
            plotting.efficiency_vs_cut_plot(
                cv[f"{n}/roc_threshold"], cv[f"{n}/roc_sig_eff"], cv[f"{n}/roc_bkg_eff"], ax=ax, xlabel=f"Cut on the {n} response",
                working_points=_working_points(perf),
            )
            written += plotting.save(fig, lay.plots / f"eff_vs_cut_{n}")
            if "optimal_cut" in perf:
                fig, ax = plotting.new_figure()
                plotting.figure_of_merit_plot(perf["optimal_cut"], ax=ax)
                written += plotting.save(fig, lay.plots / f"optimal_cut_{n}")
            if "sculpting" in perf:
                sc = perf["sculpting"]
                fig, ax = plotting.new_figure()
                plotting.efficiency_plot(
                    {wp_label(wp, perf): b for wp, b in sc["efficiency"].items()},
                    xlabel=sc["variable"],
                    interval_label=f"background; dCor(score, mass) = {sc['distance_correlation']:.3f}",
                    ax=ax,
                )
                ax.set_yscale("log")
                ax.set_ylim(1e-4, 2)
                ax.set_ylabel("Background efficiency")
                ax.set_title(n, loc="right", fontsize=18)
                written += plotting.save(fig, lay.plots / f"sculpting_{n}")
        inputs = summary.get("_inputs")
        if inputs:
            for cls in ("signal", "background"):
                fig, ax = plotting.new_figure((12, 10))
                plotting.correlation_plot(np.asarray(inputs[f"correlation_{cls}"]), inputs["features"], ax=ax, title=cls)
                written += plotting.save(fig, lay.plots / f"correlation_{cls}")
    return written


def working_point_thresholds(perf: Mapping[str, Any]) -> dict[str, float]:
    """Working-point key -> score threshold in a model's summary.

    Rate keys (``"660"``) in a trigger study; signal-efficiency keys (``"0.8"``)
    in an offline one.
    """
    wps = perf.get("eff_at_rate") or (perf.get("offline") or {}).get("working_points") or {}
    return {k: float(wp["threshold"]) for k, wp in wps.items() if "threshold" in wp}


def wp_label(key: str, perf: Mapping[str, Any]) -> str:
    """How a working point is named in plots and tables: ``660 kHz`` or ``eff_S = 0.8``."""
    return f"{key} kHz" if "eff_at_rate" in perf else f"eff_S = {key}"


def _working_points(perf: Mapping[str, Any]) -> dict[str, float]:
    """``{"660 kHz": cut}`` (trigger) or ``{"eff_S = 0.8": cut}`` (offline) for a model's summary."""
    return {wp_label(k, perf): thr for k, thr in working_point_thresholds(perf).items()}


def _n_signal_events(summary: Mapping[str, Any], names: Sequence[str]) -> float | None:
    """Signal events behind the event-level efficiencies (the same sample for every model)."""
    for n in names:
        te = summary[n].get("trigger_events") or {}
        if te.get("n_signal_events"):
            return float(te["n_signal_events"])
    return None


def explainable_models(cfg: AnalysisConfig) -> list[str]:
    """Models with a SHAP explainer (BDTs, bonsai BDTs and MLPs, including GAN-augmented ones)."""
    from .evaluation import model_kind

    return [m for m in cfg.models if model_kind(cfg, m) in ("bdt", "bbdt", "mlp")]


def explain(cfg: AnalysisConfig, model: str) -> dict[str, Any]:
    """SHAP values of a subsample, each candidate explained by the model that did not train on it."""
    from . import plotting
    from .dataset import load_dataset
    from .evaluation import model_kind
    from .explain import explain_model, mean_abs_shap
    from .models import load_classifier
    from .storage import atomic_path, write_json

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg)
    kind = model_kind(cfg, model)
    rng = np.random.default_rng(cfg.seed)
    pool = np.flatnonzero(ds.truth)
    n = min(cfg.evaluation.shap.events, len(pool))
    index = np.sort(rng.choice(pool, size=n, replace=False))
    X_all = ds.X
    folds = [load_classifier(kind, lay.model(model, k)) for k in range(cfg.folds.k)]
    backgrounds = None
    if kind == "mlp":
        nb = cfg.evaluation.shap.background_events
        backgrounds = []
        for k in range(cfg.folds.k):
            train = np.flatnonzero((ds.fold != k) & ds.truth)
            backgrounds.append(X_all[rng.choice(train, size=min(nb, len(train)), replace=False)])
    expl = explain_model(
        kind, folds, X_all[index], ds.fold[index], index, cfg.feature_names,
        backgrounds=backgrounds, random_state=cfg.seed, n_samples=cfg.evaluation.shap.mlp_samples,
    )
    with atomic_path(lay.shap(model), suffix=".npz") as tmp, tmp.open("wb") as fh:
        np.savez_compressed(
            fh, values=expl.values, base=expl.base, data=expl.data, index=expl.index,
            label=ds.y[index], feature_names=np.array(expl.feature_names),
        )
    ranking = mean_abs_shap(expl)
    info = {"model": model, "kind": kind, "output": expl.output, "n_events": n, "mean_abs_shap": ranking}
    write_json(lay.shap(model).with_suffix(".json"), info)
    with plotting.lhcb_style():
        labels = {f.name: f.label for f in cfg.features if f.label}
        for name, fig in plotting.shap_figures(expl, max_dependence=3, labels=labels).items():
            plotting.save(fig, lay.plots / f"shap_{name}_{model}")
    return info


def headline(cfg: AnalysisConfig) -> str | None:
    """The headline table of a finished analysis and the path of its report (None before ``evaluate``)."""
    from .headline import headline_text
    from .storage import read_json

    lay = Layout.of(cfg)
    if not lay.summary.exists():
        return None
    report = lay.report if lay.report.exists() else None
    return headline_text(read_json(lay.summary), None if report is None else str(report))


def report(cfg: AnalysisConfig) -> Path:
    """Write ``report.html``: the comparison table and every plot on one page.

    Also tabulates the jobs' time and memory so far (Snakemake's ``benchmark:``
    files) into ``benchmarks.json``.
    """
    from .benchmarks_table import read_benchmarks
    from .diagnostics import diagnose
    from .report import render_report
    from .storage import read_json, write_json, write_text

    lay = Layout.of(cfg)
    jobs = read_benchmarks(lay.root / "benchmarks")
    write_json(lay.root / "benchmarks.json", jobs)
    summary = read_json(lay.summary)
    shap = {m: read_json(lay.shap(m).with_suffix(".json")) for m in explainable_models(cfg) if lay.shap(m).with_suffix(".json").exists()}
    fid_dir = lay.root / "fidelity"
    fidelity = {p.stem: read_json(p) for p in sorted(fid_dir.glob("*.json"))} if fid_dir.exists() else None
    study = read_json(lay.root / "study" / "augmentation.json") if (lay.root / "study" / "augmentation.json").exists() else None
    cut_md = lay.dataset.with_name("cutflow.md")
    cut_json = lay.dataset.with_name("cutflow.json")
    text = render_report(
        lay.root, summary, cutflow_markdown=cut_md.read_text() if cut_md.exists() else "",
        cutflow=read_json(cut_json) if cut_json.exists() else None,
        fidelity=fidelity, study=study, shap=shap,
        warnings=diagnose(summary, fidelity, cfg.evaluation.warnings),
        benchmarks=jobs,
    )
    return write_text(lay.report, text)


def gan_models(cfg: AnalysisConfig) -> list[str]:
    """Models with a GAN (``gan_augmented``)."""
    return [m for m, c in cfg.models.items() if c.type == "gan_augmented"]


def fidelity(cfg: AnalysisConfig, model: str) -> dict[str, Any]:
    """Fidelity of each fold's GAN on the held-out signal of its own fold (never seen by it)."""
    from . import plotting
    from .dataset import load_dataset
    from .fidelity import fidelity_report
    from .models.gan import WGANGP
    from .storage import read_json, write_json

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg)
    mcfg = cfg.models[model]
    folds = []
    real_all, gen_all = [], []
    for k in range(cfg.folds.k):
        gan = WGANGP.load(lay.model(model, k).with_name(f"fold{k}_gan"), device="cpu")
        hold = (ds.fold == k) & ds.truth & (ds.y == 1)
        real = ds.X[hold]
        cond = None
        if mcfg.condition_on:
            cats = np.asarray(read_json(lay.model_info(model, k))["condition_categories"])
            cond = np.searchsorted(cats, ds.columns[mcfg.condition_on][hold])
        gen = gan.sample(len(real), conditions=cond, random_state=cfg.seed + k)
        # the GAN learns the weighted signal distribution: compare it with the weighted held-out signal
        weight = ds.weight[hold]
        weighted = bool((weight >= 0).all() and weight.sum() > 0)
        rep = fidelity_report(real, gen, cfg.feature_names, random_state=cfg.seed + k, real_weight=weight if weighted else None)
        rep["weighted"] = weighted
        unweighted = fidelity_report(real, gen, cfg.feature_names, random_state=cfg.seed + k) if weighted else rep
        rep["unweighted"] = {key: unweighted[key] for key in ("c2st_auc", "mean_wasserstein_ratio")}
        rep["fold"] = k
        rep["clipped"] = np.asarray(gan.last_sample_clipped_).tolist()
        rep["selected_iteration"] = gan.fidelity_.get("best_iteration")
        folds.append(rep)
        real_all.append(real)
        gen_all.append(gen)
    feats = cfg.feature_names
    out: dict[str, Any] = {
        "model": model,
        "folds": folds,
        "c2st_auc_mean": float(np.mean([f["c2st_auc"] for f in folds])),
        "mean_wasserstein_ratio": float(np.mean([f["mean_wasserstein_ratio"] for f in folds])),
        "max_abs_correlation_difference": float(np.max([f["max_abs_correlation_difference"] for f in folds])),
        "wasserstein": {n: float(np.mean([f["features"][n]["wasserstein"] for f in folds])) for n in feats},
        "baseline_wasserstein": {n: float(np.mean([f["features"][n]["baseline_wasserstein"] for f in folds])) for n in feats},
        "classifier_two_sample": {"auc": float(np.mean([f["c2st_auc"] for f in folds]))},
    }
    write_json(lay.root / "fidelity" / f"{model}.json", out)
    real, gen = np.concatenate(real_all), np.concatenate(gen_all)
    labels = {f.name: (f.label or f.name) for f in cfg.features}
    with plotting.lhcb_style():
        fig = plotting.overlay_grid(
            real, gen, feats, labels=labels, w1=out["wasserstein"], baseline=out["baseline_wasserstein"],
            title=f"{model} GAN fidelity, folds 0-{cfg.folds.k - 1} pooled (each fold's GAN vs its own held-out signal)",
        )
        plotting.save(fig, lay.plots / f"gan_overlay_{model}")
        fig, ax = plotting.new_figure((12, 10))
        # the fold with the largest |difference|: the one the report's table quotes
        worst = int(np.argmax([f["max_abs_correlation_difference"] for f in folds]))
        diff = np.asarray(folds[worst]["correlation_difference"])
        plotting.correlation_plot(
            diff, feats, ax=ax, difference=True,
            title=f"{model}, fold {worst}: max $|\\Delta\\rho|$ = {folds[worst]['max_abs_correlation_difference']:.3f}",
        )
        plotting.save(fig, lay.plots / f"gan_correlation_{model}")
    return out


def study_point(cfg: AnalysisConfig, model: str, n_real: str, seed: int) -> dict[str, Any]:
    """One point of the augmentation study, written to ``study/<model>_<n_real>_<seed>.json``."""
    from .dataset import load_dataset
    from .storage import write_json
    from .study import augmentation_point

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg)
    n: int | str = n_real if n_real == "all" else int(n_real)
    res = augmentation_point(cfg, ds, model, n, seed)
    write_json(lay.root / "study" / f"{model}_{n_real}_{seed}.json", res)
    return res


def study_summary(cfg: AnalysisConfig) -> dict[str, Any]:
    """Gather the study points: table, JSON and the plot of AUC and efficiency vs N_real."""
    from . import plotting
    from .storage import read_json, write_json
    from .study import study_models, summarise

    lay = Layout.of(cfg)
    points = [
        read_json(lay.root / "study" / f"{m}_{n}_{s}.json")
        for m in study_models(cfg) for n in cfg.study.n_real for s in cfg.study.seeds
    ]
    res = summarise(points)
    write_json(lay.root / "study" / "augmentation.json", res)
    with plotting.lhcb_style():
        keys = [("auc", "AUC (test fold)")]
        if cfg.trigger is not None:
            keys.append(("eff_at_rate", f"Signal eff. at {cfg.trigger.target_rates_khz[0]:g} kHz"))
        for key, ylabel in keys:
            fig, ax = plotting.new_figure()
            plotting.augmentation_plot(res["rows"], res["points"], key=key, ylabel=ylabel, ax=ax)
            plotting.save(fig, lay.plots / f"augmentation_{key}")
    return res
