"""One HTML page with the comparison table and every plot of an analysis.

The page is self-contained in its directory: it links the PNG plots by
relative path (``plots/...``) and embeds the tables, so ``report.html`` opens
in any browser from ``results/<analysis>/``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import formatting as fmt

__all__ = ["render_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1360px; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #0057a8; }
h2 { margin-top: 1.6em; color: #0057a8; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; max-width: 100%; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: right; }
th { background: #eef3fa; vertical-align: bottom; }
td { white-space: nowrap; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; }
table.text td { white-space: normal; text-align: left; }
table.text th { text-align: left; }
.nw { white-space: nowrap; }
.headline th { text-align: center; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; }
.grid figure { margin: 0; width: 640px; max-width: 100%; }
.grid img { width: 100%; border: 1px solid #ddd; }
figure { max-width: 100%; }
figure img { max-width: 100%; }
figcaption { font-size: 0.88em; color: #444; margin-top: 2px; }
.note { color: #555; font-size: 0.9em; }
.best { color: #8a6500; font-weight: bold; white-space: nowrap; }
tr.best-row td { font-weight: bold; }
.compatible { color: #555; font-size: 0.85em; white-space: nowrap; }
.toc { background: #f6f8fb; border: 1px solid #ccd; padding: 0.3em 1em; margin: 0 0 1em 0; font-size: 0.9em; }
.toc ol { display: inline; margin: 0; padding: 0; }
.toc li { display: inline; margin-left: 1em; }
.toc li li { margin-left: 0.5em; }
.warnings { list-style: none; padding: 0; }
.warnings li { margin: 3px 0; padding: 4px 8px; border-left: 5px solid #e0a000; background: #fff8e5; }
.warnings li.error { border-color: #c00; background: #fdecec; }
.ok { color: #2a7a2a; }
.cols { display: flex; flex-wrap: wrap; gap: 2em; }
.cols h3 { margin: 0.3em 0 0 0; }
details { border: 1px solid #ccd; border-radius: 4px; margin: 0.6em 0; padding: 0.3em 0.8em; }
summary { cursor: pointer; font-size: 1.1em; padding: 0.2em 0; }
pre { white-space: pre-wrap; }
"""


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return "n/a" if math.isnan(x) else f"{x:.{digits}f}".replace("-", "&minus;")
    return html.escape(str(x))


def _g(x: Any, digits: int = 4) -> str:
    """A yield or figure of merit with ``digits`` significant digits ("n/a" if not computed)."""
    return _text(fmt.number(float(x), digits)) if _known(x) else "n/a"


def _text(s: str) -> str:
    """Plain text of :mod:`hepsel.report.formatting` as HTML."""
    return html.escape(s).replace("-", "&minus;").replace("±", "&plusmn;")


def _pm_html(value: Any, err: Any, *, sign: bool = False) -> str:
    """``value ± err`` with the digits the error allows; the value alone without an error."""
    if not _known(value):
        return "n/a"
    return _text(fmt.value_error(float(value), float(err) if _known(err) else None, sign=sign))


def _known(x: Any) -> bool:
    """Whether a figure was computed (``summary.json`` has null, in-memory summaries NaN, where not)."""
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _percent(x: Any) -> str:
    return _text(fmt.percent(float(x))) if _known(x) else "n/a"


def _eff(e: Mapping[str, Any], key: str = "eff") -> str:
    """An efficiency and its interval in percent: ``55.8 ± 0.4 %``, asymmetric as super- and subscripts."""
    v, lo, hi = e.get(key), e.get(f"{key}_low"), e.get(f"{key}_high")
    if v is None or not _known(v):
        return "n/a"
    if lo is None or hi is None or not (_known(lo) and _known(hi)):
        return _percent(v)
    p = fmt.percent_interval(float(v), float(lo), float(hi))
    if p.symmetric:
        return f"{p.value} &plusmn; {_text(p.up)} %"
    up = f"<sup>+{_text(p.up)}</sup>" if p.up else ""
    down = f"<sub>&minus;{_text(p.down)}</sub>" if p.down else ""
    return f"{p.value}{up}{down} %"


def _pvalue(p: Any) -> str:
    return _text(fmt.pvalue(float(p))) if _known(p) else "n/a"


def _count(n: Any) -> str:
    """A count from the summary, "?" where it is missing."""
    return fmt.count(float(n)) if _known(n) and not isinstance(n, str) else "?"


def _input_rate(khz: Any) -> str:
    return fmt.rate(float(khz)) if _known(khz) else "n/a"


def _rate_text(label: str) -> str:
    """A working point named by its rate, "1000 kHz", as "1 MHz"; other labels as they are."""
    value, _, unit = label.partition(" ")
    try:
        return fmt.rate(float(value)) if unit == "kHz" else label
    except ValueError:
        return label


def _signed(x: float) -> str:
    """A SHAP value: signed, two decimals, a true minus sign."""
    return f"{x:+.2f}".replace("-", "&minus;")


def _score(x: float) -> str:
    """A classifier probability: four decimals, "&lt; 0.0001" and "&gt; 0.9999" at the ends."""
    if x < 0.00005:
        return "&lt; 0.0001"
    if x > 0.99995:
        return "&gt; 0.9999"
    return f"{x:.4f}"


def _negative_weight_rows(summary: Mapping[str, Any], models: Sequence[str]) -> list[list[str]]:
    """One row per fold, learner and class whose negative weights were resampled."""
    rows = []
    for m in models:
        for rec in summary[m].get("training", []):
            for key in ("negative_weights", "negative_weights_gan"):
                nw = rec.get(key)
                if not nw:
                    continue
                for cls in ("signal", "background"):
                    c = nw.get(cls)
                    if not c:
                        continue
                    res = c.get("residuals", {})
                    worst = max(res, key=lambda f: res[f]["max_abs_pull"]) if res else None
                    pull = (
                        f"{res[worst]['max_abs_pull']:.2f} ({html.escape(worst)})"
                        if worst
                        else "n/a"
                    )
                    rows.append(
                        [
                            html.escape(m),
                            str(rec.get("fold", "?")),
                            html.escape(str(nw.get("learner", ""))),
                            cls,
                            fmt.count(c["n_negative"]),
                            fmt.count(c["n_cells"]),
                            fmt.count(c["cell_size_max"]),
                            pull,
                        ]
                    )
    return rows


def _measured_rate(e: dict[str, Any]) -> str:
    """The rate measured on the events not used to choose the threshold (older summaries: the in-sample rate)."""
    if "rate_khz_measured" in e:
        return _pm_html(e["rate_khz_measured"], e.get("rate_khz_measured_err"))
    return _pm_html(e["rate_khz"], e.get("rate_khz_err")) + " (in-sample)"


def _rate_pull(e: Mapping[str, Any]) -> str:
    """(measured - target) / sigma of a working point's rate, with its sign; n/a for older summaries."""
    pull = e.get("rate_khz_measured_pull")
    return f"{pull:+.1f} &sigma;" if _known(pull) else "n/a"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table; ``cls="text"`` lets its cells wrap (tables of words rather than numbers)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    attr = f" class='{cls}'" if cls else ""
    return f"<table{attr}><tr>{head}</tr>{body}</table>"


