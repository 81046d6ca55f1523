"""The headline figures: the best model and those compatible with it, and the table printed at the end of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeGuard

from .formatting import count, rate, value_error

__all__ = ["Ranking", "headline_text", "rank_models"]


class Ranking(NamedTuple):
    """The best model by one headline figure, and the models statistically compatible with it."""

    best: str | None
    #: models whose figure lies within one combined standard deviation of the best's (best excluded)
    compatible: tuple[str, ...]
    #: what was compared, e.g. "total efficiency at 660 kHz"
    figure: str


def _known(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _figure(s: Mapping[str, Any], kind: str, rate_key: str | None) -> tuple[float, float] | None:
    """(value, standard deviation) of one model's figure; None where not computed."""
    if kind == "auc":
        v, err = s.get("auc"), s.get("auc_std")
        return (float(v), float(err) if _known(err) else 0.0) if _known(v) else None
    e = s.get(kind, {}).get(rate_key, {})
    v, lo, hi = e.get("eff"), e.get("eff_low"), e.get("eff_high")
    if not _known(v):
        return None
    # half the 68.3% CL interval: one standard deviation where the interval is near-Gaussian
    sigma = (float(hi) - float(lo)) / 2 if _known(lo) and _known(hi) else 0.0
    return float(v), sigma


def rank_models(
    summary: Mapping[str, Any], models: Sequence[str] | None = None, rate_khz: str | None = None
) -> Ranking:
    """The model with the highest total efficiency at ``rate_khz`` (else signal efficiency there, else AUC).

    A model is *compatible* with the best when the best's figure exceeds its
    own by at most one combined standard deviation, sqrt(s_best^2 + s^2),
    each s half the model's 68.3% CL interval (the AUC: its bootstrap
    standard deviation). The figures of two models are measured on the same
    events, so the difference's own error is smaller than this sum: the rule
    errs on the side of calling models compatible.

    Parameters
    ----------
    summary : mapping
        The content of ``summary.json``.
    models : sequence of str, optional
        The models to rank (default: every key not starting with ``_``).
    rate_khz : str, optional
        The working point, a key of ``eff_total`` and ``eff_at_rate``
        (default: the first target rate of ``_meta``, else the first working
        point of ``eff_at_rate``).

    Examples
    --------
    >>> s = {"mlp": {"eff_total": {"660": {"eff": 0.5579, "eff_low": 0.5543, "eff_high": 0.5614}}},
    ...      "bdt": {"eff_total": {"660": {"eff": 0.5576, "eff_low": 0.5540, "eff_high": 0.5611}}},
    ...      "fisher": {"eff_total": {"660": {"eff": 0.3692, "eff_low": 0.3658, "eff_high": 0.3727}}}}
    >>> rank_models(s, rate_khz="660")
    Ranking(best='mlp', compatible=('bdt',), figure='total efficiency at 660 kHz')
    """
    names = [m for m in (models if models is not None else summary) if not m.startswith("_")]
    if rate_khz is None:
        rates = summary.get("_meta", {}).get("target_rates_khz") or []
        keys = (r for m in names for r in summary[m].get("eff_at_rate", {}))
        rate_khz = f"{rates[0]:g}" if rates else next(keys, None)
    kinds = (["eff_total", "eff_at_rate"] if rate_khz is not None else []) + ["auc"]
    labels = {
        "eff_total": f"total efficiency at {rate(rate_khz or 0)}",
        "eff_at_rate": f"signal efficiency at {rate(rate_khz or 0)}",
        "auc": "AUC",
    }
    for kind in kinds:
        figs = {m: _figure(summary[m], kind, rate_khz) for m in names}
        have = {m: f for m, f in figs.items() if f is not None}
        if not have:
            continue
        best = max(have, key=lambda m: have[m][0])
        v0, s0 = have[best]
        compatible = tuple(
            m for m, (v, s) in have.items() if m != best and v0 - v <= math.hypot(s0, s)
        )
        return Ranking(best, compatible, labels[kind])
    return Ranking(None, (), "")


def headline_text(summary: Mapping[str, Any], report: str | None = None) -> str:
    """A compact plain-text table of the summary's headline figures.

    One row per model: the ROC AUC with its bootstrap uncertainty, and at each
    target output rate the signal efficiency after the preselection and the
    total efficiency (preselection included, per generated event), in percent;
    in an offline study instead the maximum S/sqrt(S+B), the signal efficiency
    and the expected yields S and B passing that cut. The best model (see
    :func:`rank_models`) and those compatible with it are marked, and the
    lines after the table say what each efficiency counts.

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
    model       AUC              eff @ 500 kHz  total @ 500 kHz
    bdt (best)  0.9800 ± 0.0010  80.0 %         50.0 %
    best: highest total efficiency at 500 kHz
    eff: of the signal events with a preselected truth-matched candidate, those in which any preselected candidate passes (weighted)
    total: the same passing events, of all generated signal events (preselection included)
    """
    models = {k: v for k, v in summary.items() if not k.startswith("_")}
    rates: list[str] = []
    for s in models.values():
        rates += [r for r in s.get("eff_at_rate", {}) if r not in rates]
    ranking = rank_models(summary, list(models))
    header = ["model", "AUC"]
    for r in rates:
        header += [f"eff @ {rate(r)}", f"total @ {rate(r)}"]
    # offline studies: the best S/sqrt(S+B) and the signal efficiency there
    offline = any("offline" in s for s in models.values())
    if offline:
        header += ["max S/sqrt(S+B)", "eff there", "S there", "B there"]
    rows = [header]
    for name, s in models.items():
        auc = s.get("auc")
        mark = (
            " (best)"
            if name == ranking.best and not offline
            else " (compatible)"
            if name in ranking.compatible and not offline
            else ""
        )
        cells = [name + mark, "-" if not _known(auc) else value_error(auc, s.get("auc_std"))]
        for r in rates:
            eff = s.get("eff_at_rate", {}).get(r, {}).get("eff")
            tot = s.get("eff_total", {}).get(r, {}).get("eff")
            cells += [
                "-" if eff is None else f"{100 * eff:.1f} %",
                "-" if tot is None else f"{100 * tot:.1f} %",
            ]
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
    if rates and not offline:
        lines += _legend(models, ranking)
    if report is not None:
        lines.append(f"report: {report}")
    return "\n".join(lines)


def _legend(models: Mapping[str, Any], ranking: Ranking) -> list[str]:
    """What the marks and the efficiencies of a trigger study's headline count."""
    n_sig = next(
        (
            s["trigger_events"]["n_signal_events"]
            for s in models.values()
            if s.get("trigger_events")
        ),
        None,
    )
    n_gen = next(
        (
            e["n_events"]
            for s in models.values()
            for e in s.get("eff_total", {}).values()
            if "n_events" in e
        ),
        None,
    )
    of_sig = f"the {count(n_sig)} " if n_sig is not None else ""
    of_gen = f"the {count(n_gen)} " if n_gen is not None else ""
    out = []
    if ranking.best is not None:
        out.append(
            f"best: highest {ranking.figure}"
            + (
                "; compatible: within one combined standard deviation of it"
                if ranking.compatible
                else ""
            )
        )
    out += [
        f"eff: of {of_sig or 'the '}signal events with a preselected truth-matched candidate, those in which any "
        "preselected candidate passes (weighted)",
        f"total: the same passing events, of {of_gen or 'all '}generated signal events (preselection included)",
    ]
    return out
