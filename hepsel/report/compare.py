"""Two studies' headline figures side by side, with differences and their significance.

The two studies are treated as statistically independent (different
samples or seeds): the error of a difference is the two errors added in
quadrature. For two studies on the same events that overestimates it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import HepselError

__all__ = ["compare", "compare_summaries", "format_comparison"]

SIGNIFICANT_SIGMA = 2.0


def _load(results: str | Path) -> dict[str, Any]:
    from ..io.storage import read_json

    root = Path(results)
    path = root / "summary.json" if root.is_dir() or root.suffix != ".json" else root
    if not path.exists():
        msg = f"no summary.json in {root}: run the evaluate step (snakemake evaluate or hepsel evaluate) first"
        raise HepselError(msg)
    return dict(read_json(path))


def _symmetric_error(e: Mapping[str, Any], key: str = "eff") -> float | None:
    lo, hi = e.get(f"{key}_low"), e.get(f"{key}_high")
    if lo is None or hi is None:
        return None
    return 0.5 * (hi - lo)


def _row(
    figure: str, a: float | None, ea: float | None, b: float | None, eb: float | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"figure": figure, "a": a, "a_err": ea, "b": b, "b_err": eb}
    if a is None or b is None:
        row.update(diff=None, diff_err=None, sigma=None, significant=None)
        return row
    diff = b - a
    err = math.hypot(ea or 0.0, eb or 0.0) if (ea is not None or eb is not None) else None
    sigma = abs(diff) / err if err else None
    row.update(
        diff=diff,
        diff_err=err,
        sigma=sigma,
        significant=None if sigma is None else sigma >= SIGNIFICANT_SIGMA,
    )
    return row


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _offline_rows(sa: Mapping[str, Any], sb: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Offline figures of merit: the S/sqrt(S+B) and Punzi optima, and S and B at each common signal efficiency.

    These come without errors (no bootstrap of the yields), so they carry no significance.
    """
    rows = []
    oa, ob = sa.get("optimal_cut") or {}, sb.get("optimal_cut") or {}
    if sa.get("offline") or sb.get("offline"):
        for key, label in (("significance", "max S/sqrt(S+B)"), ("punzi", "max Punzi")):
            fa, fb = oa.get(key) or {}, ob.get(key) or {}
            if fa or fb:
                rows.append(_row(label, _num(fa.get("value")), None, _num(fb.get("value")), None))
                rows.append(
                    _row(
                        f"signal eff. at {label}",
                        _num(fa.get("sig_eff")),
                        None,
                        _num(fb.get("sig_eff")),
                        None,
                    )
                )
    wa = (sa.get("offline") or {}).get("working_points") or {}
    wb = (sb.get("offline") or {}).get("working_points") or {}
    for e in [k for k in wa if k in wb]:
        for field, label in (
            ("bkg_eff", "bkg eff."),
            ("signal_yield", "S"),
            ("background_yield", "B"),
        ):
            rows.append(
                _row(
                    f"{label} @ eff_S = {e}",
                    _num(wa[e].get(field)),
                    None,
                    _num(wb[e].get(field)),
                    None,
                )
            )
    return rows


def compare_summaries(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Compare two ``summary.json`` contents (see :func:`compare`)."""
    models = [m for m in a if not m.startswith("_") and m in b]
    out: dict[str, Any] = {
        "models": {},
        "only_a": [m for m in a if not m.startswith("_") and m not in b],
        "only_b": [m for m in b if not m.startswith("_") and m not in a],
        "significant_sigma": SIGNIFICANT_SIGMA,
        "note": "errors added in quadrature: the two studies are treated as independent samples",
    }
    for m in models:
        sa, sb = a[m], b[m]
        rows = [
            _row(
                "AUC",
                _num(sa.get("auc")),
                _num(sa.get("auc_std")),
                _num(sb.get("auc")),
                _num(sb.get("auc_std")),
            )
        ]
        for key, label in (("eff_at_rate", "signal eff."), ("eff_total", "total signal eff.")):
            ra, rb = sa.get(key, {}), sb.get(key, {})
            for rate in [r for r in ra if r in rb]:
                ea, eb = ra[rate], rb[rate]
                rows.append(
                    _row(
                        f"{label} @ {rate} kHz",
                        _num(ea.get("eff")),
                        _symmetric_error(ea),
                        _num(eb.get("eff")),
                        _symmetric_error(eb),
                    )
                )
        rows += _offline_rows(sa, sb)
        out["models"][m] = rows
    return out


def compare(results_a: str | Path, results_b: str | Path) -> dict[str, Any]:
    """Headline figures of two studies, their differences and whether these are significant.

    Parameters
    ----------
    results_a, results_b : path
        Results directories (holding ``summary.json``) or ``summary.json`` files.

    Returns
    -------
    dict
        ``models``: per model present in both, a list of rows
        ``{figure, a, a_err, b, b_err, diff, diff_err, sigma, significant}``
        for the AUC and the signal and total efficiencies at each common
        target rate (offline studies: the maximum S/sqrt(S+B) and Punzi
        figures of merit and the signal efficiency there, and the background
        efficiency, S and B at each common signal efficiency; without errors); ``diff`` is B minus A, ``diff_err`` the errors in
        quadrature (independent samples), ``significant`` whether
        ``|diff| >= 2 diff_err``. ``only_a``, ``only_b``: models in one study only.

    Raises
    ------
    HepselError
        When a directory has no ``summary.json``.
    """
    out = compare_summaries(_load(results_a), _load(results_b))
    out["a"], out["b"] = str(results_a), str(results_b)
    return out


def format_comparison(result: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`compare`'s result."""

    def f(x: float | None, err: float | None = None) -> str:
        if x is None:
            return "n/a"
        # yields span many decades: scientific notation outside [1e-3, 1e4)
        fmt = ".4f" if x == 0 or 1e-3 <= abs(x) < 1e4 else ".4e"
        return f"{x:{fmt}}" + (f" +- {err:{fmt}}" if err is not None else "")

    lines = [f"A: {result.get('a', 'A')}", f"B: {result.get('b', 'B')}", ""]
    wf = max([28, *(len(r["figure"]) for rows in result["models"].values() for r in rows)])
    header = f"{'model':<10} {'figure':<{wf}} {'A':>18} {'B':>18} {'B - A':>20} {'sigma':>6}"
    lines += [header, "-" * len(header)]
    for m, rows in result["models"].items():
        for r in rows:
            sig = (
                "n/a"
                if r["sigma"] is None
                else f"{r['sigma']:.1f}" + (" *" if r["significant"] else "")
            )
            lines.append(
                f"{m:<10} {r['figure']:<{wf}} {f(r['a'], r['a_err']):>18} {f(r['b'], r['b_err']):>18} "
                f"{f(r['diff'], r['diff_err']):>20} {sig:>6}"
            )
    lines += [
        "",
        f"* significant: |B - A| >= {result['significant_sigma']:g} sigma; {result['note']}.",
    ]
    for key, label in (("only_a", "only in A"), ("only_b", "only in B")):
        if result.get(key):
            lines.append(f"{label}: {', '.join(result[key])}")
    return "\n".join(lines)
