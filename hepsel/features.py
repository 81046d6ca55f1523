"""Declarative derived features, reusable from Python.

A :class:`FeatureSet` turns chunks of branches into a feature matrix. Each
feature is an expression of hepsel's expression language (see
:mod:`hepsel.expressions`) or a named Python function from an analysis module,
optionally followed by a transform (``log``, ``log1p``, ``abs``, ``arccos``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

import numpy as np

from .exceptions import ConfigError, ExpressionError
from .expressions import Expression

__all__ = ["Feature", "FeatureSet", "check_signature", "load_function", "module_path", "to_flat_numpy"]

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


def module_path(spec: str, base_dir: str | os.PathLike[str]) -> Path:
    """The Python file of ``'module.py:function'``, checked to lie inside ``base_dir``.

    Only ``.py`` files under ``base_dir`` (nested folders allowed, as in
    ``'lib/kinematics.py:f'``) qualify: absolute paths, ``..`` and symbolic
    links that lead out of it are refused, so a config or a saved selection
    can only run code that ships with it.

    Raises
    ------
    ConfigError
        If the spec is malformed or the module lies outside ``base_dir`` or is missing.
    """
    if ":" not in spec:
        msg = f"feature function {spec!r} must look like 'features.py:my_function'"
        raise ConfigError(msg)
    module_file, func_name = spec.rsplit(":", 1)
    if not func_name.isidentifier():
        msg = f"feature function {spec!r}: {func_name!r} is not a Python function name"
        raise ConfigError(msg)
    base = Path(base_dir).resolve()
    rel = PurePath(module_file)
    if rel.is_absolute() or PureWindowsPath(module_file).is_absolute() or rel.suffix != ".py":
        msg = (
            f"feature function {spec!r}: the module must be a relative path to a .py file inside "
            f"{str(base)!r} (e.g. 'features.py:f' or 'lib/features.py:f')"
        )
        raise ConfigError(msg)
    path = (base / rel).resolve()
    if not path.is_relative_to(base):
        msg = (
            f"feature function {spec!r}: module {str(path)!r} lies outside {str(base)!r}; "
            "feature modules must live inside the analysis (or saved selection) directory"
        )
        raise ConfigError(msg)
    if not path.is_file():
        msg = f"feature function {spec!r}: module {str(path)!r} not found"
        raise ConfigError(msg)
    return path


def load_function(spec: str, base_dir: str | os.PathLike[str]) -> Callable[..., Any]:
    """Import ``'module.py:function'`` from a Python file inside ``base_dir`` (an analysis directory).

    See :func:`module_path` for which files qualify.
    """
    path = module_path(spec, base_dir)
    func_name = spec.rsplit(":", 1)[1]
    # one module object per file: two analyses' features.py must not shadow each other
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]
    mod_name = f"hepsel_analysis_{path.stem}_{digest}"
    module = sys.modules.get(mod_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        if loader_spec is None or loader_spec.loader is None:
            msg = f"cannot import {path}"
            raise ConfigError(msg)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[mod_name]
            where = f" (line {err.lineno})" if isinstance(err, SyntaxError) and err.lineno else ""
            msg = f"feature function {spec!r}: importing {path} failed{where}: {type(err).__name__}: {err}"
            raise ConfigError(msg) from err
        except BaseException:
            del sys.modules[mod_name]
            raise
    func = getattr(module, func_name, None)
    if not callable(func):
        msg = f"feature function {spec!r}: {path} has no function {func_name!r}"
        raise ConfigError(msg)
    check_signature(func, spec)
    return func


def check_signature(func: Callable[..., Any], spec: str) -> None:
    """Refuse a feature function that cannot be called with one mapping of its input branches.

    hepsel calls ``func(arrays)``, ``arrays`` mapping each of the feature's
    ``inputs`` to its values; a function written with one argument per
    branch (``def f(Jet_pt, Jet_eta)``) would fail in the middle of prepare.

    Raises
    ------
    ConfigError
        Naming the function, its parameters and the signature expected.
    """
    import inspect

    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins and C functions without a signature: trust them
        return
    try:
        sig.bind({})
    except TypeError:
        msg = (
            f"feature function {spec!r} has the signature {sig}, but it is called with one argument, the mapping "
            f"of its 'inputs' branches: def {spec.rsplit(':', 1)[1]}(arrays), reading arrays['<branch>'] "
            "and returning one value per entry"
        )
        raise ConfigError(msg) from None


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
            msg = f"{where}: unknown transform {self.transform!r}; choose from {sorted(_TRANSFORMS)}"
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
            f.compile(self.aliases, self.base_dir, f"{where}[{i}] ({f.name})") for i, f in enumerate(features)
        ]

    @classmethod
    def from_config(cls, cfg: Any, sample: str | None = None) -> FeatureSet:
        """Build from an :class:`~hepsel.config.AnalysisConfig`.

        The features are read with the aliases of ``sample`` (default: the signal
        sample's, see :meth:`~hepsel.config.AnalysisConfig.sample_aliases`).
        """
        where = f"{cfg.source or 'config'}: features"
        feats = [Feature(**f.model_dump()) for f in cfg.features]
        return cls(feats, aliases=cfg.sample_aliases(sample), base_dir=cfg.analysis_dir, where=where)

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
        out: set[str] = set()
        for f in self.features:
            out |= f.branches
        return frozenset(out)

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
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: str | Path = ".", where: str = "features") -> FeatureSet:
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

