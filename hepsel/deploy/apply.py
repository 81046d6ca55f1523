"""Apply a trained selection to ROOT files: friend trees of scores and decisions.

:func:`apply_file` streams one input file (memory bounded by the read step)
and writes, next to nothing else, one output ROOT file holding

* ``hepsel``: one entry per input entry, in the same order (a friend of the
  input tree): ``runNumber``, ``eventNumber``, ``presel``, ``score_<model>``
  (the probability) and ``raw_<model>`` (the raw output the working points
  cut on: margin, logit, discriminant or reconstruction error), both NaN
  where the preselection rejects the entry, and a decision for every stored
  working point, named in its unit (``pass_<model>_660kHz``,
  ``pass_<model>_eff50``; ``False`` where the preselection rejects the
  entry); optionally the input's own flat branches;
* ``hepsel_events``: one entry per event, as the trigger sees it:
  ``n_candidates``, ``n_preselected``, the best ``score_<model>`` and
  ``raw_<model>`` and the decisions (any candidate passes).

With a menu in the selection both trees also hold ``pass_<line>_<rate>kHz``
and ``pass_menu_<rate>kHz``: whether each line, and the menu, keeps the
entry's event (a one-track line read from the file's track tree); see
:mod:`hepsel.deploy.menu`. Like every row of these trees, they cover the
events with an entry in the applied tree: an event only a one-track line
keeps, without any candidate in it, has no row.

Without an event-number branch (``Selection.fold_branch``) each entry is its
own event, numbered by its entry index, and each score is the mean of the
fold models (no fold rule can apply).

Inputs and outputs never mix: :func:`split_own_outputs` sets aside hepsel's own
outputs among the inputs (files under an analysis's output directory, files
holding the friend trees), and :func:`check_outputs` refuses, before anything
is written, an output that is, or resolves to, any input of the run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import ConfigError, HepselError
from ..io.remote import InputPath, as_input, is_url
from ..stats.trigger import event_max, group_events
from .selection import Selection, wp_branch

if TYPE_CHECKING:
    from ..config.schema import AnalysisConfig

__all__ = [
    "EVENTS_TREE",
    "FRIEND_TREE",
    "apply_file",
    "check_outputs",
    "dataset_jobs",
    "output_name",
    "own_output",
    "plan_outputs",
    "split_own_outputs",
]

#: Name of the per-entry (friend) tree.
FRIEND_TREE = "hepsel"
#: Name of the per-event tree.
EVENTS_TREE = "hepsel_events"


def output_name(path: str | os.PathLike[str]) -> str:
    """File name of the output for input ``path`` (``<stem>_hepsel.root``)."""
    return f"{Path(str(path)).stem}_hepsel.root"


def own_output(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is one of hepsel's own outputs (never an input to apply to), or ``None``.

    hepsel's outputs are the files under an analysis's output directory (the
    one holding the ownership marker, :func:`hepsel.config.provenance.output_owner`)
    and the ROOT files holding the friend trees :data:`FRIEND_TREE` and
    :data:`EVENTS_TREE`, wherever they were moved or linked to.

    Raises
    ------
    InputFileError
        If ``path`` is a URL the server does not give (the message names it and the server's answer).
    """
    from ..config.provenance import output_owner

    if is_url(path):
        from ..io.remote import open_url

        # a URL lies in no local output directory; one the server does not give fails the run here,
        # before anything is written (InputFileError naming the URL and the server's answer)
        with open_url(str(path)) as f:
            try:
                trees = {k for k, c in f.classnames(cycle=False).items() if c == "TTree"}
            except (
                Exception
            ):  # a listing that does not decode: applying to it reports what is wrong
                return None
    else:
        owner = output_owner(path)
        if owner is not None:
            directory, config = owner
            return f"hepsel's own output: it lies in the output directory {str(directory)!r} of the analysis {config!r}"
        try:
            import uproot

            with uproot.open(path) as f:
                trees = {k for k, c in f.classnames(cycle=False).items() if c == "TTree"}
        except Exception:  # not a readable ROOT file: applying to it reports what is wrong
            return None
    if {FRIEND_TREE, EVENTS_TREE} <= trees:
        return f"hepsel's own output: it holds the friend trees {FRIEND_TREE!r} and {EVENTS_TREE!r} of an earlier apply"
    return None


