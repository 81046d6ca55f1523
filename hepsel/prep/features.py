"""Declarative derived features, reusable from Python.

A :class:`FeatureSet` turns chunks of branches into a feature matrix. Each
feature is an expression of hepsel's expression language (see
:mod:`hepsel.config.expressions`) or a named Python function from an analysis module,
optionally followed by a transform (``log``, ``log1p``, ``abs``, ``arccos``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config.expressions import Expression
from ..config.functions import load_function
from ..exceptions import ConfigError, ExpressionError

__all__ = [
    "Feature",
    "FeatureSet",
    "to_flat_numpy",
]

_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "log": np.log,
    "log1p": np.log1p,
    "abs": np.abs,
    "arccos": lambda x: np.arccos(np.clip(x, -1.0, 1.0)),
}


def to_flat_numpy(value: Any, *, what: str) -> np.ndarray:
    """Convert an expression result to a flat floating-point numpy array (None -> NaN).

    Floating-point inputs keep their precision (float32 branches stay float32,
    halving memory and output size); integers and booleans become float64.

    Raises
    ------
    ExpressionError
        If the value is still a per-object collection (it needs a reduction
        such as ``count``, ``sum``, ``max`` or ``leading``).
    """
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value if np.issubdtype(value.dtype, np.floating) else value.astype(np.float64)
    import awkward as ak

    arr = ak.Array(value) if not isinstance(value, ak.Array) else value
    if arr.ndim != 1:
        msg = f"{what} gives a collection per entry; reduce it with count(), sum(), max(), min() or leading(x, k)"
        raise ExpressionError(msg)
    arr = ak.fill_none(arr, np.nan)
    return np.asarray(ak.to_numpy(arr), dtype=np.float64)


@dataclass
class Feature:
    """One feature: an expression or a function, then a transform."""

    name: str
    expr: str | None = None
    function: str | None = None
    inputs: Sequence[str] = ()
    transform: str = "none"
    range: tuple[float, float] | None = None
    label: str | None = None
    _compiled: Expression | None = field(default=None, repr=False)
    _func: Callable[..., Any] | None = field(default=None, repr=False)

    def compile(self, aliases: Mapping[str, str], base_dir: Path, where: str) -> Feature:
        """Parse the expression or import the function (once)."""
        if self.transform not in _TRANSFORMS:
            msg = (
                f"{where}: unknown transform {self.transform!r}; choose from {sorted(_TRANSFORMS)}"
            )
            raise ConfigError(msg)
        if self.expr is not None:
            self._compiled = Expression(self.expr, aliases=aliases, where=where)
        elif self.function is not None:
            try:
                self._func = load_function(self.function, base_dir)
            except ConfigError as err:
                msg = f"{where}: {err}"
                raise ConfigError(msg) from None
        return self

    @property
    def branches(self) -> frozenset[str]:
        """Branches this feature reads."""
        if self._compiled is not None:
            return self._compiled.branches
        return frozenset(self.inputs)

    def compute(self, arrays: Mapping[str, Any]) -> np.ndarray:
        """Evaluate on a chunk; returns a flat floating-point array."""
        if self._compiled is not None:
            raw = self._compiled.evaluate(arrays)
        elif self._func is not None:
            raw = self._func({k: arrays[k] for k in self.inputs})
        else:  # pragma: no cover - compile() always sets one
            msg = f"feature {self.name!r} was not compiled"
            raise RuntimeError(msg)
        values = to_flat_numpy(raw, what=f"feature {self.name!r}")
        with np.errstate(divide="ignore", invalid="ignore"):
            return _TRANSFORMS[self.transform](values)


class FeatureSet:
    """An ordered set of features computed from branches.

    Examples
    --------
    >>> import numpy as np
    >>> fs = FeatureSet([Feature("log_pt", expr="B_PT", transform="log")])
    >>> fs.matrix({"B_PT": np.array([1.0, np.e])}).ravel().tolist()
    [0.0, 1.0]
    """

    def __init__(
        self,
        features: Sequence[Feature],
        *,
        aliases: Mapping[str, str] | None = None,
        base_dir: str | Path = ".",
        where: str = "features",
    ) -> None:
        self.aliases = dict(aliases or {})
        self.base_dir = Path(base_dir)
        self.features = [
            f.compile(self.aliases, self.base_dir, f"{where}[{i}] ({f.name})")
            for i, f in enumerate(features)
        ]

    @classmethod
    def from_config(cls, cfg: Any, sample: str | None = None) -> FeatureSet:
        """Build from an :class:`~hepsel.config.schema.AnalysisConfig`.

        The features are read with the aliases of ``sample`` (default: the signal
        sample's, see :meth:`~hepsel.config.schema.AnalysisConfig.sample_aliases`).
        """
        where = f"{cfg.source or 'config'}: features"
        feats = [Feature(**f.model_dump()) for f in cfg.features]
        return cls(
            feats, aliases=cfg.sample_aliases(sample), base_dir=cfg.analysis_dir, where=where
        )

    @property
    def names(self) -> list[str]:
        """Feature names, in column order."""
        return [f.name for f in self.features]

    @property
    def ranges(self) -> list[tuple[float, float] | None]:
        """Declared physical ranges (None where not declared)."""
        return [f.range for f in self.features]

    @property
    def branches(self) -> frozenset[str]:
        """All branches needed."""
        return frozenset[str]().union(*(f.branches for f in self.features))

    def columns(self, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Feature name -> flat float64 array."""
        return {f.name: f.compute(arrays) for f in self.features}

    def matrix(self, arrays: Mapping[str, Any]) -> np.ndarray:
        """Feature matrix, shape (n_candidates, n_features), float64."""
        cols = [f.compute(arrays) for f in self.features]
        if not cols:
            return np.zeros((0, 0))
        return np.column_stack(cols)

    def to_dict(self) -> dict[str, Any]:
        """Plain description (for saving a selection)."""
        return {
            "aliases": self.aliases,
            "features": [
                {
                    "name": f.name,
                    "expr": f.expr,
                    "function": f.function,
                    "inputs": list(f.inputs),
                    "transform": f.transform,
                    "range": list(f.range) if f.range else None,
                    "label": f.label,
                }
                for f in self.features
            ],
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, base_dir: str | Path = ".", where: str = "features"
    ) -> FeatureSet:
        """Inverse of :meth:`to_dict`."""
        feats = []
        for f in d["features"]:
            g = dict(f)
            if g.get("range") is not None:
                g["range"] = tuple(g["range"])
            feats.append(Feature(**g))
        return cls(feats, aliases=d.get("aliases", {}), base_dir=base_dir, where=where)

    def __repr__(self) -> str:
        return f"FeatureSet({self.names})"
