from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

from hepsel.config.loading import load_config
from hepsel.exceptions import (
    BranchNotFoundError,
    EmptySelectionError,
    ExpressionError,
    InputFileError,
    NonFiniteError,
    TreeNotFoundError,
    UnknownFunctionError,
)
from hepsel.io.storage import read_json, read_table
from hepsel.prep.dataset import gather
from hepsel.prep.ingest import prepare_file

from .conftest import write_config, write_flat_tree


def _config(tmp_path: Path, data: Path, **over: object):  # type: ignore[no-untyped-def]
    raw = {
        "name": "flat",
        "samples": {
            "sig": {
                "files": [str(data)],
                "label": 1,
                "weight": "eventWeight",
                "truth": "truth_matched == 1",
                "events_tree": "EventTuple",
            },
            "bkg": {"files": [str(data)], "label": 0, "events_tree": "EventTuple"},
        },
        "preselection": [{"name": "pt", "cut": "H1_PT > 200"}],
        "features": [
            {"name": "sum_pt", "expr": "H1_PT + H2_PT"},
            {"name": "log_ip", "expr": "B_IPCHI2_OWNPV", "transform": "log"},
        ],
        "spectators": ["B_PT"],
        "folds": {"k": 4},
        "models": {"bdt": {"type": "bdt"}},
    }
    raw.update(over)
    return load_config(write_config(tmp_path / "ana", raw), base_dir=tmp_path)


def test_prepare_matches_numpy(
    tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, cols = flat_file
    cfg = _config(tmp_path, path, reading={"step_size": 97})  # many small chunks
    out = tmp_path / "out" / "sig.parquet"
    meta = prepare_file(cfg, "sig", path, out, progress=False)
    t = read_table(out)
    keep = cols["H1_PT"] > 200
    np.testing.assert_allclose(
        t["sum_pt"], (cols["H1_PT"] + cols["H2_PT"])[keep].astype(np.float64)
    )
    # float32 branches stay float32: compare at float32 precision
    np.testing.assert_allclose(
        t["log_ip"], np.log(cols["B_IPCHI2_OWNPV"][keep].astype(np.float64)), rtol=1e-6
    )
    np.testing.assert_array_equal(t["fold"], cols["eventNumber"][keep] % 4)
    np.testing.assert_array_equal(t["truth"], cols["truth_matched"][keep])
    np.testing.assert_allclose(t["weight_raw"], cols["eventWeight"][keep])
    assert meta["cutflow"]["raw"] == [len(keep), int(keep.sum())]
    # the same steps on the truth-matched candidates only, weighted alike
    truth = cols["truth_matched"] == 1
    assert meta["cutflow_truth"]["raw"] == [int(truth.sum()), int((truth & keep).sum())]
    assert meta["cutflow_truth"]["weighted"] == pytest.approx(
        [cols["eventWeight"][truth].sum(), cols["eventWeight"][truth & keep].sum()], rel=1e-6
    )
    bkg = prepare_file(cfg, "bkg", path, tmp_path / "out" / "bkg.parquet", progress=False)
    assert bkg["cutflow_truth"] is None  # no truth expression: no truth-matched cut-flow
    gather(
        cfg,
        {"sig": [out], "bkg": [tmp_path / "out" / "bkg.parquet"]},
        tmp_path / "out" / "d.parquet",
    )
    flows = read_json(tmp_path / "out" / "cutflow.json")
    assert flows["sig"]["truth_matched"]["counts"]["raw"] == meta["cutflow_truth"]["raw"]
    assert "truth_matched" not in flows["bkg"]
    assert meta["n_events"] == 205  # from EventTuple, including events without candidates
    assert meta["sum_gen_weights"] == pytest.approx(205.0)
    assert meta["n_candidates_out"] == int(keep.sum())
    assert read_json(out.with_suffix(".json"))["sample"] == "sig"


def test_best_candidate_per_event_across_chunks(
    tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, cols = flat_file
    cfg = _config(
        tmp_path,
        path,
        reading={"step_size": 7},
        candidates={"mode": "best", "by": "B_PT"},
        preselection=[],
    )
    out = tmp_path / "best.parquet"
    prepare_file(cfg, "bkg", path, out, progress=False)
    t = read_table(out)
    events = np.unique(cols["eventNumber"])
    assert len(t["eventNumber"]) == len(events)
    expected = np.array([cols["B_PT"][cols["eventNumber"] == e].max() for e in events])
    np.testing.assert_allclose(t["B_PT"], expected)


def test_gather_normalises_and_writes_cutflow(
    tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, cols = flat_file
    cfg = _config(
        tmp_path,
        path,
        samples={
            "sig": {
                "files": [str(path)],
                "label": 1,
                "weight": "eventWeight",
                "normalisation": {"cross_section_pb": 2.0, "luminosity_pb": 10.0},
            },
            "bkg": {
                "files": [str(path)],
                "label": 0,
                "normalisation": {"scale": 0.5},
                "events_tree": "EventTuple",
            },
        },
    )
    prep = {s: [tmp_path / f"{s}.parquet"] for s in ("sig", "bkg")}
    for s in prep:
        prepare_file(cfg, s, path, prep[s][0], progress=False)
    info = gather(cfg, prep, tmp_path / "dataset.parquet")
    n_events = len(np.unique(cols["eventNumber"]))
    first = np.r_[True, cols["eventNumber"][1:] != cols["eventNumber"][:-1]]
    assert info["sig"]["n_events"] == n_events
    assert info["sig"]["sum_gen_weights"] == pytest.approx(
        cols["eventWeight"][first].astype(float).sum(), rel=1e-6
    )
    assert info["sig"]["normalisation"] == pytest.approx(20.0 / info["sig"]["sum_gen_weights"])
    assert info["bkg"]["normalisation"] == 0.5
    t = read_table(tmp_path / "dataset.parquet")
    np.testing.assert_allclose(t["weight"][t["label"] == 0], 0.5)
    assert (tmp_path / "cutflow.md").read_text().count("| pt |") == 2


# --- bad input: clear message, and no output file ------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        pytest.param(lambda p: None, InputFileError, "does not exist", id="missing-file"),
        pytest.param(
            lambda p: p.write_text("not a root file"),
            InputFileError,
            "is not a ROOT file",
            id="not-root",
        ),
    ],
)
def test_bad_files(
    tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]], make, error, match
) -> None:  # type: ignore[no-untyped-def]
    path, _ = flat_file
    cfg = _config(tmp_path, path)
    bad = tmp_path / "bad.root"
    make(bad)
    out = tmp_path / "o.parquet"
    with pytest.raises(error, match=match) as err:
        prepare_file(cfg, "sig", bad, out, progress=False)
    assert "bad.root" in str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".o.parquet*"))


