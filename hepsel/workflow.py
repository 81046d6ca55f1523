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
    "robustness",
    "study_point",
    "study_summary",
    "train",
    "why",
    "why_candidate",
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

    def why(self, model: str) -> Path:
        """Local explanations, global rankings and trust figures of a model (json)."""
        return self.root / "explain" / f"{model}.json"

    def why_candidate(self, model: str, tag: str) -> Path:
        """Explanation of one candidate asked for by ``hepsel explain --candidate`` (json)."""
        return self.root / "explain" / "candidates" / f"{model}_{tag}.json"

    @property
    def why_plots(self) -> Path:
        """Plot directory of the single-candidate explanations."""
        return self.root / "plots" / "why"

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.root / "report.html"

    @property
    def plots(self) -> Path:
        """Plot directory."""
        return self.root / "plots"

    @property
    def robustness(self) -> Path:
        """Efficiencies and rates at fixed working points on miscalibrated inputs."""
        return self.root / "robustness.json"


def generate(cfg: AnalysisConfig, sample: str, *, progress: bool = True) -> list[Path]:
    """Make the files of a sample that has a ``generate`` block."""
    from .generate import generate_sample

    gen = cfg.samples[sample].generate
    if gen is None:
        msg = f"samples.{sample} has no 'generate' block; its files must exist"
        raise ConfigError(msg)
    # shared with another analysis when generated with equal settings; refused when with others
    paths, _ = generate_sample(gen, cfg.sample_files(sample), source=cfg.source, progress=progress)
    return paths


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
    """Train one fold model, reading only its columns and training rows (:func:`~hepsel.training.train_fold_file`)."""
    from .storage import write_json
    from .training import train_fold_file

    if model not in cfg.models:
        msg = f"unknown model {model!r}; the config has {sorted(cfg.models)}"
        raise ConfigError(msg)
    lay = Layout.of(cfg)
    info = train_fold_file(cfg, lay.dataset, model, fold, lay.model(model, fold), progress=progress)
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
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from .dataset import load_dataset, load_generated_events
    from .evaluation import (
        event_views,
        feature_blocks,
        model_kind,
        model_summary,
        overtraining_sets,
        performance,
        rate_curves,
        score_models,
    )
    from .features import FeatureSet, module_path
    from .ingest import training_branch_types
    from .metrics import roc
    from .selection import Selection
    from .storage import atomic_path, read_json, write_json, write_root_tree

    lay = Layout.of(cfg)
    # everything but the features (and the raw weights): the models read the features block by block
    stored = pq.ParquetFile(lay.dataset).schema_arrow.names
    ds = load_dataset(lay.dataset, cfg, columns=[c for c in stored if c not in cfg.feature_names and c != "weight_raw"])
    generated = load_generated_events(lay.dataset)
    t0 = time.perf_counter()
    names = list(models or cfg.models)
    correlations: dict[str, np.ndarray] = {}
    all_scores = score_models(cfg, ds, names, lay, feature_blocks(lay.dataset, cfg.feature_names), correlations=correlations)
    summary: dict[str, Any] = {}
    curves: dict[str, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}
    raws: dict[str, np.ndarray] = {}
    errors: dict[str, np.ndarray] = {}
    for name in tqdm(names, desc="evaluate", unit="model", disable=None if progress else True):  # None: off when not a terminal
        cs = all_scores.pop(name)
        scores[name] = cs.test
        raws[name] = cs.ranking
        s = model_summary(cfg, ds, cs, random_state=cfg.seed)
        s["kind"] = cfg.models[name].type
        wp, wp_raw = working_point_thresholds(s), working_point_thresholds(s, raw=True)
        s.update(performance(cfg, ds, cs.test, wp, generated, raw=cs.ranking, thresholds_raw=wp_raw))
        s["training"] = [read_json(lay.model_info(name, k)) for k in range(cfg.folds.k)]
        if cs.err is not None:
            errors[name] = cs.err
            s["uncertainty"] = _uncertainty_summary(cfg, name, cs, curves)
        summary[name] = s
        m = ds.truth
        r = roc(ds.y[m], cs.test[m], ds.weight[m])
        idx = _downsample_index(len(r.bkg_eff))
        curves[f"{name}/roc_bkg_eff"], curves[f"{name}/roc_sig_eff"] = r.bkg_eff[idx], r.sig_eff[idx]
        curves[f"{name}/roc_threshold"] = r.thresholds[idx]
        if cfg.trigger is not None:
            for k, v in rate_curves(cfg, event_views(cfg, ds, cs.ranking), raw=cs.ranking, proba=cs.test).items():
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
    wps = {n: {k: t for k, t in working_point_thresholds(summary[n]).items() if np.isfinite(t)} for n in names}
    fs = FeatureSet.from_config(cfg)
    # decisions cut on the raw output: the probability saturates at 1
    wps_raw = {n: {k: t for k, t in working_point_thresholds(summary[n], raw=True).items() if np.isfinite(t)} for n in names}
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
            n: {k: curves[f"{n}/rate_{k}"].tolist() for k in ("threshold", "threshold_raw", "rate_khz", "eff")}
            for n in names
            if f"{n}/rate_threshold" in curves
        },
        branch_types=training_branch_types(
            [lay.prepared(s, i).with_suffix(".json") for s in cfg.samples for i in range(len(cfg.sample_files(s)))]
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


def _uncertainty_summary(cfg: AnalysisConfig, name: str, cs: Any, curves: dict[str, np.ndarray]) -> dict[str, Any]:
    """Summary figures of a model's score uncertainty, and its pulls into ``curves`` for the plot."""
    from .uncertainty import calibration_figures, pulls

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
            cal = (perf.get("uncertainty") or {}).get("calibration")
            if cal and f"{n}/unc_pull" in cv:
                fig, ax = plotting.new_figure()
                plotting.pull_plot(cv[f"{n}/unc_pull"], int(cal["n_replicas"]), ax=ax, title=n)
                written += plotting.save(fig, lay.plots / f"uncertainty_pull_{n}")
                if cal.get("bins"):
                    fig, ax = plotting.new_figure()
                    plotting.pull_fraction_plot(
                        cal["bins"], float(cal["expected_fraction_beyond_1"]), ax=ax, xlabel=f"{n} response (bins of equal population)"
                    )
                    written += plotting.save(fig, lay.plots / f"uncertainty_bins_{n}")
            fig, ax = plotting.new_figure()
            plotting.efficiency_vs_cut_plot(
                cv[f"{n}/roc_threshold"], cv[f"{n}/roc_sig_eff"], cv[f"{n}/roc_bkg_eff"], ax=ax, xlabel=f"Cut on the {n} response",
                working_points=_working_points(perf),
            )
            written += plotting.save(fig, lay.plots / f"eff_vs_cut_{n}")
            if "optimal_cut" in perf:
                fig, ax = plotting.new_figure()
                # offline yields may count events (evaluation.yields: events)
                unit = (perf.get("offline") or {}).get("unit", "candidates")
                plotting.figure_of_merit_plot(perf["optimal_cut"], ax=ax, xlabel=f"Signal efficiency ({unit})")
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


def working_point_thresholds(perf: Mapping[str, Any], *, raw: bool = False) -> dict[str, float]:
    """Working-point key -> score threshold in a model's summary.

    Rate keys (``"660"``) in a trigger study; signal-efficiency keys (``"0.8"``)
    in an offline one. A working point the model cannot reach (threshold
    ``null``: e.g. more background at the top score than the target rate
    allows) has no threshold and is left out. ``raw``: the cuts on the raw
    output (``threshold_raw``, what decisions use) instead of those on the
    probability (``threshold``).

    Raises
    ------
    ConfigError
        If ``raw`` and the summary predates raw thresholds (evaluate again).
    """
    wps = perf.get("eff_at_rate") or (perf.get("offline") or {}).get("working_points") or {}
    key = "threshold_raw" if raw else "threshold"
    if raw and any(key not in wp for wp in wps.values()):
        msg = "summary.json has no raw-output thresholds ('threshold_raw'); run the evaluate step again"
        raise ConfigError(msg)
    return {k: float(wp[key]) for k, wp in wps.items() if wp.get(key) is not None}


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
    """Models with a SHAP explainer (BDTs, bonsai BDTs, MLPs and Lipschitz MLPs, including GAN-augmented ones, and autoencoders)."""
    from .evaluation import model_kind

    return [m for m in cfg.models if model_kind(cfg, m) in ("bdt", "bbdt", "mlp", "lipschitz_mlp", "autoencoder")]


def explain(cfg: AnalysisConfig, model: str) -> dict[str, Any]:
    """SHAP values of a subsample, each candidate explained by the model that did not train on it.

    Writes ``shap/<model>.npz`` and ``shap/<model>.json``; :func:`explain_figures` draws them.
    """
    from .dataset import feature_matrix, load_dataset
    from .evaluation import model_kind
    from .explain import explain_model, mean_abs_shap
    from .models import load_classifier
    from .storage import atomic_path, write_json

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg, columns=["label", "fold", "truth"])
    kind = model_kind(cfg, model)
    rng = np.random.default_rng(cfg.seed)
    pool = np.flatnonzero(ds.truth)
    n = min(cfg.evaluation.shap.events, len(pool))
    index = np.sort(rng.choice(pool, size=n, replace=False))
    folds = [load_classifier(kind, lay.model(model, k)) for k in range(cfg.folds.k)]
    background_rows: list[np.ndarray] | None = None
    if kind in ("mlp", "lipschitz_mlp", "autoencoder"):
        nb = cfg.evaluation.shap.background_events
        background_rows = []
        for k in range(cfg.folds.k):
            train = (ds.fold != k) & ds.truth
            if kind == "autoencoder":
                # the reference is what the autoencoder learnt: background candidates
                train &= ds.y == 0
            train = np.flatnonzero(train)
            background_rows.append(rng.choice(train, size=min(nb, len(train)), replace=False))
    # the features of the explained and reference candidates only: memory does not grow with the data
    needed = np.unique(np.concatenate([index, *(background_rows or [])]))
    X_needed = feature_matrix(lay.dataset, cfg, rows=needed)

    def features(rows: np.ndarray) -> np.ndarray:
        return X_needed[np.searchsorted(needed, rows)]

    backgrounds = None if background_rows is None else [features(r) for r in background_rows]
    expl = explain_model(
        kind, folds, features(index), ds.fold[index], index, cfg.feature_names,
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
    return info


def _feature_labels(cfg: AnalysisConfig) -> dict[str, str]:
    return {f.name: f.label for f in cfg.features if f.label}


def explain_figures(cfg: AnalysisConfig, model: str) -> list[Path]:
    """Draw ``plots/shap_*_<model>`` from the saved SHAP values (``shap/<model>.npz``).

    Drawn apart from :func:`explain`, with the config's feature labels, so that
    editing a label redraws the figures without recomputing the SHAP values.
    """
    from types import SimpleNamespace

    from . import plotting
    from .storage import read_json

    lay = Layout.of(cfg)
    info = read_json(lay.shap(model).with_suffix(".json"))
    with np.load(lay.shap(model), allow_pickle=False) as z:
        expl = SimpleNamespace(
            values=z["values"], base=z["base"], data=z["data"], feature_names=[str(n) for n in z["feature_names"]],
            output=info["output"],
        )
    written: list[Path] = []
    with plotting.lhcb_style():
        for name, fig in plotting.shap_figures(expl, max_dependence=3, labels=_feature_labels(cfg)).items():
            written += plotting.save(fig, lay.plots / f"shap_{name}_{model}")
    return written


@dataclass
class _WhyContext:
    """What explaining candidates of one model needs: data, scores, fold models and their training samples."""

    ds: Any
    kind: str
    folds: list[Any]
    references: list[np.ndarray]
    margin: np.ndarray
    labels: dict[str, str]
    X: Any = None  # the features of the rows explained (_FeatureRows), read on demand


#: Columns a "why" job reads besides the features (read only for the candidates it explains).
_WHY_COLUMNS = ("runNumber", "eventNumber", "label", "sample", "fold", "truth")


class _FeatureRows:
    """The features of chosen rows of a data set, read on demand and kept (a few thousand rows)."""

    def __init__(self, path: Path, cfg: AnalysisConfig) -> None:
        self.path, self.cfg = path, cfg
        self.rows = np.zeros(0, dtype=np.int64)
        self.X = np.zeros((0, len(cfg.feature_names)))

    def load(self, rows: Any) -> None:
        """Read the rows not held yet (one pass over the feature columns)."""
        from .dataset import feature_matrix

        new = np.setdiff1d(np.asarray(rows, dtype=np.int64), self.rows)
        if new.size:
            rows_all = np.concatenate([self.rows, new])
            X_all = np.concatenate([self.X, feature_matrix(self.path, self.cfg, rows=new)])
            order = np.argsort(rows_all, kind="stable")
            self.rows, self.X = rows_all[order], X_all[order]

    def __getitem__(self, rows: Any) -> np.ndarray:
        """The features of a row (1-d) or of an array of rows (2-d), read if needed."""
        self.load(np.atleast_1d(rows))
        return self.X[np.searchsorted(self.rows, rows)]


def _held_out_margin(path: Path, cfg: AnalysisConfig, folds: Sequence[Any], fold: np.ndarray) -> np.ndarray:
    """Every candidate's raw output from its held-out fold model, streamed over the data set's row groups."""
    import pyarrow.parquet as pq

    margin = np.full(len(fold), np.nan)
    start = 0
    pf = pq.ParquetFile(path)
    # row group by row group: iter_batches keeps the whole file's buffers allocated
    for i in range(pf.num_row_groups):
        table = pf.read_row_group(i, columns=cfg.feature_names)
        X = np.column_stack([table.column(f).to_numpy() for f in cfg.feature_names]).astype(np.float64, copy=False)
        part = fold[start : start + len(X)]
        for k, clf in enumerate(folds):
            m = part == k
            if m.any():
                margin[start + np.flatnonzero(m)] = clf.decision_function(X[m])
        start += len(X)
    return margin


def _stored_margin(lay: Layout, model: str, ds: Any) -> np.ndarray | None:
    """The raw outputs the evaluate step wrote to ``scores.root`` for these candidates, if it did.

    The same fold models score the same candidates there, so reading them
    saves scoring the whole data set again; None when the file is missing,
    lacks the model, or holds other candidates (then they are computed). The
    caller checks a sample of them against the fold models it holds.
    """
    import uproot

    if not lay.scores.is_file():
        return None
    with uproot.open(lay.scores) as f:
        tree = f.get("scores") if "scores" in f else None
        if tree is None or f"raw_{model}" not in tree.keys() or tree.num_entries != len(ds):
            return None
        stored = tree.arrays([f"raw_{model}", "runNumber", "eventNumber"], library="np")
    c = ds.columns
    if not (np.array_equal(stored["runNumber"], c["runNumber"]) and np.array_equal(stored["eventNumber"], c["eventNumber"])):
        return None
    return np.asarray(stored[f"raw_{model}"], dtype=np.float64)


def _why_context(cfg: AnalysisConfig, model: str) -> _WhyContext:
    from .dataset import load_dataset
    from .evaluation import model_kind
    from .models import load_classifier

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg, columns=_WHY_COLUMNS)
    kind = model_kind(cfg, model)
    folds = [load_classifier(kind, lay.model(model, k)) for k in range(cfg.folds.k)]
    fold, truth = ds.fold, ds.truth
    rng = np.random.default_rng(cfg.seed)
    reference_rows = []
    for k in range(len(folds)):
        train = (fold != k) & truth
        if kind == "autoencoder":
            train &= ds.y == 0  # what the autoencoder learnt: background candidates
        train = np.flatnonzero(train)
        n = min(cfg.explain.reference_events, len(train))
        reference_rows.append(np.sort(rng.choice(train, size=n, replace=False)))
    check = np.sort(rng.choice(len(fold), size=min(64, len(fold)), replace=False))
    X = _FeatureRows(lay.dataset, cfg)
    X.load(np.concatenate([*reference_rows, check]))
    references = [X[r] for r in reference_rows]
    margin = _stored_margin(lay, model, ds)
    if margin is not None:
        # a sample scored here again: models trained since scores.root was written are caught
        now = np.array([folds[int(fold[r])].decision_function(X[[r]])[0] for r in check])
        if not np.allclose(now, margin[check], rtol=1e-9, atol=1e-9):
            margin = None
    if margin is None:
        margin = _held_out_margin(lay.dataset, cfg, folds, fold)
    labels = {f.name: f.label for f in cfg.features if f.label}
    return _WhyContext(ds, kind, folds, references, margin, labels, X)


