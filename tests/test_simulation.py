"""Tests for hepsel.sim.simulation (generation) and hepsel.sim.generate (ROOT writing)."""

from __future__ import annotations

import numpy as np
import pytest
import uproot
from scipy import stats

from hepsel.sim import generate, simulation
from hepsel.sim.simulation import (
    CANDIDATE_BRANCHES,
    EVENT_BRANCHES,
    MODE_CODES,
    SIGNAL_MODES,
    simulate_events,
)

SMALL_BLOCK = 400


@pytest.fixture
def small_block(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(simulation, "BLOCK", SMALL_BLOCK)
    return SMALL_BLOCK


@pytest.fixture(scope="module")
def signal_sample() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return simulate_events("signal", 20_000, seed=7)


@pytest.fixture(scope="module")
def minbias_sample() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return simulate_events("minbias", 30_000, seed=8)


def assert_columns_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# --- reproducibility -----------------------------------------------------------
@pytest.mark.parametrize("kind", simulation.SAMPLE_KINDS)
def test_same_seed_gives_identical_arrays(kind: str, small_block: int) -> None:
    first = simulate_events(kind, 2 * small_block, seed=3)
    second = simulate_events(kind, 2 * small_block, seed=3)
    for a, b in zip(first, second, strict=True):
        assert_columns_equal(a, b)


@pytest.mark.parametrize("kind", simulation.SAMPLE_KINDS)
def test_different_seed_gives_different_arrays(kind: str, small_block: int) -> None:
    a, _ = simulate_events(kind, small_block, seed=3)
    b, _ = simulate_events(kind, small_block, seed=4)
    assert not np.array_equal(a["B_PT"][:50], b["B_PT"][:50])


def test_kinds_are_seeded_independently(small_block: int) -> None:
    _, sig = simulate_events("signal", small_block, seed=3)
    _, mb = simulate_events("minbias", small_block, seed=3)
    assert not np.array_equal(sig["nTracks"], mb["nTracks"])


@pytest.mark.parametrize("kind", simulation.SAMPLE_KINDS)
def test_blocks_concatenate(kind: str, small_block: int) -> None:
    both = simulate_events(kind, 2 * small_block, seed=5)
    first = simulate_events(kind, small_block, seed=5)
    second = simulate_events(kind, small_block, seed=5, first_event=small_block)
    for joined, a, b in zip(both, first, second, strict=True):
        assert_columns_equal(joined, concat([a, b]))


def test_partial_block_is_prefix_of_full_block(small_block: int) -> None:
    cands, events = simulate_events("minbias", 2 * small_block, seed=6)
    n = small_block + 123
    part_cands, part_events = simulate_events("minbias", n, seed=6)
    keep = cands["eventNumber"] < n
    assert_columns_equal(part_cands, {k: v[keep] for k, v in cands.items()})
    assert_columns_equal(part_events, {k: v[:n] for k, v in events.items()})


def test_zero_events_gives_empty_columns() -> None:
    cands, events = simulate_events("signal", 0, seed=1)
    assert all(len(v) == 0 for v in cands.values())
    assert {k: v.dtype for k, v in events.items()} == EVENT_BRANCHES


# --- argument checks -------------------------------------------------------------
def test_first_event_must_be_block_aligned(small_block: int) -> None:
    with pytest.raises(ValueError, match="multiple of BLOCK"):
        simulate_events("minbias", 10, seed=1, first_event=small_block + 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "zerobias"}, ValueError, "unknown sample kind"),
        ({"n_events": -1}, ValueError, "n_events must be >= 0"),
        ({"n_events": 2.5}, TypeError, "n_events must be an integer"),
        ({"seed": -3}, ValueError, "seed must be >= 0"),
        ({"pileup": 0.0}, ValueError, "pileup must be a positive"),
        ({"signal_modes": {"B0_Kpi": 1.0, "Bs_phiphi": 1.0}}, ValueError, "Bs_phiphi"),
        ({"signal_modes": {"B0_Kpi": -1.0}}, ValueError, "not all zero"),
    ],
    ids=["kind", "negative-n", "float-n", "seed", "pileup", "unknown-mode", "negative-fraction"],
)
def test_invalid_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    args = {"kind": "signal", "n_events": 10, "seed": 1, **kwargs}
    kind, n = args.pop("kind"), args.pop("n_events")
    with pytest.raises(error, match=match):
        simulate_events(kind, n, **args)


