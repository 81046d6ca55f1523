"""The ``hepsel`` command line.

Every sub-command is a thin wrapper over a library function. Errors that
hepsel raises on purpose print one clear message and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .exceptions import HepselError

__all__ = ["main"]


def _config(args: argparse.Namespace):
    from .config import load_config
    from .provenance import claim_output

    overrides = {"output": args.output} if getattr(args, "output", None) else None
    cfg = load_config(args.config, overrides=overrides)
    claim_output(cfg)  # refuses an output directory that another analysis config owns
    return cfg


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="analysis directory or config.yaml")
    p.add_argument("--output", "-o", help="override the config's output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (never shown when stderr is not a terminal)")


def _timing(n: int, unit: str, seconds: float) -> str:
    """'in 3.1 s (118k cand/s)': the time and rate of a step, for its one log line."""
    rate = n / max(seconds, 1e-9)
    text = f"{rate / 1e6:.3g}M" if rate >= 1e6 else f"{rate / 1e3:.3g}k" if rate >= 1e3 else f"{rate:.3g}"
    return f"in {seconds:.1f} s ({text} {unit}/s)"


def _cmd_generate(args: argparse.Namespace) -> int:
    from . import workflow

    if args.config:
        cfg = _config(args)
        samples = [args.sample] if args.sample else [s for s, c in cfg.samples.items() if c.generate]
        for s in samples:
            t0 = time.perf_counter()
            for p in workflow.generate(cfg, s, progress=not args.no_progress):
                print(p)
            gen = cfg.samples[s].generate
            if gen is not None:
                print(f"generate {s}: {gen.events:,} events {_timing(gen.events, 'ev', time.perf_counter() - t0)}")
        return 0
    from .generate import generate_files

    if args.spec:
        return _generate_from_spec(args.spec, args.paths or [], progress=not args.no_progress)
    if not (args.kind and args.events and args.output):
        msg = "hepsel generate needs --config, --spec with --paths, or --kind, --events and --output"
        raise HepselError(msg)
    pattern = args.output
    if args.files > 1 and "{index}" not in pattern:
        msg = "--output must contain '{index}' when --files > 1"
        raise HepselError(msg)
    paths = [Path(pattern.format(index=f"{i:03d}")) for i in range(args.files)]
    t0 = time.perf_counter()
    for p in generate_files(args.kind, paths, args.events, seed=args.seed, pileup=args.pileup, progress=not args.no_progress):
        print(p)
    print(f"generate {args.kind}: {args.events:,} events {_timing(args.events, 'ev', time.perf_counter() - t0)}")
    return 0


def _generate_from_spec(spec: str, paths: list[str], *, progress: bool) -> int:
    """Generate files from a JSON ``generate`` block (what the workflow's generate rules pass)."""
    import json

    from pydantic import ValidationError

    from .config import GenerateConfig
    from .generate import generate_files

    try:
        gen = GenerateConfig.model_validate(json.loads(spec))
    except (ValueError, ValidationError) as err:
        msg = f"--spec is not a valid 'generate' block: {err}"
        raise HepselError(msg) from None
    if len(paths) != gen.files:
        msg = f"--spec asks for {gen.files} file(s) but --paths names {len(paths)}"
        raise HepselError(msg)
    t0 = time.perf_counter()
    for p in generate_files(
        gen.kind, [Path(x) for x in paths], gen.events, seed=gen.seed, pileup=gen.pileup,
        signal_modes=gen.modes, progress=progress,
    ):
        print(p)
    print(f"generate {gen.kind}: {gen.events:,} events {_timing(gen.events, 'ev', time.perf_counter() - t0)}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
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
        print(f"{s}: {v['n_candidates']} candidates, {v['n_events']} events, normalisation {v['normalisation']:.6g}")
    n = sum(int(v["n_candidates"]) for v in info.values())
    print(f"gather: {n:,} candidates {_timing(n, 'cand', time.perf_counter() - t0)}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    folds = [args.fold] if args.fold is not None else list(range(cfg.folds.k))
    models = [args.model] if args.model else list(cfg.models)
    for m in models:
        for k in folds:
            info = workflow.train(cfg, m, k, progress=not args.no_progress)
            line = f"train {m} fold {k}: {info['n_train']:,} candidates {_timing(info['n_train'], 'cand', info['seconds'])}"
            if "uncertainty" in info:
                u = info["uncertainty"]
                line += f"; {len(u['fits'])} uncertainty replicas in {u['seconds']:.1f} s"
            print(line)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    t0 = time.perf_counter()
    summary = workflow.evaluate(cfg, progress=not args.no_progress)
    n_models = sum(not name.startswith("_") for name in summary)
    print(f"evaluate: {n_models} model(s) in {time.perf_counter() - t0:.1f} s")
    for name, s in summary.items():
        if name.startswith("_"):
            continue
        if s.get("eff_at_rate"):
            first = next(iter(s["eff_at_rate"]))
            print(f"{name}: AUC = {s['auc']:.4f}, signal eff. at {first} kHz = {s['eff_at_rate'][first]['eff']:.3f}")
        else:
            off = s.get("offline", {})
            print(f"{name}: AUC = {s['auc']:.4f}, expected S = {off.get('signal_yield', float('nan')):.4g}, "
                  f"B = {off.get('background_yield', float('nan')):.4g} after the preselection")
    return 0


def _cmd_plots(args: argparse.Namespace) -> int:
    from . import workflow

    for p in workflow.make_plots(_config(args)):
        print(p)
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
            top = sorted(zip(r["features"], r["methods"]["mean |SHAP|"], strict=True), key=lambda t: -t[1])[:3]
            print(f"{m}: {len(out['candidates'])} candidates explained; top features by mean |SHAP| "
                  f"{', '.join(n for n, _ in top)}; written {workflow.Layout.of(cfg).why(m)}")
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
        verdict = "" if rec["passes"] is None else f", {'passes' if rec['passes'] else 'fails'} {rec['working_point']}"
        print(f"{m}: candidate {rec['candidate']} ({rec['sample']}{', truth-matched' if rec['truth'] and rec['label'] else ''}), "
              f"fold {rec['fold']} model: {_output_name(rec['shap_method'])} {rec['margin']:.6g}, score {rec['score']:.6g}{verdict}")
        print(f"  SHAP: {rec['shap_method']}; base value {rec['shap_base']:.6g}, base + sum {rec['shap_sum']:.6g}")
        print(f"  LIME: intercept {rec['lime_intercept']:.6g}, prediction {rec['lime_local_pred']:.6g}, "
              f"R^2 {rec['lime_r2_mean']:.3f}{' (poor fit)' if rec['poor_lime_fit'] else ''}")
        width = max(len(c["feature"]) for c in rec["contributions"])
        print(f"  {'feature':<{width}}  {'value':>12}  {'SHAP':>10}  {'LIME weight':>11}  {'LIME contr.':>11}")
        for c in rec["contributions"]:
            print(f"  {c['feature']:<{width}}  {c['value']:>12.6g}  {c['shap']:>10.6f}  {c['lime_weight']:>11.6f}  "
                  f"{c['lime_contribution']:>11.6f}")
        if rec["sign_flips"]:
            print(f"  SHAP sign flips between fold models: {', '.join(rec['sign_flips'])}")
        print(f"  written {rec['json']} and {rec['png']}")
    return 0


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    for m in [args.model] if args.model else workflow.gan_models(cfg):
        f = workflow.fidelity(cfg, m)
        print(f"{m}: classifier two-sample AUC = {f['c2st_auc_mean']:.3f}, mean W1 / baseline = {f['mean_wasserstein_ratio']:.2f}")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from . import workflow

    cfg = _config(args)
    if args.summary:
        print(workflow.study_summary(cfg)["table"])
        return 0
    if not (args.model and args.n_real and args.seed is not None):
        msg = "hepsel study needs --model, --n-real and --seed (or --summary)"
        raise HepselError(msg)
    r = workflow.study_point(cfg, args.model, args.n_real, args.seed)
    print(f"{args.model} N_real={r['n_real']} seed={args.seed}: AUC {r['auc']:.4f}, eff. {r['eff_at_rate']:.4f}")
    return 0


def _cmd_decorrelation_scan(args: argparse.Namespace) -> int:
    from . import workflow

    res = workflow.decorrelation_scan(_config(args))
    print(f"{res['model']} ({res['kind']}), fold {res['fold']}, spectator {res['spectator']}, {res['working_point']}:")
    print(f"{'lambda':>8} {'eff':>8} {'dCor':>8} {'JSD':>8} {'AUC':>8}")
    for p in res["points"]:
        print(
            f"{p['strength']:>8g} {p['efficiency']:>8.4f} {p['distance_correlation']:>8.4f} "
            f"{p['jensen_shannon']:>8.4f} {p['auc']:>8.4f}"
        )
    return 0


def _cmd_robustness(args: argparse.Namespace) -> int:
    from . import workflow
    from .robustness import format_table

    cfg = _config(args)
    r = workflow.robustness(cfg, progress=not args.no_progress)
    print(format_table(r))
    print(f"robustness: {len(r['shifts'])} shift(s), {len(r['models'])} model(s) in {r['seconds']:.1f} s")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from . import workflow

    print(workflow.report(_config(args)))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from .compare import compare, format_comparison

    result = compare(args.results_a, args.results_b)
    print(json.dumps(result, indent=1) if args.json else format_comparison(result))
    return 0


def _add_compare_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="two studies' headline figures side by side, with differences and their significance"
    )
    p.add_argument("results_a", help="results directory (with summary.json) of study A")
    p.add_argument("results_b", help="results directory of study B")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=_cmd_compare)


def _cmd_run(args: argparse.Namespace) -> int:
    """The whole analysis in-process (without Snakemake)."""
    from . import workflow

    cfg = _config(args)
    progress = not args.no_progress
    for s, c in cfg.samples.items():
        if c.generate and not all(p.exists() for p in cfg.sample_files(s)):
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
    for m in workflow.explainable_models(cfg):
        workflow.explain(cfg, m)
    for m in cfg.models:
        workflow.why(cfg, m)
    for m in workflow.gan_models(cfg):
        workflow.fidelity(cfg, m)
    if cfg.robustness is not None:
        workflow.robustness(cfg, progress=progress)
    workflow.report(cfg)
    print(Path(cfg.output_dir) / "summary.json")
    print(workflow.headline(cfg))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .selection import Selection

    sel = Selection.load(args.selection)
    scores = sel.score(args.input, model=args.model, tree=args.tree)
    import numpy as np

    print(f"{len(scores)} entries, mean score {np.mean(scores):.4f}")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    import glob

    from .apply import apply_file, output_name
    from .selection import Selection

    files: list[str] = []
    for pattern in args.inputs:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            msg = f"input pattern {pattern!r} matches no file"
            raise HepselError(msg)
        files.extend(matches)
    names = [output_name(f) for f in files]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        msg = f"several inputs would write the same output {clash}: apply them to separate output directories"
        raise HepselError(msg)
    sel = Selection.load(args.selection, models=args.model)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for f, name in zip(files, names, strict=True):
        try:
            info = apply_file(
                sel, f, out / name, tree=args.tree, copy_branches=args.copy_branches, progress=not args.no_progress
            )
        except HepselError:
            raise
        except (KeyError, ValueError) as err:
            msg = f"{f}: {err.args[0] if err.args else err}"
            raise HepselError(msg) from None
        passes = ", ".join(f"{k} {v}" for k, v in info["event_passes"].items())
        print(f"{info['output']}: {info['entries']} entries, {info['preselected']} preselected, {info['events']} events ({passes})")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    if args.format == "bbdt":
        from .export_bbdt import export_bbdt

        try:
            written = export_bbdt(args.selection, args.output, models=args.model)
        except HepselError:
            raise
        except (KeyError, ValueError) as err:
            raise HepselError(str(err.args[0] if err.args else err)) from None
        for p in written:
            print(p)
        return 0
    from .export import export_onnx

    try:
        written = export_onnx(args.selection, args.output, models=args.model, dtype=args.dtype)
    except ImportError as err:
        raise HepselError(str(err)) from None
    for p in written:
        print(p)
    return 0


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a saved selection's models for deployment (ONNX, bonsai tables)")
    p.add_argument("--selection", "-s", required=True, help="a saved selection directory")
    p.add_argument(
        "--format", choices=["onnx", "bbdt"], default="onnx",
        help="onnx: a graph per model and fold; bbdt: bonsai-BDT tables as flat float32 binaries + JSON",
    )
    p.add_argument("--output", "-o", required=True, help="output directory (new, empty, or an earlier export)")
    p.add_argument("--model", action="append", help="export only this model (repeatable; default: all)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64", help="input type of the graphs")
    p.set_defaults(func=_cmd_export)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends '(default: ...)' where there is a default worth showing and the help does not name it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.required or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hepsel``."""
    parser = argparse.ArgumentParser(prog="hepsel", description="Event selection for HEP: ROOT ntuples in, trained selections out.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write simulated LHCb-like ROOT files")
    p.add_argument("--config", "-c", help="generate the samples of this analysis that have a 'generate' block")
    p.add_argument("--sample", help="only this sample (with --config)")
    p.add_argument("--kind", choices=["signal", "minbias"], help="what to simulate (without --config or --spec)")
    p.add_argument("--events", type=int, help="number of events over all files (with --kind)")
    p.add_argument("--seed", type=int, default=1, help="random seed (with --kind)")
    p.add_argument("--pileup", type=float, default=1.1, help="mean number of pp collisions per event (with --kind)")
    p.add_argument("--files", type=int, default=1, help="split the events over this many files (with --kind)")
    p.add_argument("--output", "-o", help="file name; '{index}' is replaced by the file number")
    p.add_argument("--spec", help="a config 'generate' block as JSON (with --paths)")
    p.add_argument("--paths", nargs="+", help="the files to write (with --spec)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (never shown when stderr is not a terminal)")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("prepare", help="preselect one input file of a sample")
    _add_config(p)
    p.add_argument("--sample", required=True, help="a sample of the config")
    p.add_argument("--index", type=int, default=0, help="which of the sample's input files (0-based)")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("gather", help="merge prepared files; cut-flow table")
    _add_config(p)
    p.set_defaults(func=_cmd_gather)

    p = sub.add_parser("train", help="train fold models")
    _add_config(p)
    p.add_argument("--model", help="only this model (default: every model of the config)")
    p.add_argument("--fold", type=int, help="only this fold (default: every fold)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score, compute figures, write scores.root and summary.json")
    _add_config(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("plots", help="make the plots")
    _add_config(p)
    p.set_defaults(func=_cmd_plots)

    p = sub.add_parser("explain", help="SHAP values (their figures: hepsel report) or one candidate's explanation")
    _add_config(p)
    p.add_argument("--model", help="only this model (default: every explainable model; every model with --candidate/--local)")
    p.add_argument(
        "--candidate", metavar="RUN:EVENT[:INDEX]",
        help="why this candidate? its SHAP waterfall and LIME explanation, by the fold model that scored it "
        "(INDEX: which of the event's candidates, when it has several)",
    )
    p.add_argument(
        "--local", action="store_true",
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
    p.add_argument("--summary", action="store_true", help="tabulate and plot the finished study points instead")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser(
        "decorrelation-scan", help="retrain the decorrelation_scan model at each DisCo strength on one fold"
    )
    _add_config(p)
    p.set_defaults(func=_cmd_decorrelation_scan)

    p = sub.add_parser(
        "robustness", help="efficiency and rate changes at fixed working points on miscalibrated inputs (robustness.shifts)"
    )
    _add_config(p)
    p.set_defaults(func=_cmd_robustness)

    p = sub.add_parser("report", help="write report.html (and draw the SHAP and \"why\" figures it shows)")
    _add_config(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("run", help="run the whole analysis in one process (no Snakemake)")
    _add_config(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("score", help="score a ROOT file with a saved selection")
    p.add_argument("selection", help="a saved selection directory")
    p.add_argument("input", help="ROOT file")
    p.add_argument("--tree", help="input tree (default: the selection's)")
    p.add_argument("--model", help="score with this model (default: the selection's default model)")
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser(
        "apply", help="score ROOT files with a saved selection: friend trees of scores and decisions, per entry and per event"
    )
    p.add_argument("--selection", "-s", required=True, help="a saved selection directory")
    p.add_argument("inputs", nargs="+", help="ROOT files or glob patterns")
    p.add_argument("--output", "-o", required=True, help="directory for the <input stem>_hepsel.root files")
    p.add_argument("--tree", help="input tree (default: the selection's)")
    p.add_argument("--model", action="append", help="only this model (repeatable; default: all)")
    p.add_argument("--copy-branches", action="store_true", help="also copy the input's flat numeric branches")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (never shown when stderr is not a terminal)")
    p.set_defaults(func=_cmd_apply)

    _add_export_parser(sub)
    _add_compare_parser(sub)
    # every sub-command: its one-line help as description, and defaults shown in --help
    summaries = {a.dest: a.help for a in sub._choices_actions}
    for name, p in sub.choices.items():
        p.formatter_class = _HelpFormatter
        p.description = p.description or summaries.get(name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hepsel`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HepselError as err:
        print(f"hepsel: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hepsel: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
