from __future__ import annotations

from pathlib import Path

import pytest

from hepsel.report.benchmarks import benchmarks_html, read_benchmarks

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _write(path: Path, seconds: float, rss: str, cpu: str = "1.00") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        HEADER
        + f"{seconds}\t0:00:0{int(seconds)}\t{rss}\t1782.64\t230.14\t258.50\t0.00\t0.68\t67.25\t{cpu}\n"
    )


def test_read_benchmarks_groups_jobs_by_rule(tmp_path: Path) -> None:
    _write(tmp_path / "gather.tsv", 2.97, "295.73", "2.49")
    _write(tmp_path / "train" / "bdt_fold0.tsv", 5.0, "266.10")
    _write(tmp_path / "train" / "bdt_fold1.tsv", 4.0, "300.00")
    _write(tmp_path / "prepare" / "signal_000.tsv", 1.5, "-", "-")  # a job too short to be measured
    rows = read_benchmarks(tmp_path)
    assert [r["rule"] for r in rows] == ["gather", "prepare", "train"]
    gather, prepare, train = rows
    assert gather == {
        "rule": "gather",
        "jobs": 1,
        "seconds": 2.97,
        "max_seconds": 2.97,
        "cpu_seconds": 2.49,
        "max_rss_mb": 295.73,
    }
    assert train["jobs"] == 2
    assert train["seconds"] == pytest.approx(9.0)
    assert train["max_seconds"] == 5.0
    assert train["cpu_seconds"] == pytest.approx(2.0)
    assert train["max_rss_mb"] == 300.0
    assert prepare["max_rss_mb"] is None and prepare["cpu_seconds"] is None


def test_missing_directory_gives_no_rows(tmp_path: Path) -> None:
    assert read_benchmarks(tmp_path / "nothing") == []
    assert benchmarks_html([]) == ""


def test_benchmarks_html(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "a.tsv", 5.0, "266.1")
    _write(tmp_path / "prepare" / "b.tsv", 1.5, "-", "-")
    text = benchmarks_html(read_benchmarks(tmp_path))
    assert text.startswith('<table class="benchmarks">') and text.endswith("</table>")
    assert "<td>train</td><td>1</td><td>5.0</td><td>5.0</td><td>1.0</td><td>266</td>" in text
    assert (
        "<td>prepare</td><td>1</td><td>1.5</td><td>1.5</td><td>&ndash;</td><td>&ndash;</td>" in text
    )
    assert "<th>total</th><td>2</td><td>6.5</td>" in text
