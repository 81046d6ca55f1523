"""Autoencoder selection (PyTorch): an unsupervised, background-only model.

:class:`AutoencoderSelector` learns to reconstruct background candidates (the
minimum-bias ones, label 0) through a narrow bottleneck; its score is the
reconstruction error, so candidates off the background manifold score high,
whatever they are. It never learns from the signal: :meth:`~AutoencoderSelector.fit`
takes the usual ``(X, y, sample_weight)`` only to pick the background rows,
and drops every other row before anything is fitted.

Models are saved as a ``state_dict`` (``<prefix>.pt``) plus a JSON file with
the architecture, the fitted scaler, the error scales and the training
history; nothing is pickled and loading uses ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from ._checks import check_n_features, check_X, check_y, unit_weights
from ._torch import (
    EpochTrainedEstimator,
    check_activation,
    dense_stack,
    import_torch,
)

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = [
    "ERROR_SCALINGS",
    "AutoencoderSelector",
    "build_autoencoder",
    "reconstruction_error_module",
]

_FORMAT = "hepsel.AutoencoderSelector"
_FORMAT_VERSION = 1
_DEFAULT_STEM = "autoencoder"

#: How the per-feature squared errors are weighted in the score.
ERROR_SCALINGS = ("none", "feature")


def build_autoencoder(
    n_in: int, hidden_layers: Sequence[int] = (32,), bottleneck: int = 2, activation: str = "relu"
) -> torch.nn.Sequential:
    """Build the autoencoder ``n_in -> hidden... -> bottleneck -> reversed(hidden)... -> n_in``.

    Every ``Linear`` layer but the last is followed by the activation; the
    output is linear (the inputs are standardised, unbounded features).

    Raises
    ------
    ValueError
        If ``activation`` is unknown or a width is not a positive integer.
    """
    hidden = [int(h) for h in hidden_layers]
    widths = [int(n_in), *hidden, int(bottleneck), *reversed(hidden), int(n_in)]
    if any(w < 1 for w in widths):
        msg = (
            f"n_in, hidden_layers and bottleneck must be positive integers, "
            f"got {n_in!r}, {hidden_layers!r} and {bottleneck!r}"
        )
        raise ValueError(msg)
    return dense_stack(widths, activation)


def reconstruction_error_module(
    network: torch.nn.Module, error_scale: np.ndarray
) -> torch.nn.Module:
    """A module mapping scaled inputs ``z`` (batch, n) to the score (batch, 1).

    The score is ``mean_j (network(z)_j - z_j)**2 / error_scale_j``; this is
    the function the SHAP explainer differentiates.
    """
    torch = import_torch()

    class _Score(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.network = network
            device = next(network.parameters()).device
            self.register_buffer(
                "inv_scale",
                torch.as_tensor(1.0 / np.asarray(error_scale), dtype=torch.float32, device=device),
            )

        def forward(self, z: Any) -> Any:
            sq = (self.network(z) - z) ** 2
            return (sq * self.inv_scale).mean(dim=1, keepdim=True)

    return _Score().eval()


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    return float(x[order][min(int(np.searchsorted(cw, 0.5 * cw[-1])), len(x) - 1)])


@dataclass(kw_only=True, eq=False, repr=False)
class AutoencoderSelector(EpochTrainedEstimator, ClassifierMixin, BaseEstimator):
    """Autoencoder trained on background candidates only; the score is the reconstruction error.

    Parameters
    ----------
    hidden_layers : tuple of int, default (32,)
        Widths of the encoder's hidden layers (the decoder mirrors them).
    bottleneck : int, default 2
        Width of the code layer; smaller than the number of features.
    activation : {"relu", "silu", "tanh", "elu"}, default "silu"
    preprocessing : {"quantile", "standard"}, default "quantile"
        Feature scaling (:class:`hepsel.models.preprocessing.FeatureScaler`),
        fitted on the background training rows only.
    error_scaling : {"none", "feature"}, default "none"
        ``"none"``: the score is the mean squared error over the scaled
        features. ``"feature"``: each feature's squared error is divided by
        its weighted mean over the background training rows first, so every
        feature contributes about one on background.
    learning_rate : float, default 1e-3
    weight_decay : float, default 0.0
    batch_size : int, default 512
    max_epochs : int, default 50
    patience : int, default 5
        Stop after this many epochs without a lower validation loss.
    validation_fraction : float, default 0.2
        Fraction of the background rows held out for early stopping (``0``:
        none, keep the last epoch). :meth:`fit`'s ``validation`` overrides
        the random choice.
    device : {"auto", "cpu", "cuda"}, default "auto"
    random_state : int, numpy.random.RandomState or None
        Seeds the validation split, the initial weights, the scaling and the
        shuffling.
    n_jobs : int or None
        Torch intra-op threads during :meth:`fit` and prediction.
    verbose : bool, default False

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (2,)
        ``[0, 1]``: background (the rows trained on) and anything else.
    n_features_in_ : int
    scaler_ : FeatureScaler
    network_ : torch.nn.Sequential
    error_scale_ : numpy.ndarray, shape (n_features,)
        Divisor of each feature's squared error (ones for ``"none"``).
    score_reference_ : float
        Weighted median score of the background training rows; sets the
        mapping of the score onto ``predict_proba``.
    history_ : dict of list of float
        ``train_loss``, ``val_loss`` (weighted mean squared error) and
        ``epoch_time_s``.
    best_epoch_ : int
    n_background_ : int
        Background rows trained on (validation rows excluded).
    n_validation_ : int
    device_ : torch.device

    Notes
    -----
    :meth:`decision_function` returns the score ``s >= 0``;
    :meth:`predict_proba`'s second column is ``s / (s + score_reference_)``,
    a monotone map onto ``[0, 1)`` (0.5 at the background median), so
    thresholds, ROC curves and rates are those of the score itself.
    """

    _format = _FORMAT
    _format_version = _FORMAT_VERSION
    _stem = _DEFAULT_STEM

    hidden_layers: Sequence[int] = (32,)
    bottleneck: int = 2
    activation: str = "silu"
    error_scaling: str = "none"
    weight_decay: float = 0.0
    batch_size: int = 512

    def _check_params(self) -> None:
        self._check_preprocessing()
        if self.error_scaling not in ERROR_SCALINGS:
            msg = f"error_scaling must be one of {ERROR_SCALINGS}, got {self.error_scaling!r}"
            raise ValueError(msg)
        check_activation(self.activation)
        self._check_validation_fraction()
        self._check_positive_ints("batch_size", "max_epochs", "patience", "bottleneck")

    def _build(self, n_in: int) -> torch.nn.Sequential:
        return build_autoencoder(n_in, self.hidden_layers, self.bottleneck, self.activation)

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, *, validation: Any = None
    ) -> AutoencoderSelector:
        """Train on the background rows (``y == 0``) of ``X``.

        Parameters
        ----------
        X : array_like, shape (n_events, n_features)
        y : array_like, shape (n_events,)
            Labels; only ``y == 0`` (background) rows are used, the others
            are dropped before anything is fitted.
        sample_weight : array_like, shape (n_events,), optional
            Per-event weights of the background rows (must not be negative).
        validation : array_like of bool, shape (n_events,), optional
            Early-stopping rows (only their background rows count); default:
            a seeded random ``validation_fraction`` of the background rows.

        Returns
        -------
        AutoencoderSelector
            ``self``.

        Raises
        ------
        ValueError
            On bad parameters or shapes, no background rows, negative
            weights, or fewer features than the bottleneck needs.
        """
        torch = import_torch()
        self._check_params()
        X = check_X(X)
        y = check_y(y, X.shape[0])
        if int(self.bottleneck) >= X.shape[1]:
            msg = f"bottleneck ({self.bottleneck}) must be smaller than the number of features ({X.shape[1]})"
            raise ValueError(msg)
        w_all = unit_weights(sample_weight, X.shape[0])
        background = y == 0
        if validation is not None:
            val_all = np.asarray(validation, dtype=bool)
            if val_all.shape != (X.shape[0],):
                msg = f"validation must have shape ({X.shape[0]},) to match X, got {val_all.shape}"
                raise ValueError(msg)
            val_all = val_all[background]
        # from here on, only the background rows exist
        X, w = X[background], w_all[background]
        if len(X) == 0:
            msg = "no background rows (y == 0) to train the autoencoder on"
            raise ValueError(msg)
        if (w < 0).any():
            msg = "the autoencoder's background weights must not be negative (a weighted error would be unbounded)"
            raise ValueError(msg)
        if w.sum() <= 0:
            msg = "the background rows need a positive total weight"
            raise ValueError(msg)

        split_seed, torch_seed, scaler_seed = self._fit_seeds(3)
        index = np.arange(len(X))
        if validation is not None:
            train_idx, val_idx = index[~val_all], index[val_all]
        elif self.validation_fraction > 0:
            train_idx, val_idx = train_test_split(
                index, test_size=self.validation_fraction, random_state=split_seed
            )
            train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
        else:
            train_idx, val_idx = index, index[:0]
        if len(train_idx) == 0:
            msg = "every background row is in the validation split; lower validation_fraction"
            raise ValueError(msg)

        self._fit_scaler(X[train_idx], scaler_seed)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = int(X.shape[1])
        self.n_background_ = len(train_idx)
        self.n_validation_ = len(val_idx)
        w = w / w[train_idx].mean()
        Z = self.scaler_.transform(X)

        def to_tensor(a: np.ndarray) -> Any:
            return torch.as_tensor(a, dtype=torch.float32, device=self.device_)

        self.network_ = self._seeded_build(torch_seed).to(self.device_)
        self._train(
            to_tensor(Z[train_idx]),
            to_tensor(w[train_idx]),
            to_tensor(Z[val_idx]),
            to_tensor(w[val_idx]),
            torch_seed,
        )
        sq = self._squared_errors(Z[train_idx])
        wt = w[train_idx]
        if self.error_scaling == "feature":
            scale = np.average(sq, axis=0, weights=wt)
            self.error_scale_ = np.where(scale > 0, scale, 1.0)
        else:
            self.error_scale_ = np.ones(self.n_features_in_)
        self.score_reference_ = max(
            _weighted_median((sq / self.error_scale_).mean(axis=1), wt), 1e-12
        )
        return self

    def _train(self, x_train: Any, w_train: Any, x_val: Any, w_val: Any, seed: int) -> None:
        network = self.network_

        def batch_loss(xb: Tensor, wb: Tensor) -> tuple[Tensor, Tensor]:
            weighted = ((network(xb) - xb) ** 2).mean(dim=1) * wb
            return weighted.sum() / xb.shape[0], weighted

        def row_loss(sl: slice) -> Tensor:
            return ((network(x_val[sl]) - x_val[sl]) ** 2).mean(dim=1)

        self._run_epochs(
            network,
            lambda generator: self._minibatches(generator, x_train, w_train),
            batch_loss,
            (lambda: self._weighted_mean(network, row_loss, w_val)) if x_val.shape[0] > 0 else None,
            float(w_train.sum()),
            seed,
            "autoencoder epochs",
        )

    def _squared_errors(
        self, X: np.ndarray, transform: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> np.ndarray:
        """Per-feature squared reconstruction errors of the scaled rows ``transform(X)``, shape (n, n_features)."""
        out = np.empty(X.shape, dtype=np.float64)
        return self._predict_batches(lambda z: (self.network_(z) - z) ** 2, X, out, transform)

    # -------------------------------------------------------------- predict
    def feature_errors(self, X: Any) -> np.ndarray:
        """Per-feature squared errors divided by :attr:`error_scale_`, shape (n_events, n_features)."""
        check_is_fitted(self, "network_")
        X = check_X(X)
        check_n_features(X, self.n_features_in_)
        return self._squared_errors(X, self.scaler_.transform) / self.error_scale_

    def decision_function(self, X: Any) -> np.ndarray:
        """The score: mean (scaled) squared reconstruction error, shape (n_events,); higher is less background-like."""
        return np.asarray(self.feature_errors(X).mean(axis=1))

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[1 - p, p]`` with ``p = s / (s + score_reference_)``, a monotone map of the score onto [0, 1)."""
        s = self.decision_function(X)
        p = s / (s + self.score_reference_)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """1 where the score is above the background median, else 0."""
        return np.asarray(
            self.classes_[(self.decision_function(X) > self.score_reference_).astype(int)]
        )

    def score_module(self) -> torch.nn.Module:
        """The score as a torch module of the scaled inputs (see :func:`reconstruction_error_module`)."""
        check_is_fitted(self, "network_")
        return reconstruction_error_module(self.network_, self.error_scale_)

    # -- saving and loading (TorchEstimator) -------------------------------------
    def _metadata(self) -> dict[str, Any]:
        params = self._json_params()
        params["bottleneck"] = int(self.bottleneck)
        return {
            "params": params,
            "n_features_in": self.n_features_in_,
            "scaler": self.scaler_.to_dict(),
            "error_scale": [float(v) for v in self.error_scale_],
            "score_reference": float(self.score_reference_),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "n_background": self.n_background_,
            "n_validation": self.n_validation_,
        }

    def _restore(self, meta: dict[str, Any]) -> None:
        super()._restore(meta)
        self.classes_ = np.array([0, 1])
        self.error_scale_ = np.asarray(meta["error_scale"], dtype=np.float64)
        self.score_reference_ = float(meta["score_reference"])
        self.best_epoch_ = int(meta["best_epoch"])
        self.n_background_ = int(meta["n_background"])
        self.n_validation_ = int(meta["n_validation"])