def _explain_row(cfg: AnalysisConfig, ctx: _WhyContext, row: int) -> Any:
    from .local import explain_candidate

    e = cfg.explain
    return explain_candidate(
        ctx.folds, ctx.X[row], int(ctx.ds.fold[row]), ctx.references, cfg.feature_names,
        lime_seeds=[cfg.seed + i for i in range(e.lime_seeds)], lime_samples=e.lime_samples,
        random_state=cfg.seed, mlp_samples=e.mlp_samples,
    )


def _candidate_id(ds: Any, row: int) -> dict[str, Any]:
    """Run, event, index among the event's candidates (all samples), and sample of a data-set row."""
    c = ds.columns
    run, evt = int(c["runNumber"][row]), int(c["eventNumber"][row])
    same = np.flatnonzero((c["runNumber"] == run) & (c["eventNumber"] == evt))
    index = int(np.searchsorted(same, row))
    names = {int(v["index"]): n for n, v in ds.samples.items()}
    return {
        "run": run, "event": evt, "index": index, "candidate": f"{run}:{evt}:{index}",
        "sample": names.get(int(c["sample"][row]), str(int(c["sample"][row]))), "row": int(row),
        "label": int(ds.y[row]), "truth": bool(ds.truth[row]),
    }


def _why_record(
    cfg: AnalysisConfig, ctx: _WhyContext, row: int, expl: Any, role: str, threshold: float | None,
    threshold_raw: float | None = None, *, labels: bool = True,
) -> dict[str, Any]:
    """One explained candidate; it passes when its raw output (``margin``) reaches ``threshold_raw``.

    Without ``labels`` its contributions name features only (labels are plot text).
    """
    from scipy.special import expit

    rec = _candidate_id(ctx.ds, row)
    score = float(expit(expl.output))
    rec.update({
        "role": role, "fold": expl.fold, "margin": expl.output, "score": score,
        "passes": None if threshold_raw is None else bool(expl.output >= threshold_raw), "threshold": threshold,
        "threshold_raw": threshold_raw,
        "shap_method": expl.shap_method, "shap_base": expl.shap_base,
        "shap_sum": float(expl.shap_base + np.sum(expl.shap)),
        "lime_intercept": expl.lime_intercept, "lime_local_pred": expl.lime_local_pred,
        "lime_r2": expl.lime_r2, "lime_r2_mean": float(np.mean(expl.lime_r2)),
        "poor_lime_fit": bool(np.mean(expl.lime_r2) < cfg.explain.min_lime_r2),
        "sign_flips": expl.sign_flips,
        "contributions": [
            {**{k: v for k, v in r.items() if labels or k != "label"},
             "lime_weight_std": float(expl.lime_weight_std[cfg.feature_names.index(r["feature"])]),
             "lime_offset": float(expl.lime_offset[cfg.feature_names.index(r["feature"])]),
             "shap_fold_std": float(expl.shap_fold_std[cfg.feature_names.index(r["feature"])])}
            for r in expl.rows(ctx.labels)
        ],
        "shap_folds": expl.shap_folds.tolist(),
    })
    return rec


