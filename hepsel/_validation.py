"""Input checks shared by the metric, interval, fidelity and model modules."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .exceptions import NonFiniteError

__all__ = ["check_weights"]


def check_weights(
    weights: Any,
    n: int,
    *,
    name: str = "sample_weight",
    against: str = "the data",
    allow_negative: bool = True,
) -> NDArray[np.float64] | None:
    """Validate per-entry weights: ``None``, or finite numbers of shape ``(n,)``, as float64.

    Raises
    ------
    TypeError
        Non-numeric weights.
    ValueError
        Wrong shape, or negative values when ``allow_negative`` is false.
    NonFiniteError
        NaN or infinite values (a ``ValueError`` too).
    """
    if weights is None:
        return None
    arr = np.asarray(weights)
    if arr.dtype.kind not in "biuf":
        msg = f"{name} must hold numbers, got dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.ndim != 1:
        msg = f"{name} must be one-dimensional with {n} entries, got shape {arr.shape}"
        raise ValueError(msg)
    if arr.shape[0] != n:
        msg = f"{name} has {arr.shape[0]} entries but {against} has {n} ({name} has shape {arr.shape}, needs ({n},))"
        raise ValueError(msg)
    w = arr.astype(np.float64, copy=False)
    if not np.isfinite(w).all():
        msg = f"{name} holds NaN or infinite values"
        raise NonFiniteError(msg)
    if not allow_negative and (w < 0).any():
        msg = f"{name} holds {(w < 0).sum()} negative values (min {w.min():g})"
        raise ValueError(msg)
    return w