_GLOBAL_CAPTIONS = {
    "roc": "ROC curves of every model: candidate level, truth-matched signal against minimum-bias candidates, "
    "each candidate scored by the fold model that did not train on it.",
    "eff_vs_rate": "Signal efficiency (any candidate of the event passes) against the output rate, event level, "
    "every model; the working points of the tables are read off these curves.",
    "eff_vs_rate_tos": "As above, TOS: the truth-matched signal candidate itself passes.",
    "correlation_signal": "Linear correlations of the input features, signal candidates (%).",
    "correlation_background": "Linear correlations of the input features, minimum-bias candidates (%).",
    "augmentation_auc": "Augmentation study: AUC against the number of real training events, with and without "
    "GAN-generated events.",
    "augmentation_eff_at_rate": "Augmentation study: signal efficiency at the first target rate against the number "
    "of real training events.",
    "cutflow": "Cumulative efficiency of the preselection, step by step, for each sample.",
}

# offline studies have background samples, not minimum-bias events
_OFFLINE_CAPTIONS = {
    "roc": "ROC curves of every model: candidate level, truth-matched signal against the candidates of all "
    "background samples (normalised weights), each candidate scored by the fold model that did not train on it.",
    "correlation_background": "Linear correlations of the input features, background candidates of all background "
    "samples (%).",
}

# plot kind (the file stem without the model) -> caption; {m} is the model
_MODEL_CAPTIONS = {
    "scores": "Response of {m}: fold 0's model on its training fold (points) and on its test fold (histogram), "
    "signal and background. Shapes that differ mean overtraining (KS p-values in the warnings).",
    "eff_vs_cut": "Signal and background efficiency of {m} against the cut on its response.",
    "optimal_cut": "S/&radic;(S+B) and the Punzi figure of merit against the cut on {m}'s response; cuts that keep "
    "too little simulated background (see the optimal-cut table) are excluded from the optimum.",
    "sculpting": "Background efficiency of {m}'s working points in bins of the mass: a flat efficiency leaves the "
    "background's mass distribution unchanged; a rise under the signal peak would sculpt a peak into it.",
    "shap_bar": "Mean |SHAP value| of each feature for {m}: what the model relies on most.",
    "shap_beeswarm": "SHAP value of each feature for every event (one point each), coloured by the feature's value.",
    "gan_overlay": "Feature distributions of real (held-out) and GAN-generated signal for {m}, with the "
    "generated/real ratio under each; the outermost bins hold what lies beyond the plotted range. The few "
    "candidates at acos(DIRA) near &pi; are real: when the flight distance is short against the vertex "
    "resolution, which is poorest along the beam (close to the momentum), the decay vertex is often measured "
    "upstream of the primary vertex, and the direction angle flips to about &pi;.",
    "gan_correlation": "Feature correlations of real and GAN-generated events for {m}.",
    "uncertainty_pull": "Calibration of {m}'s per-candidate score uncertainty: pull of an independent replica's score "
    "against the replica mean, in units of the uncertainty (times &radic;(1+1/R)). A calibrated uncertainty follows "
    "Student's t with R&minus;1 degrees of freedom; wider pulls mean the uncertainty is underestimated.",
    "uncertainty_bins": "Fraction of candidates whose independent-replica score lies more than one uncertainty "
    "(&times;&radic;(1+1/R)) from the replica mean, in bins of {m}'s response, against its expectation.",
}


def _split_stem(stem: str, models: Sequence[str]) -> tuple[str, str | None, bool]:
    """(plot kind, model, per decay mode) of a plot file stem; model None for a global plot."""
    per_mode = stem.endswith("_per_mode")
    base = stem[: -len("_per_mode")] if per_mode else stem
    # the longest model name that ends the stem: "scores_gan_bdt" is gan_bdt's, not bdt's
    for m in sorted(models, key=len, reverse=True):
        if base.endswith(f"_{m}"):
            return base[: -len(m) - 1], m, per_mode
    return base, None, per_mode


def _caption(kind: str, model: str | None, per_mode: bool, offline: bool = False) -> str:
    if model is None:
        if offline and kind in _OFFLINE_CAPTIONS:
            return _OFFLINE_CAPTIONS[kind]
        return _GLOBAL_CAPTIONS.get(kind, html.escape(kind))
    m = f"<b>{html.escape(model)}</b>"
    if kind in _MODEL_CAPTIONS:
        return _MODEL_CAPTIONS[kind].format(m=m)
    if kind.startswith("shap_dependence_"):
        feat = html.escape(kind[len("shap_dependence_") :])
        return f"SHAP value of {feat} against its value, {m}."
    if kind.startswith("eff_vs_"):
        var = kind[len("eff_vs_") :]
        total = var.endswith("_total")
        var = html.escape(var[: -len("_total")] if total else var)
        of = (
            "all generated signal events (preselection included)"
            if total
            else "signal events whose truth-matched candidate passed the preselection"
        )
        split = ", per decay mode" if per_mode else ""
        where = "working point" if offline else "target rate"
        return f"Signal efficiency of {m} at each {where} against {var}{split}; relative to {of}."
    return html.escape(kind)


def _figure(root: Path, png: Path, caption: str) -> str:
    rel = png.relative_to(root).as_posix()
    pdf = png.with_suffix(".pdf").relative_to(root).as_posix()
    alt = html.escape(png.stem)
    return f'<figure><a href="{pdf}"><img src="{rel}" alt="{alt}"></a><figcaption>{caption}</figcaption></figure>'


def _uncertainty_section(root: Path, summary: Mapping[str, Any], models: Sequence[str]) -> str:
    """Table and plots of the per-candidate score uncertainty of the models that have replicas ("" if none)."""
    rows, figures = [], []
    for m in models:
        u = summary[m].get("uncertainty")
        if not u:
            continue
        cal = u.get("calibration") or {}
        rows.append(
            [
                html.escape(m),
                str(u.get("replicas")),
                "yes" if u.get("bootstrap") else "no",
                _fmt(u.get("median_err"), 4),
                _fmt(cal.get("fraction_beyond_1"), 3),
                _fmt(cal.get("expected_fraction_beyond_1"), 3),
                _fmt(cal.get("median_abs_pull"), 3),
                _fmt(cal.get("expected_median_abs_pull"), 3),
                str(cal.get("n_zero_err", "n/a")),
            ]
        )
        for kind in ("uncertainty_pull", "uncertainty_bins"):
            png = root / "plots" / f"{kind}_{m}.png"
            if png.is_file():
                figures.append(_figure(root, png, _caption(kind, m, per_mode=False)))
    if not rows:
        return ""
    header = [
        "model",
        "replicas R",
        "bootstrap",
        "median err",
        "|pull| > 1",
        "expected",
        "median |pull|",
        "expected",
        "err = 0",
    ]
    note = (
        "<p class='note'>Each candidate's uncertainty <code>score_&lt;model&gt;_err</code> (in scores.root) is the "
        "standard deviation of its scores from R replicas of the fold model that did not see it (same procedure, "
        "other seeds). Check: one more independent replica per fold; pull = (its score &minus; replica mean) / "
        "(err &times; &radic;(1+1/R)) follows Student's t with R&minus;1 degrees of freedom if err is calibrated, "
        "so the expected fraction beyond 1 is 2&thinsp;t<sub>R&minus;1</sub>(&gt;1).</p>"
    )
    return note + _table(header, rows) + _grid(figures)