def _why_plot(labels: Mapping[str, str], expl: Any, rec: Mapping[str, Any], model: str, path: Path) -> list[Path]:
    from . import plotting

    verdict = "" if rec["passes"] is None else (" passes" if rec["passes"] else " fails")
    title = (
        f"{model}: candidate {rec['candidate']} ({rec['sample']}{', truth-matched' if rec['truth'] and rec['label'] else ''}), "
        f"fold {rec['fold']} model, score {rec['score']:.4f}{verdict}"
    )
    with plotting.lhcb_style():
        fig = plotting.why_figure(expl, labels=labels, title=title)
        return plotting.save(fig, path)


def _first_working_point(cfg: AnalysisConfig, model: str) -> tuple[str | None, float | None, float | None]:
    """Label, probability cut and raw-output cut of the model's first reachable working point."""
    from .storage import read_json

    lay = Layout.of(cfg)
    if not lay.summary.exists():
        return None, None, None
    perf = read_json(lay.summary).get(model, {})
    thr = working_point_thresholds(perf)
    thr_raw = working_point_thresholds(perf, raw=True)
    if not thr_raw:
        return None, None, None
    key = next(iter(thr_raw))
    return wp_label(key, perf), thr.get(key), thr_raw[key]


def why_candidate(cfg: AnalysisConfig, model: str, candidate: str) -> dict[str, Any]:
    """Explain one candidate ``RUN:EVENT[:INDEX]`` by the fold model of ``model`` that scored it.

    Writes ``explain/candidates/<model>_<run>_<event>_<index>.json`` and the
    figure ``plots/why/<model>_<run>_<event>_<index>.png``; returns the record
    (``contributions``: feature, label, value, SHAP, LIME weight and
    contribution, by decreasing |SHAP|; ``json`` and ``png``: the paths).

    Raises
    ------
    CandidateError
        If the string is malformed, or names no candidate or several.
    ConfigError
        If ``model`` is not a model of the config.
    """
    from .local import find_candidate, parse_candidate
    from .storage import write_json

    wanted = parse_candidate(candidate)
    if model not in cfg.models:
        msg = f"model {model!r} is not in the config; models: {', '.join(cfg.models)}"
        raise ConfigError(msg)
    lay = Layout.of(cfg)
    ctx = _why_context(cfg, model)
    c = ctx.ds.columns

    def describe(row: int) -> str:
        i = _candidate_id(ctx.ds, row)
        return f"sample {i['sample']}, {'truth-matched, ' if i['truth'] and i['label'] else ''}score {float(1 / (1 + np.exp(-ctx.margin[row]))):.4f}"

    row = find_candidate(c["runNumber"], c["eventNumber"], wanted, describe)
    wp, thr, thr_raw = _first_working_point(cfg, model)
    expl = _explain_row(cfg, ctx, row)
    rec = _why_record(cfg, ctx, row, expl, "asked", thr, thr_raw)
    rec["working_point"] = wp
    tag = rec["candidate"].replace(":", "_").replace("-", "m")
    rec["png"] = str(_why_plot(ctx.labels, expl, rec, model, _why_figure_stem(lay, model, rec["candidate"]))[-1])
    rec["json"] = str(write_json(lay.why_candidate(model, tag), rec))
    return rec


