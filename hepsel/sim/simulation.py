"""Simulated LHCb-like two-track candidates for a topological-trigger study.

The generator produces, in the DecayTreeTuple convention, one row per
two-track candidate plus one row per event, for two kinds of sample:

``"signal"``
    b-hadron events, each holding one signal decay (``B0 -> K+ pi-``,
    ``Bs0 -> K+ K-`` or the partially reconstructed
    ``B0 -> D- pi+, D- -> K+ pi- pi-``) whose two candidate tracks are in the
    acceptance, plus underlying-event candidates (prompt pairs, pile-up
    pairs, displaced combinatorial pairs, ghosts, charm, strange, the other b
    hadron, and pairs of one signal track with one prompt track).
``"minbias"``
    minimum-bias crossings with a zero-truncated Poisson number of primary
    vertices and a Poisson number of candidates of each background category
    (codes in :data:`MODE_CODES`), including the ~0.3 % of crossings with a
    b-bbar pair.

Everything is vectorised numpy. Events are generated in blocks of
:data:`BLOCK` events, each seeded from ``(seed, kind, block index)``, so the
output for a given ``(kind, seed)`` does not depend on how a range of events
is split into calls or files. Units: MeV (energies, momenta, masses), mm
(lengths), ps (times). The physics model is documented in ``data/README.md``.

Examples
--------
>>> cands, events = simulate_events("minbias", 100, seed=1)
>>> len(events["eventNumber"])
100
>>> bool((cands["B_MCORR"] >= cands["B_M"]).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BLOCK",
    "CANDIDATE_BRANCHES",
    "DEFAULT_SIGNAL_MODES",
    "EVENT_BRANCHES",
    "MODE_CODES",
    "RUN_NUMBERS",
    "SAMPLE_KINDS",
    "SIGNAL_MODES",
    "TRACK_BRANCHES",
    "simulate_events",
    "simulate_events_with_tracks",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Columns = dict[str, NDArray[Any]]

SAMPLE_KINDS = ("signal", "minbias")
"""Kinds of sample :func:`simulate_events` can generate."""

BLOCK = 10_000
"""Events per independently seeded block; ``first_event`` must be a multiple of it."""

RUN_NUMBERS = {"signal": 100_001, "minbias": 200_001}
"""Default ``runNumber`` of each sample kind (constant within a sample)."""

_KIND_CODES = {"signal": 1, "minbias": 2}

SIGNAL_MODES = {"B0_Kpi": 1, "Bs_KK": 2, "B0_Dpi": 3}
"""Signal decay modes by name and their ``mode`` code.

``B0_Kpi``: B0 -> K+ pi-; ``Bs_KK``: Bs0 -> K+ K-; ``B0_Dpi``:
B0 -> D- pi+ with D- -> K+ pi- pi- (candidate = bachelor pi+ and one D
daughter). Charge conjugates are included.
"""

DEFAULT_SIGNAL_MODES = {"B0_Kpi": 0.4, "Bs_KK": 0.2, "B0_Dpi": 0.4}
"""Default mixture of signal modes (fractions of signal events)."""

MODE_CODES = {
    "not_signal_event": 0,
    **SIGNAL_MODES,
    "prompt": 10,
    "pileup": 11,
    "combinatorial": 12,
    "charm_D0": 20,
    "charm_Dplus": 21,
    "strange_KS": 30,
    "strange_Lambda": 31,
    "ghost": 40,
    "b_generic": 50,
    "signal_plus_prompt": 60,
}
"""Every value of the ``mode`` branches.

Candidate ``mode``: 1-3 truth-matched signal candidates; 10 prompt pair;
11 two tracks from different primary vertices; 12 two unrelated
tracks crossing by chance away from the PV; 20 D0 -> K pi; 21 two of the
three tracks of D+ -> K pi pi; 30 KS0 -> pi pi; 31 Lambda -> p pi; 40 one
ghost track with one prompt track; 50 two tracks of a generic b-hadron decay
(the ~0.3 % of minimum-bias crossings with a b-bbar pair, or the other b
of a signal event); 60 one signal-decay track with one prompt track. Event ``mode``: the
signal mode (1-3) of a signal event, 0 for minimum bias.
"""

CANDIDATE_BRANCHES: dict[str, np.dtype[Any]] = {
    name: np.dtype(dt)
    for name, dt in [
        ("runNumber", np.int32),
        ("eventNumber", np.int64),
        ("nCandidate", np.int32),
        ("totCandidates", np.int32),
        ("nTracks", np.int32),
        ("nPVs", np.int32),
        ("eventWeight", np.float32),
        ("B_PT", np.float32),
        ("B_ETA", np.float32),
        ("B_PHI", np.float32),
        ("B_P", np.float32),
        ("B_M", np.float32),
        ("B_MCORR", np.float32),
        ("B_DOCA", np.float32),
        ("B_VTXCHI2", np.float32),
        ("B_FD_OWNPV", np.float32),
        ("B_FDCHI2_OWNPV", np.float32),
        ("B_IPCHI2_OWNPV", np.float32),
        ("B_DIRA_OWNPV", np.float64),
        ("B_TAU", np.float32),
        ("B_ENDVERTEX_X", np.float32),
        ("B_ENDVERTEX_Y", np.float32),
        ("B_ENDVERTEX_Z", np.float32),
        ("B_OWNPV_X", np.float32),
        ("B_OWNPV_Y", np.float32),
        ("B_OWNPV_Z", np.float32),
        *[
            (f"{h}_{q}", np.int32 if q == "ID" else np.float32)
            for h in ("H1", "H2")
            for q in (
                "PT",
                "P",
                "PX",
                "PY",
                "PZ",
                "ETA",
                "IPCHI2_OWNPV",
                "TRACK_CHI2NDOF",
                "GhostProb",
                "ID",
            )
        ],
        ("truth_matched", np.int32),
        ("mode", np.int32),
        ("B_TRUETAU", np.float32),
        ("B_TRUEPT", np.float32),
        ("B_TRUEETA", np.float32),
    ]
}
"""Branches of the candidate tree ``DecayTree`` and their dtypes."""

EVENT_BRANCHES: dict[str, np.dtype[Any]] = {
    "runNumber": np.dtype(np.int32),
    "eventNumber": np.dtype(np.int64),
    "nPVs": np.dtype(np.int32),
    "nTracks": np.dtype(np.int32),
    "eventWeight": np.dtype(np.float32),
    "mode": np.dtype(np.int32),
    "B_TRUETAU": np.dtype(np.float32),
    "B_TRUEPT": np.dtype(np.float32),
    "B_TRUEETA": np.dtype(np.float32),
}
"""Branches of the event tree ``EventTuple`` and their dtypes.

``B_TRUETAU``, ``B_TRUEPT``, ``B_TRUEETA``: true proper time (ps), pT (MeV)
and pseudorapidity of a signal event's signal b hadron; 0 for minimum bias.
"""

# quantity of the candidate's H1_/H2_ branches -> track tree branch
_TRACK_QUANTITIES = {
    q: "TRACK_CHI2NDOF" if q == "TRACK_CHI2NDOF" else f"TRACK_{q}"
    for q in ("PT", "P", "ETA", "IPCHI2_OWNPV", "TRACK_CHI2NDOF", "GhostProb", "ID")
}

TRACK_BRANCHES: dict[str, np.dtype[Any]] = {
    name: np.dtype(dt)
    for name, dt in [
        ("runNumber", np.int32),
        ("eventNumber", np.int64),
        ("nTrack", np.int32),
        ("totTracks", np.int32),
        ("nTracks", np.int32),
        ("nPVs", np.int32),
        ("eventWeight", np.float32),
        *[(b, np.int32 if q == "ID" else np.float32) for q, b in _TRACK_QUANTITIES.items()],
        ("truth_matched", np.int32),
        ("mode", np.int32),
    ]
}
"""Branches of the track tree ``TrackTuple`` and their dtypes: one row per track.

