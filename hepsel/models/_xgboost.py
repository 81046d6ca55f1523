"""The xgboost scaffolding shared by the BDT and the bonsai BDT: boosting parameters, weights, files.

xgboost itself is imported by the estimators, when they train or load.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self, TypeAlias

import numpy as np

from ..exceptions import ModelFileError

__all__ = ["BOOSTING_PARAMS", "BoostingEstimator", "Mask", "boosting_weights"]

#: A boolean mask of rows, or ``None``.
Mask: TypeAlias = np.ndarray | None

#: Parameters a loaded model does not take from its file: it runs where it is loaded, quietly.
_NOT_LOADED = ("device", "verbose")


# a dataclass for the constructor: a subclass adds its parameters as fields, and the
# signature (read by the config check and the docs) lists them all
@dataclass(kw_only=True, eq=False, repr=False)
class BoostingEstimator:
    """The parameters and checks shared by the xgboost estimators.

    A subclass is a dataclass too (its own parameters are fields); it sets
    ``_params`` (its constructor parameters, in the order :meth:`get_params`
    gives them and the model file stores them) and ``_fitted`` (the
    attribute a fitted model has).

    Parameters
    ----------
    n_estimators
        Maximum number of boosting rounds.
    max_depth, learning_rate, subsample, colsample_bytree, min_child_weight, reg_lambda
        xgboost tree parameters.
    early_stopping_rounds
        Stop when the validation loss has not improved for this many rounds
        (0 disables early stopping and the validation split).
    validation_fraction
        Fraction of the training data held out for early stopping.
    tree_method, device
        xgboost's ``tree_method`` and ``device`` ("cpu" or "cuda").
    n_jobs
        Threads (None: all cores).
    random_state
        Seed for the validation split and xgboost's subsampling.
    verbose
        Show a progress bar over boosting rounds.
    """

    _params: ClassVar[tuple[str, ...]]
    _fitted: ClassVar[str]

    n_estimators: int = 400
    max_depth: int = 4
    learning_rate: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 1.0
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 20
    validation_fraction: float = 0.2
    tree_method: str = "hist"
    device: str = "cpu"
    n_jobs: int | None = None
    random_state: int | None = None
    verbose: bool = False

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (scikit-learn convention)."""
        return {k: getattr(self, k) for k in self._params}

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        synthetic: np.ndarray | None = None,
        validation: np.ndarray | None = None,
    ) -> Self:
        """Train on features ``X`` (n, n_features), labels ``y`` (n,) 0/1 and weights (n,).

        ``synthetic`` flags generated (e.g. GAN) rows: they are only trained on,
        never put in the early-stopping validation split. ``validation`` gives
        that split explicitly (default: a seeded random ``validation_fraction``).

        Raises
        ------
        ValueError
            Bad parameters or shapes, or negative weights (xgboost cannot use
            them; see :mod:`hepsel.train.negative_weights`).
        """
        y = np.asarray(y)
        w = boosting_weights(sample_weight, len(y))
        return self._fit(X, y, w, synthetic, validation)

    def _fit(
        self, X: np.ndarray, y: np.ndarray, w: np.ndarray, synthetic: Mask, validation: Mask
    ) -> Self:
        """:meth:`fit` once ``y`` is an array and the weights ``w`` are checked."""
        raise NotImplementedError

    def boosting_params(self) -> dict[str, Any]:
        """The boosting parameters alone (what the bonsai BDT hands to its BDT)."""
        return {k: getattr(self, k) for k in BOOSTING_PARAMS}

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted):
            msg = f"this {type(self).__name__} is not fitted yet; call fit() or load()"
            raise RuntimeError(msg)

    @staticmethod
    def _check_validation(mask: np.ndarray, n: int) -> None:
        """Raise ``ValueError`` unless the validation ``mask`` has shape ``(n,)``."""
        if mask.shape != (n,):
            msg = f"validation must have shape ({n},) to match X, got {mask.shape}"
            raise ValueError(msg)

    @staticmethod
    def _file(prefix: str | os.PathLike[str], suffix: str) -> Path:
        """The file ``<prefix><suffix>`` (the suffix appended, not replacing one)."""
        p = Path(prefix)
        return p.with_name(p.name + suffix)

    @staticmethod
    def _read_metadata(files: tuple[Path, ...], what: str) -> dict[str, Any]:
        """Check that each of ``files`` exists and read the first, the JSON metadata.

        Raises
        ------
        ModelFileError
            A file is missing.
        """
        for f in files:
            if not f.is_file():
                msg = f"{what} model file {str(f)!r} not found"
                raise ModelFileError(msg)
        meta: dict[str, Any] = json.loads(files[0].read_text())
        return meta

    @classmethod
    def _from_metadata(cls, meta: dict[str, Any]) -> Self:
        """An unfitted model with the saved parameters (``device`` and ``verbose`` left at their defaults)."""
        return cls(**{k: v for k, v in meta["params"].items() if k not in _NOT_LOADED})


#: Names of the boosting parameters, in the order they are saved.
BOOSTING_PARAMS: tuple[str, ...] = tuple(f.name for f in fields(BoostingEstimator))


def boosting_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray:
    """``sample_weight`` as float64 (ones when ``None``), checked to be non-negative.

    Raises
    ------
    ValueError
        Negative weights (xgboost cannot use them; see
        :mod:`hepsel.train.negative_weights`).
    """
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if (w < 0).any():
        msg = (
            f"sample_weight holds {int((w < 0).sum())} negative values; xgboost needs weights >= 0: "
            "make them positive first (hepsel.train.negative_weights.cell_resample)"
        )
        raise ValueError(msg)
    return w