def _pick_candidates(cfg: AnalysisConfig, ctx: _WhyContext, threshold: float | None) -> list[tuple[str, int]]:
    """(role, row): the highest-scoring passing background, the lowest-scoring failing signal, random ones.

    ``threshold`` is a cut on the raw output (``ctx.margin``), which ranks
    candidates whose probabilities have saturated at 1.
    """
    n = cfg.explain.candidates
    ds = ctx.ds
    score = ctx.margin
    picked: list[tuple[str, int]] = []
    if threshold is not None:
        bkg = np.flatnonzero((ds.y == 0) & (score >= threshold))
        picked += [("background passing", int(r)) for r in bkg[np.argsort(-score[bkg], kind="stable")][: n.background]]
        sig = np.flatnonzero((ds.y == 1) & ds.truth & (score < threshold))
        picked += [("signal failing", int(r)) for r in sig[np.argsort(score[sig], kind="stable")][: n.signal]]
    rng = np.random.default_rng(cfg.seed + 1)
    taken = {r for _, r in picked}
    pool = np.setdiff1d(np.arange(len(ds)), np.fromiter(taken, dtype=np.int64, count=len(taken)))
    picked += [("random", int(r)) for r in rng.choice(pool, size=min(n.random, len(pool)), replace=False)]
    return picked


