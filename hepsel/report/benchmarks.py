"""Per-rule time and memory of a workflow run, from Snakemake's ``benchmark:`` files.

Every rule of the Snakefile writes one tab-separated benchmark file per job
under ``<output>/benchmarks/``: ``<rule>.tsv`` for a rule with one job, or
``<rule>/<wildcards>.tsv``. The first line is a header (``s``, ``h:m:s``,
``max_rss`` in MB, ``max_vms``, ..., ``cpu_time``), the next one the
measurement.
"""

from __future__ import annotations

import csv
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["benchmarks_html", "read_benchmarks"]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "-", "NA") else None
    except ValueError:
        return None


def read_benchmarks(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One row per rule: job count, wall time and peak memory summed or maximised over its jobs.

    Parameters
    ----------
    directory : path
        The ``benchmarks`` directory of an analysis output; a missing
        directory gives an empty list.

    Returns
    -------
    list of dict
        Sorted by rule name; keys ``rule``, ``jobs``, ``seconds`` (wall time
        summed over jobs, s), ``max_seconds`` (the longest job, s),
        ``cpu_seconds`` (summed, s; None if not measured) and ``max_rss_mb``
        (largest resident memory of any job, MB; None if not measured).
    """
    root = Path(directory)
    if not root.is_dir():
        return []
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root)
        rule = rel.parts[0] if len(rel.parts) > 1 else path.stem
        with path.open(newline="") as f:
            records = list(csv.DictReader(f, delimiter="\t"))
        for rec in records:
            row = rows.setdefault(
                rule,
                {
                    "rule": rule,
                    "jobs": 0,
                    "seconds": 0.0,
                    "max_seconds": 0.0,
                    "cpu_seconds": None,
                    "max_rss_mb": None,
                },
            )
            row["jobs"] += 1
            s = _number(rec.get("s")) or 0.0
            row["seconds"] += s
            row["max_seconds"] = max(row["max_seconds"], s)
            cpu = _number(rec.get("cpu_time"))
            if cpu is not None:
                row["cpu_seconds"] = (row["cpu_seconds"] or 0.0) + cpu
            rss = _number(rec.get("max_rss"))
            if rss is not None:
                row["max_rss_mb"] = max(row["max_rss_mb"] or 0.0, rss)
    return [rows[k] for k in sorted(rows)]


def _fmt(value: float | None, spec: str) -> str:
    return "&ndash;" if value is None else format(value, spec)


def benchmarks_html(rows: Sequence[dict[str, Any]]) -> str:
    """An HTML table of :func:`read_benchmarks` rows (empty string for no rows).

    Examples
    --------
    >>> print(benchmarks_html([{"rule": "train", "jobs": 3, "seconds": 12.0, "max_seconds": 4.5,
    ...                         "cpu_seconds": 11.0, "max_rss_mb": 512.3}]).splitlines()[2])
    <tr><td>train</td><td>3</td><td>12.0</td><td>4.5</td><td>11.0</td><td>512</td></tr>
    """
    if not rows:
        return ""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("rule", "jobs", "time [s]", "longest job [s]", "CPU time [s]", "max RSS [MB]")
    )
    body = [
        f"<tr><td>{html.escape(str(r['rule']))}</td><td>{r['jobs']}</td><td>{r['seconds']:.1f}</td>"
        f"<td>{r['max_seconds']:.1f}</td><td>{_fmt(r['cpu_seconds'], '.1f')}</td><td>{_fmt(r['max_rss_mb'], '.0f')}</td></tr>"
        for r in rows
    ]
    total = sum(r["seconds"] for r in rows)
    return "\n".join(
        [
            '<table class="benchmarks">',
            f"<tr>{head}</tr>",
            *body,
            f"<tr><th>total</th><td>{sum(r['jobs'] for r in rows)}</td><td>{total:.1f}</td><td></td><td></td><td></td></tr>",
            "</table>",
        ]
    )