The tracks are those of the two-track candidates, each once (see
:func:`simulate_events`), with the same event numbers as the other trees.
``TRACK_IPCHI2_OWNPV`` is computed against the primary vertex of the
candidate the track belongs to; ``truth_matched`` is 1 for the two tracks
of a signal decay's candidate (their TOS match) and ``mode`` is the code of
the candidate the track came from (:data:`MODE_CODES`).
"""

# --- physical constants (PDG, rounded as in PHYSICS.md) ---------------------
C_MM_PER_PS = 0.299792458
M_PI, M_K, M_P = 139.6, 493.7, 938.3
M_PI0 = 135.0
M_B0, M_BPLUS, M_BS, M_LB = 5279.7, 5279.3, 5366.9, 5619.6
M_D0, M_DPLUS = 1864.8, 1869.7
M_KS, M_LAMBDA = 497.6, 1115.7
TAU_B0, TAU_BPLUS, TAU_BS, TAU_LB = 1.519, 1.638, 1.52, 1.47
TAU_D0, TAU_DPLUS = 0.410, 1.040
TAU_KS, TAU_LAMBDA = 89.5, 263.0

# --- detector (LHCb Run 1-2 figures) -----------------------------------------
ETA_MIN, ETA_MAX = 2.0, 5.0
_SIGMA_PV_T, _SIGMA_PV_Z = 0.013, 0.070  # mm
_BEAM_T, _BEAM_Z = 0.040, 45.0  # mm, luminous region
# Non-Gaussian scattering tails: a small fraction of tracks is measured with a
# wider resolution than the one used in the chi2s.
_TAIL_FRACTION, _TAIL_SCALE = 0.015, 2.5
_MAX_STRANGE_FLIGHT = 500.0  # mm; further decays do not make long tracks

# --- event model --------------------------------------------------------------
_TRACKS_PER_PV, _TRACKS_SHAPE = 25.0, 3.0
_B_EXTRA_TRACKS = 12.0
_SOFT_PT_MIN, _SOFT_PT_MEAN = 100.0, 600.0  # MeV; exponential above the minimum
_GHOST_PT_MEAN = 1000.0
_GHOST_IP_MEAN = 0.25  # mm
_SOFT_SPECIES = (np.array([211, 321, 2212]), np.array([0.75, 0.15, 0.10]))
# Mean candidates per event scale with the track multiplicity (prompt, ghost)
# or with the number of PVs (decays); "per PV" means per nominal PV.
_RATE_PROMPT = 1.3
_RATE_PILEUP = 1.0  # per additional PV
_RATE_GHOST = 0.2
_RATE_COMBINATORIAL = 0.6
# Chance crossings involve tracks from charm and strange decays, so their pT is
# that of charm daughters (mean ~1.3 GeV, as the D+ -> K pi pi tracks here), not
# harder: with a b-hadron-like spectrum they would outnumber real b decays among
# detached, B-mass, high-pT pairs and make a classifier reject high-pT signal.
_COMBINATORIAL_PT_MEAN = 1200.0  # MeV
_COMBINATORIAL_SPREAD = 1.0  # in eta and in phi (rad) between the two tracks
# The pair misses whatever else left the crossing point: a transverse momentum of
# fixed size about the flight direction, so the pointing angle falls as 1/p (a
# fixed angle would give pT_miss, and the corrected mass, growing with p).
_COMBINATORIAL_PT_MISS = 300.0  # MeV
_COMBINATORIAL_FLIGHT = 8.0  # mm, mean distance of the crossing point from the PV
_RATE_D0 = 0.03
_D0_PARTIAL_FRACTION = 0.7
_RATE_DPLUS = 0.04
_RATE_KS = 0.25
_RATE_LAMBDA = 0.08
_RATE_B = 0.0019
_SIGNAL_SIDE_COMBOS = 0.8
_OTHER_B_PROBABILITY = 0.35
_B_PT_SHAPE, _B_PT_SCALE = 2.0, 2500.0  # gamma, mean 5 GeV
_D_PT_SHAPE, _D_PT_SCALE = 2.0, 1600.0
_V0_PT_SHAPE, _V0_PT_SCALE = 2.0, 500.0
_GEN_ETA = (1.5, 5.5)
_GENERIC_B_SPECIES = (
    np.array([M_B0, M_BPLUS, M_BS, M_LB]),
    np.array([TAU_B0, TAU_BPLUS, TAU_BS, TAU_LB]),
    np.array([0.4, 0.4, 0.1, 0.1]),
)
_GENERIC_B_MISSING_MASS = (M_PI0, 1500.0)  # MeV, flat range of the unreconstructed system
_WEIGHT_PT_POWER = 0.12


# ---------------------------------------------------------------------------
# kinematics kernels
# ---------------------------------------------------------------------------
def _norm(v: FloatArray) -> FloatArray:
    return np.sqrt(np.einsum("ni,ni->n", v, v))


def _dot(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.einsum("ni,ni->n", a, b)


def _unit(v: FloatArray) -> FloatArray:
    return v / _norm(v)[:, None]


def _from_pt_eta_phi(pt: FloatArray, eta: FloatArray, phi: FloatArray) -> FloatArray:
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)


def _pt(p: FloatArray) -> FloatArray:
    return np.hypot(p[:, 0], p[:, 1])


def _eta(p: FloatArray) -> FloatArray:
    return np.arcsinh(p[:, 2] / _pt(p))


def _in_acceptance(*momenta: FloatArray) -> NDArray[np.bool_]:
    ok = np.ones(len(momenta[0]), dtype=bool)
    for p in momenta:
        eta = _eta(p)
        ok &= (eta > ETA_MIN) & (eta < ETA_MAX)
    return ok


def _isotropic(rng: np.random.Generator, n: int) -> FloatArray:
    cos = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin = np.sqrt(1.0 - cos * cos)
    return np.stack([sin * np.cos(phi), sin * np.sin(phi), cos], axis=1)


def _perpendicular_gauss(rng: np.random.Generator, d: FloatArray) -> FloatArray:
    """Isotropic unit-variance 2D Gaussian in the plane normal to the unit vectors ``d``."""
    g = rng.standard_normal(d.shape)
    return g - _dot(g, d)[:, None] * d


def _breakup(m: FloatArray, m1: FloatArray | float, m2: FloatArray | float) -> FloatArray:
    arg = (m * m - (m1 + m2) ** 2) * (m * m - (m1 - m2) ** 2)
    return np.sqrt(np.maximum(arg, 0.0)) / (2.0 * m)


def _two_body(
    rng: np.random.Generator,
    parent: FloatArray,
    mass: FloatArray | float,
    m1: FloatArray | float,
    m2: FloatArray | float,
) -> tuple[FloatArray, FloatArray]:
    """Isotropic two-body decay of parents with lab momenta ``parent`` (n, 3), MeV.

    Masses are scalars or arrays of shape (n,); returns the two daughters' lab
    momenta, each (n, 3).
    """
    n = len(parent)
    m = np.broadcast_to(np.asarray(mass, dtype=np.float64), (n,))
    q = _breakup(m, m1, m2)
    k = q[:, None] * _isotropic(rng, n)
    energy = np.sqrt(_dot(parent, parent) + m * m)
    beta = parent / energy[:, None]
    gamma = energy / m
    out = []
    for sign, md in ((1.0, m1), (-1.0, m2)):
        ks = sign * k
        e_rest = np.sqrt(q * q + np.square(md))
        coef = gamma * gamma / (gamma + 1.0) * _dot(beta, ks) + gamma * e_rest
        out.append(ks + coef[:, None] * beta)
    return out[0], out[1]


def _three_body(
    rng: np.random.Generator,
    parent: FloatArray,
    mass: float,
    m1: float,
    m2: float,
    m3: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Three-body phase-space decay, dPhi3 ~ p3* p1* dm12 dOmega3 dOmega1*."""
    n = len(parent)
    lo, hi = m1 + m2, mass - m3

    def weight(m12: FloatArray) -> FloatArray:
        return _breakup(np.full_like(m12, mass), m12, m3) * _breakup(m12, m1, m2)

    w_max = 1.02 * float(weight(np.linspace(lo, hi, 401)).max())
    m12 = np.empty(n)
    filled = 0
    while filled < n:
        k = 2 * (n - filled) + 16
        trial = rng.uniform(lo, hi, k)
        kept = trial[rng.uniform(0.0, w_max, k) < weight(trial)][: n - filled]
        m12[filled : filled + len(kept)] = kept
        filled += len(kept)
    p12, p3 = _two_body(rng, parent, mass, m12, m3)
    p1, p2 = _two_body(rng, p12, m12, m1, m2)
    return p1, p2, p3


