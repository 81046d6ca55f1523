"""Reading parts of a large data set: columns and rows, with bounded memory."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from hepsel.exceptions import InputFileError
from hepsel.storage import ParquetAppender, read_table


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
