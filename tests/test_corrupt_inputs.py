"""Corrupt ROOT inputs: one error line naming the file (tree, branch) and what is wrong, in prepare, apply and score.

The corrupt files are made here from small files written with uproot: bytes
garbled inside a compressed basket, a copy cut to 70 %, and bytes
overwritten in the TTree header.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from hepsel.deploy.apply import apply_file
from hepsel.exceptions import InputFileError
from hepsel.prep.ingest import prepare_file

from .conftest import write_flat_tree
from .test_apply import _selection, _write
from .test_ingest import _config


def _garble_basket(src: Path, dst: Path, tree: str, branch: str) -> None:
    """Copy ``src`` to ``dst`` with bytes inside the first (compressed) basket of ``branch`` flipped."""
    with uproot.open(src) as f:
        b = f[tree][branch]
        key = b.basket_key(0)
        seek = int(b.member("fBasketSeek")[0])
        assert key.fNbytes - key.fKeylen < key.fObjlen, (
            "the basket must be compressed for this test"
        )
        start, stop = seek + key.fKeylen + 20, seek + key.fNbytes - 4
    data = bytearray(src.read_bytes())
    data[start:stop] = bytes(x ^ 0x5A for x in data[start:stop])
    dst.write_bytes(bytes(data))


def _garble_tree_header(src: Path, dst: Path, tree: str) -> None:
    """Copy ``src`` to ``dst`` with bytes overwritten in the middle of the TTree object (its branch list)."""
    with uproot.open(src) as f:
        key = f.key(tree)
        start = key.fSeekKey + key.fKeylen + (key.fNbytes - key.fKeylen) // 2
    data = bytearray(src.read_bytes())
    data[start : start + 16] = b"\xff" * 16
    dst.write_bytes(bytes(data))


def _truncate(src: Path, dst: Path, fraction: float = 0.7) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


def _one_error_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hepsel: error: "), stderr
    return lines[0]


def _hepsel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hepsel.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def _spoiled_copies(good: Path) -> dict[str, Path]:
    """``good`` and three spoiled copies beside it: a garbled basket, cut short, a garbled tree header."""
    files = {"good": good}
    files["garbled"] = good.with_name("garbled.root")
    _garble_basket(good, files["garbled"], "DecayTree", "runNumber")
    files["truncated"] = good.with_name("truncated.root")
    _truncate(good, files["truncated"])
    files["header"] = good.with_name("header.root")
    _garble_tree_header(good, files["header"], "DecayTree")
    return files


# -- the apply/score inputs (x, y as in test_apply) ----------------------------------------


@pytest.fixture
def apply_inputs(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.root"
    _write(good, n_events=3000)  # runNumber is constant: its basket compresses
    return _spoiled_copies(good)


_EXPECTED = {
    "garbled": r"garbled\.root: tree 'DecayTree', branch 'runNumber' \(entries 0 to [\d,]+\) cannot be read \(zlib\.error",
    "truncated": r"truncated\.root' is truncated: it has [\d,]+ bytes but its header says [\d,]+",
    "header": r"header\.root: tree 'DecayTree' cannot be read \(",
}


@pytest.mark.parametrize("kind", sorted(_EXPECTED))
def test_apply_and_score_name_the_corrupt_file(
    tmp_path: Path, apply_inputs: dict[str, Path], kind: str
) -> None:
    sel = _selection()
    bad = apply_inputs[kind]
    before = bad.read_bytes()
    out = tmp_path / "out" / "x_hepsel.root"
    with pytest.raises(InputFileError, match=_EXPECTED[kind]) as err:
        apply_file(sel, bad, out, step_size=1000, progress=False)
    assert "\n" not in str(err.value) and "did you mean" not in str(err.value)
    assert not out.parent.exists() or not list(out.parent.iterdir())  # nothing half-written
    with pytest.raises(InputFileError, match=_EXPECTED[kind]):
        sel.score(bad)
    assert bad.read_bytes() == before  # the input is never touched


@pytest.mark.parametrize("kind", sorted(_EXPECTED))
def test_cli_apply_and_score_print_one_line(
    tmp_path: Path, apply_inputs: dict[str, Path], kind: str
) -> None:
    _selection().save(tmp_path / "sel")
    bad = str(apply_inputs[kind])
    proc = _hepsel(
        "apply",
        "-s",
        str(tmp_path / "sel"),
        bad,
        "-o",
        str(tmp_path / "out"),
        "--no-progress",
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert bad in _one_error_line(proc.stderr)
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True
    proc = _hepsel("score", str(tmp_path / "sel"), bad, cwd=tmp_path)
    assert proc.returncode == 1
    assert bad in _one_error_line(proc.stderr)


def test_good_file_still_applies(tmp_path: Path, apply_inputs: dict[str, Path]) -> None:
    """The corruption, not the reading path, makes the files above fail."""
    info = apply_file(
        _selection(), apply_inputs["good"], tmp_path / "o.root", step_size=1000, progress=False
    )
    assert info["entries"] == uproot.open(apply_inputs["good"])["DecayTree"].num_entries


# -- prepare --------------------------------------------------------------------------------


@pytest.fixture
def flat_inputs(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.root"
    write_flat_tree(good, n_events=3000)
    return _spoiled_copies(good)


@pytest.mark.parametrize("kind", sorted(_EXPECTED))
def test_prepare_names_the_corrupt_file(
    tmp_path: Path, flat_inputs: dict[str, Path], kind: str
) -> None:
    bad = flat_inputs[kind]
    cfg = _config(tmp_path, bad, reading={"step_size": 1000})
    out = tmp_path / "o.parquet"
    with pytest.raises(InputFileError, match=_EXPECTED[kind]) as err:
        prepare_file(cfg, "sig", bad, out, progress=False)
    assert "\n" not in str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".o.parquet*"))


@pytest.mark.parametrize("kind", sorted(_EXPECTED))
def test_cli_prepare_prints_one_line(
    tmp_path: Path, flat_inputs: dict[str, Path], kind: str
) -> None:
    bad = flat_inputs[kind]
    _config(tmp_path, bad)  # writes tmp_path/ana/config.yaml
    proc = _hepsel(
        "prepare", "-c", str(tmp_path / "ana"), "--sample", "sig", "--no-progress", cwd=tmp_path
    )
    assert proc.returncode == 1
    assert str(bad) in _one_error_line(proc.stderr)


def test_corrupt_basket_after_good_chunks_names_its_entries(tmp_path: Path) -> None:
    """A basket spoilt late in the file: the chunks before it are read, the error names the failing entries."""
    good = tmp_path / "good.root"
    n = 40_000
    with uproot.recreate(good) as f:
        f.mktree("DecayTree", {"x": np.float64, "y": np.float64, "runNumber": np.int32})
        for i in range(4):  # four baskets per branch
            f["DecayTree"].extend(
                {
                    "x": np.full(n // 4, 1.0 + i),
                    "y": np.zeros(n // 4),
                    "runNumber": np.full(n // 4, 5, np.int32),
                }
            )
    with uproot.open(good) as f:
        b = f["DecayTree"]["y"]
        key = b.basket_key(2)
        seek = int(b.member("fBasketSeek")[2])
        lo, hi = (int(e) for e in b.basket_entry_start_stop(2))
    data = bytearray(good.read_bytes())
    start = seek + key.fKeylen + 10
    data[start : start + 40] = bytes(x ^ 0x5A for x in data[start : start + 40])
    bad = tmp_path / "late.root"
    bad.write_bytes(bytes(data))
    with pytest.raises(
        InputFileError, match=rf"late\.root: tree 'DecayTree', branch 'y' \(entries {lo:,} to "
    ) as err:
        apply_file(_selection(), bad, tmp_path / "o.root", step_size=hi - lo, progress=False)
    assert "zlib.error" in str(err.value)


@pytest.mark.parametrize("fraction", [0.01, 0.3, 0.7, 0.95, 0.999])
def test_truncated_anywhere_is_named_from_the_header(tmp_path: Path, fraction: float) -> None:
    """Cut before the directory (uproot cannot even open it) or inside a basket: the same one-line error."""
    good = tmp_path / "good.root"
    write_flat_tree(good, n_events=3000)
    bad = tmp_path / "cut.root"
    _truncate(good, bad, fraction)
    size = bad.stat().st_size
    with pytest.raises(
        InputFileError,
        match=rf"cut\.root' is truncated: it has {size:,} bytes but its header says {good.stat().st_size:,}",
    ):
        _selection().score(bad, tree="DecayTree")