def _decay_vertex(
    rng: np.random.Generator,
    origin: FloatArray,
    p: FloatArray,
    mass: FloatArray | float,
    tau: FloatArray | float,
) -> tuple[FloatArray, FloatArray]:
    """Decay point (n, 3) in mm and proper time (n,) in ps; flight = beta*gamma*c*t."""
    t = rng.exponential(1.0, len(p)) * tau
    flight = p / np.asarray(mass)[..., None] * (C_MM_PER_PS * t)[:, None]
    return origin + flight, t


def _hadrons(rng: np.random.Generator, n: int, shape: float, scale: float) -> FloatArray:
    """Lab momenta (n, 3) with gamma-distributed pT (MeV) and flat eta in the generation range."""
    pt = rng.gamma(shape, scale, n)
    eta = rng.uniform(*_GEN_ETA, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    return _from_pt_eta_phi(pt, eta, phi)


def _soft_tracks(
    rng: np.random.Generator, n: int, mean_pt: float = _SOFT_PT_MEAN
) -> tuple[FloatArray, NDArray[np.int32]]:
    """Underlying-event tracks in the acceptance: momenta (n, 3) MeV and PDG ids (n,)."""
    pt = _SOFT_PT_MIN + rng.exponential(mean_pt, n)
    eta = rng.uniform(ETA_MIN, ETA_MAX, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    species, probs = _SOFT_SPECIES
    ids = species[np.searchsorted(np.cumsum(probs), rng.random(n) * probs.sum())]
    sign = np.where(rng.random(n) < 0.5, 1, -1)
    return _from_pt_eta_phi(pt, eta, phi), (ids * sign).astype(np.int32)


def _random_sign(rng: np.random.Generator, n: int) -> NDArray[np.int32]:
    return np.where(rng.random(n) < 0.5, 1, -1).astype(np.int32)


# ---------------------------------------------------------------------------
# true-level candidates
# ---------------------------------------------------------------------------
@dataclass
class _Truth:
    """True-level two-track candidates; one entry per candidate."""

    ev: IntArray  # event index within the block
    o1: FloatArray  # (n, 3) mm, true origin of track 1
    o2: FloatArray
    p1: FloatArray  # (n, 3) MeV, true momentum
    p2: FloatArray
    id1: NDArray[np.int32]
    id2: NDArray[np.int32]
    ghost1: NDArray[np.bool_]
    ghost2: NDArray[np.bool_]
    mode: NDArray[np.int32]
    truth: NDArray[np.int32]
    tau: FloatArray  # ps, true b proper time (0 for non-b)
    bpt: FloatArray
    beta: FloatArray

    @classmethod
    def build(
        cls,
        ev: IntArray,
        o1: FloatArray,
        o2: FloatArray,
        p1: FloatArray,
        p2: FloatArray,
        id1: NDArray[np.int32],
        id2: NDArray[np.int32],
        mode: int,
        *,
        ghost1: NDArray[np.bool_] | None = None,
        truth: int = 0,
        b: tuple[FloatArray, FloatArray, FloatArray] | None = None,
    ) -> _Truth:
        n = len(ev)
        zeros = np.zeros(n)
        tau, bpt, beta = b if b is not None else (zeros, zeros, zeros)
        return cls(
            ev=ev,
            o1=o1,
            o2=o2,
            p1=p1,
            p2=p2,
            id1=id1.astype(np.int32),
            id2=id2.astype(np.int32),
            ghost1=ghost1 if ghost1 is not None else np.zeros(n, dtype=bool),
            ghost2=np.zeros(n, dtype=bool),
            mode=np.full(n, mode, dtype=np.int32),
            truth=np.full(n, truth, dtype=np.int32),
            tau=tau,
            bpt=bpt,
            beta=beta,
        )

    def select(self, mask: NDArray[np.bool_] | NDArray[np.intp]) -> _Truth:
        return _Truth(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[_Truth]) -> _Truth:
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


@dataclass
class _Events:
    """Per-block event structure: primary vertices and multiplicities."""

    n: int
    npv: IntArray  # (E,)
    pv_off: IntArray  # (E,) index of each event's first PV
    pv_true: FloatArray  # (NPV, 3) mm
    pv_meas: FloatArray  # (NPV, 3) mm
    base_tracks: IntArray  # (E,) underlying-event long tracks

    def activity(self) -> FloatArray:
        return self.base_tracks / _TRACKS_PER_PV

    def pick_pv(self, rng: np.random.Generator, ev: IntArray) -> IntArray:
        return self.pv_off[ev] + (rng.random(len(ev)) * self.npv[ev]).astype(np.int64)


def _make_events(rng: np.random.Generator, n: int, pileup: float) -> _Events:
    # zero-truncated Poisson by inversion of the truncated CDF
    u = rng.uniform(math.exp(-pileup), 1.0, n)
    npv = _poisson_ppf(u, pileup)
    pv_off = np.concatenate([[0], np.cumsum(npv)[:-1]]).astype(np.int64)
    total = int(npv.sum())
    pv_true = np.column_stack(
        [
            rng.normal(0.0, _BEAM_T, total),
            rng.normal(0.0, _BEAM_T, total),
            rng.normal(0.0, _BEAM_Z, total),
        ]
    )
    pv_meas = pv_true + rng.standard_normal((total, 3)) * np.array(
        [_SIGMA_PV_T, _SIGMA_PV_T, _SIGMA_PV_Z]
    )
    # negative-binomial multiplicity: a gamma-Poisson mixture, shape summed over PVs
    mean = rng.gamma(_TRACKS_SHAPE * npv, _TRACKS_PER_PV / _TRACKS_SHAPE)
    base = rng.poisson(mean).astype(np.int64)
    return _Events(n, npv, pv_off, pv_true, pv_meas, base)


def _poisson_ppf(u: FloatArray, mu: float) -> IntArray:
    """Smallest k with Poisson CDF(k; mu) >= u, vectorised over ``u`` in (0, 1)."""
    kmax = int(mu + 12.0 * math.sqrt(mu) + 20)
    k = np.arange(kmax + 1)
    log_pmf = k * math.log(mu) - mu - np.array([math.lgamma(i + 1.0) for i in k])
    cdf = np.cumsum(np.exp(log_pmf))
    return np.minimum(np.searchsorted(cdf, u), kmax).astype(np.int64)


def _repeat_events(counts: IntArray) -> IntArray:
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def _produced(
    rng: np.random.Generator, evs: _Events, mean: NDArray[np.floating[Any]]
) -> tuple[IntArray, int, FloatArray]:
    """Candidates from Poisson counts of ``mean`` per event: their events, number and true PVs (mm)."""
    ev = _repeat_events(rng.poisson(mean))
    return ev, len(ev), evs.pv_true[evs.pick_pv(rng, ev)]


def _decaying(
    rng: np.random.Generator,
    evs: _Events,
    rate: float,
    pt: tuple[float, float],
    mass: float,
    tau: float,
) -> tuple[IntArray, int, FloatArray, FloatArray, FloatArray]:
    """Hadrons made at ``rate`` per PV: events, number, true PVs (mm), momenta (MeV; pT shape and scale ``pt``), decay vertices (mm)."""
    ev, n, pv = _produced(rng, evs, rate * evs.npv)
    p = _hadrons(rng, n, *pt)
    sv, _ = _decay_vertex(rng, pv, p, mass, tau)
    return ev, n, pv, p, sv


def _prompt(rng: np.random.Generator, evs: _Events) -> _Truth:
    ev = _repeat_events(rng.poisson(_RATE_PROMPT * evs.activity()))
    o = evs.pv_true[evs.pick_pv(rng, ev)]
    p1, id1 = _soft_tracks(rng, len(ev))
    p2, id2 = _soft_tracks(rng, len(ev))
    return _Truth.build(ev, o, o.copy(), p1, p2, id1, id2, MODE_CODES["prompt"])


def _pileup(rng: np.random.Generator, evs: _Events) -> _Truth:
    ev = _repeat_events(rng.poisson(_RATE_PILEUP * (evs.npv - 1)))
    npv = evs.npv[ev]
    a = (rng.random(len(ev)) * npv).astype(np.int64)
    b = (rng.random(len(ev)) * (npv - 1)).astype(np.int64)
    b += b >= a
    p1, id1 = _soft_tracks(rng, len(ev))
    p2, id2 = _soft_tracks(rng, len(ev))
    o1 = evs.pv_true[evs.pv_off[ev] + a]
    o2 = evs.pv_true[evs.pv_off[ev] + b]
    return _Truth.build(ev, o1, o2, p1, p2, id1, id2, MODE_CODES["pileup"])


def _displaced_combinatorial(rng: np.random.Generator, evs: _Events) -> _Truth:
    """Two unrelated tracks whose trajectories cross by chance away from the PV.

    Only the crossings that a loose vertexing would keep are generated: both
    tracks pass through a common point displaced from the PV along roughly the
    pair's direction, as for a track from a charm or strange decay (or a
    material interaction) combined with a nearby track of the same jet.
    """
    ev, n, pv = _produced(rng, evs, _RATE_COMBINATORIAL * evs.activity())
    p1, id1 = _soft_tracks(rng, n, _COMBINATORIAL_PT_MEAN)
    eta2 = np.clip(
        _eta(p1) + rng.normal(0.0, _COMBINATORIAL_SPREAD, n), ETA_MIN + 1e-3, ETA_MAX - 1e-3
    )
    phi2 = np.arctan2(p1[:, 1], p1[:, 0]) + rng.normal(0.0, _COMBINATORIAL_SPREAD, n)
    pt2 = _SOFT_PT_MIN + rng.exponential(_COMBINATORIAL_PT_MEAN, n)
    p2 = _from_pt_eta_phi(pt2, eta2, phi2)
    _, id2 = _soft_tracks(rng, n)
    ptot = p1 + p2
    angle = _COMBINATORIAL_PT_MISS / _norm(ptot)
    axis = _unit(_unit(ptot) + angle[:, None] * _perpendicular_gauss(rng, _unit(ptot)))
    sv = pv + axis * rng.exponential(_COMBINATORIAL_FLIGHT, n)[:, None]
    return _Truth.build(ev, sv, sv.copy(), p1, p2, id1, id2, MODE_CODES["combinatorial"])


def _ghosts(rng: np.random.Generator, evs: _Events) -> _Truth:
    ev, n, pv = _produced(rng, evs, _RATE_GHOST * evs.activity())
    p1, _ = _soft_tracks(rng, n, _GHOST_PT_MEAN)
    # a fake track does not point anywhere in particular: random impact parameter
    offset = (
        _unit(_perpendicular_gauss(rng, _unit(p1))) * rng.exponential(_GHOST_IP_MEAN, n)[:, None]
    )
    p2, id2 = _soft_tracks(rng, n)
    return _Truth.build(
        ev,
        pv + offset,
        pv.copy(),
        p1,
        p2,
        np.zeros(n, dtype=np.int32),
        id2,
        MODE_CODES["ghost"],
        ghost1=np.ones(n, dtype=bool),
    )


def _charm_d0(rng: np.random.Generator, evs: _Events) -> _Truth:
    ev, n, _, pd, sv = _decaying(rng, evs, _RATE_D0, (_D_PT_SHAPE, _D_PT_SCALE), M_D0, TAU_D0)
    pk, ppi = _two_body(rng, pd, M_D0, M_K, M_PI)
    # most D0 decays leave neutrals unreconstructed: K- pi+ pi0 stands for them
    pk3, ppi3, _ = _three_body(rng, pd, M_D0, M_K, M_PI, M_PI0)
    partial = rng.random(n) < _D0_PARTIAL_FRACTION
    pk = np.where(partial[:, None], pk3, pk)
    ppi = np.where(partial[:, None], ppi3, ppi)
    sign = _random_sign(rng, n)
    cand = _Truth.build(ev, sv, sv.copy(), pk, ppi, -321 * sign, 211 * sign, MODE_CODES["charm_D0"])
    return cand.select(_in_acceptance(pk, ppi))


def _charm_dplus(rng: np.random.Generator, evs: _Events) -> _Truth:
    pt = (_D_PT_SHAPE, _D_PT_SCALE)
    ev, n, _, pd, sv = _decaying(rng, evs, _RATE_DPLUS, pt, M_DPLUS, TAU_DPLUS)
    pk, ppi1, ppi2 = _three_body(rng, pd, M_DPLUS, M_K, M_PI, M_PI)
    sign = _random_sign(rng, n)
    return _all_pairs(
        ev,
        np.stack([sv, sv, sv]),
        np.stack([pk, ppi1, ppi2]),
        np.stack([-321 * sign, 211 * sign, 211 * sign]),
        MODE_CODES["charm_Dplus"],
    )


def _all_pairs(
    ev: IntArray,
    origins: FloatArray,
    momenta: FloatArray,
    ids: NDArray[np.int32],
    mode: int,
    b: tuple[FloatArray, FloatArray, FloatArray] | None = None,
) -> _Truth:
    """Every pair of the k tracks of each decay whose two tracks are in the acceptance.

    ``origins`` and ``momenta`` have shape (k, n, 3), ``ids`` (k, n).
    """
    k = len(momenta)
    accepted = np.stack([_in_acceptance(p) for p in momenta])
    parts = []
    for i in range(k):
        for j in range(i + 1, k):
            keep = accepted[i] & accepted[j]
            parts.append(
                _Truth.build(
                    ev[keep],
                    origins[i][keep],
                    origins[j][keep],
                    momenta[i][keep],
                    momenta[j][keep],
                    ids[i][keep],
                    ids[j][keep],
                    mode,
                    b=None if b is None else (b[0][keep], b[1][keep], b[2][keep]),
                )
            )
    return _Truth.concat(parts)


def _strange(
    rng: np.random.Generator,
    evs: _Events,
    rate: float,
    mass: float,
    tau: float,
    m1: float,
    id1: int,
    mode: str,
) -> _Truth:
    ev, n, pv, pv0, sv = _decaying(rng, evs, rate, (_V0_PT_SHAPE, _V0_PT_SCALE), mass, tau)
    pa, pb = _two_body(rng, pv0, mass, m1, M_PI)
    sign = _random_sign(rng, n)
    cand = _Truth.build(ev, sv, sv.copy(), pa, pb, id1 * sign, -211 * sign, MODE_CODES[mode])
    short = _norm(sv - pv) < _MAX_STRANGE_FLIGHT
    return cand.select(short & _in_acceptance(pa, pb))


@dataclass
class _BDecay:
    """Tracks of b-hadron decays: up to four visible tracks per decay."""

    origins: FloatArray  # (4, n, 3)
    momenta: FloatArray  # (4, n, 3)
    ids: NDArray[np.int32]  # (4, n)
    tau: FloatArray
    pt: FloatArray
    eta: FloatArray


def _generic_b(rng: np.random.Generator, pv: FloatArray) -> _BDecay:
    """b -> D pi X (X unreconstructed, 135-1500 MeV), D -> K pi pi, for b hadrons made at ``pv`` (n, 3)."""
    n = len(pv)
    masses, taus, probs = _GENERIC_B_SPECIES
    species = np.searchsorted(np.cumsum(probs), rng.random(n) * probs.sum())
    pb = _hadrons(rng, n, _B_PT_SHAPE, _B_PT_SCALE)
    mb = masses[species]
    bv, t = _decay_vertex(rng, pv, pb, mb, taus[species])
    missing = rng.uniform(*_GENERIC_B_MISSING_MASS, n)
    pd, pbach, _ = _three_body_var(rng, pb, mb, M_DPLUS, M_PI, missing)
    dv, _ = _decay_vertex(rng, bv, pd, M_DPLUS, TAU_DPLUS)
    pk, ppi1, ppi2 = _three_body(rng, pd, M_DPLUS, M_K, M_PI, M_PI)
    sign = _random_sign(rng, n)
    return _BDecay(
        origins=np.stack([bv, dv, dv, dv]),
        momenta=np.stack([pbach, pk, ppi1, ppi2]),
        ids=np.stack([211 * sign, -321 * sign, 211 * sign, 211 * sign]).astype(np.int32),
        tau=t,
        pt=_pt(pb),
        eta=_eta(pb),
    )


def _three_body_var(
    rng: np.random.Generator,
    parent: FloatArray,
    mass: FloatArray,
    m1: float,
    m2: float,
    m3: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Three-body phase space with per-decay parent and third-daughter masses (n,).

    m23 is drawn by accept-reject with a weight bound taken at the largest
    parent mass and the smallest m3, where p1* q23 is largest.
    """
    n = len(parent)
    if n == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3))
    lo = m2 + m3
    hi = mass - m1

    def weight(m23: FloatArray, m: FloatArray, mx: FloatArray | float) -> FloatArray:
        return _breakup(m, m1, m23) * _breakup(m23, m2, mx)

    grid = np.linspace(float(lo.min()), float(hi.max()), 401)
    w_max = 1.02 * float(weight(grid, np.full_like(grid, float(mass.max())), float(m3.min())).max())
    m23 = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        trial = rng.uniform(lo[todo], hi[todo])
        ok = rng.uniform(0.0, w_max, len(todo)) < weight(trial, mass[todo], m3[todo])
        m23[todo[ok]] = trial[ok]
        todo = todo[~ok]
    p1, p23 = _two_body(rng, parent, mass, m1, m23)
    p2, p3 = _two_body(rng, p23, m23, m2, m3)
    return p1, p2, p3


def _generic_b_candidates(rng: np.random.Generator, ev: IntArray, pv: FloatArray) -> _Truth:
    """All two-track pairs in the acceptance of generic b decays produced at ``pv`` (n, 3)."""
    dec = _generic_b(rng, pv)
    return _all_pairs(
        ev, dec.origins, dec.momenta, dec.ids, MODE_CODES["b_generic"], b=(dec.tau, dec.pt, dec.eta)
    )


def _signal_decays(
    rng: np.random.Generator, code: int, pv: FloatArray
) -> tuple[_Truth, FloatArray]:
    """Signal decays with both candidate tracks in the acceptance (accept-reject).

    Returns the truth-matched candidates (event index 0..n-1, to be replaced by
    the caller) and the b-hadron pT (n,) in MeV.
    """
    n = len(pv)
    parts: list[_Truth] = []
    filled = 0
    while filled < n or not parts:
        k = 2 * (n - filled) + 16
        origin = np.zeros((k, 3))
        pb = _hadrons(rng, k, _B_PT_SHAPE, _B_PT_SCALE)
        mass, tau = (M_BS, TAU_BS) if code == SIGNAL_MODES["Bs_KK"] else (M_B0, TAU_B0)
        bv, t = _decay_vertex(rng, origin, pb, mass, tau)
        sign = _random_sign(rng, k)
        if code == SIGNAL_MODES["B0_Kpi"]:
            p1, p2 = _two_body(rng, pb, mass, M_K, M_PI)
            o1, o2, id1, id2 = bv, bv.copy(), 321 * sign, -211 * sign
        elif code == SIGNAL_MODES["Bs_KK"]:
            p1, p2 = _two_body(rng, pb, mass, M_K, M_K)
            o1, o2, id1, id2 = bv, bv.copy(), 321 * sign, -321 * sign
        else:
            pd, p1 = _two_body(rng, pb, mass, M_DPLUS, M_PI)
            dv, _ = _decay_vertex(rng, bv, pd, M_DPLUS, TAU_DPLUS)
            pk, ppi1, ppi2 = _three_body(rng, pd, M_DPLUS, M_K, M_PI, M_PI)
            which = (rng.random(k) * 3).astype(np.int64)
            rows = np.arange(k)
            p2 = np.stack([pk, ppi1, ppi2])[which, rows]
            id2 = np.stack([321 * sign, -211 * sign, -211 * sign])[which, rows]
            o1, o2, id1 = bv, dv, 211 * sign
        cand = _Truth.build(
            np.zeros(k, dtype=np.int64),
            o1,
            o2,
            p1,
            p2,
            id1,
            id2,
            code,
            truth=1,
            b=(t, _pt(pb), _eta(pb)),
        )
        cand = cand.select(_in_acceptance(p1, p2))
        cand = cand.select(np.arange(len(cand.ev)) < n - filled)
        parts.append(cand)
        filled += len(cand.ev)
    out = _Truth.concat(parts)
    out.o1 = out.o1 + pv
    out.o2 = out.o2 + pv
    return out, out.bpt


def _underlying(rng: np.random.Generator, evs: _Events) -> list[_Truth]:
    return [
        _prompt(rng, evs),
        _pileup(rng, evs),
        _ghosts(rng, evs),
        _displaced_combinatorial(rng, evs),
        _charm_d0(rng, evs),
        _charm_dplus(rng, evs),
        _strange(rng, evs, _RATE_KS, M_KS, TAU_KS, M_PI, 211, "strange_KS"),
        _strange(rng, evs, _RATE_LAMBDA, M_LAMBDA, TAU_LAMBDA, M_P, 2212, "strange_Lambda"),
    ]


# ---------------------------------------------------------------------------
# detector response
# ---------------------------------------------------------------------------
def _ip_resolution(pt: FloatArray) -> FloatArray:
    """Impact-parameter resolution per transverse component, (15 + 29/pT[GeV]) um, in mm."""
    return 0.015 + 0.029 / (pt / 1000.0)


def _momentum_resolution(p: FloatArray) -> FloatArray:
    """Relative momentum resolution: 0.5 % at low momentum rising to 1.0 % at 200 GeV."""
    return 0.005 + 0.005 * p / 200_000.0


# Reconstruction works on component-major vectors of shape (3, n): per-component
# arithmetic on contiguous rows is several times faster than on (n, 3) arrays.
def _vdot(a: FloatArray, b: FloatArray) -> FloatArray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _vnorm(a: FloatArray) -> FloatArray:
    return np.sqrt(_vdot(a, a))


def _vcross(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.stack(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def _vperp_gauss(rng: np.random.Generator, d: FloatArray) -> FloatArray:
    g = rng.standard_normal(d.shape)
    return g - _vdot(g, d) * d


def _pv_projection(v: FloatArray) -> FloatArray:
    """v^T C_PV v for the diagonal PV covariance; v of shape (3, n) in mm, result mm^4."""
    return _SIGMA_PV_T**2 * (v[0] ** 2 + v[1] ** 2) + _SIGMA_PV_Z**2 * v[2] ** 2


def _sym_quad(c: tuple[FloatArray, ...], v: FloatArray) -> FloatArray:
    """v^T C v for symmetric C given as (xx, xy, xz, yy, yz, zz)."""
    xx, xy, xz, yy, yz, zz = c
    x, y, z = v
    return xx * x * x + yy * y * y + zz * z * z + 2.0 * (xy * x * y + xz * x * z + yz * y * z)


def _sym_matvec(c: tuple[FloatArray, ...], v: FloatArray) -> FloatArray:
    xx, xy, xz, yy, yz, zz = c
    x, y, z = v
    return np.stack([xx * x + xy * y + xz * z, xy * x + yy * y + yz * z, xz * x + yz * y + zz * z])


def _sym_inverse(c: tuple[FloatArray, ...]) -> tuple[FloatArray, ...]:
    xx, xy, xz, yy, yz, zz = c
    cxx = yy * zz - yz * yz
    cxy = xz * yz - xy * zz
    cxz = xy * yz - xz * yy
    cyy = xx * zz - xz * xz
    cyz = xy * xz - xx * yz
    czz = xx * yy - xy * xy
    det = xx * cxx + xy * cxy + xz * cxz
    return tuple(x / det for x in (cxx, cxy, cxz, cyy, cyz, czz))


def _chi2_of(v: FloatArray, var_along: FloatArray) -> FloatArray:
    """|v|^2 / sigma^2 along v, given v^T C v (n,) for v of shape (3, n)."""
    v2 = _vdot(v, v)
    return np.divide(v2 * v2, var_along, out=np.zeros_like(v2), where=var_along > 0)


def _ip_vector(point: FloatArray, direction: FloatArray, target: FloatArray) -> FloatArray:
    """Vector from the line (point, unit direction) to ``target``, normal to the line; (3, n)."""
    d = target - point
    return d - _vdot(d, direction) * direction


@dataclass
class _Track:
    p: FloatArray  # (3, n) reconstructed momentum, MeV
    d: FloatArray  # (3, n) unit direction
    r: FloatArray  # (3, n) point on the measured trajectory, mm
    sigma: FloatArray  # (n,) nominal track-only position resolution per component, mm
    chi2ndof: FloatArray
    ghost_prob: FloatArray


def _measure_track(
    rng: np.random.Generator, p_true: FloatArray, origin: FloatArray, ghost: NDArray[np.bool_]
) -> _Track:
    """Measured trajectory of tracks with true momenta and origins of shape (3, n)."""
    n = p_true.shape[1]
    pmag = _vnorm(p_true)
    d_true = p_true / pmag
    # the quoted IP resolution includes the PV; the track alone is what remains
    sigma_ip = _ip_resolution(np.hypot(p_true[0], p_true[1]))
    sigma = np.sqrt(sigma_ip**2 - _SIGMA_PV_T**2)
    scale = np.where(rng.random(n) < _TAIL_FRACTION, _TAIL_SCALE, 1.0)
    r = origin + sigma * scale * _vperp_gauss(rng, d_true)
    slope_res = 2e-5 + 0.4 / pmag  # rad: resolution floor plus multiple scattering
    d = d_true + slope_res * _vperp_gauss(rng, d_true)
    d /= _vnorm(d)
    p = d * (pmag * (1.0 + _momentum_resolution(pmag) * rng.standard_normal(n)))
    chi2ndof = _track_chi2ndof(rng, ghost)
    ghost_prob = _ghost_prob(rng, ghost)
    return _Track(p, d, r, sigma, chi2ndof, ghost_prob)


def _track_chi2ndof(rng: np.random.Generator, ghost: NDArray[np.bool_]) -> FloatArray:
    """Track fit chi2/ndof (n,): chi2 with 15-45 dof over ndof, times a spread factor.

    The chi2 is drawn with the Wilson-Hilferty cube-of-normal approximation,
    accurate to well below a percent for these ndof and far cheaper than a
    gamma draw. Ghosts get a factor ~2 with a long tail, real tracks ~1.
    """
    n = len(ghost)
    ndof = rng.integers(15, 46, n)
    a = 2.0 / (9.0 * ndof)
    z = rng.standard_normal((2, n))
    chi2ndof = np.maximum(1.0 - a + z[0] * np.sqrt(a), 0.0) ** 3
    log_scale = np.where(ghost, math.log(2.0) + 0.45 * z[1], 0.08 * z[1])
    return chi2ndof * np.exp(log_scale)


def _ghost_prob(rng: np.random.Generator, ghost: NDArray[np.bool_]) -> FloatArray:
    """Ghost probability (n,) from a Kumaraswamy (Beta-like) law, inverted analytically.

    Real tracks: a=0.7, b=8 (mean ~0.06, peaked at 0); ghosts: a=2.5, b=0.9
    (mean ~0.7, peaked near 1).
    """
    a = np.where(ghost, 2.5, 0.7)
    b = np.where(ghost, 0.9, 8.0)
    u = rng.random(len(ghost))
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a)


def _invariant_mass(p1: FloatArray, p2: FloatArray, m1: float, m2: float) -> FloatArray:
    """Invariant mass (n,) in MeV of two momenta (3, n) with mass hypotheses m1, m2."""
    e = np.sqrt(_vdot(p1, p1) + m1 * m1) + np.sqrt(_vdot(p2, p2) + m2 * m2)
    ptot = p1 + p2
    return np.sqrt(np.maximum(e * e - _vdot(ptot, ptot), 0.0))


def _reconstruct(
    rng: np.random.Generator, truth: _Truth, evs: _Events
) -> tuple[Columns, dict[str, list[NDArray[Any]]]]:
    """Detector response and DecayTreeTuple-like quantities of every candidate.

    Returns the candidate columns and, per track quantity, the values of the
    candidates' first and second truth-level track (before H1/H2 are ordered
    by pT), from which the track tree is made.
    """
    t1 = _measure_track(rng, truth.p1.T.copy(), truth.o1.T.copy(), truth.ghost1)
    t2 = _measure_track(rng, truth.p2.T.copy(), truth.o2.T.copy(), truth.ghost2)

    # two-track vertex: weighted least-squares point closest to both trajectories,
    # A = sum_i w_i (1 - d_i d_i^T), solved relative to track 1 for precision
    w1, w2 = 1.0 / t1.sigma**2, 1.0 / t2.sigma**2
    (ax, ay, az), (bx, by, bz) = t1.d, t2.d
    a = (
        w1 * (1 - ax * ax) + w2 * (1 - bx * bx),
        -(w1 * ax * ay + w2 * bx * by),
        -(w1 * ax * az + w2 * bx * bz),
        w1 * (1 - ay * ay) + w2 * (1 - by * by),
        -(w1 * ay * az + w2 * by * bz),
        w1 * (1 - az * az) + w2 * (1 - bz * bz),
    )
    c_sv = _sym_inverse(a)
    dr = t2.r - t1.r
    sv = t1.r + _sym_matvec(c_sv, w2 * (dr - _vdot(dr, t2.d) * t2.d))
    res1 = _ip_vector(t1.r, t1.d, sv)
    res2 = _ip_vector(t2.r, t2.d, sv)
    vtx_chi2 = _vdot(res1, res1) * w1 + _vdot(res2, res2) * w2
    normal = _vcross(t1.d, t2.d)
    doca = np.abs(_vdot(dr, normal)) / _vnorm(normal)

    ptot = t1.p + t2.p
    pmag = _vnorm(ptot)
    u = ptot / pmag

    # own PV: the PV of the event with the smallest candidate IP chi2
    npv = evs.npv[truth.ev]
    first = evs.pv_off[truth.ev]
    pv_meas = evs.pv_meas.T

    def cand_ipchi2(sel: IntArray, j: int) -> FloatArray:
        ipv = _ip_vector(sv[:, sel], u[:, sel], pv_meas[:, first[sel] + j])
        c = tuple(x[sel] for x in c_sv)
        return _chi2_of(ipv, _sym_quad(c, ipv) + _pv_projection(ipv))

    everything = np.arange(len(pmag))
    best_chi2 = cand_ipchi2(everything, 0)
    own = first.copy()
    # only the few candidates of multi-PV events need the other PVs
    for j in range(1, int(evs.npv.max(initial=1))):
        sel = np.flatnonzero(npv > j)
        chi2 = cand_ipchi2(sel, j)
        better = chi2 < best_chi2[sel]
        best_chi2[sel[better]] = chi2[better]
        own[sel[better]] = first[sel[better]] + j
    pv = pv_meas[:, own]

    flight = sv - pv
    fd = _vnorm(flight)
    fdchi2 = _chi2_of(flight, _sym_quad(c_sv, flight) + _pv_projection(flight))
    dira = _vdot(u, flight) / fd
    mass = _invariant_mass(t1.p, t2.p, M_PI, M_PI)
    pt_miss = _vnorm(_vcross(ptot, flight / fd))
    mcorr = np.sqrt(mass**2 + pt_miss**2) + pt_miss
    tau = fd * mass / (pmag * C_MM_PER_PS)

    track_cols: dict[str, list[NDArray[Any]]] = {}
    for t, pid in ((t1, truth.id1), (t2, truth.id2)):
        ipv = _ip_vector(t.r, t.d, pv)
        ipchi2 = _chi2_of(ipv, t.sigma**2 * _vdot(ipv, ipv) + _pv_projection(ipv))
        pt = np.hypot(t.p[0], t.p[1])
        for name, value in (
            ("PT", pt),
            ("P", _vnorm(t.p)),
            ("PX", t.p[0]),
            ("PY", t.p[1]),
            ("PZ", t.p[2]),
            ("ETA", np.arcsinh(t.p[2] / pt)),
            ("IPCHI2_OWNPV", ipchi2),
            ("TRACK_CHI2NDOF", t.chi2ndof),
            ("GhostProb", t.ghost_prob),
            ("ID", pid),
        ):
            track_cols.setdefault(name, []).append(value)

    # H1 is the track of higher transverse momentum
    swap = track_cols["PT"][1] > track_cols["PT"][0]
    cols: Columns = {}
    for name, (v1, v2) in track_cols.items():
        cols[f"H1_{name}"] = np.where(swap, v2, v1)
        cols[f"H2_{name}"] = np.where(swap, v1, v2)

    b_pt = np.hypot(ptot[0], ptot[1])
    cols.update(
        {
            "B_PT": b_pt,
            "B_ETA": np.arcsinh(ptot[2] / b_pt),
            "B_PHI": np.arctan2(ptot[1], ptot[0]),
            "B_P": pmag,
            "B_M": mass,
            "B_MCORR": mcorr,
            "B_DOCA": doca,
            "B_VTXCHI2": vtx_chi2,
            "B_FD_OWNPV": fd,
            "B_FDCHI2_OWNPV": fdchi2,
            "B_IPCHI2_OWNPV": best_chi2,
            "B_DIRA_OWNPV": np.clip(dira, -1.0, 1.0),
            "B_TAU": tau,
            "B_ENDVERTEX_X": sv[0],
            "B_ENDVERTEX_Y": sv[1],
            "B_ENDVERTEX_Z": sv[2],
            "B_OWNPV_X": pv[0],
            "B_OWNPV_Y": pv[1],
            "B_OWNPV_Z": pv[2],
            "truth_matched": truth.truth,
            "mode": truth.mode,
            "B_TRUETAU": truth.tau,
            "B_TRUEPT": truth.bpt,
            "B_TRUEETA": truth.beta,
        }
    )
    return cols, track_cols


# ---------------------------------------------------------------------------
# blocks
# ---------------------------------------------------------------------------
def _signal_block(
    rng: np.random.Generator, n: int, pileup: float, fractions: FloatArray
) -> tuple[_Truth, _Events, IntArray, FloatArray, IntArray]:
    evs = _make_events(rng, n, pileup)
    codes = np.array(list(SIGNAL_MODES.values()), dtype=np.int32)
    event_mode = codes[np.searchsorted(np.cumsum(fractions), rng.random(n) * fractions.sum())]
    pv0 = evs.pv_true[evs.pv_off]
    parts = []
    bpt = np.zeros(n)
    for code in codes:
        idx = np.flatnonzero(event_mode == code)
        cand, pt = _signal_decays(rng, int(code), pv0[idx])
        cand.ev = idx
        bpt[idx] = pt
        parts.append(cand)
    signal = _Truth.concat(parts)
    signal = signal.select(np.argsort(signal.ev, kind="stable"))

    # one signal track combined with a prompt track of the b production vertex
    ev = _repeat_events(rng.poisson(_SIGNAL_SIDE_COMBOS, n))
    which = rng.random(len(ev)) < 0.5
    p_sig = np.where(which[:, None], signal.p1[ev], signal.p2[ev])
    o_sig = np.where(which[:, None], signal.o1[ev], signal.o2[ev])
    id_sig = np.where(which, signal.id1[ev], signal.id2[ev])
    p_ue, id_ue = _soft_tracks(rng, len(ev))
    side = _Truth.build(
        ev, o_sig, pv0[ev], p_sig, p_ue, id_sig, id_ue, MODE_CODES["signal_plus_prompt"]
    )

    ev_b = np.flatnonzero(rng.random(n) < _OTHER_B_PROBABILITY)
    other_b = _generic_b_candidates(rng, ev_b, pv0[ev_b])

    truth = _Truth.concat([signal, side, other_b, *_underlying(rng, evs)])
    ntracks = evs.base_tracks + rng.poisson(_B_EXTRA_TRACKS, n)
    weight = (bpt / (_B_PT_SHAPE * _B_PT_SCALE)) ** _WEIGHT_PT_POWER
    # normalise to the analytic mean of x^a for x ~ Gamma(k)/k, so <w> = 1
    k = _B_PT_SHAPE
    weight /= math.gamma(k + _WEIGHT_PT_POWER) / math.gamma(k) / k**_WEIGHT_PT_POWER
    return truth, evs, ntracks, weight, event_mode.astype(np.int64)


def _minbias_block(
    rng: np.random.Generator, n: int, pileup: float
) -> tuple[_Truth, _Events, IntArray, FloatArray, IntArray]:
    evs = _make_events(rng, n, pileup)
    nb = rng.poisson(_RATE_B * evs.npv)
    # b quarks come in pairs: each b-bbar interaction gives two b hadrons
    ev_b = np.repeat(_repeat_events(nb), 2)
    pv_b = np.repeat(evs.pick_pv(rng, ev_b[::2]), 2)
    b = _generic_b_candidates(rng, ev_b, evs.pv_true[pv_b])
    truth = _Truth.concat([*_underlying(rng, evs), b])
    ntracks = evs.base_tracks + rng.poisson(_B_EXTRA_TRACKS * nb)
    return truth, evs, ntracks, np.ones(n), np.zeros(n, dtype=np.int64)


def _simulate_block(
    kind: str,
    block_index: int,
    n_keep: int,
    *,
    seed: int,
    pileup: float,
    fractions: FloatArray,
    run_number: int,
) -> tuple[Columns, Columns, Columns]:
    """Generate block ``block_index`` (always BLOCK events) and keep its first ``n_keep``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _KIND_CODES[kind], block_index]))
    if kind == "signal":
        truth, evs, ntracks, weight, event_mode = _signal_block(rng, BLOCK, pileup, fractions)
    else:
        truth, evs, ntracks, weight, event_mode = _minbias_block(rng, BLOCK, pileup)
    ntracks = np.maximum(ntracks, 2)
    # true b-hadron kinematics of each signal event (0 for minimum bias), known
    # also for the few events whose signal candidate is lost at reconstruction
    signal = truth.truth == 1
    true_b = {name: np.zeros(BLOCK) for name in ("B_TRUETAU", "B_TRUEPT", "B_TRUEETA")}
    for name, values in zip(true_b, (truth.tau, truth.bpt, truth.beta), strict=True):
        true_b[name][truth.ev[signal]] = values[signal]

    cols, track_cols = _reconstruct(rng, truth, evs)
    # shuffle candidates within each event so nCandidate carries no category information
    order = np.lexsort((rng.random(len(truth.ev)), truth.ev))
    ev = truth.ev[order]
    # a track that resolution moves out of 2 < eta < 5 is not reconstructed
    in_acc = np.ones(len(order), dtype=bool)
    for h in ("H1", "H2"):
        eta = cols[f"{h}_ETA"][order]
        in_acc &= (eta > ETA_MIN) & (eta < ETA_MAX)
    keep = (ev < n_keep) & in_acc
    ev = ev[keep]
    order = order[keep]

    counts = np.bincount(ev, minlength=BLOCK)[:n_keep]
    starts = np.cumsum(counts) - counts
    event_number = np.int64(block_index) * BLOCK + np.arange(n_keep, dtype=np.int64)

    cand: Columns = {
        "runNumber": np.full(len(ev), run_number),
        "eventNumber": event_number[ev],
        "nCandidate": np.arange(len(ev)) - starts[ev],
        "totCandidates": counts[ev],
        "nTracks": ntracks[ev],
        "nPVs": evs.npv[ev],
        "eventWeight": weight[ev],
    }
    cand.update({name: values[order] for name, values in cols.items()})
    events: Columns = {
        "runNumber": np.full(n_keep, run_number),
        "eventNumber": event_number,
        "nPVs": evs.npv[:n_keep],
        "nTracks": ntracks[:n_keep],
        "eventWeight": weight[:n_keep],
        "mode": event_mode[:n_keep],
        **{name: values[:n_keep] for name, values in true_b.items()},
    }
    tracks = _track_rows(truth, track_cols, n_keep, event_number, evs, ntracks, weight, run_number)
    return _cast(cand, CANDIDATE_BRANCHES), _cast(events, EVENT_BRANCHES), tracks


