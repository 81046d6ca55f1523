"""Input branch types: recorded in training, checked when a saved selection reads a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from hepsel.deploy.apply import apply_file
from hepsel.deploy.selection import Selection, UntypedSelection
from hepsel.exceptions import BranchTypeError
from hepsel.io.reading import branch_types, open_tree, type_change
from hepsel.prep.ingest import prepare_file, training_branch_types

from .conftest import write_flat_tree
from .test_apply import _selection, _write
from .test_ingest import _config


@pytest.mark.parametrize(
    ("trained", "seen", "ok"),
    [
        ("float32", "float32", True),
        ("float32", "float64", True),  # widening
        ("float64", "float32", False),  # narrowing
        ("int32", "float64", True),  # any int -> float
        ("int64", "float32", True),
        ("uint8", "float32", True),
        ("int16", "int32", True),  # narrower int -> wider int
        ("uint16", "int32", True),
        ("int32", "int16", False),
        ("int32", "uint32", False),  # negative values lost
        ("float32", "int32", False),  # float -> int
        ("float64", "int64", False),
        ("float32", "bool", False),  # bool where a number was trained
        ("int32", "bool", False),
        ("bool", "int32", False),  # and the reverse
        ("bool", "float64", False),
        ("bool", "bool", True),
        ("var * float32", "var * float64", True),
        ("var * float64", "var * float32", False),
        ("var * float32", "float32", False),  # jagged vs flat
        ("float32", "3 * float32", False),
    ],
)
def test_type_change_rules(trained: str, seen: str, ok: bool) -> None:
    assert (type_change(trained, seen) is None) is ok


def test_type_change_reason_names_bool() -> None:
    assert "bool where a number was trained" in str(type_change("float32", "bool"))
    assert "a number where a bool was trained" in str(type_change("bool", "float32"))


def _write_typed(path: Path, cols: dict[str, np.ndarray], **types: type) -> None:
    """Rewrite ``cols`` to ``path`` with some branches stored in another type."""
    data = {k: (v.astype(types[k]) if k in types else v) for k, v in cols.items()}
    with uproot.recreate(path) as f:
        f.mktree("DecayTree", {k: v.dtype for k, v in data.items()})
        f["DecayTree"].extend(data)


def _typed_selection(tmp_path: Path) -> tuple[Selection, dict[str, np.ndarray]]:
    """A selection trained (as far as its record goes) on float64 x and float32 y."""
    cols = _write(tmp_path / "train.root")
    _write_typed(tmp_path / "train.root", cols, y=np.float32)
    sel = _selection()
    sel.branch_types = {
        b: [t]
        for b, t in branch_types(
            open_tree(tmp_path / "train.root", "DecayTree"), sel.branches
        ).items()
    }
    assert sel.branch_types == {"x": ["float64"], "y": ["float32"]}
    return sel, cols


@pytest.mark.parametrize(
    ("branch", "dtype", "trained"),
    [
        ("y", np.bool_, "float32"),
        ("x", np.float32, "float64"),
        ("x", np.int64, "float64"),
        ("y", np.int16, "float32"),
    ],
)
def test_score_and_apply_refuse_a_type_that_changes_values(
    tmp_path: Path, branch: str, dtype: type, trained: str
) -> None:
    sel, cols = _typed_selection(tmp_path)
    bad = tmp_path / "bad.root"
    _write_typed(bad, cols, **{branch: dtype})
    seen = np.dtype(dtype).name
    pattern = rf"bad\.root:DecayTree: branch '{branch}' is {seen} but the selection was trained on {trained}"
    with pytest.raises(BranchTypeError, match=pattern) as err:
        sel.score(bad)
    assert "\n" not in str(err.value)
    out = tmp_path / "out" / "bad_hepsel.root"
    with pytest.raises(BranchTypeError, match=pattern):
        apply_file(sel, bad, out, progress=False)
    assert not out.exists()


def test_safe_widenings_pass_with_the_same_scores(tmp_path: Path) -> None:
    sel, cols = _typed_selection(tmp_path)
    wide = tmp_path / "wide.root"
    _write_typed(
        wide, dict(cols, y=cols["y"].astype(np.float32)), y=np.float64
    )  # float32 -> float64, same values
    np.testing.assert_array_equal(sel.score(wide), sel.score(tmp_path / "train.root"))
    # trained on integers: the same numbers as floats pass (any int -> float)
    ints, floats = tmp_path / "ints.root", tmp_path / "floats.root"
    rounded = dict(cols, x=np.round(cols["x"] * 10), y=np.round(cols["y"] * 10))
    _write_typed(ints, rounded, x=np.int32, y=np.int16)
    _write_typed(floats, rounded, y=np.float32)
    sel.branch_types = {"x": ["int32"], "y": ["int16"]}
    np.testing.assert_array_equal(sel.score(floats), sel.score(ints))
    _write_typed(ints, rounded, x=np.int64, y=np.int32)  # narrower int -> wider int
    np.testing.assert_array_equal(sel.score(floats), sel.score(ints))


def test_several_bad_branches_are_named_in_one_line(tmp_path: Path) -> None:
    sel, cols = _typed_selection(tmp_path)
    bad = tmp_path / "bad.root"
    _write_typed(bad, cols, x=np.float32, y=np.bool_)
    with pytest.raises(
        BranchTypeError, match=r"branch 'x' is float32 .* float64 .*; branch 'y' is bool .* float32"
    ):
        sel.score(bad)


def test_types_survive_save_and_load_and_are_checked(tmp_path: Path) -> None:
    sel, cols = _typed_selection(tmp_path)
    sel.save(tmp_path / "sel")
    meta = json.loads((tmp_path / "sel" / "selection.json").read_text())
    assert meta["branch_types"] == {"x": "float64", "y": "float32"}
    loaded = Selection.load(tmp_path / "sel")
    _write_typed(tmp_path / "bad.root", cols, y=np.bool_)
    with pytest.raises(BranchTypeError, match="branch 'y' is bool"):
        loaded.score(tmp_path / "bad.root")
    # several types seen in training: any of them (or a widening of one) passes
    meta["branch_types"]["y"] = ["bool", "float32"]
    (tmp_path / "sel" / "selection.json").write_text(json.dumps(meta))
    assert np.isfinite(Selection.load(tmp_path / "sel").score(tmp_path / "bad.root")).any()


def test_cli_prints_one_line(tmp_path: Path) -> None:
    sel, cols = _typed_selection(tmp_path)
    sel.save(tmp_path / "sel")
    _write_typed(tmp_path / "bad.root", cols, y=np.bool_)
    for args in (
        [
            "apply",
            "-s",
            str(tmp_path / "sel"),
            str(tmp_path / "bad.root"),
            "-o",
            str(tmp_path / "out"),
            "--no-progress",
        ],
        ["score", str(tmp_path / "sel"), str(tmp_path / "bad.root")],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "hepsel.cli", *args], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hepsel: error: "), proc.stderr
        assert "bad.root" in lines[0] and "'y' is bool" in lines[0] and "float32" in lines[0]
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_old_selection_without_record_loads_with_one_warning(tmp_path: Path) -> None:
    sel, cols = _typed_selection(tmp_path)
    sel.save(tmp_path / "sel")
    f = tmp_path / "sel" / "selection.json"
    meta = json.loads(f.read_text())
    del meta["branch_types"]
    f.write_text(json.dumps(meta))
    with pytest.warns(UntypedSelection, match="not checked") as record:
        loaded = Selection.load(tmp_path / "sel")
    assert len(record) == 1
    _write_typed(tmp_path / "bad.root", cols, y=np.bool_)
    assert loaded.score(tmp_path / "bad.root").shape == (len(cols["x"]),)  # not checked


def test_prepare_records_types_and_training_merges_them(tmp_path: Path) -> None:
    a, b = tmp_path / "a.root", tmp_path / "b.root"
    cols = write_flat_tree(a)
    with uproot.recreate(b) as f:  # the same, H1_PT as float64
        data = dict(cols, H1_PT=cols["H1_PT"].astype(np.float64))
        f.mktree("DecayTree", {k: v.dtype for k, v in data.items()})
        f["DecayTree"].extend(data)
        f.mktree("EventTuple", {"runNumber": np.int32, "eventWeight": np.float32})
        f["EventTuple"].extend(
            {"runNumber": np.full(3, 7, np.int32), "eventWeight": np.ones(3, np.float32)}
        )
    cfg = _config(tmp_path, a)
    meta_a = prepare_file(cfg, "sig", a, tmp_path / "a.parquet", progress=False)
    meta_b = prepare_file(cfg, "bkg", b, tmp_path / "b.parquet", progress=False)
    assert (
        meta_a["branch_types"]["H1_PT"] == "float32"
        and meta_a["branch_types"]["eventWeight"] == "float32"
    )
    assert meta_b["branch_types"]["H1_PT"] == "float64"
    merged = training_branch_types([tmp_path / "a.json", tmp_path / "b.json"])
    assert merged is not None
    assert merged["H1_PT"] == ["float32", "float64"] and merged["B_IPCHI2_OWNPV"] == ["float32"]
    # metadata from an older prepare (no record): nothing is recorded rather than part of it
    old = json.loads((tmp_path / "b.json").read_text())
    del old["branch_types"]
    (tmp_path / "b.json").write_text(json.dumps(old))
    assert training_branch_types([tmp_path / "a.json", tmp_path / "b.json"]) is None
