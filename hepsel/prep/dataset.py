"""The prepared data set: gathering per-file tables, normalising weights, folds.

After :func:`hepsel.prep.ingest.prepare_file` has run on every input file,
:func:`gather` merges the per-file Parquet tables and cut-flows, applies each
sample's normalisation, and writes one table that training and evaluation
read back with :func:`load_dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError
from ..io.storage import ParquetAppender, read_json, read_table, write_json, write_table, write_text
from .cuts import CutFlow, CutSequence

__all__ = [
    "BOOKKEEPING_COLUMNS",
    "Dataset",
    "feature_matrix",
    "gather",
    "load_dataset",
    "load_generated_events",
    "normalisation_factor",
    "training_weights",
]

#: Columns of the gathered table besides features and spectators.
BOOKKEEPING_COLUMNS = (
    "runNumber",
    "eventNumber",
    "label",
    "sample",
    "weight_raw",
    "weight",
    "fold",
    "truth",
)

#: File next to the gathered table holding one row per generated signal event.
GENERATED_EVENTS = "signal_events.parquet"


def normalisation_factor(cfg: AnalysisConfig, sample: str, sum_gen_weights: float) -> float:
    """Factor multiplying a sample's raw weights.

    ``scale`` if given; else cross-section [pb] x luminosity [1/pb] / sum of
    generated weights; else 1.
    """
    norm = cfg.samples[sample].normalisation
    if norm.scale is not None:
        return float(norm.scale)
    if norm.cross_section_pb is not None and norm.luminosity_pb is not None:
        if sum_gen_weights == 0:
            msg = f"samples.{sample}.normalisation: the sum of generated weights is 0"
            raise ConfigError(msg)
        return norm.cross_section_pb * norm.luminosity_pb / sum_gen_weights
    return 1.0


def gather(
    cfg: AnalysisConfig,
    prepared: Mapping[str, Sequence[str | os.PathLike[str]]],
    output: str | os.PathLike[str],
) -> dict[str, Any]:
    """Merge prepared per-file tables into one data set.

    Parameters
    ----------
    prepared
        Sample name -> its prepared Parquet files, in input-file order (each with
        its metadata JSON next to it).
    output
        The merged Parquet file; ``cutflow.json``, ``cutflow.md`` and
        ``samples.json`` are written next to it.
    """
    out = Path(output)
    generated: list[dict[str, np.ndarray]] = []
    samples_info: dict[str, Any] = {}
    cutflows: dict[str, Any] = {}
    factors: dict[str, float] = {}
    md = ["# Cut-flow\n"]
    for sample in sorted(prepared):
        files = list(prepared[sample])
        metas = [read_json(Path(f).with_suffix(".json")) for f in files]
        flow = CutFlow.from_dict(metas[0]["cutflow"])
        for m in metas[1:]:
            flow = flow.merge(CutFlow.from_dict(m["cutflow"]))
        CutSequence.check_not_empty(
            flow, sample=sample, where=f"{len(files)} file(s) of samples.{sample}"
        )
        n_events = int(sum(m["n_events"] for m in metas))
        sum_gen = float(sum(m["sum_gen_weights"] for m in metas))
        sum_gen2 = float(sum(m["sum_gen_weights2"] for m in metas))
        sources = sorted({m["events_source"] for m in metas})
        given = cfg.samples[sample].n_events
        if given is not None:
            # the stated total: events without candidates carry the mean weight of those with
            if given < n_events:
                msg = (
                    f"samples.{sample}.n_events = {given} is smaller than the {n_events} events that have "
                    "candidates in its files; it must count every processed event"
                )
                raise ConfigError(msg)
            scale = given / n_events if n_events else 0.0
            sum_gen, sum_gen2, n_events = sum_gen * scale, sum_gen2 * scale, given
            sources = [
                f"samples.{sample}.n_events ({given}) x mean weight of events with candidates"
            ]
        factor = factors[sample] = normalisation_factor(cfg, sample, sum_gen)
        samples_info[sample] = {
            "label": cfg.samples[sample].label,
            "index": sorted(cfg.samples).index(sample),
            "files": [m["file"] for m in metas],
            "n_events": n_events,
            "sum_gen_weights": sum_gen,
            "sum_gen_weights2": sum_gen2,
            "events_source": sources,
            "normalisation": factor,
            "n_candidates": int(flow.raw[-1]),
            "non_finite_dropped": _sum_dicts(m["non_finite_dropped"] for m in metas),
        }
        cutflows[sample] = {
            "counts": flow.to_dict(),
            "normalisation": factor,
            "table": flow.table(interval=cfg.evaluation.interval, scale=factor),
        }
        md.append(flow.to_markdown(title=sample, interval=cfg.evaluation.interval, scale=factor))
        truth_dicts = [m.get("cutflow_truth") for m in metas]
        if truth_dicts and all(truth_dicts):
            # the sample's truth-matched candidates: the preselection's signal efficiency proper
            tflow = CutFlow.from_dict(truth_dicts[0])
            for d in truth_dicts[1:]:
                tflow = tflow.merge(CutFlow.from_dict(d))
            cutflows[sample]["truth_matched"] = {
                "counts": tflow.to_dict(),
                "table": tflow.table(interval=cfg.evaluation.interval, scale=factor),
            }
            md.append(
                tflow.to_markdown(
                    title=f"{sample}, truth-matched candidates",
                    interval=cfg.evaluation.interval,
                    scale=factor,
                )
            )
        # the checks read only the columns they need, for all files of the sample at once
        _check_sample(cfg, sample, [read_table(f, ["truth", "weight_raw"]) for f in files])
        _check_events_across_files(
            cfg,
            sample,
            [read_table(f, ["runNumber", "eventNumber"]) for f in files],
            [m["file"] for m in metas],
        )
        if sample == cfg.signal_sample:
            generated = _generated_events(files, factor)
    gen_path = out.with_name(GENERATED_EVENTS)
    if generated:
        write_table(gen_path, {k: np.concatenate([g[k] for g in generated]) for k in generated[0]})
    else:
        gen_path.unlink(missing_ok=True)
    write_json(out.with_name("cutflow.json"), cutflows)
    write_text(out.with_name("cutflow.md"), "\n".join(md))
    write_json(out.with_name("samples.json"), samples_info)
    # streamed: one prepared file in memory at a time, one row group (shard) per file
    shards = [(sample, Path(f)) for sample in sorted(prepared) for f in prepared[sample]]
    dtypes = _common_dtypes([f for _, f in shards])
    with ParquetAppender(out) as table:
        for sample, f in shards:
            t = read_table(f, list(dtypes))
            t = {k: v.astype(dtypes[k], copy=False) for k, v in t.items()}
            t["weight"] = t["weight_raw"] * factors[sample]
            table.append(t)
    return samples_info


def _common_dtypes(files: Sequence[Path]) -> dict[str, np.dtype[Any]]:
    """The columns of the first prepared file, each with the dtype that holds its values in every file."""
    import pyarrow.parquet as pq

    from ..exceptions import InputFileError

    schemas = [pq.read_schema(f) for f in files]
    names = schemas[0].names
    for f, schema in zip(files, schemas, strict=True):
        missing = [n for n in names if n not in schema.names]
        if missing:
            msg = f"{f}: no column(s) {missing}, which {files[0]} has; run the prepare step again for it"
            raise InputFileError(msg)
    return {
        n: np.result_type(*(np.dtype(schema.field(n).type.to_pandas_dtype()) for schema in schemas))
        for n in names
    }


def _check_sample(
    cfg: AnalysisConfig, sample: str, tables: Sequence[Mapping[str, np.ndarray]]
) -> None:
    """Stop at gather, not at training, when a sample cannot be trained on.

    The sample needs candidates matching its ``truth`` expression, and their
    weights (``weight``) must have a positive total.
    """
    scfg = cfg.samples[sample]
    truth = np.concatenate([np.asarray(t["truth"], dtype=bool) for t in tables])
    w = np.concatenate([np.asarray(t["weight_raw"], dtype=np.float64) for t in tables])
    if not truth.any():
        msg = (
            f"samples.{sample}.truth = {scfg.truth!r} matches none of the {len(truth)} preselected candidates "
            f"of sample {sample!r}: nothing to train on; check the expression (branch values, == vs =)"
        )
        raise ConfigError(msg)
    total = float(w[truth].sum())
    if not total > 0:
        what = f"samples.{sample}.weight = {scfg.weight!r}" if scfg.weight else "the unit weights"
        n_zero, n_neg = int((w[truth] == 0).sum()), int((w[truth] < 0).sum())
        msg = (
            f"{what}: the {int(truth.sum())} preselected{' truth-matched' if scfg.truth else ''} candidates of "
            f"sample {sample!r} have a total weight of {total:g} ({n_zero} zero, {n_neg} negative); "
            "a sample needs a positive total weight to be trained on and to define efficiencies"
        )
        raise ConfigError(msg)


def _check_events_across_files(
    cfg: AnalysisConfig,
    sample: str,
    tables: Sequence[Mapping[str, np.ndarray]],
    files: Sequence[str],
) -> None:
    """Refuse two files of a sample whose entries are events but share a (run, event).

    Each file was checked on its own when prepared (all entries); here the
    preselected entries of different files are compared, e.g. one file listed
    twice, whose events would count twice.
    """
    ids = cfg.event_ids(sample)
    if not ids.entries_are_events or ids.event_branch is None or len(tables) < 2:
        return
    run = np.concatenate([np.asarray(t["runNumber"], dtype=np.int64) for t in tables])
    evt = np.concatenate([np.asarray(t["eventNumber"], dtype=np.int64) for t in tables])
    which = np.concatenate([np.full(len(t["runNumber"]), i) for i, t in enumerate(tables)])
    order = np.lexsort((which, evt, run))
    same = (run[order][1:] == run[order][:-1]) & (evt[order][1:] == evt[order][:-1])
    if not same.any():
        return
    i = int(np.flatnonzero(same)[0])
    a, b = (int(which[order][j]) for j in (i, i + 1))
    msg = (
        f"samples.{sample}: {ids.source['entries_are_events']} is true, but {int(same.sum())} preselected entries "
        f"repeat a ({', '.join(x for x in (ids.run_branch, ids.event_branch) if x)}) of another of its files "
        f"(first: run {int(run[order][i])}, event {int(evt[order][i])} in {files[a]} and {files[b]}); "
        "each event would count more than once: list every file once, or renumber the events"
    )
    raise ConfigError(msg)


def _generated_events(
    files: Sequence[str | os.PathLike[str]], factor: float
) -> list[dict[str, np.ndarray]]:
    """The generated-events tables of a sample's prepared files; empty unless every file has one."""
    from .ingest import generated_events_path

    paths = [generated_events_path(f) for f in files]
    if not paths or not all(p.is_file() for p in paths):
        return []
    tables = [read_table(p) for p in paths]
    if any(set(t) != set(tables[0]) for t in tables):
        return []
    for t in tables:
        t["weight"] = t["weight_raw"] * factor
    return tables