def split_own_outputs(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[InputPath], list[tuple[InputPath, str]]]:
    """The inputs to apply to, and the ``(path, reason)`` of each of hepsel's own outputs set aside (URLs stay strings)."""
    kept: list[InputPath] = []
    skipped: list[tuple[InputPath, str]] = []
    for p in map(as_input, paths):
        why = own_output(p)
        if why is None:
            kept.append(p)
        else:
            skipped.append((p, why))
    return kept, skipped


def _same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one existing file: one inode (device and number), through any symbolic or hard link."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): nothing to overwrite
        return False


def check_outputs(jobs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]]) -> None:
    """Refuse ``(input, output)`` jobs where an output is, or resolves to, any input of the run.

    Raises
    ------
    ConfigError
        Naming the output and the input it would overwrite.
    """
    # a URL is no local file: writing a local output cannot overwrite it
    inputs = [Path(i) for i, _ in jobs if not is_url(i)]
    for _, out in jobs:
        for src in inputs:
            if _same_file(Path(out), src):
                msg = (
                    f"output {str(out)!r} would overwrite the input {str(src)!r}; nothing was written: "
                    "write to another output directory"
                )
                raise ConfigError(msg)


def plan_outputs(
    inputs: Sequence[str | os.PathLike[str]], output_dir: str | os.PathLike[str]
) -> list[tuple[InputPath, Path]]:
    """The ``(input, output)`` jobs of ``hepsel apply``: ``<output_dir>/<input stem>_hepsel.root`` each.

    Raises
    ------
    ConfigError
        If two inputs would write one output, or an output is any input (:func:`check_outputs`).
    """
    names = [output_name(f) for f in inputs]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        msg = f"several inputs would write the same output {clash}: apply them to separate output directories"
        raise ConfigError(msg)
    jobs = [(as_input(f), Path(output_dir) / n) for f, n in zip(inputs, names, strict=True)]
    check_outputs(jobs)
    return jobs


def dataset_jobs(
    cfg: AnalysisConfig,
) -> tuple[dict[str, list[tuple[InputPath, Path]]], list[tuple[InputPath, str]]]:
    """The jobs of the workflow's ``apply`` target, per dataset of the config's ``apply:`` block.

    Input ``i`` of dataset ``d`` writes ``<output>/apply/<d>/<i:03d>/<stem>_hepsel.root``.
    hepsel's own outputs among the files are set aside (:func:`split_own_outputs`):
    returns the jobs and the ``(path, reason)`` of each file set aside.

    Raises
    ------
    ConfigError
        If a pattern matches nothing, a dataset holds nothing but hepsel's own
        outputs, or an output is any input (:func:`check_outputs`).
    """
    jobs: dict[str, list[tuple[InputPath, Path]]] = {}
    skipped: list[tuple[InputPath, str]] = []
    for d in cfg.apply.datasets:
        kept, skip = split_own_outputs(cfg.apply_files(d))
        if not kept:
            msg = f"apply.datasets.{d}.files: every file it names is hepsel's own output ({skip[0][1]}); nothing to apply to"
            raise ConfigError(msg)
        skipped.extend(skip)
        jobs[d] = [
            (f, cfg.output_dir / "apply" / d / f"{i:03d}" / output_name(f))
            for i, f in enumerate(kept)
        ]
    check_outputs([job for js in jobs.values() for job in js])
    return jobs, skipped


def _flat_numeric(ttree: Any) -> list[str]:
    """The input's flat numeric branches (what ``copy_branches`` copies)."""
    out = []
    for name in ttree.keys():
        try:
            interp = ttree[name].interpretation
        except Exception:  # RNTuple fields and odd branches: skip
            continue
        dtype = getattr(interp, "numpy_dtype", None)
        if (
            dtype is not None
            and dtype.kind in "biuf"
            and dtype.shape == ()
            and getattr(interp, "content", None) is None
        ):
            out.append(name)
    return out


