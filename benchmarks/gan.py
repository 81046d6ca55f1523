"""Training speed of hepsel's WGANGP in generator iterations per second.

Each generator iteration includes ``n_critic`` (5) critic steps with the
gradient penalty. The time of a short warm-up run is subtracted, so the
figure excludes preprocessing and start-up; model-selection evaluations
(every ``selection_interval`` steps) are included.

Usage::

    python benchmarks/gan.py --device cpu --events 100000 --iterations 300
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hepsel.models.gan import WGANGP

__all__ = ["main"]


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark, print and return generator iterations per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=12)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.lognormal(0.0, 1.0, size=(args.events, args.features))

    def run(n_iterations: int) -> float:
        start = time.perf_counter()
        WGANGP(
            n_iterations=n_iterations,
            batch_size=args.batch_size,
            device=args.device,
            random_state=0,
        ).fit(X)
        return time.perf_counter() - start

    warm_up_iterations = 10
    overhead = run(warm_up_iterations)
    total = run(args.iterations)
    rate = (args.iterations - warm_up_iterations) / (total - overhead)
    print(
        f"device {args.device}, {torch.get_num_threads()} threads, {args.events} events x "
        f"{args.features} features, batch {args.batch_size}, default networks (128, 128)"
    )
    print(
        f"WGANGP: {rate:.1f} generator iterations/s ({rate * 5:.1f} critic steps/s), "
        f"{args.iterations} iterations in {total:.1f} s"
    )
    return rate


if __name__ == "__main__":
    main()
