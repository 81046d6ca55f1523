"""Negative event weights for learners that cannot take them: cell resampling.

sWeights and NLO generators give events negative weights. Gradient boosting
(xgboost) refuses them, and the WGAN-GP draws minibatches with probability
proportional to the weights. For those learners hepsel makes the weights
non-negative with *cell resampling* (J. R. Andersen, A. Maier,
arXiv:2109.07851; also used for NLO event samples, arXiv:2303.15246):

1. take the event with the most negative weight as the seed of a cell;
2. add its nearest neighbours in (standardised) feature space, closest first,
   until the sum of weights in the cell is no longer negative;
3. give every event of the cell the weight ``|w_i| * sum(w) / sum(|w|)``.

Each cell keeps its total weight exactly, so every weighted distribution is
unchanged at scales larger than the cells; only the fine structure inside a
cell is smeared. :func:`weight_residuals` measures what is left: weighted
histograms of each feature before and after, compared bin by bin in units of
the statistical error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import check_weights

__all__ = ["CellResampling", "cell_resample", "weight_residuals"]


@dataclass
class CellResampling:
    """Result of :func:`cell_resample`.

    ``weights`` are the new (non-negative) weights; ``n_negative`` the number of
    negative weights before; ``n_cells`` the number of cells formed;
    ``cell_sizes`` the number of events in each cell.
    """

    weights: NDArray[np.float64]
    n_negative: int
    n_cells: int
    cell_sizes: list[int] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """A JSON-able summary."""
        sizes = np.asarray(self.cell_sizes) if self.cell_sizes else np.zeros(1, dtype=int)
        return {
            "method": "cell resampling (arXiv:2109.07851)",
            "n_negative": self.n_negative,
            "n_cells": self.n_cells,
            "cell_size_median": float(np.median(sizes)),
            "cell_size_max": int(sizes.max()),
            "events_in_cells": int(sizes.sum()) if self.cell_sizes else 0,
        }


def _standardise(X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Features in units of their spread (interquartile range / 1.349, or std), so no feature dominates the distance."""
    q25, q50, q75 = np.percentile(X, [25, 50, 75], axis=0)
    scale = (q75 - q25) / 1.349
    std = X.std(axis=0)
    scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
    return (X - q50) / scale


def cell_resample(
    X: Any, weights: Any, *, k_start: int = 16, where: str = "the sample"
) -> CellResampling:
    """Make ``weights`` non-negative by cell resampling, keeping each cell's total weight.

    Parameters
    ----------
    X : array_like, shape (n_events, n_features)
        Features defining the neighbourhoods (standardised internally).
    weights : array_like, shape (n_events,)
        Event weights, some negative; their total must be positive.
    k_start
        Neighbours fetched per query at first (grown as needed).
    where
        Names the sample in error messages.

    Raises
    ------
    ValueError
        If the total weight is not positive (no cell can become non-negative).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [5.0]])
    >>> r = cell_resample(X, [1.0, -0.5, 2.0])
    >>> r.weights.round(3).tolist()
    [0.333, 0.167, 2.0]
    """
    from scipy.spatial import cKDTree

    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    n = Xa.shape[0]
    w = check_weights(weights, n, name="weights", against="X")
    assert w is not None
    w = w.copy()
    neg = np.flatnonzero(w < 0)
    if len(neg) == 0:
        return CellResampling(w, 0, 0)
    total = float(w.sum())
    if total <= 0:
        msg = (
            f"{where}: the total weight is {total:g} <= 0 ({len(neg)} of {n} weights negative); "
            "negative weights cannot be made positive while keeping the total"
        )
        raise ValueError(msg)
    Z = _standardise(Xa)
    tree = cKDTree(Z)
    sizes: list[int] = []
    for seed in neg[np.argsort(w[neg], kind="stable")]:
        if w[seed] >= 0:  # already absorbed by an earlier cell
            continue
        k = min(k_start, n)
        while True:
            _, idx = tree.query(Z[seed], k=k)
            idx = np.atleast_1d(idx)
            # the seed first, then its neighbours by distance
            idx = np.concatenate([[seed], idx[idx != seed]])
            cum = np.cumsum(w[idx])
            ok = np.flatnonzero(cum >= 0)
            if len(ok):
                cell = idx[: ok[0] + 1]
                break
            if k >= n:  # pragma: no cover - impossible with a positive total
                cell = idx
                break
            k = min(4 * k, n)
        s, a = float(w[cell].sum()), float(np.abs(w[cell]).sum())
        w[cell] = np.abs(w[cell]) * (s / a if a > 0 else 0.0)
        sizes.append(len(cell))
    return CellResampling(w, len(neg), len(sizes), sizes)


def weight_residuals(
    X: Any, before: Any, after: Any, feature_names: list[str] | None = None, *, bins: int = 20
) -> dict[str, Any]:
    """How far the weighted distributions moved: per feature, bin pulls between ``before`` and ``after``.

    Bins are quantiles of the feature (equal populations). The pull of a bin
    is ``(sum w_after - sum w_before) / sqrt(sum w_before^2)``; reported per
    feature are the largest |pull| and chi2 / ndf of the pulls.
    """
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    wb, wa = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    names = feature_names or [f"x{j}" for j in range(Xa.shape[1])]
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        edges = np.unique(np.quantile(Xa[:, j], np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            out[name] = {"max_abs_pull": 0.0, "chi2_ndf": 0.0}
            continue
        hb = np.histogram(Xa[:, j], edges, weights=wb)[0]
        ha = np.histogram(Xa[:, j], edges, weights=wa)[0]
        err = np.sqrt(np.histogram(Xa[:, j], edges, weights=wb**2)[0])
        pull = np.divide(ha - hb, err, out=np.zeros_like(err), where=err > 0)
        out[name] = {
            "max_abs_pull": float(np.max(np.abs(pull))),
            "chi2_ndf": float(np.mean(pull**2)),
        }
    return out
