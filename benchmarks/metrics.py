"""Time ROC curve + AUC of hepsel against scikit-learn on the same arrays.

Usage::

    python benchmarks/metrics.py [--n 10000000] [--seed 1] [--repeat 1] [--dtype float32]

The candidates mimic a classifier output: float32 scores (so many tie),
signal shifted up, positive log-normal weights. Each timing is the best of
``--repeat`` runs. Prints both timings, their ratio (hepsel / scikit-learn,
lower is better) and the largest differences between the two results.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Lets the script run from a source checkout that is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hepsel.stats import metrics

__all__ = ["main", "make_candidates"]


def make_candidates(
    n: int, seed: int, dtype: str = "float32"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (bool), scores in (0, 1) and positive float64 weights, each shape (n,).

    ``dtype="float32"`` rounds the scores to float32 (many ties, as a
    classifier's float32 output has); ``"float64"`` keeps full precision.
    """
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    logit = rng.normal(loc=np.where(y, 1.0, -0.5), scale=1.0)
    score = (1.0 / (1.0 + np.exp(-logit))).astype(dtype)
    weight = rng.lognormal(mean=0.0, sigma=0.5, size=n)
    return y, score, weight


def _best_of(repeat: int, func: Callable[[], Any]) -> tuple[float, Any]:
    best = np.inf
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc_curve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="number of candidates")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--repeat", type=int, default=1, help="timings are the best of this many")
    parser.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="score precision"
    )
    args = parser.parse_args(argv)

    y, score, weight = make_candidates(args.n, args.seed, args.dtype)
    n_distinct = np.unique(score).size
    print(f"{args.n:,} weighted candidates, {n_distinct:,} distinct {args.dtype} scores")

    def run_hepsel() -> tuple[tuple[np.ndarray, ...], float]:
        curve = metrics.roc_curve(y, score, weight)
        return curve, metrics.roc_auc(y, score, weight)

    def run_hepsel_single() -> metrics.Roc:
        return metrics.roc(y, score, weight)

    def run_sklearn() -> tuple[tuple[np.ndarray, ...], float]:
        curve = sk_roc_curve(y, score, sample_weight=weight, drop_intermediate=False)
        return curve, float(roc_auc_score(y, score, sample_weight=weight))

    t_sk, (sk_curve, sk_auc) = _best_of(args.repeat, run_sklearn)
    t_hs, (hs_curve, hs_auc) = _best_of(args.repeat, run_hepsel)
    t_single, single = _best_of(args.repeat, run_hepsel_single)

    same_shape = all(a.shape == b.shape for a, b in zip(hs_curve, sk_curve, strict=True))
    curve_diff = (
        max(float(np.max(np.abs(a[1:] - b[1:]))) for a, b in zip(hs_curve, sk_curve, strict=True))
        if same_shape
        else float("nan")
    )
    print(f"scikit-learn roc_curve + roc_auc_score : {t_sk:8.3f} s")
    print(f"hepsel       roc_curve + roc_auc       : {t_hs:8.3f} s")
    print(f"hepsel       roc (curve and AUC, 1 sort): {t_single:7.3f} s")
    print(f"ratio hepsel/sklearn (roc_curve + roc_auc): {t_hs / t_sk:.3f}")
    print(f"ratio hepsel/sklearn (roc)               : {t_single / t_sk:.3f}")
    print(f"AUC hepsel {hs_auc:.15f}  sklearn {sk_auc:.15f}")
    print(f"max |AUC difference|  : {max(abs(hs_auc - sk_auc), abs(single.auc - sk_auc)):.3e}")
    print(f"curve points          : {hs_curve[0].size:,} (same as sklearn: {same_shape})")
    print(f"max |curve difference|: {curve_diff:.3e}")


if __name__ == "__main__":
    main()
