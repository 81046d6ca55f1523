"""Applying a saved selection: friend trees per entry and per event, the API's inputs and working points."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import uproot

from hepsel.apply import EVENTS_TREE, FRIEND_TREE, apply_file
from hepsel.exceptions import BranchNotFoundError, ConfigError, TreeNotFoundError
from hepsel.features import Feature, FeatureSet
from hepsel.selection import InterpolatedWorkingPoint, Selection

from .test_selection import _expected_scores, _fold_models


def _selection(rate_curves: dict | None = None) -> Selection:
    features = FeatureSet([Feature("log_x", expr="x", transform="log"), Feature("y", expr="y")])
    return Selection(
        preselection=[("x positive", "x > 0")],
        features=features,
        models={"fisher": {"kind": "fisher", "folds": _fold_models()}},
        working_points={"fisher": {"100": 0.5, "0.5": 0.9}},
        rate_curves=rate_curves,
    )


def _write(path: Path, n_events: int = 300, seed: int = 0, *, event_branch: bool = True, tree: str = "DecayTree") -> dict:
    """1-3 candidates per event; x = 0 on some (log(0) if scored)."""
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 4, n_events)
    n = int(per.sum())
    cols = {
        "runNumber": np.full(n, 5, dtype=np.int32),
        "x": np.where(rng.random(n) < 0.2, 0.0, rng.exponential(1.0, n)),
        "y": rng.normal(size=n),
        "extra": rng.integers(0, 9, n).astype(np.int16),
    }
    if event_branch:
        cols["eventNumber"] = np.repeat(np.arange(n_events, dtype=np.int64) + 100, per)
    with uproot.recreate(path) as f:
        f.mktree(tree, {k: v.dtype for k, v in cols.items()})
        if n:
            f[tree].extend(cols)
    return cols


def test_friend_tree_aligned_and_scores_match_by_hand(tmp_path: Path) -> None:
    sel = _selection()
    cols = _write(tmp_path / "in.root")
    info = apply_file(sel, tmp_path / "in.root", tmp_path / "out.root", step_size=100, progress=False)
    with uproot.open(tmp_path / "in.root") as fin, uproot.open(tmp_path / "out.root") as fout:
        assert fout[FRIEND_TREE].num_entries == fin["DecayTree"].num_entries == len(cols["x"])
        fr = fout[FRIEND_TREE].arrays(library="np")
        ev = fout[EVENTS_TREE].arrays(library="np")
    np.testing.assert_array_equal(fr["eventNumber"], cols["eventNumber"])
    np.testing.assert_array_equal(fr["presel"], cols["x"] > 0)
    expected = _expected_scores(sel, cols)
    np.testing.assert_allclose(fr["score_fisher"], expected, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(fr["pass_fisher_100kHz"], (cols["x"] > 0) & (np.nan_to_num(expected, nan=-1) >= 0.5))
    assert "pass_fisher_0p5kHz" in fr
    # event level by hand: any candidate passes
    assert info["events"] == len(ev["eventNumber"]) == 300
    for e in (100, 150, 399):
        m = cols["eventNumber"] == e
        k = int(np.flatnonzero(ev["eventNumber"] == e)[0])
        assert ev["n_candidates"][k] == m.sum()
        assert ev["pass_fisher_100kHz"][k] == bool(fr["pass_fisher_100kHz"][m].any())


def test_friend_reads_side_by_side_with_uproot(tmp_path: Path) -> None:
    """ROOT-style friending: iterate input and output together, entries aligned chunk by chunk."""
    sel = _selection()
    _write(tmp_path / "in.root")
    apply_file(sel, tmp_path / "in.root", tmp_path / "out.root", progress=False)
    with uproot.open(tmp_path / "in.root") as fin, uproot.open(tmp_path / "out.root") as fout:
        it_in = fin["DecayTree"].iterate(["eventNumber", "x"], step_size=97, library="np")
        it_out = fout[FRIEND_TREE].iterate(["eventNumber", "presel"], step_size=97, library="np")
        for a, b in zip(it_in, it_out, strict=True):
            np.testing.assert_array_equal(a["eventNumber"], b["eventNumber"])
            np.testing.assert_array_equal(a["x"] > 0, b["presel"])


def test_copy_branches(tmp_path: Path) -> None:
    cols = _write(tmp_path / "in.root")
    apply_file(_selection(), tmp_path / "in.root", tmp_path / "out.root", copy_branches=True, progress=False)
    with uproot.open(tmp_path / "out.root") as f:
        fr = f[FRIEND_TREE].arrays(library="np")
    np.testing.assert_array_equal(fr["extra"], cols["extra"])
    np.testing.assert_array_equal(fr["y"], cols["y"])


def test_no_event_number_branch_falls_back_to_entries_and_fold_average(tmp_path: Path) -> None:
    sel = _selection()
    cols = _write(tmp_path / "in.root", event_branch=False)
    info = apply_file(sel, tmp_path / "in.root", tmp_path / "out.root", progress=False)
    assert "entry index" in info["event_numbers"]
    with uproot.open(tmp_path / "out.root") as f:
        fr = f[FRIEND_TREE].arrays(library="np")
    np.testing.assert_array_equal(fr["eventNumber"], np.arange(len(cols["x"])))
    keep = cols["x"] > 0
    X = np.column_stack([np.log(cols["x"][keep]), cols["y"][keep]])
    mean = np.mean([c.predict_proba(X)[:, 1] for c in sel.models["fisher"]["folds"]], axis=0)
    np.testing.assert_allclose(fr["score_fisher"][keep], mean, rtol=1e-12)


def test_empty_file_gives_empty_trees(tmp_path: Path) -> None:
    _write(tmp_path / "in.root", n_events=0)
    info = apply_file(_selection(), tmp_path / "in.root", tmp_path / "out.root", progress=False)
    assert info["entries"] == 0
    with uproot.open(tmp_path / "out.root") as f:
        assert f[FRIEND_TREE].num_entries == 0 and f[EVENTS_TREE].num_entries == 0
        assert "score_fisher" in f[FRIEND_TREE].keys()


def test_bad_inputs(tmp_path: Path) -> None:
    sel = _selection()
    _write(tmp_path / "in.root")
    with pytest.raises(ConfigError, match="is the input file itself"):
        apply_file(sel, tmp_path / "in.root", tmp_path / "in.root", progress=False)
    _write(tmp_path / "other.root", tree="Events")
    with pytest.raises(TreeNotFoundError, match=r"tree 'DecayTree' not found.*trees in the file: Events"):
        apply_file(sel, tmp_path / "other.root", tmp_path / "o.root", progress=False)
    cols = _write(tmp_path / "nox.root")
    with uproot.recreate(tmp_path / "nox.root") as f:
        f.mktree("DecayTree", {"y": cols["y"].dtype})
        f["DecayTree"].extend({"y": cols["y"]})
    with pytest.raises(BranchNotFoundError, match=r"branch 'x' not found in .*nox\.root:DecayTree.*feature 'log_x'"):
        apply_file(sel, tmp_path / "nox.root", tmp_path / "o.root", progress=False)
    assert not (tmp_path / "o.root").exists()  # nothing half-written


def test_cli_apply(tmp_path: Path) -> None:
    sel = _selection()
    sel.save(tmp_path / "sel")
    _write(tmp_path / "a.root", seed=1)
    _write(tmp_path / "b.root", seed=2)
    cmd = [sys.executable, "-m", "hepsel.cli", "apply", "--selection", str(tmp_path / "sel"),
           str(tmp_path / "*.root"), "-o", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "a_hepsel.root").is_file() and (tmp_path / "out" / "b_hepsel.root").is_file()
    bad = subprocess.run([*cmd[:6], str(tmp_path / "missing.root"), "-o", str(tmp_path / "out2")], capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "missing.root" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([*cmd, "--model", "nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "unknown model(s) ['nope']" in bad.stderr and "Traceback" not in bad.stderr


# -- the Python API ----------------------------------------------------------------------


def test_score_accepts_every_input_kind(tmp_path: Path) -> None:
    import awkward as ak
    import pandas as pd

    sel = _selection()
    a = _write(tmp_path / "a.root", seed=1)
    b = _write(tmp_path / "b.root", seed=2)
    expected = np.concatenate([_expected_scores(sel, a), _expected_scores(sel, b)])
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    for source in ([tmp_path / "a.root", tmp_path / "b.root"], both, ak.Array(both), pd.DataFrame(both)):
        np.testing.assert_allclose(sel.score(source), expected, rtol=1e-12, equal_nan=True)
    with pytest.raises(TypeError, match="cannot read candidates from a int"):
        sel.score(3)


def test_decisions_carry_identifiers(tmp_path: Path) -> None:
    sel = _selection()
    cols = _write(tmp_path / "a.root")
    d = sel.decisions(tmp_path / "a.root")
    np.testing.assert_array_equal(d["eventNumber"], cols["eventNumber"])
    np.testing.assert_array_equal(d["runNumber"], cols["runNumber"])
    np.testing.assert_array_equal(d["pass_fisher_100kHz"], sel.passes(tmp_path / "a.root", rate_khz=100))


def test_working_points_by_rate_efficiency_and_threshold() -> None:
    curves = {"fisher": {"threshold": [0.9, 0.7, 0.5, 0.3], "rate_khz": [10.0, 50.0, 100.0, 400.0], "eff": [0.2, 0.4, 0.6, 0.9]}}
    sel = _selection(curves)
    assert sel.threshold(rate_khz=100) == 0.5  # stored: exact, no warning
    with pytest.warns(InterpolatedWorkingPoint, match="interpolated"):
        assert sel.threshold(rate_khz=75) == pytest.approx(0.6)  # halfway between 50 and 100 kHz
    with pytest.warns(InterpolatedWorkingPoint):
        assert sel.threshold(signal_eff=0.75) == pytest.approx(0.4)
    assert sel.threshold(threshold=0.42) == 0.42
    with pytest.raises(ValueError, match="outside the stored curve"):
        sel.threshold(rate_khz=1000)
    with pytest.raises(ValueError, match="one of"):
        sel.threshold(rate_khz=100, threshold=0.3)
    with pytest.raises(KeyError, match="no stored rate curve"):
        _selection().threshold(rate_khz=75)


def test_load_is_lazy_and_fast(tmp_path: Path) -> None:
    _selection().save(tmp_path / "sel")
    t0 = time.perf_counter()
    sel = Selection.load(tmp_path / "sel")
    assert time.perf_counter() - t0 < 1.0
    assert sel.models["fisher"]["folds"] is None  # nothing loaded yet
    assert len(sel.fold_models("fisher")) == 2
    (tmp_path / "sel" / "models" / "fisher" / "fold1.json").unlink()
    from hepsel.exceptions import ModelFileError

    with pytest.raises(ModelFileError, match="no model file"):
        Selection.load(tmp_path / "sel")
