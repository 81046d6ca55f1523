"""Ingestion of one input file: preselection, features, weights and folds.

:func:`prepare_file` streams one ROOT file of a sample (memory bounded by the
step size), applies the preselection and the sample's cuts with a cut-flow,
computes features, spectators, weights and folds, and appends the surviving
candidates to a Parquet file. The Snakemake workflow runs it once per input
file and gathers the results with :func:`hepsel.prep.dataset.gather`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..config.expressions import Expression
from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError, NonFiniteError
from ..io.reading import branch_types, check_branches, iterate, open_tree, reading_errors
from ..io.storage import ParquetAppender, read_json, write_json
from .cuts import CutFlow, CutSequence
from .features import FeatureSet, to_flat_numpy
from .robustness import BranchShift, apply_shift

__all__ = [
    "RESERVED_COLUMNS",
    "SamplePipeline",
    "generated_events_path",
    "prepare_file",
    "training_branch_types",
]

#: Columns every prepared table has, besides features and spectators.
RESERVED_COLUMNS = ("runNumber", "eventNumber", "label", "sample", "truth", "weight_raw", "fold")

#: Cut-flow step of the candidates kept by ``reading.non_finite: drop``.
FINITE_STEP = "finite features (reading.non_finite: drop)"

_FILE_STRIDE = 1_000_000_000  # event id offset per file when the tree has no event number


@dataclass
class _Expr:
    name: str
    expr: Expression


class SamplePipeline:
    """Everything needed to turn chunks of one sample's tree into table columns."""

    def __init__(self, cfg: AnalysisConfig, sample: str) -> None:
        if sample not in cfg.samples:
            msg = f"unknown sample {sample!r}; the config has {sorted(cfg.samples)}"
            raise ConfigError(msg)
        self.cfg = cfg
        self.sample = sample
        self.sample_cfg = cfg.samples[sample]
        self.sample_index = sorted(cfg.samples).index(sample)
        src = str(cfg.source or "config")
        aliases = cfg.sample_aliases(sample)
        cuts = [(c.name, c.cut) for c in cfg.preselection]
        cuts += [(f"{sample}: {c}", c) for c in self.sample_cfg.cuts]
        self.cuts = CutSequence(
            cuts, aliases=aliases, where=f"{src}: preselection / samples.{sample}.cuts"
        )
        self.features = FeatureSet.from_config(cfg, sample)
        clash = set(self.features.names) & set(RESERVED_COLUMNS)
        if clash:
            msg = f"{src}: feature names {sorted(clash)} are reserved; rename them"
            raise ConfigError(msg)
        self.spectators = [
            _Expr(s, Expression(s, aliases=aliases, where=f"{src}: spectators ({s})"))
            for s in cfg.spectators
            if s not in self.features.names and s not in RESERVED_COLUMNS
        ]
        w = self.sample_cfg.weight
        self.weight = (
            Expression(w, aliases=aliases, where=f"{src}: samples.{sample}.weight") if w else None
        )
        t = self.sample_cfg.truth
        self.truth = (
            Expression(t, aliases=aliases, where=f"{src}: samples.{sample}.truth") if t else None
        )
        self.best_by = (
            Expression(cfg.candidates.by, aliases=aliases, where=f"{src}: candidates.by")
            if cfg.candidates.mode == "best"
            else None
        )
        self.ids = cfg.event_ids(sample)
        self.run_branch = self.ids.run_branch
        self.event_branch = self.ids.event_branch

    def needed_branches(self) -> dict[str, list[str]]:
        """Branch -> config items that use it (for error messages)."""
        needed: dict[str, list[str]] = {}

        def use(branches: frozenset[str] | set[str], who: str) -> None:
            for b in branches:
                needed.setdefault(b, []).append(who)

        for name, e in zip(self.cuts.names, self.cuts.expressions, strict=True):
            use(e.branches, f"cut {name!r}")
        for f in self.features.features:
            use(f.branches, f"feature {f.name!r}")
        for s in self.spectators:
            use(s.expr.branches, f"spectator {s.name!r}")
        if self.weight is not None:
            use(self.weight.branches, f"samples.{self.sample}.weight")
        if self.truth is not None:
            use(self.truth.branches, f"samples.{self.sample}.truth")
        if self.best_by is not None:
            use(self.best_by.branches, "candidates.by")
        for b, who in (
            (self.run_branch, self.ids.source["run_branch"]),
            (self.event_branch, self.ids.source["event_branch"]),
        ):
            if b:
                use({b}, who)
        return needed

    def event_ids(
        self, arrays: Mapping[str, Any], n: int, entry_start: int, file_index: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(runNumber, eventNumber) of each entry, int64."""
        run = (
            np.asarray(arrays[self.run_branch], dtype=np.int64)
            if self.run_branch
            else np.zeros(n, dtype=np.int64)
        )
        if self.event_branch:
            evt = np.asarray(arrays[self.event_branch], dtype=np.int64)
        else:
            evt = (
                np.arange(entry_start, entry_start + n, dtype=np.int64) + file_index * _FILE_STRIDE
            )
        return run, evt

    def weights(self, arrays: Mapping[str, Any], n: int) -> np.ndarray:
        """Raw per-entry weights (before normalisation)."""
        if self.weight is None:
            return np.ones(n)
        w = to_flat_numpy(self.weight.evaluate(arrays), what=f"samples.{self.sample}.weight")
        # weights are summed over millions of candidates: always float64
        return np.broadcast_to(w, (n,)).astype(np.float64)

    def truth_mask(self, arrays: Mapping[str, Any]) -> np.ndarray:
        """Which candidates of ``arrays`` are truth-matched (the sample's ``truth`` expression)."""
        assert self.truth is not None
        truth = to_flat_numpy(self.truth.evaluate(arrays), what=f"samples.{self.sample}.truth")
        return np.asarray(np.nan_to_num(truth) != 0)

    def columns(
        self,
        arrays: Mapping[str, Any],
        keep: np.ndarray,
        run: np.ndarray,
        evt: np.ndarray,
        w: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Table columns for the candidates in ``keep``."""
        sub = _subset(arrays, keep)
        n = int(keep.sum())
        cols: dict[str, np.ndarray] = {
            "runNumber": run[keep],
            "eventNumber": evt[keep],
            "label": np.full(n, self.sample_cfg.label, dtype=np.int8),
            "sample": np.full(n, self.sample_index, dtype=np.int16),
            "weight_raw": w[keep],
            "fold": (evt[keep] % self.cfg.folds.k).astype(np.int8),
        }
        if self.truth is not None:
            cols["truth"] = self.truth_mask(sub).astype(np.int8)
        else:
            cols["truth"] = np.ones(n, dtype=np.int8)
        cols.update(self.features.columns(sub))
        for s in self.spectators:
            cols[s.name] = to_flat_numpy(s.expr.evaluate(sub), what=f"spectator {s.name!r}")
        if self.best_by is not None:
            cols["_best_by"] = to_flat_numpy(self.best_by.evaluate(sub), what="candidates.by")
        return cols


def _n_entries(arrays: Mapping[str, Any]) -> int:
    """Entries in a chunk: a dict of numpy arrays or an awkward record array."""
    if isinstance(arrays, dict):
        return len(next(iter(arrays.values()))) if arrays else 0
    return len(arrays)


def _subset(arrays: Mapping[str, Any], keep: np.ndarray) -> Any:
    if isinstance(arrays, dict):
        return {k: v[keep] for k, v in arrays.items()}
    return cast("Any", arrays)[keep]  # awkward record array


def _first_at(run: np.ndarray, evt: np.ndarray, bad: np.ndarray) -> str:
    """Where the first of the ``bad`` entries is, for a message: ``first at run R, event E``."""
    first = int(np.flatnonzero(bad)[0])
    return f"first at run {run[first]}, event {evt[first]}"


def _check_finite(
    cols: dict[str, np.ndarray], names: list[str], policy: str, where: str, dropped: dict[str, int]
) -> dict[str, np.ndarray]:
    bad_any = np.zeros(len(cols["weight_raw"]), dtype=bool)
    report = []
    for name in names:
        bad = ~np.isfinite(cols[name])
        if bad.any():
            report.append(f"{name!r}: {int(bad.sum())}")
            dropped[name] = dropped.get(name, 0) + int(bad.sum())
            bad_any |= bad
    if not report:
        return cols
    if policy == "fail":
        first = _first_at(cols["runNumber"], cols["eventNumber"], bad_any)
        msg = (
            f"non-finite values (NaN/inf) in {where}: {', '.join(report)} candidates ({first}); "
            "fix the expression (e.g. log of 0) or set reading.non_finite: drop"
        )
        raise NonFiniteError(msg)
    return {k: v[~bad_any] for k, v in cols.items()}


def _check_one_candidate_per_entry(
    ttree: Any, src: str, tree: str, key: str = "reading.entries_are_events"
) -> None:
    """With entries as events, refuse a DecayTreeTuple whose ``nCandidate`` shows several candidates per event."""
    try:
        keys = set(ttree.keys())
    except Exception:  # RNTuples and odd objects: nothing to check
        return
    if "nCandidate" not in keys:
        return
    with reading_errors(src, f"tree {tree!r}, branch 'nCandidate'"):
        n_cand = np.asarray(ttree["nCandidate"].array(library="np"))
    if len(n_cand) and n_cand.max() > 0:
        msg = (
            f"{src}:{tree}: {key} is set, but branch 'nCandidate' shows up to "
            f"{int(n_cand.max()) + 1} candidates per event; set {key.replace('entries_are_events', 'event_branch')} to the event-number branch "
            "so that all candidates of an event share a fold"
        )
        raise ConfigError(msg)


def _check_unique_events(run: np.ndarray, evt: np.ndarray, pipe: SamplePipeline, src: str) -> None:
    """Refuse a file whose entries, declared to be whole events, repeat a (run, event) pair.

    Repeated entries are several candidates of one event: counted as events
    they would inflate event counts and normalisations.
    """
    order = np.lexsort((evt, run))
    r, e = run[order], evt[order]
    repeat = (r[1:] == r[:-1]) & (e[1:] == e[:-1])
    if not repeat.any():
        return
    i = int(np.argmax(repeat))
    r0, e0 = int(r[i]), int(e[i])
    src_key = pipe.ids.source["entries_are_events"]
    names = ", ".join(b for b in (pipe.run_branch, pipe.event_branch) if b)
    msg = (
        f"{src} (sample {pipe.sample!r}): {src_key} is true, but {int(repeat.sum())} of its {len(run)} entries "
        f"repeat the ({names}) of another entry (e.g. run {r0}, event {e0}: "
        f"{int(np.sum((run == r0) & (evt == e0)))} entries); these entries are candidates of one event: set "
        f"samples.{pipe.sample}.entries_are_events: false (candidates grouped by {pipe.event_branch!r}), or fix the file"
    )
    raise ConfigError(msg)


def _non_finite_weights(
    pipe: SamplePipeline,
    src: str,
    run: np.ndarray,
    evt: np.ndarray,
    bad: np.ndarray,
    policy: str,
    dropped: dict[str, int],
) -> None:
    """Refuse (``fail``) or count (``drop``) entries whose weight is NaN or infinite."""
    expr = pipe.sample_cfg.weight
    if policy == "fail":
        first = _first_at(run, evt, bad)
        msg = (
            f"{src} (sample {pipe.sample!r}): the weight samples.{pipe.sample}.weight = {expr!r} is NaN or "
            f"infinite for {int(bad.sum())} entries ({first}), before any cut; "
            "weights of all entries enter the event counts and the normalisation, even where the preselection "
            "removes the candidate: fix the expression, or set reading.non_finite: drop to skip these entries"
        )
        raise NonFiniteError(msg)
    key = f"weight ({expr})"
    dropped[key] = dropped.get(key, 0) + int(bad.sum())


def _best_per_event(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep the candidate with the largest ``_best_by`` in each (contiguous) event."""
    run, evt, by = (
        cols["runNumber"],
        cols["eventNumber"],
        np.nan_to_num(cols["_best_by"], nan=-np.inf),
    )
    n = len(evt)
    if n == 0:
        return cols
    order = np.lexsort((-by, evt, run))  # within an event, the best first
    first = np.ones(n, dtype=bool)
    first[1:] = (run[order][1:] != run[order][:-1]) | (evt[order][1:] != evt[order][:-1])
    idx = np.sort(order[first])
    return {k: v[idx] for k, v in cols.items()}


def _chunks_with_whole_events(
    chunks: Iterator[dict[str, np.ndarray]],
) -> Iterator[dict[str, np.ndarray]]:
    """Re-chunk so that no event straddles two chunks (candidates of an event are contiguous)."""
    carry: dict[str, np.ndarray] | None = None
    for cols in chunks:
        if carry is not None:
            cols = {k: np.concatenate([carry[k], v]) for k, v in cols.items()}
        n = len(cols["eventNumber"])
        if n == 0:
            carry = cols
            continue
        last_run, last_evt = cols["runNumber"][-1], cols["eventNumber"][-1]
        tail = (cols["runNumber"] == last_run) & (cols["eventNumber"] == last_evt)
        carry = {k: v[tail] for k, v in cols.items()}
        yield {k: v[~tail] for k, v in cols.items()}
    if carry is not None:
        yield carry


def prepare_file(
    cfg: AnalysisConfig,
    sample: str,
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    file_index: int = 0,
    metadata: str | os.PathLike[str] | None = None,
    progress: bool = True,
    shift: BranchShift | None = None,
) -> dict[str, Any]:
    """Preselect one input file of ``sample`` and write its candidates to Parquet.

    Parameters
    ----------
    cfg
        The analysis config.
    sample
        Sample name (a key of ``cfg.samples``).
    path
        The input ROOT file.
    output
        The Parquet file to write (atomically).
    file_index
        Position of ``path`` in the sample's file list (for entry-based event ids).
    metadata
        JSON file for the cut-flow, event counts and generated-weight sum;
        default: ``output`` with suffix ``.json``.
    shift
        A miscalibration applied to the raw candidate branches as they are
        read, before weights, cuts, aliases and features (the robustness
        study); its patterns are matched against the candidate tree's
        branches (a pattern matching none of them is skipped here:
        :func:`hepsel.workflow.robustness_step.robustness` checks each pattern over all the
        samples' trees). The events tree is read as it is.

    Returns
    -------
    dict
        The metadata written.
    """
    pipe = SamplePipeline(cfg, sample)
    scfg = pipe.sample_cfg
    src = str(path)
    ttree = open_tree(path, scfg.tree)
    needed = pipe.needed_branches()
    check_branches(ttree, needed, path=src, tree=scfg.tree)
    if pipe.event_branch is None:
        _check_one_candidate_per_entry(ttree, src, scfg.tree, pipe.ids.source["entries_are_events"])
    # entries declared to be events, with event numbers: check that none repeats an event
    check_unique = pipe.ids.entries_are_events and pipe.event_branch is not None
    seen_run: list[np.ndarray] = []
    seen_evt: list[np.ndarray] = []
    shifted: dict[str, tuple[float, float]] = {}
    if shift is not None:
        ids = [b for b in (pipe.run_branch, pipe.event_branch) if b]
        # samples may name their branches differently: patterns are checked over all of them by the caller
        resolved = shift.resolve(
            ttree.keys(), where=f"{src}:{scfg.tree}", protected=ids, strict=False
        )
        shifted = {b: f for b, f in resolved.items() if b in needed}
    cutflow = pipe.cuts.new_cutflow()
    drop_non_finite = cfg.reading.non_finite == "drop"
    if drop_non_finite:
        # candidates dropped for non-finite features are a step of the cut-flow
        cutflow = CutFlow([*cutflow.steps, FINITE_STEP])
    # the same steps counted on the truth-matched candidates only (signal efficiency proper)
    truth_flow = CutFlow(list(cutflow.steps)) if pipe.truth is not None else None
    n_events = 0
    sum_gen_w = 0.0
    sum_gen_w2 = 0.0
    last_key: tuple[int, int] | None = None
    dropped: dict[str, int] = {}
    finite_cols = pipe.features.names  # spectators may legitimately be NaN (e.g. no truth)
    table_names: dict[str, np.dtype[Any]] = {}

    def raw_chunks() -> Iterator[dict[str, np.ndarray]]:
        nonlocal n_events, sum_gen_w, sum_gen_w2, last_key
        for arrays, start in iterate(
            path,
            scfg.tree,
            sorted(needed),
            step_size=cfg.reading.step_size,
            progress=progress,
            desc=f"{sample}:{Path(path).name}",
        ):
            if shifted:
                arrays = apply_shift(arrays, shifted)
            n = _n_entries(arrays)
            run, evt = pipe.event_ids(arrays, n, start, file_index)
            w = pipe.weights(arrays, n)
            bad_w = ~np.isfinite(w)
            if bad_w.any():
                # the weight enters event counts, normalisation and cut-flow before any cut
                _non_finite_weights(pipe, src, run, evt, bad_w, cfg.reading.non_finite, dropped)
                arrays, run, evt, w = _subset(arrays, ~bad_w), run[~bad_w], evt[~bad_w], w[~bad_w]
                n = len(w)
            if check_unique:
                seen_run.append(run)
                seen_evt.append(evt)
            if n:
                new = np.ones(n, dtype=bool)
                new[1:] = (run[1:] != run[:-1]) | (evt[1:] != evt[:-1])
                if last_key is not None and (run[0], evt[0]) == last_key:
                    new[0] = False
                n_events += int(new.sum())
                sum_gen_w += float(w[new].sum())
                sum_gen_w2 += float(np.square(w[new]).sum())
                last_key = (int(run[-1]), int(evt[-1]))
            keep = pipe.cuts.mask(arrays, w, cutflow)
            if truth_flow is not None:
                matched = pipe.truth_mask(arrays)
                pipe.cuts.mask(_subset(arrays, matched), w[matched], truth_flow)
            cols = pipe.columns(arrays, keep, run, evt, w)
            cols = _check_finite(
                cols, finite_cols, cfg.reading.non_finite, f"{src} ({sample})", dropped
            )
            if drop_non_finite:
                cutflow.add(len(cutflow.steps) - 1, cols["weight_raw"])
                if truth_flow is not None:
                    truth_flow.add(len(cutflow.steps) - 1, cols["weight_raw"][cols["truth"] == 1])
            yield cols

    chunks: Iterator[dict[str, np.ndarray]] = raw_chunks()
    if pipe.best_by is not None:
        chunks = (_best_per_event(c) for c in _chunks_with_whole_events(chunks))
    with ParquetAppender(output) as out:
        for cols in chunks:
            cols.pop("_best_by", None)
            table_names = {k: v.dtype for k, v in cols.items()}
            if len(cols["eventNumber"]):
                out.append(cols)
        if table_names:
            out.write_empty(table_names)
        else:  # an empty file: make the schema from the pipeline
            out.write_empty(_empty_schema(pipe))

        if check_unique and seen_run:
            _check_unique_events(np.concatenate(seen_run), np.concatenate(seen_evt), pipe, src)
        source = "candidate tree: events without candidates are not counted"
        if scfg.events_tree:
            n_cand_events = n_events
            n_events, tree_sums = _events_from_tree(path, scfg.events_tree, pipe)
            if tree_sums is not None:
                sum_gen_w, sum_gen_w2 = tree_sums
                source = f"events tree {scfg.events_tree!r}"
            elif n_cand_events:
                # the weight is not computable there: scale the mean event weight
                scale = n_events / n_cand_events
                sum_gen_w, sum_gen_w2 = sum_gen_w * scale, sum_gen_w2 * scale
                source = f"events tree {scfg.events_tree!r} (count) x mean weight of events with candidates"
            if sample == cfg.signal_sample:
                _write_generated_events(path, scfg.events_tree, pipe, generated_events_path(output))
        meta = {
            "sample": sample,
            "file": src,
            "file_index": file_index,
            "n_events": n_events,
            "sum_gen_weights": sum_gen_w,
            "sum_gen_weights2": sum_gen_w2,
            "events_source": source,
            "n_candidates_in": cutflow.raw[0],
            "n_candidates_out": cutflow.raw[-1],
            "non_finite_dropped": dropped,
            "cutflow": cutflow.to_dict(),
            "cutflow_truth": None if truth_flow is None else truth_flow.to_dict(),
            # what a saved selection checks its inputs against (Selection.branch_types)
            "branch_types": branch_types(ttree, sorted(needed)),
        }
        write_json(metadata or Path(output).with_suffix(".json"), meta)
    return meta


def training_branch_types(
    metadata: Sequence[str | os.PathLike[str]],
) -> dict[str, list[str]] | None:
    """Each input branch's types over the prepared files' metadata (written by :func:`prepare_file`).

    ``None`` when a file's metadata lacks the record (prepared by an older
    hepsel): a selection then checks no types rather than some.
    """
    types: dict[str, set[str]] = {}
    for m in metadata:
        p = Path(m)
        if not p.is_file():
            return None
        record = read_json(p).get("branch_types")
        if record is None:
            return None
        for b, t in record.items():
            types.setdefault(b, set()).add(t)
    return {b: sorted(t) for b, t in sorted(types.items())}


def _empty_schema(pipe: SamplePipeline) -> dict[str, np.dtype[Any]]:
    schema: dict[str, np.dtype[Any]] = {
        "runNumber": np.dtype(np.int64),
        "eventNumber": np.dtype(np.int64),
        "label": np.dtype(np.int8),
        "sample": np.dtype(np.int16),
        "weight_raw": np.dtype(np.float64),
        "fold": np.dtype(np.int8),
        "truth": np.dtype(np.int8),
    }
    for name in [*pipe.features.names, *(s.name for s in pipe.spectators)]:
        schema[name] = np.dtype(np.float64)
    return schema


def generated_events_path(table: str | os.PathLike[str]) -> Path:
    """Where :func:`prepare_file` writes the generated-events table next to the prepared ``table``."""
    return Path(table).with_suffix(".events.parquet")


def _write_generated_events(path: Any, tree: str, pipe: SamplePipeline, output: Path) -> None:
    """One row per generated event of the signal sample, for efficiencies relative to all of them.

    Columns: the event ids, ``weight_raw`` and those of the efficiency-vs
    variables and the mode column that the events tree has. Nothing is
    written (and a stale table is removed) when the tree lacks the event
    number or the weight's branches, since its rows could not be matched to
    candidates or weighted like them.
    """
    output.unlink(missing_ok=True)
    ev_cfg = pipe.cfg.evaluation
    keys = set(open_tree(path, tree).keys())
    ids = [b for b in (pipe.run_branch, pipe.event_branch) if b]
    weight_branches = pipe.weight.branches if pipe.weight is not None else frozenset()
    if not pipe.event_branch or not set(ids) <= keys or not weight_branches <= keys:
        return
    wanted = [*ev_cfg.efficiency_vs, *([ev_cfg.mode_column] if ev_cfg.mode_column else [])]
    extra = [b for b in dict.fromkeys(wanted) if b in keys and b not in RESERVED_COLUMNS]
    branches = sorted({*ids, *weight_branches, *extra})
    with ParquetAppender(output) as out:
        for arrays, start in iterate(path, tree, branches, step_size=pipe.cfg.reading.step_size):
            n = len(next(iter(arrays.values())))
            run, evt = pipe.event_ids(arrays, n, start, 0)
            cols = {"runNumber": run, "eventNumber": evt, "weight_raw": pipe.weights(arrays, n)}
            cols.update({b: np.asarray(arrays[b], dtype=np.float64) for b in extra})
            out.append(cols)
        ints, floats = np.dtype(np.int64), np.dtype(np.float64)
        out.write_empty(
            {
                "runNumber": ints,
                "eventNumber": ints,
                "weight_raw": floats,
                **dict.fromkeys(extra, floats),
            }
        )


def _events_from_tree(
    path: Any, tree: str, pipe: SamplePipeline
) -> tuple[int, tuple[float, float] | None]:
    """Event count and (sum of weights, sum of squared weights) from a tree with one entry per event.

    The sums are ``None`` when the weight expression needs branches that tree lacks.
    """
    etree = open_tree(path, tree)
    n = int(etree.num_entries)
    if pipe.weight is None:
        return n, (float(n), float(n))
    if not pipe.weight.branches <= set(etree.keys()):
        return n, None
    total = total2 = 0.0
    for arrays, _ in iterate(
        path, tree, sorted(pipe.weight.branches), step_size=pipe.cfg.reading.step_size
    ):
        w = pipe.weights(arrays, _n_entries(arrays))
        bad = ~np.isfinite(w)
        if bad.any():
            if pipe.cfg.reading.non_finite == "fail":
                msg = (
                    f"{path} (sample {pipe.sample!r}): the weight {pipe.sample_cfg.weight!r} is NaN or infinite for "
                    f"{int(bad.sum())} entries of the events tree {tree!r}; fix the expression, or set "
                    "reading.non_finite: drop to leave these events out of the event counts"
                )
                raise NonFiniteError(msg)
            n -= int(bad.sum())
            w = w[~bad]
        total += float(np.sum(w))
        total2 += float(np.sum(np.square(w)))
    return n, (total, total2)
