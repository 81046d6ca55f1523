"""Bandwidth division: the thresholds of all the lines of a menu, chosen together.

Given a total output rate, :func:`divide_bandwidth` chooses one threshold
per line (or per group of lines that share one) to maximise the
channel-weighted mean of the signal channels' event-level TOS efficiencies,
with the menu's output rate (overlaps counted once, see
:mod:`hepsel.stats.menu`) at most the target. It follows LHCb's automated
bandwidth division (Evans, Fitzpatrick, Horswill, Comput. Softw. Big Sci. 9
(2025) 7, arXiv:2502.09557): Adam on sigmoid-smoothed pass decisions.

Method
------
1. *Scale.* Each line's (group's) score is mapped by a monotone,
   piecewise-linear function ``u(score)`` onto minus the log of its own
   minimum-bias pass fraction (interpolated between quantiles of its
   minimum-bias scores). A threshold on ``u`` is a threshold on the score;
   in ``u`` a unit step changes any line's own rate by a similar factor, so
   one learning rate and one smoothing width suit every line.
2. *Smoothed problem.* An event passes line ``l`` with probability
   ``sigmoid((u - theta_l) / tau)`` and the menu with
   ``1 - prod_l (1 - p_l)`` (summed in log space). The smoothed rate and
   efficiencies are the weighted means of that, on the choosing half.
3. *Adam* (``torch.optim.Adam``, step size annealed by a cosine) on
   ``theta`` from the naive split (:func:`~hepsel.stats.menu.naive_split`),
   with the rate constraint ``c = log(rate / target) = 0`` kept as in a
   projected-gradient method: the step follows the Lagrangian's gradient
   ``-(grad obj - lambda grad c)``, ``lambda`` the least-squares multiplier
   ``<grad obj, grad c> / |grad c|^2`` of the current point, i.e. it moves
   along the constant-rate surface; after each step a Newton step of a
   common shift of all ``theta`` (``-c / sum(grad c)``) puts the smoothed
   rate back on the target (``penalty > 0`` adds a quadratic pull
   ``penalty * c * grad c`` as well). ``tau`` shrinks geometrically over the
   steps, so the early steps see a smooth landscape (the exact one is a
   staircase with local optima) and the last ones nearly the exact counts.
4. *Exact projection.* Smoothed rates are not exact counts, so the result
   is shifted: all ``theta`` move by one common ``delta``, the smallest
   (found by bisection) for which the *exact* rate on the choosing half is
   at most the target. Each threshold is then raised to the nearest
   minimum-bias score at or above it (the choosing half's rate does not
   change; on a single line this is
   :func:`~hepsel.stats.trigger.threshold_for_rate`). The projection is what
   guarantees the constraint: the result never exceeds the target on the
   choosing half, whatever the smoothing did.
5. *Guard.* With few minimum-bias events above threshold the exact
   problem is a staircase with many local optima and the smoothed one can
   lead away from a good start; where the naive split (the start) keeps the
   groups' shared thresholds and does better on the choosing half, it is
   kept (``BandwidthResult.kept_naive``).

The thresholds are chosen on the even-numbered events and every figure is
measured on the odd ones (:func:`~hepsel.stats.menu.split_even_odd`), unless
both halves are given. Prescales are deterministic per event (a seeded hash,
:func:`~hepsel.stats.menu.prescale_mask`), so the smoothed objective sees
exactly the events the exact count keeps. A line without any minimum-bias
candidate on the choosing half gets no rate-based threshold and is switched
off (``inf``), as ``threshold_for_rate`` does. Negative weights are summed
as given; the smoothed rate is clamped at a tiny positive value before its
log. torch is imported when the function runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._inputs import FloatArray
from .menu import (
    MenuFigures,
    MinBiasLines,
    SignalLines,
    _check_channel_weights,
    _menu_rate,
    _prescaled_scores,
    evaluate_menu,
    naive_split,
    split_even_odd,
)

__all__ = ["BandwidthResult", "divide_bandwidth"]

_N_KNOTS = 256
_FAR = 1.0e6  # u of a missing candidate: far below every threshold, and finite


@dataclass(frozen=True)
class BandwidthResult:
    """One target rate's bandwidth division.

    Attributes
    ----------
    target_khz : float
        The total output rate asked for [kHz].
    thresholds : ndarray, shape (n_lines,)
        The chosen line thresholds (``inf``: switched off).
    chosen, measured : MenuFigures
        The menu's figures on the choosing and on the measuring half.
    naive_thresholds : ndarray, shape (n_lines,)
        The naive split's thresholds (:func:`~hepsel.stats.menu.naive_split`).
    naive_chosen, naive_measured : MenuFigures
        The naive split's figures on the two halves.
    smoothed_objective, smoothed_rate_khz : float
        The smoothed objective and rate at the end of the Adam steps
        (before the exact projection): a check on the smoothing.
    kept_naive : bool
        Whether the naive split was kept because the optimised menu came out
        worse on the choosing half (possible with few minimum-bias events
        passing, where the smoothed problem misleads).
    """

    target_khz: float
    thresholds: FloatArray
    chosen: MenuFigures
    measured: MenuFigures
    naive_thresholds: FloatArray
    naive_chosen: MenuFigures
    naive_measured: MenuFigures
    smoothed_objective: float
    smoothed_rate_khz: float
    kept_naive: bool = False

    @property
    def gain(self) -> float:
        """Measured objective over the naive split's, minus one (0.05: 5% better)."""
        return self.measured.objective / self.naive_measured.objective - 1.0