def _grid(items: Sequence[str]) -> str:
    return f'<div class="grid">{"".join(items)}</div>' if items else ""


def _plots(
    root: Path,
    models: Sequence[str],
    offline: bool = False,
    explained: Collection[str] | None = None,
) -> tuple[list[str], dict[str, list[str]]]:
    """Every plot once: the global ones in a fixed order, the others by model.

    Plots of a model no longer configured (left over in ``plots/``) are skipped, and
    so are SHAP figures of a model not in ``explained`` (when given): left from a run
    with SHAP values switched on.
    """
    pngs = sorted((root / "plots").glob("*.png")) if (root / "plots").exists() else []
    global_items: dict[str, str] = {}
    by_model: dict[str, list[tuple[int, str, str]]] = {m: [] for m in models}
    order = ["scores", "eff_vs_cut", "optimal_cut", "eff_vs_", "sculpting", "shap_", "gan_"]
    for png in pngs:
        kind, model, per_mode = _split_stem(png.stem, models)
        if kind.startswith("uncertainty_"):
            continue  # shown in the score-uncertainty section
        if explained is not None and kind.startswith("shap_") and model not in explained:
            continue
        if model is None:
            if kind in _GLOBAL_CAPTIONS:
                global_items[kind] = _figure(root, png, _caption(kind, None, per_mode, offline))
            continue
        rank = next((i for i, o in enumerate(order) if kind == o or kind.startswith(o)), len(order))
        by_model[model].append(
            (rank, png.stem, _figure(root, png, _caption(kind, model, per_mode, offline)))
        )
    glob_list = [global_items[k] for k in _GLOBAL_CAPTIONS if k in global_items and k != "cutflow"]
    if "cutflow" in global_items:
        glob_list.append(global_items["cutflow"])
    return glob_list, {m: [f for _, _, f in sorted(v)] for m, v in by_model.items()}


def _total_per_mode(summary: Mapping[str, Any], models: Sequence[str], rates: Sequence[str]) -> str:
    """Total efficiencies per decay mode: the preselection, then each model's working points."""
    names: list[str] = []
    for m in models:
        for entry in [
            summary[m].get("eff_preselection", {}),
            *summary[m].get("eff_total", {}).values(),
        ]:
            names += [n for n in entry.get("per_mode", {}) if n not in names]
    rows = []
    presel = next(
        (summary[m]["eff_preselection"] for m in models if "eff_preselection" in summary[m]), None
    )
    if presel is not None:
        pm = presel.get("per_mode", {})
        rows.append(
            ["preselection", "", _eff(presel), *(_eff(pm[n]) if n in pm else "n/a" for n in names)]
        )
    for m in models:
        for r in rates:
            e = summary[m].get("eff_total", {}).get(r)
            if e is not None:
                pm = e.get("per_mode", {})
                rows.append(
                    [
                        html.escape(m),
                        fmt.rate(r),
                        _eff(e),
                        *(_eff(pm[n]) if n in pm else "n/a" for n in names),
                    ]
                )
    return "<h3>Total efficiency per decay mode (all generated signal events)</h3>" + _table(
        ["model", "working point", "all modes", *map(html.escape, names)], rows
    )


def _significance(s: Mapping[str, Any]) -> Mapping[str, Any]:
    """A model's S/sqrt(S+B) optimum (empty if not computed)."""
    return (s.get("optimal_cut") or {}).get("significance") or {}


def _unit(summary: Mapping[str, Any], models: Sequence[str]) -> str:
    """What offline yields count: ``candidates`` or ``events``."""
    return next(
        (
            str(summary[m]["offline"].get("unit", "candidates"))
            for m in models
            if summary[m].get("offline")
        ),
        "candidates",
    )


def _offline_headline(summary: Mapping[str, Any], models: Sequence[str]) -> str:
    """Offline studies: per model the AUC and the S/sqrt(S+B) optimum with the yields there."""

    def key(m: str) -> tuple[float, float]:
        v, auc = _significance(summary[m]).get("value"), summary[m].get("auc")
        return (
            float(v) if v is not None and _known(v) else -1.0,
            float(auc) if auc is not None and _known(auc) else -1.0,
        )

    best = max(models, key=key) if models else None
    header = [
        "model",
        "AUC (test folds)",
        "max S/&radic;(S+B)",
        "threshold",
        "signal eff. there",
        "S there",
        "B there",
        "max Punzi",
    ]
    rows = []
    for m in models:
        s = summary[m]
        auc = _pm_html(s.get("auc"), s.get("auc_std"))
        name = html.escape(m) + (" <span class='best'>&#9733; best</span>" if m == best else "")
        sig = _significance(s)
        oc = s.get("optimal_cut") or {}
        punzi = oc.get("punzi") or {}
        n_s, n_b = _fom_yields(oc, sig)
        rows.append(
            [
                f"<a href='#model-{html.escape(m)}'>{name}</a>",
                auc,
                _g(sig.get("value")),
                _fmt(sig.get("threshold")),
                _fmt(sig.get("sig_eff"), 3),
                _g(n_s),
                _g(n_b),
                _g(punzi.get("value")),
            ]
        )
    off: Mapping[str, Any] = next(
        (summary[m]["offline"] for m in models if summary[m].get("offline")), {}
    )
    unit = _unit(summary, models)
    n_sig = off.get("signal_yield")
    n_bkg = off.get("background_yield")
    note = (
        f"S and B: expected signal and background yields ({unit}) passing the cut, out of "
        f"S = {_g(n_sig)} and B = {_g(n_bkg)} after the preselection (normalised weights); "
        "<em>signal eff. there</em>: S there / S. Punzi: &epsilon;<sub>S</sub> / (a/2 + &radic;B) with "
        f"a = {_g(next((summary[m]['optimal_cut'].get('punzi_sigma') for m in models if summary[m].get('optimal_cut')), None))}"
        ". AUC error: bootstrap over events. &#9733; best: highest S/&radic;(S+B)."
    )
    return _table(header, rows) + f"<p class='note'>{note}</p>"