def apply_file(
    selection: Selection,
    path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    tree: str | None = None,
    models: Sequence[str] | None = None,
    copy_branches: bool = False,
    run_branch: str = "runNumber",
    step_size: int | str = "100 MB",
    progress: bool = True,
) -> dict[str, Any]:
    """Score every entry of ``path`` and write the friend and event trees to ``output``.

    Returns a record of what was done (entries, events, preselected entries,
    the event-number source) and, per working point, ``event_passes``: the
    number of events in which any preselected entry passes, out of all events
    with an entry in the tree, unweighted and without truth matching (unlike
    the report's signal efficiencies, which count only signal events whose
    truth-matched candidate passed the preselection, weighted).

    Raises
    ------
    ConfigError
        If ``output`` is the input file.
    InputFileError, ConfigError
        If the file, the tree or a branch a feature or cut needs is missing
        (the message names the file, tree, branch and its users).
    """
    from ..io.reading import check_branches, iterate, open_tree
    from ..io.storage import atomic_path

    src, out = as_input(path), Path(output)
    if isinstance(src, Path) and (
        out.resolve() == src.resolve()
        or (out.exists() and src.exists() and os.path.samefile(out, src))
    ):
        msg = (
            f"output {str(out)!r} is the input file itself; write the friend trees to another file"
        )
        raise ConfigError(msg)
    t = tree or selection.tree
    ttree = open_tree(src, t)
    check_branches(ttree, selection.needed_branches(), path=str(src), tree=t)
    selection.check_types(ttree, path=str(src), tree=t)
    keys = set(ttree.keys())
    names = list(models or selection.models)
    for m in names:
        selection._model_name(m)
    event_branch = (
        selection.fold_branch if selection.fold_branch and selection.fold_branch in keys else None
    )
    has_run = run_branch in keys
    copied = [b for b in _flat_numeric(ttree) if b not in (FRIEND_TREE,)] if copy_branches else []
    wanted = sorted(
        {
            *selection.branches,
            *copied,
            *([event_branch] if event_branch else []),
            *([run_branch] if has_run else []),
        }
    )
    wps = {m: selection.decision_thresholds(m) for m in names}
    # the menu's decisions per event, each line on its own tree of this file (tree: the selection's)
    menu = None
    if selection.menu is not None and t == selection.tree:
        try:
            menu = selection.menu.event_decisions(selection, src, step_size=step_size)
        except HepselError as err:
            msg = f"{err} (read for the selection's trigger menu; --no-menu leaves the menu out)"
            raise type(err)(msg) from None

    ids_run: list[np.ndarray] = []
    ids_evt: list[np.ndarray] = []
    presels: list[np.ndarray] = []
    scores: dict[str, list[np.ndarray]] = {m: [] for m in names}
    raws: dict[str, list[np.ndarray]] = {m: [] for m in names}
    n_entries = 0
    with atomic_path(out, suffix=".root") as tmp:
        import uproot

        with uproot.recreate(tmp) as f:
            created = False
            for arrays, start in iterate(
                src,
                t,
                wanted,
                step_size=step_size,
                progress=progress,
                desc=f"apply {Path(str(src)).name}",
            ):
                n = selection._len(arrays)
                cols = _chunk_columns(
                    selection,
                    arrays,
                    n,
                    start,
                    names,
                    wps,
                    event_branch,
                    run_branch if has_run else None,
                    copied,
                )
                if menu is not None:
                    cols.update(menu.lookup(cols["runNumber"], cols["eventNumber"]))
                if not created:
                    f.mktree(FRIEND_TREE, {k: v.dtype for k, v in cols.items()})
                    created = True
                f[FRIEND_TREE].extend(cols)
                ids_run.append(cols["runNumber"])
                ids_evt.append(cols["eventNumber"])
                presels.append(cols["presel"])
                for m in names:
                    scores[m].append(cols[f"score_{m}"])
                    raws[m].append(cols[f"raw_{m}"])
                n_entries += n
            if not created:  # an empty input tree: an empty, well-formed output
                empty = _chunk_columns(selection, None, 0, 0, names, wps, None, None, [])
                if menu is not None:
                    empty.update({b: np.zeros(0, dtype=bool) for b in menu.passes})
                f.mktree(FRIEND_TREE, {k: v.dtype for k, v in empty.items()})
            events = _event_columns(
                _cat(ids_run, np.int64),
                _cat(ids_evt, np.int64),
                _cat(presels, bool),
                {m: _cat(v, np.float64) for m, v in scores.items()},
                {m: _cat(v, np.float64) for m, v in raws.items()},
                wps,
                selection.working_point_unit,
            )
            if menu is not None:
                events.update(menu.lookup(events["runNumber"], events["eventNumber"]))
            f.mktree(EVENTS_TREE, {k: v.dtype for k, v in events.items()})
            if len(events["eventNumber"]):
                f[EVENTS_TREE].extend(events)
    return {
        "input": str(src),
        "output": str(out),
        "tree": t,
        "entries": n_entries,
        "events": len(events["eventNumber"]),
        "preselected": int(_cat(presels, bool).sum()),
        "event_numbers": f"branch {event_branch!r}"
        if event_branch
        else "entry index (no event-number branch: fold models averaged)",
        "event_passes": {k: int(v.sum()) for k, v in events.items() if k.startswith("pass_")},
    }


