"""The ``hepsel`` command line.

Every sub-command is a thin wrapper over a library function. Errors that
hepsel raises on purpose print one clear message and exit with status 1.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .exceptions import HepselError

if TYPE_CHECKING:
    from .config.schema import AnalysisConfig

    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["main"]

#: Exit status when the reader of standard output goes away (128 + SIGPIPE, as a shell reports it).
_SIGPIPE_STATUS = 141


def _config(args: argparse.Namespace, *, check_models: bool = False) -> AnalysisConfig:
    """The analysis config of a step; ``check_models``: check the estimators' parameters.

    Only the steps that build estimators check them: the check imports every
    model kind of the config (scikit-learn with them), about a second of
    start-up in each job that needs none. Snakemake checks them once, when it
    reads the Snakefile.
    """
    from .config.loading import load_config
    from .config.provenance import claim_output
    from .io.storage import check_writable_dir

    overrides = {"output": args.output} if getattr(args, "output", None) else None
    cfg = load_config(args.config, overrides=overrides, check_models=check_models)
    check_writable_dir(cfg.output_dir)
    claim_output(cfg)  # refuses an output directory that another analysis config owns
    return cfg


def _add_jobs(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help=f"{what} at a time, each in a process of its own (default: 1, in turn)",
    )


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="analysis directory or config.yaml")
    p.add_argument("--output", "-o", help="override the config's output directory")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (never shown when stderr is not a terminal)",
    )


def _timing(n: int, unit: str, seconds: float) -> str:
    """'in 3.1 s (118k cand/s)': the time and rate of a step, for its one log line."""
    rate = n / max(seconds, 1e-9)
    text = (
        f"{rate / 1e6:.3g}M"
        if rate >= 1e6
        else f"{rate / 1e3:.3g}k"
        if rate >= 1e3
        else f"{rate:.3g}"
    )
    return f"in {seconds:.1f} s ({text} {unit}/s)"


def _generate(
    gen: Any,
    paths: Sequence[str | Path],
    *,
    source: Any,
    label: str,
    progress: bool,
    only: int | None = None,
) -> None:
    """Generate (or share) one ``generate`` block's files (or file ``only``), printing them and one timing line."""
    from .sim.generate import file_ranges, generate_sample

    t0 = time.perf_counter()
    out, made = generate_sample(
        gen, paths, source=source, progress=progress, only=None if only is None else [only]
    )
    for p in out:
        print(p)
    if made:
        n = gen.events if only is None else file_ranges(gen.events, len(paths))[only][1]
        what = "" if only is None else f" (file {only} of {len(paths)})"
        print(f"generate {label}{what}: {n:,} events {_timing(n, 'ev', time.perf_counter() - t0)}")
    else:
        print(f"generate {label}: up to date (generated earlier with the same settings; shared)")


def _cmd_generate(args: argparse.Namespace) -> int:
    from .sim.generate import check_generated

    progress = not args.no_progress
    if args.config:
        cfg = _config(args)
        samples = (
            [args.sample] if args.sample else [s for s, c in cfg.samples.items() if c.generate]
        )
        for s in samples:
            if s not in cfg.samples or cfg.samples[s].generate is None:
                what = (
                    "has no 'generate' block; its files must exist"
                    if s in cfg.samples
                    else f"is not a sample of {cfg.source}"
                )
                msg = f"samples.{s} {what}"
                raise HepselError(msg)
            # every sample checked (conflicts with other analyses' files) before any is generated
            check_generated(cfg.samples[s].generate, cfg.sample_files(s), source=cfg.source)
        for s in samples:
            _generate(
                cfg.samples[s].generate,
                cfg.sample_files(s),
                source=cfg.source,
                label=s,
                progress=progress,
            )
        return 0
    if args.spec:
        return _generate_from_spec(
            args.spec, args.paths or [], source=args.source, progress=progress, only=args.file_index
        )
    if not (args.kind and args.events and args.output):
        msg = (
            "hepsel generate needs --config, --spec with --paths, or --kind, --events and --output"
        )
        raise HepselError(msg)
    pattern = args.output
    if args.files > 1 and "{index}" not in pattern:
        msg = "--output must contain '{index}' when --files > 1"
        raise HepselError(msg)
    from .config.schema import GenerateConfig

    gen = GenerateConfig(
        kind=args.kind, events=args.events, files=args.files, seed=args.seed, pileup=args.pileup
    )
    paths = [Path(pattern.format(index=f"{i:03d}")) for i in range(args.files)]
    _generate(gen, paths, source=args.source, label=args.kind, progress=progress)
    return 0


