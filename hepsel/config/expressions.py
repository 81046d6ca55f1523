"""Expression language for cuts and features in analysis configs.

Analysis configs (YAML) write cuts and derived features as short expressions
over branch names, for example::

    cuts:
      - "B_PT > 2000 and 0 < B_ETA < 5"
      - "min(H1_IPCHI2, H2_IPCHI2) > 16"
    features:
      - "log(min(H1_IPCHI2, H2_IPCHI2))"
      - "count(Jet_pt[abs(Jet_eta) < 2.4] > 30)"
      - "inv_mass(leading(mu, 0), leading(mu, 1))"

An expression is parsed with :mod:`ast` and only a whitelist of constructs is
accepted; nothing is ever passed to :func:`eval`, so a config file cannot run
arbitrary code. The parsed tree is compiled once, at construction, into nested
closures that call numpy (flat, one value per event) or awkward (jagged, a
variable-length list of objects per event, as in NanoAOD ``Jet_pt``) directly;
the flat numpy path costs about the same as the handwritten numpy.

The language
------------
* Numbers, ``True``, ``False`` and the constants ``pi``, ``nan``, ``inf``.
* Arithmetic ``+ - * / // % **``, unary ``-``/``+``, comparisons (chained
  comparisons such as ``0 < x < 5`` mean ``(0 < x) & (x < 5)``).
* ``and``, ``or``, ``not`` are elementwise (``numpy.logical_and`` etc.):
  Python's short-circuiting has no meaning for arrays. ``&``, ``|`` and ``~``
  are the bitwise operators, elementwise on boolean arrays; as in Python they
  bind tighter than comparisons (``a > 1 & b > 2`` is ``a > (1 & b) > 2``),
  so prefer ``and``/``or`` or parenthesise.
* The functions in :data:`FUNCTIONS`: elementwise math, ``min``/``max`` (with
  two or more arguments elementwise, with one argument the per-event reduction
  of a jagged collection), per-event reductions over the innermost axis
  (``count``, ``sum``, ``mean``, ``any``, ``all``), ``leading``, ``sort`` and
  4-vector helpers built on scikit-hep ``vector``.
* Masking of jagged collections: ``Jet_pt[Jet_pt > 30]``. Integer subscripts
  and slices are not allowed: use ``leading(x, k)`` for the k-th object.
* Attribute access only for these properties of 4-vector values: ``pt``,
  ``eta``, ``phi``, ``mass``, ``m``, ``px``, ``py``, ``pz``, ``E``,
  ``energy``, ``p``, ``rapidity``, ``mt``, ``et``, ``theta``.

Names are resolved in this order: aliases, the constants ``pi``, ``nan``,
``inf``, then branches of the input arrays.

Inputs and outputs
------------------
Inputs are a mapping of branch name to array: a dict of numpy arrays, a dict
of awkward arrays, or an awkward record array as returned by
``uproot.iterate(..., library="ak")``. Jagged branches must be awkward arrays;
uproot's ``library="np"`` object arrays are rejected with a hint.

A flat result is returned as a :class:`numpy.ndarray`: boolean for cuts,
otherwise with the dtype that numpy's promotion rules give (float32 inputs
stay float32; nothing is forced to float64). Missing values of a flat result
(events without a k-th object, for instance) become NaN, or False for a
boolean result, which is what a comparison with NaN gives. Jagged results and
vector results stay awkward arrays. A constant expression (``"True"``) is
broadcast to one value per event.

Floating-point warnings (log of zero, division by zero) are silenced during
evaluation: the resulting infinities and NaNs are data, handled by the
non-finite policy of the stage that consumes the features.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import operator
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from ..exceptions import BranchNotFoundError, ExpressionError, HepselError, UnknownFunctionError

__all__ = ["FUNCTIONS", "Expression", "evaluate"]

# The 4-vector properties that expressions may read as attributes.
_VECTOR_PROPERTIES: frozenset[str] = frozenset(
    {"pt", "eta", "phi", "mass", "m", "px", "py", "pz", "E", "energy", "p",
     "rapidity", "mt", "et", "theta"}
)  # fmt: skip

_CONSTANTS: Mapping[str, float] = types.MappingProxyType(
    {"pi": math.pi, "nan": math.nan, "inf": math.inf}
)

# Folding int ** int at parse time with a huge result would hang the parser
# (``9 ** 9 ** 9``, ``((10 ** 64) ** 64) ** 64``): beyond this exponent, or
# beyond this many bits (float64 ends at 2 ** 1024), the power is taken in
# floating point, and a folded integer that still grows past the bound is
# converted to float (too large: an error).
_MAX_INT_EXPONENT = 64
_MAX_INT_BITS = 1024

# Messages quote at most about this many characters of an expression.
_MAX_QUOTE = 200

_MAX_LISTED_NAMES = 30


# ---------------------------------------------------------------------------
# Compiled nodes and evaluation context
# ---------------------------------------------------------------------------


class _Context:
    """Per-call state: the input arrays and the alias results computed so far."""

    __slots__ = ("_arrays", "_expr", "_fields", "cache")

    def __init__(self, arrays: Any, expr: Expression) -> None:
        self._expr = expr
        self.cache: dict[str, Any] = {}
        if isinstance(arrays, ak.Array):
            self._fields: frozenset[str] | None = frozenset(arrays.fields)
        elif isinstance(arrays, Mapping):
            self._fields = None
        else:
            msg = (
                "arrays must be a mapping of branch name to array or an awkward record "
                f"array, got {type(arrays).__name__}"
            )
            raise TypeError(msg)
        self._arrays = arrays

    def names(self) -> list[str]:
        if self._fields is not None:
            return sorted(self._fields)
        return sorted(str(k) for k in self._arrays)

    def n_events(self) -> int | None:
        if self._fields is not None:
            return len(self._arrays)
        for value in self._arrays.values():
            return len(value)
        return None

    def lookup(self, name: str) -> Any:
        if self._fields is not None:
            if name not in self._fields:
                raise self._expr._missing_branch(name, self.names())
            value = self._arrays[name]
        else:
            try:
                value = self._arrays[name]
            except KeyError:
                raise self._expr._missing_branch(name, self.names()) from None
        return _normalize_input(name, value, self._expr)


_Node = Callable[[_Context], Any]


def _quote(text: str) -> str:
    """``repr`` of ``text`` for a message, shortened to about :data:`_MAX_QUOTE` characters."""
    if len(text) <= _MAX_QUOTE:
        return repr(text)
    head, tail = text[: _MAX_QUOTE * 2 // 3], text[-(_MAX_QUOTE // 4) :]
    return f"{head + ' ... ' + tail!r} ({len(text)} characters)"


def _source(node: ast.AST) -> str:
    """The quoted source of a node, for a message."""
    try:
        text = ast.unparse(node)
    except RecursionError:
        return f"<{type(node).__name__} nested too deeply to show>"
    return _quote(text)


class _Const:
    """A compiled node whose value is known at parse time."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, ctx: _Context) -> Any:
        return self.value


