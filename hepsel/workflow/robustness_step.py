"""The robustness step: the selection at fixed working points on shifted inputs."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError
from .labels import working_point_thresholds
from .layout import Layout

__all__ = [
    "robustness",
]


def _held_out_scores(folds: Sequence[Any], ds: Any, *, chunk: int = 1_000_000) -> np.ndarray:
    """Each candidate's raw output from the fold model that did not train on it (as :func:`hepsel.workflow.cross_scoring.cross_scores`).

    The feature matrix is built ``chunk`` candidates of a fold at a time, from
    the data set's columns: memory grows by one chunk, not by a copy of the data.
    """
    fold = ds.fold
    out = np.full(len(fold), np.nan)
    for k, clf in enumerate(folds):
        rows = np.flatnonzero(fold == k)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            out[part] = clf.decision_function(
                np.column_stack([ds.columns[f][part] for f in ds.feature_names])
            )
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

    from ..io.reading import open_tree
    from ..io.storage import read_json, write_json
    from ..models import load_classifier
    from ..prep.dataset import gather as gather_tables
    from ..prep.dataset import load_dataset
    from ..prep.ingest import prepare_file
    from ..prep.robustness import offline_shift_figures, shifts_from_config, trigger_shift_figures
    from ..report import plotting, study_plots
    from .cross_scoring import model_kind

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
    samples = (
        list(cfg.samples)
        if cfg.trigger is None
        else list(dict.fromkeys([cfg.signal_sample, cfg.minbias_sample]))
    )
    # each pattern must match a branch of some sample's tree (the samples may name branches differently)
    sources = {
        f"{p}:{cfg.samples[s].tree}": open_tree(p, cfg.samples[s].tree)
        for s in samples
        for p in cfg.sample_files(s)
    }
    branches = {b for t in sources.values() for b in t.keys()}
    ids = sorted(
        {
            b
            for s in samples
            for b in (cfg.event_ids(s).run_branch, cfg.event_ids(s).event_branch)
            if b
        }
    )
    for shift in shifts.values():
        where = ", ".join(list(sources)[:3]) + (
            f" and {len(sources) - 3} more files" if len(sources) > 3 else ""
        )
        shift.resolve(branches, where=where, protected=ids)
    folds = {
        m: [load_classifier(model_kind(cfg, m), lay.model(m, k)) for k in range(cfg.folds.k)]
        for m in names
    }
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
                    prepare_file(
                        cfg, sample, path, out, file_index=i, progress=progress, shift=shift
                    )
                    prepared[sample].append(out)
            gather_tables(cfg, prepared, Path(tmp) / name / "dataset.parquet")
            ds = load_dataset(
                Path(tmp) / name / "dataset.parquet",
                cfg,
                columns=[*_ROBUSTNESS_COLUMNS, *cfg.feature_names],
            )
            shutil.rmtree(Path(tmp) / name)
            scores = {m: _held_out_scores(folds[m], ds) for m in names}
            ds.drop_features()
            n_candidates[name] = len(ds)
            for m in names:
                thresholds = working_point_thresholds(summary[m], raw=True)
                proba_thresholds = working_point_thresholds(summary[m])
                if cfg.trigger is not None:
                    figures = trigger_shift_figures(
                        cfg, nominal, nominal_scores[m], ds, scores[m], thresholds
                    )
                else:
                    figures = offline_shift_figures(
                        nominal, nominal_scores[m], ds, scores[m], thresholds
                    )
                for key, entry in figures.items():
                    entry["threshold_raw"] = entry["threshold"]
                    entry["threshold"] = proba_thresholds.get(key)
                per_shift[m][name] = figures
            del ds, scores
    results = {m: {"kind": cfg.models[m].type, "shifts": per_shift[m]} for m in names}
    result: dict[str, Any] = {
        "shifts": {
            n: {p: {"scale": f[0], "offset": f[1]} for p, f in sh.patterns.items()}
            for n, sh in shifts.items()
        },
        "offline": cfg.trigger is None,
        "working_point_unit": "kHz" if cfg.trigger is not None else "signal efficiency",
        "n_candidates": n_candidates,
        "models": results,
        "seconds": time.perf_counter() - t0,
    }
    write_json(lay.robustness, result)
    with plotting.lhcb_style():
        fig = study_plots.robustness_figure(result)
        plotting.save(fig, lay.plots / "robustness")
    return result