def _track_rows(
    truth: _Truth,
    track_cols: dict[str, list[NDArray[Any]]],
    n_keep: int,
    event_number: IntArray,
    evs: _Events,
    ntracks: IntArray,
    weight: FloatArray,
    run_number: int,
) -> Columns:
    """The track tree of a block: every track of a two-track candidate, once.

    Both tracks of each candidate are rows, except the signal-decay track of a
    ``signal_plus_prompt`` candidate, which is already a row as a track of the
    signal decay. A track is kept when its own pseudorapidity is in the
    acceptance (whether or not its partner is). Rows are ordered by event and
    by decreasing pT; no random number is drawn, so the candidate and event
    trees do not depend on whether tracks are written.
    """
    n = len(truth.ev)
    parts: list[NDArray[np.intp]] = []
    which: list[NDArray[np.intp]] = []
    for j, dup in ((0, truth.mode == MODE_CODES["signal_plus_prompt"]), (1, np.zeros(n, bool))):
        eta = track_cols["ETA"][j]
        ok = (truth.ev < n_keep) & (eta > ETA_MIN) & (eta < ETA_MAX) & ~dup
        idx = np.flatnonzero(ok)
        parts.append(idx)
        which.append(np.full(len(idx), j, dtype=np.intp))
    cand = np.concatenate(parts)
    side = np.concatenate(which)
    values = {name: np.where(side == 0, v[0][cand], v[1][cand]) for name, v in track_cols.items()}
    ev = truth.ev[cand]
    order = np.lexsort((-values["PT"], ev))
    ev = ev[order]
    cand = cand[order]
    counts = np.bincount(ev, minlength=n_keep)[:n_keep]
    starts = np.cumsum(counts) - counts
    rows: Columns = {
        "runNumber": np.full(len(ev), run_number),
        "eventNumber": event_number[ev],
        "nTrack": np.arange(len(ev)) - starts[ev],
        "totTracks": counts[ev],
        "nTracks": ntracks[ev],
        "nPVs": evs.npv[ev],
        "eventWeight": weight[ev],
        **{branch: values[q][order] for q, branch in _TRACK_QUANTITIES.items()},
        "truth_matched": truth.truth[cand],
        "mode": truth.mode[cand],
    }
    return _cast(rows, TRACK_BRANCHES)


