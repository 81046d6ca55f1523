"""Input checks of the statistics functions: 1-d arrays, finite scores, 0/1 labels, weights."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_weights

__all__ = [
    "FloatArray",
    "as_1d",
    "as_flags",
    "as_labels",
    "as_scores",
    "as_weights",
    "make_rng",
    "prepare_labelled",
]

FloatArray = NDArray[np.float64]


def as_1d(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        msg = f"{name} must be one-dimensional, got shape {arr.shape}"
        raise ValueError(msg)
    return arr


def as_scores(values: ArrayLike, name: str) -> np.ndarray:
    """1-d finite float scores; float32 is kept because it sorts faster."""
    arr = as_1d(values, name)
    if arr.dtype.kind not in "biuf":
        msg = f"{name} must hold numbers, got dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        msg = f"{name} holds NaN or infinite values; remove or replace them first"
        raise ValueError(msg)
    return arr


def as_weights(values: ArrayLike | None, n: int, name: str) -> FloatArray | None:
    return check_weights(values, n, name=name, against="score")


def as_labels(values: ArrayLike, n: int) -> NDArray[np.bool_]:
    arr = as_1d(values, "y_true")
    if arr.shape[0] != n:
        msg = f"y_true has {arr.shape[0]} entries but score has {n}"
        raise ValueError(msg)
    return as_flags(arr, "y_true", kinds="0/1 or booleans", only="0 (background) and 1 (signal)")


def as_flags(arr: np.ndarray, name: str, *, kinds: str, only: str) -> NDArray[np.bool_]:
    """A boolean array from booleans, or from numbers that are all 0 or 1.

    ``kinds`` and ``only`` say in the messages what ``name`` may hold.

    Raises
    ------
    TypeError
        ``arr`` holds neither booleans nor numbers.
    ValueError
        A number other than 0 and 1.
    """
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        msg = f"{name} must hold {kinds}, got dtype {arr.dtype}"
        raise TypeError(msg)
    flag = arr == 1
    if not (flag | (arr == 0)).all():
        msg = f"{name} must hold only {only}"
        raise ValueError(msg)
    return flag


def prepare_labelled(
    y_true: ArrayLike, score: ArrayLike, sample_weight: ArrayLike | None
) -> tuple[NDArray[np.bool_], np.ndarray, FloatArray | None]:
    s = as_scores(score, "score")
    if s.size == 0:
        msg = "score is empty; a ROC curve needs signal and background candidates"
        raise ValueError(msg)
    y = as_labels(y_true, s.shape[0])
    w = as_weights(sample_weight, s.shape[0], "sample_weight")
    if w is not None:
        # Zero-weight candidates carry no information and would add thresholds
        # that scikit-learn does not report; drop them as it does.
        keep = w != 0
        if not keep.all():
            y, s, w = y[keep], s[keep], w[keep]
    return y, s, w


def make_rng(random_state: Any) -> np.random.Generator:
    return np.random.default_rng(random_state)
