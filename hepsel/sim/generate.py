"""Write simulated samples to ROOT files.

This is the I/O side of :mod:`hepsel.sim.simulation`: it splits a sample into
files along :data:`hepsel.sim.simulation.BLOCK` boundaries, generates each file
block by block (bounded memory) and writes the trees ``DecayTree`` (one row
per candidate), ``EventTuple`` (one row per event) and ``TrackTuple`` (one
row per track of the candidates) with uproot.

Each file is first written under a temporary name in its target directory and
moved into place only when complete, so an interrupted or failed run never
leaves a truncated file behind under the final name.

:func:`generate_sample` also records, beside each file, the ``generate``
settings and the analysis config that made it (``.<name>.hepsel-generate.json``):
another analysis naming the same file with other settings is refused rather
than overwriting it, and one with equal settings shares it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from . import simulation

__all__ = [
    "CANDIDATE_TREE",
    "EVENT_TREE",
    "TRACK_TREE",
    "check_generated",
    "file_ranges",
    "generate_files",
    "generate_sample",
    "needs_generation",
    "record_path",
]

CANDIDATE_TREE = "DecayTree"
"""Name of the candidate tree written by :func:`generate_files`."""

EVENT_TREE = "EventTuple"
"""Name of the event tree written by :func:`generate_files`."""

TRACK_TREE = "TrackTuple"
"""Name of the track tree written by :func:`generate_files` (one row per track)."""


def file_ranges(n_events: int, n_files: int) -> list[tuple[int, int]]:
    """Split ``n_events`` into ``n_files`` contiguous ranges of whole blocks.

    The ``ceil(n_events / BLOCK)`` blocks are shared out as evenly as
    possible (earlier files never hold fewer blocks than later ones); only
    the last non-empty range may end inside a block. When there are fewer
    blocks than files, the trailing files get empty ranges.

    Parameters
    ----------
    n_events : int
        Total number of events (>= 0).
    n_files : int
        Number of files (>= 1).

    Returns
    -------
    list of (int, int)
        ``(first_event, n_events)`` of each file, in order.

    Examples
    --------
    >>> from hepsel.sim.simulation import BLOCK
    >>> file_ranges(2 * BLOCK + 5, 2) == [(0, 2 * BLOCK), (2 * BLOCK, 5)]
    True
    """
    if n_files < 1:
        msg = f"need at least one output file, got {n_files}"
        raise ValueError(msg)
    if n_events < 0:
        msg = f"n_events must be >= 0, got {n_events}"
        raise ValueError(msg)
    block = simulation.BLOCK
    n_blocks = -(-n_events // block)
    base, extra = divmod(n_blocks, n_files)
    ranges = []
    start_block = 0
    for i in range(n_files):
        nb = base + (1 if i < extra else 0)
        first = start_block * block
        last = min((start_block + nb) * block, n_events)
        ranges.append((first, max(last - first, 0)))
        start_block += nb
    return ranges


def generate_files(
    kind: str,
    paths: Sequence[str | os.PathLike[str]],
    n_events: int,
    *,
    seed: int,
    pileup: float = 1.1,
    signal_modes: Mapping[str, float] | None = None,
    progress: bool = True,
    only: Sequence[int] | None = None,
    tracks: bool = True,
) -> list[Path]:
    """Generate a sample of ``n_events`` events into the ROOT files ``paths``.

    The content of the files, read in order and concatenated, depends only on
    ``(kind, n_events, seed, pileup, signal_modes)``, not on the number of
    files. See :func:`file_ranges` for how events are shared out.

    Parameters
    ----------
    kind : {"signal", "minbias"}
        Sample kind.
    paths : sequence of path-like
        Output files, one per range; parent directories are created.
    n_events : int
        Total number of events.
    seed : int
        Sample seed.
    pileup : float, optional
        Mean number of visible interactions per crossing.
    signal_modes : mapping of str to float, optional
        Signal mode fractions, see :func:`hepsel.sim.simulation.simulate_events`.
    progress : bool, optional
        Show a tqdm progress bar counting events (on a terminal only).
    only : sequence of int, optional
        Write only the files at these positions of ``paths`` (each holds the
        same events as in a run writing all files): independent jobs can
        write the files of one sample side by side.
    tracks : bool, optional
        Also write the track tree :data:`TRACK_TREE` (the other trees do
        not depend on it).

    Returns
    -------
    list of pathlib.Path
        The files written, in order.

    Raises
    ------
    ValueError
        No paths, repeated paths, or invalid generation parameters.
    """
    import uproot
    from tqdm.auto import tqdm

    out = [Path(p) for p in paths]
    if not out:
        msg = "generate_files needs at least one output path"
        raise ValueError(msg)
    if len({p.resolve() for p in out}) != len(out):
        msg = f"output paths must be distinct, got {[str(p) for p in out]}"
        raise ValueError(msg)
    ranges = file_ranges(n_events, len(out))
    which = _positions(only, len(out))
    # validate every parameter before any file is touched
    simulation.simulate_events(kind, 0, seed=seed, pileup=pileup, signal_modes=signal_modes)

    total = sum(ranges[i][1] for i in which)
    with tqdm(total=total, unit="ev", disable=None if progress else True, desc=f"{kind}") as bar:
        for i in which:
            path, (first, count) = out[i], ranges[i]
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                # ZSTD through uproot's own cramjam dependency: as small as ZLIB
                # for these columns and about ten times faster to write
                with uproot.recreate(tmp, compression=uproot.ZSTD(1)) as f:
                    cand_tree = f.mktree(CANDIDATE_TREE, dict(simulation.CANDIDATE_BRANCHES))
                    event_tree = f.mktree(EVENT_TREE, dict(simulation.EVENT_BRANCHES))
                    track_tree = (
                        f.mktree(TRACK_TREE, dict(simulation.TRACK_BRANCHES)) if tracks else None
                    )
                    for start in range(first, first + count, simulation.BLOCK):
                        n = min(simulation.BLOCK, first + count - start)
                        cands, events, track_rows = simulation.simulate_events_with_tracks(
                            kind,
                            n,
                            seed=seed,
                            first_event=start,
                            pileup=pileup,
                            signal_modes=signal_modes,
                        )
                        if len(cands["eventNumber"]):
                            cand_tree.extend(cands)
                        event_tree.extend(events)
                        if track_tree is not None and len(track_rows["eventNumber"]):
                            track_tree.extend(track_rows)
                        bar.update(n)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    return [out[i] for i in which]


def _positions(only: Sequence[int] | None, n_files: int) -> list[int]:
    """The file positions ``only`` names (all ``n_files`` by default), checked and in order."""
    if only is None:
        return list(range(n_files))
    which = sorted({int(i) for i in only})
    bad = [i for i in which if not 0 <= i < n_files]
    if bad:
        msg = f"file index {bad[0]} out of range for {n_files} file(s)"
        raise ValueError(msg)
    return which


def record_path(path: str | os.PathLike[str]) -> Path:
    """Where the generate settings of the generated file ``path`` are recorded (a hidden file beside it)."""
    p = Path(path)
    return p.with_name(f".{p.name}.hepsel-generate.json")


def _spec(gen: Any) -> dict[str, Any]:
    """A ``generate`` block (:class:`~hepsel.config.schema.GenerateConfig` or mapping) as plain JSON values."""
    from ..config.schema import GenerateConfig

    return GenerateConfig.model_validate(
        gen if isinstance(gen, Mapping) else gen.model_dump()
    ).model_dump(mode="json")


def _recorded(path: Path) -> dict[str, Any] | None:
    """The record beside an existing generated file, or ``None`` (no file, no record, or an unreadable one)."""
    from ..io.storage import read_json

    rec = record_path(path)
    if not (path.is_file() and rec.is_file()):
        return None
    try:
        data = read_json(rec)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("generate"), dict) else None


def _describe(source: str | None) -> str:
    return repr(source) if source else "a 'hepsel generate' run without an analysis config"


def check_generated(
    gen: Any,
    paths: Sequence[str | os.PathLike[str]],
    *,
    source: str | os.PathLike[str] | None,
    only: Sequence[int] | None = None,
) -> bool:
    """Compare the recorded settings of existing ``paths`` with ``gen``, before anything is (re)generated.

    Parameters
    ----------
    gen
        The ``generate`` block asking for the files.
    paths
        The files, in order (file ``i`` holds the ``i``-th range of events).
    source
        The analysis config asking for them (recorded, and named in errors).
    only
        Check only the files at these positions (default: all).

    Returns
    -------
    bool
        True when every file checked exists and was generated with exactly
        these settings (it can be shared as it is).

    Raises
    ------
    ConfigError
        If an existing file was generated with other settings for another
        analysis config: regenerating it would change that analysis's data
        under its feet. The message names the file and both configs and the
        settings that differ. The config that recorded a file may change its
        own settings (the file is then regenerated).
    """
    spec = _spec(gen)
    me = str(source) if source is not None else None
    shared = True
    for i in _positions(only, len(paths)):
        path = Path(paths[i])
        rec = _recorded(path)
        if rec is None:
            shared = False
            continue
        theirs = {**rec["generate"], "file": rec.get("file")}
        mine = {**spec, "file": i}
        if theirs == mine:
            continue
        shared = False
        if rec.get("config") == me:
            continue  # the analysis that made the file changed its own settings
        diff = ", ".join(
            f"{k}: {mine.get(k)!r} instead of {theirs.get(k)!r}"
            for k in sorted(set(mine) | set(theirs))
            if mine.get(k) != theirs.get(k)
        )
        msg = (
            f"{path} was generated for the analysis config {_describe(rec.get('config'))}, but {_describe(me)} "
            f"asks for other generate settings ({diff}); two analyses may share generated files only with equal "
            "settings: give this sample other file names or the same generate settings (or, if that analysis no "
            f"longer needs it, delete the file and {record_path(path).name})"
        )
        raise ConfigError(msg)
    return shared


def needs_generation(
    gen: Any, paths: Sequence[str | os.PathLike[str]], *, source: str | os.PathLike[str] | None
) -> bool:
    """Whether ``paths`` must be (re)generated: a file is missing, or its record shows other settings.

    Existing files without a record (made by hand or by an older hepsel) are
    kept. Conflicts with another analysis raise as in :func:`check_generated`.
    """
    check_generated(gen, paths, source=source)
    spec = _spec(gen)
    for i, raw in enumerate(paths):
        path = Path(raw)
        if not path.is_file():
            return True
        rec = _recorded(path)
        if rec is not None and {**rec["generate"], "file": rec.get("file")} != {**spec, "file": i}:
            return True
    return False


def generate_sample(
    gen: Any,
    paths: Sequence[str | os.PathLike[str]],
    *,
    source: str | os.PathLike[str] | None,
    progress: bool = True,
    only: Sequence[int] | None = None,
) -> tuple[list[Path], bool]:
    """Generate the files of a ``generate`` block and record its settings beside each file.

    Files generated earlier with exactly these settings are shared, not made
    again; a file another analysis generated with other settings is refused
    (see :func:`check_generated`) before anything is written.

    Returns
    -------
    (list of pathlib.Path, bool)
        The files (those at the positions ``only`` names, if given), and
        whether they were generated now (False: shared).
    """
    from ..io.storage import write_json

    out = [Path(p) for p in paths]
    which = _positions(only, len(out))
    if check_generated(gen, out, source=source, only=which):
        return [out[i] for i in which], False
    spec = _spec(gen)
    for i in which:  # a stale record must not vouch for a file being replaced
        record_path(out[i]).unlink(missing_ok=True)
    generate_files(
        spec["kind"],
        out,
        spec["events"],
        seed=spec["seed"],
        pileup=spec["pileup"],
        signal_modes=spec["modes"],
        progress=progress,
        only=which,
        tracks=spec["tracks"],
    )
    names = [p.name for p in out]
    for i in which:
        p = out[i]
        write_json(
            record_path(p),
            {
                "config": str(source) if source is not None else None,
                "generate": spec,
                "file": i,
                "files": names,
            },
        )
    return [out[i] for i in which], True
