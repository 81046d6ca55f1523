"""Physics trends of the default study's trigger efficiency, on a generated sample.

In LHCb's topological triggers the efficiency rises with the b-hadron pT and
plateaus, and it is low at small decay time and rises with it (Run 1
topological trigger, arXiv:1210.6861; Run 2 trigger performance,
arXiv:1812.10790). A classifier trained on the generated
samples must show the same: faster b hadrons are no harder to select than
slow ones, and longer-lived ones are easier. ``data/README.md``
(Efficiency trends) explains the physics.

The sample is the default analysis (its preselection, features, pile-up and
BDT settings) with fewer events; the efficiency is the event-level one at a
fixed minimum-bias output rate, per decay mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from hepsel.config.loading import load_config
from hepsel.models import make_classifier
from hepsel.prep.dataset import training_weights
from hepsel.prep.ingest import SamplePipeline
from hepsel.sim.simulation import SIGNAL_MODES, simulate_events
from hepsel.stats.performance import efficiency_vs, generated_event_scores
from hepsel.stats.trigger import EventScores, threshold_for_rate

from .conftest import REPO

N_SIGNAL, N_MINBIAS = 25_000, 60_000
RATES_KHZ = (660.0, 330.0, 100.0)  # the default study's target output rates
FULLY_RECONSTRUCTED = ("B0_Kpi", "Bs_KK")
N_SIGMA = 2.0


@dataclass
class Trend:
    """Per generated signal event: event score (-inf: not preselected), weight, mode, truth."""

    score: np.ndarray
    weight: np.ndarray
    mode: np.ndarray
    true_pt: np.ndarray  # MeV, from the truth-matched candidate (NaN without one)
    true_tau: np.ndarray  # ps, likewise
    events: dict[str, np.ndarray]  # the events tree
    minbias: EventScores
    input_rate_khz: float

    def threshold(self, rate_khz: float) -> float:
        """Score threshold for an output rate (kHz)."""
        return threshold_for_rate(self.minbias, self.input_rate_khz, rate_khz)


def _preselect(
    pipe: SamplePipeline, cands: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    keep = pipe.cuts.mask(cands, np.ones(len(cands["eventNumber"])))
    sub = {k: v[keep] for k, v in cands.items()}
    return sub, pipe.features.matrix(sub)


@pytest.fixture(scope="module")
def trend() -> Trend:
    cfg = load_config(REPO / "analyses" / "topo2body")
    samples: dict[str, Any] = {}
    for name, n in ((cfg.signal_sample, N_SIGNAL), (cfg.minbias_sample, N_MINBIAS)):
        gen = cfg.samples[name].generate
        assert gen is not None
        cands, events = simulate_events(gen.kind, n, seed=gen.seed, pileup=gen.pileup)
        samples[name] = (*_preselect(SamplePipeline(cfg, name), cands), events)
    sig, X_sig, sig_events = samples[cfg.signal_sample]
    mb, X_mb, _ = samples[cfg.minbias_sample]
    truth = sig["truth_matched"] == 1

    # two folds by event parity, as the workflow's k folds: every candidate scored by a model that did not see it
    score_sig, score_mb = np.empty(len(X_sig)), np.empty(len(X_mb))
    for fold in (0, 1):
        train_sig = truth & (sig["eventNumber"] % 2 != fold)
        train_mb = mb["eventNumber"] % 2 != fold
        X = np.concatenate([X_sig[train_sig], X_mb[train_mb]])
        y = np.r_[np.ones(train_sig.sum()), np.zeros(train_mb.sum())].astype(np.int64)
        w = training_weights(
            np.r_[sig["eventWeight"][train_sig], mb["eventWeight"][train_mb]],
            y,
            negative="keep",
            balance=True,
        )
        clf = make_classifier("bdt", cfg.models["bdt"].params, random_state=fold).fit(
            X, y, sample_weight=w
        )
        test_sig, test_mb = sig["eventNumber"] % 2 == fold, mb["eventNumber"] % 2 == fold
        score_sig[test_sig] = clf.predict_proba(X_sig[test_sig])[:, 1]
        score_mb[test_mb] = clf.predict_proba(X_mb[test_mb])[:, 1]

    minbias = EventScores.from_candidates(
        mb["runNumber"],
        mb["eventNumber"],
        score_mb,
        np.ones(len(score_mb)),
        total_weight=float(N_MINBIAS),
    )
    score = generated_event_scores(
        sig["runNumber"],
        sig["eventNumber"],
        score_sig,
        truth,
        sig_events["runNumber"],
        sig_events["eventNumber"],
    )
    true_pt, true_tau = np.full(N_SIGNAL, np.nan), np.full(N_SIGNAL, np.nan)
    true_pt[sig["eventNumber"][truth]] = sig["B_TRUEPT"][truth]
    true_tau[sig["eventNumber"][truth]] = sig["B_TRUETAU"][truth]
    return Trend(
        score,
        sig_events["eventWeight"].astype(np.float64),
        sig_events["mode"].astype(np.int64),
        true_pt,
        true_tau,
        sig_events,
        minbias,
        cfg.trigger.input_rate_khz,
    )


def _binned(
    trend: Trend, x: np.ndarray, edges: list[float], rate_khz: float, *, total: bool
) -> dict[str, Any]:
    """Per-mode binned efficiency at a rate; over preselected or over all generated events."""
    sel = np.ones(len(x), dtype=bool) if total else np.isfinite(trend.score)
    names = {code: name for name, code in SIGNAL_MODES.items()}
    out = efficiency_vs(
        x[sel],
        trend.score[sel],
        trend.weight[sel],
        {"wp": trend.threshold(rate_khz)},
        edges,
        modes=trend.mode[sel],
        mode_names=names,
    )
    return {mode: d["wp"] for mode, d in out["per_mode"].items()}


def _difference(b: dict[str, Any], i: int, j: int) -> tuple[float, float]:
    """eff[j] - eff[i] and its uncertainty from the 68% intervals."""
    v, lo, hi = (np.asarray(b[k]) for k in ("value", "low", "high"))
    sigma = 0.5 * (hi - lo)
    return float(v[j] - v[i]), float(np.hypot(sigma[i], sigma[j]))


def test_working_point_is_a_real_trigger(trend: Trend) -> None:
    passed = np.isfinite(trend.score) & (trend.score >= trend.threshold(RATES_KHZ[0]))
    assert 0.3 < passed.mean() < 0.95


@pytest.mark.parametrize("rate_khz", RATES_KHZ)
@pytest.mark.parametrize("mode", list(SIGNAL_MODES))
def test_efficiency_does_not_fall_with_b_pt(trend: Trend, mode: str, rate_khz: float) -> None:
    """The top true-pT bin is at least as efficient as the lowest one (within 2 sigma)."""
    b = _binned(trend, trend.true_pt, [0.0, 2000.0, 10000.0, 30000.0], rate_khz, total=False)[mode]
    diff, sigma = _difference(b, 0, 2)
    assert diff > -N_SIGMA * sigma, (
        f"{mode}: eff(pT > 10 GeV) - eff(pT < 2 GeV) = {diff:.3f} +- {sigma:.3f}"
    )


@pytest.mark.parametrize("rate_khz", RATES_KHZ)
@pytest.mark.parametrize("mode", FULLY_RECONSTRUCTED)
def test_efficiency_rises_with_decay_time(trend: Trend, mode: str, rate_khz: float) -> None:
    """Short-lived b hadrons have prompt-like tracks: the efficiency rises with the decay time."""
    b = _binned(trend, trend.true_tau, [0.0, 0.5, 1.5, 12.0], rate_khz, total=False)[mode]
    for i, j in ((0, 1), (0, 2)):
        diff, sigma = _difference(b, i, j)
        assert diff > N_SIGMA * sigma, f"{mode}: bins {i} -> {j}: {diff:.3f} +- {sigma:.3f}"
    diff, sigma = _difference(b, 1, 2)
    assert diff > -N_SIGMA * sigma


@pytest.mark.parametrize("mode", FULLY_RECONSTRUCTED)
def test_total_efficiency_rises_with_decay_time(trend: Trend, mode: str) -> None:
    """Relative to all generated events (the track IP chi2 preselection included) the rise is steeper."""
    tau = trend.events["B_TRUETAU"].astype(np.float64)
    b = _binned(trend, tau, [0.0, 0.5, 1.5, 12.0], RATES_KHZ[0], total=True)[mode]
    assert b["n_eff"].sum() == pytest.approx(np.sum(trend.mode == SIGNAL_MODES[mode]), rel=0.01)
    diff, sigma = _difference(b, 0, 2)
    assert diff > 0.3 and diff > N_SIGMA * sigma
