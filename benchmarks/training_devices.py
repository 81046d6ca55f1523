"""Training speed of hepsel's torch models on the CPU and, where there is one, on a CUDA GPU.

Trains each model kind (``mlp``, ``lipschitz_mlp``, ``autoencoder`` and the
WGAN-GP behind ``gan_augmented``) on the same synthetic two-class sample with
its default architecture, a fixed number of epochs (generator iterations for
the GAN) and no early stopping, on every available device, and prints the
time per epoch (per 100 GAN iterations), the throughput and the GPU/CPU
speed-up. Only training passes are timed (the models' own ``history_`` for
the classifiers; the GAN's fit time after a short warm-up run subtracted).

Usage::

    python benchmarks/training_devices.py [--events 200000] [--epochs 3]
        [--gan-iterations 300] [--batch 512] [--threads 1] [--kinds mlp lipschitz_mlp autoencoder gan]

Without CUDA the GPU columns say so; nothing else changes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Lets the script run from a source checkout that is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["main", "make_data", "time_classifier", "time_gan"]

KINDS = ("mlp", "lipschitz_mlp", "autoencoder", "gan")


def make_data(n_events: int, n_features: int = 13, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features with a non-linear class boundary (the size of the default study's feature set)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_events, n_features))
    y = (X[:, 0] + X[:, 1] ** 2 - X[:, 2] * X[:, 3] + rng.normal(size=n_events) > 1).astype(int)
    return X, y


def time_classifier(
    kind: str, X: np.ndarray, y: np.ndarray, *, device: str, epochs: int, batch: int, threads: int
) -> float:
    """Median seconds per training epoch of a hepsel torch classifier of ``kind`` on ``device``."""
    from hepsel.models import make_classifier

    params: dict[str, Any] = {
        "max_epochs": epochs,
        "patience": epochs + 1,
        "batch_size": batch,
        "device": device,
        "n_jobs": threads,
    }
    clf = make_classifier(kind, params, random_state=0)
    clf.fit(X, y)
    times = np.asarray(clf.history_["epoch_time_s"], dtype=float)
    # the first epoch carries one-off costs (CUDA context, kernel selection)
    return float(np.median(times[1:] if len(times) > 1 else times))


def time_gan(X: np.ndarray, *, device: str, iterations: int, batch: int, threads: int) -> float:
    """Seconds per 100 generator iterations of the WGAN-GP on ``device`` (warm-up run subtracted)."""
    from hepsel.models.gan import WGANGP

    def fit(n: int) -> float:
        gan = WGANGP(
            n_iterations=n,
            batch_size=batch,
            selection_interval=max(n, 1),
            device=device,
            n_jobs=threads,
            random_state=0,
        )
        t0 = time.perf_counter()
        gan.fit(X)
        return time.perf_counter() - t0

    warm = max(iterations // 10, 10)
    return 100.0 * (fit(iterations) - fit(warm)) / (iterations - warm)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the benchmark; print and return seconds per epoch (per 100 GAN iterations) by kind and device."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--gan-iterations", type=int, default=300)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    args = parser.parse_args(argv)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    X, y = make_data(args.events)
    signal = X[y == 1]
    gpu_name = torch.cuda.get_device_name(0) if "cuda" in devices else "no CUDA device"
    print(
        f"{args.events} events x {X.shape[1]} features, batch {args.batch}, CPU threads {args.threads}; GPU: {gpu_name}"
    )
    results: dict[str, dict[str, float]] = {}
    for kind in args.kinds:
        results[kind] = {}
        for dev in devices:
            if kind == "gan":
                results[kind][dev] = time_gan(
                    signal,
                    device=dev,
                    iterations=args.gan_iterations,
                    batch=args.batch,
                    threads=args.threads,
                )
            else:
                results[kind][dev] = time_classifier(
                    kind,
                    X,
                    y,
                    device=dev,
                    epochs=args.epochs,
                    batch=args.batch,
                    threads=args.threads,
                )
    unit = {"gan": "s / 100 iterations"}
    print(
        f"{'model':<15} {'unit':<20} {'CPU':>10} {'CUDA':>10} {'speed-up':>9} {'events/s CPU':>13} {'events/s CUDA':>14}"
    )
    for kind, r in results.items():
        cpu, gpu = r["cpu"], r.get("cuda")
        n = 100 * args.batch if kind == "gan" else args.events
        row = f"{kind:<15} {unit.get(kind, 's / epoch'):<20} {cpu:>10.3f} "
        row += f"{gpu:>10.3f} {cpu / gpu:>8.1f}x " if gpu else f"{'-':>10} {'-':>9} "
        row += f"{n / cpu:>13.3g} " + (f"{n / gpu:>14.3g}" if gpu else f"{'-':>14}")
        print(row)
    return results


if __name__ == "__main__":
    main()
