"""Independent tasks side by side: results in task order, failures raised, one task in-process."""

from __future__ import annotations

import os
import time

import pytest

from hepsel.exceptions import HepselError
from hepsel.workflow.processes import map_in_processes


def _slow_square(x: int, delay: float) -> tuple[int, int]:
    time.sleep(delay)
    return x * x, os.getpid()


def _fails_on_two(x: int) -> int:
    if x == 2:
        msg = f"task {x} failed"
        raise HepselError(msg)
    return x


def test_results_come_back_in_task_order_from_worker_processes() -> None:
    # the first task finishes last: the order is the tasks', not the finishing order
    tasks = [(3, 0.6), (1, 0.0), (2, 0.0), (4, 0.0)]
    out = map_in_processes(_slow_square, tasks, jobs=2)
    assert [v for v, _ in out] == [9, 1, 4, 16]
    pids = {pid for _, pid in out}
    assert os.getpid() not in pids
    assert len(pids) <= 2  # no more workers than jobs


def test_the_first_failing_task_raises_its_exception() -> None:
    with pytest.raises(HepselError, match="task 2 failed"):
        map_in_processes(_fails_on_two, [(1,), (2,), (3,)], jobs=2)


@pytest.mark.parametrize(("jobs", "tasks"), [(1, [(1,), (2,)]), (4, [(5,)]), (0, [(1,), (2,)])])
def test_one_job_or_one_task_runs_in_this_process(jobs: int, tasks: list[tuple[int]]) -> None:
    calls: list[int] = []

    def record(x: int) -> int:  # a closure: it could not be sent to a spawned worker
        calls.append(x)
        return os.getpid()

    assert map_in_processes(record, tasks, jobs) == [os.getpid()] * len(tasks)
    assert calls == [t[0] for t in tasks]


def test_no_tasks_give_no_results() -> None:
    assert map_in_processes(_fails_on_two, [], jobs=2) == []
