"""Event-level trigger decisions, output rates and working points.

An event passes when its best candidate passes: the event score is the
maximum candidate score in the event. The output rate is the input rate times
the (weighted) fraction of minimum-bias events that pass, where the
denominator counts *all* processed events, including those without any
candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "EventScores",
    "event_ids",
    "event_max",
    "group_events",
    "output_rate",
    "rate_curve",
    "threshold_for_rate",
]


def group_events(run: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort order and start offsets of each event's block of candidates.

    Returns
    -------
    order : ndarray of int, shape (n_candidates,)
        Permutation putting candidates of the same (run, event) next to each other.
    starts : ndarray of int, shape (n_events,)
        Offsets (into the sorted order) where each event begins.
    """
    order = np.lexsort((np.asarray(event), np.asarray(run)))
    r, e = np.asarray(run)[order], np.asarray(event)[order]
    if len(order) == 0:
        return order, np.zeros(0, dtype=np.int64)
    new = np.ones(len(order), dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (e[1:] != e[:-1])
    return order, np.flatnonzero(new)


def event_ids(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense ids of the distinct key tuples (e.g. sample, run, event), numbered in lexicographic order.

    The ids are those of ``np.unique(np.column_stack(keys), axis=0,
    return_inverse=True)`` from one ``np.lexsort`` of the keys.

    Returns
    -------
    ids : ndarray of int, shape (n,)
        The id of each row's tuple.
    order : ndarray of int, shape (n,)
        A stable sort of the rows by their tuples.
    starts : ndarray of int, shape (n_ids,)
        Offsets (into ``order``) where each tuple's block begins, so that
        ``order[starts]`` is the first row of each tuple.
    """
    arrays = [np.asarray(k) for k in keys]
    n = len(arrays[0]) if arrays else 0
    order = np.lexsort(arrays[::-1]) if n else np.zeros(0, dtype=np.int64)
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
        for a in arrays:
            sa = a[order]
            new[1:] |= sa[1:] != sa[:-1]
    starts = np.flatnonzero(new)
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids, order, starts


def match_events(
    run: np.ndarray, event: np.ndarray, table_run: np.ndarray, table_event: np.ndarray
) -> np.ndarray:
    """Row of the table (unique (run, event) keys) holding each ``(run, event)``; -1 where none.

    Examples
    --------
    >>> match_events(np.array([1, 1, 2]), np.array([5, 6, 5]), np.array([2, 1]), np.array([5, 5]))
    array([ 1, -1,  0])
    """
    n_table = len(table_run)
    ids, _, starts = event_ids(
        np.concatenate([np.asarray(table_run, np.int64), np.asarray(run, np.int64)]),
        np.concatenate([np.asarray(table_event, np.int64), np.asarray(event, np.int64)]),
    )
    where = np.full(len(starts), -1, dtype=np.int64)
    where[ids[:n_table]] = np.arange(n_table)
    return where[ids[n_table:]]


def event_max(
    values: np.ndarray, order: np.ndarray, starts: np.ndarray, *, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per-event maximum of ``values`` (-inf for events where ``mask`` keeps nothing)."""
    v = np.asarray(values, dtype=np.float64)
    if mask is not None:
        v = np.where(mask, v, -np.inf)
    if len(starts) == 0:
        return np.zeros(0)
    return np.maximum.reduceat(v[order], starts)


@dataclass(frozen=True)
class EventScores:
    """Event-level view of one sample for one classifier.

    ``score`` is the best candidate score of each event; ``weight`` the event
    weight; ``total_weight`` the weighted number of processed events,
    including events with no candidate (the rate denominator), and
    ``total_weight2`` their sum of squared weights (default: that of the
    events with candidates, i.e. all events have one); ``event`` the event
    numbers (when built from candidates).
    """

    score: np.ndarray
    weight: np.ndarray
    total_weight: float
    total_weight2: float | None = None
    event: np.ndarray | None = None

    @classmethod
    def from_candidates(
        cls,
        run: np.ndarray,
        event: np.ndarray,
        score: np.ndarray,
        weight: np.ndarray,
        *,
        total_weight: float | None = None,
        total_weight2: float | None = None,
        mask: np.ndarray | None = None,
    ) -> EventScores:
        """Build from candidate arrays; ``mask`` restricts which candidates may fire."""
        order, starts = group_events(run, event)
        best = event_max(score, order, starts, mask=mask)
        w = np.asarray(weight, dtype=np.float64)[order][starts] if len(starts) else np.zeros(0)
        ev = np.asarray(event)[order][starts] if len(starts) else np.zeros(0, dtype=np.int64)
        tot = float(w.sum()) if total_weight is None else float(total_weight)
        return cls(best, w, tot, None if total_weight2 is None else float(total_weight2), ev)

    def pass_fraction(self, threshold: float | np.ndarray) -> np.ndarray:
        """Weighted fraction of events with score >= threshold."""
        thr = np.atleast_1d(np.asarray(threshold, dtype=np.float64))
        order = np.argsort(-self.score, kind="stable")
        # cw[k]: weight of the k best events (cw[0] = 0, also for a sample without events)
        s, cw = self.score[order], np.concatenate(([0.0], np.cumsum(self.weight[order])))
        n_pass = np.searchsorted(-s, -thr, side="right")
        return cw[n_pass] / self.total_weight


def output_rate(
    events: EventScores, threshold: float | np.ndarray, input_rate_khz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Output rate [kHz] at ``threshold`` and its binomial (normal) uncertainty.

    The uncertainty uses the effective number of processed events,
    ``n_eff = (sum w)^2 / sum w^2`` (for unit weights: the event count),
    which does not change when all weights are scaled.
    """
    frac = events.pass_fraction(threshold)
    sumw2 = (
        events.total_weight2
        if events.total_weight2 is not None
        else float(np.sum(events.weight**2))
    )
    n_eff_total = events.total_weight**2 / max(sumw2, 1e-300)
    err = np.sqrt(np.clip(frac * (1 - frac), 0, None) / max(n_eff_total, 1.0))
    return input_rate_khz * frac, input_rate_khz * err


def rate_curve(events: EventScores, input_rate_khz: float) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds (decreasing: each distinct event score) and the output rate [kHz] at each."""
    order = np.argsort(-events.score, kind="stable")
    s, cw = events.score[order], np.cumsum(events.weight[order])
    finite = np.isfinite(s)
    s, cw = s[finite], cw[finite]
    last = np.ones(len(s), dtype=bool)
    last[:-1] = s[1:] != s[:-1]
    return s[last], input_rate_khz * cw[last] / events.total_weight


def threshold_for_rate(events: EventScores, input_rate_khz: float, target_khz: float) -> float:
    """The lowest threshold whose output rate does not exceed ``target_khz``.

    Returns ``inf`` when even the best event alone would exceed the target.
    """
    thresholds, rates = rate_curve(events, input_rate_khz)
    ok = np.flatnonzero(rates <= target_khz * (1 + 1e-12))
    if len(ok) == 0:
        return float("inf")
    return float(thresholds[ok[-1]])
