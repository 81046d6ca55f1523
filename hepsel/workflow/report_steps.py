"""The headline table and the HTML report of an analysis."""

from __future__ import annotations

from pathlib import Path

from ..config.schema import AnalysisConfig
from .layout import Layout
from .processes import map_in_processes

__all__ = [
    "headline",
    "report",
]


def headline(cfg: AnalysisConfig) -> str | None:
    """The headline table of a finished analysis and the path of its report (None before ``evaluate``)."""
    from ..io.storage import read_json
    from ..report.headline import headline_text

    lay = Layout.of(cfg)
    if not lay.summary.exists():
        return None
    report = lay.report if lay.report.exists() else None
    return headline_text(read_json(lay.summary), None if report is None else str(report))


def report(cfg: AnalysisConfig, *, jobs: int = 1) -> Path:
    """Write ``report.html``: the comparison table and every plot on one page.

    Also tabulates the jobs' time and memory so far (Snakemake's ``benchmark:``
    files) into ``benchmarks.json``. ``jobs``: models whose explanation
    figures are drawn at a time, each in a process of its own.
    """
    from ..io.storage import read_json, write_json, write_text
    from ..report.benchmarks import read_benchmarks
    from ..report.diagnostics import diagnose
    from ..report.html import render_report
    from ..report.menu_section import menu_section
    from .explain_steps import explainable_models

    lay = Layout.of(cfg)
    benchmarks = read_benchmarks(lay.root / "benchmarks")
    write_json(lay.root / "benchmarks.json", benchmarks)
    summary = read_json(lay.summary)
    # switched-off explanations have no section, also when files of an earlier run are left
    shap_models = explainable_models(cfg) if cfg.evaluation.shap.enabled else []
    shap = {
        m: read_json(lay.shap(m).with_suffix(".json"))
        for m in shap_models
        if lay.shap(m).with_suffix(".json").exists()
    }
    why_models = list(cfg.models) if cfg.explain.enabled else []
    why_info = {m: read_json(lay.why(m)) for m in why_models if lay.why(m).exists()}
    fid_dir = lay.root / "fidelity"
    fidelity = (
        {p.stem: read_json(p) for p in sorted(fid_dir.glob("*.json"))} if fid_dir.exists() else None
    )
    study = (
        read_json(lay.root / "study" / "augmentation.json")
        if (lay.root / "study" / "augmentation.json").exists()
        else None
    )
    scan_json = lay.root / "decorrelation" / "scan.json"
    scan = (
        read_json(scan_json) if cfg.decorrelation_scan is not None and scan_json.exists() else None
    )
    # only while configured: a robustness.json left from an earlier config is not shown
    robust = (
        read_json(lay.robustness)
        if cfg.robustness is not None and lay.robustness.exists()
        else None
    )
    menu = read_json(lay.menu) if cfg.menu is not None and lay.menu.exists() else None

    # the explanation figures carry the feature labels: drawn here, a label edit recomputes nothing
    tasks = [(cfg, "shap", m) for m in shap] + [(cfg, "why", m) for m in why_info]
    map_in_processes(_explanation_figures, tasks, jobs)
    cut_md = lay.dataset.with_name("cutflow.md")
    cut_json = lay.dataset.with_name("cutflow.json")
    text = render_report(
        lay.root,
        summary,
        cutflow_markdown=cut_md.read_text() if cut_md.exists() else "",
        cutflow=read_json(cut_json) if cut_json.exists() else None,
        fidelity=fidelity,
        study=study,
        shap=shap,
        decorrelation=scan,
        why=why_info,
        warnings=diagnose(summary, fidelity, cfg.evaluation.warnings),
        benchmarks=benchmarks,
        robustness=robust,
        menu_html=menu_section(lay.root, menu) if menu else None,
    )
    return write_text(lay.report, text)


def _explanation_figures(cfg: AnalysisConfig, kind: str, model: str) -> None:
    """One model's SHAP (``kind="shap"``) or "why" figures."""
    if kind == "shap":
        from .explain_steps import explain_figures

        explain_figures(cfg, model)
    else:
        from .why_steps import why_figures

        why_figures(cfg, model)