class _Scale:
    """The monotone map ``u(score)`` of one group of lines, and its inverse."""

    def __init__(self, pooled: FloatArray) -> None:
        s = np.sort(pooled)
        n = len(s)
        # knots at pass fractions exp(-z), z evenly spaced up to log(n): dense in the tail
        z = np.linspace(0.0, np.log(n), _N_KNOTS)
        frac = np.exp(-z)
        idx = np.clip(np.round(n * (1.0 - frac)).astype(np.int64), 0, n - 1)
        q, first = np.unique(s[idx], return_index=True)
        self.q, self.z = q, z[first]
        if len(q) < 2:  # one distinct score: a unit slope around it
            self.q = np.array([q[0] - 1.0, q[0]])
            self.z = np.array([self.z[0] - 1.0, self.z[0]])
        self.lo_slope = (self.z[1] - self.z[0]) / (self.q[1] - self.q[0])
        self.hi_slope = (self.z[-1] - self.z[-2]) / (self.q[-1] - self.q[-2])

    def forward(self, x: FloatArray) -> FloatArray:
        out = np.interp(x, self.q, self.z)
        out = np.where(x < self.q[0], self.z[0] + (x - self.q[0]) * self.lo_slope, out)
        out = np.where(x > self.q[-1], self.z[-1] + (x - self.q[-1]) * self.hi_slope, out)
        return np.where(np.isfinite(x), out, np.where(x > 0, np.inf, -_FAR))

    def inverse(self, u: FloatArray) -> FloatArray:
        out = np.interp(u, self.z, self.q)
        out = np.where(u < self.z[0], self.q[0] + (u - self.z[0]) / self.lo_slope, out)
        return np.where(u > self.z[-1], self.q[-1] + (u - self.z[-1]) / self.hi_slope, out)


def _check_groups(groups: Sequence[int] | None, n_lines: int) -> np.ndarray:
    if groups is None:
        return np.arange(n_lines)
    g = np.asarray(groups)
    if g.shape != (n_lines,) or g.dtype.kind not in "iu":
        msg = (
            f"groups must give an integer group id for each of the {n_lines} lines, got {groups!r}"
        )
        raise ValueError(msg)
    return np.unique(g, return_inverse=True)[1].reshape(n_lines)


