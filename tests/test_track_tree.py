"""The simulated track tree (TrackTuple): one row per track of the two-track candidates, each once."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from hepsel.sim import generate, simulation
from hepsel.sim.simulation import (
    MODE_CODES,
    TRACK_BRANCHES,
    simulate_events,
    simulate_events_with_tracks,
)


@pytest.fixture(scope="module")
def signal_with_tracks() -> tuple[dict[str, np.ndarray], ...]:
    return simulate_events_with_tracks("signal", 10_000, seed=21, pileup=3.0)


@pytest.fixture(scope="module")
def minbias_with_tracks() -> tuple[dict[str, np.ndarray], ...]:
    return simulate_events_with_tracks("minbias", 10_000, seed=22, pileup=3.0)


def test_the_other_trees_do_not_depend_on_the_tracks(signal_with_tracks) -> None:
    cands, events, _ = signal_with_tracks
    c2, e2 = simulate_events("signal", 10_000, seed=21, pileup=3.0)
    for a, b in ((cands, c2), (events, e2)):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_schema_and_order(signal_with_tracks, minbias_with_tracks) -> None:
    for _, events, tracks in (signal_with_tracks, minbias_with_tracks):
        assert {k: v.dtype for k, v in tracks.items()} == TRACK_BRANCHES
        ev = tracks["eventNumber"]
        assert (np.diff(ev) >= 0).all()
        assert set(ev) <= set(events["eventNumber"])
        # nTrack counts within the event by decreasing pT; totTracks is the event's number of rows
        same = np.diff(ev) == 0
        assert (np.diff(tracks["TRACK_PT"])[same] <= 0).all()
        assert (np.diff(tracks["nTrack"])[same] == 1).all()
        counts = np.bincount(ev - ev.min())
        np.testing.assert_array_equal(tracks["totTracks"], counts[ev - ev.min()])
        eta = tracks["TRACK_ETA"]
        assert ((eta > simulation.ETA_MIN) & (eta < simulation.ETA_MAX)).all()


def test_signal_tracks_are_those_of_the_truth_matched_candidate(signal_with_tracks) -> None:
    cands, _events, tracks = signal_with_tracks
    sig = tracks["truth_matched"] == 1
    # at most the signal decay's two tracks per event, each once (not again via signal_plus_prompt)
    per_event = np.bincount(tracks["eventNumber"][sig])
    assert per_event.max() == 2
    assert (per_event[per_event > 0] == 2).mean() > 0.97
    # the two tracks are the truth-matched candidate's H1 and H2
    tm = cands["truth_matched"] == 1
    for h in ("H1", "H2"):
        cand_key = {
            (e, round(float(p), 2))
            for e, p in zip(cands["eventNumber"][tm], cands[f"{h}_PT"][tm], strict=True)
        }
        track_key = {
            (e, round(float(p), 2))
            for e, p in zip(tracks["eventNumber"][sig], tracks["TRACK_PT"][sig], strict=True)
        }
        assert len(cand_key - track_key) == 0
    # signal_plus_prompt adds only its prompt track: one row per such candidate, never truth-matched
    side = tracks["mode"] == MODE_CODES["signal_plus_prompt"]
    assert not (tracks["truth_matched"][side] == 1).any()
    n_side = int((cands["mode"] == MODE_CODES["signal_plus_prompt"]).sum())
    assert (
        side.sum() >= n_side
    )  # the prompt track is kept even if its candidate left the acceptance


def test_minbias_track_rows_match_candidate_tracks(minbias_with_tracks) -> None:
    cands, _, tracks = minbias_with_tracks
    assert not (tracks["truth_matched"] == 1).any()
    # every candidate's tracks are rows (the candidate tree keeps pairs with both tracks in acceptance)
    for h in ("H1", "H2"):
        cand_key = set(
            zip(cands["eventNumber"].tolist(), cands[f"{h}_IPCHI2_OWNPV"].tolist(), strict=True)
        )
        track_key = set(
            zip(tracks["eventNumber"].tolist(), tracks["TRACK_IPCHI2_OWNPV"].tolist(), strict=True)
        )
        assert cand_key <= track_key
    assert len(tracks["eventNumber"]) <= 2 * len(cands["eventNumber"]) * 1.2


def test_generated_files_hold_the_track_tree_unless_switched_off(tmp_path) -> None:
    (with_tracks,) = generate.generate_files(
        "signal", [tmp_path / "a.root"], 500, seed=3, progress=False
    )
    (without,) = generate.generate_files(
        "signal", [tmp_path / "b.root"], 500, seed=3, progress=False, tracks=False
    )
    _, _, tracks = simulate_events_with_tracks("signal", 500, seed=3)
    with uproot.open(with_tracks) as f:
        t = f[generate.TRACK_TREE].arrays(library="np")
        np.testing.assert_array_equal(t["TRACK_PT"], tracks["TRACK_PT"])
    with uproot.open(without) as f:
        assert generate.TRACK_TREE not in [k.split(";")[0] for k in f]
        assert generate.CANDIDATE_TREE in [k.split(";")[0] for k in f]