def _fom_yields(oc: Mapping[str, Any], fom: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """S and B passing an optimal cut: stored, or the yields before the cut times the efficiencies."""
    n_s, n_b = fom.get("signal_yield"), fom.get("background_yield")
    if n_s is None and _known(fom.get("sig_eff")) and _known(oc.get("signal_yield")):
        n_s = float(fom["sig_eff"]) * float(oc["signal_yield"])
    if n_b is None and _known(fom.get("bkg_eff")) and _known(oc.get("background_yield")):
        n_b = float(fom["bkg_eff"]) * float(oc["background_yield"])
    return n_s, n_b


def _headline(
    summary: Mapping[str, Any], models: Sequence[str], rates: Sequence[str], offline: bool = False
) -> str:
    """The headline table: per model the AUC and, per target rate, the signal and total efficiency."""
    if offline:
        return _offline_headline(summary, models)
    from .headline import rank_models

    ranking = rank_models(summary, models, rates[0] if rates else None)
    with_total = any("eff_total" in summary[m] for m in models)
    n_sig = next(
        (summary[m].get("trigger_events", {}).get("n_signal_events") for m in models), None
    )
    n_gen = next(
        (
            e.get("n_events")
            for m in models
            for e in summary[m].get("eff_total", {}).values()
            if "n_events" in e
        ),
        None,
    )
    per_rate = 2 if with_total else 1
    top = "<th rowspan='2'>model</th><th rowspan='2'>AUC<br>(test folds)</th>" + "".join(
        f"<th colspan='{per_rate}'>{fmt.rate(r)}</th>" for r in rates
    )
    sub = "".join(
        "<th>signal eff.</th>" + ("<th><em>total</em> eff.</th>" if with_total else "")
        for _ in rates
    )
    rows = []
    for m in models:
        s = summary[m]
        if m == ranking.best:
            mark = " <span class='best'>&#9733; best</span>"
        elif m in ranking.compatible:
            mark = " <span class='compatible'>&asymp; compatible</span>"
        else:
            mark = ""
        cells = [
            f"<a href='#model-{html.escape(m)}'>{html.escape(m)}</a>{mark}",
            _pm_html(s.get("auc"), s.get("auc_std")),
        ]
        for r in rates:
            cells.append(_eff(s.get("eff_at_rate", {}).get(r, {})))
            if with_total:
                cells.append(_eff(s.get("eff_total", {}).get(r, {})))
        cls = " class='best-row'" if m == ranking.best else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = f"<table class='headline'><tr>{top}</tr><tr>{sub}</tr>{''.join(rows)}</table>"
    of_sig = f"the {fmt.count(n_sig)} " if n_sig is not None else "the "
    counted = (
        f"<em>signal eff.</em>: of {of_sig}signal events whose truth-matched candidate passed the preselection, "
        "the fraction in which any preselected candidate passes"
    )
    if with_total:
        of_gen = f"the {fmt.count(n_gen)} " if n_gen is not None else "all "
        counted += (
            f"; <em>total eff.</em>: those passing events over {of_gen}generated signal events "
            "(the preselection's losses included)"
        )
    counted += (
        ". Both weighted with the event weights. An event counts only if its truth-matched candidate passed the "
        "preselection, unlike in <code>hepsel apply</code>'s count of passing events of the signal file "
        "(unweighted, no truth matching), which is therefore higher."
    )
    rule = ""
    if ranking.best is not None:
        rule = f"<br>&#9733; best: highest {html.escape(ranking.figure)}" + (
            "; &asymp; compatible: below the best by at most one combined standard deviation "
            "&radic;(&sigma;<sub>best</sub><sup>2</sup> + &sigma;<sup>2</sup>), &sigma; half the model's 68.3% CL "
            "interval (AUC: its bootstrap error); both are measured on the same events, so the error of the "
            "difference is smaller and the rule errs towards <em>compatible</em>."
            if ranking.compatible
            else "."
        )
    return (
        table
        + f"<p class='note'>{counted} Intervals: 68.3% CL; AUC error: bootstrap over events.{rule}</p>"
    )


def _warnings(items: Sequence[Mapping[str, str]]) -> str:
    if not items:
        return "<p class='ok'>No warnings.</p>"
    lis = "".join(
        f"<li class='{html.escape(w['severity'])}'><b>{html.escape(w['model'])}</b>: {html.escape(w['message'])}</li>"
        for w in items
    )
    return f"<ul class='warnings'>{lis}</ul>"


def _composition(summary: Mapping[str, Any], models: Sequence[str], rates: Sequence[str]) -> str:
    """One table per working point: rows are background categories, columns the models."""
    have = [m for m in models if summary[m].get("background_composition")]
    if not have:
        return ""
    out = []
    column = next(iter(summary[have[0]]["background_composition"].values())).get("column", "?")
    for r in rates:
        comps = {m: summary[m]["background_composition"].get(r) for m in have}
        cats: list[str] = []
        for c in comps.values():
            cats += [k for k in (c or {}).get("categories", {}) if k not in cats]
        rows = []
        for cat in cats:
            row = [html.escape(cat)]
            for m in have:
                e = (comps[m] or {}).get("categories", {}).get(cat)
                row.append(f"{fmt.count(e['n_events'])} ({_eff(e, 'fraction')})" if e else "0")
            rows.append(row)
        rows.append(
            [
                "<b>all passing</b>",
                *(f"<b>{fmt.count((comps[m] or {}).get('n_events'))}</b>" for m in have),
            ]
        )
        out.append(f"<h3>{fmt.rate(r)}</h3>" + _table(["category", *map(html.escape, have)], rows))
    return (
        "<p class='note'>Minimum-bias events passing each working point, counted in the category "
        f"(<code>{html.escape(str(column))}</code>) of their best-scoring candidate: events (fraction of the passing "
        "events, 68.3% CL binomial interval).</p><div class='cols'>"
        + "".join(f"<div>{o}</div>" for o in out)
        + "</div>"
    )


def _cutflow_tables(cutflow: Mapping[str, Any]) -> str:
    out = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for sample, v in cutflow.items():
        if "truth_matched" in v:
            tables += [
                (f"{sample}: all candidates", v),
                (f"{sample}: truth-matched candidates", v["truth_matched"]),
            ]
        else:
            tables.append((sample, v))
    for sample, v in tables:
        rows = []
        for r in v.get("table", []):
            rows.append(
                [
                    html.escape(str(r["step"])),
                    fmt.count(r["raw"]),
                    _g(r["weighted"], 5),
                    _eff(r, "step_eff"),
                    _eff(r, "cumulative_eff"),
                ]
            )
        out.append(
            f"<h3>{html.escape(sample)}</h3>"
            + _table(["step", "candidates", "weighted", "step eff.", "cumulative eff."], rows)
        )
    return (
        "".join(out)
        + "<p class='note'>Candidate level; Clopper-Pearson 68.3% CL intervals on raw counts. A sample with a "
        "truth definition has two tables: all its candidates (mostly combinatorial pairs in a signal sample) and "
        "its truth-matched ones, whose cumulative efficiency is the preselection's signal efficiency.</p>"
    )


def _detailed_tables(
    summary: Mapping[str, Any], models: Sequence[str], rates: Sequence[str], offline: bool = False
) -> list[str]:
    """The full tables: rejection, working points, per mode, fold spread, optimal cuts, negative weights."""
    out: list[str] = ["<h3>Model comparison</h3>"]
    header = [
        "model",
        "AUC",
        "eff. @ bkg 1%",
        "eff. @ bkg 10%",
        "sep.",
        "KS p (sig / bkg)",
        "dCor(score, m)",
    ]
    first_rate = rates[0] if rates else None
    with_total = first_rate is not None and any("eff_total" in summary[m] for m in models)
    if with_total and first_rate is not None:
        header.append(f"total signal eff. @ {fmt.rate(first_rate)}")
    rows = []
    for m in models:
        s = summary[m]
        auc = _pm_html(s.get("auc"), s.get("auc_std"))
        e = s.get("eff_at_bkg_eff", {})
        etr = s.get("eff_at_bkg_eff_train", {})
        ks = s.get("ks_pvalue", {})
        dcor = s.get("sculpting", {}).get("distance_correlation")
        rows.append(
            [
                html.escape(m),
                auc,
                f"{_fmt(e.get('0.01'), 3)} (train {_fmt(etr.get('0.01'), 3)})",
                f"{_fmt(e.get('0.1'), 3)} (train {_fmt(etr.get('0.1'), 3)})",
                _fmt(s.get("separation"), 3),
                f"{_pvalue(ks.get('signal'))} / {_pvalue(ks.get('background'))}",
                _fmt(dcor, 3),
            ]
        )
        if with_total:
            rows[-1].append(_eff(s.get("eff_total", {}).get(first_rate, {})))
    out.append(_table(header, rows))

    if rates:
        out += _rate_tables(summary, models, rates, with_total)
    fold_header = ["model", "AUC per fold", "std"]
    first = rates[0] if rates else None
    if first:
        fold_header += [f"signal eff. at {fmt.rate(first)} per fold", "std"]
    fold_rows = []
    for m in models:
        row = [
            html.escape(m),
            ", ".join(f"{a:.4f}" for a in summary[m].get("auc_folds", [])),
            _fmt(summary[m].get("auc_fold_std")),
        ]
        if first:
            e = summary[m].get("eff_at_rate", {}).get(first, {})
            row += [
                ", ".join(f"{a:.3f}" for a in e.get("eff_folds", [])),
                _fmt(e.get("eff_fold_std"), 3),
            ]
        fold_rows.append(row)
    out.append("<h3>Spread across folds</h3>" + _table(fold_header, fold_rows))
    out += _offline_tables(summary, models)
    opt_rows = []
    for m in models:
        oc = summary[m].get("optimal_cut")
        if oc:
            row = [html.escape(m)]
            for name in ("significance", "punzi"):
                fom = oc[name]
                n_s, n_b = _fom_yields(oc, fom)
                row += [
                    _g(fom.get("value")),
                    f"{fom['threshold']:.4f} (eff. {fom['sig_eff']:.3f})",
                    f"{_g(n_s)} / {_g(n_b)}",
                ]
            opt_rows.append(row)
    if opt_rows:
        out.append(
            "<h3>Optimal cuts</h3>"
            + _table(
                [
                    "model",
                    "max S/&radic;(S+B)",
                    "threshold (signal eff.)",
                    "S / B there",
                    "max Punzi",
                    "threshold (signal eff.)",
                    "S / B there",
                ],
                opt_rows,
            )
            + "<p class='note'>S and B: expected signal and background yields passing the cut (the yields before "
            "it times the signal and background efficiencies); cuts keeping fewer than "
            f"{next((summary[m]['optimal_cut'].get('min_background_candidates') for m in models if summary[m].get('optimal_cut')), '?')} "
            f"simulated background {_unit(summary, models) if offline else 'candidates'} are not considered.</p>"
        )
    neg_rows = _negative_weight_rows(summary, models)
    if neg_rows:
        out.append(
            "<h3>Negative training weights made positive (cell resampling)</h3>"
            "<p class='note'>Learners that cannot take negative weights train on weights made positive by cell "
            "resampling (arXiv:2109.07851), which keeps each cell's total weight. The residual compares the "
            "weighted distribution of every feature before and after, in units of its statistical error.</p>"
            + _table(
                [
                    "model",
                    "fold",
                    "learner",
                    "class",
                    "negative weights",
                    "cells",
                    "max cell size",
                    "largest |pull| (feature)",
                ],
                neg_rows,
            )
        )
    return out


def _rate_tables(
    summary: Mapping[str, Any], models: Sequence[str], rates: Sequence[str], with_total: bool
) -> list[str]:
    """Trigger studies: the working points at each target rate, per decay mode and in total."""
    out = ["<h3>Working points (event level)</h3>"]
    header = [
        "model",
        "target rate",
        "rate measured [kHz]",
        "pull",
        "threshold",
        "signal eff. (any)",
        "&plusmn; from the working point",
        "signal eff. (TOS)",
    ]
    if with_total:
        header.append("total signal eff. (all generated)")
    mode_names: list[str] = []
    rows = []
    for m in models:
        for r in rates:
            e = summary[m].get("eff_at_rate", {}).get(r)
            if e is None:
                continue
            rows.append(
                [
                    html.escape(m),
                    fmt.rate(r),
                    _measured_rate(e),
                    _rate_pull(e),
                    _fmt(e["threshold"]),
                    _eff(e),
                    _g(100 * e["eff_wp_std"], 2) + " %" if _known(e.get("eff_wp_std")) else "n/a",
                    _eff(e, "eff_tos"),
                ]
            )
            if with_total:
                rows[-1].append(_eff(summary[m].get("eff_total", {}).get(r, {})))
            for mode in e.get("per_mode", {}):
                if mode not in mode_names:
                    mode_names.append(mode)
    out.append(_table(header, rows))
    out.append(
        "<p class='note'>Rates are measurements: each threshold is chosen on the minimum-bias events with even "
        "event number, and the rate is measured on those with odd event number (the rate on all events equals "
        "the target by construction). The pull is (measured &minus; target) / &sigma;, with &sigma; from both "
        "halves in quadrature (the threshold carries the choosing half's fluctuation). The halves are the same "
        "for every model, so the models' pulls move together: one fluctuation of the split, not five. "
        "The threshold itself is the loosest whose rate on the even half does not exceed the target, which "
        "if anything errs on the tight side.</p>"
    )
    if mode_names:
        out.append("<h3>Efficiency per decay mode (any candidate / TOS)</h3>")
        header = ["model", "working point", *map(html.escape, mode_names)]
        rows = []
        for m in models:
            for r in rates:
                e = summary[m].get("eff_at_rate", {}).get(r, {})
                pm = e.get("per_mode", {})
                rows.append(
                    [
                        html.escape(m),
                        fmt.rate(r),
                        *(
                            f"{_eff(pm[n])} / {_eff(pm[n], 'eff_tos')}" if n in pm else "n/a"
                            for n in mode_names
                        ),
                    ]
                )
        out.append(_table(header, rows))
    if with_total:
        out.append(_total_per_mode(summary, models, rates))
    return out


def _offline_tables(summary: Mapping[str, Any], models: Sequence[str]) -> list[str]:
    """Expected yields per sample and working points at fixed signal efficiency (offline studies)."""
    offline = {m: summary[m]["offline"] for m in models if summary[m].get("offline")}
    if not offline:
        return []
    first = next(iter(offline.values()))
    unit = str(first.get("unit", "candidates"))
    samples = list(first["yields"])
    by_event = unit == "events"
    rows = [
        [
            html.escape(n),
            "signal" if y["label"] == 1 else "background",
            _g(y["normalisation"]),
            fmt.count(y["n_candidates"]),
            *([fmt.count(y.get("n_events"))] if by_event else []),
            _g(y["yield"]),
        ]
        for n, y in first["yields"].items()
    ]
    pad = [""] * (4 if by_event else 3)
    rows.append(["<b>signal (S)</b>", *pad, _g(first["signal_yield"])])
    rows.append(["<b>background (B)</b>", *pad, _g(first["background_yield"])])
    what = (
        "Sums of normalised event weights, each event once however many of its candidates pass (an event passes "
        "a cut when any of its class-representative candidates does)"
        if by_event
        else "Sums of normalised candidate weights (an event with several candidates counts once per candidate; "
        "set <code>evaluation.yields: events</code> to count events)"
    )
    out = [
        f"<h3>Expected yields after the preselection ({html.escape(unit)})</h3>"
        f"<p class='note'>{what}; weights are the raw weight &times; the sample's normalisation: "
        "cross-section &times; luminosity / &Sigma;w of all its entries, or a fixed scale.</p>"
        + _table(
            [
                "sample",
                "class",
                "normalisation",
                "candidates",
                *(["events"] if by_event else []),
                "expected yield",
            ],
            rows,
        )
    ]
    header = [
        "model",
        "signal eff.",
        "threshold",
        "background eff.",
        "S",
        "B",
        "S/&radic;(S+B)",
        *(f"B: {html.escape(n)}" for n in samples if first["yields"][n]["label"] == 0),
    ]
    rows = []
    for m, off in offline.items():
        for key, wp in off["working_points"].items():
            n_s, n_b = wp["signal_yield"], wp["background_yield"]
            fom = (
                n_s / math.sqrt(n_s + n_b)
                if _known(n_s) and _known(n_b) and n_s + n_b > 0
                else None
            )
            rows.append(
                [
                    html.escape(m),
                    key,
                    _fmt(wp["threshold"]),
                    _fmt(wp["bkg_eff"]),
                    _g(n_s),
                    _g(n_b),
                    _g(fom),
                    *(_g(wp["yields"].get(n)) for n in samples if first["yields"][n]["label"] == 0),
                ]
            )
    out.append(
        f"<h3>Working points at fixed signal efficiency ({html.escape(unit)})</h3>"
        + _table(header, rows)
    )
    return out


def _decorrelation(root: Path, scan: Mapping[str, Any]) -> str:
    """The DisCo strength scan: its table and figure."""
    m = html.escape(str(scan.get("model", "")))
    spec = html.escape(str(scan.get("spectator", "")))
    wp = html.escape(str(scan.get("working_point", "")))
    rows = [
        [
            f"{p.get('strength', float('nan')):g}"
            + (" (shown)" if p.get("strength") == scan.get("chosen") else ""),
            _fmt(p.get("efficiency")),
            _fmt(p.get("distance_correlation")),
            _fmt(p.get("jensen_shannon")),
            _fmt(p.get("auc")),
        ]
        for p in scan.get("points", [])
    ]
    table = _table(
        [
            "&lambda;",
            f"signal eff. at {wp}",
            f"bkg dCor(score, {spec})",
            f"JSD of bkg {spec} after cut",
            "AUC",
        ],
        rows,
    )
    note = (
        f"<p class='note'><b>{m}</b> retrained on every fold but fold {scan.get('fold')} at each DisCo strength "
        f"&lambda; (loss + &lambda; dCor&sup2;(score, {spec}) on background) and measured on that held-out fold. "
        f"dCor: weighted distance correlation of the background score with {spec} (0: independent). JSD: "
        f"Jensen-Shannon divergence (base 2) between the background {spec} distribution before and after the cut "
        "(0: no sculpting).</p>"
    )
    png = root / "plots" / "decorrelation_scan.png"
    fig = ""
    if png.exists():
        fig = _figure(
            root,
            png,
            f"Left: signal efficiency at {wp} against the background dCor, one point per &lambda;. Right: the "
            f"background {spec} distribution before the cut (grey) and passing the cut, &lambda; = 0 and the chosen "
            "&lambda;.",
        )
    return note + table + fig


def _why_section(root: Path, why: Mapping[str, Any], models: Sequence[str]) -> list[str]:
    """The "Why this candidate?" section: explained candidates, feature rankings and their agreement, per model."""
    out = [
        "<p class='note'>Each candidate is explained by the fold model that scored it (the one that did not train "
        "on it), on the model's margin (log-odds): SHAP (left of each figure, a waterfall from the base value to the "
        "model output) and LIME (right: a local linear surrogate fitted around the model's training sample, "
        "weight &times; (value &minus; mean) / std per feature). LIME R&sup2; is the surrogate's weighted fit "
        "quality (a poor fit means its weights should not be trusted); a SHAP sign flip means the fold models "
        "disagree on the direction of a feature's effect for that candidate.</p>"
    ]
    taus: dict[str, dict[str, float]] = {}
    for m in models:
        if m not in why:
            continue
        w = why[m]
        thr = w.get("threshold")
        wp = _rate_text(str(w.get("working_point") or "no working point"))
        rows = []
        figures = []
        for c in w.get("candidates", []):
            top = ", ".join(
                f"<span class='nw'>{html.escape(x['feature'])} {_signed(x['shap'])}</span>"
                for x in c["contributions"][:3]
            )
            flags = []
            if c.get("poor_lime_fit"):
                flags.append(f"poor LIME fit (R&sup2; &lt; {_fmt(w.get('min_lime_r2'), 2)})")
            if c.get("sign_flips"):
                flags.append("SHAP sign flips: " + html.escape(", ".join(c["sign_flips"])))
            verdict = "" if c.get("passes") is None else ("passes" if c["passes"] else "fails")
            rows.append(
                [
                    html.escape(c["role"]),
                    html.escape(c["candidate"]),
                    html.escape(c["sample"])
                    + (" (truth-matched)" if c.get("truth") and c.get("label") else ""),
                    f"<span class='nw'>{_score(c['score'])} {verdict}</span>",
                    top,
                    _fmt(c.get("lime_r2_mean"), 2),
                    "; ".join(flags) or "&ndash;",
                ]
            )
            png = root / c["png"]
            if png.is_file():
                figures.append(
                    _figure(
                        root,
                        png,
                        f"<b>{html.escape(m)}</b>, {html.escape(c['role'])} candidate "
                        f"{html.escape(c['candidate'])}.",
                    )
                )
        r = w.get("rankings", {})
        feats = r.get("features", [])
        meths = r.get("methods", {})
        ranks = {
            k: (-np.asarray(v, dtype=float)).argsort(kind="stable").argsort() + 1
            for k, v in meths.items()
        }
        order: list[int] = (
            list(ranks.get("mean |SHAP|", np.arange(len(feats)) + 1).argsort(kind="stable"))
            if feats
            else []
        )
        rank_rows = []
        for i in order:
            cells = [html.escape(feats[i])]
            for k, v in meths.items():
                val = (
                    _pm_html(v[i], r["permutation_std"][i])
                    if k.startswith("permutation")
                    else _g(v[i], 3)
                )
                cells.append(f"{val} (#{ranks[k][i]})")
            rank_rows.append(cells)
        tau = r.get("kendall_tau", {})
        taus[m] = {k: v["tau"] for k, v in tau.items()}
        thr_text = "" if thr is None else f" (score &ge; {thr:.4g})"
        out.append(
            f"<details id='why-{html.escape(m)}'><summary><b>{html.escape(m)}</b> &mdash; {html.escape(str(wp))}"
            f"{thr_text}; SHAP: {html.escape(str(w.get('shap_method') or ''))}</summary>"
            + _table(
                [
                    "role",
                    "candidate (run:event:index)",
                    "sample",
                    "score",
                    "largest SHAP contributions",
                    "LIME R&sup2;",
                    "flags",
                ],
                rows,
                cls="text",
            )
            + _grid(figures)
            + f"<p><b>Global rankings</b> on {r.get('n_candidates', '?')} truth-matched candidates (mean |SHAP|, "
            f"mean |LIME weight|, LIME mean R&sup2; {_fmt(r.get('lime_r2_mean'), 2)}); permutation importance: drop "
            f"in held-out AUC ({_fmt(r.get('permutation_auc'), 4)}) over {_count(r.get('permutation_candidates'))} "
            f"candidates, mean &plusmn; std of {r.get('permutation_repeats', '?')} permutations.</p>"
            + _table(["feature", *map(html.escape, meths)], rank_rows)
            + "</details>"
        )
    pairs = sorted({p for t in taus.values() for p in t})
    if pairs:
        out.append(
            "<h3>Agreement of the rankings: Kendall &tau;</h3>"
            # one row per pair of rankings: the pairs' names are long, the models' short
            + _table(
                ["rankings compared", *map(html.escape, taus)],
                [[html.escape(p), *(_fmt(t.get(p), 2) for t in taus.values())] for p in pairs],
            )
        )
    return out


def _pm(q: Mapping[str, Any], scale: float) -> str:
    """A paired change ``delta ± delta_err`` times ``scale``, signed, digits from its error."""
    if not _known(q.get("delta")):
        return "n/a"
    err = q.get("delta_err")
    return _pm_html(scale * q["delta"], None if err is None else scale * err, sign=True)


def _percent_as(x: Any, q: Mapping[str, Any]) -> str:
    """An efficiency in percent to the decimal place of its paired change ``q``'s error."""
    err = q.get("delta_err")
    if err is None or not (_known(x) and _known(err)) or float(err) <= 0:
        return _percent(x)
    return _text(fmt.percent(float(x), max(fmt.decimals_for(100 * float(err)), 0)))


def _robustness(root: Path, result: Mapping[str, Any]) -> str:
    """Table and plot of ``robustness.json``: each working point's change under each miscalibration."""
    from ..prep.robustness import table_rows

    offline = bool(result.get("offline"))
    shifts = "; ".join(
        f"<b>{html.escape(n)}</b>: "
        + ", ".join(
            f"<code>{html.escape(p)}</code> &times; {f['scale']:g}"
            + (f" {f['offset']:+g}" if f.get("offset") else "")
            for p, f in pats.items()
        )
        for n, pats in result["shifts"].items()
    )
    note = (
        "<p class='note'>Input branches rescaled as they are read (aliases, features and the preselection see "
        f"the shifted values): {shifts}. Thresholds fixed at their nominal values; each candidate scored by its "
        "held-out fold model. Errors of the changes are paired (the same events, nominal and shifted), from the "
        "events whose decision changed. "
        + (
            "Efficiencies: candidate level, relative to each sample's preselected yield.</p>"
            if offline
            else "Signal efficiency: any candidate passes, relative to the signal events with a preselected "
            "truth-matched candidate (as in the tables above), so it excludes the preselection's own change "
            "(<code>eff_total</code> in robustness.json includes it). Rate: minimum-bias events.</p>"
        )
    )
    if offline:
        header = [
            "Shift",
            "Model",
            "Working point",
            "&epsilon;<sub>S</sub> nominal",
            "&epsilon;<sub>S</sub> shifted",
            "&Delta;&epsilon;<sub>S</sub> [%-points]",
            "&epsilon;<sub>B</sub> nominal",
            "&epsilon;<sub>B</sub> shifted",
            "&Delta;&epsilon;<sub>B</sub> [%-points]",
        ]
        rows = [
            [
                html.escape(r["shift"]),
                html.escape(r["model"]),
                f"&epsilon;<sub>S</sub> = {html.escape(r['wp'])}",
                _percent_as(r["sig_eff"]["nominal"], r["sig_eff"]),
                _percent_as(r["sig_eff"]["shifted"], r["sig_eff"]),
                _pm(r["sig_eff"], 100),
                _g(100 * r["bkg_eff"]["nominal"], 3) + " %",
                _g(100 * r["bkg_eff"]["shifted"], 3) + " %",
                _pm(r["bkg_eff"], 100),
            ]
            for r in table_rows(result)
        ]
    else:
        header = [
            "Shift",
            "Model",
            "Working point",
            "&epsilon; nominal",
            "&epsilon; shifted",
            "&Delta;&epsilon; [%-points]",
            "Rate nominal [kHz]",
            "Rate shifted [kHz]",
            "&Delta;rate [kHz]",
        ]
        rows = [
            [
                html.escape(r["shift"]),
                html.escape(r["model"]),
                html.escape(fmt.rate(r["wp"])),
                _percent_as(r["eff"]["nominal"], r["eff"]),
                _percent_as(r["eff"]["shifted"], r["eff"]),
                _pm(r["eff"], 100),
                _g(r["rate_khz"]["nominal"], 3),
                _g(r["rate_khz"]["shifted"], 3),
                _pm(r["rate_khz"], 1),
            ]
            for r in table_rows(result)
        ]
    png = root / "plots" / "robustness.png"
    fig = (
        _figure(
            root,
            png,
            "Change of the signal efficiency (top) and of the output rate or background efficiency "
            "(bottom, relative) at each working point with fixed threshold, per model and miscalibration.",
        )
        if png.exists()
        else ""
    )
    return note + _grid([fig]) + _table(header, rows)


def render_report(
    root: str | Path,
    summary: Mapping[str, Any],
    *,
    cutflow_markdown: str = "",
    cutflow: Mapping[str, Any] | None = None,
    fidelity: Mapping[str, Any] | None = None,
    study: Mapping[str, Any] | None = None,
    shap: Mapping[str, Any] | None = None,
    why: Mapping[str, Any] | None = None,
    warnings: Sequence[Mapping[str, str]] | None = None,
    benchmarks: Sequence[Mapping[str, Any]] | None = None,
    decorrelation: Mapping[str, Any] | None = None,
    robustness: Mapping[str, Any] | None = None,
    menu_html: str | None = None,
) -> str:
    """The HTML text of the report for the outputs under ``root``.

    ``warnings`` are :func:`hepsel.report.diagnostics.diagnose`'s; without them they
    are computed here with the default thresholds. ``cutflow`` (the contents
    of ``cutflow.json``) is shown as tables, else ``cutflow_markdown`` as text.
    ``robustness`` (the contents of ``robustness.json``) adds its section,
    ``menu_html`` (:func:`hepsel.report.menu_section.menu_section`) the
    trigger menu's.
    """
    from .diagnostics import diagnose

    root = Path(root)
    models = [m for m in summary if not m.startswith("_")]
    meta = summary.get("_meta", {})
    rates = [f"{r:g}" for r in meta.get("target_rates_khz", [])]
    if warnings is None:
        warnings = diagnose(summary, fidelity)
    # older summaries lack the flag: no target rates and offline figures mean an offline study
    offline = bool(meta.get("offline")) or (
        not rates and any(summary[m].get("offline") for m in models)
    )
    global_plots, model_plots = _plots(root, models, offline, None if shap is None else set(shap))
    composition = _composition(summary, models, rates)
    uncertainty = _uncertainty_section(root, summary, models)
    toc = [("headline", "Headline"), ("warnings", f"Warnings ({len(warnings)})")]
    if composition:
        toc.append(("background", "Background composition"))
    global_title = (
        "All models: ROC, correlations" if offline else "All models: ROC, rates, correlations"
    )
    toc += [("global", global_title), ("models", "Per model")]
    if why:
        toc.append(("why", "Why this candidate?"))
    if uncertainty:
        toc.append(("uncertainty", "Score uncertainty"))
    toc.append(("tables", "Detailed tables"))
    if decorrelation:
        toc.append(("decorrelation", "Decorrelation scan"))
    if robustness:
        toc.append(("robustness", "Robustness to miscalibration"))
    if menu_html:
        toc.append(("menu", "Trigger menu"))
    toc.append(("cutflow", "Cut-flow"))
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>hepsel report: {html.escape(str(meta.get('analysis', '')))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{'Offline selection' if offline else 'Trigger'} study: {html.escape(str(meta.get('analysis', '')))}</h1>",
        "<p class='note'>"
        + (
            "Offline study (no trigger block): expected yields instead of rates; "
            if offline
            else f"Input rate {_input_rate(meta.get('input_rate_khz'))}; "
        )
        + f"{meta.get('folds', '?')}-fold cross-training "
        f"(every candidate scored by the model that did not train on it); seed {meta.get('seed', '?')}; "
        f"{_count(meta.get('n_candidates'))} preselected candidates. Intervals: 68.3% CL.</p>",
        "<nav class='toc'><b>Contents</b><ol>"
        + "".join(
            f"<li><a href='#{a}'>{t}</a>"
            + (
                "<ol>"
                + "".join(
                    f"<li><a href='#model-{html.escape(m)}'>{html.escape(m)}</a></li>"
                    for m in models
                )
                + "</ol>"
                if a == "models"
                else ""
            )
            + "</li>"
            for a, t in toc
        )
        + "</ol></nav>",
        "<h2 id='headline'>Headline</h2>",
        _headline(summary, models, rates, offline),
        f"<h2 id='warnings'>Warnings ({len(warnings)})</h2>",
        _warnings(warnings),
    ]
    if composition:
        parts += [
            "<h2 id='background'>Background composition at each working point</h2>",
            composition,
        ]
    parts += [
        f"<h2 id='global'>{global_title}</h2>",
        _grid([g for g in global_plots if "cutflow" not in g]),
    ]
    parts.append("<h2 id='models'>Per model</h2>")
    for i, m in enumerate(models):
        extra = []
        if shap and m in shap:
            extra.append(
                "<p><b>Top features by mean |SHAP|:</b> "
                + html.escape(", ".join(list(shap[m].get("mean_abs_shap", {}))[:5]))
                + "</p>"
            )
        if fidelity and m in fidelity:
            f = fidelity[m]
            c2 = f.get("c2st_auc_mean", f.get("classifier_two_sample", {}).get("auc"))
            extra.append(
                f"<p><b>GAN fidelity:</b> classifier two-sample AUC {_fmt(c2, 3)} (0.5 = indistinguishable); "
                f"largest |&Delta; correlation| {_fmt(f.get('max_abs_correlation_difference'), 3)}.</p>"
            )
        s = summary[m]
        auc = _pm_html(s.get("auc"), s.get("auc_std"))
        first = s.get("eff_at_rate", {}).get(rates[0], {}) if rates else {}
        brief = f"AUC {auc}" + (
            f"; signal eff. @ {fmt.rate(rates[0])} {_eff(first)}" if first else ""
        )
        if offline and _known(_significance(s).get("value")):
            brief += f"; max S/&radic;(S+B) {_g(_significance(s)['value'])}"
        parts.append(
            f"<details id='model-{html.escape(m)}'{' open' if i == 0 else ''}><summary><b>{html.escape(m)}</b> "
            f"({html.escape(str(s.get('kind', '')))}) &mdash; {brief}</summary>"
            + "".join(extra)
            + _grid(model_plots.get(m, []))
            + "</details>"
        )
    if why:
        parts.append("<h2 id='why'>Why this candidate?</h2>")
        parts += _why_section(root, why, models)
    if uncertainty:
        parts += ["<h2 id='uncertainty'>Score uncertainty</h2>", uncertainty]
    parts.append("<h2 id='tables'>Detailed tables</h2>")
    parts += _detailed_tables(summary, models, rates, offline)
    if study:
        parts.append(
            "<h3>Augmentation study</h3><pre>" + html.escape(str(study.get("table", ""))) + "</pre>"
        )
    if decorrelation:
        parts += [
            "<h2 id='decorrelation'>Decorrelation scan</h2>",
            _decorrelation(root, decorrelation),
        ]
    if robustness:
        parts += [
            "<h2 id='robustness'>Robustness to miscalibration</h2>",
            _robustness(root, robustness),
        ]
    if menu_html:
        parts += ["<h2 id='menu'>Trigger menu</h2>", menu_html]
    parts.append("<h2 id='cutflow'>Cut-flow</h2>")
    if cutflow:
        parts.append(_cutflow_tables(cutflow))
    elif cutflow_markdown:
        parts.append("<pre>" + html.escape(cutflow_markdown) + "</pre>")
    parts.append(_grid([g for g in global_plots if "cutflow" in g]))
    if benchmarks:
        from .benchmarks import benchmarks_html

        parts.append(
            "<h2 id='jobs'>Jobs: time and memory</h2><p class='note'>From Snakemake's <code>benchmark:</code> "
            "files of the jobs run so far (this report's own job is not included).</p>"
            + benchmarks_html([dict(b) for b in benchmarks])
        )
    parts.append("</body></html>")
    return "\n".join(parts)
