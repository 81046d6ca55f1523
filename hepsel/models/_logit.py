"""Predictions of the classifiers whose decision function is the log-odds of the signal."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

__all__ = ["LogOddsOutputs"]


class LogOddsOutputs:
    """:meth:`predict_proba` and :meth:`predict` from a :meth:`decision_function` giving log-odds.

    A subclass implements :meth:`decision_function` and sets ``classes_``
    (``classes_[1]`` is the signal).
    """

    classes_: np.ndarray

    def decision_function(self, X: Any) -> np.ndarray:
        """The log-odds of the signal, shape (n_events,)."""
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[1 - p, p]`` with ``p = sigmoid(decision_function(X))``, shape (n_events, 2).

        Columns ordered as :attr:`classes_`; column 1 is the signal.
        """
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label, shape (n_events,)."""
        return np.asarray(self.classes_[(self.decision_function(X) > 0).astype(int)])