def load_generated_events(dataset_path: str | os.PathLike[str]) -> dict[str, np.ndarray] | None:
    """One row per generated signal event (ids, ``weight``, true kinematics), if :func:`gather` wrote them.

    ``None`` when the signal sample has no events tree with event numbers.
    """
    p = Path(dataset_path).with_name(GENERATED_EVENTS)
    return read_table(p) if p.is_file() else None


def _sum_dicts(ds: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in ds:
        for k, v in d.items():
            total[k] = total.get(k, 0) + int(v)
    return total


@dataclass
class Dataset:
    """The merged candidates of all samples, as flat numpy columns."""

    columns: dict[str, np.ndarray]
    feature_names: list[str]
    samples: dict[str, Any]

    def __len__(self) -> int:
        return len(self.columns["label"])

    @property
    def X(self) -> np.ndarray:
        """Feature matrix, shape (n_candidates, n_features)."""
        return np.column_stack([self.columns[f] for f in self.feature_names])

    @property
    def y(self) -> np.ndarray:
        """Class label (1 signal, 0 background)."""
        return self.columns["label"].astype(np.int64)

    @property
    def weight(self) -> np.ndarray:
        """Normalised per-candidate weights."""
        return self.columns["weight"]

    @property
    def fold(self) -> np.ndarray:
        """Fold index of each candidate."""
        return self.columns["fold"].astype(np.int64)

    @property
    def truth(self) -> np.ndarray:
        """True for candidates that represent their class (trained on, used in ROC)."""
        return self.columns["truth"].astype(bool)

    def sample_mask(self, sample: str) -> np.ndarray:
        """Candidates of one sample."""
        return self.columns["sample"] == self.samples[sample]["index"]

    def drop_features(self) -> None:
        """Free the feature columns (once a step has what it needs from them, e.g. the scores)."""
        for name in self.feature_names:
            self.columns.pop(name, None)


def load_dataset(
    path: str | os.PathLike[str],
    cfg: AnalysisConfig,
    *,
    columns: Sequence[str] | None = None,
    rows: Any = None,
) -> Dataset:
    """Read a data set written by :func:`gather`.

    Parameters
    ----------
    columns
        Read only these columns (default: all); the features are read when
        ``columns`` asks for none of them but :attr:`Dataset.X` is used, so
        list them (see :data:`BOOKKEEPING_COLUMNS` for the others).
    rows
        A pyarrow filter expression on the table's columns, e.g.
        ``pyarrow.compute.field("fold") != 2``: only matching rows are kept.

    Reading a part of the columns and rows bounds the memory of a job on a
    large data set: it holds what it asked for plus one column.
    """
    p = Path(path)
    return Dataset(
        read_table(p, columns, rows=rows), cfg.feature_names, read_json(p.with_name("samples.json"))
    )


def feature_matrix(
    path: str | os.PathLike[str],
    cfg: AnalysisConfig,
    *,
    rows: np.ndarray | None = None,
    dtype: Any = np.float64,
) -> np.ndarray:
    """The features of the candidates of the data set at ``path``, shape (n_rows, n_features).

    ``rows`` (integer positions) picks candidates; default: all. Filled one
    column at a time: the peak memory is the matrix plus one column, where
    ``load_dataset(...).X`` holds the columns and the matrix.
    """
    import pyarrow.parquet as pq

    n = pq.ParquetFile(path).metadata.num_rows if rows is None else len(rows)
    X = np.empty((n, len(cfg.feature_names)), dtype=dtype)
    for j, name in enumerate(cfg.feature_names):
        column = read_table(path, [name])[name]
        X[:, j] = column if rows is None else column[rows]
    return X


def training_weights(
    weight: np.ndarray, y: np.ndarray, *, negative: str, balance: bool
) -> np.ndarray:
    """Weights for training under the negative-weight policy, optionally class-balanced.

    Parameters
    ----------
    negative
        ``"keep"`` or ``"resample"`` (use as they are here; the learners that
        need positive weights get them made positive by cell resampling, see
        :mod:`hepsel.train.negative_weights`), ``"abs"`` (take absolute values) or
        ``"drop"`` (weight 0 for negative-weight candidates).
    balance
        Rescale so that both classes have the same total weight, with mean
        weight 1 overall (keeps learning rates meaningful).
    """
    w = np.asarray(weight, dtype=np.float64).copy()
    if negative == "abs":
        w = np.abs(w)
    elif negative == "drop":
        w[w < 0] = 0.0
    elif negative not in ("keep", "resample"):
        msg = f"training.negative_weights must be keep, resample, abs or drop, not {negative!r}"
        raise ValueError(msg)
    if balance:
        for cls in (0, 1):
            m = y == cls
            total = w[m].sum()
            if total <= 0:
                name = "signal" if cls == 1 else "background"
                msg = (
                    f"the {name} training candidates (label {cls}) have a total weight of {total:g} "
                    f"(training.negative_weights: {negative}); check the samples' weight expressions"
                )
                raise ValueError(msg)
            w[m] *= 0.5 * len(w) / total
    return w
