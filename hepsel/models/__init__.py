"""Classifiers with scikit-learn's estimator contract, and how to build and load them by kind.

Kinds: ``bdt`` (xgboost), ``bbdt`` (a bonsai BDT: a BDT on discretised
inputs, evaluated as a lookup table), ``mlp`` (torch), ``lipschitz_mlp``
(a monotone, Lipschitz-bounded torch network), ``fisher`` (linear
discriminant), ``autoencoder`` (torch; unsupervised, trained on background
only, scored by its reconstruction error);
``gan_augmented`` is a ``bdt`` or ``mlp`` trained with extra signal generated
by a :class:`~hepsel.models.gan.WGANGP`. Torch and xgboost are imported only
when a model is built or loaded.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["CLASSIFIER_KINDS", "estimator_class", "load_classifier", "make_classifier"]

CLASSIFIER_KINDS = ("bdt", "bbdt", "mlp", "lipschitz_mlp", "fisher", "autoencoder")


#: The estimator of each kind, ``module.Class`` in hepsel.models, imported when first asked for.
_ESTIMATORS = {
    "bdt": "bdt.BDTClassifier",
    "bbdt": "bbdt.BonsaiBDTClassifier",
    "mlp": "mlp.MLPClassifier",
    "lipschitz_mlp": "lipschitz.LipschitzMLPClassifier",
    "fisher": "fisher.FisherClassifier",
    "autoencoder": "autoencoder.AutoencoderSelector",
}


def estimator_class(kind: str) -> Any:
    """The estimator class of a classifier kind, or ``"gan"`` for the WGAN-GP."""
    if kind == "gan":
        from .gan import WGANGP

        return WGANGP
    return _cls(kind)


def _cls(kind: str) -> Any:
    if kind not in _ESTIMATORS:
        msg = f"unknown classifier kind {kind!r}; choose from {CLASSIFIER_KINDS}"
        raise ValueError(msg)
    module, name = _ESTIMATORS[kind].split(".")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def make_classifier(kind: str, params: dict[str, Any], *, random_state: int | None = None) -> Any:
    """A new, unfitted classifier of ``kind`` with ``params``.

    Raises
    ------
    ValueError
        Unknown kind, or a parameter the estimator does not take.
    """
    cls = _cls(kind)
    p = dict(params)
    if kind != "fisher":
        p.setdefault("random_state", random_state)
    try:
        return cls(**p)
    except TypeError as err:
        msg = f"invalid parameters for a {kind} model: {err}"
        raise ValueError(msg) from err


def load_classifier(kind: str, prefix: str | os.PathLike[str]) -> Any:
    """Load a classifier saved with its ``save(prefix)`` (no pickle)."""
    return _cls(kind).load(prefix)