def test_truncated_file(tmp_path: Path) -> None:
    good = tmp_path / "good.root"
    write_flat_tree(good, n_events=5000)
    bad = tmp_path / "truncated.root"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cfg = _config(tmp_path, bad)
    out = tmp_path / "o.parquet"
    with pytest.raises(InputFileError, match=r"truncated\.root.*(truncated|corrupt)"):
        prepare_file(cfg, "sig", bad, out, progress=False)
    assert not out.exists()


def test_missing_tree(tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, _ = flat_file
    raw_samples = {
        "sig": {"files": [str(path)], "label": 1, "tree": "DecayTre"},
        "bkg": {"files": [str(path)], "label": 0, "events_tree": "EventTuple"},
    }
    cfg = _config(tmp_path, path, samples=raw_samples)
    with pytest.raises(
        TreeNotFoundError,
        match=r"tree 'DecayTre' not found in .*flat\.root; did you mean 'DecayTree'",
    ):
        prepare_file(cfg, "sig", path, tmp_path / "o.parquet", progress=False)
    assert not (tmp_path / "o.parquet").exists()


def test_misspelt_branch_suggests(
    tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, _ = flat_file
    cfg = _config(tmp_path, path, features=[{"name": "x", "expr": "H1_PTT * 2"}])
    out = tmp_path / "o.parquet"
    with pytest.raises(
        BranchNotFoundError,
        match=r"branch 'H1_PTT' not found in .*flat\.root:DecayTree \(did you mean 'H1_PT'.*used by feature 'x'",
    ):
        prepare_file(cfg, "sig", path, out, progress=False)
    assert not out.exists()


def test_expression_errors(tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, _ = flat_file
    cfg = _config(tmp_path, path, preselection=[{"name": "broken", "cut": "H1_PT > > 3"}])
    with pytest.raises(ExpressionError, match=r"H1_PT > > 3"):
        prepare_file(cfg, "sig", path, tmp_path / "o.parquet", progress=False)
    cfg = _config(tmp_path, path, features=[{"name": "y", "expr": "sqr(H1_PT)"}])
    with pytest.raises(UnknownFunctionError, match=r"sqr.*sqrt"):
        prepare_file(cfg, "sig", path, tmp_path / "o.parquet", progress=False)
    assert not (tmp_path / "o.parquet").exists()
    assert not list(tmp_path.glob(".o.parquet*"))


def test_cut_selecting_nothing(
    tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, _ = flat_file
    cfg = _config(tmp_path, path, preselection=[{"name": "too tight", "cut": "H1_PT > 1e12"}])
    prep = {s: [tmp_path / f"{s}.parquet"] for s in ("sig", "bkg")}
    for s in prep:
        prepare_file(cfg, s, path, prep[s][0], progress=False)
    with pytest.raises(
        EmptySelectionError, match=r"cut 'too tight' selects no candidate of sample 'bkg'"
    ):
        gather(cfg, prep, tmp_path / "dataset.parquet")
    assert not (tmp_path / "dataset.parquet").exists()


def test_non_finite_fail_or_drop(
    tmp_path: Path, flat_file: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, cols = flat_file
    feats = [
        {"name": "inv", "expr": "1 / (nCandidate)"}
    ]  # inf for the first candidate of each event
    cfg = _config(tmp_path, path, features=feats, preselection=[])
    out = tmp_path / "o.parquet"
    with pytest.raises(NonFiniteError, match=r"non-finite values .*flat\.root.*'inv': \d+"):
        prepare_file(cfg, "sig", path, out, progress=False)
    assert not out.exists()
    cfg = _config(tmp_path, path, features=feats, preselection=[], reading={"non_finite": "drop"})
    meta = prepare_file(cfg, "sig", path, out, progress=False)
    n_bad = int((cols["nCandidate"] == 0).sum())
    assert meta["non_finite_dropped"] == {"inv": n_bad}
    assert len(read_table(out)["inv"]) == len(cols["nCandidate"]) - n_bad


def test_uproot_reads_back_written_root(tmp_path: Path) -> None:
    from hepsel.io.storage import write_root_tree

    p = write_root_tree(
        tmp_path / "s.root", "scores", {"a": np.arange(5.0), "b": np.arange(5, dtype=np.int32)}
    )
    with uproot.open(p) as f:
        np.testing.assert_array_equal(f["scores"]["a"].array(library="np"), np.arange(5.0))


@pytest.mark.parametrize(
    "rntuple",
    [("DecayTree",), ("EventTuple",), ("DecayTree", "EventTuple")],
    ids=["candidates", "events", "both"],
)
def test_rntuple_trees(tmp_path: Path, rntuple: tuple[str, ...]) -> None:
    """Candidate and events trees written as RNTuples by uproot read like TTrees."""
    path = tmp_path / "rntuple.root"
    cols = write_flat_tree(path, rntuple=rntuple)
    assert {uproot.open(path).classnames()[f"{t};1"] for t in rntuple} == {"ROOT::RNTuple"}
    cfg = _config(tmp_path, path, reading={"step_size": 97})
    out = tmp_path / "sig.parquet"
    meta = prepare_file(cfg, "sig", path, out, progress=False)
    t = read_table(out)
    keep = cols["H1_PT"] > 200
    np.testing.assert_allclose(
        t["sum_pt"], (cols["H1_PT"] + cols["H2_PT"])[keep].astype(np.float64)
    )
    np.testing.assert_array_equal(t["eventNumber"], cols["eventNumber"][keep])
    np.testing.assert_allclose(t["weight_raw"], cols["eventWeight"][keep])
    assert meta["n_events"] == 205  # the events tree has 205 entries
    assert meta["sum_gen_weights"] == pytest.approx(205.0)
    assert meta["events_source"] == "events tree 'EventTuple'"


def test_rntuple_flat_and_jagged_fields(tmp_path: Path) -> None:
    import awkward as ak

    from hepsel.io.reading import is_jagged, iterate, open_tree

    path = tmp_path / "fields.root"
    jets = ak.Array([[30.0, 20.0], [], [50.0]])
    with uproot.recreate(path) as f:
        f.mkrntuple("Events", {"met": np.array([1.0, 2.0, 3.0]), "Jet_pt": jets})
    tree = open_tree(path, "Events")
    assert not is_jagged(tree, ["met"])
    assert is_jagged(tree, ["met", "Jet_pt"])
    ((flat, _),) = iterate(path, "Events", ["met"])
    np.testing.assert_array_equal(flat["met"], [1.0, 2.0, 3.0])
    ((both, _),) = iterate(path, "Events", ["met", "Jet_pt"])
    assert ak.to_list(both["Jet_pt"]) == ak.to_list(jets)


def test_missing_tree_lists_rntuples(tmp_path: Path) -> None:
    path = tmp_path / "rntuple.root"
    write_flat_tree(path, rntuple=("DecayTree",))
    with pytest.raises(
        TreeNotFoundError, match=r"tree 'DecayTre' not found in .*did you mean 'DecayTree'"
    ):
        prepare_file(
            _config(
                tmp_path,
                path,
                samples={
                    "sig": {"files": [str(path)], "tree": "DecayTre", "label": 1},
                    "bkg": {"files": [str(path)], "label": 0, "events_tree": "EventTuple"},
                },
            ),
            "sig",
            path,
            tmp_path / "x.parquet",
            progress=False,
        )
