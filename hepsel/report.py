"""One HTML page with the comparison table and every plot of an analysis.

The page is self-contained in its directory: it links the PNG plots by
relative path (``plots/...``) and embeds the tables, so ``report.html`` opens
in any browser from ``results/<analysis>/``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { border-bottom: 2px solid #0057a8; }
h2 { margin-top: 2em; color: #0057a8; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: right; }
th { background: #eef3fa; }
td:first-child, th:first-child { text-align: left; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.grid figure { margin: 0; width: 440px; }
.grid img { width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.note { color: #555; font-size: 0.9em; }
"""


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return html.escape(str(x))


def _known(x: Any) -> bool:
    """Whether a figure was computed (``summary.json`` has null, in-memory summaries NaN, where not)."""
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _percent(x: Any) -> str:
    return f"{100 * x:.1f} %" if _known(x) else "n/a"


def _eff(e: Mapping[str, Any], key: str = "eff") -> str:
    v, lo, hi = e.get(key), e.get(f"{key}_low"), e.get(f"{key}_high")
    if v is None:
        return "n/a"
    return f"{100 * v:.1f}<sup>+{100 * (hi - v):.1f}</sup><sub>&minus;{100 * (v - lo):.1f}</sub> %"


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
                    pull = f"{res[worst]['max_abs_pull']:.2f} ({html.escape(worst)})" if worst else "n/a"
                    rows.append([
                        html.escape(m), str(rec.get("fold", "?")), html.escape(str(nw.get("learner", ""))), cls,
                        str(c["n_negative"]), str(c["n_cells"]), str(c["cell_size_max"]), pull,
                    ])
    return rows


def _measured_rate(e: dict[str, Any]) -> str:
    """The rate measured on the events not used to choose the threshold (older summaries: the in-sample rate)."""
    if "rate_khz_measured" in e:
        return f"{e['rate_khz_measured']:.1f} &plusmn; {e['rate_khz_measured_err']:.1f}"
    return f"{e['rate_khz']:.1f} &plusmn; {e['rate_khz_err']:.1f} (in-sample)"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_GLOBAL_PLOTS = {
    "roc", "eff_vs_rate", "eff_vs_rate_tos", "cutflow", "correlation_signal", "correlation_background",
    "augmentation_auc", "augmentation_eff_at_rate",
}


def _current(stem: str, models: Sequence[str]) -> bool:
    """Whether a plot belongs to this run (not left over from a model no longer configured)."""
    if stem in _GLOBAL_PLOTS:
        return True
    return any(stem.endswith(f"_{m}") or stem.endswith(f"_{m}_per_mode") for m in models)


def _figures(
    root: Path, pattern: str, models: Sequence[str], exclude: tuple[str, ...] = ("eff_vs_rate", "eff_vs_cut")
) -> str:
    items = []
    for png in sorted((root / "plots").glob(pattern)):
        if pattern.startswith("eff_vs_*") and png.name.startswith(exclude):
            continue
        if not _current(png.stem, models):
            continue
        rel = png.relative_to(root).as_posix()
        pdf = png.with_suffix(".pdf").relative_to(root).as_posix()
        cap = html.escape(png.stem)
        items.append(f'<figure><a href="{pdf}"><img src="{rel}" alt="{cap}"></a><figcaption>{cap}</figcaption></figure>')
    return f'<div class="grid">{"".join(items)}</div>' if items else ""


def _total_per_mode(summary: Mapping[str, Any], models: Sequence[str], rates: Sequence[str]) -> str:
    """Total efficiencies per decay mode: the preselection, then each model's working points."""
    names: list[str] = []
    for m in models:
        for entry in [summary[m].get("eff_preselection", {}), *summary[m].get("eff_total", {}).values()]:
            names += [n for n in entry.get("per_mode", {}) if n not in names]
    rows = []
    presel = next((summary[m]["eff_preselection"] for m in models if "eff_preselection" in summary[m]), None)
    if presel is not None:
        pm = presel.get("per_mode", {})
        rows.append(["preselection", "", _eff(presel), *(_eff(pm[n]) if n in pm else "n/a" for n in names)])
    for m in models:
        for r in rates:
            e = summary[m].get("eff_total", {}).get(r)
            if e is not None:
                pm = e.get("per_mode", {})
                rows.append([html.escape(m), r, _eff(e), *(_eff(pm[n]) if n in pm else "n/a" for n in names)])
    return "<h3>Total efficiency per decay mode (all generated signal events)</h3>" + _table(
        ["model", "rate [kHz]", "all modes", *map(html.escape, names)], rows
    )