# --- structure ----------------------------------------------------------------------
@pytest.mark.parametrize("sample", ["signal_sample", "minbias_sample"])
def test_schema_and_event_bookkeeping(sample: str, request: pytest.FixtureRequest) -> None:
    cands, events = request.getfixturevalue(sample)
    assert {k: v.dtype for k, v in cands.items()} == CANDIDATE_BRANCHES
    assert {k: v.dtype for k, v in events.items()} == EVENT_BRANCHES
    n_events = len(events["eventNumber"])
    np.testing.assert_array_equal(events["eventNumber"], np.arange(n_events))
    assert np.all(np.diff(cands["eventNumber"]) >= 0)
    counts = np.bincount(cands["eventNumber"], minlength=n_events)
    np.testing.assert_array_equal(cands["totCandidates"], counts[cands["eventNumber"]])
    starts = np.cumsum(counts) - counts
    np.testing.assert_array_equal(
        cands["nCandidate"], np.arange(len(cands["nCandidate"])) - starts[cands["eventNumber"]]
    )
    for name in ("nPVs", "nTracks", "eventWeight", "runNumber"):
        np.testing.assert_array_equal(cands[name], events[name][cands["eventNumber"]])
    assert len(np.unique(cands["runNumber"])) == 1
    assert events["nPVs"].min() >= 1


def test_event_tuple_counts_every_event(minbias_sample) -> None:
    cands, events = minbias_sample
    assert len(events["eventNumber"]) == 30_000
    with_candidates = np.unique(cands["eventNumber"])
    assert 0 < len(with_candidates) < len(events["eventNumber"])
    np.testing.assert_array_equal(events["eventWeight"], 1.0)
    np.testing.assert_array_equal(events["mode"], MODE_CODES["not_signal_event"])
    for name in ("B_TRUETAU", "B_TRUEPT", "B_TRUEETA"):
        np.testing.assert_array_equal(events[name], 0.0)


def test_minbias_pileup_is_zero_truncated_poisson(minbias_sample) -> None:
    _, events = minbias_sample
    mu = 1.1
    expected = stats.poisson(mu).mean() / stats.poisson(mu).sf(0)
    sem = events["nPVs"].std() / np.sqrt(len(events["nPVs"]))
    assert abs(events["nPVs"].mean() - expected) < 5 * sem


def test_minbias_composition(minbias_sample) -> None:
    cands, _ = minbias_sample
    codes = set(np.unique(cands["mode"]).tolist())
    expected = {"prompt", "pileup", "combinatorial", "charm_D0", "charm_Dplus"}
    expected |= {"strange_KS", "strange_Lambda", "ghost"}
    assert {MODE_CODES[name] for name in expected} <= codes
    assert not codes & set(SIGNAL_MODES.values())
    np.testing.assert_array_equal(cands["truth_matched"], 0)
    ghost_tracks = np.mean(np.r_[cands["H1_ID"], cands["H2_ID"]] == 0)
    assert 0.01 < ghost_tracks < 0.10


# --- physics sanity ---------------------------------------------------------------------
@pytest.mark.parametrize("sample", ["signal_sample", "minbias_sample"])
def test_ranges(sample: str, request: pytest.FixtureRequest) -> None:
    cands, _ = request.getfixturevalue(sample)
    for h in ("H1", "H2"):
        assert np.all((cands[f"{h}_ETA"] > 2) & (cands[f"{h}_ETA"] < 5))
        assert np.all(cands[f"{h}_PT"] > 0)
        assert np.all(cands[f"{h}_IPCHI2_OWNPV"] >= 0)
        assert np.all(cands[f"{h}_TRACK_CHI2NDOF"] >= 0)
        assert np.all((cands[f"{h}_GhostProb"] >= 0) & (cands[f"{h}_GhostProb"] <= 1))
    assert np.all(cands["H1_PT"] >= cands["H2_PT"])
    for name in ("B_VTXCHI2", "B_FDCHI2_OWNPV", "B_IPCHI2_OWNPV", "B_FD_OWNPV", "B_DOCA"):
        assert np.all(cands[name] >= 0), name
    assert np.all(cands["B_MCORR"] >= cands["B_M"])
    assert np.all(cands["B_M"] >= 2 * simulation.M_PI * (1 - 1e-6))
    for name in CANDIDATE_BRANCHES:
        if cands[name].dtype.kind == "f":
            assert np.all(np.isfinite(cands[name])), name


