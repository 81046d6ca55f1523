"""Fisher linear discriminant with weighted events, in closed form.

The discriminant direction is ``w = S_W^{-1} (mu_s - mu_b)`` with weighted
class means ``mu`` and the weighted pooled within-class covariance ``S_W``.
It is the classic linear baseline for a selection: cheap, transparent and
saved as a handful of numbers in a JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..exceptions import ModelFileError, NonFiniteError
from ..io.storage import write_text
from ._checks import binary_classes, check_n_features, check_X, check_y, reading_serialised
from ._logit import LogOddsOutputs

__all__ = ["FisherClassifier"]

_FORMAT = "hepsel.FisherClassifier"
_DEFAULT_STEM = "fisher"
#: Rows per block of :meth:`FisherClassifier.fit`: the float64 copy it makes of each (8 MB at 16 features).
_BLOCK = 65_536


class FisherClassifier(LogOddsOutputs, ClassifierMixin, BaseEstimator):
    """Fisher linear discriminant for two classes with per-event weights.

    Parameters
    ----------
    ridge : float, default 1e-9
        Tikhonov regularisation added to the within-class *correlation*
        matrix (i.e. relative to each feature's variance, so it does not
        depend on the units), keeping the solve stable for collinear or
        constant features.

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (2,)
        ``classes_[1]`` is the signal class.
    n_features_in_ : int
    coef_ : numpy.ndarray, shape (n_features,)
        ``S_W^{-1} (mu_s - mu_b)``, in inverse feature units.
    intercept_ : float
        ``-coef_ @ (mu_s + mu_b) / 2``: the midpoint of the projected class
        means maps to zero.
    means_ : numpy.ndarray, shape (2, n_features)
        Weighted class means, rows ordered as :attr:`classes_`.
    covariance_ : numpy.ndarray, shape (n_features, n_features)
        Weighted pooled within-class covariance ``S_W``.

    Notes
    -----
    ``S_W = sum_c sum_i w_i (x_i - mu_c)(x_i - mu_c)^T / sum_i w_i``, the
    class covariances pooled in proportion to their total weights (the
    estimate of :class:`sklearn.discriminant_analysis.LinearDiscriminantAnalysis`
    for unit weights).

    Calibration: with this normalisation of ``coef_``, :meth:`decision_function`
    is the log-likelihood ratio of two Gaussians sharing the covariance
    ``S_W``, so :meth:`predict_proba` (its logistic) is the posterior for
    equal class priors. Equivalently, the decision value is the projection
    measured from the midpoint, in units of the projected pooled variance
    ``coef_ @ S_W @ coef_``. Only its ordering matters for ROC curves.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [1.0, 0.5], [2.0, 2.0], [3.0, 2.5]])
    >>> clf = FisherClassifier().fit(X, [0, 0, 1, 1])
    >>> clf.predict(X).tolist()
    [0, 0, 1, 1]
    """

    def __init__(self, ridge: float = 1e-9) -> None:
        self.ridge = ridge

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> FisherClassifier:
        """Compute the discriminant.

        Parameters
        ----------
        X : array_like, shape (n_events, n_features)
        y : array_like, shape (n_events,)
            Two class labels; the larger one is the signal.
        sample_weight : array_like, shape (n_events,), optional
            Per-event weights (negative sWeights allowed if each class total
            is positive).

        Returns
        -------
        FisherClassifier
            ``self``.

        Raises
        ------
        ValueError
            On shape mismatch, not exactly two classes, or a class with
            non-positive total weight.
        NonFiniteError
            If ``X`` or the weights hold NaN or infinite values.
        """
        if not np.isfinite(self.ridge) or self.ridge < 0:
            msg = f"ridge must be a finite non-negative float, got {self.ridge!r}"
            raise ValueError(msg)
        X = np.asarray(X)
        if X.ndim != 2:
            msg = f"X must be a 2D array of shape (n_events, n_features), got shape {X.shape}"
            raise ValueError(msg)
        y = check_y(y, X.shape[0])
        classes, y_index = binary_classes(y, "FisherClassifier")
        if sample_weight is None:
            w = np.ones(X.shape[0])
        else:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.shape != (X.shape[0],):
                msg = f"sample_weight must have shape ({X.shape[0]},) to match X, got {w.shape}"
                raise ValueError(msg)
            if not np.isfinite(w).all():
                msg = "sample_weight holds NaN or infinite values"
                raise NonFiniteError(msg)

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            for start in range(0, X.shape[0], _BLOCK):
                stop = start + _BLOCK
                yield X[start:stop], y_index[start:stop], w[start:stop]

        return self.fit_blocks(blocks, classes=classes)

    def fit_blocks(
        self,
        blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]],
        *,
        classes: Any = (0, 1),
    ) -> FisherClassifier:
        """Compute the discriminant from data in blocks (e.g. streamed from a file).

        Parameters
        ----------
        blocks : callable
            Returns a fresh iterable of ``(X, c, w)`` blocks: features,
            class index (0 or 1, indexing ``classes``) and weights. It is
            called twice (the class means, then the scatter about them), so
            only one block (promoted to float64) is in memory at a time.
        classes : array_like, shape (2,)
            The class labels; ``classes[1]`` is the signal.

        Returns
        -------
        FisherClassifier
            ``self``.
        """
        if not np.isfinite(self.ridge) or self.ridge < 0:
            msg = f"ridge must be a finite non-negative float, got {self.ridge!r}"
            raise ValueError(msg)
        classes = np.asarray(classes)
        n_features: int | None = None
        sums: np.ndarray | None = None
        totals = np.zeros(2)
        for Xb, cb, wb in blocks():
            Xb = check_X(Xb)
            if n_features is None:
                n_features = Xb.shape[1]
                sums = np.zeros((2, n_features))
            assert sums is not None
            for c in (0, 1):
                in_class = cb == c
                totals[c] += wb[in_class].sum()
                sums[c] += wb[in_class] @ Xb[in_class]
        if n_features is None or sums is None:
            msg = "FisherClassifier needs at least one event to fit"
            raise ValueError(msg)
        for c in (0, 1):
            if totals[c] <= 0:
                msg = f"class {classes[c]!r} has non-positive total weight {totals[c]}; it needs a positive one"
                raise ValueError(msg)
        means = sums / totals[:, None]
        scatter = np.zeros((n_features, n_features))
        for Xb, cb, wb in blocks():
            Xb = check_X(Xb)
            for c in (0, 1):
                in_class = cb == c
                centred = Xb[in_class] - means[c]
                scatter += (centred * wb[in_class][:, None]).T @ centred
        covariance = scatter / totals.sum()

        # Solve in correlation space so the ridge is unit-free.
        std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        std[std == 0] = 1.0
        correlation = covariance / np.outer(std, std)
        delta = (means[1] - means[0]) / std
        regularised = correlation + self.ridge * np.eye(n_features)
        coef = np.linalg.lstsq(regularised, delta, rcond=None)[0] / std

        self.classes_ = classes
        self.n_features_in_ = int(n_features)
        self.means_ = means
        self.covariance_ = covariance
        self.coef_ = coef
        self.intercept_ = float(-coef @ (means[0] + means[1]) / 2.0)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Return ``X @ coef_ + intercept_``, shape (n_events,); larger means more signal-like."""
        check_is_fitted(self, "coef_")
        X = check_X(X)
        check_n_features(X, self.n_features_in_)
        return np.asarray(X @ self.coef_ + self.intercept_, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters and fitted state as JSON-serialisable plain types."""
        check_is_fitted(self, "coef_")
        return {
            "format": _FORMAT,
            "ridge": float(self.ridge),
            "classes": self.classes_.tolist(),
            "n_features_in": self.n_features_in_,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "means": self.means_.tolist(),
            "covariance": self.covariance_.tolist(),
        }

    @classmethod
    def from_dict(cls, state: object) -> FisherClassifier:
        """Rebuild a fitted classifier from :meth:`to_dict` output (``ValueError`` if it is not one or misses a key)."""
        with reading_serialised(state, _FORMAT, "FisherClassifier") as saved:
            model = cls(ridge=saved["ridge"])
            model.classes_ = np.asarray(saved["classes"])
            model.n_features_in_ = int(saved["n_features_in"])
            model.coef_ = np.asarray(saved["coef"], dtype=np.float64)
            model.intercept_ = float(saved["intercept"])
            model.means_ = np.asarray(saved["means"], dtype=np.float64)
            model.covariance_ = np.asarray(saved["covariance"], dtype=np.float64)
        return model

    def save(self, path: str | Path) -> Path:
        """Write ``<prefix>.json``.

        Parameters
        ----------
        path : str or Path
            A file prefix, or an existing directory (file ``fisher.json`` inside).

        Returns
        -------
        Path
            The prefix used (the file is ``prefix.with_suffix(".json")``).
        """
        prefix = Path(path)
        if prefix.is_dir():
            prefix = prefix / _DEFAULT_STEM
        write_text(prefix.with_suffix(".json"), json.dumps(self.to_dict(), indent=1))
        return prefix

    @classmethod
    def load(cls, path: str | Path) -> FisherClassifier:
        """Load a classifier written by :meth:`save` (prefix, directory or ``.json`` path).

        Raises
        ------
        ModelFileError
            If the file is missing or does not hold a FisherClassifier.
        """
        prefix = Path(path)
        if prefix.is_dir():
            prefix = prefix / _DEFAULT_STEM
        file = prefix.with_suffix(".json")
        if not file.is_file():
            msg = f"model file {file} not found; save the model with FisherClassifier.save({str(prefix)!r})"
            raise ModelFileError(msg)
        try:
            return cls.from_dict(json.loads(file.read_text()))
        except (json.JSONDecodeError, ValueError) as exc:
            msg = f"{file} does not hold a saved FisherClassifier: {exc}"
            raise ModelFileError(msg) from exc
