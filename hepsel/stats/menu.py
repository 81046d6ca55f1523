"""A trigger menu: several lines side by side, their rates, overlaps and efficiencies.

A menu is a set of lines, each with a threshold on its own score. An event
fires line ``l`` when its best candidate of that line scores at or above the
line's threshold; the menu keeps the event when *any* line fires. The output
rate counts each minimum-bias event once however many lines fired:

    rate = input_rate_khz * sum_{events where some line fires} w / total_weight

where ``total_weight`` is the weighted number of processed minimum-bias
events, those without any candidate included (the convention of
:class:`hepsel.stats.trigger.EventScores`). Signal efficiencies are
event-level and TOS: the scores given for a signal event are those of the
line's candidates made from the signal's own tracks, and the channel's
efficiency is the weighted fraction of its events in which some line fires.

Errors are binomial with the effective number of events
``n_eff = (sum w)^2 / sum w^2``, as :func:`hepsel.stats.trigger.output_rate`
computes them. Negative weights are summed as given: a fraction may then
leave [0, 1] and its error uses the clipped ``f (1 - f)``.

Prescales are deterministic per event: line ``l`` with prescale ``p`` keeps
an event when a seeded 64-bit hash of (event number, line) falls below
``p``, so the same event is kept or dropped in every evaluation and the
overlaps of prescaled lines are those of a real trigger. A prescaled-away
line candidate counts as no candidate (score ``-inf``).

The bandwidth division itself, which chooses the thresholds, is
:mod:`hepsel.stats.bandwidth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._validation import check_weights
from ._inputs import FloatArray
from .trigger import EventScores, rate_curve

__all__ = [
    "MenuFigures",
    "MinBiasLines",
    "SignalLines",
    "evaluate_menu",
    "naive_split",
    "prescale_mask",
    "split_even_odd",
]


def _as_scores(scores: Any, name: str) -> FloatArray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2:
        msg = f"{name} must be two-dimensional (n_events, n_lines), got shape {arr.shape}"
        raise ValueError(msg)
    if np.isnan(arr).any() or (arr == np.inf).any():
        msg = f"{name} holds NaN or +inf; mark a line without candidate in an event with -inf"
        raise ValueError(msg)
    return arr


def _as_event(event: Any, n: int, name: str) -> np.ndarray | None:
    if event is None:
        return None
    arr = np.asarray(event)
    if arr.dtype.kind not in "iu" or arr.shape != (n,):
        msg = f"{name}.event must be integer event numbers of shape ({n},), got {arr.dtype} {arr.shape}"
        raise ValueError(msg)
    return arr


@dataclass(frozen=True)
class MinBiasLines:
    """Minimum-bias events as the lines of a menu see them.

    Attributes
    ----------
    scores : ndarray, shape (n_events, n_lines)
        Best candidate score of each line in each event; ``-inf`` where the
        line has no candidate.
    weight : ndarray, shape (n_events,)
        Event weights.
    total_weight : float
        Weighted number of processed events, events without any candidate
        (not among the rows) included: the rate denominator.
    total_weight2 : float, optional
        Their sum of squared weights (default: that of the rows, i.e. every
        processed event is a row).
    event : ndarray of int, shape (n_events,), optional
        Event numbers, for :func:`split_even_odd` and prescales.
    """

    scores: FloatArray
    weight: FloatArray
    total_weight: float
    total_weight2: float | None = None
    event: np.ndarray | None = None

    def __post_init__(self) -> None:
        scores = _as_scores(self.scores, "minbias.scores")
        weight = check_weights(
            self.weight, scores.shape[0], name="minbias.weight", against="scores"
        )
        assert weight is not None
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "total_weight", float(self.total_weight))
        if not self.total_weight > 0:
            msg = f"minbias.total_weight must be positive, got {self.total_weight}"
            raise ValueError(msg)
        if self.total_weight2 is not None:
            object.__setattr__(self, "total_weight2", float(self.total_weight2))
        object.__setattr__(self, "event", _as_event(self.event, scores.shape[0], "minbias"))

    @property
    def n_lines(self) -> int:
        """Number of lines (columns of ``scores``)."""
        return int(self.scores.shape[1])

    @property
    def sum_weight2(self) -> float:
        """Sum of squared weights of all processed events."""
        if self.total_weight2 is not None:
            return self.total_weight2
        return float(np.sum(self.weight**2))

    def line(self, index: int) -> EventScores:
        """Line ``index`` alone, as :class:`~hepsel.stats.trigger.EventScores`."""
        return EventScores(
            self.scores[:, index], self.weight, self.total_weight, self.total_weight2, self.event
        )


@dataclass(frozen=True)
class SignalLines:
    """Signal events of several channels as the lines of a menu see them.

    Attributes
    ----------
    scores : ndarray, shape (n_events, n_lines)
        Best TOS score of each line in each signal event (candidates built
        from the signal's own tracks); ``-inf`` where there is none. Signal
        events without any candidate must be rows of ``-inf``: each
        channel's rows are its efficiency denominator.
    weight : ndarray, shape (n_events,)
        Event weights.
    channel : ndarray of int, shape (n_events,)
        Channel id of each event, ``0 <= channel < n_channels``.
    n_channels : int, optional
        Number of channels (default: ``channel.max() + 1``); a channel with
        no rows has an undefined (NaN) efficiency and is left out of the
        objective.
    event : ndarray of int, shape (n_events,), optional
        Event numbers, for :func:`split_even_odd` and prescales.
    """

    scores: FloatArray
    weight: FloatArray
    channel: np.ndarray
    n_channels: int = field(default=-1)
    event: np.ndarray | None = None

    def __post_init__(self) -> None:
        scores = _as_scores(self.scores, "signal.scores")
        n = scores.shape[0]
        weight = check_weights(self.weight, n, name="signal.weight", against="scores")
        assert weight is not None
        channel = np.asarray(self.channel)
        if channel.dtype.kind not in "iu" or channel.shape != (n,):
            msg = f"signal.channel must be integer ids of shape ({n},), got {channel.dtype} {channel.shape}"
            raise ValueError(msg)
        n_channels = int(self.n_channels)
        if n_channels < 0:
            n_channels = int(channel.max()) + 1 if n else 0
        if n and (channel.min() < 0 or channel.max() >= n_channels):
            msg = f"signal.channel must lie in [0, {n_channels}); got ids {channel.min()}..{channel.max()}"
            raise ValueError(msg)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "channel", channel.astype(np.int64))
        object.__setattr__(self, "n_channels", n_channels)
        object.__setattr__(self, "event", _as_event(self.event, n, "signal"))

    @property
    def n_lines(self) -> int:
        """Number of lines (columns of ``scores``)."""
        return int(self.scores.shape[1])


def split_even_odd(
    sample: MinBiasLines | SignalLines,
) -> tuple[Any, Any]:
    """The even- and odd-numbered events of a sample, by its ``event`` numbers.

    Thresholds are chosen on the even half and measured on the odd one. For
    minimum bias the events without any candidate are not rows, so their
    weight (``total_weight`` minus the rows' weights) is shared half and half;
    each half's ``total_weight`` is its rows' weight plus that share (and
    likewise ``total_weight2``).

    Returns
    -------
    even, odd : same type as ``sample``
    """
    if sample.event is None:
        msg = "the sample has no event numbers; give event=... to split it into even and odd halves"
        raise ValueError(msg)
    odd = (sample.event % 2).astype(bool)
    halves = []
    for keep in (~odd, odd):
        sub: dict[str, Any] = {
            "scores": sample.scores[keep],
            "weight": sample.weight[keep],
            "event": sample.event[keep],
        }
        if isinstance(sample, MinBiasLines):
            rest = sample.total_weight - float(sample.weight.sum())
            sub["total_weight"] = float(sample.weight[keep].sum()) + 0.5 * rest
            if sample.total_weight2 is not None:
                rest2 = sample.total_weight2 - float(np.sum(sample.weight**2))
                sub["total_weight2"] = float(np.sum(sample.weight[keep] ** 2)) + 0.5 * rest2
        else:
            sub["channel"] = sample.channel[keep]
        halves.append(replace(sample, **sub))
    return halves[0], halves[1]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def prescale_mask(event: np.ndarray, prescales: Sequence[float], seed: int = 0) -> np.ndarray:
    """Which events each prescaled line keeps: shape (n_events, n_lines), bool.

    Line ``l`` keeps an event when ``hash(seed, l, event) / 2**64 < prescales[l]``
    (splitmix64), the same decision wherever the event is evaluated.

    Examples
    --------
    >>> keep = prescale_mask(np.arange(100_000), [1.0, 0.25, 0.0])
    >>> keep.mean(axis=0).round(2).tolist()
    [1.0, 0.25, 0.0]
    """
    p = np.asarray(prescales, dtype=np.float64)
    if p.ndim != 1 or not ((p >= 0) & (p <= 1)).all():
        msg = f"prescales must be one value in [0, 1] per line, got {prescales!r}"
        raise ValueError(msg)
    ev = np.asarray(event).astype(np.uint64)
    keep = np.empty((ev.shape[0], p.shape[0]), dtype=bool)
    for line, frac in enumerate(p):
        salt = _splitmix64(np.array([seed * 1_000_003 + line], dtype=np.uint64))
        u = (_splitmix64(ev ^ salt) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        keep[:, line] = u < frac
    return keep


def _prescaled_scores(
    sample: MinBiasLines | SignalLines, prescales: Sequence[float] | None, seed: int
) -> FloatArray:
    """The sample's scores with the candidates of prescaled-away events set to -inf."""
    if prescales is None or np.all(np.asarray(prescales, dtype=np.float64) == 1.0):
        return sample.scores
    if len(prescales) != sample.n_lines:
        msg = f"prescales has {len(prescales)} entries for {sample.n_lines} lines"
        raise ValueError(msg)
    if sample.event is None:
        msg = "prescales below 1 need event numbers (event=...) to decide which events a line keeps"
        raise ValueError(msg)
    return np.where(prescale_mask(sample.event, prescales, seed), sample.scores, -np.inf)


def _error(frac: np.ndarray, n_eff: Any) -> np.ndarray:
    return np.sqrt(np.clip(frac * (1.0 - frac), 0.0, None) / np.maximum(n_eff, 1.0))


@dataclass(frozen=True)
class MenuFigures:
    """Rates and efficiencies of a menu at given thresholds.

    Rates are in kHz, efficiencies fractions; each ``*_error`` is the binomial
    (effective-N) error of its quantity.

    Attributes
    ----------
    thresholds : ndarray, shape (n_lines,)
        The line thresholds (``inf``: line switched off).
    rate, rate_error : float
        Menu output rate: events in which any line fires, counted once.
    inclusive_rate, inclusive_rate_error : ndarray, shape (n_lines,)
        Rate of events in which the line fires.
    exclusive_rate, exclusive_rate_error : ndarray, shape (n_lines,)
        Rate of events in which that line and no other fires.
    overlap_rate, overlap_rate_error : ndarray, shape (n_lines, n_lines)
        Rate of events in which both lines fire (diagonal: inclusive rates).
    efficiency, efficiency_error : ndarray, shape (n_channels,)
        Menu efficiency per channel (NaN for a channel without events or
        with a non-positive total weight).
    line_efficiency, line_efficiency_error : ndarray, shape (n_channels, n_lines)
        Efficiency of each line alone per channel.
    objective : float
        Channel-weighted mean of ``efficiency`` over the channels where it
        is defined.
    """

    thresholds: FloatArray
    rate: float
    rate_error: float
    inclusive_rate: FloatArray
    inclusive_rate_error: FloatArray
    exclusive_rate: FloatArray
    exclusive_rate_error: FloatArray
    overlap_rate: FloatArray
    overlap_rate_error: FloatArray
    efficiency: FloatArray
    efficiency_error: FloatArray
    line_efficiency: FloatArray
    line_efficiency_error: FloatArray
    objective: float


def _fires(scores: FloatArray, thresholds: FloatArray) -> np.ndarray:
    """Which lines fire in which events: ``score >= threshold`` for a real candidate."""
    return np.isfinite(scores) & (scores >= thresholds)


def _channel_objective(efficiency: FloatArray, channel_weights: FloatArray) -> float:
    """Channel-weighted mean efficiency over the channels where it is defined (NaN if none)."""
    ok = np.isfinite(efficiency)
    norm = float(channel_weights[ok].sum())
    if not ok.any() or norm == 0.0:
        return float("nan")
    return float(np.sum(channel_weights[ok] * efficiency[ok]) / norm)


def _check_channel_weights(channel_weights: Any, n_channels: int) -> FloatArray:
    """Channel weights as float64 of shape (n_channels,), default all 1; non-negative."""
    if channel_weights is None:
        return np.ones(n_channels)
    a = check_weights(
        channel_weights,
        n_channels,
        name="channel_weights",
        against="signal.n_channels",
        allow_negative=False,
    )
    assert a is not None
    return a


def _check_thresholds(thresholds: Any, n_lines: int) -> FloatArray:
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.shape != (n_lines,) or np.isnan(thr).any():
        msg = f"thresholds must be {n_lines} numbers (inf switches a line off), got {thresholds!r}"
        raise ValueError(msg)
    return thr


def evaluate_menu(
    thresholds: Any,
    minbias: MinBiasLines,
    signal: SignalLines,
    *,
    input_rate_khz: float,
    channel_weights: Any = None,
    prescales: Sequence[float] | None = None,
    prescale_seed: int = 0,
) -> MenuFigures:
    """Exact (unsmoothed) rates, overlaps and efficiencies of a menu.

    Parameters
    ----------
    thresholds : array_like, shape (n_lines,)
        One threshold per line; ``inf`` switches a line off.
    minbias, signal : MinBiasLines, SignalLines
        The events, with the same lines as columns.
    input_rate_khz : float
        Rate of events entering the menu [kHz].
    channel_weights : array_like, shape (n_channels,), optional
        Weight of each channel in the objective (default: equal).
    prescales : sequence of float, optional
        Prescale of each line (see the module notes).
    prescale_seed : int
        Seed of the prescale hash.

    Returns
    -------
    MenuFigures
    """
    if signal.n_lines != minbias.n_lines:
        msg = f"signal has {signal.n_lines} lines but minbias has {minbias.n_lines}"
        raise ValueError(msg)
    thr = _check_thresholds(thresholds, minbias.n_lines)
    a = _check_channel_weights(channel_weights, signal.n_channels)

    fire = _fires(_prescaled_scores(minbias, prescales, prescale_seed), thr)
    w, tot = minbias.weight, minbias.total_weight
    n_eff = tot**2 / max(minbias.sum_weight2, 1e-300)
    total = float(w @ fire.any(axis=1)) / tot
    inclusive = (w @ fire) / tot
    exclusive = (w @ (fire & (fire.sum(axis=1) == 1)[:, None])) / tot
    f = fire.astype(np.float64)
    overlap = ((f * w[:, None]).T @ f) / tot

    sfire = _fires(_prescaled_scores(signal, prescales, prescale_seed), thr)
    sw, ch, nc = signal.weight, signal.channel, signal.n_channels
    den = np.bincount(ch, weights=sw, minlength=nc)
    den2 = np.bincount(ch, weights=sw**2, minlength=nc)
    ok = den > 0
    safe = np.where(ok, den, 1.0)
    eff = np.where(ok, np.bincount(ch, weights=sw * sfire.any(axis=1), minlength=nc) / safe, np.nan)
    line_eff: FloatArray = (
        np.column_stack(
            [np.bincount(ch, weights=sw * sfire[:, j], minlength=nc) for j in range(signal.n_lines)]
        )
        .reshape(nc, signal.n_lines)
        .astype(np.float64)
    )
    line_eff = np.where(ok[:, None], line_eff / safe[:, None], np.nan)
    s_eff = np.where(ok, den**2 / np.where(den2 > 0, den2, 1.0), 0.0)

    r = float(input_rate_khz)
    return MenuFigures(
        thresholds=thr,
        rate=r * total,
        rate_error=float(r * _error(np.asarray(total), n_eff)),
        inclusive_rate=r * inclusive,
        inclusive_rate_error=r * _error(inclusive, n_eff),
        exclusive_rate=r * exclusive,
        exclusive_rate_error=r * _error(exclusive, n_eff),
        overlap_rate=r * overlap,
        overlap_rate_error=r * _error(overlap, n_eff),
        efficiency=eff,
        efficiency_error=np.where(ok, _error(np.nan_to_num(eff), s_eff), np.nan),
        line_efficiency=line_eff,
        line_efficiency_error=np.where(
            ok[:, None], _error(np.nan_to_num(line_eff), s_eff[:, None]), np.nan
        ),
        objective=_channel_objective(eff, a),
    )


def _menu_rate(
    scores: FloatArray, weight: FloatArray, total_weight: float, thresholds: FloatArray
) -> float:
    """Fraction of the processed (weighted) events in which any line fires."""
    return float(weight @ _fires(scores, thresholds).any(axis=1)) / total_weight


def naive_split(
    minbias: MinBiasLines,
    target_khz: float,
    *,
    input_rate_khz: float,
    prescales: Sequence[float] | None = None,
    prescale_seed: int = 0,
) -> FloatArray:
    """Thresholds giving every line the same inclusive rate, the menu rate at most ``target_khz``.

    The baseline of a bandwidth division: each line ``l`` takes
    ``threshold_for_rate(line l, r)`` (the lowest threshold whose rate alone
    does not exceed ``r``), and the common ``r`` is the largest for which
    the menu rate, overlaps counted once, stays within the target. (Giving
    each line ``target / n_lines`` instead would leave bandwidth unused
    wherever lines overlap.) A line without any minimum-bias candidate gets
    ``inf``, as :func:`~hepsel.stats.trigger.threshold_for_rate` gives it.

    Returns
    -------
    ndarray, shape (n_lines,)
    """
    scores = _prescaled_scores(minbias, prescales, prescale_seed)
    curves = [
        rate_curve(EventScores(scores[:, j], minbias.weight, minbias.total_weight), 1.0)
        for j in range(minbias.n_lines)
    ]

    def at(r: float) -> FloatArray:
        thr = np.full(len(curves), np.inf)
        for j, (t, rates) in enumerate(curves):
            ok = np.flatnonzero(rates <= r * (1 + 1e-12))
            if len(ok):
                thr[j] = t[ok[-1]]
        return thr

    target = float(target_khz) / float(input_rate_khz)
    candidates = np.unique(np.concatenate([c[1] for c in curves] + [np.zeros(1)]))
    candidates = candidates[candidates <= max(target, 0.0) * (1 + 1e-12)]

    def feasible(k: int) -> bool:
        r = float(candidates[k])
        return _menu_rate(scores, minbias.weight, minbias.total_weight, at(r)) <= target * (
            1 + 1e-12
        )

    if not feasible(0):  # candidates[0] is rate 0, always kept: a negative target fits nothing
        return np.full(len(curves), np.inf)
    lo, hi = 0, len(candidates)  # feasible(lo); hi: first infeasible or past the end
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if feasible(mid):
            lo = mid
        else:
            hi = mid
    return at(float(candidates[lo]))
