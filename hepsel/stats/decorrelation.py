"""Distance correlation, the DisCo penalty of a classifier's score with a spectator.

DisCo (Kasieczka, Shih, arXiv:2001.05310) adds ``strength * dCor^2(score,
spectator)`` on the background to the classification loss, so that the
selection does not sculpt the spectator's (e.g. the B mass's) background
distribution. :func:`distance_correlation` is the weighted V-statistic of
Székely, Rizzo and Bakirov (2007): with integer weights it equals the plain
distance correlation of the sample in which each row is repeated ``weight``
times. It is written in torch so that it can be differentiated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["distance_correlation", "distance_correlation_np"]


def distance_correlation(x: Any, y: Any, weight: Any = None, *, squared: bool = False) -> Any:
    """Weighted distance correlation of two 1D torch tensors (differentiable).

    Parameters
    ----------
    x, y : torch.Tensor, shape (n,)
        The two variables (any units: distance correlation is scale invariant).
    weight : torch.Tensor, shape (n,), optional
        Non-negative event weights (default: all equal); normalised internally.
    squared : bool, default False
        Return dCor^2 (the DisCo penalty) instead of dCor.

    Returns
    -------
    torch.Tensor
        A scalar in [0, 1]; 0 when either variable is constant.

    Notes
    -----
    Memory and time grow as n^2: call it on minibatches, or on a subsample.
    """
    import torch

    if x.shape[0] < 2:
        return torch.zeros((), dtype=x.dtype, device=x.device)
    w = torch.ones_like(x) if weight is None else weight.to(x.dtype)
    # no branch on the total (that would synchronise a GPU every batch): zero weights give dCor = 0 below
    w = w / w.sum().clamp(min=torch.finfo(x.dtype).tiny)
    a = (x[:, None] - x[None, :]).abs()
    b = (y[:, None] - y[None, :]).abs()

    def centred(d: torch.Tensor) -> torch.Tensor:
        # weighted double centring: d_ij - mean_k d_kj - mean_k d_ik + mean_kl d_kl
        row = d @ w
        return d - row[:, None] - row[None, :] + w @ row

    a, b = centred(a), centred(b)
    ww = w[:, None] * w[None, :]
    dcov_xy = (a * b * ww).sum()
    dcov_xx = (a * a * ww).sum()
    dcov_yy = (b * b * ww).sum()
    # a constant variable has dcov = 0 and dCor = 0; the floor keeps that (and its gradient) finite
    denom = torch.sqrt((dcov_xx * dcov_yy).clamp(min=1e-30))
    dcor2 = (dcov_xy / denom).clamp(min=0.0)
    return dcor2 if squared else torch.sqrt(dcor2)


def distance_correlation_np(
    x: Any, y: Any, weight: Any = None, *, max_events: int = 3000, random_state: int | None = 0
) -> float:
    """:func:`distance_correlation` of numpy arrays, on a seeded subsample of at most ``max_events`` rows.

    Negative weights are set to zero (the weighted statistic needs a
    non-negative measure). Returns dCor (not squared), or NaN for fewer than
    two rows with positive weight.
    """
    import torch

    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    w = (
        np.ones_like(x)
        if weight is None
        else np.clip(np.asarray(weight, dtype=np.float64).reshape(-1), 0.0, None)
    )
    keep = np.flatnonzero(w > 0)
    if keep.size < 2:
        return float("nan")
    if keep.size > max_events:
        keep = np.sort(
            np.random.default_rng(random_state).choice(keep, size=max_events, replace=False)
        )
    t = [torch.as_tensor(a[keep], dtype=torch.float64) for a in (x, y, w)]
    with torch.no_grad():
        return float(distance_correlation(t[0], t[1], t[2]))
