"""Reading parts of a large data set: columns and rows, with bounded memory."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from hepsel.exceptions import InputFileError
from hepsel.io.storage import ParquetAppender, read_table


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "t.parquet"
    cols = {"fold": np.arange(1000) % 5, "x": rng.normal(size=1000), "y": rng.integers(0, 2, 1000)}
    with ParquetAppender(path) as out:  # three row groups
        for sl in (slice(0, 300), slice(300, 700), slice(700, 1000)):
            out.append({k: v[sl] for k, v in cols.items()})
    return path, cols


def test_read_table_columns_and_rows(table):
    path, cols = table
    got = read_table(path, ["y", "x"], rows=pc.field("fold") != 2)
    assert list(got) == ["y", "x"]
    keep = cols["fold"] != 2
    np.testing.assert_array_equal(got["x"], cols["x"][keep])
    np.testing.assert_array_equal(got["y"], cols["y"][keep])
    everything = read_table(path)
    assert list(everything) == ["fold", "x", "y"]
    np.testing.assert_array_equal(everything["x"], cols["x"])


def test_read_table_names_a_missing_column(table):
    path, _ = table
    with pytest.raises(InputFileError, match=r"t\.parquet: no column\(s\) \['nope'\]"):
        read_table(path, ["x", "nope"])


def _tiny(tmp_path, files=3, mb_events=25_000):
    from hepsel import workflow
    from hepsel.config.loading import load_config

    from .conftest import tiny_config, write_config

    cfg_dict = tiny_config(
        str(tmp_path / "data"),
        files=files,
        sig_events=3000,
        mb_events=mb_events,
        output=str(tmp_path / "out"),
    )
    cfg = load_config(write_config(tmp_path / "analysis", cfg_dict))
    for s in cfg.samples:
        workflow.generate(cfg, s, progress=False)
        for i in range(files):
            workflow.prepare(cfg, s, i, progress=False)
    return cfg


def test_gather_streams_one_row_group_per_prepared_file(tmp_path):
    import pyarrow.parquet as pq

    from hepsel import workflow
    from hepsel.workflow.layout import Layout

    cfg = _tiny(tmp_path)
    info = workflow.gather(cfg)
    lay = Layout.of(cfg)
    pf = pq.ParquetFile(lay.dataset)
    prepared = [lay.prepared(s, i) for s in sorted(cfg.samples) for i in range(3)]
    tables = [read_table(p) for p in prepared]
    assert pf.metadata.num_row_groups == len(prepared)
    assert [pf.metadata.row_group(i).num_rows for i in range(len(prepared))] == [
        len(t["label"]) for t in tables
    ]
    got = read_table(lay.dataset)
    assert list(got) == [*tables[0], "weight"]
    for name in tables[0]:
        np.testing.assert_array_equal(got[name], np.concatenate([t[name] for t in tables]))
    factor = np.concatenate(
        [
            np.full(len(t["label"]), info[s]["normalisation"])
            for s, t in zip([s for s in sorted(cfg.samples) for _ in range(3)], tables, strict=True)
        ]
    )
    np.testing.assert_array_equal(got["weight"], got["weight_raw"] * factor)


def test_gather_keeps_values_when_files_store_a_column_with_other_types(tmp_path):
    from hepsel import workflow
    from hepsel.io.storage import write_table
    from hepsel.workflow.layout import Layout

    cfg = _tiny(tmp_path, files=1, mb_events=6000)
    lay = Layout.of(cfg)
    # the first file gathered stores nPVs as int32, the next one as float64 with fractional
    # values: the data set must hold both without truncating
    first, second = lay.prepared("minbias", 0), lay.prepared("signal", 0)
    t = read_table(first)
    t["nPVs"] = t["nPVs"].astype(np.int32)
    write_table(first, t)
    t = read_table(second)
    t["nPVs"] = t["nPVs"].astype(np.float64) + 0.5
    write_table(second, t)
    workflow.gather(cfg)
    got = read_table(lay.dataset, ["sample", "nPVs"])
    assert got["nPVs"].dtype == np.float64
    assert np.all(got["nPVs"][got["sample"] == 1] % 1 == 0.5)
    assert np.all(got["nPVs"][got["sample"] == 0] % 1 == 0)


def test_prepare_job_imports_no_estimator(tmp_path):
    """One prepare job per input file: at 100x that is 200 jobs, each paying its imports."""
    import subprocess
    import sys

    from hepsel import workflow
    from hepsel.config.loading import load_config

    from .conftest import tiny_config, write_config

    cfg_dict = tiny_config(
        str(tmp_path / "data"),
        sig_events=300,
        mb_events=600,
        output=str(tmp_path / "out"),
        models={"fisher": {"type": "fisher"}, "bdt": {"type": "bdt"}},
    )
    config = write_config(tmp_path / "analysis", cfg_dict)
    workflow.generate(load_config(config), "signal", progress=False)
    code = (
        "import sys; from hepsel.cli import main; "
        f"rc = main(['prepare', '--config', {str(config)!r}, '--sample', 'signal', '--index', '0', '--no-progress']); "
        "print(sorted(m for m in ('sklearn', 'xgboost', 'torch') if m in sys.modules)); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