def _constant_values(nodes: list[_Node]) -> list[Any] | None:
    """The values of compiled nodes if all are constants, else None."""
    values = []
    for node in nodes:
        if not isinstance(node, _Const):
            return None
        values.append(node.value)
    return values


@dataclass(frozen=True)
class _Site:
    """Where a run-time error happened: the sub-expression and its context."""

    node: ast.AST
    context: str

    def error(self, problem: str) -> ExpressionError:
        return ExpressionError(f"{problem}; at {_source(self.node)} {self.context}")


def _normalize_input(name: str, value: Any, expr: Expression) -> Any:
    """Give numpy arrays for flat branches and awkward arrays for collections."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            msg = (
                f"branch {name!r} is a numpy object array (a jagged branch read with "
                f"library='np'); read it with library='ak' to use it in expression "
                f"{_quote(expr.text)}{expr._where_suffix()}"
            )
            raise ExpressionError(msg)
        if value.ndim > 1:
            return ak.from_numpy(value, regulararray=True)
        return value
    if isinstance(value, ak.Array):
        layout = value.layout
        # Flat awkward branches (uproot record arrays) take the plain numpy path.
        if (
            isinstance(layout, ak.contents.NumpyArray)
            and layout.data.ndim == 1
            and not layout.parameters
            and value.behavior is None
        ):
            return np.asarray(layout.data)
        return value
    return np.asarray(value)


# ---------------------------------------------------------------------------
# Array helpers
# ---------------------------------------------------------------------------


def _leaf_type(x: ak.Array) -> Any:
    t = x.type.content
    while isinstance(t, ak.types.ListType | ak.types.RegularType | ak.types.OptionType):
        t = t.content
    return t


def _is_bool(x: ak.Array) -> bool:
    t = _leaf_type(x)
    return isinstance(t, ak.types.NumpyType) and t.primitive == "bool"


def _is_record(x: ak.Array) -> bool:
    return isinstance(_leaf_type(x), ak.types.RecordType)


def _is_collection(x: Any) -> bool:
    return isinstance(x, ak.Array) and x.ndim > 1


@functools.cache
def _vector_module() -> Any:
    import vector

    vector.register_awkward()
    return vector


def _is_vector(x: Any) -> bool:
    if not isinstance(x, ak.Array) or not _is_record(x):
        return False
    return isinstance(x, _vector_module().Vector)


def _is_scalar(x: Any) -> bool:
    return isinstance(x, int | float | np.generic)


# ---------------------------------------------------------------------------
# Function implementations: impl(site, *array_args, **literal_args)
# ---------------------------------------------------------------------------


def _require_collection(site: _Site, x: Any, fname: str, hint: str = "") -> ak.Array:
    if not _is_collection(x):
        msg = (
            f"{fname}() reduces the objects of each event and needs a jagged collection "
            f"(such as Jet_pt), but its argument is flat (one value per event){hint}"
        )
        raise site.error(msg)
    return x


def _require_numeric(site: _Site, x: ak.Array, fname: str) -> None:
    if _is_record(x):
        msg = f"{fname}() needs numbers, not vectors; take a property first, e.g. {fname}(v.pt)"
        raise site.error(msg)


def _ufunc(ufunc: np.ufunc) -> Callable[..., Any]:
    def impl(site: _Site, *args: Any) -> Any:
        return ufunc(*args)

    return impl


def _extremum(pairwise: np.ufunc, reducer: Callable[..., Any], fname: str) -> Callable[..., Any]:
    def impl(site: _Site, *args: Any) -> Any:
        if len(args) == 1:
            hint = f"; for the elementwise {fname}imum of several values write {fname}(a, b)"
            x = _require_collection(site, args[0], fname, hint)
            _require_numeric(site, x, fname)
            return ak.fill_none(reducer(x, axis=-1), np.nan)
        out = pairwise(args[0], args[1])
        for arg in args[2:]:
            out = pairwise(out, arg)
        return out

    return impl


def _count(site: _Site, x: Any) -> Any:
    x = _require_collection(site, x, "count")
    if _is_record(x):
        return ak.num(x, axis=-1)
    if _is_bool(x):
        return ak.count_nonzero(x, axis=-1)
    return ak.count(x, axis=-1)


def _reduction(reducer: Callable[..., Any], fname: str, fill: Any = None) -> Callable[..., Any]:
    def impl(site: _Site, x: Any) -> Any:
        x = _require_collection(site, x, fname)
        _require_numeric(site, x, fname)
        out = reducer(x, axis=-1)
        return out if fill is None else ak.fill_none(out, fill)

    return impl


def _leading(site: _Site, x: Any, *, k: int, default: float | None) -> Any:
    x = _require_collection(site, x, "leading")
    picked = ak.pad_none(x, k + 1, axis=-1)[..., k]
    if _is_record(x):
        if default is not None:
            msg = (
                "leading() of a vector collection takes no default: events with fewer "
                "objects give missing vectors, whose properties become NaN"
            )
            raise site.error(msg)
        return picked
    return ak.fill_none(picked, np.nan if default is None else default)


def _sort(site: _Site, x: Any, *, ascending: bool) -> Any:
    x = _require_collection(site, x, "sort")
    _require_numeric(site, x, "sort")
    return ak.sort(x, axis=-1, ascending=ascending)


def _where(site: _Site, cond: Any, a: Any, b: Any) -> Any:
    if isinstance(cond, ak.Array) or isinstance(a, ak.Array) or isinstance(b, ak.Array):
        return ak.where(cond, a, b)
    return np.where(cond, a, b)


def _clip(site: _Site, x: Any, lo: Any, hi: Any) -> Any:
    return np.minimum(np.maximum(x, lo), hi)


def _vector_constructor(fields: tuple[str, ...], with_name: str) -> Callable[..., Any]:
    def impl(site: _Site, *args: Any) -> Any:
        _vector_module()
        if all(_is_scalar(a) for a in args):
            msg = "a vector needs at least one array argument, not only numbers"
            raise site.error(msg)
        for field, arg in zip(fields, args, strict=True):
            if isinstance(arg, ak.Array) and _is_record(arg):
                msg = f"argument {field!r} must be numbers, not records or vectors"
                raise site.error(msg)
        # A literal mass such as 105.66 (or 0) is broadcast as float64, not int.
        arrays = ak.broadcast_arrays(*(float(a) if _is_scalar(a) else a for a in args))
        return ak.zip(dict(zip(fields, arrays, strict=True)), with_name=with_name)

    return impl


def _require_vectors(site: _Site, args: tuple[Any, ...], fname: str) -> None:
    for arg in args:
        if not _is_vector(arg):
            msg = (
                f"{fname}() needs vector arguments, built with p4_ptetaphim(...), "
                "p4_xyzt(...) and the like"
            )
            raise site.error(msg)


def _inv_mass(site: _Site, *args: Any) -> Any:
    _require_vectors(site, args, "inv_mass")
    total = args[0]
    for arg in args[1:]:
        total = total + arg
    return total.mass


def _delta_r(site: _Site, a: Any, b: Any) -> Any:
    _require_vectors(site, (a, b), "delta_r")
    return a.deltaR(b)


def _delta_phi(site: _Site, a: Any, b: Any) -> Any:
    _require_vectors(site, (a, b), "delta_phi")
    return a.deltaphi(b)


@dataclass(frozen=True)
class _Literal:
    """A parameter that must be a constant known at parse time."""

    name: str
    default: Any
    kind: str  # "index" (int >= 0), "number" or "bool"


@dataclass(frozen=True)
class _Function:
    signature: str
    description: str
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None
    literals: tuple[_Literal, ...] = ()
    # Pure elementwise functions of constants are computed at parse time.
    foldable: bool = False


def _math(name: str, ufunc: np.ufunc, what: str, nargs: int = 1) -> _Function:
    params = "x" if nargs == 1 else "y, x"
    return _Function(f"{name}({params})", what, _ufunc(ufunc), nargs, nargs, foldable=True)


_P4_4 = "flat or jagged; returns a 4-vector (collection)"
#: The vector constructors: signature -> description.
_VECTORS = {
    "p4_ptetaphim(pt, eta, phi, mass)": f"4-momentum from pT, pseudorapidity, azimuth (rad) and mass; {_P4_4}",
    "p4_ptetaphie(pt, eta, phi, E)": f"4-momentum from pT, pseudorapidity, azimuth (rad) and energy; {_P4_4}",
    "p4_xyzt(px, py, pz, E)": f"4-momentum from Cartesian momentum and energy; {_P4_4}",
    "p4_xyzm(px, py, pz, mass)": f"4-momentum from Cartesian momentum and mass; {_P4_4}",
    "p3_xyz(px, py, pz)": "3-momentum from Cartesian components; flat or jagged",
}


def _vector(signature: str, what: str) -> _Function:
    """The constructor ``name(params...)`` of a vector whose fields are its parameters.

    A 4-vector from (pt, eta, phi) takes its energy as ``E`` and stores it as ``energy``.
    """
    params = tuple(signature[signature.index("(") + 1 : -1].split(", "))
    fields = ("pt", "eta", "phi", "energy") if params == ("pt", "eta", "phi", "E") else params
    n = len(params)
    return _Function(signature, what, _vector_constructor(fields, f"Momentum{n}D"), n, n)


_FUNCTION_TABLE: dict[str, _Function] = {
    "abs": _math("abs", np.absolute, "absolute value"),
    "sqrt": _math("sqrt", np.sqrt, "square root"),
    "log": _math("log", np.log, "natural logarithm"),
    "log10": _math("log10", np.log10, "base-10 logarithm"),
    "log1p": _math("log1p", np.log1p, "log(1 + x), accurate for small x"),
    "exp": _math("exp", np.exp, "exponential"),
    "sin": _math("sin", np.sin, "sine (radians)"),
    "cos": _math("cos", np.cos, "cosine (radians)"),
    "tan": _math("tan", np.tan, "tangent (radians)"),
    "arcsin": _math("arcsin", np.arcsin, "inverse sine (radians)"),
    "arccos": _math("arccos", np.arccos, "inverse cosine (radians)"),
    "arctan": _math("arctan", np.arctan, "inverse tangent (radians)"),
    "arctan2": _math("arctan2", np.arctan2, "angle of (x, y) in radians, in [-pi, pi]", 2),
    "atan2": _math("atan2", np.arctan2, "same as arctan2", 2),
    "sinh": _math("sinh", np.sinh, "hyperbolic sine"),
    "cosh": _math("cosh", np.cosh, "hyperbolic cosine"),
    "tanh": _math("tanh", np.tanh, "hyperbolic tangent"),
    "arccosh": _math("arccosh", np.arccosh, "inverse hyperbolic cosine"),
    "floor": _math("floor", np.floor, "round down"),
    "ceil": _math("ceil", np.ceil, "round up"),
    "sign": _math("sign", np.sign, "-1, 0 or +1"),
    "isfinite": _math("isfinite", np.isfinite, "True where x is neither NaN nor infinite"),
    "clip": _Function("clip(x, lo, hi)", "x limited to [lo, hi]", _clip, 3, 3, foldable=True),
    "where": _Function("where(cond, a, b)", "a where cond is True, else b", _where, 3, 3),
    "minimum": _Function(
        "minimum(a, b)", "elementwise minimum", _ufunc(np.minimum), 2, 2, foldable=True
    ),
    "maximum": _Function(
        "maximum(a, b)", "elementwise maximum", _ufunc(np.maximum), 2, 2, foldable=True
    ),
    "min": _Function(
        "min(a, b, ...) or min(x)",
        "elementwise minimum of two or more values; with one jagged argument the "
        "smallest object of each event (NaN if none)",
        _extremum(np.minimum, ak.min, "min"),
        1,
        None,
    ),
    "max": _Function(
        "max(a, b, ...) or max(x)",
        "elementwise maximum of two or more values; with one jagged argument the "
        "largest object of each event (NaN if none)",
        _extremum(np.maximum, ak.max, "max"),
        1,
        None,
    ),
    "count": _Function(
        "count(x)",
        "number of objects in each event; for a boolean mask the number of True, so "
        "count(Jet_pt > 30) is the number of jets above 30",
        _count,
        1,
        1,
    ),
    "sum": _Function(
        "sum(x)", "sum over the objects of each event (0 if none)", _reduction(ak.sum, "sum"), 1, 1
    ),  # fmt: skip
    "mean": _Function(
        "mean(x)",
        "mean over the objects of each event (NaN if none)",
        _reduction(ak.mean, "mean", np.nan),
        1,
        1,
    ),  # fmt: skip
    "any": _Function(
        "any(x)",
        "True if any object of the event is True (False if none)",
        _reduction(ak.any, "any"),
        1,
        1,
    ),  # fmt: skip
    "all": _Function(
        "all(x)",
        "True if all objects of the event are True (True if none)",
        _reduction(ak.all, "all"),
        1,
        1,
    ),  # fmt: skip
    "leading": _Function(
        "leading(x, k=0, default=nan)",
        "the k-th object (0-based, in stored order) of each event, or default if the "
        "event has fewer; k and default must be literal numbers; works on vector "
        "collections (missing vectors give NaN properties)",
        _leading,
        1,
        1,
        (_Literal("k", 0, "index"), _Literal("default", None, "number")),
    ),
    "sort": _Function(
        "sort(x, ascending=False)",
        "the objects of each event sorted by value (descending unless ascending=True)",
        _sort,
        1,
        1,
        (_Literal("ascending", False, "bool"),),
    ),
    **{sig.split("(")[0]: _vector(sig, what) for sig, what in _VECTORS.items()},
    "inv_mass": _Function(
        "inv_mass(a, b, ...)",
        "invariant mass of the sum of two or more 4-vectors",
        _inv_mass,
        2,
        None,
    ),  # fmt: skip
    "delta_r": _Function(
        "delta_r(a, b)",
        "sqrt(delta_eta**2 + delta_phi**2) between two vectors",
        _delta_r,
        2,
        2,
    ),  # fmt: skip
    "delta_phi": _Function(
        "delta_phi(a, b)",
        "azimuthal angle of a minus that of b, in [-pi, pi)",
        _delta_phi,
        2,
        2,
    ),  # fmt: skip
}

#: The functions an expression may call: name -> "signature: description".
FUNCTIONS: Mapping[str, str] = types.MappingProxyType(
    {name: f"{f.signature}: {f.description}" for name, f in sorted(_FUNCTION_TABLE.items())}
)


# ---------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------


def _pow(a: Any, b: Any) -> Any:
    if (
        isinstance(a, int)
        and isinstance(b, int)
        and not isinstance(b, bool)
        and (abs(b) > _MAX_INT_EXPONENT or abs(a).bit_length() * abs(b) > _MAX_INT_BITS)
    ):
        return float(a) ** b
    return a**b


_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}

_FORBIDDEN_BINOPS: dict[type[ast.operator], str] = {
    ast.BitXor: "operator '^' is not allowed (write ** for a power)",
    ast.LShift: "operator '<<' is not allowed",
    ast.RShift: "operator '>>' is not allowed",
    ast.MatMult: "operator '@' is not allowed",
}

_UNARYOPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: np.logical_not,
    ast.Invert: operator.invert,
}

_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}

_FORBIDDEN_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}

_FORBIDDEN_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.List: "list literal",
    ast.Tuple: "tuple",
    ast.Set: "set literal",
    ast.Dict: "dict literal",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.Starred: "argument unpacking",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_HINTS: dict[type[ast.AST], str] = {
    ast.IfExp: "; write where(cond, a, b) instead",
}


# ---------------------------------------------------------------------------
# Compiler
# ---------------------------------------------------------------------------


class _Compiler:
    """Turn the AST of an expression (and of its aliases) into closures."""

    def __init__(self, text: str, aliases: Mapping[str, str], where: str) -> None:
        self.text = text
        self.aliases = aliases
        self.where = where
        self.branches: set[str] = set()
        self._stack: list[tuple[str, str]] = []
        self._alias_nodes: dict[str, _Node] = {}

    # -- messages -----------------------------------------------------------

    def context(self) -> str:
        where = f" ({self.where})" if self.where else ""
        if self._stack:
            name, text = self._stack[-1]
            return (
                f"in alias {name!r} = {_quote(text)} used by expression {_quote(self.text)}{where}"
            )
        return f"in expression {_quote(self.text)}{where}"

    def error(self, problem: str) -> ExpressionError:
        return ExpressionError(f"{problem} {self.context()}")

    # -- entry points -------------------------------------------------------

    def compile_text(self, text: str) -> _Node:
        stripped = text.strip()
        if not stripped:
            msg = "empty expression"
            raise self.error(msg)
        try:
            tree = ast.parse(stripped, mode="eval")
        except SyntaxError as err:
            raise ExpressionError(self._syntax_message(stripped, err)) from None
        except (RecursionError, MemoryError):
            msg = "expression is too long or nested too deeply to parse; split it into aliases"
            raise self.error(msg) from None
        except ValueError as err:
            msg = f"cannot parse ({err})"
            raise self.error(msg) from None
        try:
            return self.compile(tree.body)
        except RecursionError:
            msg = "expression is nested too deeply; split it into aliases"
            raise self.error(msg) from None

    def _syntax_message(self, text: str, err: SyntaxError) -> str:
        lines = text.splitlines() or [text]
        lineno = min(max(err.lineno or 1, 1), len(lines))
        line = lines[lineno - 1]
        # Offset 0 (or none) means the parser ran off the end of the text.
        offset = min(err.offset or len(line) + 1, len(line) + 1)
        width = 1
        if err.end_offset is not None and err.end_lineno in (None, err.lineno):
            width = max(min(err.end_offset, len(line) + 1) - offset, 1)
        if len(line) > _MAX_QUOTE:
            # show a window of a long line around the error
            start = max(0, min(offset - 1 - _MAX_QUOTE // 2, len(line) - _MAX_QUOTE))
            stop = start + _MAX_QUOTE
            prefix = "... " if start else ""
            line = prefix + line[start:stop] + (" ..." if stop < len(line) else "")
            offset_shown = offset - start + len(prefix)
            width = min(width, _MAX_QUOTE)
        else:
            offset_shown = offset
        caret = " " * (offset_shown - 1) + "^" * width
        position = f"line {lineno}, column {offset}" if len(lines) > 1 else f"column {offset}"
        detail = "" if err.msg == "invalid syntax" else f" ({err.msg})"
        return f"invalid syntax{detail} at {position} {self.context()}:\n    {line}\n    {caret}"

    def compile(self, node: ast.AST) -> _Node:
        method = getattr(self, f"_compile_{type(node).__name__}", None)
        if method is not None:
            result: _Node = method(node)
            return result
        what = _FORBIDDEN_NODES.get(type(node), f"{type(node).__name__} construct")
        hint = _HINTS.get(type(node), "")
        msg = f"{what} {_source(node)} is not allowed {self.context()}{hint}"
        raise ExpressionError(msg)

    # -- helpers ------------------------------------------------------------

    def _site(self, node: ast.AST) -> _Site:
        return _Site(node, self.context())

    def _fold(self, node: ast.AST, fn: Callable[..., Any], *values: Any) -> _Const:
        try:
            with np.errstate(all="ignore"):
                out = fn(*values)
        except (ArithmeticError, ValueError, TypeError) as err:
            msg = f"cannot compute constant {_source(node)} ({type(err).__name__}: {err})"
            raise self.error(msg) from None
        if isinstance(out, np.generic):
            out = out.item()
        if isinstance(out, int) and not isinstance(out, bool) and out.bit_length() > _MAX_INT_BITS:
            try:
                out = float(out)
            except OverflowError:
                msg = f"constant {_source(node)} is too large (beyond the floating-point range)"
                raise self.error(msg) from None
        if isinstance(out, complex):
            msg = f"constant {_source(node)} is a complex number"
            raise self.error(msg)
        return _Const(out)

    # -- leaves -------------------------------------------------------------

    def _compile_Constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool | int | float):
            return _Const(value)
        if isinstance(value, str):
            problem = f"string constant {_quote(value)} is not allowed"
        elif value is None:
            problem = "None is not allowed"
        elif value is Ellipsis:
            problem = "'...' is not allowed"
        else:
            problem = f"{type(value).__name__} constant {_source(node)} is not allowed"
        raise self.error(problem)

    def _compile_Name(self, node: ast.Name) -> _Node:
        name = node.id
        if name in self.aliases:
            return self._compile_alias(name)
        if name in _CONSTANTS:
            return _Const(_CONSTANTS[name])
        if name in _FUNCTION_TABLE:
            msg = f"function {name!r} must be called, as in {name}(x)"
            raise self.error(msg)
        self.branches.add(name)

        def lookup(ctx: _Context) -> Any:
            return ctx.lookup(name)

        return lookup

    def _compile_alias(self, name: str) -> _Node:
        if name in self._alias_nodes:
            return self._alias_nodes[name]
        chain = [n for n, _ in self._stack]
        if name in chain:
            cycle = " -> ".join([*chain[chain.index(name) :], name])
            msg = f"aliases refer to each other in a cycle: {cycle}"
            raise self.error(msg)
        text = self.aliases[name]
        self._stack.append((name, text))
        try:
            inner = self.compile_text(text)
        finally:
            self._stack.pop()
        if isinstance(inner, _Const):
            self._alias_nodes[name] = inner
            return inner

        # An alias used several times in one expression is computed once per call.
        def cached(ctx: _Context) -> Any:
            cache = ctx.cache
            if name in cache:
                return cache[name]
            value = cache[name] = inner(ctx)
            return value

        self._alias_nodes[name] = cached
        return cached

    # -- operators ----------------------------------------------------------

    def _compile_BinOp(self, node: ast.BinOp) -> _Node:
        # ``a + b + c + ...`` parses as a left-leaning tree as deep as the sum is
        # long: walk it in a loop, so that long sums neither exhaust the recursion
        # limit here nor when they are evaluated.
        chain: list[ast.BinOp] = []
        head: ast.expr = node
        while isinstance(head, ast.BinOp):
            if type(head.op) in _FORBIDDEN_BINOPS:
                raise self.error(_FORBIDDEN_BINOPS[type(head.op)])
            chain.append(head)
            head = head.left
        first = self.compile(head)
        steps: list[tuple[Callable[[Any, Any], Any], _Node]] = []
        for binop in reversed(chain):
            op = _BINOPS[type(binop.op)]
            right = self.compile(binop.right)
            if not steps and isinstance(first, _Const) and isinstance(right, _Const):
                first = self._fold(binop, op, first.value, right.value)
            else:
                steps.append((op, right))
        if not steps:
            return first
        if len(steps) == 1:
            op, right = steps[0]
            return lambda ctx: op(first(ctx), right(ctx))

        def chained(ctx: _Context) -> Any:
            value = first(ctx)
            for op, right in steps:
                value = op(value, right(ctx))
            return value

        return chained

    def _compile_UnaryOp(self, node: ast.UnaryOp) -> _Node:
        op = _UNARYOPS[type(node.op)]
        operand = self.compile(node.operand)
        if isinstance(operand, _Const):
            return self._fold(node, op, operand.value)
        return lambda ctx: op(operand(ctx))

    def _compile_BoolOp(self, node: ast.BoolOp) -> _Node:
        # Python's `and`/`or` would call bool() on a whole array; elementwise instead.
        op = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        values = [self.compile(v) for v in node.values]
        constants = _constant_values(values)
        if constants is not None:
            return self._fold(node, functools.reduce, op, constants)
        first, rest = values[0], values[1:]

        def boolop(ctx: _Context) -> Any:
            out = first(ctx)
            for value in rest:
                out = op(out, value(ctx))
            return out

        return boolop

    def _compile_Compare(self, node: ast.Compare) -> _Node:
        ops = []
        for cmpop in node.ops:
            if type(cmpop) in _FORBIDDEN_CMPOPS:
                msg = f"operator {_FORBIDDEN_CMPOPS[type(cmpop)]!r} is not allowed"
                raise self.error(msg)
            ops.append(_CMPOPS[type(cmpop)])
        operands = [self.compile(node.left), *(self.compile(c) for c in node.comparators)]
        constants = _constant_values(operands)
        if constants is not None:
            return self._fold(node, _chain_compare, ops, constants)
        if len(ops) == 1:
            op, left, right = ops[0], operands[0], operands[1]
            return lambda ctx: op(left(ctx), right(ctx))

        def compare(ctx: _Context) -> Any:
            return _chain_compare(ops, [o(ctx) for o in operands])

        return compare

    # -- calls, subscripts, attributes --------------------------------------

    def _compile_Call(self, node: ast.Call) -> _Node:
        if isinstance(node.func, ast.Attribute):
            msg = (
                f"method call {_source(node)} is not allowed; call functions by name, as in sqrt(x)"
            )
            raise self.error(msg)
        if not isinstance(node.func, ast.Name):
            msg = f"calling {_source(node.func)} is not allowed"
            raise self.error(msg)
        name = node.func.id
        func = _FUNCTION_TABLE.get(name)
        if func is None:
            raise self._unknown_function(name)
        literal_values = self._literal_arguments(name, func, node)
        n_array = min(
            len(node.args), func.max_args if func.max_args is not None else len(node.args)
        )
        if n_array < func.min_args:
            plural = "s" if func.min_args > 1 else ""
            msg = (
                f"{name}() needs at least {func.min_args} argument{plural}, as in {func.signature}"
            )
            raise self.error(msg)
        args = [self.compile(a) for a in node.args[:n_array]]
        site = self._site(node)
        impl = func.impl
        constants = _constant_values(args) if func.foldable else None
        if constants is not None:
            return self._fold(node, impl, site, *constants)
        if not literal_values and len(args) == 1:
            (arg,) = args
            return lambda ctx: impl(site, arg(ctx))
        if not literal_values and len(args) == 2:
            a0, a1 = args
            return lambda ctx: impl(site, a0(ctx), a1(ctx))

        def call(ctx: _Context) -> Any:
            return impl(site, *[a(ctx) for a in args], **literal_values)

        return call

    def _literal_arguments(self, name: str, func: _Function, node: ast.Call) -> dict[str, Any]:
        """Check the arity and resolve the parse-time (literal) parameters."""
        n_pos = len(node.args)
        max_pos = None if func.max_args is None else func.max_args + len(func.literals)
        if max_pos is not None and n_pos > max_pos:
            msg = f"{name}() takes at most {max_pos} arguments, got {n_pos}; it is {func.signature}"
            raise self.error(msg)
        nodes: dict[str, ast.expr] = {}
        if func.max_args is not None:
            for lit, arg in zip(func.literals, node.args[func.max_args :], strict=False):
                nodes[lit.name] = arg
        allowed = {lit.name for lit in func.literals}
        for kw in node.keywords:
            if kw.arg is None:
                msg = f"keyword unpacking '**' in {_source(node)} is not allowed"
                raise self.error(msg)
            if kw.arg not in allowed:
                if allowed:
                    known = ", ".join(lit.name for lit in func.literals)
                    msg = f"{name}() has no keyword argument {kw.arg!r} (it takes {known}); it is {func.signature}"
                else:
                    msg = f"{name}() takes no keyword arguments (got {kw.arg!r}); it is {func.signature}"
                raise self.error(msg)
            if kw.arg in nodes:
                msg = f"{name}() got two values for argument {kw.arg!r}"
                raise self.error(msg)
            nodes[kw.arg] = kw.value
        return {
            lit.name: self._literal(name, lit, nodes[lit.name])
            if lit.name in nodes
            else lit.default
            for lit in func.literals
        }

    def _literal(self, fname: str, lit: _Literal, node: ast.expr) -> Any:
        expected = {
            "index": "a literal non-negative integer such as 0 or 1",
            "number": "a literal number such as 0, -1 or nan",
            "bool": "True or False",
        }[lit.kind]
        msg = f"argument {lit.name!r} of {fname}() must be {expected}, got {_source(node)}"
        try:
            compiled = self.compile(node)
        except ExpressionError:
            raise self.error(msg) from None
        if not isinstance(compiled, _Const):
            raise self.error(msg)
        value = compiled.value
        is_bool = isinstance(value, bool)
        if lit.kind == "index" and isinstance(value, int) and not is_bool and value >= 0:
            return value
        if lit.kind == "number" and isinstance(value, int | float) and not is_bool:
            return float(value)
        if lit.kind == "bool" and is_bool:
            return value
        raise self.error(msg)

    def _unknown_function(self, name: str) -> UnknownFunctionError:
        close = difflib.get_close_matches(name, list(_FUNCTION_TABLE), n=3, cutoff=0.6)
        available = ", ".join(sorted(_FUNCTION_TABLE))
        return UnknownFunctionError(
            f"unknown function {name!r} {self.context()}.{_did_you_mean(close)} "
            f"Available functions: {available}."
        )

    def _compile_Subscript(self, node: ast.Subscript) -> _Node:
        index = node.slice
        source = _source(node)
        if isinstance(index, ast.Slice):
            msg = f"slice {source} is not allowed; mask with a condition, as in x[x > 0]"
            raise self.error(msg)
        if isinstance(index, ast.Tuple):
            msg = f"multi-dimensional subscript {source} is not allowed"
            raise self.error(msg)
        value = self.compile(node.value)
        mask = self.compile(index)
        if isinstance(mask, _Const):
            if isinstance(mask.value, int) and not isinstance(mask.value, bool):
                base = ast.unparse(node.value)
                msg = (
                    f"integer subscript {source} is not allowed; write leading({base}, "
                    f"{mask.value}) for the object with that index in each event"
                )
                raise self.error(msg)
            msg = f"subscript {source} must be a per-object boolean mask such as x[x > 0]"
            raise self.error(msg)
        site = self._site(node)

        def subscript(ctx: _Context) -> Any:
            x = value(ctx)
            m = mask(ctx)
            if not _is_collection(x):
                msg = (
                    "masking selects objects within each event and needs a jagged "
                    "collection, but this value is flat (one per event), and masking it "
                    "would drop events; write where(cond, x, default) instead"
                )
                raise site.error(msg)
            if not (_is_collection(m) and _is_bool(m)):
                msg = (
                    "the subscript must be a per-object boolean mask with the same "
                    "structure, such as Jet_pt[Jet_pt > 30]"
                )
                raise site.error(msg)
            return x[m]

        return subscript

    def _compile_Attribute(self, node: ast.Attribute) -> _Node:
        attr = node.attr
        if attr not in _VECTOR_PROPERTIES:
            allowed = ", ".join(sorted(_VECTOR_PROPERTIES, key=str.lower))
            msg = (
                f"attribute access '.{attr}' is not allowed {self.context()}; only vector "
                f"properties may be read: {allowed}"
            )
            raise ExpressionError(msg)
        value = self.compile(node.value)
        site = self._site(node)

        def attribute(ctx: _Context) -> Any:
            v = value(ctx)
            if not _is_vector(v):
                msg = (
                    f"property '.{attr}' needs a vector value, built with "
                    "p4_ptetaphim(...), p4_xyzt(...) and the like"
                )
                raise site.error(msg)
            return getattr(v, attr)

        return attribute


def _did_you_mean(close: list[str]) -> str:
    if not close:
        return ""
    quoted = [repr(c) for c in close]
    if len(quoted) == 1:
        return f" Did you mean {quoted[0]}?"
    return f" Did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?"


def _chain_compare(ops: list[Callable[[Any, Any], Any]], values: list[Any]) -> Any:
    out = ops[0](values[0], values[1])
    for i in range(1, len(ops)):
        out = np.logical_and(out, ops[i](values[i], values[i + 1]))
    return out


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _as_text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    # YAML turns `mass_mu: 105.66` into a float; it is still a valid expression.
    if isinstance(value, int | float):
        return repr(value)
    msg = f"{what} must be a string, got {type(value).__name__}: {value!r}"
    raise TypeError(msg)


class Expression:
    """A parsed, compiled cut or feature expression.

    Parameters
    ----------
    text : str
        The expression, for example ``"log(min(H1_IPCHI2, H2_IPCHI2)) + B_PT / 1000"``.
        See the module docstring for the language and :data:`FUNCTIONS` for the
        functions.
    aliases : mapping of str to str, optional
        Names that stand for other expressions, expanded recursively (an alias
        may use other aliases; cycles are an error). Aliases take precedence
        over branches of the same name.
    where : str, optional
        Location shown in error messages, e.g. ``"analyses/x/config.yaml: features[3]"``.

    Raises
    ------
    ExpressionError
        If the text (or an alias it uses) does not parse, uses a forbidden
        construct, or calls a function with wrong arguments.
    UnknownFunctionError
        If it calls a function that is not in :data:`FUNCTIONS`.

    Examples
    --------
    >>> import numpy as np
    >>> expr = Expression("B_PT > 2000 and 0 < B_ETA < 5")
    >>> sorted(expr.branches)
    ['B_ETA', 'B_PT']
    >>> expr.evaluate({"B_PT": np.array([1500.0, 2500.0]), "B_ETA": np.array([3.0, 3.0])})
    array([False,  True])
    """

    def __init__(
        self,
        text: str,
        *,
        aliases: Mapping[str, str] | None = None,
        where: str = "",
    ) -> None:
        self.text: str = _as_text(text, "an expression")
        self.where: str = where
        self._aliases: dict[str, str] = {
            str(name): _as_text(value, f"alias {name!r}") for name, value in (aliases or {}).items()
        }
        compiler = _Compiler(self.text, self._aliases, where)
        self._root: _Node = compiler.compile_text(self.text)
        self._branches = frozenset(compiler.branches)

    @property
    def branches(self) -> frozenset[str]:
        """The input branch names the expression reads, after alias expansion."""
        return self._branches

    def evaluate(self, arrays: Mapping[str, Any] | ak.Array) -> np.ndarray | ak.Array:
        """Evaluate the expression on arrays of events.

        Parameters
        ----------
        arrays : mapping of str to array, or awkward record array
            Branch name -> array of shape ``(n_events,)`` (numpy or awkward) or
            ``(n_events, var)`` (awkward, jagged). An ``ak.Array`` of records,
            as from ``uproot.iterate(..., library="ak")``, also works.

        Returns
        -------
        numpy.ndarray or awkward.Array
            Shape ``(n_events,)`` as numpy for a flat result (missing values
            as NaN, or False for booleans); an awkward array for a jagged or
            vector result.

        Raises
        ------
        BranchNotFoundError
            If a branch is missing; the message lists close matches.
        ExpressionError
            If the arrays do not fit the expression (a reduction of a flat
            branch, arrays of different lengths, ...).
        """
        ctx = _Context(arrays, self)
        try:
            with np.errstate(all="ignore"):
                return self._finalize(self._root(ctx), ctx)
        except HepselError:
            raise
        except (TypeError, ValueError, IndexError, ArithmeticError) as err:
            detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            msg = f"cannot evaluate expression {_quote(self.text)}{self._where_suffix()}: {detail}"
            raise ExpressionError(msg) from err

    @staticmethod
    def _finalize(out: Any, ctx: _Context) -> np.ndarray | ak.Array:
        if isinstance(out, ak.Array):
            if out.ndim != 1 or _is_record(out):
                return out
            if isinstance(out.type.content, ak.types.OptionType):
                out = ak.fill_none(out, False if _is_bool(out) else np.nan)
            return ak.to_numpy(out)
        if isinstance(out, np.ndarray) and out.ndim > 0:
            return out
        n_events = ctx.n_events()
        if n_events is None:
            return np.asarray(out)
        return np.full(n_events, out)

    def _where_suffix(self) -> str:
        return f" ({self.where})" if self.where else ""

    def _missing_branch(self, name: str, available: list[str]) -> BranchNotFoundError:
        candidates = [*available, *self._aliases]
        by_lower: dict[str, str] = {}
        for candidate in candidates:
            by_lower.setdefault(candidate.lower(), candidate)
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.6)
        suggestion = _did_you_mean([by_lower[c] for c in close])
        listed = ", ".join(available[:_MAX_LISTED_NAMES])
        if len(available) > _MAX_LISTED_NAMES:
            listed += f", ... ({len(available)} in total)"
        return BranchNotFoundError(
            f"branch {name!r} not found for expression {_quote(self.text)}{self._where_suffix()}."
            f"{suggestion} Available: {listed or 'none'}."
        )

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The compiled closures cannot be pickled; rebuild from the text instead.
        return (_rebuild, (self.text, self._aliases, self.where))


def _rebuild(text: str, aliases: dict[str, str], where: str) -> Expression:
    return Expression(text, aliases=aliases, where=where)


def evaluate(
    text: str,
    arrays: Mapping[str, Any] | ak.Array,
    *,
    aliases: Mapping[str, str] | None = None,
) -> np.ndarray | ak.Array:
    """Parse and evaluate an expression in one go.

    Parameters
    ----------
    text : str
        The expression.
    arrays : mapping of str to array, or awkward record array
        The events, as for :meth:`Expression.evaluate`.
    aliases : mapping of str to str, optional
        Alias name -> expression text.

    Returns
    -------
    numpy.ndarray or awkward.Array
        As :meth:`Expression.evaluate`.

    Examples
    --------
    >>> import numpy as np
    >>> evaluate("sqrt(px**2 + py**2)", {"px": np.array([3.0]), "py": np.array([4.0])})
    array([5.])
    """
    return Expression(text, aliases=aliases).evaluate(arrays)