def why(cfg: AnalysisConfig, model: str) -> dict[str, Any]:
    """Why these candidates? Local explanations, global rankings and trust figures of ``model``.

    At the model's first working point (first target rate, or the first
    offline one): the highest-scoring background candidates that pass, the
    lowest-scoring truth-matched signal candidates that fail, and random ones,
    each explained by SHAP and LIME (figures under ``plots/why/``). Global
    rankings by mean |SHAP|, mean |LIME weight|, permutation importance on the
    test folds and xgboost's gain, with Kendall's tau between them. Written to
    ``explain/<model>.json``.
    """
    from .local import lime_attribution, shap_attribution
    from .rankings import kendall_table, permutation_importance, xgboost_gain
    from .storage import write_json

    lay = Layout.of(cfg)
    ctx = _why_context(cfg, model)
    ds, e = ctx.ds, cfg.explain
    wp, thr, thr_raw = _first_working_point(cfg, model)
    picked = _pick_candidates(cfg, ctx, thr_raw)
    # global rankings on one sample of truth-matched candidates, each by its own fold model
    rng = np.random.default_rng(cfg.seed + 2)
    pool = np.flatnonzero(ds.truth)
    sample = np.sort(rng.choice(pool, size=min(e.ranking_events, len(pool)), replace=False))
    test = pool
    if len(test) > e.permutation_events:
        test = np.sort(rng.choice(test, size=e.permutation_events, replace=False))
    # the features of every candidate used below, in one pass over the data set
    ctx.X.load(np.concatenate([[r for _, r in picked], sample, test]))
    records = []
    for role, row in picked:
        expl = _explain_row(cfg, ctx, row)
        rec = _why_record(cfg, ctx, row, expl, role, thr, thr_raw, labels=False)
        # drawn by why_figures (with the feature labels) from this record
        stem = _why_figure_stem(lay, model, rec["candidate"])
        rec["png"] = stem.with_name(stem.name + ".png").relative_to(lay.root).as_posix()
        records.append(rec)

    X, fold = ctx.X, ds.fold
    shap_abs, lime_abs, lime_r2 = [], [], []
    for row in sample:
        k = int(fold[row])
        v, _ = shap_attribution(ctx.folds[k], X[row][None, :], ctx.references[k], random_state=cfg.seed, n_samples=e.mlp_samples)
        shap_abs.append(np.abs(v[0]))
        lime = lime_attribution(ctx.folds[k].decision_function, X[row], ctx.references[k], num_samples=e.lime_samples, random_state=cfg.seed)
        lime_abs.append(np.abs(lime["weight"]))
        lime_r2.append(lime["r2"])
    perm = permutation_importance(
        ctx.folds, X[test], ds.y[test], fold[test], n_repeats=e.permutation_repeats, random_state=cfg.seed,
    )
    gain = xgboost_gain(ctx.folds, len(cfg.feature_names))
    methods: dict[str, np.ndarray] = {
        "mean |SHAP|": np.mean(shap_abs, axis=0), "mean |LIME weight|": np.mean(lime_abs, axis=0),
        "permutation (AUC drop)": np.asarray(perm["mean"]),
    }
    if gain is not None:
        methods["xgboost gain"] = gain
    names = cfg.feature_names
    out: dict[str, Any] = {
        "model": model, "kind": ctx.kind, "working_point": wp, "threshold": thr, "threshold_raw": thr_raw,
        "shap_method": records[0]["shap_method"] if records else None,
        "min_lime_r2": e.min_lime_r2,
        "candidates": records,
        "rankings": {
            "n_candidates": len(sample), "features": names,
            "methods": {m: v.tolist() for m, v in methods.items()},
            "permutation_std": np.asarray(perm["std"]).tolist(), "permutation_auc": perm["auc"],
            "permutation_candidates": len(test), "permutation_repeats": e.permutation_repeats,
            "lime_r2_mean": float(np.mean(lime_r2)),
            "kendall_tau": kendall_table(methods),
        },
    }
    write_json(lay.why(model), out)
    return out