def _generate_from_spec(
    spec: str, paths: list[str], *, source: str | None, progress: bool, only: int | None = None
) -> int:
    """Generate files from a JSON ``generate`` block (what the workflow's generate rules pass)."""
    import json

    from pydantic import ValidationError

    from .config.schema import GenerateConfig

    try:
        gen = GenerateConfig.model_validate(json.loads(spec))
    except (ValueError, ValidationError) as err:
        msg = f"--spec is not a valid 'generate' block: {err}"
        raise HepselError(msg) from None
    if len(paths) != gen.files:
        msg = f"--spec asks for {gen.files} file(s) but --paths names {len(paths)}"
        raise HepselError(msg)
    if only is not None and not 0 <= only < len(paths):
        msg = f"--file-index {only} is out of range for the {len(paths)} file(s) of --paths"
        raise HepselError(msg)
    _generate(gen, paths, source=source, label=gen.kind, progress=progress, only=only)
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)  # one job per input file: no estimator imported
    t0 = time.perf_counter()
    meta = workflow.prepare(cfg, args.sample, args.index, progress=not args.no_progress)
    n_in = int(meta["n_candidates_in"])
    print(
        f"prepare {args.sample}[{args.index}]: {n_in:,} -> {int(meta['n_candidates_out']):,} candidates "
        f"{_timing(n_in, 'cand', time.perf_counter() - t0)}"
    )
    return 0


