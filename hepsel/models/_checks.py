"""Input checks shared by the models: feature matrices, labels, weights and feature counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._validation import check_weights
from ..exceptions import NonFiniteError

__all__ = [
    "as_2d",
    "binary_classes",
    "check_X",
    "check_n_features",
    "check_y",
    "reading_serialised",
    "unit_weights",
]


def as_2d(X: Any, what: str = "X") -> np.ndarray:
    """``X`` as a 2D float64 array (no other check)."""
    array = np.asarray(X, dtype=np.float64)
    if array.ndim != 2:
        msg = f"{what} must be a 2D array of shape (n_events, n_features), got shape {array.shape}"
        raise ValueError(msg)
    return array


def check_X(
    X: Any, what: str = "X", *, keep_float32: bool = False, nonempty: bool = False
) -> np.ndarray:
    """``X`` as a finite 2D float64 array (float32 kept as it is with ``keep_float32``: no copy).

    Raises
    ------
    ValueError
        ``X`` is not 2D (or, with ``nonempty``, has no rows).
    NonFiniteError
        ``X`` holds NaN or infinite values.
    """
    array = np.asarray(X)
    if not (keep_float32 and array.dtype == np.float32):
        array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or (nonempty and array.shape[0] == 0):
        kind = "a non-empty 2D array" if nonempty else "a 2D array"
        msg = f"{what} must be {kind} of shape (n_events, n_features), got shape {array.shape}"
        raise ValueError(msg)
    bad = ~np.isfinite(array).all(axis=0)
    if bad.any():
        msg = (
            f"{what} holds NaN or infinite values in columns {np.flatnonzero(bad).tolist()}; "
            "clean or impute them first"
        )
        raise NonFiniteError(msg)
    return array


def check_y(y: Any, n: int) -> np.ndarray:
    """``y`` as an array, checked to have one label per row of ``X`` (``n`` rows)."""
    y = np.asarray(y)
    if y.shape != (n,):
        msg = f"y must have shape ({n},) to match X, got {y.shape}"
        raise ValueError(msg)
    return y


def binary_classes(y: np.ndarray, model: str) -> tuple[np.ndarray, np.ndarray]:
    """The two class labels of ``y`` (sorted: the second is the signal) and each row's class index.

    Raises
    ------
    ValueError
        ``y`` does not hold exactly two classes (``model`` names the classifier in the message).
    """
    classes, y_index = np.unique(y, return_inverse=True)
    if classes.size != 2:
        msg = f"{model} is a binary classifier; y holds {classes.size} classes {classes.tolist()}"
        raise ValueError(msg)
    return classes, y_index


def unit_weights(sample_weight: Any, n: int) -> np.ndarray:
    """Checked per-event weights, ones when ``sample_weight`` is ``None``."""
    w = check_weights(sample_weight, n, against="X")
    return np.ones(n, dtype=np.float64) if w is None else w


def check_n_features(X: np.ndarray, n_features: int) -> None:
    """Raise ``ValueError`` unless ``X`` has the ``n_features`` columns the model was fitted on."""
    if X.shape[1] != n_features:
        msg = f"X has {X.shape[1]} features but the model was fitted on {n_features}"
        raise ValueError(msg)


@contextmanager
def reading_serialised(state: object, fmt: str, name: str) -> Iterator[dict[str, Any]]:
    """Give ``state``, a dict written by ``name.to_dict()`` (its ``format`` is ``fmt``), to the block.

    Raises
    ------
    ValueError
        ``state`` is not a serialised ``name``, or the block reads a key it misses.
    """
    if not isinstance(state, dict) or state.get("format") != fmt:
        msg = f"state is not a serialised {name} (expected format {fmt!r})"
        raise ValueError(msg)
    try:
        yield state
    except KeyError as exc:
        msg = f"serialised {name} misses key {exc.args[0]!r}"
        raise ValueError(msg) from exc
