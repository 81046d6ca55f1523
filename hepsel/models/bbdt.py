"""A bonsai BDT: a BDT on discretised inputs whose response is a lookup table.

The design of the LHCb Run 1 topological trigger (Gligorov & Williams,
arXiv:1210.6861). Each input feature is cut into a small number of bins; a
gradient-boosted BDT (:class:`~hepsel.models.bdt.BDTClassifier`) is trained
on the bin indices, so its response is constant within a cell of the grid;
the response of every cell is then computed once and stored as a flat
float32 table. Inference is one table lookup per candidate: fast, robust to
calibration shifts smaller than a bin, and open to inspection cell by cell.

Bin ``i`` of a feature with edges ``e_0 < e_1 < ... < e_n`` holds the values
``e_i <= x < e_{i+1}``; values below ``e_1`` go to bin 0 and values from
``e_{n-1}`` up to bin ``n - 1``, so the outer edges only document the range of
the training data. The cell of a candidate is ``sum_j bin_j * strides[j]``
with C-order strides (the last feature varies fastest).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ModelFileError
from ._xgboost import BOOSTING_PARAMS, BoostingEstimator, Mask

__all__ = ["DEFAULT_MAX_CELLS", "BonsaiBDTClassifier", "quantile_edges"]

#: Largest table built unless ``max_cells`` says otherwise: 2**24 cells, 64 MiB of float32.
DEFAULT_MAX_CELLS = 2**24
_FORMAT = "hepsel.BonsaiBDTClassifier"
#: Cells evaluated per call to the BDT while the table is filled (bounds the memory).
_CHUNK = 2**18


@dataclass(frozen=True)
class _Plan:
    """The grid the parameters ask for on an input with a given number of columns."""

    indices: list[int]
    names: list[str]
    bins: list[int]
    edges: list[np.ndarray | None]

    @property
    def cells(self) -> int:
        return math.prod(self.bins)


def quantile_edges(x: np.ndarray, n_bins: int, weight: np.ndarray | None = None) -> np.ndarray:
    """Bin edges putting about equal (weighted) amounts of ``x`` in each of ``n_bins`` bins.

    Parameters
    ----------
    x : numpy.ndarray, shape (n,)
        Feature values, in the feature's units.
    n_bins : int
        Bins asked for.
    weight : numpy.ndarray, shape (n,), optional
        Non-negative weights (default: one per value).

    Returns
    -------
    numpy.ndarray, shape (m + 1,)
        Increasing edges from ``min(x)`` to ``max(x)``. Edges that coincide
        (a value carrying more than one bin's share of the weight) are
        merged, so ``m <= n_bins``; a constant ``x`` gives one bin ``[x, x]``.

    Examples
    --------
    >>> quantile_edges(np.arange(8.0), 4).tolist()
    [0.0, 2.0, 4.0, 6.0, 7.0]
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        msg = "no values to take quantile edges from"
        raise ValueError(msg)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    w = np.ones(len(x)) if weight is None else np.asarray(weight, dtype=np.float64)[order]
    cw = np.cumsum(w)
    if not cw[-1] > 0:
        cw = np.arange(1.0, len(x) + 1.0)
    # edge k: the first value with at least k / n_bins of the weight below or at it
    q = np.arange(1, n_bins) / n_bins * cw[-1]
    inner = xs[np.minimum(np.searchsorted(cw, q, side="left") + 1, len(xs) - 1)]
    edges = np.unique(np.concatenate([xs[:1], inner, xs[-1:]]))
    return edges if len(edges) >= 2 else np.repeat(edges, 2)


def _per_feature(value: Any, names: list[str], what: str) -> list[Any]:
    """``value`` given once, per feature (a list in feature order) or by name (a mapping), as a list."""
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names))
        if unknown:
            msg = f"{what} names {unknown}, which the model does not use; its features are {names}"
            raise ValueError(msg)
        return [value.get(n) for n in names]
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != len(names):
            msg = (
                f"{what} has {len(value)} entries but the model uses {len(names)} features {names}"
            )
            raise ValueError(msg)
        return list(value)
    return [value] * len(names)


