"""The report's trigger-menu section (from ``menu.json``)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .formatting import number, value_error
from .html import _figure, _grid, _table

__all__ = ["menu_section"]


def _pm(q: Mapping[str, Any], scale: float = 1.0) -> str:
    return value_error(q["value"] * scale, q["error"] * scale)


def _threshold(t: float | None) -> str:
    return "off" if t is None else number(t)


def menu_section(root: Path, menu: Mapping[str, Any]) -> str:
    """Per target rate: each line's threshold and rates; each channel's efficiency, optimised vs naive."""
    lines = list(menu["lines"])
    channels = menu["channels"]
    parts = [
        "<p class='note'>The lines share each target rate; their thresholds are chosen together to maximise "
        "the channel-weighted mean of the signal modes' TOS efficiencies (the objective), with an event in "
        "which several lines fire counted once. Thresholds are chosen on the even-numbered events and every "
        "figure here is measured on the odd ones. The naive split gives every line the same rate, the menu "
        f"within the target. Optimiser: {html.escape(menu['optimiser'])}.</p>",
        _table(
            ["line", "kind", "runs on", "prescale", "group"],
            [
                [
                    html.escape(n),
                    html.escape(
                        f"{spec['kind']}" + (f": {spec['model']}" if spec.get("model") else "")
                    ),
                    html.escape(str(spec.get("tree") or "the study's candidates")),
                    f"{spec['prescale']:g}",
                    html.escape(str(spec.get("group") or "")),
                ]
                for n, spec in menu["lines"].items()
            ],
            "text",
        ),
    ]
    for key, point in menu["rates"].items():
        parts.append(
            f"<h3>{html.escape(key)} kHz: menu rate {_pm(point['rate_khz'])} kHz, objective "
            f"{point['objective']:.3f} (naive split {point['naive']['objective']:.3f}, "
            f"{point['gain']:+.1%})</h3>"
        )
        parts.append(
            _table(
                [
                    "line",
                    "threshold",
                    "inclusive rate [kHz]",
                    "exclusive rate [kHz]",
                    "naive threshold",
                ],
                [
                    [
                        html.escape(n),
                        _threshold(point["thresholds"][n]),
                        _pm(point["inclusive_rate_khz"][n]),
                        _pm(point["exclusive_rate_khz"][n]),
                        _threshold(point["naive"]["thresholds"][n]),
                    ]
                    for n in lines
                ],
            )
        )
        parts.append(
            _table(
                [
                    "channel",
                    "weight",
                    *(f"{html.escape(n)} alone [%]" for n in lines),
                    "menu [%]",
                    "naive split [%]",
                ],
                [
                    [
                        html.escape(ch["name"]),
                        f"{ch['weight']:g}",
                        *(_pm(point["line_efficiency"][n][code], 100) for n in lines),
                        _pm(point["efficiency"][code], 100),
                        _pm(point["naive"]["efficiency"][code], 100),
                    ]
                    for code, ch in channels.items()
                ],
            )
        )
    first = next(iter(menu["rates"]))
    figures = [
        (
            "menu_efficiency",
            "Efficiency of each signal mode (TOS, all generated events) against the menu's output rate, for the "
            "optimised division (solid) and the naive split (dashed, open markers); dotted lines: target rates.",
        ),
        (
            "menu_overlap",
            f"Rate of events in which both lines fire at {first} kHz (diagonal: each line's own rate).",
        ),
        (
            "menu_exclusive",
            "Each line's rate at each target: the part no other line fires on (exclusive, solid) and the part "
            "shared with other lines (hatched).",
        ),
    ]
    pngs = [(root / "plots" / f"{n}.png", c) for n, c in figures]
    parts.append(_grid([_figure(root, p, c) for p, c in pngs if p.exists()]))
    return "\n".join(parts)
