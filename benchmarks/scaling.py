"""Time and memory of the default study at 1x, 10x and 100x its events, per Snakemake rule.

For each scale ``N`` the script writes the analysis ``benchmarks/scaling/topo2body_x<N>/config.yaml``:
the default study (``analyses/topo2body``) with ``N`` times the generated
events of every sample, split over ``N`` files per sample (20k signal and 100k
minimum-bias events per file, as the default), and only the models named by
``--models`` (default: bdt and fisher). Its data go to
``data/generated/topo2body_x<N>/`` and its results to ``results/topo2body_x<N>/``.
It then runs the whole workflow with ``snakemake --cores <cores>`` (data
generation included) and tabulates, from the ``benchmark:`` file of every job,
per rule: the number of jobs, the wall time summed over jobs and of the longest
job, the CPU time, and the largest peak resident memory (RSS) of any job.

Usage::

    python benchmarks/scaling.py --scales 1 10 100 --cores 2

The table (one row per rule, columns per scale) is printed as Markdown (the
README's scaling table is its output) and written with the totals to
``results/scaling.json``. A scale whose results are complete is not rerun
(Snakemake finds nothing to do), so its earlier timings are tabulated, the
run's wall time from ``results/topo2body_x<N>/scaling_run.json``: delete
``results/topo2body_x<N>`` to measure it again.
Targets on 2 cores and 24 GB: the 100x run within 45 minutes of wall time, no
job above 6 GB of RSS, and 100x taking at most 11 times as long as 10x.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a source checkout that is not installed

from hepsel.report.benchmarks import read_benchmarks  # noqa: E402

__all__ = ["main", "scaled_config"]

SIGNAL_PER_FILE = 20_000
MINBIAS_PER_FILE = 100_000


def scaled_config(base: dict[str, Any], scale: int, models: list[str]) -> dict[str, Any]:
    """The default study's config with ``scale`` times its events over ``scale`` files per sample."""
    cfg = copy.deepcopy(base)
    name = f"{base['name']}_x{scale}"
    cfg["name"] = name
    for sample, scfg in cfg["samples"].items():
        gen = scfg.get("generate")
        if gen is None:
            continue
        gen["events"] = int(gen["events"]) * scale
        gen["files"] = scale
        scfg["files"] = [f"data/generated/{name}/{sample}_{{index}}.root"]
    unknown = sorted(set(models) - set(cfg["models"]))
    if unknown:
        msg = f"models {unknown} are not in the default study ({sorted(cfg['models'])})"
        raise SystemExit(msg)
    cfg["models"] = {m: cfg["models"][m] for m in models}
    study = cfg.get("study")
    if study is not None:
        study["models"] = [m for m in study.get("models", []) if m in models] or [models[0]]
    # apply runs on the default study's files: point it at this scale's first file of each sample
    if "apply" in cfg:
        cfg["apply"]["datasets"] = {
            s: {"files": [f"data/generated/{name}/{s}_000.root"]} for s in cfg["samples"]
        }
    return cfg


def run_scale(scale: int, *, cores: int, models: list[str], extra: list[str]) -> dict[str, Any]:
    """Write the config of one scale, run its workflow and return its timings."""
    base = yaml.safe_load((ROOT / "analyses" / "topo2body" / "config.yaml").read_text())
    cfg = scaled_config(base, scale, models)
    analysis = ROOT / "benchmarks" / "scaling" / cfg["name"]
    analysis.mkdir(parents=True, exist_ok=True)
    config_path = analysis / "config.yaml"
    text = "# written by benchmarks/scaling.py\n" + yaml.safe_dump(cfg, sort_keys=False)
    if not config_path.is_file() or config_path.read_text() != text:
        config_path.write_text(text)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        str(cores),
        "--config",
        f"analysis={analysis.relative_to(ROOT)}",
        *extra,
    ]
    print("$", " ".join(cmd), flush=True)
    out = ROOT / "results" / cfg["name"]
    started = time.time()
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    # a run that found nothing to do keeps the wall time of the run that made the results
    record = out / "scaling_run.json"
    ran = any(p.stat().st_mtime >= started for p in (out / "benchmarks").rglob("*.tsv"))
    if not ran and record.is_file():
        wall = json.loads(record.read_text())["wall_seconds"]
    else:
        record.write_text(json.dumps({"wall_seconds": wall}))
    rows = read_benchmarks(out / "benchmarks")
    events = {s: c["generate"]["events"] for s, c in cfg["samples"].items() if c.get("generate")}
    summary = json.loads((out / "summary.json").read_text())
    auc = {m: summary[m].get("auc") for m in models if m in summary}
    return {
        "scale": scale,
        "wall_seconds": wall,
        "events": events,
        "rules": rows,
        "auc": auc,
        "dataset_mb": (out / "dataset.parquet").stat().st_size / 1e6,
    }


def markdown(results: list[dict[str, Any]]) -> str:
    """One table over the scales: per rule, jobs, summed wall time, CPU time and largest peak RSS."""
    lines = []
    for res in results:
        ev = ", ".join(f"{n:,} {s}" for s, n in res["events"].items())
        lines.append(
            f"- **{res['scale']}x**: {ev}; data set {res['dataset_mb']:.0f} MB; "
            f"the run took {res['wall_seconds'] / 60:.1f} min"
        )
    lines.append("")
    scales = [f"{r['scale']}x" for r in results]
    head = ["rule", "jobs"] + [
        f"{s} {what}" for s in scales for what in ("wall [s]", "CPU [s]", "RSS [MB]")
    ]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|" + "---:|" * (len(head) - 1))
    by_rule = [{r["rule"]: r for r in res["rules"]} for res in results]
    for rule in sorted(set().union(*by_rule)):
        jobs = "/".join(str(b[rule]["jobs"]) if rule in b else "-" for b in by_rule)
        cells = [rule, jobs]
        for b in by_rule:
            r = b.get(rule)
            if r is None:
                cells += ["-", "-", "-"]
                continue
            cells.append(
                f"{r['seconds']:.0f}" + (f" ({r['max_seconds']:.0f})" if r["jobs"] > 1 else "")
            )
            cells.append("-" if r["cpu_seconds"] is None else f"{r['cpu_seconds']:.0f}")
            cells.append("-" if r["max_rss_mb"] is None else f"{r['max_rss_mb']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "wall: summed over a rule's jobs (the longest job in brackets); RSS: the largest of any job."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["bdt", "fisher"])
    parser.add_argument(
        "--snakemake-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="passed on to snakemake (last)",
    )
    args = parser.parse_args(argv)
    results = [
        run_scale(s, cores=args.cores, models=args.models, extra=args.snakemake_args)
        for s in args.scales
    ]
    print(markdown(results))
    walls = {r["scale"]: r["wall_seconds"] for r in results}
    if 10 in walls and 100 in walls:
        print(f"100x / 10x wall time: {walls[100] / walls[10]:.2f} (target <= 11)")
    for r in results:
        peak = max((x["max_rss_mb"] or 0.0) for x in r["rules"])
        print(
            f"{r['scale']}x: {r['wall_seconds'] / 60:.1f} min, largest job RSS {peak / 1e3:.2f} GB, AUC {r['auc']}"
        )
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "scaling.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