def _cmd_gather(args: argparse.Namespace) -> int:
    from . import workflow

    t0 = time.perf_counter()
    info = workflow.gather(_config(args))
    for s, v in info.items():
        print(
            f"{s}: {v['n_candidates']} candidates, {v['n_events']} events, normalisation {v['normalisation']:.6g}"
        )
    n = sum(int(v["n_candidates"]) for v in info.values())
    print(f"gather: {n:,} candidates {_timing(n, 'cand', time.perf_counter() - t0)}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args, check_models=True)
    folds = [args.fold] if args.fold is not None else list(range(cfg.folds.k))
    models = [args.model] if args.model else list(cfg.models)
    tasks = [(m, k) for m in models for k in folds]
    if args.jobs > 1 and len(tasks) > 1:
        from .workflow.processes import map_in_processes

        # a fold trains as in a job of its own (its seeds come from the config): the same models
        train = functools.partial(workflow.train, progress=False)
        infos = map_in_processes(train, [(cfg, m, k) for m, k in tasks], args.jobs)
        for (m, k), info in zip(tasks, infos, strict=True):
            print(_train_line(m, k, info))
        return 0
    for m, k in tasks:
        print(_train_line(m, k, workflow.train(cfg, m, k, progress=not args.no_progress)))
    return 0


def _train_line(model: str, fold: int, info: dict[str, Any]) -> str:
    """One log line per fold model: candidates, time and uncertainty replicas."""
    line = f"train {model} fold {fold}: {info['n_train']:,} candidates {_timing(info['n_train'], 'cand', info['seconds'])}"
    if "uncertainty" in info:
        u = info["uncertainty"]
        line += f"; {len(u['fits'])} uncertainty replicas in {u['seconds']:.1f} s"
    return line


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    t0 = time.perf_counter()
    summary = workflow.evaluate(cfg, progress=not args.no_progress)
    n_models = sum(not name.startswith("_") for name in summary)
    aucs = {name: s["auc"] for name, s in summary.items() if not name.startswith("_")}
    best = max(aucs, key=lambda n: aucs[n]) if aucs else None
    # one line per job: the per-model figures are in summary.json and the headline at the end
    print(
        f"evaluate: {n_models} model(s) in {time.perf_counter() - t0:.1f} s"
        + (f"; highest AUC {best} {aucs[best]:.4f}" if best is not None else "")
        + f"; {workflow.Layout.of(cfg).root / 'summary.json'}"
    )
    return 0


def _cmd_plots(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    t0 = time.perf_counter()
    written = workflow.make_plots(cfg, jobs=args.jobs)
    # one line: the figures' paths are in the report and the plots folder
    print(
        f"plots: {len(written)} files in {workflow.Layout.of(cfg).plots} in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    if args.candidate is not None:
        return _explain_candidate(cfg, args)
    if args.local:
        for m in [args.model] if args.model else list(cfg.models):
            out = workflow.why(cfg, m)
            r = out["rankings"]
            top = sorted(
                zip(r["features"], r["methods"]["mean |SHAP|"], strict=True), key=lambda t: -t[1]
            )[:3]
            print(
                f"{m}: {len(out['candidates'])} candidates explained; top features by mean |SHAP| "
                f"{', '.join(n for n, _ in top)}; written {workflow.Layout.of(cfg).why(m)}"
            )
        return 0
    models = [args.model] if args.model else workflow.explainable_models(cfg)
    for m in models:
        info = workflow.explain(cfg, m)
        print(f"{m}: top features {', '.join(list(info['mean_abs_shap'])[:3])}")
    return 0


def _output_name(shap_method: str) -> str:
    """What a model's explained output is called: the margin, a logit, or an autoencoder's reconstruction error."""
    if "reconstruction error" in shap_method:
        return "reconstruction error"
    return "logit" if "logit" in shap_method else "margin"


def _explain_candidate(cfg: Any, args: argparse.Namespace) -> int:
    """Explain one candidate with one model (or each model of the config): a table and a figure per model."""
    from . import workflow

    for m in [args.model] if args.model else list(cfg.models):
        rec = workflow.why_candidate(cfg, m, args.candidate)
        verdict = (
            ""
            if rec["passes"] is None
            else f", {'passes' if rec['passes'] else 'fails'} {rec['working_point']}"
        )
        print(
            f"{m}: candidate {rec['candidate']} ({rec['sample']}{', truth-matched' if rec['truth'] and rec['label'] else ''}), "
            f"fold {rec['fold']} model: {_output_name(rec['shap_method'])} {rec['margin']:.6g}, score {rec['score']:.6g}{verdict}"
        )
        print(
            f"  SHAP: {rec['shap_method']}; base value {rec['shap_base']:.6g}, base + sum {rec['shap_sum']:.6g}"
        )
        print(
            f"  LIME: intercept {rec['lime_intercept']:.6g}, prediction {rec['lime_local_pred']:.6g}, "
            f"R^2 {rec['lime_r2_mean']:.3f}{' (poor fit)' if rec['poor_lime_fit'] else ''}"
        )
        width = max(len(c["feature"]) for c in rec["contributions"])
        print(
            f"  {'feature':<{width}}  {'value':>12}  {'SHAP':>10}  {'LIME weight':>11}  {'LIME contr.':>11}"
        )
        for c in rec["contributions"]:
            print(
                f"  {c['feature']:<{width}}  {c['value']:>12.6g}  {c['shap']:>10.6f}  {c['lime_weight']:>11.6f}  "
                f"{c['lime_contribution']:>11.6f}"
            )
        if rec["sign_flips"]:
            print(f"  SHAP sign flips between fold models: {', '.join(rec['sign_flips'])}")
        print(f"  written {rec['json']} and {rec['png']}")
    return 0


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    for m in [args.model] if args.model else workflow.gan_models(cfg):
        f = workflow.fidelity(cfg, m)
        print(
            f"{m}: classifier two-sample AUC = {f['c2st_auc_mean']:.3f}, mean W1 / baseline = {f['mean_wasserstein_ratio']:.2f}"
        )
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args, check_models=True)
    if args.summary:
        print(workflow.study_summary(cfg)["table"])
        return 0
    if not (args.model and args.n_real and args.seed is not None):
        msg = "hepsel study needs --model, --n-real and --seed (or --summary)"
        raise HepselError(msg)
    r = workflow.study_point(cfg, args.model, args.n_real, args.seed)
    print(
        f"{args.model} N_real={r['n_real']} seed={args.seed}: AUC {r['auc']:.4f}, eff. {r['eff_at_rate']:.4f}"
    )
    return 0


def _cmd_decorrelation_scan(args: argparse.Namespace) -> int:
    from . import workflow

    res = workflow.decorrelation_scan(_config(args, check_models=True))
    print(
        f"{res['model']} ({res['kind']}), fold {res['fold']}, spectator {res['spectator']}, {res['working_point']}:"
    )
    print(f"{'lambda':>8} {'eff':>8} {'dCor':>8} {'JSD':>8} {'AUC':>8}")
    for p in res["points"]:
        print(
            f"{p['strength']:>8g} {p['efficiency']:>8.4f} {p['distance_correlation']:>8.4f} "
            f"{p['jensen_shannon']:>8.4f} {p['auc']:>8.4f}"
        )
    return 0


def _cmd_robustness(args: argparse.Namespace) -> int:
    from . import workflow
    from .prep.robustness import format_table

    cfg = _config(args)
    from .io.storage import write_text

    r = workflow.robustness(cfg, progress=not args.no_progress)
    table = workflow.Layout.of(cfg).root / "robustness.txt"
    write_text(table, format_table(r) + "\n")
    print(
        f"robustness: {len(r['shifts'])} shift(s), {len(r['models'])} model(s) in {r['seconds']:.1f} s; "
        f"table in {table}"
    )
    return 0


def _cmd_menu(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    if args.line:
        path = workflow.menu_line(cfg, args.line)
        print(f"menu: line {args.line!r}: event scores in {path}")
        return 0
    m = workflow.menu(cfg)
    figures = workflow.menu_plots(cfg)
    parts = [
        f"{k} kHz: objective {r['objective']:.3f} ({r['gain']:+.1%} vs naive split), "
        f"rate {r['rate_khz']['value']:.0f} kHz"
        for k, r in m["rates"].items()
    ]
    print(
        f"menu: {len(m['lines'])} line(s) in {m['seconds']:.1f} s; "
        + "; ".join(parts)
        + f"; {len(figures) // 2} figures; {workflow.Layout.of(cfg).menu}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from . import workflow

    print(workflow.report(_config(args), jobs=args.jobs))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from .report.compare import compare, format_comparison

    result = compare(args.results_a, args.results_b)
    print(json.dumps(result, indent=1) if args.json else format_comparison(result))
    return 0


def _add_compare_parser(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "compare",
        help="two studies' headline figures side by side, with differences and their significance",
    )
    p.add_argument("results_a", help="results directory (with summary.json) of study A")
    p.add_argument("results_b", help="results directory of study B")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=_cmd_compare)


def _cmd_run(args: argparse.Namespace) -> int:
    """The whole analysis in-process (without Snakemake)."""
    from . import workflow

    cfg = _config(args, check_models=True)
    progress = not args.no_progress
    from .sim.generate import needs_generation

    # every sample checked (conflicts with other analyses' files) before any is generated
    todo = [
        s
        for s, c in cfg.samples.items()
        if c.generate and needs_generation(c.generate, cfg.sample_files(s), source=cfg.source)
    ]
    for s in todo:
        workflow.generate(cfg, s, progress=progress)
    for s in cfg.samples:
        for i in range(len(cfg.sample_files(s))):
            workflow.prepare(cfg, s, i, progress=progress)
    workflow.gather(cfg)
    for m in cfg.models:
        for k in range(cfg.folds.k):
            workflow.train(cfg, m, k, progress=progress)
    workflow.evaluate(cfg, progress=progress)
    workflow.make_plots(cfg)
    # the optional steps as the Snakefile's default target runs them
    for m in workflow.explainable_models(cfg) if cfg.evaluation.shap.enabled else []:
        workflow.explain(cfg, m)
    for m in cfg.models if cfg.explain.enabled else []:
        workflow.why(cfg, m)
    for m in workflow.gan_models(cfg):
        workflow.fidelity(cfg, m)
    if cfg.robustness is not None:
        workflow.robustness(cfg, progress=progress)
    if cfg.menu is not None:
        for line in cfg.menu.lines:
            workflow.menu_line(cfg, line)
        workflow.menu(cfg)
        workflow.menu_plots(cfg)
    if cfg.report.enabled:
        workflow.report(cfg)
    print(Path(cfg.output_dir) / "summary.json")
    print(workflow.headline(cfg))
    return 0


def score_counts(
    sel: Any, source: Any, *, models: Sequence[str] | None = None, tree: str | None = None
) -> dict[str, Any]:
    """Per model: entries, preselected entries, their mean score and the entries passing each stored working point.

    Entries the preselection rejects have no score (NaN) and pass nothing; the
    mean is over the preselected entries (``None`` when there are none).
    """
    import numpy as np

    names = list(models or sel.models)
    d = sel.decisions(source, models=names, tree=tree)
    presel = np.asarray(d["presel"], dtype=bool)
    out: dict[str, Any] = {"entries": len(presel), "preselected": int(presel.sum()), "models": {}}
    for m in names:
        s = np.asarray(d[f"score_{m}"], dtype=np.float64)[presel]
        passes = {k: int(np.count_nonzero(v)) for k, v in d.items() if k.startswith(f"pass_{m}_")}
        out["models"][m] = {"mean_score": float(s.mean()) if len(s) else None, "passing": passes}
    return out


def _cmd_score(args: argparse.Namespace) -> int:
    import json

    from .deploy.selection import Selection

    sel = Selection.load(args.selection, models=args.model)
    counts = score_counts(sel, args.input, models=args.model, tree=args.tree)
    if args.json:
        print(json.dumps({"input": args.input, "tree": args.tree or sel.tree, **counts}, indent=1))
        return 0
    n, n_pre = counts["entries"], counts["preselected"]

    def frac(k: int, of: int) -> str:
        return f"{k / of:.1%}" if of else "n/a"

    print(
        f"{args.input}:{args.tree or sel.tree}: {n:,} entries, {n_pre:,} preselected ({frac(n_pre, n)})"
    )
    for m, c in counts["models"].items():
        mean = "n/a (nothing preselected)" if c["mean_score"] is None else f"{c['mean_score']:.4f}"
        print(f"{m}: mean score {mean} over the preselected entries")
        for key, k in c["passing"].items():
            print(
                f"  {key}: {k:,} entries pass ({frac(k, n_pre)} of the preselected, {frac(k, n)} of all)"
            )
        if not c["passing"]:
            print("  (no stored working points)")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    import glob

    from .deploy.apply import apply_file, plan_outputs, split_own_outputs
    from .deploy.selection import Selection
    from .io.remote import expand_url, is_url
    from .io.storage import check_writable_dir

    files: list[str] = []
    for pattern in args.inputs:
        if is_url(pattern):  # read in place; a glob lists the XRootD directory
            files.extend(expand_url(pattern, "input"))
            continue
        # '**' matches any depth of directories
        matches = (
            sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        )
        if not matches:
            msg = f"input pattern {pattern!r} matches no file"
            raise HepselError(msg)
        files.extend(matches)
    kept, skipped = split_own_outputs(files)
    for path, why in skipped:
        print(f"hepsel: skipping {str(path)!r}: {why}", file=sys.stderr)
    if not kept:
        msg = (
            f"no input left to apply to: every file given is hepsel's own output ({skipped[0][1]})"
        )
        raise HepselError(msg)
    # every check before anything is written: no output may be an input, the directory must take files
    jobs = plan_outputs(kept, args.output)
    out = check_writable_dir(args.output)
    sel = Selection.load(args.selection, models=args.model)
    if args.no_menu:
        sel.menu = None
    out.mkdir(parents=True, exist_ok=True)
    for f, target in jobs:
        try:
            info = apply_file(
                sel,
                f,
                target,
                tree=args.tree,
                copy_branches=args.copy_branches,
                progress=not args.no_progress,
            )
        except HepselError:
            raise
        except (KeyError, ValueError) as err:
            msg = f"{f}: {err.args[0] if err.args else err}"
            raise HepselError(msg) from None
        n_ev = info["events"]
        passes = ", ".join(
            f"{k} {v:,}" + (f" ({100 * v / n_ev:.1f}%)" if n_ev else "")
            for k, v in info["event_passes"].items()
        )
        print(
            f"{info['output']}: {info['entries']:,} entries, {info['preselected']:,} preselected, "
            f"{n_ev:,} events; events passing: {passes}"
        )
    # the report's signal efficiencies count differently: say what these counts are
    print(
        "events passing: events in which any preselected entry passes, of all events with an entry in the "
        "tree; unweighted and without truth matching (the report's signal efficiencies count only signal "
        "events whose truth-matched candidate passed the preselection, weighted)"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .io.storage import check_writable_dir

    check_writable_dir(args.output)
    try:
        if args.format == "bbdt":
            from .deploy.export_bbdt import export_bbdt

            written = export_bbdt(args.selection, args.output, models=args.model)
        else:
            from .deploy.export import export_onnx, onnx_exportable
            from .deploy.selection import Selection

            sel = Selection.load(args.selection)
            written = export_onnx(
                sel, args.output, models=args.model, dtype=args.dtype, force=args.force
            )
            skipped = onnx_exportable(sel)[1]
            if skipped and not args.model:
                print(
                    f"hepsel: skipped {', '.join(f'{n} ({r})' for n, r in skipped.items())}",
                    file=sys.stderr,
                )
    except HepselError:
        raise
    except ImportError as err:
        raise HepselError(str(err)) from None
    except (KeyError, ValueError) as err:
        raise HepselError(str(err.args[0] if err.args else err)) from None
    except OSError as err:
        # e.g. an output under a regular file or in a read-only directory
        at = (
            f" ({str(err.filename)!r})"
            if err.filename and not Path(err.filename).name.startswith(".")
            else ""
        )
        msg = f"cannot write the export to {args.output!r}: {err.strerror or err}{at}"
        raise HepselError(msg) from None
    for p in written:
        print(p)
    return 0


def _add_export_parser(sub: _Subparsers) -> None:
    p = sub.add_parser(
        "export", help="write a saved selection's models for deployment (ONNX, bonsai tables)"
    )
    p.add_argument("--selection", "-s", required=True, help="a saved selection directory")
    p.add_argument(
        "--format",
        choices=["onnx", "bbdt"],
        default="onnx",
        help="onnx: a graph per model and fold, for every model with an ONNX form (a bbdt is skipped, "
        "with a note); bbdt: bonsai-BDT tables as flat float32 binaries + JSON",
    )
    p.add_argument(
        "--output",
        "-o",
        required=True,
        help="output directory: new, empty, or an earlier export, which is added to: the models exported now "
        "replace their files, other models' files stay (onnx: export.json lists them all)",
    )
    p.add_argument(
        "--model",
        action="append",
        help="export only this model (repeatable; default: all with the format)",
    )
    p.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="input type of the ONNX graphs",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="onnx: replace an earlier export in --output entirely, also one of another selection or --dtype "
        "(without it such an export is refused)",
    )
    p.set_defaults(func=_cmd_export)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends '(default: ...)' where there is a default worth showing and the help does not name it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or action.required
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hepsel``."""
    parser = argparse.ArgumentParser(
        prog="hepsel",
        description="Event selection for HEP: ROOT ntuples in, trained selections out.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write simulated LHCb-like ROOT files")
    p.add_argument(
        "--config", "-c", help="generate the samples of this analysis that have a 'generate' block"
    )
    p.add_argument("--sample", help="only this sample (with --config)")
    p.add_argument(
        "--kind",
        choices=["signal", "minbias"],
        help="what to simulate (without --config or --spec)",
    )
    p.add_argument("--events", type=int, help="number of events over all files (with --kind)")
    p.add_argument("--seed", type=int, default=1, help="random seed (with --kind)")
    p.add_argument(
        "--pileup",
        type=float,
        default=1.1,
        help="mean number of pp collisions per event (with --kind)",
    )
    p.add_argument(
        "--files", type=int, default=1, help="split the events over this many files (with --kind)"
    )
    p.add_argument("--output", "-o", help="file name; '{index}' is replaced by the file number")
    p.add_argument("--spec", help="a config 'generate' block as JSON (with --paths)")
    p.add_argument("--paths", nargs="+", help="the files to write (with --spec)")
    p.add_argument(
        "--file-index",
        type=int,
        metavar="I",
        help="write only the I-th file of --paths (counted from 0), as a run writing all of them would: "
        "one job per file (with --spec)",
    )
    p.add_argument(
        "--source",
        help="the analysis config asking for the files (with --spec or --kind; recorded beside them)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (never shown when stderr is not a terminal)",
    )
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("prepare", help="preselect one input file of a sample")
    _add_config(p)
    p.add_argument("--sample", required=True, help="a sample of the config")
    p.add_argument(
        "--index", type=int, default=0, help="which of the sample's input files (0-based)"
    )
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("gather", help="merge prepared files; cut-flow table")
    _add_config(p)
    p.set_defaults(func=_cmd_gather)

    p = sub.add_parser("train", help="train fold models")
    _add_config(p)
    p.add_argument("--model", help="only this model (default: every model of the config)")
    p.add_argument("--fold", type=int, help="only this fold (default: every fold)")
    _add_jobs(p, "fold models trained")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate", help="score, compute figures, write scores.root and summary.json"
    )
    _add_config(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("plots", help="make the plots")
    _add_config(p)
    _add_jobs(p, "figure sets (the comparisons, one per model) drawn")
    p.set_defaults(func=_cmd_plots)

    p = sub.add_parser(
        "explain", help="SHAP values (their figures: hepsel report) or one candidate's explanation"
    )
    _add_config(p)
    p.add_argument(
        "--model",
        help="only this model (default: every explainable model; every model with --candidate/--local)",
    )
    p.add_argument(
        "--candidate",
        metavar="RUN:EVENT[:INDEX]",
        help="why this candidate? its SHAP waterfall and LIME explanation, by the fold model that scored it "
        "(INDEX: which of the event's candidates, when it has several)",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="explain selected candidates at the first working point, rank the features by several methods "
        "(explain/<model>.json)",
    )
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("fidelity", help="GAN fidelity report")
    _add_config(p)
    p.add_argument("--model", help="only this model (default: every GAN-augmented model)")
    p.set_defaults(func=_cmd_fidelity)

    p = sub.add_parser("study", help="one point of the augmentation study, or --summary")
    _add_config(p)
    p.add_argument("--model", help="the model of the study point")
    p.add_argument("--n-real", help="number of real signal candidates to train on, or 'all'")
    p.add_argument("--seed", type=int, help="seed of the study point")
    p.add_argument(
        "--summary", action="store_true", help="tabulate and plot the finished study points instead"
    )
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser(
        "decorrelation-scan",
        help="retrain the decorrelation_scan model at each DisCo strength on one fold",
    )
    _add_config(p)
    p.set_defaults(func=_cmd_decorrelation_scan)

    p = sub.add_parser(
        "robustness",
        help="efficiency and rate changes at fixed working points on miscalibrated inputs (robustness.shifts)",
    )
    _add_config(p)
    p.set_defaults(func=_cmd_robustness)

    p = sub.add_parser(
        "menu",
        help="divide the output rate between the menu's lines (menu.json, plots/menu_*), or score one line",
    )
    _add_config(p)
    p.add_argument(
        "--line", help="only compute this line's event scores (menu/lines/<line>.parquet)"
    )
    p.set_defaults(func=_cmd_menu)

    p = sub.add_parser(
        "report", help='write report.html (and draw the SHAP and "why" figures it shows)'
    )
    _add_config(p)
    _add_jobs(p, "models whose explanation figures are drawn")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("run", help="run the whole analysis in one process (no Snakemake)")
    _add_config(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "score",
        help="count a ROOT file's entries, preselected entries and entries passing each working point, per model "
        "(scores per entry: hepsel apply)",
    )
    p.add_argument("selection", help="a saved selection directory")
    p.add_argument("input", help="ROOT file")
    p.add_argument("--tree", help="input tree (default: the selection's)")
    p.add_argument("--model", action="append", help="only this model (repeatable; default: all)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser(
        "apply",
        help="score ROOT files with a saved selection: friend trees of scores and decisions, per entry and per event",
    )
    p.add_argument("--selection", "-s", required=True, help="a saved selection directory")
    p.add_argument(
        "inputs",
        nargs="+",
        help="ROOT files, root:// or http(s):// URLs, or quoted glob patterns ('**' matches any depth; on root:// "
        "directories too); hepsel's own outputs among them are skipped",
    )
    p.add_argument(
        "--output",
        "-o",
        required=True,
        help="directory for the <input stem>_hepsel.root files; an output that is one of the inputs is refused",
    )
    p.add_argument("--tree", help="input tree (default: the selection's)")
    p.add_argument("--model", action="append", help="only this model (repeatable; default: all)")
    p.add_argument(
        "--copy-branches", action="store_true", help="also copy the input's flat numeric branches"
    )
    p.add_argument(
        "--no-menu",
        action="store_true",
        help="leave out the trigger menu's decisions (pass_<line>_*, pass_menu_*) of a selection that has one",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (never shown when stderr is not a terminal)",
    )
    p.set_defaults(func=_cmd_apply)

    _add_export_parser(sub)
    _add_compare_parser(sub)
    # every sub-command: its one-line help as description, and defaults shown in --help
    summaries = {a.dest: a.help for a in sub._choices_actions}
    for name, p in sub.choices.items():
        p.formatter_class = _HelpFormatter
        p.description = p.description or summaries.get(name)
    return parser


def _os_error(err: OSError) -> str:
    """One line for an :class:`OSError`: the file(s) and the system's reason."""
    reason = err.strerror or str(err)
    if err.filename is None:
        return reason
    files = repr(str(err.filename)) + (
        f" -> {str(err.filename2)!r}" if err.filename2 is not None else ""
    )
    return f"{files}: {reason}"


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """hepsel's own warnings as one line (``hepsel: warning: ...``); others as Python shows them."""
    if category.__module__.split(".")[0] != "hepsel":
        (file or sys.stderr).write(
            warnings.formatwarning(message, category, filename, lineno, line)
        )
        return
    print(f"hepsel: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hepsel`` console script."""
    args = build_parser().parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a reader that went away shows here, inside the handler below
        return status
    except BrokenPipeError:
        # the reader closed the pipe (``hepsel compare A B | head -5``): stop quietly, as Unix tools do;
        # stdout goes to devnull so that the interpreter's final flush does not fail again
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (
            OSError,
            ValueError,
            AttributeError,
        ):  # a stdout without a file descriptor (embedded use)
            pass
        return _SIGPIPE_STATUS
    except HepselError as err:
        print(f"hepsel: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        # the operating system refused a file operation: name the file and the reason, no traceback
        print(f"hepsel: error: {_os_error(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hepsel: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