def _cast(cols: Columns, schema: Mapping[str, np.dtype[Any]]) -> Columns:
    return {name: np.ascontiguousarray(cols[name], dtype=dt) for name, dt in schema.items()}


def _signal_fractions(signal_modes: Mapping[str, float] | None) -> FloatArray:
    modes = DEFAULT_SIGNAL_MODES if signal_modes is None else signal_modes
    unknown = sorted(set(modes) - set(SIGNAL_MODES))
    if unknown:
        msg = f"unknown signal mode(s) {unknown}; choose among {sorted(SIGNAL_MODES)}"
        raise ValueError(msg)
    fractions = np.array([float(modes.get(name, 0.0)) for name in SIGNAL_MODES])
    if not np.all(np.isfinite(fractions)) or (fractions < 0).any() or fractions.sum() <= 0:
        msg = f"signal mode fractions must be finite, >= 0 and not all zero; got {dict(modes)}"
        raise ValueError(msg)
    return fractions / fractions.sum()


def simulate_events_with_tracks(
    kind: str,
    n_events: int,
    *,
    seed: int,
    first_event: int = 0,
    pileup: float = 1.1,
    signal_modes: Mapping[str, float] | None = None,
    run_number: int | None = None,
) -> tuple[Columns, Columns, Columns]:
    """Simulate events ``first_event .. first_event + n_events - 1`` of a sample, tracks included.

    Events are generated in blocks of :data:`BLOCK` events seeded from
    ``SeedSequence([seed, kind code, block index])``; a partial last block is
    generated in full and truncated, so event ``i`` of a sample is the same
    whatever range it is requested in.

    Parameters
    ----------
    kind : {"signal", "minbias"}
        Sample kind, see :data:`SAMPLE_KINDS`.
    n_events : int
        Number of events (>= 0).
    seed : int
        Sample seed (>= 0).
    first_event : int, optional
        Global index of the first event; a multiple of :data:`BLOCK`.
    pileup : float, optional
        Mean of the (zero-truncated) Poisson number of visible pp interactions.
    signal_modes : mapping of str to float, optional
        Fractions of the signal modes named in :data:`SIGNAL_MODES` (normalised;
        missing modes get 0). Default :data:`DEFAULT_SIGNAL_MODES`. Ignored
        for minimum bias.
    run_number : int, optional
        ``runNumber`` of every row; default ``RUN_NUMBERS[kind]``.

    Returns
    -------
    candidates : dict of str to ndarray
        Candidate columns (``DecayTree``), every array of shape (n_candidates,),
        names and dtypes as in :data:`CANDIDATE_BRANCHES`; MeV, mm, ps.
    events : dict of str to ndarray
        Event columns (``EventTuple``), shape (n_events,), as in
        :data:`EVENT_BRANCHES`; includes events without candidates.
    tracks : dict of str to ndarray
        Track columns (``TrackTuple``), one row per track of the candidates
        (each track once), as in :data:`TRACK_BRANCHES`.

    Raises
    ------
    ValueError
        Unknown kind or signal mode, negative counts or seed, ``first_event``
        not a multiple of :data:`BLOCK`, or a non-positive ``pileup``.
    TypeError
        ``n_events``, ``first_event`` or ``seed`` not an integer.
    """
    if kind not in SAMPLE_KINDS:
        msg = f"unknown sample kind {kind!r}; choose one of {SAMPLE_KINDS}"
        raise ValueError(msg)
    for name, value in (("n_events", n_events), ("first_event", first_event), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            msg = f"{name} must be an integer, got {type(value).__name__}"
            raise TypeError(msg)
        if value < 0:
            msg = f"{name} must be >= 0, got {value}"
            raise ValueError(msg)
    if first_event % BLOCK:
        msg = f"first_event={first_event} must be a multiple of BLOCK={BLOCK}"
        raise ValueError(msg)
    if not (math.isfinite(pileup) and pileup > 0):
        msg = f"pileup must be a positive number, got {pileup}"
        raise ValueError(msg)
    fractions = _signal_fractions(signal_modes)
    run = RUN_NUMBERS[kind] if run_number is None else int(run_number)

    first_block = first_event // BLOCK
    n_blocks = -(-n_events // BLOCK)
    cand_parts: list[Columns] = []
    event_parts: list[Columns] = []
    track_parts: list[Columns] = []
    for i in range(n_blocks):
        n_keep = min(BLOCK, n_events - i * BLOCK)
        cand, events, tracks = _simulate_block(
            kind,
            first_block + i,
            n_keep,
            seed=int(seed),
            pileup=float(pileup),
            fractions=fractions,
            run_number=run,
        )
        cand_parts.append(cand)
        event_parts.append(events)
        track_parts.append(tracks)
    return (
        _join(cand_parts, CANDIDATE_BRANCHES),
        _join(event_parts, EVENT_BRANCHES),
        _join(track_parts, TRACK_BRANCHES),
    )


def simulate_events(
    kind: str,
    n_events: int,
    *,
    seed: int,
    first_event: int = 0,
    pileup: float = 1.1,
    signal_modes: Mapping[str, float] | None = None,
    run_number: int | None = None,
) -> tuple[Columns, Columns]:
    """The candidate and event columns of :func:`simulate_events_with_tracks` (same arguments).

    Returns
    -------
    candidates, events : dict of str to ndarray
        ``DecayTree`` and ``EventTuple`` columns; see
        :func:`simulate_events_with_tracks`.
    """
    cands, events, _ = simulate_events_with_tracks(
        kind,
        n_events,
        seed=seed,
        first_event=first_event,
        pileup=pileup,
        signal_modes=signal_modes,
        run_number=run_number,
    )
    return cands, events


def _join(parts: list[Columns], schema: Mapping[str, np.dtype[Any]]) -> Columns:
    if not parts:
        return {name: np.zeros(0, dtype=dt) for name, dt in schema.items()}
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in schema}