@pytest.mark.parametrize("sample", ["signal_sample", "minbias_sample"])
def test_flight_distance_and_dira_from_the_vertices(
    sample: str, request: pytest.FixtureRequest
) -> None:
    """FD = |SV - PV| and DIRA = cos(angle between the summed track momenta and SV - PV), recomputed."""
    cands, _ = request.getfixturevalue(sample)
    p = np.stack([cands[f"H1_P{c}"].astype(np.float64) + cands[f"H2_P{c}"] for c in "XYZ"])
    d = np.stack(
        [cands[f"B_ENDVERTEX_{c}"].astype(np.float64) - cands[f"B_OWNPV_{c}"] for c in "XYZ"]
    )
    fd = np.linalg.norm(d, axis=0)
    # float32 vertex positions: directions are precise once the flight distance is above a mm
    far = fd > 1.0
    assert far.mean() > 0.5
    np.testing.assert_allclose(cands["B_FD_OWNPV"][far], fd[far], rtol=1e-4)
    angle = np.arccos(np.clip(np.sum(p * d, axis=0) / (np.linalg.norm(p, axis=0) * fd), -1, 1))
    np.testing.assert_allclose(np.arccos(cands["B_DIRA_OWNPV"][far]), angle[far], rtol=0, atol=1e-4)


def test_momentum_components_are_consistent(signal_sample) -> None:
    cands, _ = signal_sample
    px, py, pz = (cands[f"H1_P{c}"].astype(np.float64) for c in "XYZ")
    np.testing.assert_allclose(np.hypot(px, py), cands["H1_PT"], rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(px**2 + py**2 + pz**2), cands["H1_P"], rtol=1e-5)
    np.testing.assert_allclose(np.arcsinh(pz / np.hypot(px, py)), cands["H1_ETA"], rtol=1e-5)


def test_signal_truth(signal_sample) -> None:
    cands, events = signal_sample
    tm = cands["truth_matched"] == 1
    matched_events = cands["eventNumber"][tm]
    assert len(np.unique(matched_events)) == tm.sum()  # at most one per event
    assert tm.sum() > 0.99 * len(events["eventNumber"])
    np.testing.assert_array_equal(cands["mode"][tm], events["mode"][matched_events])
    # the event tree carries the signal b hadron's truth, also for events that lost the candidate
    for name in ("B_TRUETAU", "B_TRUEPT", "B_TRUEETA"):
        np.testing.assert_array_equal(cands[name][tm], events[name][matched_events])
    assert np.all(events["B_TRUEPT"] > 0) and np.all(events["B_TRUETAU"] > 0)
    assert np.all(cands["B_TRUETAU"][tm] > 0)
    assert np.all(cands["B_TRUEPT"][tm] > 0)
    assert np.all((cands["B_TRUEETA"][~tm] == 0) | (cands["mode"][~tm] == MODE_CODES["b_generic"]))
    # underlying-event candidates make event-level decisions differ from TOS
    assert (~tm).sum() > tm.sum()


def test_signal_mode_fractions(signal_sample) -> None:
    _, events = signal_sample
    n = len(events["mode"])
    for name, fraction in simulation.DEFAULT_SIGNAL_MODES.items():
        observed = np.mean(events["mode"] == SIGNAL_MODES[name])
        assert abs(observed - fraction) < 5 * np.sqrt(fraction * (1 - fraction) / n), name


def test_signal_mode_selection() -> None:
    _, events = simulate_events("signal", 100, seed=2, signal_modes={"Bs_KK": 2.0})
    np.testing.assert_array_equal(events["mode"], SIGNAL_MODES["Bs_KK"])


def test_signal_event_weights(signal_sample) -> None:
    _, events = signal_sample
    w = events["eventWeight"]
    assert np.all(w > 0)
    assert abs(w.mean() - 1) < 0.05
    assert 0.03 < w.std() < 0.2


@pytest.mark.parametrize(
    ("mode", "tau"), [("B0_Kpi", simulation.TAU_B0), ("Bs_KK", simulation.TAU_BS)]
)
def test_true_decay_time_is_exponential(signal_sample, mode: str, tau: float) -> None:
    cands, _ = signal_sample
    sel = (cands["truth_matched"] == 1) & (cands["mode"] == SIGNAL_MODES[mode])
    t = cands["B_TRUETAU"][sel].astype(np.float64)
    assert stats.kstest(t, stats.expon(scale=tau).cdf).pvalue > 1e-3
    assert abs(t.mean() - tau) < 5 * tau / np.sqrt(len(t))


def test_reconstructed_decay_time_tracks_true(signal_sample) -> None:
    cands, _ = signal_sample
    sel = (cands["truth_matched"] == 1) & (cands["mode"] == SIGNAL_MODES["B0_Kpi"])
    # B_TAU uses the pi-pi mass, a few per cent below the B0 mass
    ratio = np.median(cands["B_TAU"][sel] / cands["B_TRUETAU"][sel])
    assert 0.9 < ratio < 1.05