def render_report(
    root: str | Path,
    summary: Mapping[str, Any],
    *,
    cutflow_markdown: str = "",
    fidelity: Mapping[str, Any] | None = None,
    study: Mapping[str, Any] | None = None,
    shap: Mapping[str, Any] | None = None,
) -> str:
    """The HTML text of the report for the outputs under ``root``."""
    root = Path(root)
    models = [m for m in summary if not m.startswith("_")]
    meta = summary.get("_meta", {})
    rates = [f"{r:g}" for r in meta.get("target_rates_khz", [])]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>hepsel report: {html.escape(str(meta.get('analysis', '')))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Trigger study: {html.escape(str(meta.get('analysis', '')))}</h1>",
        f"<p class='note'>Input rate {meta.get('input_rate_khz', 'n/a')} kHz; {meta.get('folds', '?')}-fold cross-training "
        f"(every candidate scored by the model that did not train on it); seed {meta.get('seed', '?')}; "
        f"{meta.get('n_candidates', '?')} preselected candidates. Intervals: 68.3% CL. Signal efficiencies are "
        "relative to the signal events whose truth-matched candidate passed the preselection; <em>total</em> ones "
        "to all generated signal events (preselection included).</p>",
        "<h2>Model comparison</h2>",
    ]
    header = ["model", "AUC", "eff. @ bkg 1%", "eff. @ bkg 10%", "sep.", "KS p (sig / bkg)", "dCor(score, m)"]
    first_rate = rates[0] if rates else None
    with_total = first_rate is not None and any("eff_total" in summary[m] for m in models)
    if with_total:
        header.append(f"total signal eff. @ {first_rate} kHz")
    rows = []
    for m in models:
        s = summary[m]
        auc = _fmt(s.get("auc")) + (f" &plusmn; {_fmt(s['auc_std'])}" if _known(s.get("auc_std")) else "")
        e = s.get("eff_at_bkg_eff", {})
        etr = s.get("eff_at_bkg_eff_train", {})
        ks = s.get("ks_pvalue", {})
        dcor = s.get("sculpting", {}).get("distance_correlation")
        rows.append([
            html.escape(m), auc,
            f"{_fmt(e.get('0.01'), 3)} (train {_fmt(etr.get('0.01'), 3)})",
            f"{_fmt(e.get('0.1'), 3)} (train {_fmt(etr.get('0.1'), 3)})",
            _fmt(s.get("separation"), 3),
            f"{_fmt(ks.get('signal'), 3)} / {_fmt(ks.get('background'), 3)}",
            _fmt(dcor, 3),
        ])
        if with_total:
            rows[-1].append(_eff(s.get("eff_total", {}).get(first_rate, {})))
    parts.append(_table(header, rows))

    parts.append("<h2>Working points (event level)</h2>")
    header = [
        "model", "rate target [kHz]", "rate measured [kHz]", "threshold", "signal eff. (any)",
        "&plusmn; from the working point", "signal eff. (TOS)",
    ]
    if with_total:
        header.append("total signal eff. (all generated)")
    mode_names: list[str] = []
    rows = []
    for m in models:
        for r in rates:
            e = summary[m]["eff_at_rate"].get(r)
            if e is None:
                continue
            rows.append([
                html.escape(m), r, _measured_rate(e), _fmt(e["threshold"]),
                _eff(e), _percent(e.get("eff_wp_std")), _eff(e, "eff_tos"),
            ])
            if with_total:
                rows[-1].append(_eff(summary[m].get("eff_total", {}).get(r, {})))
            for mode in e.get("per_mode", {}):
                if mode not in mode_names:
                    mode_names.append(mode)
    parts.append(_table(header, rows))
    parts.append(
        "<p class='note'>Rates are measurements: each threshold is chosen on the minimum-bias events with even "
        "event number, and the rate is measured on those with odd event number (the rate on all events equals "
        "the target by construction).</p>"
    )
    if mode_names:
        parts.append("<h3>Efficiency per decay mode (any candidate / TOS)</h3>")
        header = ["model", "rate [kHz]", *map(html.escape, mode_names)]
        rows = []
        for m in models:
            for r in rates:
                e = summary[m]["eff_at_rate"].get(r, {})
                pm = e.get("per_mode", {})
                rows.append([html.escape(m), r, *(f"{_eff(pm[n])} / {_eff(pm[n], 'eff_tos')}" if n in pm else "n/a" for n in mode_names)])
        parts.append(_table(header, rows))
    if with_total:
        parts.append(_total_per_mode(summary, models, rates))
    first = rates[0] if rates else None
    fold_rows = []
    for m in models:
        e = summary[m]["eff_at_rate"].get(first, {}) if first else {}
        fold_rows.append([
            html.escape(m),
            ", ".join(f"{a:.4f}" for a in summary[m].get("auc_folds", [])),
            _fmt(summary[m].get("auc_fold_std")),
            ", ".join(f"{a:.3f}" for a in e.get("eff_folds", [])),
            _fmt(e.get("eff_fold_std"), 3),
        ])
    parts.append(
        "<h3>Spread across folds</h3>"
        + _table(["model", "AUC per fold", "std", f"signal eff. at {first} kHz per fold", "std"], fold_rows)
    )
    opt_rows = []
    for m in models:
        oc = summary[m].get("optimal_cut")
        if oc:
            opt_rows.append([
                html.escape(m),
                f"{oc['significance']['threshold']:.4f} (eff. {oc['significance']['sig_eff']:.3f})",
                f"{oc['punzi']['threshold']:.4f} (eff. {oc['punzi']['sig_eff']:.3f})",
            ])
    if opt_rows:
        parts.append("<h3>Optimal cuts</h3>" + _table(["model", "max S/&radic;(S+B)", "max Punzi"], opt_rows))
    neg_rows = _negative_weight_rows(summary, models)
    if neg_rows:
        parts.append(
            "<h3>Negative training weights made positive (cell resampling)</h3>"
            "<p class='note'>Learners that cannot take negative weights train on weights made positive by cell "
            "resampling (arXiv:2109.07851), which keeps each cell's total weight. The residual compares the "
            "weighted distribution of every feature before and after, in units of its statistical error.</p>"
            + _table(
                ["model", "fold", "learner", "class", "negative weights", "cells", "max cell size", "largest |pull| (feature)"],
                neg_rows,
            )
        )

    sections = [
        ("ROC and rates", "roc.png"), ("", "eff_vs_rate*.png"),
        ("Overtraining check (train vs test)", "scores_*.png"),
        ("Efficiency vs cut", "eff_vs_cut_*.png"),
        ("Efficiency vs kinematics", "eff_vs_*.png"),
        ("Optimal cuts", "optimal_cut_*.png"),
        ("Robustness: score sculpting and input correlations", "sculpting_*.png"), ("", "correlation_*.png"),
        ("SHAP interpretability", "shap_*.png"),
        ("GAN fidelity", "gan_*.png"),
        ("Augmentation study", "augmentation_*.png"),
        ("Cut-flow", "cutflow.png"),
    ]
    for title, pattern in sections:
        figs = _figures(root, pattern, models)
        if figs:
            if title:
                parts.append(f"<h2>{title}</h2>")
            parts.append(figs)
    if shap:
        rows = [[html.escape(m), html.escape(", ".join(list(v["mean_abs_shap"])[:5]))] for m, v in shap.items()]
        parts.append("<h3>Top features by mean |SHAP|</h3>" + _table(["model", "features"], rows))
    if fidelity:
        rows = []
        for m, f in fidelity.items():
            c2 = f.get("classifier_two_sample", {})
            rows.append([html.escape(m), _fmt(c2.get("auc")), _fmt(f.get("max_abs_correlation_difference"), 3)])
        parts.append("<h3>GAN fidelity</h3>" + _table(["model", "C2ST AUC (0.5 = indistinguishable)", "max |&Delta; corr|"], rows))
    if study:
        parts.append("<h3>Augmentation study</h3><pre>" + html.escape(str(study.get("table", ""))) + "</pre>")
    if cutflow_markdown:
        parts.append("<h2>Cut-flow tables</h2><pre>" + html.escape(cutflow_markdown) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