@dataclass(kw_only=True, eq=False, repr=False)
class BonsaiBDTClassifier(BoostingEstimator):
    """A BDT on discretised features, evaluated as a lookup table.

    Parameters
    ----------
    bins : int, list of int or mapping, default 8
        Bins per feature: one number for all, a list in the order of
        ``features``, or a mapping feature name -> bins. Edges are weighted
        quantiles of the training data (weights as passed to :meth:`fit`),
        so each bin holds about the same training weight; coinciding
        quantiles are merged, so a feature may end up with fewer bins.
    edges : list or mapping, optional
        Explicit edges (feature units, increasing, at least two) for some
        features, as a list in the order of ``features`` (``None`` for
        quantile edges) or a mapping feature name -> edges. They override
        ``bins`` for their feature: ``n + 1`` edges make ``n`` bins.
    features : list of str or int, optional
        The columns of ``X`` the model uses, by name (needs
        ``feature_names``) or by index, in the order of the table's axes;
        default: all columns. The table has ``prod(bins)`` cells, so a
        handful of features is the rule (the Run 1 topological trigger used
        sum pT, min pT, corrected mass, flight-distance chi2, DOCA, ...).
    feature_names : list of str, optional
        Names of the columns of ``X``. The training workflow sets it from the
        config's ``features``.
    max_cells : int, default 2**24
        Largest table allowed; more cells are refused before training.
    n_estimators, max_depth, ...
        The boosting parameters (``n_estimators``, ``max_depth``,
        ``learning_rate``, ... as for :class:`~hepsel.models.bdt.BDTClassifier`),
        passed on to the internal BDT.

    Attributes
    ----------
    feature_indices_ : list of int
        Columns of ``X`` used, in table-axis order.
    features_ : list of str
        Their names (``"x<i>"`` for column ``i`` when names are unknown).
    edges_ : list of numpy.ndarray
        Edges per used feature, in feature units.
    bins_ : tuple of int
        Bins per used feature (``len(edges_[j]) - 1``): the table's shape.
    strides_ : tuple of int
        C-order strides of the flat table, in cells.
    table_ : numpy.ndarray, shape (prod(bins_),), float32
        Signal probability of every cell.
    bdt_ : BDTClassifier or None
        The BDT trained on bin indices (after :meth:`load`, read from its
        xgboost JSON file when first needed, for :meth:`shap_values`).

    best_iteration_ : int
        Boosting rounds the BDT kept (early stopping), minus one.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3)); y = (X[:, 0] + X[:, 2] > 0).astype(int)
    >>> clf = BonsaiBDTClassifier(bins=[4, 6], features=[0, 2], n_estimators=20, n_jobs=1, random_state=1)
    >>> clf = clf.fit(X, y)
    >>> clf.table_.shape, clf.strides_
    ((24,), (6, 1))
    """

    _params = ("bins", "edges", "features", "feature_names", "max_cells", *BOOSTING_PARAMS)
    _fitted = "table_"

    bins: int | Sequence[int] | Mapping[str, int] = 8
    edges: Sequence[Sequence[float] | None] | Mapping[str, Sequence[float]] | None = None
    features: Sequence[str | int] | None = None
    feature_names: Sequence[str] | None = None
    max_cells: int = DEFAULT_MAX_CELLS
    #: where a loaded model's BDT is read from when it is first needed
    _bdt_prefix: Path | None = field(default=None, init=False)

    # -- the grid -----------------------------------------------------------------
    def _plan(self, n_features: int) -> _Plan:
        names_all = list(self.feature_names) if self.feature_names is not None else None
        if names_all is not None and len(names_all) != n_features:
            msg = f"feature_names has {len(names_all)} names but X has {n_features} columns"
            raise ValueError(msg)
        # checked as given: a parameter may hold anything
        wanted: list[object] = (
            list(range(n_features)) if self.features is None else list(self.features)
        )
        if not wanted:
            msg = "features is empty; name at least one feature for the bonsai BDT"
            raise ValueError(msg)
        indices: list[int] = []
        for f in wanted:
            if isinstance(f, str):
                if names_all is None:
                    msg = f"feature {f!r} is given by name but the model has no feature_names; give column indices"
                    raise ValueError(msg)
                if f not in names_all:
                    msg = f"feature {f!r} is not among the input features {names_all}"
                    raise ValueError(msg)
                indices.append(names_all.index(f))
            elif (
                isinstance(f, (int, np.integer)) and not isinstance(f, bool) and 0 <= f < n_features
            ):
                indices.append(int(f))
            else:
                msg = f"feature {f!r} is neither a feature name nor a column index in [0, {n_features})"
                raise ValueError(msg)
        if len(set(indices)) != len(indices):
            msg = f"features lists a column twice: {wanted}"
            raise ValueError(msg)
        names = [names_all[i] if names_all is not None else f"x{i}" for i in indices]
        edges = (
            _per_feature(self.edges, names, "edges")
            if self.edges is not None
            else [None] * len(names)
        )
        bins = _per_feature(self.bins, names, "bins")
        fixed: list[np.ndarray | None] = []
        n_bins: list[int] = []
        for name, b, e in zip(names, bins, edges, strict=True):
            if e is not None:
                arr = np.asarray(e, dtype=np.float64)
                if (
                    arr.ndim != 1
                    or len(arr) < 2
                    or not np.isfinite(arr).all()
                    or not (np.diff(arr) > 0).all()
                ):
                    msg = f"edges of feature {name!r} must be at least two finite, increasing numbers, got {list(e)}"
                    raise ValueError(msg)
                fixed.append(arr)
                n_bins.append(len(arr) - 1)
                continue
            if b is None:
                msg = f"feature {name!r} has neither bins nor edges"
                raise ValueError(msg)
            if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
                msg = f"bins of feature {name!r} must be a positive integer, got {b!r}"
                raise ValueError(msg)
            fixed.append(None)
            n_bins.append(int(b))
        plan = _Plan(indices, names, n_bins, fixed)
        if plan.cells > self.max_cells:
            msg = (
                f"a bonsai BDT over {len(names)} features with bins {dict(zip(names, n_bins, strict=True))} "
                f"has {plan.cells:,} cells, more than max_cells = {self.max_cells:,}: use fewer features or "
                "bins (or raise max_cells; the table takes 4 bytes per cell)"
            )
            raise ValueError(msg)
        return plan

    def validate(self, n_features: int) -> int:
        """Check the parameters for an input of ``n_features`` columns; return the cell count asked for.

        Raises
        ------
        ValueError
            Unknown features, malformed bins or edges, or more cells than ``max_cells``.
        """
        return self._plan(n_features).cells

    def bin_indices(self, X: np.ndarray) -> np.ndarray:
        """Bin of each used feature, shape (n, n_used), int64: ``searchsorted(edges[1:-1], x, "right")``."""
        self._check_fitted()
        return self._bins(_check_X(X, self.n_features_in_))

    def _bins(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((len(X), len(self.feature_indices_)), dtype=np.int64)
        for j, (col, e) in enumerate(zip(self.feature_indices_, self.edges_, strict=True)):
            out[:, j] = np.searchsorted(e[1:-1], X[:, col], side="right")
        return out

    def cell_index(self, X: np.ndarray) -> np.ndarray:
        """Flat table index of each row of ``X``, shape (n,), int64."""
        X = _check_X(X, self.n_features_in_)
        idx = np.zeros(len(X), dtype=np.int64)
        # accumulated feature by feature: no (n, n_bins) temporary, no integer matmul
        for col, e, stride in zip(self.feature_indices_, self.edges_, self.strides_, strict=True):
            b = np.searchsorted(e[1:-1], X[:, col], side="right")
            if stride != 1:
                b *= int(stride)
            idx += b
        return idx

    # -- fit and predict --------------------------------------------------------
    def _bdt(self) -> Any:
        from .bdt import BDTClassifier

        return BDTClassifier(**self.boosting_params())

    def _fit(
        self, X: np.ndarray, y: np.ndarray, w: np.ndarray, synthetic: Mask, validation: Mask
    ) -> BonsaiBDTClassifier:
        """Choose the edges, train the BDT on bin indices and fill the table.

        ``X`` in feature units; ``synthetic`` and ``validation`` go to the
        internal BDT. Quantile edges come from the rows the BDT is fitted on
        (those outside an explicit ``validation`` split).

        Raises
        ------
        ValueError
            Bad parameters or more cells than ``max_cells``.
        """
        X = _check_X(X)
        plan = self._plan(X.shape[1])
        fitted = (
            np.ones(len(y), dtype=bool)
            if validation is None
            else ~np.asarray(validation, dtype=bool)
        )
        if validation is not None:
            self._check_validation(fitted, len(y))
        self.n_features_in_ = int(X.shape[1])
        self.feature_indices_ = plan.indices
        self.features_ = plan.names
        self.edges_ = [
            e if e is not None else quantile_edges(X[fitted, col], b, w[fitted])
            for col, b, e in zip(plan.indices, plan.bins, plan.edges, strict=True)
        ]
        self._set_shape()
        B = self._bins(X).astype(np.float32)
        self.bdt_ = self._bdt().fit(B, y, w, synthetic=synthetic, validation=validation)
        self.table_ = self._tabulate(self.bdt_)
        self.best_iteration_ = int(self.bdt_.best_iteration_)
        self.n_validation_ = int(self.bdt_.n_validation_)
        self.history_ = self.bdt_.history_
        return self

    def _set_shape(self) -> None:
        self.bins_ = tuple(len(e) - 1 for e in self.edges_)
        self.strides_ = tuple(int(math.prod(self.bins_[j + 1 :])) for j in range(len(self.bins_)))

    def _tabulate(self, bdt: Any) -> np.ndarray:
        """The BDT's signal probability on every cell's bin indices, in chunks of cells."""
        n = math.prod(self.bins_)
        table = np.empty(n, dtype=np.float32)
        for start in range(0, n, _CHUNK):
            flat = np.arange(start, min(start + _CHUNK, n))
            B = np.column_stack(np.unravel_index(flat, self.bins_)).astype(np.float32)
            table[start : start + len(flat)] = bdt.predict_proba(B)[:, 1]
        return table

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities from the table, shape (n, 2): one lookup per row."""
        p = self.table_[self.cell_index(X)].astype(np.float64)
        return np.column_stack([1.0 - p, p])

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of the table's probability, shape (n,) (the BDT's margin up to float32 rounding)."""
        p = self.predict_proba(X)[:, 1]
        with np.errstate(divide="ignore"):
            return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)

    def _inner(self) -> Any:
        self._check_fitted()
        if self.bdt_ is None:
            from .bdt import BDTClassifier

            if self._bdt_prefix is None:
                msg = "this BonsaiBDTClassifier was loaded without its BDT; only the table is available"
                raise RuntimeError(msg)
            self.bdt_ = BDTClassifier.load(self._bdt_prefix)
        return self.bdt_

    def shap_values(self, X: np.ndarray) -> tuple[np.ndarray, float]:
        """Exact TreeSHAP of the internal BDT on the cells of ``X``, and the base value (margin).

        Returns values of shape (n, n_used), one column per feature in
        ``features_``: per row they sum, with the base value, to the margin of
        the row's cell. Unused columns of ``X`` have no contribution.
        """
        values, base = self._inner().shap_values(self.bin_indices(X).astype(np.float32))
        return np.asarray(values, dtype=np.float64), float(base)

    # -- persistence: the table as .npy, the grid as JSON, the BDT as xgboost JSON ----
    def to_dict(self) -> dict[str, Any]:
        """The grid and metadata as JSON-serialisable plain types (the table excluded)."""
        self._check_fitted()
        params = self.get_params()
        for k in ("bins", "edges", "features", "feature_names"):
            params[k] = _plain(params[k])
        return {
            "format": _FORMAT,
            "kind": "bbdt",
            "params": params,
            "n_features_in": self.n_features_in_,
            "features": self.features_,
            "feature_indices": self.feature_indices_,
            "edges": [e.tolist() for e in self.edges_],
            "bins": list(self.bins_),
            "shape": list(self.bins_),
            "strides": list(self.strides_),
            "n_cells": int(self.table_.size),
            "best_iteration": self.best_iteration_,
            "history": self.history_,
            "dtype": "<f4",
            "order": "C",
            "bin_rule": "bin = number of inner edges edges[1:-1] <= x (numpy.searchsorted(edges[1:-1], x, side='right'))",
            "score": "signal probability",
        }

    def save(self, prefix: str | os.PathLike[str]) -> list[Path]:
        """Write ``<prefix>.json`` (grid), ``<prefix>.table.npy`` (float32 table) and the BDT
        (``<prefix>.bdt.xgb.json`` + ``<prefix>.bdt.json``, for inspection and SHAP)."""
        from ..io.storage import atomic_path, write_json

        self._check_fitted()
        table_path = self._file(prefix, ".table.npy")
        with atomic_path(table_path, suffix=".npy") as tmp, tmp.open("wb") as fh:
            np.save(fh, self.table_.astype("<f4"), allow_pickle=False)
        files = [table_path]
        files += self._inner().save(self._file(prefix, ".bdt"))
        meta = {**self.to_dict(), "table": table_path.name}
        files.append(write_json(self._file(prefix, ".json"), meta))
        return files

    @classmethod
    def load(cls, prefix: str | os.PathLike[str]) -> BonsaiBDTClassifier:
        """Inverse of :meth:`save`, without pickle; the BDT itself is read only when needed.

        Raises
        ------
        ModelFileError
            A file is missing, or the table does not match the grid.
        """
        meta_path, table_path = cls._file(prefix, ".json"), cls._file(prefix, ".table.npy")
        meta = cls._read_metadata((meta_path, table_path), "bonsai BDT")
        if meta.get("format") != _FORMAT:
            msg = f"{meta_path} does not hold a saved BonsaiBDTClassifier"
            raise ModelFileError(msg)
        obj = cls._from_metadata(meta)
        obj.n_features_in_ = int(meta["n_features_in"])
        obj.feature_indices_ = [int(i) for i in meta["feature_indices"]]
        obj.features_ = list(meta["features"])
        obj.edges_ = [np.asarray(e, dtype=np.float64) for e in meta["edges"]]
        obj._set_shape()
        table = np.load(table_path, allow_pickle=False)
        if table.dtype != np.float32 or table.shape != (math.prod(obj.bins_),):
            msg = f"{table_path} holds a {table.dtype} table of shape {table.shape}; {meta_path} asks for float32 ({math.prod(obj.bins_)},)"
            raise ModelFileError(msg)
        obj.table_ = table
        obj.best_iteration_ = int(meta["best_iteration"])
        obj.history_ = meta.get("history", {})
        obj.bdt_ = None
        obj._bdt_prefix = cls._file(prefix, ".bdt")
        return obj


def _check_X(X: Any, n_features: int | None = None) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        msg = f"X must be a 2D array of shape (n_events, n_features), got shape {arr.shape}"
        raise ValueError(msg)
    if n_features is not None and arr.shape[1] != n_features:
        msg = f"X has {arr.shape[1]} features but the model was fitted on {n_features}"
        raise ValueError(msg)
    return arr


def _plain(value: Any) -> Any:
    """Parameters as JSON types (tuples and numpy numbers from a caller become lists and floats)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