def test_mass_hypothesis_and_partial_reconstruction(signal_sample) -> None:
    cands, _ = signal_sample
    tm = cands["truth_matched"] == 1
    median = {
        code: np.median(cands["B_M"][tm & (cands["mode"] == code)])
        for code in SIGNAL_MODES.values()
    }
    kpi, kk, dpi = (median[SIGNAL_MODES[m]] for m in ("B0_Kpi", "Bs_KK", "B0_Dpi"))
    # pion mass for the kaon(s): peaks just below the b-hadron masses
    assert 5100 < kpi < simulation.M_B0
    assert 5100 < kk < simulation.M_BS
    assert dpi < 0.7 * kpi
    sel = tm & (cands["mode"] == SIGNAL_MODES["B0_Dpi"])
    assert np.median(cands["B_MCORR"][sel]) > 1.5 * dpi


def test_fully_reconstructed_signal_points_back(signal_sample) -> None:
    cands, _ = signal_sample
    tm = cands["truth_matched"] == 1
    full = tm & (cands["mode"] == SIGNAL_MODES["B0_Kpi"])
    partial = tm & (cands["mode"] == SIGNAL_MODES["B0_Dpi"])
    # a fully reconstructed candidate has IP = 0 up to resolution: chi2 with 2 dof
    assert np.median(cands["B_IPCHI2_OWNPV"][full]) == pytest.approx(
        stats.chi2(2).median(), rel=0.25
    )
    assert np.median(cands["B_IPCHI2_OWNPV"][partial]) > 10 * stats.chi2(2).median()
    # vertex chi2 of two tracks from one vertex: 1 dof
    assert np.median(cands["B_VTXCHI2"][full]) == pytest.approx(stats.chi2(1).median(), rel=0.15)
    assert np.median(cands["B_FDCHI2_OWNPV"][full]) > 100
    assert np.median(1 - cands["B_DIRA_OWNPV"][full]) < 1e-4


def test_chance_crossings_are_no_harder_than_charm_decays(minbias_sample) -> None:
    cands, _ = minbias_sample

    def mean_track_pt(code: int) -> float:
        sel = cands["mode"] == code
        return float(np.mean(np.r_[cands["H1_PT"][sel], cands["H2_PT"][sel]]))

    # unrelated tracks crossing by chance stand for charm/strange daughters and
    # their neighbours: a harder spectrum would fake high-pT b decays
    combinatorial = mean_track_pt(MODE_CODES["combinatorial"])
    assert combinatorial < 1.15 * mean_track_pt(MODE_CODES["charm_Dplus"])
    assert combinatorial < 1.15 * mean_track_pt(MODE_CODES["b_generic"])
    # the pointing mismatch is a transverse momentum of fixed size: the angle falls as 1/p
    sel = cands["mode"] == MODE_CODES["combinatorial"]
    angle = np.arccos(np.clip(cands["B_DIRA_OWNPV"][sel], -1.0, 1.0))
    p = cands["B_P"][sel]
    slow, fast = p < np.quantile(p, 0.25), p > np.quantile(p, 0.75)
    assert np.median(angle[fast]) < 0.5 * np.median(angle[slow])


def test_prompt_track_ipchi2_is_chi2_two_dof(minbias_sample) -> None:
    cands, _ = minbias_sample
    # one PV: no PV mis-association; the 2-dof chi2 has mean 2
    sel = (cands["mode"] == MODE_CODES["prompt"]) & (cands["nPVs"] == 1)
    ipchi2 = np.r_[cands["H1_IPCHI2_OWNPV"][sel], cands["H2_IPCHI2_OWNPV"][sel]]
    assert ipchi2.mean() == pytest.approx(stats.chi2(2).mean(), rel=0.15)
    assert np.median(ipchi2) == pytest.approx(stats.chi2(2).median(), rel=0.05)
    vtx = cands["B_VTXCHI2"][sel]
    assert np.median(vtx) == pytest.approx(stats.chi2(1).median(), rel=0.15)


def test_ghosts_look_like_ghosts(minbias_sample) -> None:
    cands, _ = minbias_sample
    ids = np.r_[cands["H1_ID"], cands["H2_ID"]]
    gp = np.r_[cands["H1_GhostProb"], cands["H2_GhostProb"]]
    chi2 = np.r_[cands["H1_TRACK_CHI2NDOF"], cands["H2_TRACK_CHI2NDOF"]]
    ghost = ids == 0
    assert np.median(gp[ghost]) > 0.5 > np.median(gp[~ghost])
    assert np.median(chi2[ghost]) > 1.5 * np.median(chi2[~ghost])
    assert np.median(chi2[~ghost]) == pytest.approx(1.0, abs=0.1)


