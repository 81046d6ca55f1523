"""Training throughput of hepsel's MLPClassifier against a bare torch loop.

Both train the same network (:func:`hepsel.models.mlp.build_network`) with
AdamW and binary cross-entropy on the same synthetic data, batch size and
number of epochs; minibatches are slices of a random permutation of tensors
held on the device. hepsel's time per epoch is read from ``history_["epoch_time_s"]``,
which excludes the validation pass used for early stopping.

Usage::

    python benchmarks/mlp.py --device cpu --events 500000 --epochs 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hepsel.models.mlp import MLPClassifier, build_network

__all__ = ["bare_loop", "main", "make_data"]


def make_data(n_events: int, n_features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features with a non-linear class boundary, shapes (n, n_features) and (n,)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_events, n_features))
    y = (X[:, 0] + X[:, 1] ** 2 - X[:, 2] * X[:, 3] + rng.normal(size=n_events) > 1).astype(int)
    return X, y


def bare_loop(
    X: np.ndarray,
    y: np.ndarray,
    *,
    hidden_layers: tuple[int, ...],
    batch_size: int,
    epochs: int,
    device: torch.device,
) -> list[float]:
    """Train with a minimal torch loop; return the seconds of each epoch."""
    torch.manual_seed(0)
    net = build_network(X.shape[1], hidden_layers, "relu").to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x_t = torch.as_tensor(X, dtype=torch.float32, device=device)
    y_t = torch.as_tensor(y, dtype=torch.float32, device=device)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        permutation = torch.randperm(x_t.shape[0], device=device)
        for begin in range(0, x_t.shape[0], batch_size):
            batch = permutation[begin : begin + batch_size]
            loss = loss_fn(net(x_t[batch]).squeeze(1), y_t[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> float:
    """Run the benchmark, print both throughputs and return their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args(argv)

    hidden = (64, 64)
    X, y = make_data(args.events, args.features)
    model = MLPClassifier(
        hidden_layers=hidden,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=args.epochs + 1,
        device=args.device,
        random_state=0,
    ).fit(X, y)
    n_train = round(0.8 * args.events)
    hepsel_times = model.history_["epoch_time_s"]
    # The bare loop trains on as many events as hepsel's training portion.
    bare_times = bare_loop(
        X[:n_train],
        y[:n_train],
        hidden_layers=hidden,
        batch_size=args.batch_size,
        epochs=args.epochs,
        device=model.device_,
    )
    # The median drops first-epoch warm-up effects.
    hepsel_rate = n_train / float(np.median(hepsel_times))
    bare_rate = n_train / float(np.median(bare_times))
    print(
        f"device {model.device_}, {torch.get_num_threads()} threads, {n_train} training events x "
        f"{args.features} features, batch {args.batch_size}, {args.epochs} epochs, MLP {hidden}"
    )
    print(
        f"hepsel MLPClassifier: {hepsel_rate:12,.0f} events/s per epoch (epoch times {np.round(hepsel_times, 2).tolist()} s)"
    )
    print(
        f"bare torch loop:      {bare_rate:12,.0f} events/s per epoch (epoch times {np.round(bare_times, 2).tolist()} s)"
    )
    ratio = hepsel_rate / bare_rate
    print(f"ratio hepsel / bare:  {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main()
