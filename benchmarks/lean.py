"""A bdt-only study through the workflow vs the same study as one bare script.

Builds, in a temporary directory, a copy of ``analyses/topo2body/config.yaml``
with only the ``bdt`` model and everything optional switched off (SHAP values,
the "why" explanations, the report, bootstrap spreads, efficiency-vs-variable,
per-mode, sculpting and background-composition figures, the study, apply and
robustness blocks) and each model's folds trained in one job
(``training.fold_jobs: per_model``; ``--fold-jobs per_fold`` for one job per
fold), reading the default generated files by absolute path and writing its
results into the temporary directory. Then, after warming the
file-system cache, runs in turn

- hepsel: ``snakemake --cores 2`` on that config (every rule a
  ``python -m hepsel.cli`` job);
- bare: ``benchmarks/bare_bdt.py`` (uproot + numpy + xgboost + scikit-learn +
  matplotlib, one process), with the same preselection, features, folds,
  seeds and early-stopping split, and the same deliverables: summary.json
  (the figures the plots show), scores.root and the nine figures of hepsel's
  ``plots`` step (checked by name), PNG and PDF;

timing the wall clock of each and the CPU time of its child processes
(``resource.getrusage(RUSAGE_CHILDREN)``). Prints both, their ratios, hepsel's
time per rule (Snakemake's benchmark files) and the AUC and efficiencies of
both, which must agree.

Also times Snakemake's fixed cost: a dry run (``-n``) of the same config,
which imports Snakemake and its plugins, loads the Snakefile and builds the
DAG. Where the slurm executor plugin is installed it runs ``scontrol show
config`` as Snakemake starts; with a slurm client and no reachable controller
that waits about 9 s. ``--shadow-scontrol`` runs Snakemake with a ``scontrol``
that fails at once first on ``PATH``, to time hepsel without that wait.

    python benchmarks/lean.py [--repeat 3] [--shadow-scontrol] [--fold-jobs per_fold] [--data-dir data/generated/topo2body]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

#: Switches and blocks a bdt-only study leaves out.
_OFF = {"study", "apply", "robustness", "decorrelation_scan"}


def lean_config(data_dir: Path, output: Path, fold_jobs: str = "per_model") -> dict:
    """The default analysis with only the bdt and nothing optional."""
    cfg = yaml.safe_load((REPO / "analyses" / "topo2body" / "config.yaml").read_text())
    for key in _OFF:
        cfg.pop(key, None)
    for s in cfg["samples"].values():
        s.pop("generate")  # the files exist: no generate rules
        s["files"] = [str(data_dir / Path(f).name.replace("{index}", "*")) for f in s["files"]]
    cfg["models"] = {"bdt": cfg["models"]["bdt"]}
    ev = cfg["evaluation"]
    for key in ("efficiency_vs", "mass", "mode_column", "mode_names"):
        ev.pop(key, None)
    for key in ("background_category", "background_category_names"):
        ev.pop(key, None)
    ev["bootstrap"] = 0
    ev["shap"] = {"enabled": False}
    cfg["explain"] = {"enabled": False}
    cfg["report"] = {"enabled": False}
    # one train job per model: one start-up and one set of imports instead of one per fold
    cfg.setdefault("training", {})["fold_jobs"] = fold_jobs
    cfg["output"] = str(output)
    return cfg


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, all child processes) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _per_rule(results: Path) -> dict[str, tuple[int, float, float]]:
    """Jobs, summed wall seconds and summed CPU seconds per rule, from Snakemake's benchmark files."""
    out: dict[str, tuple[int, float, float]] = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(results / "benchmarks").parts[0].removesuffix(".tsv")
        header, row = tsv.read_text().splitlines()[:2]
        rec = dict(zip(header.split("\t"), row.split("\t"), strict=True))
        n, s, c = out.get(rule, (0, 0.0, 0.0))
        out[rule] = (n + 1, s + float(rec["s"]), c + float(rec.get("cpu_time", "nan")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO / "data" / "generated" / "topo2body"))
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of each, alternating; medians shown"
    )
    ap.add_argument(
        "--max-ratio", type=float, default=1.5, help="target of hepsel / bare wall time"
    )
    ap.add_argument(
        "--shadow-scontrol",
        action="store_true",
        help="Snakemake runs with a scontrol that fails at once (no wait for an unreachable slurm controller)",
    )
    ap.add_argument(
        "--fold-jobs",
        choices=("per_model", "per_fold"),
        default="per_model",
        help="training.fold_jobs of hepsel's study (per_fold: one train job per fold)",
    )
    args = ap.parse_args()
    data_dir = Path(args.data_dir).resolve()
    files = sorted(data_dir.glob("*.root"))
    if not files:
        sys.exit(
            f"no ROOT files in {data_dir}: run the default analysis once (snakemake --cores 2)"
        )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="hepsel-lean-") as tmp:
        work = Path(tmp)
        if args.shadow_scontrol:
            stub = work / "bin" / "scontrol"
            stub.parent.mkdir()
            stub.write_text("#!/bin/sh\nexit 1\n")
            stub.chmod(0o755)
            env["PATH"] = f"{stub.parent}{os.pathsep}{env.get('PATH', '')}"
        # warm-up: the data files and the libraries both read into the page cache
        for f in files:
            f.read_bytes()
        subprocess.run(
            [
                py,
                "-c",
                "import xgboost, sklearn, matplotlib.pyplot, uproot, pyarrow.parquet, snakemake",
            ],
            check=True,
            env=env,
        )
        times: dict[str, list[tuple[float, float]]] = {"hepsel": [], "bare": [], "dry run": []}
        for i in range(args.repeat):
            run = work / f"run{i}"
            analysis = run / "analysis"
            analysis.mkdir(parents=True)
            results = run / "results"
            (analysis / "config.yaml").write_text(
                yaml.safe_dump(lean_config(data_dir, results, args.fold_jobs), sort_keys=False)
            )
            hepsel_cmd = [
                py, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(run),
                "--cores", "2", "--quiet", "all", "--config", f"analysis={analysis}",
            ]  # fmt: skip
            bare_cmd = [
                py, str(REPO / "benchmarks" / "bare_bdt.py"), "--data-dir", str(data_dir),
                "--output", str(run / "bare"),
            ]  # fmt: skip
            order = [("hepsel", hepsel_cmd), ("bare", bare_cmd)]
            for name, cmd in order if i % 2 == 0 else order[::-1]:
                times[name].append(_timed(cmd, run, env))
            # Snakemake's fixed cost: start-up, Snakefile and DAG, no job (all done)
            times["dry run"].append(_timed([*hepsel_cmd, "-n"], run, env))
        last = work / f"run{args.repeat - 1}"
        h = json.loads((last / "results" / "summary.json").read_text())["bdt"]
        b = json.loads((last / "bare" / "summary.json").read_text())["bdt"]
        rules = _per_rule(last / "results")
        # the same deliverables: every figure hepsel draws, and only those, in both formats
        figures = {
            side: sorted(p.name for p in (last / d / "plots").iterdir())
            for side, d in (("hepsel", "results"), ("bare", "bare"))
        }

    def med(name: str, j: int) -> float:
        return statistics.median(t[j] for t in times[name])

    hw, hc, bw, bc = med("hepsel", 0), med("hepsel", 1), med("bare", 0), med("bare", 1)
    print(f"{'':8} {'wall [s]':>9} {'CPU [s]':>9}   ({args.repeat} run(s), medians)")
    print(f"{'hepsel':8} {hw:9.1f} {hc:9.1f}")
    print(f"{'bare':8} {bw:9.1f} {bc:9.1f}")
    print(f"{'ratio':8} {hw / bw:9.2f} {hc / bc:9.2f}")
    print("\nhepsel per rule (last run): jobs, summed wall and CPU seconds")
    for rule, (n, s, c) in sorted(rules.items(), key=lambda kv: -kv[1][1]):
        print(f"  {rule:12} {n:3d} {s:8.1f} {c:8.1f}")
    jobs_wall = sum(s for _, s, _ in rules.values())
    jobs_cpu = sum(c for _, _, c in rules.values())
    print(
        f"  {'jobs':12} {sum(n for n, _, _ in rules.values()):3d} {jobs_wall:8.1f} {jobs_cpu:8.1f}"
    )
    print(f"  snakemake itself (CPU of the run less its jobs'): {hc - jobs_cpu:.1f} s")
    print(
        f"  snakemake dry run (start-up, Snakefile, DAG): {med('dry run', 0):.1f} s wall, "
        f"{med('dry run', 1):.1f} s CPU"
    )
    print(f"\nAUC: hepsel {h['auc']!r}, bare {b['auc']!r}")
    for rate, e in h["eff_at_rate"].items():
        print(f"eff. at {rate} kHz: hepsel {e['eff']!r}, bare {b['eff_at_rate'][rate]['eff']!r}")
    agree = abs(h["auc"] - b["auc"]) < 1e-9 and all(
        abs(e["eff"] - b["eff_at_rate"][r]["eff"]) < 1e-9 for r, e in h["eff_at_rate"].items()
    )
    print("figures agree" if agree else "FIGURES DIFFER")
    same_plots = figures["hepsel"] == figures["bare"]
    print(
        f"plots: {len(figures['hepsel'])} files from hepsel, the same from the bare script"
        if same_plots
        else f"PLOTS DIFFER: hepsel {figures['hepsel']}, bare {figures['bare']}"
    )
    print(f"wall-time ratio {hw / bw:.2f} (target <= {args.max_ratio:g})")
    sys.exit(0 if agree and same_plots else 1)


if __name__ == "__main__":
    main()