def _cat(chunks: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)


def _chunk_columns(
    selection: Selection,
    arrays: Any,
    n: int,
    start: int,
    models: Sequence[str],
    wps: dict[str, tuple[dict[str, float], bool]],
    event_branch: str | None,
    run_branch: str | None,
    copied: Sequence[str],
) -> dict[str, np.ndarray]:
    """The friend-tree columns of one chunk."""
    run = (
        np.asarray(arrays[run_branch], dtype=np.int64)
        if run_branch
        else np.zeros(n, dtype=np.int64)
    )
    evt = (
        np.asarray(arrays[event_branch], dtype=np.int64)
        if event_branch
        else np.arange(start, start + n, dtype=np.int64)
    )
    cols: dict[str, np.ndarray] = {"runNumber": run, "eventNumber": evt}
    if n:
        d = selection.decisions(arrays, models=models, menu=False)
        cols.update(
            {
                k: v
                for k, v in d.items()
                if k == "presel" or k.startswith(("score_", "raw_", "pass_"))
            }
        )
    else:  # the schema of an empty chunk
        cols["presel"] = np.zeros(0, dtype=bool)
        for m in models:
            cols[f"score_{m}"] = np.zeros(0)
            cols[f"raw_{m}"] = np.zeros(0)
            cols.update(
                {
                    wp_branch(m, key, selection.working_point_unit): np.zeros(0, dtype=bool)
                    for key in wps[m][0]
                }
            )
    for b in copied:
        if b not in cols:
            cols[b] = np.asarray(arrays[b])
    return {k: np.ascontiguousarray(v) for k, v in cols.items()}


def _event_columns(
    run: np.ndarray,
    evt: np.ndarray,
    presel: np.ndarray,
    scores: dict[str, np.ndarray],
    raws: dict[str, np.ndarray],
    wps: dict[str, tuple[dict[str, float], bool]],
    unit: str,
) -> dict[str, np.ndarray]:
    """One row per (run, event): candidate counts, best scores and decisions (any candidate passes).

    ``wps``: per model, the cuts and whether they are on the raw output.
    """
    order, starts = group_events(run, evt)
    counts = np.diff(np.append(starts, len(order))) if len(starts) else np.zeros(0, dtype=np.int64)
    cols: dict[str, np.ndarray] = {
        "runNumber": run[order][starts] if len(starts) else np.zeros(0, dtype=np.int64),
        "eventNumber": evt[order][starts] if len(starts) else np.zeros(0, dtype=np.int64),
        "n_candidates": counts.astype(np.int32),
        "n_preselected": (
            np.add.reduceat(presel[order].astype(np.int32), starts)
            if len(starts)
            else np.zeros(0, dtype=np.int32)
        ).astype(np.int32),
    }
    for m, s in scores.items():
        best = (
            event_max(np.where(presel, s, -np.inf), order, starts) if len(starts) else np.zeros(0)
        )
        best_raw = (
            event_max(np.where(presel, raws[m], -np.inf), order, starts)
            if len(starts)
            else np.zeros(0)
        )
        cols[f"score_{m}"] = np.where(np.isfinite(best), best, np.nan)
        cols[f"raw_{m}"] = np.where(np.isfinite(best_raw), best_raw, np.nan)
        cuts, raw = wps[m]
        for key, thr in cuts.items():
            cols[wp_branch(m, key, unit)] = (best_raw if raw else best) >= thr
    return {k: np.ascontiguousarray(v) for k, v in cols.items()}
