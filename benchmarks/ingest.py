"""Ingestion benchmark: hepsel's prepare step vs bare uproot + numpy, and its memory.

Makes (or reuses) simulated minimum-bias files with ``hepsel generate``:
one of about 4 million candidates (1x) and one four times larger (4x). Then,
each in a fresh process:

- hepsel: ``hepsel.prep.ingest.prepare_file`` with the default analysis
  (``analyses/topo2body``): read + preselection + 13 features + cut-flow,
  written to Parquet;
- bare: ``uproot.iterate(..., library="np")`` over the same branches with the
  same step size, and the same cuts and features written out by hand in numpy
  (no output file).

Prints throughput (candidates/s), the ratio hepsel / bare, and the peak RSS
of the hepsel job on 1x and 4x the data.

    python benchmarks/ingest.py [--events 300000] [--data-dir data/generated/bench]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _hepsel_job(path: str, out: str) -> dict[str, float]:
    import pyarrow.parquet  # noqa: F401 - imported before the clock starts, as in the bare job

    from hepsel.config.loading import load_config
    from hepsel.prep.ingest import prepare_file

    cfg = load_config(REPO / "analyses" / "topo2body", base_dir=REPO)
    t0 = time.perf_counter()
    meta = prepare_file(cfg, "minbias", path, out, progress=False)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "candidates": meta["n_candidates_in"], "kept": meta["n_candidates_out"]}


def _bare_job(path: str, step_size: str, out: str | None = None) -> dict[str, float]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import uproot

    branches = [
        "runNumber",
        "eventNumber",
        "eventWeight",
        "H1_PT",
        "H2_PT",
        "H1_IPCHI2_OWNPV",
        "H2_IPCHI2_OWNPV",
        "H1_TRACK_CHI2NDOF",
        "H2_TRACK_CHI2NDOF",
        "B_VTXCHI2",
        "B_PT",
        "B_ETA",
        "B_MCORR",
        "B_FDCHI2_OWNPV",
        "B_IPCHI2_OWNPV",
        "B_DIRA_OWNPV",
        "B_DOCA",
        "H1_GhostProb",
        "H2_GhostProb",
        "B_M",
        "B_TAU",
        "B_TRUETAU",
        "B_TRUEPT",
        "B_TRUEETA",
        "mode",
        "nPVs",
    ]
    t0 = time.perf_counter()
    n = kept = 0
    writer = None
    for a in uproot.iterate(f"{path}:DecayTree", branches, step_size=step_size, library="np"):
        n += len(a["B_PT"])
        min_ip = np.minimum(a["H1_IPCHI2_OWNPV"], a["H2_IPCHI2_OWNPV"])
        max_ip = np.maximum(a["H1_IPCHI2_OWNPV"], a["H2_IPCHI2_OWNPV"])
        m = np.minimum(a["H1_PT"], a["H2_PT"]) > 500
        m &= min_ip > 4
        m &= np.maximum(a["H1_TRACK_CHI2NDOF"], a["H2_TRACK_CHI2NDOF"]) < 3
        m &= a["B_VTXCHI2"] < 10
        m &= a["H1_PT"] + a["H2_PT"] > 1500
        s = {k: v[m] for k, v in a.items()}
        cols = {
            "sum_pt": s["H1_PT"] + s["H2_PT"],
            "min_pt": np.minimum(s["H1_PT"], s["H2_PT"]),
            "B_PT": s["B_PT"],
            "B_ETA": s["B_ETA"],
            "B_MCORR": s["B_MCORR"],
            "log_fdchi2": np.log(s["B_FDCHI2_OWNPV"]),
            "log_ipchi2": np.log(s["B_IPCHI2_OWNPV"]),
            "dira_angle": np.arccos(np.clip(s["B_DIRA_OWNPV"], -1, 1)),
            "vtx_chi2": s["B_VTXCHI2"],
            "doca": s["B_DOCA"],
            "log_min_ipchi2": np.log(min_ip[m]),
            "log_max_ipchi2": np.log(max_ip[m]),
            "max_ghostprob": np.maximum(s["H1_GhostProb"], s["H2_GhostProb"]),
        }
        cols["fold"] = s["eventNumber"] % 5
        kept += len(cols["sum_pt"])
        if out is not None:
            for k in (
                "runNumber",
                "eventNumber",
                "eventWeight",
                "B_M",
                "B_TAU",
                "B_TRUETAU",
                "B_TRUEPT",
                "B_TRUEETA",
                "mode",
                "nPVs",
            ):
                cols[k] = s[k]
            table = pa.table(cols)
            writer = writer or pq.ParquetWriter(out, table.schema, compression="snappy")
            writer.write_table(table)
    if writer is not None:
        writer.close()
    return {"seconds": time.perf_counter() - t0, "candidates": n, "kept": kept}


def _child(kind: str, path: str, out: str) -> None:
    if kind == "hepsel":
        res = _hepsel_job(path, out)
    else:
        res = _bare_job(path, "100 MB", out if kind == "bare+write" else None)
    res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def _run(kind: str, path: Path, out: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ensure(path: Path, events: int, seed: int) -> None:
    if path.exists():
        return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hepsel.cli",
            "generate",
            "--kind",
            "minbias",
            "--events",
            str(events),
            "--seed",
            str(seed),
            "--pileup",
            "5.0",
            "--output",
            str(path),
        ],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=300_000, help="minimum-bias events in the 1x file"
    )
    parser.add_argument("--data-dir", default=str(REPO / "data" / "generated" / "bench"))
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions (best taken)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    d = Path(args.data_dir)
    one, four = d / f"minbias_{args.events}.root", d / f"minbias_{4 * args.events}.root"
    _ensure(one, args.events, 101)
    _ensure(four, 4 * args.events, 101)
    out = d / "prepared.parquet"
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for kind in ("bare", "bare+write", "hepsel"):
            r = _run(kind, one, out)
            if kind not in best or r["seconds"] < best[kind]["seconds"]:
                best[kind] = r
    h, b, bw = best["hepsel"], best["bare"], best["bare+write"]

    def rate(r: dict[str, float]) -> float:
        return r["candidates"] / r["seconds"]

    print(
        f"input: {one.name}, {int(h['candidates']):,} candidates, {int(h['kept']):,} after preselection"
    )
    print(f"bare uproot.iterate(library='np') + numpy:                 {rate(b):,.0f} candidates/s")
    print(
        f"bare uproot.iterate(library='np') + numpy + Parquet write: {rate(bw):,.0f} candidates/s"
    )
    print(f"hepsel prepare_file (cut-flow, checks, Parquet write):     {rate(h):,.0f} candidates/s")
    print(f"throughput ratio hepsel / bare (no output):  {rate(h) / rate(b):.3f}")
    print(f"throughput ratio hepsel / bare + same write: {rate(h) / rate(bw):.3f} (target >= 0.9)")
    r4 = _run("hepsel", four, out)
    print(f"peak RSS hepsel 1x: {h['max_rss_mb']:.0f} MB ({int(h['candidates']):,} candidates)")
    print(f"peak RSS hepsel 4x: {r4['max_rss_mb']:.0f} MB ({int(r4['candidates']):,} candidates)")
    print(
        f"RSS growth 1x -> 4x: {100 * (r4['max_rss_mb'] / h['max_rss_mb'] - 1):+.1f}% (target < 20%)"
    )
    out.unlink(missing_ok=True)
    out.with_suffix(".json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
