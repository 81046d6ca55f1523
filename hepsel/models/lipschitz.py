"""Lipschitz monotonic neural-network classifier (PyTorch, ``monotonicnetworks``).

:class:`LipschitzMLPClassifier` is the architecture of Kitouni, Nolte and
Williams (arXiv:2112.00038), built from the authors' ``monotonicnetworks``
package: ``LipschitzLinear`` layers whose weights are normalised on every
forward pass (the first layer elementwise, ``kind="one-inf"``, the others
by row sums, ``kind="inf"``), ``GroupSort`` activations with groups of two,
and a ``MonotonicWrapper`` that adds ``lipschitz_const * sum_i m_i z_i`` for
the monotone features ``m_i = +-1``.

Guarantees, on the standardised inputs ``z_i = (x_i - mu_i) / sigma_i`` (an
increasing affine map per feature, so monotonicity carries over to the
physical features):

* the logit is non-decreasing in every feature with ``m_i = 1`` and
  non-increasing in every feature with ``m_i = -1``, everywhere;
* ``|f(z) - f(z')| <= lipschitz_const * sum_i (1 + |m_i|) |z_i - z'_i|``
  (a weighted l1 norm; at most ``2 * lipschitz_const * ||z - z'||_1``). In
  physical units the bound on feature ``i`` is
  ``lipschitz_const * (1 + |m_i|) / sigma_i`` per unit of that feature
  (e.g. per MeV), with ``sigma_i`` the training standard deviation
  (``scaler_.to_dict()``).

Training (weighted cross-entropy, early stopping, DisCo decorrelation),
prediction and saving are those of :class:`~hepsel.models.mlp.MLPClassifier`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._torch import import_torch
from .mlp import MLPClassifier

if TYPE_CHECKING:
    import torch

__all__ = ["LipschitzMLPClassifier", "build_lipschitz_network", "lipschitz_weights"]


def _import_monotonicnetworks() -> Any:
    try:
        import monotonicnetworks
    except ImportError as exc:  # pragma: no cover - a declared dependency
        msg = "lipschitz_mlp models need the 'monotonicnetworks' package; install it with pip install monotonicnetworks"
        raise ImportError(msg) from exc
    return monotonicnetworks


def build_lipschitz_network(
    n_in: int,
    hidden_layers: Sequence[int] = (32, 32),
    lipschitz_const: float = 5.0,
    monotone_constraints: Sequence[int] | None = None,
) -> torch.nn.Module:
    """The monotone, Lipschitz network: ``MonotonicWrapper(LipschitzLinear -> GroupSort -> ... -> LipschitzLinear)``.

    Parameters
    ----------
    n_in : int
        Number of (standardised) inputs.
    hidden_layers : sequence of even int
        Width of each hidden layer (GroupSort sorts pairs of units).
    lipschitz_const : float
        ``lambda``: the inner network is ``lambda``-Lipschitz from the l1 norm
        of its inputs (each of its ``len(hidden_layers) + 1`` layers gets
        ``lambda ** (1 / n_layers)``), and the wrapper adds ``lambda * m . z``.
    monotone_constraints : sequence of {-1, 0, 1}, optional
        Per input: non-increasing, free, non-decreasing (default: all free).

    Returns
    -------
    torch.nn.Module
        Maps a ``(batch, n_in)`` float tensor to ``(batch, 1)`` logits.
    """
    torch = import_torch()
    mn = _import_monotonicnetworks()
    widths = [int(n_in), *(int(h) for h in hidden_layers)]
    if any(w < 1 for w in widths):
        msg = (
            f"n_in and hidden_layers must be positive integers, got {n_in!r} and {hidden_layers!r}"
        )
        raise ValueError(msg)
    if any(w % 2 for w in widths[1:]):
        msg = f"hidden_layers must be even widths (GroupSort sorts pairs of units), got {list(hidden_layers)}"
        raise ValueError(msg)
    lam = float(lipschitz_const)
    if not np.isfinite(lam) or lam <= 0:
        msg = f"lipschitz_const must be a finite number > 0, got {lipschitz_const!r}"
        raise ValueError(msg)
    mono = (
        [0] * widths[0] if monotone_constraints is None else [int(m) for m in monotone_constraints]
    )
    if len(mono) != widths[0] or any(m not in (-1, 0, 1) for m in mono):
        msg = f"monotone_constraints must hold {widths[0]} values in (-1, 0, 1), got {list(mono)}"
        raise ValueError(msg)
    per_layer = lam ** (1.0 / len(widths))
    layers: list[Any] = []
    for i, (w_in, w_out) in enumerate(itertools.pairwise([*widths, 1])):
        # the first layer maps l1 to l-infinity, the others l-infinity to itself
        kind = "one-inf" if i == 0 else "inf"
        layers.append(mn.LipschitzLinear(w_in, w_out, kind=kind, lipschitz_const=per_layer))
        if w_out != 1:
            layers.append(mn.GroupSort(w_out // 2))
    return mn.MonotonicWrapper(
        torch.nn.Sequential(*layers), lipschitz_const=lam, monotonic_constraints=mono
    )


def lipschitz_weights(network: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """The normalised ``(weight, bias)`` of each linear layer, as the forward pass uses them."""
    torch = import_torch()
    out = []
    with torch.no_grad():
        for layer in network.nn:
            if isinstance(layer, torch.nn.Linear):
                out.append((layer.weight.detach().cpu().numpy(), layer.bias.detach().cpu().numpy()))
    return out


@dataclass(kw_only=True, eq=False, repr=False)
class LipschitzMLPClassifier(MLPClassifier):
    """Monotone, Lipschitz-bounded neural-network classifier with weighted events.

    Parameters
    ----------
    hidden_layers : tuple of even int, default (32, 32)
    lipschitz_const : float, default 5.0
        ``lambda`` (see the module docstring for the bound it gives). Too
        small a value caps how steeply the score can rise where the classes
        overlap; features with long tails (momenta in MeV) are best given a
        ``log`` transform in the config, so that one standard deviation is
        not dominated by the tail.
    learning_rate : float, default 3e-3
    batch_size : int, default 256
    max_epochs : int, default 100
    patience : int, default 10
        The normalised layers learn more slowly than a plain MLP: more, smaller
        steps than the ``mlp`` defaults.
    monotone_constraints : sequence of {-1, 0, 1}, optional
        One per feature, in feature order; in an analysis set from
        ``models.<name>.monotone``.
    weight_decay, validation_fraction, balance_classes, device, random_state, n_jobs, verbose, decorrelation_strength
        As for :class:`~hepsel.models.mlp.MLPClassifier`.

    Attributes
    ----------
    scaler_ : FeatureScaler
        The standardisation (always ``"standard"``: an increasing affine map).
    network_ : torch.nn.Module
        A ``monotonicnetworks.MonotonicWrapper``.
    classes_, n_features_in_, history_, best_epoch_, device_
        As for :class:`~hepsel.models.mlp.MLPClassifier`.
    """

    _format = "hepsel.LipschitzMLPClassifier"
    _stem = "lipschitz_mlp"
    hidden_layers: Sequence[int] = (32, 32)
    lipschitz_const: float = 5.0
    monotone_constraints: Sequence[int] | None = None
    # the normalised layers learn more slowly than a plain MLP: more, smaller steps
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    max_epochs: int = 100
    patience: int = 10
    #: the only input map that keeps the Lipschitz bound simple in physical units
    preprocessing: str = field(default="standard", init=False)
    #: not a parameter: the network is GroupSort throughout
    activation: str = field(default="relu", init=False)

    def _check_params(self) -> None:
        self._check_common_params()

    def _build(self, n_in: int) -> torch.nn.Module:
        mono = self.monotone_constraints
        if mono is not None and len(mono) != n_in:
            msg = f"monotone_constraints has {len(mono)} values but X has {n_in} features"
            raise ValueError(msg)
        return build_lipschitz_network(n_in, self.hidden_layers, self.lipschitz_const, mono)

    def lipschitz_bounds(self) -> np.ndarray:
        """Per-feature Lipschitz bound of the logit in physical units (per unit of each feature).

        ``|f(x) - f(x')| <= sum_i bounds[i] * |x_i - x'_i|``, with
        ``bounds[i] = lipschitz_const * (1 + |m_i|) / sigma_i``.

        Returns
        -------
        numpy.ndarray, shape (n_features,)
        """
        if not hasattr(self, "scaler_"):
            msg = "this LipschitzMLPClassifier is not fitted yet; call fit() or load()"
            raise RuntimeError(msg)
        sigma = np.asarray(self.scaler_.to_dict()["scale"], dtype=np.float64)
        mono = (
            np.zeros(len(sigma))
            if self.monotone_constraints is None
            else np.abs(self.monotone_constraints)
        )
        return float(self.lipschitz_const) * (1.0 + mono) / sigma
