"""Inference speed of a trained selection, on the default study's minimum-bias candidates.

Usage (after ``snakemake --cores 2`` has run the default study)::

    python benchmarks/inference.py [--results results/topo2body]
        [--data data/generated/topo2body/minbias_000.root] [--batch 100000] [--repeat 5]

Everything runs on one thread (``OMP_NUM_THREADS``, xgboost's ``nthread``,
onnxruntime's and torch's thread counts; both sides of every comparison
share them). Timings are the best of ``--repeat`` runs after a warm-up;
the end-to-end comparison alternates the two sides run by run, so that
neither gets a cold cache or a busy spell of the machine alone. Prints, for the same preselected feature
rows: throughput (candidates/s, one batch of ``--batch`` rows) and
single-candidate latency (microseconds, batch of 1) of

* bare xgboost ``inplace_predict`` (fold 0's booster, its best iteration);
* hepsel's BDT selection (``Selection.predict``: fold dispatch by event number);
* onnxruntime on the exported BDT and MLP (with the ``onnx`` extra installed);
* the bonsai BDT's table lookup (if the study has a ``bbdt`` model);

and ``hepsel apply`` end to end on the whole input file against a bare
uproot + xgboost script doing the same read, preselection, features, fold
dispatch, prediction and write. The ratios are targets, not tests:
hepsel BDT >= 0.9x bare xgboost, apply >= 0.8x the bare script, ONNX latency
<= 50 us, bonsai lookup >= 10x bare xgboost.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

# Lets the script run from a source checkout that is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["main"]


def best_of(fn: Callable[[], Any], repeat: int, *, warmup: int = 1) -> float:
    """Best wall time of ``repeat`` calls of ``fn`` after ``warmup`` untimed calls, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_alternating(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time of each of ``fns``, in seconds: one untimed warm-up call each (caches, imports),
    then ``repeat`` rounds calling them in turn, so that a busy spell of the machine hits every side alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def latency_us(
    fn: Callable[[np.ndarray], Any], X: np.ndarray, n: int = 2000, repeat: int = 5
) -> float:
    """Single-row latency of ``fn`` in microseconds: the best of ``repeat`` passes' medians over ``n`` rows."""
    rows = [X[i : i + 1] for i in range(min(n, len(X)))]
    for r in rows[:200]:
        fn(r)
    best = np.inf
    t = np.empty(len(rows))
    for _ in range(repeat):
        for i, r in enumerate(rows):
            t0 = time.perf_counter()
            fn(r)
            t[i] = time.perf_counter() - t0
        best = min(best, float(np.median(t)))
    return best * 1e6


# -- the bare script: what an analyst would write by hand for topo2body -------------------------

_BRANCHES = [
    "eventNumber",
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
]


def bare_apply(path: str, out: str, boosters: list[Any], iterations: list[int]) -> None:
    """Read, preselect, compute topo2body's features, predict by fold and write, with uproot + xgboost only."""
    import uproot

    k = len(boosters)
    with uproot.recreate(out) as f:
        first = True
        for a in uproot.open(path)["DecayTree"].iterate(
            _BRANCHES, step_size="100 MB", library="np"
        ):
            min_ip = np.minimum(a["H1_IPCHI2_OWNPV"], a["H2_IPCHI2_OWNPV"])
            keep = (
                (np.minimum(a["H1_PT"], a["H2_PT"]) > 500)
                & (min_ip > 4)
                & (np.maximum(a["H1_TRACK_CHI2NDOF"], a["H2_TRACK_CHI2NDOF"]) < 3)
                & (a["B_VTXCHI2"] < 10)
                & (a["H1_PT"] + a["H2_PT"] > 1500)
            )
            s = {b: a[b][keep] for b in _BRANCHES}
            mi = np.minimum(s["H1_IPCHI2_OWNPV"], s["H2_IPCHI2_OWNPV"])
            X = np.column_stack(
                [
                    s["H1_PT"] + s["H2_PT"],
                    np.minimum(s["H1_PT"], s["H2_PT"]),
                    s["B_PT"],
                    s["B_ETA"],
                    s["B_MCORR"],
                    np.log(s["B_FDCHI2_OWNPV"]),
                    np.log(s["B_IPCHI2_OWNPV"]),
                    np.arccos(s["B_DIRA_OWNPV"]),
                    s["B_VTXCHI2"],
                    s["B_DOCA"],
                    np.log(mi),
                    np.log(np.maximum(s["H1_IPCHI2_OWNPV"], s["H2_IPCHI2_OWNPV"])),
                    np.maximum(s["H1_GhostProb"], s["H2_GhostProb"]),
                ]
            ).astype(np.float32)
            fold = s["eventNumber"] % k
            score = np.full(len(keep), np.nan)
            sub = np.empty(len(X))
            for i, (b, it) in enumerate(zip(boosters, iterations, strict=True)):
                m = fold == i
                if m.any():
                    sub[m] = b.inplace_predict(X[m], iteration_range=(0, it + 1))
            score[keep] = sub
            cols = {"eventNumber": a["eventNumber"], "presel": keep, "score_bdt": score}
            if first:
                f.mktree("hepsel", {c: v.dtype for c, v in cols.items()})
                first = False
            f["hepsel"].extend(cols)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--results", default="results/topo2body")
    p.add_argument("--data", default="data/generated/topo2body/minbias_000.root")
    p.add_argument("--batch", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)

    import uproot
    import xgboost as xgb

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    from hepsel import Selection
    from hepsel.deploy.apply import apply_file

    sel = Selection.load(Path(args.results) / "selection")
    arrays = sel._arrays(args.data, None)
    keep = sel.preselect(arrays)
    sub = {k: v[keep] for k, v in arrays.items()}
    X = sel.features.matrix(sub)[: args.batch]
    event = np.asarray(sub["eventNumber"])[: args.batch]
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    print(
        f"{len(X)} preselected minimum-bias candidates from {args.data}, {X.shape[1]} features, 1 thread"
    )

    bdt = sel.fold_models("bdt")
    for clf in bdt:
        clf.booster_.set_param({"nthread": 1})
    booster, it = bdt[0].booster_, bdt[0].best_iteration_
    n_trees = it + 1
    t_bare = best_of(lambda: booster.inplace_predict(Xf, iteration_range=(0, it + 1)), args.repeat)
    lat_bare = latency_us(lambda r: booster.inplace_predict(r, iteration_range=(0, it + 1)), Xf)
    t_sel = best_of(lambda: sel.predict(X, event, model="bdt"), args.repeat)
    lat_sel = latency_us(lambda r: sel.predict(r, event[:1], model="bdt"), X)
    rows = [
        ("xgboost inplace_predict (bare)", t_bare, lat_bare),
        ("hepsel BDT selection (folds)", t_sel, lat_sel),
    ]

    onnx_dir = None
    try:
        import onnxruntime as ort

        from hepsel.deploy.export import export_onnx

        onnx_dir = tempfile.mkdtemp(prefix="hepsel-onnx-")
        wanted = [m for m in ("bdt", "mlp") if m in sel.models]
        export_onnx(
            Path(args.results) / "selection", onnx_dir, models=wanted
        )  # float64 input graphs
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        X64 = np.ascontiguousarray(X, dtype=np.float64)
        for m in wanted:
            session = ort.InferenceSession(
                str(Path(onnx_dir) / m / "fold0.onnx"), opts, providers=["CPUExecutionProvider"]
            )
            name = session.get_inputs()[0].name

            def run(r: np.ndarray, s: Any = session, n: str = name) -> Any:
                return s.run(None, {n: r})

            rows.append(
                (
                    f"onnxruntime, exported {m} (fold 0)",
                    best_of(lambda: run(X64), args.repeat),
                    latency_us(run, X64),
                )
            )
    except ImportError as err:
        print(f"(ONNX rows skipped: {err}; install hepsel[onnx])")

    if "bbdt" in sel.models:
        bb = sel.fold_models("bbdt")[0]  # takes the full feature rows, uses its own subset
        rows.append(
            (
                "bonsai BDT table lookup (fold 0)",
                best_of(lambda: bb.predict_proba(X), args.repeat),
                latency_us(bb.predict_proba, X),
            )
        )

    print(f"\nBDT: {n_trees} trees (fold 0's best iteration)")
    print(f"{'':34s} {'candidates/s':>14s} {'x bare':>8s} {'latency [us]':>14s}")
    for label, t, lat in rows:
        print(f"{label:34s} {len(X) / t:14,.0f} {t_bare / t:8.2f} {lat:14.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        boosters = [c.booster_ for c in bdt]  # the same boosters, on the same threads, as hepsel's
        iterations = [c.best_iteration_ for c in bdt]
        best = best_alternating(
            {
                "bare": lambda: bare_apply(args.data, f"{tmp}/bare.root", boosters, iterations),
                "hepsel": lambda: apply_file(
                    sel, args.data, f"{tmp}/hepsel.root", models=["bdt"], progress=False
                ),
            },
            args.repeat,
        )
        t_script, t_apply = best["bare"], best["hepsel"]
        with uproot.open(f"{tmp}/bare.root") as a, uproot.open(f"{tmp}/hepsel.root") as b:
            sa, sb = (
                a["hepsel"]["score_bdt"].array(library="np"),
                b["hepsel"]["score_bdt"].array(library="np"),
            )
            n = len(sa)
        diff = float(np.nanmax(np.abs(sa - sb)))
    print(
        f"\nend to end on {n:,} candidates (read, preselect, features, predict, write; bdt only; "
        f"best of {args.repeat} alternating runs after a warm-up of each):"
    )
    print(f"  bare uproot + xgboost script  {t_script:7.2f} s  {n / t_script:12,.0f} cand/s")
    print(
        f"  hepsel apply                  {t_apply:7.2f} s  {n / t_apply:12,.0f} cand/s  ratio {t_script / t_apply:.2f} (target >= 0.8)"
    )
    print(f"  max |score difference| hepsel vs bare: {diff:.2g}")
    if xgb.__version__:
        print(f"\nxgboost {xgb.__version__}, numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