def _why_figure_stem(lay: Layout, model: str, candidate: str) -> Path:
    return lay.why_plots / f"{model}_{candidate.replace(':', '_').replace('-', 'm')}"


def why_figures(cfg: AnalysisConfig, model: str) -> list[Path]:
    """Draw ``plots/why/<model>_<candidate>`` for each candidate of ``explain/<model>.json``.

    Drawn apart from :func:`why`, with the config's feature labels, so that
    editing a label redraws the figures without explaining the candidates again.
    """
    from types import SimpleNamespace

    from .storage import read_json

    lay = Layout.of(cfg)
    labels = _feature_labels(cfg)
    written: list[Path] = []
    for rec in read_json(lay.why(model))["candidates"]:
        rows = rec["contributions"]
        col = {k: np.array([r[k] for r in rows], dtype=float) for k in ("value", "shap", "lime_contribution", "lime_weight_std", "lime_offset")}
        expl = SimpleNamespace(
            feature_names=[r["feature"] for r in rows], output=rec["margin"], shap_base=rec["shap_base"],
            shap_method=rec["shap_method"], lime_r2=rec["lime_r2"], lime_local_pred=rec["lime_local_pred"], **col,
        )
        written += _why_plot(labels, expl, rec, model, _why_figure_stem(lay, model, rec["candidate"]))
    return written


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
    why_info = {m: read_json(lay.why(m)) for m in cfg.models if lay.why(m).exists()}
    fid_dir = lay.root / "fidelity"
    fidelity = {p.stem: read_json(p) for p in sorted(fid_dir.glob("*.json"))} if fid_dir.exists() else None
    study = read_json(lay.root / "study" / "augmentation.json") if (lay.root / "study" / "augmentation.json").exists() else None
    scan_json = lay.root / "decorrelation" / "scan.json"
    scan = read_json(scan_json) if cfg.decorrelation_scan is not None and scan_json.exists() else None
    # only while configured: a robustness.json left from an earlier config is not shown
    robust = read_json(lay.robustness) if cfg.robustness is not None and lay.robustness.exists() else None
    # the explanation figures carry the feature labels: drawn here, a label edit recomputes nothing
    for m in shap:
        explain_figures(cfg, m)
    for m in why_info:
        why_figures(cfg, m)
    cut_md = lay.dataset.with_name("cutflow.md")
    cut_json = lay.dataset.with_name("cutflow.json")
    text = render_report(
        lay.root, summary, cutflow_markdown=cut_md.read_text() if cut_md.exists() else "",
        cutflow=read_json(cut_json) if cut_json.exists() else None,
        fidelity=fidelity, study=study, shap=shap, decorrelation=scan, why=why_info,
        warnings=diagnose(summary, fidelity, cfg.evaluation.warnings),
        benchmarks=jobs,
        robustness=robust,
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


def decorrelation_scan(cfg: AnalysisConfig) -> dict[str, Any]:
    """The DisCo strength scan: ``decorrelation/scan.json`` and ``plots/decorrelation_scan``."""
    from . import plotting
    from .dataset import load_dataset
    from .decorrelation_scan import scan_point, summarise_scan
    from .storage import write_json

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
    after = {f"$\\lambda$ = {zero['strength']:g}": zero["background_after"]}
    after[f"$\\lambda$ = {chosen['strength']:g}"] = chosen["background_after"]
    with plotting.lhcb_style():
        fig, (ax1, ax2) = _two_panels()
        plotting.decorrelation_scan_plot(pts, working_point=res["working_point"], ax=ax1)
        ax1.set_title(f"{res['model']}, fold {res['fold']}", loc="right", fontsize=18)
        plotting.spectator_after_cut_plot(
            zero["bins"], zero["background_before"], after, xlabel=res["spectator"], ax=ax2
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


def _held_out_scores(folds: Sequence[Any], ds: Any, *, chunk: int = 1_000_000) -> np.ndarray:
    """Each candidate's raw output from the fold model that did not train on it (as :func:`hepsel.evaluation.cross_scores`).

    The feature matrix is built ``chunk`` candidates of a fold at a time, from
    the data set's columns: memory grows by one chunk, not by a copy of the data.
    """
    fold = ds.fold
    out = np.full(len(fold), np.nan)
    for k, clf in enumerate(folds):
        rows = np.flatnonzero(fold == k)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            out[part] = clf.decision_function(np.column_stack([ds.columns[f][part] for f in ds.feature_names]))
    return out


#: Columns the robustness figures read besides the features (which only scoring the shifted data needs).
_ROBUSTNESS_COLUMNS = ("runNumber", "eventNumber", "label", "sample", "weight", "fold", "truth")


def robustness(cfg: AnalysisConfig, *, progress: bool = True) -> dict[str, Any]:
    """The selection at its nominal working points on miscalibrated inputs (``robustness.shifts``).

    For each shift the input files are prepared again with the shifted
    branches (so aliases, features and the preselection see them), each
    candidate is scored by its held-out fold model, and the efficiencies and
    rates at the thresholds of ``summary.json`` are compared with the nominal
    ones (scores of ``scores.root``). Writes ``robustness.json`` and the plot
    ``plots/robustness``.
    """
    import tempfile

    import uproot

    from . import plotting
    from .dataset import gather as gather_tables
    from .dataset import load_dataset
    from .evaluation import model_kind
    from .ingest import prepare_file
    from .models import load_classifier
    from .reading import open_tree
    from .robustness import offline_shift_figures, shifts_from_config, trigger_shift_figures
    from .storage import read_json, write_json

    shifts = shifts_from_config(cfg)
    if not shifts:
        msg = f"{cfg.source or 'config'}: no 'robustness: shifts:' block; nothing to study"
        raise ConfigError(msg)
    lay = Layout.of(cfg)
    t0 = time.perf_counter()
    summary = read_json(lay.summary)
    names = [m for m in cfg.models if m in summary]
    nominal = load_dataset(lay.dataset, cfg, columns=_ROBUSTNESS_COLUMNS)
    with uproot.open(lay.scores) as f:
        tree = f["scores"]
        # working points cut on the raw output (``raw_<model>``), which does not saturate
        missing = [m for m in names if f"raw_{m}" not in tree.keys()]
        if missing:
            msg = f"{lay.scores} has no raw outputs (raw_<model>) of models {missing}; run the evaluate step again"
            raise ConfigError(msg)
        nominal_scores = {m: np.asarray(tree[f"raw_{m}"].array(library="np")) for m in names}
    # trigger studies need the signal and minimum-bias samples only
    samples = list(cfg.samples) if cfg.trigger is None else list(dict.fromkeys([cfg.signal_sample, cfg.minbias_sample]))
    # each pattern must match a branch of some sample's tree (the samples may name branches differently)
    sources = {f"{p}:{cfg.samples[s].tree}": open_tree(p, cfg.samples[s].tree) for s in samples for p in cfg.sample_files(s)}
    branches = {b for t in sources.values() for b in t.keys()}
    ids = sorted({b for s in samples for b in (cfg.event_ids(s).run_branch, cfg.event_ids(s).event_branch) if b})
    for shift in shifts.values():
        where = ", ".join(list(sources)[:3]) + (f" and {len(sources) - 3} more files" if len(sources) > 3 else "")
        shift.resolve(branches, where=where, protected=ids)
    folds = {m: [load_classifier(model_kind(cfg, m), lay.model(m, k)) for k in range(cfg.folds.k)] for m in names}
    per_shift: dict[str, dict[str, Any]] = {m: {} for m in names}
    n_candidates = {"nominal": len(nominal)}
    # one shift at a time: its data set is scored by every model, then only the figures are kept
    with tempfile.TemporaryDirectory(prefix=".robustness-", dir=lay.root) as tmp:
        for name, shift in shifts.items():
            prepared: dict[str, list[Path]] = {}
            for sample in samples:
                prepared[sample] = []
                for i, path in enumerate(cfg.sample_files(sample)):
                    out = Path(tmp) / name / sample / f"{i:03d}.parquet"
                    prepare_file(cfg, sample, path, out, file_index=i, progress=progress, shift=shift)
                    prepared[sample].append(out)
            gather_tables(cfg, prepared, Path(tmp) / name / "dataset.parquet")
            ds = load_dataset(
                Path(tmp) / name / "dataset.parquet", cfg, columns=[*_ROBUSTNESS_COLUMNS, *cfg.feature_names]
            )
            shutil.rmtree(Path(tmp) / name)
            scores = {m: _held_out_scores(folds[m], ds) for m in names}
            ds.drop_features()
            n_candidates[name] = len(ds)
            for m in names:
                thresholds = working_point_thresholds(summary[m], raw=True)
                proba_thresholds = working_point_thresholds(summary[m])
                if cfg.trigger is not None:
                    figures = trigger_shift_figures(cfg, nominal, nominal_scores[m], ds, scores[m], thresholds)
                else:
                    figures = offline_shift_figures(nominal, nominal_scores[m], ds, scores[m], thresholds)
                for key, entry in figures.items():
                    entry["threshold_raw"] = entry["threshold"]
                    entry["threshold"] = proba_thresholds.get(key)
                per_shift[m][name] = figures
            del ds, scores
    results = {m: {"kind": cfg.models[m].type, "shifts": per_shift[m]} for m in names}
    result: dict[str, Any] = {
        "shifts": {
            n: {p: {"scale": f[0], "offset": f[1]} for p, f in sh.patterns.items()} for n, sh in shifts.items()
        },
        "offline": cfg.trigger is None,
        "working_point_unit": "kHz" if cfg.trigger is not None else "signal efficiency",
        "n_candidates": n_candidates,
        "models": results,
        "seconds": time.perf_counter() - t0,
    }
    write_json(lay.robustness, result)
    with plotting.lhcb_style():
        fig = plotting.robustness_figure(result)
        plotting.save(fig, lay.plots / "robustness")
    return result