def test_signal_separates_from_minbias(signal_sample, minbias_sample) -> None:
    def detached_fraction(cands: dict[str, np.ndarray], sel: np.ndarray) -> float:
        min_ip = np.minimum(cands["H1_IPCHI2_OWNPV"], cands["H2_IPCHI2_OWNPV"])
        return float(np.mean((min_ip[sel] > 16) & (cands["B_PT"][sel] > 2000)))

    sig, _ = signal_sample
    mb, _ = minbias_sample
    assert detached_fraction(sig, sig["truth_matched"] == 1) > 0.4
    assert detached_fraction(mb, np.ones(len(mb["B_PT"]), dtype=bool)) < 0.05


# --- files ----------------------------------------------------------------------------------
def read(paths: list, tree: str) -> dict[str, np.ndarray]:
    parts = []
    for path in paths:
        with uproot.open(path) as f:
            parts.append(f[tree].arrays(library="np"))
    return concat(parts)


def test_file_ranges_are_block_aligned(small_block: int) -> None:
    n = 7 * small_block + 5
    ranges = generate.file_ranges(n, 3)
    # 8 blocks shared 3, 3, 2; the last block holds only 5 events
    assert [count for _, count in ranges] == [3 * small_block, 3 * small_block, small_block + 5]
    assert all(first % small_block == 0 for first, _ in ranges)
    assert generate.file_ranges(small_block, 3) == [
        (0, small_block),
        (small_block, 0),
        (small_block, 0),
    ]
    with pytest.raises(ValueError, match="at least one output file"):
        generate.file_ranges(10, 0)


@pytest.mark.parametrize("kind", simulation.SAMPLE_KINDS)
def test_generate_files_independent_of_split(kind: str, small_block: int, tmp_path) -> None:
    n = 3 * small_block + 17
    one = generate.generate_files(kind, [tmp_path / "one" / "s.root"], n, seed=9, progress=False)
    three = generate.generate_files(
        kind, [tmp_path / "three" / f"s_{i}.root" for i in range(3)], n, seed=9, progress=False
    )
    assert [p.name for p in three] == ["s_0.root", "s_1.root", "s_2.root"]
    for tree in (generate.CANDIDATE_TREE, generate.EVENT_TREE):
        assert_columns_equal(read(one, tree), read(three, tree))
    cands, events = simulate_events(kind, n, seed=9)
    assert_columns_equal(read(three, generate.CANDIDATE_TREE), cands)
    assert_columns_equal(read(three, generate.EVENT_TREE), events)
    with uproot.open(three[0]) as f:
        assert set(f[generate.CANDIDATE_TREE].keys()) == set(CANDIDATE_BRANCHES)
        assert set(f[generate.EVENT_TREE].keys()) == set(EVENT_BRANCHES)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".root"]
    assert leftovers == []


def test_generate_files_writes_empty_trailing_files(small_block: int, tmp_path) -> None:
    paths = generate.generate_files(
        "minbias", [tmp_path / "a.root", tmp_path / "b.root"], 10, seed=1, progress=False
    )
    with uproot.open(paths[1]) as f:
        assert f[generate.EVENT_TREE].num_entries == 0
        assert f[generate.CANDIDATE_TREE].num_entries == 0
    assert len(read(paths, generate.EVENT_TREE)["eventNumber"]) == 10


def test_generate_files_leaves_nothing_on_failure(
    small_block: int, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = simulation.simulate_events_with_tracks

    def failing(kind, n_events, **kwargs):
        if kwargs.get("first_event", 0) >= small_block:
            msg = "disk on fire"
            raise RuntimeError(msg)
        return real(kind, n_events, **kwargs)

    monkeypatch.setattr(simulation, "simulate_events_with_tracks", failing)
    target = tmp_path / "out" / "mb.root"
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate.generate_files("minbias", [target], 2 * small_block, seed=1, progress=False)
    assert list(target.parent.iterdir()) == []


def test_generate_files_rejects_bad_paths(tmp_path) -> None:
    with pytest.raises(ValueError, match="at least one output path"):
        generate.generate_files("minbias", [], 10, seed=1, progress=False)
    with pytest.raises(ValueError, match="must be distinct"):
        generate.generate_files(
            "minbias", [tmp_path / "a.root", tmp_path / "a.root"], 10, seed=1, progress=False
        )
    with pytest.raises(ValueError, match="unknown sample kind"):
        generate.generate_files("zerobias", [tmp_path / "a.root"], 10, seed=1, progress=False)
    assert list(tmp_path.iterdir()) == []