def divide_bandwidth(
    minbias: MinBiasLines,
    signal: SignalLines,
    targets_khz: Sequence[float],
    *,
    input_rate_khz: float,
    channel_weights: Any = None,
    groups: Sequence[int] | None = None,
    prescales: Sequence[float] | None = None,
    prescale_seed: int = 0,
    measure: tuple[MinBiasLines, SignalLines] | None = None,
    n_steps: int = 300,
    learning_rate: float = 0.05,
    temperature: tuple[float, float] = (1.0, 0.005),
    penalty: float = 0.0,
    random_state: int = 0,
) -> list[BandwidthResult]:
    """Choose all line thresholds together for each total output rate.

    Parameters
    ----------
    minbias, signal : MinBiasLines, SignalLines
        The events, the same lines as columns. Without ``measure`` both are
        split by event number (:func:`~hepsel.stats.menu.split_even_odd`):
        thresholds are chosen on the even events and measured on the odd.
    targets_khz : sequence of float
        Total output rates [kHz], one division each.
    input_rate_khz : float
        Rate of events entering the menu [kHz].
    channel_weights : array_like, shape (n_channels,), optional
        Weight of each signal channel in the objective (default: equal).
    groups : sequence of int, shape (n_lines,), optional
        Group id of each line; the lines of one group share one threshold
        (their scores must be on one scale). Default: one group per line.
    prescales : sequence of float, optional
        Prescale of each line (deterministic per event, see
        :mod:`hepsel.stats.menu`).
    prescale_seed : int
        Seed of the prescale hash.
    measure : (MinBiasLines, SignalLines), optional
        The measuring half; then ``minbias`` and ``signal`` are the choosing
        half and are used whole.
    n_steps : int
        Adam steps per target.
    learning_rate : float
        Adam's step size, in units of ``u`` (log of a line's own rate).
    temperature : (float, float)
        Sigmoid width at the first and the last step, in units of ``u``.
    penalty : float
        Weight of an extra quadratic pull onto the target rate (the Newton
        shift after each step already keeps the smoothed rate there).
    random_state : int
        Seed of torch's generator (the method itself draws nothing; the
        result is the same for the same inputs and seed).

    Returns
    -------
    list of BandwidthResult
        One per target, in the order given.
    """
    import torch

    if measure is None:
        choose_mb, measure_mb = split_even_odd(minbias)
        choose_sig, measure_sig = split_even_odd(signal)
    else:
        (choose_mb, choose_sig), (measure_mb, measure_sig) = (minbias, signal), measure
    n_lines = choose_mb.n_lines
    for s in (choose_sig, measure_mb, measure_sig):
        if s.n_lines != n_lines:
            msg = f"every sample needs the same {n_lines} lines; one has {s.n_lines}"
            raise ValueError(msg)
    if int(n_steps) < 0 or not 0 < temperature[1] <= temperature[0]:
        msg = "n_steps must be >= 0 and temperature (first, last) positive and decreasing"
        raise ValueError(msg)
    a = _check_channel_weights(channel_weights, choose_sig.n_channels)
    group = _check_groups(groups, n_lines)
    torch.manual_seed(int(random_state))
    common: dict[str, Any] = {
        "input_rate_khz": input_rate_khz,
        "channel_weights": a,
        "prescales": prescales,
        "prescale_seed": prescale_seed,
    }

    mb = _prescaled_scores(choose_mb, prescales, prescale_seed)
    sig = _prescaled_scores(choose_sig, prescales, prescale_seed)
    n_groups = int(group.max()) + 1 if n_lines else 0
    pooled = [mb[:, group == k].ravel() for k in range(n_groups)]
    pooled = [np.unique(p[np.isfinite(p)]) for p in pooled]
    live = np.array([len(p) > 0 for p in pooled], dtype=bool)
    scales = [_Scale(p) if len(p) else None for p in pooled]
    live_lines = live[group]

    def u_of(scores: FloatArray) -> FloatArray:
        out = np.full(scores.shape, -_FAR)
        for j in np.flatnonzero(live_lines):
            sc = scales[group[j]]
            assert sc is not None
            out[:, j] = sc.forward(scores[:, j])
        return out[:, live_lines]

    def thresholds_of(theta: FloatArray) -> FloatArray:
        thr = np.full(n_lines, np.inf)
        for k in np.flatnonzero(live):
            sc = scales[k]
            assert sc is not None
            thr[group == k] = sc.inverse(np.asarray(theta[k]))
        return thr

    # rows where no live line has a candidate fire nothing: only their weight counts, in the totals
    mb_rows = np.isfinite(mb[:, live_lines]).any(axis=1)
    sig_rows = np.isfinite(sig[:, live_lines]).any(axis=1)
    dt = torch.float32
    u_mb = torch.as_tensor(u_of(mb[mb_rows]), dtype=dt)
    u_sig = torch.as_tensor(u_of(sig[sig_rows]), dtype=dt)
    w_mb = torch.as_tensor(choose_mb.weight[mb_rows], dtype=dt)
    w_sig = torch.as_tensor(choose_sig.weight[sig_rows], dtype=dt)
    ch = torch.as_tensor(choose_sig.channel[sig_rows])
    nc = choose_sig.n_channels
    den = np.bincount(choose_sig.channel, weights=choose_sig.weight, minlength=nc)
    ok = den > 0
    a_ok = a * ok
    a_norm = torch.as_tensor(a_ok / max(float(a_ok.sum()), 1e-300), dtype=dt)
    den_t = torch.as_tensor(np.where(ok, den, 1.0), dtype=dt)
    line_group = torch.as_tensor(np.unique(group[live_lines], return_inverse=True)[1])
    live_groups = np.flatnonzero(live)
    tot = choose_mb.total_weight
    taus = np.geomspace(temperature[0], temperature[1], max(int(n_steps), 1))

    def smoothed(theta_t: Any, tau: float) -> tuple[Any, Any]:
        th = theta_t[line_group].to(dt)
        fail_mb = torch.nn.functional.logsigmoid(-(u_mb - th) / tau).sum(dim=1)
        rate = (w_mb * -torch.expm1(fail_mb)).sum() / tot
        fail_sig = torch.nn.functional.logsigmoid(-(u_sig - th) / tau).sum(dim=1)
        per = torch.zeros(nc, dtype=dt).index_add_(0, ch, w_sig * -torch.expm1(fail_sig))
        return (a_norm * per / den_t).sum(), rate

    results = []
    for target in targets_khz:
        target_frac = float(target) / float(input_rate_khz)
        naive = naive_split(
            choose_mb,
            float(target),
            input_rate_khz=input_rate_khz,
            prescales=prescales,
            prescale_seed=prescale_seed,
        )
        theta0 = np.zeros(len(live_groups))
        for i, k in enumerate(live_groups):
            sc = scales[k]
            assert sc is not None
            t = naive[group == k]
            theta0[i] = float(np.mean(np.minimum(sc.forward(t), sc.z[-1] + 1.0)))
        theta = torch.tensor(theta0, dtype=dt, requires_grad=True)
        opt = torch.optim.Adam([theta], lr=learning_rate)
        # a constant step would leave theta jittering by about learning_rate at the end
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(int(n_steps), 1), eta_min=0.01 * learning_rate
        )
        log_target = float(np.log(max(target_frac, 1e-300)))
        sm_obj, sm_rate = float("nan"), float("nan")
        for step in range(int(n_steps)):
            obj, rate = smoothed(theta, float(taus[step]))
            c = torch.log(rate.clamp(min=1e-300)) - log_target
            (g_obj,) = torch.autograd.grad(obj, theta, retain_graph=True)
            (g_c,) = torch.autograd.grad(c, theta)
            lam = torch.clamp((g_obj @ g_c) / (g_c @ g_c).clamp(min=1e-300), min=0.0)
            theta.grad = -(g_obj - lam * g_c) + penalty * c.detach() * g_c
            opt.step()
            sched.step()
            with torch.no_grad():  # a Newton step of a common shift back onto the target rate
                slope = g_c.sum()
                if float(slope) < 0:
                    theta -= c.detach() / slope
            sm_obj, sm_rate = float(obj.detach()), float(rate.detach()) * float(input_rate_khz)

        theta_np = np.zeros(n_groups)
        theta_np[live_groups] = theta.detach().numpy()
        thr = _project(theta_np, live_groups, scales, thresholds_of, mb, choose_mb, target_frac)
        for k in live_groups:
            p = pooled[k]
            above = np.searchsorted(p, thr[group == k][0], side="left")
            thr[group == k] = p[above] if above < len(p) else np.inf

        chosen = evaluate_menu(thr, choose_mb, choose_sig, **common)
        naive_chosen = evaluate_menu(naive, choose_mb, choose_sig, **common)
        shared = all(len(np.unique(naive[group == k])) == 1 for k in range(n_groups))
        # a guard for the non-convex, step-like problem at low counts: keep the start if it was better
        from_naive = shared and naive_chosen.objective > chosen.objective
        if from_naive:
            thr, chosen = naive, naive_chosen
        results.append(
            BandwidthResult(
                target_khz=float(target),
                thresholds=thr,
                chosen=chosen,
                measured=evaluate_menu(thr, measure_mb, measure_sig, **common),
                naive_thresholds=naive,
                naive_chosen=naive_chosen,
                naive_measured=evaluate_menu(naive, measure_mb, measure_sig, **common),
                smoothed_objective=sm_obj,
                smoothed_rate_khz=sm_rate,
                kept_naive=bool(from_naive),
            )
        )
    return results


def _project(
    theta: FloatArray,
    live_groups: np.ndarray,
    scales: Sequence[Any],
    thresholds_of: Any,
    scores: FloatArray,
    sample: MinBiasLines,
    target_frac: float,
) -> FloatArray:
    """Thresholds at ``theta + delta``, ``delta`` the smallest with the exact rate within the target."""

    def rate(delta: float) -> float:
        return _menu_rate(scores, sample.weight, sample.total_weight, thresholds_of(theta + delta))

    limit = target_frac * (1 + 1e-12)
    if len(live_groups) == 0:
        return thresholds_of(theta)
    span = max(sc.z[-1] for sc in (scales[k] for k in live_groups)) + 1.0
    hi = max(span - float(theta[live_groups].min()), 0.0)  # every threshold above every score
    lo = min(-1.0, -float(theta[live_groups].max()) - span)
    if rate(lo) <= limit:
        return thresholds_of(theta + lo)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if rate(mid) <= limit:
            hi = mid
        else:
            lo = mid
    thr: FloatArray = thresholds_of(theta + hi)
    return thr
