"""Applying a saved selection: friend trees per entry and per event, the API's inputs and working points."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import uproot

from hepsel.deploy.apply import EVENTS_TREE, FRIEND_TREE, apply_file
from hepsel.deploy.selection import InterpolatedWorkingPoint, Selection
from hepsel.exceptions import BranchNotFoundError, ConfigError, TreeNotFoundError
from hepsel.prep.features import Feature, FeatureSet

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


def _write(
    path: Path,
    n_events: int = 300,
    seed: int = 0,
    *,
    event_branch: bool = True,
    tree: str = "DecayTree",
) -> dict:
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
    info = apply_file(
        sel, tmp_path / "in.root", tmp_path / "out.root", step_size=100, progress=False
    )
    with uproot.open(tmp_path / "in.root") as fin, uproot.open(tmp_path / "out.root") as fout:
        assert fout[FRIEND_TREE].num_entries == fin["DecayTree"].num_entries == len(cols["x"])
        fr = fout[FRIEND_TREE].arrays(library="np")
        ev = fout[EVENTS_TREE].arrays(library="np")
    np.testing.assert_array_equal(fr["eventNumber"], cols["eventNumber"])
    np.testing.assert_array_equal(fr["presel"], cols["x"] > 0)
    expected = _expected_scores(sel, cols)
    np.testing.assert_allclose(fr["score_fisher"], expected, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(
        fr["pass_fisher_100kHz"], (cols["x"] > 0) & (np.nan_to_num(expected, nan=-1) >= 0.5)
    )
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
    apply_file(
        _selection(),
        tmp_path / "in.root",
        tmp_path / "out.root",
        copy_branches=True,
        progress=False,
    )
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
    with pytest.raises(
        TreeNotFoundError, match=r"tree 'DecayTree' not found.*trees in the file: Events"
    ):
        apply_file(sel, tmp_path / "other.root", tmp_path / "o.root", progress=False)
    cols = _write(tmp_path / "nox.root")
    with uproot.recreate(tmp_path / "nox.root") as f:
        f.mktree("DecayTree", {"y": cols["y"].dtype})
        f["DecayTree"].extend({"y": cols["y"]})
    with pytest.raises(
        BranchNotFoundError, match=r"branch 'x' not found in .*nox\.root:DecayTree.*feature 'log_x'"
    ):
        apply_file(sel, tmp_path / "nox.root", tmp_path / "o.root", progress=False)
    assert not (tmp_path / "o.root").exists()  # nothing half-written


def test_cli_apply(tmp_path: Path) -> None:
    sel = _selection()
    sel.save(tmp_path / "sel")
    _write(tmp_path / "a.root", seed=1)
    _write(tmp_path / "b.root", seed=2)
    cmd = [
        sys.executable,
        "-m",
        "hepsel.cli",
        "apply",
        "--selection",
        str(tmp_path / "sel"),
        str(tmp_path / "*.root"),
        "-o",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "a_hepsel.root").is_file() and (
        tmp_path / "out" / "b_hepsel.root"
    ).is_file()
    bad = subprocess.run(
        [*cmd[:6], str(tmp_path / "missing.root"), "-o", str(tmp_path / "out2")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "missing.root" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([*cmd, "--model", "nope"], capture_output=True, text=True, check=False)
    assert (
        bad.returncode == 1
        and "unknown model(s) ['nope']" in bad.stderr
        and "Traceback" not in bad.stderr
    )


# -- the Python API ----------------------------------------------------------------------


def test_score_accepts_every_input_kind(tmp_path: Path) -> None:
    import awkward as ak
    import pandas as pd

    sel = _selection()
    a = _write(tmp_path / "a.root", seed=1)
    b = _write(tmp_path / "b.root", seed=2)
    expected = np.concatenate([_expected_scores(sel, a), _expected_scores(sel, b)])
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    for source in (
        [tmp_path / "a.root", tmp_path / "b.root"],
        both,
        ak.Array(both),
        pd.DataFrame(both),
    ):
        np.testing.assert_allclose(sel.score(source), expected, rtol=1e-12, equal_nan=True)
    with pytest.raises(TypeError, match="cannot read candidates from a int"):
        sel.score(3)


def test_decisions_carry_identifiers(tmp_path: Path) -> None:
    sel = _selection()
    cols = _write(tmp_path / "a.root")
    d = sel.decisions(tmp_path / "a.root")
    np.testing.assert_array_equal(d["eventNumber"], cols["eventNumber"])
    np.testing.assert_array_equal(d["runNumber"], cols["runNumber"])
    np.testing.assert_array_equal(
        d["pass_fisher_100kHz"], sel.passes(tmp_path / "a.root", rate_khz=100)
    )


def test_working_points_by_rate_efficiency_and_threshold() -> None:
    curves = {
        "fisher": {
            "threshold": [0.9, 0.7, 0.5, 0.3],
            "rate_khz": [10.0, 50.0, 100.0, 400.0],
            "eff": [0.2, 0.4, 0.6, 0.9],
        }
    }
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


# -- inputs and outputs never mix -----------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from hepsel.cli import main

    rc = main(["apply", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def _contents(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_apply_never_overwrites_one_of_its_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """x.root and x_hepsel.root (a user's file with the tree) in one directory, -o that directory: refused, nothing written."""
    _selection().save(tmp_path / "sel")
    d = tmp_path / "dir"
    d.mkdir()
    _write(d / "x.root", seed=1)
    _write(d / "x_hepsel.root", seed=2)
    before = _contents(d)
    rc, out, err = _cli(capsys, "-s", str(tmp_path / "sel"), "-o", str(d), str(d / "x*.root"))
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("hepsel: error: ")
    assert "would overwrite the input" in err and f"{d / 'x_hepsel.root'}" in err
    assert (
        _contents(d) == before
    )  # the second input keeps its DecayTree, no output and no temporary file appears


def test_outputs_resolving_to_an_input_are_refused(tmp_path: Path) -> None:
    """Symbolic links (to the file or to its directory) and hard links: one file under two names."""
    from hepsel.deploy.apply import check_outputs, plan_outputs

    data = tmp_path / "data"
    data.mkdir()
    _write(data / "a.root")
    _write(data / "b_hepsel.root")
    # the output directory is a link to the input directory: out/b_hepsel.root is data/b_hepsel.root
    (tmp_path / "out").symlink_to(data, target_is_directory=True)
    with pytest.raises(
        ConfigError, match=r"out/b_hepsel\.root' would overwrite the input '.*data/b_hepsel\.root'"
    ):
        plan_outputs(
            [data / "a.root", tmp_path / "out" / "b.root", data / "b_hepsel.root"], tmp_path / "out"
        )
    # an output that is a symbolic link to an input
    (tmp_path / "o1").mkdir()
    (tmp_path / "o1" / "c_hepsel.root").symlink_to(data / "a.root")
    with pytest.raises(
        ConfigError, match=r"o1/c_hepsel\.root' would overwrite the input '.*data/a\.root'"
    ):
        plan_outputs([data / "a.root", tmp_path / "c.root"], tmp_path / "o1")
    # an output that is a hard link to an input (same inode, different path)
    (tmp_path / "o2").mkdir()
    (tmp_path / "o2" / "d_hepsel.root").hardlink_to(data / "a.root")
    with pytest.raises(
        ConfigError, match=r"o2/d_hepsel\.root' would overwrite the input '.*data/a\.root'"
    ):
        check_outputs(
            [
                (data / "a.root", tmp_path / "o2" / "a_hepsel.root"),
                (tmp_path / "d.root", tmp_path / "o2" / "d_hepsel.root"),
            ]
        )
    # distinct files pass
    jobs = plan_outputs([data / "a.root"], tmp_path / "o3")
    assert jobs == [(data / "a.root", tmp_path / "o3" / "a_hepsel.root")]


def test_glob_star_star_is_recursive_and_reruns_skip_own_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'**' reaches any depth; the outputs of an earlier run under the glob are skipped with one line each."""
    _selection().save(tmp_path / "sel")
    data = tmp_path / "data"
    (data / "run1" / "deep").mkdir(parents=True)
    _write(data / "top.root", seed=1)
    _write(data / "run1" / "deep" / "low.root", seed=2)
    args = ("-s", str(tmp_path / "sel"), "-o", str(data / "friends"), str(data / "**" / "*.root"))
    rc, out, err = _cli(capsys, *args)
    assert rc == 0, err
    assert sorted(p.name for p in (data / "friends").iterdir()) == [
        "low_hepsel.root",
        "top_hepsel.root",
    ]
    assert err == ""
    for _ in range(2):  # the glob now also matches the two outputs: skipped, and they stay two
        rc, out, err = _cli(capsys, *args)
        assert rc == 0, err
        assert sorted(p.name for p in (data / "friends").iterdir()) == [
            "low_hepsel.root",
            "top_hepsel.root",
        ]
        lines = err.splitlines()
        assert len(lines) == 2 and all(line.startswith("hepsel: skipping ") for line in lines)
        assert all("holds the friend trees 'hepsel' and 'hepsel_events'" in line for line in lines)
        assert out.count("_hepsel.root: ") == 2
    # nothing but hepsel's outputs: refused
    rc, out, err = _cli(
        capsys,
        "-s",
        str(tmp_path / "sel"),
        "-o",
        str(tmp_path / "o"),
        str(data / "friends" / "*.root"),
    )
    assert rc == 1 and err.splitlines()[-1].startswith("hepsel: error: no input left to apply to")
    assert not (tmp_path / "o").exists()


def test_files_under_an_analysis_output_directory_are_own_outputs(tmp_path: Path) -> None:
    """Any file below a directory holding the ownership marker, as written or through a link, is hepsel's own."""
    from hepsel.config.provenance import OWNER_FILE
    from hepsel.deploy.apply import own_output, split_own_outputs

    results = tmp_path / "results" / "ana"
    (results / "apply" / "x" / "000").mkdir(parents=True)
    (results / OWNER_FILE).write_text('{"config": "/somewhere/config.yaml", "name": "ana"}\n')
    inside = results / "apply" / "x" / "000" / "a.root"
    _write(inside)  # a DecayTree, no friend trees: only its place makes it an output
    (tmp_path / "link").symlink_to(inside)
    _write(tmp_path / "plain.root")
    why = own_output(inside)
    assert why is not None and str(results) in why and "/somewhere/config.yaml" in why
    kept, skipped = split_own_outputs([tmp_path / "plain.root", tmp_path / "link", inside])
    assert kept == [tmp_path / "plain.root"]
    assert [p for p, _ in skipped] == [tmp_path / "link", inside]
    assert own_output(tmp_path / "missing.root") is None
    (tmp_path / "text.root").write_text("not ROOT")
    assert own_output(tmp_path / "text.root") is None  # applying to it says what is wrong


def test_config_apply_globs_recursive_and_dataset_jobs(tmp_path: Path) -> None:
    """The config's apply: datasets: '**' reaches any depth; own outputs are set aside; all-own datasets refused."""
    from hepsel.config.loading import load_config
    from hepsel.config.provenance import OWNER_FILE
    from hepsel.deploy.apply import dataset_jobs

    from .conftest import tiny_config, write_config

    (tmp_path / "data" / "a" / "b").mkdir(parents=True)
    _write(tmp_path / "data" / "a" / "b" / "deep.root")
    _write(tmp_path / "data" / "flat.root")
    out = tmp_path / "results" / "tiny"
    (out / "apply" / "d" / "000").mkdir(parents=True)
    (out / OWNER_FILE).write_text('{"config": "x"}\n')
    _write(out / "apply" / "d" / "000" / "flat_hepsel.root")
    apply = {"datasets": {"d": {"files": ["data/**/*.root", "results/**/*.root"]}}}
    write_config(tmp_path / "analyses" / "tiny", tiny_config("data", apply=apply))
    cfg = load_config(tmp_path / "analyses" / "tiny", base_dir=tmp_path)
    jobs, skipped = dataset_jobs(cfg)
    assert [i for i, _ in jobs["d"]] == [
        tmp_path / "data" / "a" / "b" / "deep.root",
        tmp_path / "data" / "flat.root",
    ]
    assert [o for _, o in jobs["d"]] == [
        out / "apply" / "d" / "000" / "deep_hepsel.root",
        out / "apply" / "d" / "001" / "flat_hepsel.root",
    ]
    assert [p for p, _ in skipped] == [out / "apply" / "d" / "000" / "flat_hepsel.root"]
    apply = {"datasets": {"d": {"files": ["results/**/*.root"]}}}
    write_config(tmp_path / "analyses" / "tiny", tiny_config("data", apply=apply))
    cfg = load_config(tmp_path / "analyses" / "tiny", base_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=r"apply\.datasets\.d\.files: every file it names is hepsel's own output"
    ):
        dataset_jobs(cfg)


def test_dataset_jobs_refuse_an_output_that_is_an_input(tmp_path: Path) -> None:
    """Before its output directory is claimed, a file of the user's where a job would write is refused, not overwritten."""
    from hepsel.config.loading import load_config
    from hepsel.deploy.apply import dataset_jobs

    from .conftest import tiny_config, write_config

    (tmp_path / "data").mkdir()
    _write(tmp_path / "data" / "a.root")
    theirs = tmp_path / "results" / "tiny" / "apply" / "d" / "000" / "a_hepsel.root"
    theirs.parent.mkdir(parents=True)
    _write(theirs, seed=3)  # a DecayTree of the user's, no ownership marker above it
    apply = {
        "datasets": {
            "d": {"files": ["data/a.root"]},
            "e": {"files": ["results/tiny/apply/d/000/*.root"]},
        }
    }
    write_config(tmp_path / "analyses" / "tiny", tiny_config("data", apply=apply))
    cfg = load_config(tmp_path / "analyses" / "tiny", base_dir=tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"output '.*apply/d/000/a_hepsel\.root' would overwrite the input '.*apply/d/000/a_hepsel\.root'",
    ):
        dataset_jobs(cfg)
