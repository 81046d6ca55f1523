"""The headline table printed at the end of a run (``snakemake`` or ``hepsel run``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["headline_text"]


def _rate_label(rate: str) -> str:
    return f"{float(rate):g} kHz"


def headline_text(summary: Mapping[str, Any], report: str | None = None) -> str:
    """A compact plain-text table of the summary's headline figures.

    One row per model: the ROC AUC with its bootstrap uncertainty, and at each
    target output rate the signal efficiency after the preselection and the
    total efficiency (preselection included, per generated event); in an
    offline study instead the maximum S/sqrt(S+B), the signal efficiency and
    the expected yields S and B passing that cut.

    Parameters
    ----------
    summary : mapping
        The content of ``summary.json``; keys starting with ``_`` are metadata
        and skipped.
    report : str, optional
        Path of ``report.html``, named on the last line.

    Returns
    -------
    str
        The table, lines joined by newlines (no trailing newline).

    Examples
    --------
    >>> s = {"bdt": {"auc": 0.98, "auc_std": 0.001, "eff_at_rate": {"500": {"eff": 0.8}},
    ...              "eff_total": {"500": {"eff": 0.5}}}, "_meta": {}}
    >>> print(headline_text(s))
    model  AUC              eff @ 500 kHz  total @ 500 kHz
    bdt    0.9800 ± 0.0010  0.800          0.500
    """
    models = {k: v for k, v in summary.items() if not k.startswith("_")}
    rates: list[str] = []
    for s in models.values():
        rates += [r for r in s.get("eff_at_rate", {}) if r not in rates]
    header = ["model", "AUC"]
    for r in rates:
        header += [f"eff @ {_rate_label(r)}", f"total @ {_rate_label(r)}"]
    # offline studies: the best S/sqrt(S+B) and the signal efficiency there
    offline = any("offline" in s for s in models.values())
    if offline:
        header += ["max S/sqrt(S+B)", "eff there", "S there", "B there"]
    rows = [header]
    for name, s in models.items():
        auc = s.get("auc")
        err = s.get("auc_std")
        cells = [
            name,
            "-" if auc is None else f"{auc:.4f}" + ("" if err is None else f" ± {err:.4f}"),
        ]
        for r in rates:
            eff = s.get("eff_at_rate", {}).get(r, {}).get("eff")
            tot = s.get("eff_total", {}).get(r, {}).get("eff")
            cells += ["-" if eff is None else f"{eff:.3f}", "-" if tot is None else f"{tot:.3f}"]
        if offline:
            sig = (s.get("optimal_cut") or {}).get("significance") or {}
            cells += [
                "-" if sig.get("value") is None else f"{sig['value']:.3g}",
                "-" if sig.get("sig_eff") is None else f"{sig['sig_eff']:.3f}",
                # the expected yields passing the cut (older summaries lack them)
                "-" if sig.get("signal_yield") is None else f"{sig['signal_yield']:.4g}",
                "-" if sig.get("background_yield") is None else f"{sig['background_yield']:.4g}",
            ]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    if report is not None:
        lines.append(f"report: {report}")
    return "\n".join(lines)
