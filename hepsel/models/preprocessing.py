"""Feature scaling for the neural-network models, serialisable without pickle.

:class:`FeatureScaler` wraps scikit-learn's :class:`~sklearn.preprocessing.StandardScaler`
and :class:`~sklearn.preprocessing.QuantileTransformer` (normal output) and can
write its fitted state to, and rebuild it from, a JSON-compatible dict.

The scaler is fitted only on the array given to :meth:`FeatureScaler.fit`; the
models call it on their training portion, never on validation or test folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from ._checks import as_2d, check_X, reading_serialised

__all__ = ["SCALING_METHODS", "FeatureScaler"]

#: Accepted values of ``FeatureScaler(method=...)``.
SCALING_METHODS: tuple[str, ...] = ("standard", "quantile", "none")

_FORMAT = "hepsel.FeatureScaler"


class FeatureScaler(BaseEstimator):
    """Per-feature scaling fitted on training data and stored as plain lists.

    Parameters
    ----------
    method : {"standard", "quantile", "none"}, default "standard"
        ``"standard"``: subtract the mean and divide by the standard deviation.
        ``"quantile"``: map each feature through its empirical CDF onto a
        standard normal; the inverse transform interpolates between the stored
        quantiles and therefore never leaves the ``[min, max]`` range of the
        fitted data. ``"none"``: identity.
    n_quantiles : int, default 1000
        Number of quantiles for ``"quantile"`` (capped at the number of events).
    subsample : int or None, default 100_000
        Events used to estimate the quantiles (``None``: all of them).
    random_state : int, numpy.random.RandomState or None
        Seeds the subsampling of ``"quantile"``.

    Attributes
    ----------
    transformer_ : sklearn transformer or None
        The fitted scikit-learn object (``None`` for ``"none"``).
    n_features_in_ : int
        Number of features seen in :meth:`fit`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    >>> scaler = FeatureScaler("standard").fit(X)
    >>> np.allclose(scaler.transform(X).mean(axis=0), 0.0)
    True
    >>> restored = FeatureScaler.from_dict(scaler.to_dict())
    >>> np.allclose(restored.transform(X), scaler.transform(X))
    True
    """

    def __init__(
        self,
        method: str = "standard",
        n_quantiles: int = 1000,
        subsample: int | None = 100_000,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.method = method
        self.n_quantiles = n_quantiles
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X: Any, sample_weight: Any = None) -> FeatureScaler:
        """Fit the scaling on ``X``.

        Parameters
        ----------
        X : array_like, shape (n_events, n_features)
            Training features, any units.
        sample_weight : array_like, shape (n_events,), optional
            Per-event weights, used by ``"standard"`` for the weighted mean
            and variance. ``"quantile"`` ignores them: the quantile map only
            needs to spread the data out, and the classifiers apply the weights
            in their loss.

        Returns
        -------
        FeatureScaler
            ``self``.

        Raises
        ------
        ValueError
            If ``method`` is unknown or ``X`` is not 2D or empty.
        NonFiniteError
            If ``X`` holds NaN or infinite values.
        """
        if self.method not in SCALING_METHODS:
            msg = f"unknown scaling method {self.method!r}; use one of {SCALING_METHODS}"
            raise ValueError(msg)
        X = check_X(X)
        if X.shape[0] == 0:
            msg = "cannot fit a FeatureScaler on zero events"
            raise ValueError(msg)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (X.shape[0],):
                msg = (
                    f"sample_weight must have shape ({X.shape[0]},) to match X, "
                    f"got {sample_weight.shape}"
                )
                raise ValueError(msg)

        transformer: StandardScaler | QuantileTransformer | None
        if self.method == "standard":
            transformer = StandardScaler().fit(X, sample_weight=sample_weight)
        elif self.method == "quantile":
            # Capping avoids scikit-learn's warning (fewer events than quantiles)
            # and its error (more quantiles than subsampled events).
            cap = X.shape[0] if self.subsample is None else min(X.shape[0], self.subsample)
            transformer = QuantileTransformer(
                n_quantiles=int(min(self.n_quantiles, cap)),
                output_distribution="normal",
                subsample=self.subsample,
                random_state=self.random_state,
            ).fit(X)
        else:
            transformer = None
        self.transformer_ = transformer
        self.n_features_in_ = int(X.shape[1])
        return self

    def _check_input(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        X = as_2d(X)
        if X.shape[1] != self.n_features_in_:
            msg = f"X has {X.shape[1]} features but the scaler was fitted on {self.n_features_in_}"
            raise ValueError(msg)
        return X

    def transform(self, X: Any) -> np.ndarray:
        """Scale ``X`` (n_events, n_features); float64, same shape."""
        return self._apply("transform", X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Map scaled values ``Z`` (n_events, n_features) back to the original units; float64, same shape.

        For ``"quantile"`` the result lies inside the ``[min, max]`` range of
        the fitted data, feature by feature.
        """
        return self._apply("inverse_transform", Z)

    def _apply(self, method: str, X: Any) -> np.ndarray:
        X = self._check_input(X)
        if self.transformer_ is None:
            return X.copy()
        return np.asarray(getattr(self.transformer_, method)(X), dtype=np.float64)

    def fit_transform(self, X: Any, sample_weight: Any = None) -> np.ndarray:
        """Fit on ``X`` and return ``transform(X)``."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters and fitted state as JSON-serialisable plain types.

        Returns
        -------
        dict
            Nested dict of str, int, float and lists; feed it to :meth:`from_dict`.
        """
        check_is_fitted(self, "n_features_in_")
        state: dict[str, Any] = {
            "format": _FORMAT,
            "method": self.method,
            "n_quantiles": int(self.n_quantiles),
            "subsample": None if self.subsample is None else int(self.subsample),
            "n_features_in": self.n_features_in_,
        }
        t = self.transformer_
        if isinstance(t, StandardScaler):
            state["mean"] = t.mean_.tolist()
            state["var"] = t.var_.tolist()
            state["scale"] = t.scale_.tolist()
            state["n_samples_seen"] = float(np.asarray(t.n_samples_seen_).ravel()[0])
        elif isinstance(t, QuantileTransformer):
            state["n_quantiles_fitted"] = int(t.n_quantiles_)
            state["quantiles"] = t.quantiles_.tolist()
            state["references"] = t.references_.tolist()
        return state

    @classmethod
    def from_dict(cls, state: object) -> FeatureScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output.

        Parameters
        ----------
        state : dict
            As returned by :meth:`to_dict` (possibly after a JSON round trip).

        Returns
        -------
        FeatureScaler

        Raises
        ------
        ValueError
            If ``state`` is not a serialised FeatureScaler or misses a key.
        """
        with reading_serialised(state, _FORMAT, "FeatureScaler") as saved:
            scaler = cls(
                method=saved["method"],
                n_quantiles=saved["n_quantiles"],
                subsample=saved["subsample"],
            )
            n_features = int(saved["n_features_in"])
            transformer: StandardScaler | QuantileTransformer | None
            if scaler.method == "standard":
                transformer = StandardScaler()
                transformer.mean_ = np.asarray(saved["mean"], dtype=np.float64)
                transformer.var_ = np.asarray(saved["var"], dtype=np.float64)
                transformer.scale_ = np.asarray(saved["scale"], dtype=np.float64)
                transformer.n_samples_seen_ = np.int64(saved["n_samples_seen"])
            elif scaler.method == "quantile":
                transformer = QuantileTransformer(
                    n_quantiles=int(saved["n_quantiles_fitted"]),
                    output_distribution="normal",
                    subsample=scaler.subsample,
                )
                transformer.n_quantiles_ = int(saved["n_quantiles_fitted"])
                transformer.quantiles_ = np.asarray(saved["quantiles"], dtype=np.float64)
                transformer.references_ = np.asarray(saved["references"], dtype=np.float64)
            elif scaler.method == "none":
                transformer = None
            else:
                msg = f"unknown scaling method {scaler.method!r} in state; use one of {SCALING_METHODS}"
                raise ValueError(msg)
        if transformer is not None:
            transformer.n_features_in_ = n_features
        scaler.transformer_ = transformer
        scaler.n_features_in_ = n_features
        return scaler
