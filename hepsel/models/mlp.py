"""Fully connected neural-network classifier (PyTorch) with weighted events.

:class:`MLPClassifier` follows scikit-learn's estimator contract and trains a
multilayer perceptron with a per-event weighted binary cross-entropy, AdamW
and early stopping on a weighted validation loss. The whole training set lives
on the device as tensors and minibatches are slices of a random permutation,
so an epoch costs about as much as a bare torch loop.

Models are saved as a ``state_dict`` (``<prefix>.pt``) plus a JSON file with
the architecture, the fitted scaler and the training history; nothing is
pickled and loading uses ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from ..exceptions import NonFiniteError
from ._checks import binary_classes, check_n_features, check_X, check_y, unit_weights
from ._logit import LogOddsOutputs
from ._torch import (
    PREDICT_BATCH,
    EpochTrainedEstimator,
    check_activation,
    dense_stack,
    import_torch,
)

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["MLPClassifier", "build_network"]

_FORMAT = "hepsel.MLPClassifier"
_FORMAT_VERSION = 1
_DEFAULT_STEM = "mlp"


def build_network(
    n_in: int, hidden_layers: Sequence[int] = (64, 64), activation: str = "relu"
) -> torch.nn.Sequential:
    """Build the MLP: ``Linear -> activation`` per hidden layer, then ``Linear -> 1`` logit.

    Parameters
    ----------
    n_in : int
        Number of input features.
    hidden_layers : sequence of int
        Width of each hidden layer; empty gives a logistic regression.
    activation : {"relu", "silu", "tanh", "elu"}
        Non-linearity after each hidden layer.

    Returns
    -------
    torch.nn.Sequential
        Maps a ``(batch, n_in)`` float tensor to ``(batch, 1)`` logits.

    Raises
    ------
    ValueError
        If ``activation`` is unknown or a width is not a positive integer.
    """
    widths = [int(n_in), *(int(h) for h in hidden_layers)]
    if any(w < 1 for w in widths):
        msg = (
            f"n_in and hidden_layers must be positive integers, got {n_in!r} and {hidden_layers!r}"
        )
        raise ValueError(msg)
    return dense_stack([*widths, 1], activation)


def _disco(logits: Tensor, y: Tensor, w: Tensor, s: Tensor) -> Tensor:
    """dCor^2 of the signal probability and the spectator over the background rows (weights clipped at 0)."""
    from ..stats.decorrelation import distance_correlation

    bkg = y == 0
    return distance_correlation(logits[bkg].sigmoid(), s[bkg], w[bkg].clamp(min=0.0), squared=True)


@dataclass(kw_only=True, eq=False, repr=False)
class MLPClassifier(EpochTrainedEstimator, LogOddsOutputs, ClassifierMixin, BaseEstimator):
    """Multilayer-perceptron binary classifier trained with weighted events.

    Parameters
    ----------
    hidden_layers : tuple of int, default (64, 64)
        Width of each hidden layer.
    activation : {"relu", "silu", "tanh", "elu"}, default "relu"
    preprocessing : {"quantile", "standard"}, default "quantile"
        Feature scaling (see :class:`hepsel.models.preprocessing.FeatureScaler`),
        fitted inside :meth:`fit` on the training portion only: the
        validation split is carved out first, so neither validation events
        nor any data not passed to :meth:`fit` influence the scaling.
    learning_rate : float, default 1e-3
        AdamW learning rate.
    weight_decay : float, default 1e-4
        AdamW decoupled weight decay.
    batch_size : int, default 1024
    max_epochs : int, default 50
    patience : int, default 5
        Stop after this many epochs without a lower validation loss.
    validation_fraction : float, default 0.2
        Fraction of the events passed to :meth:`fit` held out (stratified by
        class) for early stopping. ``0`` disables early stopping and keeps the
        last epoch.
    balance_classes : bool, default True
        Rescale the weights so that signal and background have equal total
        weight.
    device : {"auto", "cpu", "cuda"}, default "auto"
    random_state : int, numpy.random.RandomState or None
        Seeds the validation split, the initial weights and the shuffling
        (the same minibatches on every device). With the same seed, device
        and ``n_jobs`` the predictions are bitwise identical on the CPU (and
        run to run on one GPU).
    n_jobs : int or None
        Torch intra-op threads during :meth:`fit` and prediction (``None``:
        torch's default, which depends on the machine's core count; torch's
        sums, such as the DisCo penalty's, depend on the number of threads).
    verbose : bool, default False
        Show a progress bar over epochs.
    decorrelation_strength : float, default 0.0
        DisCo strength: with ``decorrelate_with`` given to :meth:`fit`, the
        loss gains ``decorrelation_strength * dCor^2`` of the signal
        probability and that spectator over the background rows of each
        minibatch (see :mod:`hepsel.stats.decorrelation`).

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (2,)
        The class labels; ``classes_[1]`` is the signal (positive) class.
    n_features_in_ : int
    scaler_ : FeatureScaler
    network_ : torch.nn.Sequential
        The network, holding the state of the best epoch.
    history_ : dict of list of float
        ``train_loss`` and ``val_loss`` (weighted mean binary cross-entropy)
        and ``epoch_time_s`` (seconds spent on the training pass of each
        epoch, validation excluded).
    best_epoch_ : int
        Zero-based epoch whose state was kept.
    device_ : torch.device

    Notes
    -----
    Loss: weights (after class balancing) are normalised to a mean of one on
    the training portion, and the minibatch loss is ``sum(w * bce) / n_batch``,
    an unbiased estimate of the weighted mean ``sum(w * bce) / sum(w)`` that
    stays well defined when a batch's weights happen to sum to about zero
    (negative sWeights are accepted; each class needs a positive total).
    """

    _format = _FORMAT
    _format_version = _FORMAT_VERSION
    _stem = _DEFAULT_STEM

    hidden_layers: Sequence[int] = (64, 64)
    activation: str = "relu"
    balance_classes: bool = True
    decorrelation_strength: float = 0.0

    classes_: np.ndarray = field(init=False)

    # ------------------------------------------------------------------ fit
    def _build(self, n_in: int) -> torch.nn.Module:
        """A new network for ``n_in`` inputs (subclasses change the architecture)."""
        return build_network(n_in, self.hidden_layers, self.activation)

    def _check_params(self) -> None:
        self._check_preprocessing()
        check_activation(self.activation)
        self._check_common_params()

    def _check_common_params(self) -> None:
        self._check_positive_ints("batch_size", "max_epochs", "patience")
        self._check_validation_fraction()
        strength: object = self.decorrelation_strength  # checked as given
        if (
            not isinstance(strength, int | float | np.number)
            or not np.isfinite(strength)
            or strength < 0
        ):
            msg = f"decorrelation_strength must be a finite number >= 0, got {strength!r}"
            raise ValueError(msg)

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        synthetic: Any = None,
        validation: Any = None,
        decorrelate_with: Any = None,
    ) -> MLPClassifier:
        """Train the network.

        Parameters
        ----------
        X : array_like, shape (n_events, n_features)
            Features (any units; scaled internally).
        y : array_like, shape (n_events,)
            Two class labels; the larger one (``classes_[1]``) is the signal.
        sample_weight : array_like, shape (n_events,), optional
            Per-event weights (e.g. sWeights, luminosity or simulation
            corrections).
        synthetic : array_like of bool, shape (n_events,), optional
            Generated (e.g. GAN) rows: only trained on, never in the
            validation split, and not used to fit the input scaling.
        validation : array_like of bool, shape (n_events,), optional
            The early-stopping validation rows (default: a seeded, stratified
            random ``validation_fraction`` of the real rows).
        decorrelate_with : array_like, shape (n_events,), optional
            A spectator (e.g. the B mass, in MeV) whose distance correlation
            with the score on the background is penalised with
            ``decorrelation_strength``. Required when the strength is positive.

        Returns
        -------
        MLPClassifier
            ``self``.

        Raises
        ------
        ValueError
            On bad parameters, shapes, a single class, or a class whose total
            weight is not positive.
        NonFiniteError
            If ``X`` or ``sample_weight`` hold NaN or infinite values.
        """
        torch = import_torch()
        self._check_params()
        X = check_X(X, keep_float32=True)
        y = check_y(y, X.shape[0])
        classes, target, w, spectator = self._labels_and_weights(y, sample_weight, decorrelate_with)

        split_seed, torch_seed, scaler_seed = self._fit_seeds(3)
        syn = (
            np.zeros(X.shape[0], dtype=bool)
            if synthetic is None
            else np.asarray(synthetic, dtype=bool)
        )
        if syn.shape != (X.shape[0],):
            msg = f"synthetic must have shape ({X.shape[0]},) to match X, got {syn.shape}"
            raise ValueError(msg)
        index = np.flatnonzero(~syn)
        if validation is not None:
            val = np.asarray(validation, dtype=bool)
            if val.shape != (X.shape[0],):
                msg = f"validation must have shape ({X.shape[0]},) to match X, got {val.shape}"
                raise ValueError(msg)
            val = val & ~syn
            train_idx, val_idx = np.flatnonzero(~val & ~syn), np.flatnonzero(val)
        elif self.validation_fraction > 0:
            train_idx, val_idx = train_test_split(
                index,
                test_size=self.validation_fraction,
                random_state=split_seed,
                stratify=target[index],
            )
            train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
        else:
            train_idx, val_idx = index, index[:0]

        # the input scaling is fitted on real training rows only
        self._fit_scaler(X[train_idx], scaler_seed)
        self.n_validation_ = len(val_idx)
        train_idx = np.sort(np.concatenate([train_idx, np.flatnonzero(syn)]))
        self.classes_ = classes
        self.n_features_in_ = int(X.shape[1])
        w = w / w[train_idx].mean()

        def to_tensor(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, dtype=torch.float32, device=self.device_)

        # scaled block by block into float32 (what the network sees): no float64 copy of X
        Z = np.empty(X.shape, dtype=np.float32)
        for begin in range(0, X.shape[0], PREDICT_BATCH):
            Z[begin : begin + PREDICT_BATCH] = self.scaler_.transform(
                X[begin : begin + PREDICT_BATCH]
            )
        x_train, y_train, w_train = (to_tensor(a[train_idx]) for a in (Z, target, w))
        x_val, y_val, w_val = (to_tensor(a[val_idx]) for a in (Z, target, w))
        s_train = s_val = None
        if spectator is not None:
            # standardised: distance correlation is scale invariant, float32 is not
            s = (spectator - spectator[train_idx].mean()) / (spectator[train_idx].std() or 1.0)
            s_train, s_val = to_tensor(s[train_idx]), to_tensor(s[val_idx])

        network = self._seeded_build(torch_seed).to(self.device_)
        self.network_ = network
        self._train(
            network,
            x_train,
            y_train,
            w_train,
            x_val,
            y_val,
            w_val,
            torch_seed,
            s_train=s_train,
            s_val=s_val,
        )
        return self

    def fit_stream(
        self,
        stream: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        validation: Any = None,
        decorrelate_with: Any = None,
        subsample: int = 200_000,
        shuffle_rows: int = 2_000_000,
    ) -> MLPClassifier:
        """Train on features streamed from disk (``training.external_memory``), as :meth:`fit` otherwise.

        Parameters
        ----------
        stream : hepsel.train.out_of_core.FoldStream
            The features, in groups of rows: ``stream.groups[i][1]`` (a slice
            of the rows of ``y``) and ``stream.read(i)``, ``stream.gather(rows)``.
        y, sample_weight, decorrelate_with : array_like, shape (n_events,)
            As for :meth:`fit`, for all rows (held in memory).
        validation : array_like of bool, shape (n_events,), optional
            The early-stopping rows (default: a seeded random ``validation_fraction``).
        subsample : int
            The input scaling is fitted on a seeded random subsample of at most
            this many training rows, and the validation loss is computed on at
            most this many validation rows (also a seeded subsample).
        shuffle_rows : int
            Every epoch the row groups come in a seeded random order and are
            pooled into buffers of at least this many rows, each shuffled and
            cut into minibatches.

        Returns
        -------
        MLPClassifier
            ``self``.
        """
        torch = import_torch()
        self._check_params()
        y = np.asarray(y)
        n = len(y)
        classes, target, w, spectator = self._labels_and_weights(y, sample_weight, decorrelate_with)
        split_seed, torch_seed, scaler_seed = self._fit_seeds(3)
        if validation is not None:
            val = np.asarray(validation, dtype=bool)
            if val.shape != (n,):
                msg = f"validation must have shape ({n},) to match y, got {val.shape}"
                raise ValueError(msg)
        else:
            val = np.random.default_rng(split_seed).random(n) < self.validation_fraction
        train_idx, val_idx = np.flatnonzero(~val), np.flatnonzero(val)
        pick = np.random.default_rng(scaler_seed)

        def sub(idx: np.ndarray) -> np.ndarray:
            return (
                idx
                if len(idx) <= subsample
                else np.sort(pick.choice(idx, size=subsample, replace=False))
            )

        fit_rows, val_rows = sub(train_idx), sub(val_idx)
        both = np.union1d(fit_rows, val_rows)
        X_both = stream.gather(both)
        X_fit = X_both[np.searchsorted(both, fit_rows)]
        X_val = X_both[np.searchsorted(both, val_rows)]
        del X_both
        self._fit_scaler(check_X(X_fit), scaler_seed)
        del X_fit
        self.n_validation_ = len(val_idx)
        self.classes_ = classes
        self.n_features_in_ = int(X_val.shape[1]) if len(val_rows) else len(stream.feature_names)
        w = w / w[train_idx].mean()
        s = None
        if spectator is not None:
            s = (spectator - spectator[train_idx].mean()) / (spectator[train_idx].std() or 1.0)

        def to_tensor(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, dtype=torch.float32, device=self.device_)

        x_val = to_tensor(self.scaler_.transform(check_X(X_val)))
        y_val, w_val = to_tensor(target[val_rows]), to_tensor(w[val_rows])
        s_val = to_tensor(s[val_rows]) if s is not None else None
        del X_val
        train = ~val

        def epoch_batches(generator: Any) -> Iterator[tuple[Any, Any, Any, Any]]:
            order = torch.randperm(len(stream.groups), generator=generator).tolist()
            pending: list[int] = []
            size = 0
            for k, i in enumerate(order):
                pending.append(i)
                size += int(train[stream.groups[i][1]].sum())
                if size < shuffle_rows and k < len(order) - 1:
                    continue
                rows = np.concatenate(
                    [
                        np.arange(stream.groups[j][1].start, stream.groups[j][1].stop)
                        for j in pending
                    ]
                )
                X = np.concatenate([stream.read(j) for j in pending])
                m = train[rows]
                rows, X = rows[m], X[m]
                xb_all = to_tensor(self.scaler_.transform(check_X(X)))
                del X
                yb_all, wb_all = to_tensor(target[rows]), to_tensor(w[rows])
                sb_all = to_tensor(s[rows]) if s is not None else None
                yield from self._minibatches(generator, xb_all, yb_all, wb_all, sb_all)
                pending, size = [], 0

        empty = to_tensor(np.zeros((0, self.n_features_in_)))
        network = self._seeded_build(torch_seed).to(self.device_)
        self.network_ = network
        self._train(
            network,
            empty,
            empty[:, 0],
            empty[:, 0],
            x_val,
            y_val,
            w_val,
            torch_seed,
            s_val=s_val,
            epoch_batches=epoch_batches,
            w_total=float(w[train_idx].sum()),
            decorrelate=s is not None,
        )
        return self

    def _labels_and_weights(
        self, y: np.ndarray, sample_weight: Any, decorrelate_with: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The classes, each row's target (0.0 or 1.0), the checked (and balanced) weights and spectator."""
        n = len(y)
        classes, y_index = binary_classes(y, type(self).__name__)
        target = y_index.astype(np.float64)
        spectator = self._check_spectator(decorrelate_with, n)
        w = unit_weights(sample_weight, n)
        class_totals = np.array([w[target == 0].sum(), w[target == 1].sum()])
        if (class_totals <= 0).any():
            msg = f"each class needs a positive total weight, got {class_totals.tolist()} for classes {classes.tolist()}"
            raise ValueError(msg)
        if self.balance_classes:
            w = w * np.where(target == 1, 0.5 / class_totals[1], 0.5 / class_totals[0])
        return classes, target, w, spectator

    def _check_spectator(self, decorrelate_with: Any, n: int) -> np.ndarray | None:
        if decorrelate_with is None:
            if self.decorrelation_strength > 0:
                msg = (
                    f"decorrelation_strength = {self.decorrelation_strength} needs the spectator: "
                    "pass fit(..., decorrelate_with=column)"
                )
                raise ValueError(msg)
            return None
        s = np.asarray(decorrelate_with, dtype=np.float64)
        if s.shape != (n,):
            msg = f"decorrelate_with must have shape ({n},) to match X, got {s.shape}"
            raise ValueError(msg)
        if not np.isfinite(s).all():
            msg = "decorrelate_with holds NaN or infinite values"
            raise NonFiniteError(msg)
        return s

    def _train(
        self,
        network: torch.nn.Module,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        w_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        w_val: torch.Tensor,
        seed: int,
        *,
        s_train: torch.Tensor | None = None,
        s_val: torch.Tensor | None = None,
        epoch_batches: Callable[[Any], Iterator[tuple[Any, Any, Any, Any]]] | None = None,
        w_total: float | None = None,
        decorrelate: bool = False,
    ) -> None:
        """The fit loop: minibatches of the training tensors, or of ``epoch_batches(generator)`` (streamed).

        ``epoch_batches`` yields ``(x, y, w, s)`` minibatch tensors for one epoch; ``w_total``
        is then the training rows' total weight and ``decorrelate`` whether ``s`` is given.
        """
        bce = import_torch().nn.functional.binary_cross_entropy_with_logits
        strength = (
            float(self.decorrelation_strength) if (s_train is not None or decorrelate) else 0.0
        )

        def in_memory(generator: Any) -> Iterator[tuple[Any, ...]]:
            return self._minibatches(generator, x_train, y_train, w_train, s_train)

        def batch_loss(
            xb: Tensor, yb: Tensor, wb: Tensor, sb: Tensor | None
        ) -> tuple[Tensor, Tensor]:
            logits = network(xb).squeeze(1)
            weighted = bce(logits, yb, reduction="none") * wb
            loss = weighted.sum() / xb.shape[0]
            if strength > 0:
                assert sb is not None
                loss = loss + strength * _disco(logits, yb, wb, sb)
            return loss, weighted

        def validation_loss() -> float:
            val_loss = self._weighted_loss(network, x_val, y_val, w_val)
            if strength > 0:
                assert s_val is not None
                val_loss += strength * self._disco_loss(
                    network, x_val, y_val, w_val, s_val, int(self.batch_size)
                )
            return val_loss

        self._run_epochs(
            network,
            in_memory if epoch_batches is None else epoch_batches,
            batch_loss,
            validation_loss if x_val.shape[0] > 0 else None,
            float(w_train.sum()) if w_total is None else float(w_total),
            seed,
            "MLP epochs",
        )

    @staticmethod
    def _weighted_loss(
        network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor
    ) -> float:
        bce = import_torch().nn.functional.binary_cross_entropy_with_logits

        def row_loss(sl: slice) -> Tensor:
            return bce(network(x[sl]).squeeze(1), y[sl], reduction="none")

        return EpochTrainedEstimator._weighted_mean(network, row_loss, w)

    @staticmethod
    def _disco_loss(
        network: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        w: torch.Tensor,
        s: torch.Tensor,
        batch_size: int,
    ) -> float:
        """Mean DisCo penalty over fixed, consecutive validation batches (as in training)."""
        torch = import_torch()
        network.eval()
        values = []
        with torch.no_grad():
            for begin in range(0, x.shape[0], batch_size):
                sl = slice(begin, begin + batch_size)
                values.append(float(_disco(network(x[sl]).squeeze(1), y[sl], w[sl], s[sl])))
        return float(np.mean(values)) if values else 0.0

    # -------------------------------------------------------------- predict
    def decision_function(self, X: Any) -> np.ndarray:
        """The logit of the signal probability, shape (n_events,), float64, for ``X`` (n_events, n_features)."""
        check_is_fitted(self, "network_")
        X = check_X(X)
        check_n_features(X, self.n_features_in_)
        return self._predict_batches(
            lambda z: self.network_(z).squeeze(1),
            X,
            np.empty(X.shape[0], dtype=np.float64),
            self.scaler_.transform,
        )

    # -- saving and loading (TorchEstimator) -------------------------------------
    def _metadata(self) -> dict[str, Any]:
        return {
            "params": self._json_params(),
            "classes": self.classes_.tolist(),
            "n_features_in": self.n_features_in_,
            "scaler": self.scaler_.to_dict(),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
        }

    def _restore(self, meta: dict[str, Any]) -> None:
        super()._restore(meta)
        self.classes_ = np.asarray(meta["classes"])
        self.best_epoch_ = int(meta["best_epoch"])
