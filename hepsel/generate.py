"""Write simulated samples to ROOT files.

This is the I/O side of :mod:`hepsel.simulation`: it splits a sample into
files along :data:`hepsel.simulation.BLOCK` boundaries, generates each file
block by block (bounded memory) and writes the trees ``DecayTree`` (one row
per candidate) and ``EventTuple`` (one row per event) with uproot.

Each file is first written under a temporary name in its target directory and
moved into place only when complete, so an interrupted or failed run never
leaves a truncated file behind under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from hepsel import simulation

__all__ = ["CANDIDATE_TREE", "EVENT_TREE", "file_ranges", "generate_files"]

CANDIDATE_TREE = "DecayTree"
"""Name of the candidate tree written by :func:`generate_files`."""

EVENT_TREE = "EventTuple"
"""Name of the event tree written by :func:`generate_files`."""


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
    >>> from hepsel.simulation import BLOCK
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
        Signal mode fractions, see :func:`hepsel.simulation.simulate_events`.
    progress : bool, optional
        Show a tqdm progress bar counting events (on a terminal only).

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
    # validate every parameter before any file is touched
    simulation.simulate_events(kind, 0, seed=seed, pileup=pileup, signal_modes=signal_modes)

    with tqdm(total=n_events, unit="ev", disable=None if progress else True, desc=f"{kind}") as bar:
        for path, (first, count) in zip(out, ranges, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                # ZSTD through uproot's own cramjam dependency: as small as ZLIB
                # for these columns and about ten times faster to write
                with uproot.recreate(tmp, compression=uproot.ZSTD(1)) as f:
                    cand_tree = f.mktree(CANDIDATE_TREE, dict(simulation.CANDIDATE_BRANCHES))
                    event_tree = f.mktree(EVENT_TREE, dict(simulation.EVENT_BRANCHES))
                    for start in range(first, first + count, simulation.BLOCK):
                        n = min(simulation.BLOCK, first + count - start)
                        cands, events = simulation.simulate_events(
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
                        bar.update(n)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    return out
