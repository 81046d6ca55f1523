"""Robustness to detector miscalibration: the selection at fixed working points on shifted inputs.

A *shift* rescales raw ntuple branches, ``x -> scale * x + offset``, chosen by
fnmatch patterns on the branch names (``"*_IPCHI2_OWNPV": 1.2``). The shift is
applied to the branches as they are read (:func:`hepsel.prep.ingest.prepare_file`),
so aliases, features and the preselection all see the miscalibrated values.
Each shifted candidate is scored by its own held-out fold model, and the
efficiencies and rates are measured at the *nominal* thresholds.

Differences between the nominal and the shifted sample are paired: both are
the same events, so the uncertainty of a difference comes from the events
whose decision changed (:func:`paired_ratio_difference`), not from two
independent binomial errors.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError
from ..stats.trigger import event_max, group_events

__all__ = [
    "BranchShift",
    "apply_shift",
    "format_table",
    "offline_shift_figures",
    "paired_ratio_difference",
    "shifts_from_config",
    "table_rows",
    "trigger_shift_figures",
]


@dataclass(frozen=True)
class BranchShift:
    """A named miscalibration: branch pattern -> ``(scale, offset)``."""

    name: str
    patterns: Mapping[str, tuple[float, float]]

    @property
    def is_identity(self) -> bool:
        """Whether every pattern leaves its branches unchanged."""
        return all(s == 1.0 and o == 0.0 for s, o in self.patterns.values())

    def resolve(
        self,
        branches: Iterable[str],
        *,
        where: str,
        protected: Iterable[str] = (),
        strict: bool = True,
    ) -> dict[str, tuple[float, float]]:
        """The branches of ``branches`` each pattern matches, with their ``(scale, offset)``.

        With ``strict=False`` a pattern matching nothing is skipped (samples
        with other branch names, checked together by the caller).

        Raises
        ------
        ConfigError
            A pattern matches no branch (``strict``), a branch is matched by
            two patterns, or a pattern matches a ``protected`` branch (event
            identifiers).
        """
        names = sorted(set(branches))
        keep = set(protected)
        out: dict[str, tuple[float, float]] = {}
        by: dict[str, str] = {}
        for pattern, factors in self.patterns.items():
            hits = fnmatch.filter(names, pattern)
            if not hits and strict:
                msg = (
                    f"robustness.shifts.{self.name}: pattern {pattern!r} matches no branch of {where}; "
                    f"fix the pattern (fnmatch globs: * ? [..]); branches: {', '.join(names)}"
                )
                raise ConfigError(msg)
            for b in hits:
                if b in keep:
                    msg = (
                        f"robustness.shifts.{self.name}: pattern {pattern!r} matches {b!r}, an event identifier; "
                        "a miscalibration does not change event numbers: narrow the pattern"
                    )
                    raise ConfigError(msg)
                if b in by:
                    msg = (
                        f"robustness.shifts.{self.name}: branch {b!r} of {where} is matched by both "
                        f"{by[b]!r} and {pattern!r}; make the patterns disjoint"
                    )
                    raise ConfigError(msg)
                by[b] = pattern
                out[b] = factors
        return out


def shifts_from_config(cfg: AnalysisConfig) -> dict[str, BranchShift]:
    """The ``robustness.shifts`` of ``cfg`` (empty without a ``robustness`` block)."""
    if cfg.robustness is None:
        return {}
    out = {}
    for name, patterns in cfg.robustness.shifts.items():
        factors = {
            p: (float(v), 0.0) if isinstance(v, (int, float)) else (float(v.scale), float(v.offset))
            for p, v in patterns.items()
        }
        out[name] = BranchShift(name, factors)
    return out


def apply_shift(arrays: Any, shift: Mapping[str, tuple[float, float]]) -> Any:
    """``arrays`` with each branch ``b`` of ``shift`` replaced by ``scale * b + offset``.

    ``arrays`` is a dict of numpy arrays or an awkward record array (jagged
    branches are shifted element-wise); branches of ``shift`` that
    ``arrays`` lacks are skipped. The input is not modified.

    Floating-point branches keep their precision (computed in float64, stored
    back as the branch's type, as a miscalibrated ntuple would hold them), so
    that a scale of 1 changes nothing; integer branches become float64.
    """
    if isinstance(arrays, dict):
        out = dict(arrays)
        for b, (scale, offset) in shift.items():
            if b in out:
                x = np.asarray(out[b])
                dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
                out[b] = (x.astype(np.float64) * scale + offset).astype(dtype)
        return out
    import awkward as ak

    fields = set(arrays.fields)
    for b, (scale, offset) in shift.items():
        if b in fields:
            x = arrays[b]
            leaf = ak.types.numpytype.primitive_to_dtype(
                ak.type(ak.flatten(x, axis=None)).content.primitive
            )
            dtype = leaf if leaf.kind == "f" else np.dtype(np.float64)
            shifted = ak.values_astype(ak.values_astype(x, np.float64) * scale + offset, dtype)
            arrays = ak.with_field(arrays, shifted, b)
    return arrays


def paired_ratio_difference(
    num_nominal: np.ndarray,
    den_nominal: np.ndarray,
    num_shifted: np.ndarray,
    den_shifted: np.ndarray,
    *,
    extra_den: float = 0.0,
    extra_den2: float = 0.0,
) -> dict[str, float]:
    """Two ratios of weighted sums over the same events, their difference and its standard error.

    ``R = sum(num) / (sum(den) + extra_den)`` for the nominal and the shifted
    sample; arrays have one entry per event (shape (n_events,), the same
    events in the same order in all four; an event absent from one sample has
    0 there). ``extra_den`` / ``extra_den2`` are the sum of weights / squared
    weights of further events counted in both denominators and in neither
    numerator (events without candidates).

    The error of ``R_s - R_n`` is the linearised (sandwich) estimate with
    events as independent units: each event enters both ratios, so an event
    whose decision does not change contributes almost nothing.

    Returns
    -------
    dict
        ``nominal``, ``shifted``, ``delta`` (shifted - nominal) and ``delta_err``.
    """
    a_n, d_n = np.asarray(num_nominal, dtype=np.float64), np.asarray(den_nominal, dtype=np.float64)
    a_s, d_s = np.asarray(num_shifted, dtype=np.float64), np.asarray(den_shifted, dtype=np.float64)
    tot_n = float(d_n.sum()) + extra_den
    tot_s = float(d_s.sum()) + extra_den
    if tot_n <= 0 or tot_s <= 0:
        nan = float("nan")
        return {"nominal": nan, "shifted": nan, "delta": nan, "delta_err": nan}
    r_n = float(a_n.sum()) / tot_n
    r_s = float(a_s.sum()) / tot_s
    psi = (a_s - r_s * d_s) / tot_s - (a_n - r_n * d_n) / tot_n
    var = float(np.sum(psi**2)) + extra_den2 * (r_n / tot_n - r_s / tot_s) ** 2
    return {"nominal": r_n, "shifted": r_s, "delta": r_s - r_n, "delta_err": float(np.sqrt(var))}


def _event_keys(
    run: np.ndarray, evt: np.ndarray, order: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """One (run, event) row per event, shape (n_events, 2)."""
    return np.column_stack([np.asarray(run)[order][starts], np.asarray(evt)[order][starts]]).astype(
        np.int64
    )


def _align(keys_n: np.ndarray, keys_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Positions of the nominal and the shifted events in their union (of size ``n``)."""
    both = (
        np.concatenate([keys_n, keys_s])
        if len(keys_n) + len(keys_s)
        else np.zeros((0, 2), dtype=np.int64)
    )
    # a lexsort of the two columns: np.unique(axis=0) is ten times slower on millions of rows
    order = np.lexsort((both[:, 1], both[:, 0]))
    s = both[order]
    new = np.ones(len(s), dtype=bool)
    new[1:] = np.any(s[1:] != s[:-1], axis=1)
    inverse = np.empty(len(s), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    n = int(new.sum())
    return inverse[: len(keys_n)], inverse[len(keys_n) :], n


def _scatter(n: int, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(n)
    out[index] = values
    return out


@dataclass
class _SignalEvents:
    keys: np.ndarray
    weight: np.ndarray
    best: np.ndarray  # best score of any candidate
    best_tos: np.ndarray  # best score of a truth-matched candidate (-inf: none)


def _signal_events(
    cols: Mapping[str, np.ndarray],
    sel: np.ndarray,
    score: np.ndarray,
    weight: np.ndarray,
    truth: np.ndarray,
) -> _SignalEvents:
    run, evt = cols["runNumber"][sel], cols["eventNumber"][sel]
    order, starts = group_events(run, evt)
    if len(starts) == 0:
        z = np.zeros(0)
        return _SignalEvents(np.zeros((0, 2), dtype=np.int64), z, z, z)
    return _SignalEvents(
        _event_keys(run, evt, order, starts),
        weight[sel][order][starts].astype(np.float64),
        event_max(score[sel], order, starts),
        event_max(score[sel], order, starts, mask=truth[sel]),
    )


def trigger_shift_figures(
    cfg: AnalysisConfig,
    nominal: Any,
    score_nominal: np.ndarray,
    shifted: Any,
    score_shifted: np.ndarray,
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    """Efficiencies and rates at fixed thresholds, nominal vs shifted (trigger studies).

    ``nominal`` / ``shifted`` are :class:`~hepsel.prep.dataset.Dataset` objects of
    the same events, ``score_*`` their held-out scores (one per candidate).
    Per working point (key -> threshold):

    ``eff``, ``eff_tos``
        the signal efficiencies of ``summary.json`` (events with a
        truth-matched candidate after the preselection; any / the
        truth-matched candidate passes), each relative to its own sample's
        preselected events;
    ``eff_total``
        any candidate passes, relative to all signal events of the sample
        (the preselection's change included);
    ``rate_khz``
        the output rate (minimum-bias events, all processed events in the
        denominator).

    Each as ``{"nominal", "shifted", "delta", "delta_err"}``.
    """
    rate_in = cfg.rates.input_rate_khz
    sig, mb = cfg.signal_sample, cfg.minbias_sample
    ev_n = _signal_events(
        nominal.columns, nominal.sample_mask(sig), score_nominal, nominal.weight, nominal.truth
    )
    ev_s = _signal_events(
        shifted.columns, shifted.sample_mask(sig), score_shifted, shifted.weight, shifted.truth
    )
    i_n, i_s, n_sig = _align(ev_n.keys, ev_s.keys)
    w_sig = _scatter(n_sig, i_s, ev_s.weight)
    w_sig[i_n] = ev_n.weight  # an event's weight does not depend on its candidates
    sig_info = nominal.samples[sig]
    sig_total = float(sig_info["sum_gen_weights"]) * float(sig_info["normalisation"])
    sig_total2 = float(sig_info["sum_gen_weights2"]) * float(sig_info["normalisation"]) ** 2

    mb_n, mb_s = nominal.sample_mask(mb), shifted.sample_mask(mb)
    mbe_n = _signal_events(
        nominal.columns, mb_n, score_nominal, nominal.weight, np.ones(len(nominal), dtype=bool)
    )
    mbe_s = _signal_events(
        shifted.columns, mb_s, score_shifted, shifted.weight, np.ones(len(shifted), dtype=bool)
    )
    j_n, j_s, n_mb = _align(mbe_n.keys, mbe_s.keys)
    w_mb = _scatter(n_mb, j_s, mbe_s.weight)
    w_mb[j_n] = mbe_n.weight
    mb_info = nominal.samples[mb]
    mb_total = float(mb_info["sum_gen_weights"]) * float(mb_info["normalisation"])
    mb_total2 = (
        float(mb_info.get("sum_gen_weights2", mb_info["sum_gen_weights"]))
        * float(mb_info["normalisation"]) ** 2
    )

    out: dict[str, Any] = {}
    for key, thr in thresholds.items():
        entry: dict[str, Any] = {"threshold": float(thr)}
        for name, attr in (("eff", "best"), ("eff_tos", "best_tos")):
            reco_n, reco_s = np.isfinite(ev_n.best_tos), np.isfinite(ev_s.best_tos)
            pass_n = reco_n & (getattr(ev_n, attr) >= thr)
            pass_s = reco_s & (getattr(ev_s, attr) >= thr)
            entry[name] = paired_ratio_difference(
                _scatter(n_sig, i_n, ev_n.weight * pass_n),
                _scatter(n_sig, i_n, ev_n.weight * reco_n),
                _scatter(n_sig, i_s, ev_s.weight * pass_s),
                _scatter(n_sig, i_s, ev_s.weight * reco_s),
            )
        pass_n = np.isfinite(ev_n.best_tos) & (ev_n.best >= thr)
        pass_s = np.isfinite(ev_s.best_tos) & (ev_s.best >= thr)
        entry["eff_total"] = paired_ratio_difference(
            _scatter(n_sig, i_n, ev_n.weight * pass_n),
            w_sig,
            _scatter(n_sig, i_s, ev_s.weight * pass_s),
            w_sig,
            extra_den=sig_total - float(w_sig.sum()),
            extra_den2=max(sig_total2 - float(np.sum(w_sig**2)), 0.0),
        )
        rate = paired_ratio_difference(
            _scatter(n_mb, j_n, mbe_n.weight * (mbe_n.best >= thr)),
            w_mb,
            _scatter(n_mb, j_s, mbe_s.weight * (mbe_s.best >= thr)),
            w_mb,
            extra_den=mb_total - float(w_mb.sum()),
            extra_den2=max(mb_total2 - float(np.sum(w_mb**2)), 0.0),
        )
        entry["rate_khz"] = {k: v * rate_in for k, v in rate.items()}
        entry["changed_signal_events"] = int(
            np.sum(
                _scatter(n_sig, i_n, pass_n.astype(float))
                != _scatter(n_sig, i_s, pass_s.astype(float))
            )
        )
        out[key] = entry
    return out


def _per_event_sums(
    ds: Any, score: np.ndarray, label: int, thr: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per event of class ``label`` (truth candidates): keys, passing weight and total weight of its candidates."""
    c = ds.columns
    sel = ds.truth & (ds.y == label)
    sample = c["sample"][sel].astype(np.int64)
    # the sample index keeps events of different samples apart (event numbers may repeat across samples)
    run = c["runNumber"][sel] + (sample << 40)
    order, starts = group_events(run, c["eventNumber"][sel])
    if len(starts) == 0:
        z = np.zeros(0)
        return np.zeros((0, 2), dtype=np.int64), z, z
    w = ds.weight[sel][order]
    passed = w * (score[sel][order] >= thr)
    return (
        _event_keys(run, c["eventNumber"][sel], order, starts),
        np.add.reduceat(passed, starts),
        np.add.reduceat(w, starts),
    )


def offline_shift_figures(
    nominal: Any,
    score_nominal: np.ndarray,
    shifted: Any,
    score_shifted: np.ndarray,
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    """Signal and background efficiencies at fixed thresholds, nominal vs shifted (offline studies).

    As in ``summary.json``: candidate level, truth candidates, each relative
    to its own sample's expected yield after the preselection; the errors
    treat events (with all their candidates) as the independent units.
    """
    out: dict[str, Any] = {}
    for key, thr in thresholds.items():
        entry: dict[str, Any] = {"threshold": float(thr)}
        for name, label in (("sig_eff", 1), ("bkg_eff", 0)):
            k_n, a_n, d_n = _per_event_sums(nominal, score_nominal, label, thr)
            k_s, a_s, d_s = _per_event_sums(shifted, score_shifted, label, thr)
            i_n, i_s, n = _align(k_n, k_s)
            entry[name] = paired_ratio_difference(
                _scatter(n, i_n, a_n),
                _scatter(n, i_n, d_n),
                _scatter(n, i_s, a_s),
                _scatter(n, i_s, d_s),
            )
        out[key] = entry
    return out


def table_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (shift, model, working point) of ``robustness.json``, for tables.

    Keys: ``shift``, ``model``, ``wp``, then per quantity (``eff`` and
    ``rate_khz`` in trigger studies, ``sig_eff`` and ``bkg_eff`` offline)
    its ``nominal``, ``shifted``, ``delta`` and ``delta_err``.
    """
    quantities = ("sig_eff", "bkg_eff") if result.get("offline") else ("eff", "rate_khz")
    rows = []
    for shift in result["shifts"]:
        for model, r in result["models"].items():
            for wp, entry in r["shifts"][shift].items():
                row: dict[str, Any] = {"shift": shift, "model": model, "wp": wp}
                for q in quantities:
                    row[q] = entry[q]
                rows.append(row)
    return rows


def format_table(result: Mapping[str, Any]) -> str:
    """``robustness.json`` as a plain-text table (efficiencies in %, rates in kHz)."""
    offline = bool(result.get("offline"))
    a, b = ("sig_eff", "bkg_eff") if offline else ("eff", "rate_khz")
    rows = table_rows(result)
    # columns as wide as their longest entry: long shift and model names stay aligned
    ws = max([16, *(len(str(r["shift"])) for r in rows)])
    wm = max([10, *(len(str(r["model"])) for r in rows)])
    wp = max([6, *(len(str(r["wp"])) for r in rows)])
    head = (
        f"{'shift':<{ws}} {'model':<{wm}} {'WP':>{wp}}  {'eff_S nom':>9} {'shifted':>8} {'delta [%-pt]':>15}   "
        + (
            f"{'eff_B nom':>9} {'shifted':>9} {'delta':>18}"
            if offline
            else f"{'rate nom':>8} {'shifted':>8} {'delta [kHz]':>15}"
        )
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        e, r = row[a], row[b]
        eff = f"{100 * e['nominal']:9.2f} {100 * e['shifted']:8.2f} {100 * e['delta']:+7.2f} ± {100 * e['delta_err']:5.2f}"
        if offline:
            other = f"{r['nominal']:9.3g} {r['shifted']:9.3g} {r['delta']:+9.2g} ± {r['delta_err']:6.2g}"
        else:
            other = f"{r['nominal']:8.1f} {r['shifted']:8.1f} {r['delta']:+7.1f} ± {r['delta_err']:5.1f}"
        lines.append(
            f"{row['shift']:<{ws}} {row['model']:<{wm}} {row['wp']:>{wp}}  {eff}   {other}"
        )
    return "\n".join(lines)
