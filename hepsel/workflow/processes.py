"""Independent tasks of one step run side by side in worker processes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["map_in_processes"]

T = TypeVar("T")


def map_in_processes(
    function: Callable[..., T], tasks: Sequence[tuple[Any, ...]], jobs: int
) -> list[T]:
    """``[function(*task) for task in tasks]``, with up to ``jobs`` tasks at a time.

    The workers are spawned (not forked, so that no thread or open file of the
    caller is copied) and each imports the libraries once for the tasks it
    runs. ``jobs <= 1`` or a single task runs in this process, in turn. The
    results come back in the order of ``tasks``; the first task that fails
    raises its exception here.
    """
    if jobs <= 1 or len(tasks) <= 1:
        return [function(*task) for task in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        futures = [pool.submit(function, *task) for task in tasks]
        return [f.result() for f in futures]
