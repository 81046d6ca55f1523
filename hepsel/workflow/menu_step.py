"""The menu step: the lines' event scores joined, the bandwidth divided, ``menu.json`` written.

Minimum-bias rows are the events in which any line has a candidate; the
rate denominator is every processed minimum-bias event (the gathered
sample's generated weight). Signal rows are every generated signal event
(the signal sample's events tree), so each channel's efficiency is relative
to all its events; the channel of an event is its ``evaluation.mode_column``
value. Thresholds are chosen on the even-numbered events and every figure
is measured on the odd ones (:func:`hepsel.stats.bandwidth.divide_bandwidth`).

Besides the target rates, the division runs at ``menu.bandwidth.curve_points``
rates spread over the targets' range, for the efficiency-vs-rate curves.
The menu (lines and thresholds per target) is also written into the saved
selection (``selection/menu.json``), with a train line's fold models.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError, HepselError
from .layout import Layout
from .menu_lines import read_line_table

__all__ = ["curve_rates", "menu", "rate_key"]


def rate_key(rate_khz: float) -> str:
    """The key of a target rate in ``menu.json`` and in branch names: ``660``, ``2.5``."""
    return f"{rate_khz:g}"


def curve_rates(targets: Sequence[float], n_points: int) -> list[float]:
    """``n_points`` rates, log-spaced from a third of the lowest target to 1.5 times the highest."""
    lo, hi = min(targets) / 3.0, max(targets) * 1.5
    return [float(r) for r in np.geomspace(lo, hi, n_points)] if n_points > 0 else []


def _fill(
    n_rows: int, tables: Sequence[Mapping[str, np.ndarray]], rows: Sequence[np.ndarray]
) -> np.ndarray:
    scores = np.full((n_rows, len(tables)), -np.inf)
    for j, (t, r) in enumerate(zip(tables, rows, strict=True)):
        ok = r >= 0
        scores[r[ok], j] = t["score"][ok]
    return scores


def _value(v: Any, e: Any) -> dict[str, float]:
    return {"value": float(v), "error": float(e)}


def _figures(fig: Any, lines: list[str], channels: list[int]) -> dict[str, Any]:
    """One MenuFigures as JSON: rates in kHz, efficiencies per channel code."""
    return {
        "rate_khz": _value(fig.rate, fig.rate_error),
        "inclusive_rate_khz": {
            n: _value(v, e)
            for n, v, e in zip(lines, fig.inclusive_rate, fig.inclusive_rate_error, strict=True)
        },
        "exclusive_rate_khz": {
            n: _value(v, e)
            for n, v, e in zip(lines, fig.exclusive_rate, fig.exclusive_rate_error, strict=True)
        },
        "overlap_rate_khz": {
            "lines": lines,
            "value": fig.overlap_rate.tolist(),
            "error": fig.overlap_rate_error.tolist(),
        },
        "efficiency": {
            str(c): _value(v, e)
            for c, v, e in zip(channels, fig.efficiency, fig.efficiency_error, strict=True)
        },
        "line_efficiency": {
            n: {
                str(c): _value(fig.line_efficiency[i, j], fig.line_efficiency_error[i, j])
                for i, c in enumerate(channels)
            }
            for j, n in enumerate(lines)
        },
        "objective": float(fig.objective),
    }


def _thresholds(thr: np.ndarray, lines: list[str]) -> dict[str, float | None]:
    """Thresholds by line; ``None`` for a line switched off (JSON has no infinity)."""
    return {n: (float(t) if np.isfinite(t) else None) for n, t in zip(lines, thr, strict=True)}


def _result(res: Any, lines: list[str], channels: list[int]) -> dict[str, Any]:
    return {
        "target_khz": float(res.target_khz),
        "thresholds": _thresholds(res.thresholds, lines),
        **_figures(res.measured, lines, channels),
        "chosen": {"rate_khz": float(res.chosen.rate), "objective": float(res.chosen.objective)},
        "naive": {
            "thresholds": _thresholds(res.naive_thresholds, lines),
            **_figures(res.naive_measured, lines, channels),
        },
        "gain": float(res.gain),
        "kept_naive": bool(res.kept_naive),
        "smoothed": {
            "objective": float(res.smoothed_objective),
            "rate_khz": float(res.smoothed_rate_khz),
        },
    }


def menu(cfg: AnalysisConfig) -> dict[str, Any]:
    """Divide the bandwidth between the menu's lines; write ``menu.json`` and ``selection/menu.json``."""
    from ..io.storage import write_json
    from ..prep.dataset import load_dataset, load_generated_events
    from ..stats.bandwidth import divide_bandwidth
    from ..stats.menu import MinBiasLines, SignalLines
    from ..stats.trigger import event_ids, match_events

    if cfg.menu is None or cfg.trigger is None:
        msg = f"{cfg.source}: no 'menu:' block (or no trigger block); nothing to divide"
        raise ConfigError(msg)
    t0 = time.perf_counter()
    lay = Layout.of(cfg)
    lines = list(cfg.menu.lines)
    tables = [read_line_table(lay.menu_line(n)) for n in lines]

    samples = load_dataset(lay.dataset, cfg, columns=["label"]).samples
    mb_info = samples[cfg.minbias_sample]
    norm = float(mb_info["normalisation"])
    total = float(mb_info["sum_gen_weights"]) * norm
    total2 = float(mb_info.get("sum_gen_weights2", mb_info["sum_gen_weights"])) * norm**2

    mb_tables = [{k: v[t["signal"] == 0] for k, v in t.items()} for t in tables]
    all_run = np.concatenate([t["runNumber"] for t in mb_tables])
    all_event = np.concatenate([t["eventNumber"] for t in mb_tables])
    _, order, starts = event_ids(all_run, all_event)
    key_run, key_event = all_run[order][starts], all_event[order][starts]
    rows = [match_events(t["runNumber"], t["eventNumber"], key_run, key_event) for t in mb_tables]
    weight = np.zeros(len(key_run))
    for t, r in zip(mb_tables, rows, strict=True):
        weight[r] = t["weight"]
    minbias = MinBiasLines(
        _fill(len(key_run), mb_tables, rows), weight, total, total2, event=key_event
    )

    gen = load_generated_events(lay.dataset)
    col = cfg.evaluation.mode_column
    if gen is None or col not in gen:
        msg = (
            f"samples.{cfg.signal_sample}: the menu's efficiencies are per signal event and channel; the sample "
            f"needs an events tree with event numbers and the channel column {col!r}"
        )
        raise ConfigError(msg)
    gen_run, gen_event = gen["runNumber"].astype(np.int64), gen["eventNumber"].astype(np.int64)
    sig_tables = [{k: v[t["signal"] == 1] for k, v in t.items()} for t in tables]
    sig_rows = [
        match_events(t["runNumber"], t["eventNumber"], gen_run, gen_event) for t in sig_tables
    ]
    codes = gen[col].astype(np.int64)
    channels = sorted(int(c) for c in np.unique(codes))
    unknown = sorted(set(cfg.menu.channel_weights) - set(channels))
    if unknown:
        msg = f"menu.channel_weights: channel(s) {unknown} have no signal event (channels: {channels})"
        raise ConfigError(msg)
    signal = SignalLines(
        _fill(len(gen_run), sig_tables, sig_rows),
        np.asarray(gen["weight"], dtype=np.float64),
        np.searchsorted(channels, codes),
        n_channels=len(channels),
        event=gen["eventNumber"].astype(np.int64),
    )
    channel_weights = [float(cfg.menu.channel_weights.get(c, 1.0)) for c in channels]

    cfg_lines = [cfg.menu.lines[n] for n in lines]
    group_names = [line.group or f"\0{n}" for n, line in zip(lines, cfg_lines, strict=True)]
    groups = [sorted(set(group_names), key=group_names.index).index(g) for g in group_names]
    prescales = [line.prescale for line in cfg_lines]
    targets = list(cfg.trigger.target_rates_khz)
    bw = cfg.menu.bandwidth
    extra = curve_rates(targets, bw.curve_points)
    results = divide_bandwidth(
        minbias,
        signal,
        [*targets, *extra],
        input_rate_khz=cfg.trigger.input_rate_khz,
        channel_weights=channel_weights,
        groups=groups,
        prescales=prescales,
        prescale_seed=cfg.seed,
        n_steps=bw.n_steps,
        learning_rate=bw.learning_rate,
        temperature=bw.temperature,
        random_state=cfg.seed,
    )
    names = cfg.evaluation.mode_names
    out: dict[str, Any] = {
        "lines": {
            n: {
                "kind": line.kind,
                **({"model": line.model} if line.model else {}),
                **({"score": line.score} if line.score else {}),
                **({"features": line.train.features} if line.train else {}),
                "tree": line.tree or (None if line.model else cfg.samples[cfg.signal_sample].tree),
                "cut": line.cut,
                "preselection": line.preselection,
                "prescale": line.prescale,
                "group": line.group,
            }
            for n, line in zip(lines, cfg_lines, strict=True)
        },
        "channels": {
            str(c): {"name": names.get(c, str(c)), "weight": w, "n_events": int((codes == c).sum())}
            for c, w in zip(channels, channel_weights, strict=True)
        },
        "input_rate_khz": cfg.trigger.input_rate_khz,
        "n_minbias_events": int(mb_info["n_events"]),
        "n_minbias_rows": len(key_run),
        "n_signal_events": len(gen_run),
        "optimiser": "Adam (torch) on sigmoid-smoothed decisions, exact projection onto the rate",
        "rates": {
            rate_key(r.target_khz): _result(r, lines, channels) for r in results[: len(targets)]
        },
        "curve": [_result(r, lines, channels) for r in results[len(targets) :]],
        "seconds": time.perf_counter() - t0,
    }
    write_json(lay.menu, out)
    _save_to_selection(cfg, out)
    return out


def _save_to_selection(cfg: AnalysisConfig, result: Mapping[str, Any]) -> None:
    """``selection/menu.json``: each line and its threshold per target rate; a train line's fold models."""
    from ..deploy.menu import MENU_FILE
    from ..io.storage import write_json

    lay = Layout.of(cfg)
    if not lay.selection.is_dir():
        msg = f"{lay.selection}: no saved selection; run the evaluate step first"
        raise HepselError(msg)
    assert cfg.menu is not None
    menu_dir = lay.selection / "menu"
    if menu_dir.exists():
        shutil.rmtree(menu_dir)
    for name, line in cfg.menu.lines.items():
        if line.train is not None:
            src = lay.menu_line(name).with_suffix("")
            dst = menu_dir / name
            dst.mkdir(parents=True)
            for k in range(cfg.folds.k):
                for f in src.glob(f"fold{k}.*"):
                    shutil.copyfile(f, dst / f.name)
    write_json(
        lay.selection / MENU_FILE,
        {
            "lines": result["lines"],
            "aliases": dict(cfg.aliases),
            "folds": cfg.folds.k,
            "prescale_seed": cfg.seed,
            "thresholds": {k: r["thresholds"] for k, r in result["rates"].items()},
            "unit": "kHz",
        },
    )
