"""Deployment exports of a trained selection: one ONNX graph per model and fold.

Every graph has one input, ``features`` (float64 by default, as hepsel
computes it, or float32; shape ``(n, n_features)``: the feature vector after
the features' expressions and transforms, before any scaling, columns in the
order of the side file) and one output, ``score`` (float32, shape ``(n,)``):
the signal probability ``predict_proba(X)[:, 1]`` of that fold model, the
score hepsel computes. What each kind becomes:

``bdt`` (also the base of ``gan_augmented``)
    xgboost's trees up to the early-stopping round hepsel predicts with,
    converted by onnxmltools (``TreeEnsembleClassifier``), plus the column of
    the signal probability. The same trees are also written in xgboost's own
    JSON format (``fold<i>.xgb.json``), which stays the native format.
``mlp``
    the input scaling (standard, or the quantile map onto a normal
    distribution, with scikit-learn's interpolation, ties and bounds), in
    float64, then the network in float32 and the logistic function.
``lipschitz_mlp``
    the standardisation in float64, then, in float32, the linear layers with
    their weights already normalised (the weight parametrisation of
    ``monotonicnetworks`` is evaluated once and baked in as constants), the
    GroupSort activations (min and max of each pair of units), the
    monotone term ``lipschitz_const * z . m`` and the logistic function.
``fisher``
    ``sigmoid(x @ coef + intercept)`` in float64.
``autoencoder``
    the input scaling as for ``mlp``, the encoder and decoder in float32,
    the squared reconstruction errors divided by the error scales and
    averaged in float64, then ``s / (s + score_reference_)``.

A JSON side file, ``export.json``, lists the features in input order with
their definitions, the preselection, the fold rule and each model's files and
working points (score thresholds). Inputs must be finite, as for
:meth:`hepsel.Selection.score`.

>>> from hepsel.deploy.export import export_onnx
>>> export_onnx("results/topo2body/selection", "deploy")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..exceptions import ExportError
from ..io.storage import read_json, write_json
from .selection import Selection, check_model_names

if TYPE_CHECKING:
    import onnx

__all__ = [
    "FEATURE_PRECISION",
    "INPUT_NAME",
    "ONNX_KINDS",
    "OPSET",
    "OUTPUT_NAME",
    "export_onnx",
    "onnx_exportable",
    "onnx_model",
]

#: Name of every exported graph's input (shape ``(n, n_features)``).
INPUT_NAME = "features"
#: Name of every exported graph's output (float32, shape ``(n,)``).
OUTPUT_NAME = "score"
#: ONNX operator set of the default domain (supported by onnxruntime >= 1.13).
OPSET = 17
#: IR version matching :data:`OPSET`, so that older runtimes load the files.
_IR_VERSION = 8
_FORMAT = "hepsel-onnx-export"
#: Input dtypes of the graphs -> ONNX element types (onnx.TensorProto.FLOAT, DOUBLE).
_DTYPES = {"float32": 1, "float64": 11}
_SIDE_FILE = "export.json"

# scikit-learn's QuantileTransformer: values within this of the first/last
# quantile map to the bounds; its normal output is clipped accordingly.
_BOUNDS_THRESHOLD = 1e-7


def _import_onnx() -> Any:
    """Import :mod:`onnx`, with an install hint if it is missing."""
    try:
        import onnx
    except ImportError as exc:
        msg = (
            "exporting to ONNX needs the 'onnx' package; install it with pip install 'hepsel[onnx]'"
        )
        raise ImportError(msg) from exc
    return onnx


# -- building graphs --------------------------------------------------------------


class _Graph:
    """Nodes and constants of a graph under construction, with fresh names."""

    def __init__(self) -> None:
        self.onnx = _import_onnx()
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value: Any, dtype: Any) -> str:
        """A constant tensor (an initializer); returns its name."""
        name = self._name("c")
        self.initializers.append(
            self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name)
        )
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        """Append a node; returns the name of its (single) output."""
        name = out or self._name(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [name], **attrs))
        return name

    def model(self, n_features: int, doc: str, dtype: str) -> onnx.ModelProto:
        """The model: input ``features`` (n, n_features) of ``dtype`` -> output ``score`` (n,) float32."""
        h = self.onnx.helper
        f32 = self.onnx.TensorProto.FLOAT
        graph = h.make_graph(
            self.nodes,
            "hepsel",
            [h.make_tensor_value_info(INPUT_NAME, _DTYPES[dtype], ["n", n_features])],
            [h.make_tensor_value_info(OUTPUT_NAME, f32, ["n"])],
            initializer=self.initializers,
            doc_string=doc,
        )
        model = h.make_model(
            graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="hepsel"
        )
        model.ir_version = _IR_VERSION
        return model


# Acklam's rational approximation of the inverse normal CDF (relative error < 1.2e-9):
# q A(q^2) / B(q^2) in the centre, C(t) / D(t) with t = sqrt(-2 log p) in the tails.
# Coefficients from the highest power down; D is padded to degree 5 so both
# branches share one evaluation.
_ACKLAM_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_ACKLAM_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
    1.0,
)
_ACKLAM_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_ACKLAM_D = (
    0.0,
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e00,
    3.754408661907416e00,
    1.0,
)
_ACKLAM_LOW = 0.02425


def _ndtri(g: _Graph, p: str) -> str:
    """Standard-normal quantile of ``p`` (float64), clipped as scikit-learn clips its normal output.

    Both branches of Acklam's approximation are one rational function of a
    per-entry variable (``q^2`` or ``t``) with per-entry coefficients, so the
    graph evaluates a single pair of degree-5 polynomials (few nodes: a
    batch-1 call costs about the number of nodes).
    """
    from scipy import stats

    f64 = np.float64
    eps = _BOUNDS_THRESHOLD - np.spacing(1)
    clip_min, clip_max = float(stats.norm.ppf(eps)), float(stats.norm.ppf(1 - eps))
    # outside [eps, 1 - eps] the clip decides; the clamp keeps log() finite
    p = g.op("Min", g.op("Max", p, g.const(eps, f64)), g.const(1 - eps, f64))
    q = g.op("Sub", p, g.const(0.5, f64))
    tail_p = g.op("Min", p, g.op("Sub", g.const(1.0, f64), p))
    t = g.op("Sqrt", g.op("Mul", g.const(-2.0, f64), g.op("Log", tail_p)))
    central = g.op("GreaterOrEqual", tail_p, g.const(_ACKLAM_LOW, f64))
    v = g.op("Unsqueeze", g.op("Where", central, g.op("Mul", q, q), t), g.const([-1], np.int64))
    powers = g.op("Pow", v, g.const(np.arange(5, -1, -1), f64))
    pick = g.op("Unsqueeze", central, g.const([-1], np.int64))
    num = g.op("Where", pick, g.const(_ACKLAM_A, f64), g.const(_ACKLAM_C, f64))
    den = g.op("Where", pick, g.const(_ACKLAM_B, f64), g.const(_ACKLAM_D, f64))
    ratio = g.op(
        "Div",
        g.op("ReduceSum", g.op("Mul", powers, num), g.const([-1], np.int64), keepdims=0),
        g.op("ReduceSum", g.op("Mul", powers, den), g.const([-1], np.int64), keepdims=0),
    )
    # the lower tail's value, the upper tail's is its negative
    sign = g.op("Where", g.op("Less", p, g.const(0.5, f64)), g.const(1.0, f64), g.const(-1.0, f64))
    z = g.op("Mul", ratio, g.op("Where", central, q, sign))
    return g.op("Min", g.op("Max", z, g.const(clip_min, f64)), g.const(clip_max, f64))


def _interp_tables(
    xp: np.ndarray, fp: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per count ``c`` of knots ``xp <= x`` (0 to ``size - 1``): ``a, x0, b`` with
    ``numpy.interp(x, xp, fp) == a * (x - x0) + b``, with numpy's arithmetic.

    numpy takes the last ``j`` with ``xp[j] <= x`` and returns
    ``slope[j] * (x - xp[j]) + fp[j]``, ``fp[0]`` left of the table and
    ``fp[-1]`` from its last point on (``a = 0`` there).
    """
    m = len(xp)
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = (fp[1:] - fp[:-1]) / (xp[1:] - xp[:-1])
    # slopes across ties are never used (x < xp[j + 1] excludes them); keep them finite
    slopes = np.where(np.isfinite(slopes), slopes, 0.0)
    a, x0, b = np.zeros(size), np.zeros(size), np.full(size, fp[-1])
    b[0] = fp[0]
    a[1:m], x0[1:m], b[1:m] = slopes, xp[:-1], fp[:-1]
    return a, x0, b


def _quantile_normal(g: _Graph, x: str, quantiles: np.ndarray, references: np.ndarray) -> str:
    """scikit-learn's ``QuantileTransformer(output_distribution="normal").transform`` of ``x`` (float64).

    scikit-learn takes the mean of ``numpy.interp`` upwards and downwards (they
    differ on repeated quantiles). Both come from one search: ``c``, the
    number of quantiles ``<= x``, found by a branchless binary search of
    ``log2(m)`` steps of four nodes, memory O(n F) for any number of
    quantiles; the number ``< x`` follows from ``c`` by a table of where each
    run of equal quantiles starts. Per count, tables hold the interpolation's
    slope, knot and value, so each direction is three gathers and a
    multiply-add.
    """
    f64, i64 = np.float64, np.int64
    m, n_features = quantiles.shape
    if m < 2:
        msg = f"a quantile scaling with {m} quantile(s) cannot be exported; it needs at least 2"
        raise ExportError(msg)
    # one block of `size` entries per feature, flat: entry f * size + c
    size = 1 << m.bit_length()
    base = np.arange(n_features, dtype=i64) * size
    search = np.full((n_features, size), np.inf)
    search[:, 0] = -np.inf  # the search starts here: every x is above it
    search[:, 1 : m + 1] = quantiles.T
    pos = g.const(base, i64)
    flat = g.const(search.ravel(), f64)
    step = size // 2
    while step:
        # invariant: search[pos] <= x; try to move `step` entries up
        at = g.op("Add", pos, g.const(step, i64))
        pos = g.op("Where", g.op("LessOrEqual", g.op("Gather", flat, at), x), at, pos)
        step //= 2
    # pos = f * size + c, c = number of quantiles <= x (0 for NaN)

    def gather(table: np.ndarray, index: str, dtype: Any = f64) -> str:
        return g.op("Gather", g.const(np.asarray(table, dtype=dtype).ravel(), dtype), index)

    def affine(tables: list[np.ndarray], index: str, at: str) -> str:
        a, x0, b = (gather(t, index) for t in tables)
        return g.op("Add", g.op("Mul", a, g.op("Sub", at, x0)), b)

    up = [
        np.stack(t)
        for t in zip(
            *(_interp_tables(quantiles[:, f], references, size) for f in range(n_features)),
            strict=True,
        )
    ]
    value_up = affine(up, pos, x)
    # c_lt = number of quantiles < x: c, or where the run of quantiles equal to x starts
    previous = np.full((n_features, size), np.nan)
    previous[:, 1 : m + 1] = quantiles.T
    first = np.tile(np.arange(size, dtype=i64), (n_features, 1))
    for f in range(n_features):
        starts = np.searchsorted(quantiles[:, f], quantiles[:, f], side="left")
        first[f, 1 : m + 1] = starts
    first += base[:, None]
    tie = g.op("Equal", gather(previous, pos), x)
    pos_lt = g.op("Where", tie, gather(first, pos, i64), pos)
    # downwards: numpy.interp(-x, -q[::-1], -r[::-1]), which counts the m - c_lt quantiles >= x
    down = [np.zeros((n_features, size)) for _ in range(3)]
    for f in range(n_features):
        tables = _interp_tables(-quantiles[::-1, f], -references[::-1], size)
        for t, d in zip(tables, down, strict=True):
            d[f, : m + 1] = t[m::-1]
            d[f, m + 1 :] = t[0]
    value_down = affine(down, pos_lt, g.op("Neg", x))
    u = g.op("Mul", g.const(0.5, f64), g.op("Sub", value_up, value_down))
    bound = g.const(_BOUNDS_THRESHOLD, f64)
    upper = g.op("Greater", g.op("Add", x, bound), g.const(quantiles[-1], f64))
    lower = g.op("Less", g.op("Sub", x, bound), g.const(quantiles[0], f64))
    u = g.op("Where", lower, g.const(0.0, f64), g.op("Where", upper, g.const(1.0, f64), u))
    z = _ndtri(g, u)
    # NaN stays NaN rather than becoming a plausible score
    return g.op("Where", g.op("IsNaN", x), x, z)


def _scaler_nodes(g: _Graph, x: str, scaler: Any) -> str:
    """A fitted :class:`~hepsel.models.preprocessing.FeatureScaler` applied to ``x`` (float64)."""
    state = scaler.to_dict()
    if state["method"] == "standard":
        x = g.op("Sub", x, g.const(state["mean"], np.float64))
        return g.op("Div", x, g.const(state["scale"], np.float64))
    if state["method"] == "quantile":
        return _quantile_normal(
            g,
            x,
            np.asarray(state["quantiles"], dtype=np.float64),
            np.asarray(state["references"], dtype=np.float64),
        )
    if state["method"] == "none":
        return x
    msg = f"cannot export the input scaling {state['method']!r}"
    raise ExportError(msg)


def _network_nodes(g: _Graph, h: str, network: Any) -> str:
    """A torch ``Sequential`` of ``Linear`` layers and activations applied to ``h`` (float32)."""
    from ..models._torch import import_torch

    torch = import_torch()
    for layer in network:
        if isinstance(layer, torch.nn.Linear):
            w = layer.weight.detach().cpu().numpy()
            b = layer.bias.detach().cpu().numpy()
            h = g.op("Gemm", h, g.const(w, np.float32), g.const(b, np.float32), transB=1)
        elif isinstance(layer, torch.nn.ReLU):
            h = g.op("Relu", h)
        elif isinstance(layer, torch.nn.Tanh):
            h = g.op("Tanh", h)
        elif isinstance(layer, torch.nn.SiLU):
            h = g.op("Mul", h, g.op("Sigmoid", h))
        elif isinstance(layer, torch.nn.ELU):
            h = g.op("Elu", h, alpha=float(layer.alpha))
        else:
            msg = f"cannot export the network layer {layer!r}"
            raise ExportError(msg)
    return h


def _autoencoder_model(clf: Any, dtype: str) -> onnx.ModelProto:
    g = _Graph()
    f32 = g.onnx.TensorProto.FLOAT
    x = g.op("Cast", INPUT_NAME, to=g.onnx.TensorProto.DOUBLE)
    # as hepsel: scaling in float64, network and squared errors in float32, the mean in float64
    z = g.op("Cast", _scaler_nodes(g, x, clf.scaler_), to=f32)
    diff = g.op("Sub", _network_nodes(g, z, clf.network_), z)
    sq = g.op("Cast", g.op("Mul", diff, diff), to=g.onnx.TensorProto.DOUBLE)
    scaled = g.op("Div", sq, g.const(np.asarray(clf.error_scale_, dtype=np.float64), np.float64))
    score = g.op("ReduceMean", scaled, axes=[1], keepdims=0)
    p = g.op("Div", score, g.op("Add", score, g.const(float(clf.score_reference_), np.float64)))
    g.op("Cast", p, to=f32, out=OUTPUT_NAME)
    doc = (
        f"hepsel autoencoder ({clf.scaler_.method} scaling): s / (s + {clf.score_reference_:.6g}), "
        "s the mean scaled squared reconstruction error"
    )
    return g.model(clf.n_features_in_, doc, dtype)


def _mlp_model(clf: Any, dtype: str) -> onnx.ModelProto:
    g = _Graph()
    f32 = g.onnx.TensorProto.FLOAT
    x = g.op("Cast", INPUT_NAME, to=g.onnx.TensorProto.DOUBLE)
    # hepsel scales in float64 and runs the network in float32
    h = g.op("Cast", _scaler_nodes(g, x, clf.scaler_), to=f32)
    h = _network_nodes(g, h, clf.network_)
    p = g.op("Sigmoid", h)
    g.op("Reshape", p, g.const([-1], np.int64), out=OUTPUT_NAME)
    doc = f"hepsel MLP ({clf.scaler_.method} scaling): signal probability"
    return g.model(clf.n_features_in_, doc, dtype)


def _lipschitz_model(clf: Any, dtype: str) -> onnx.ModelProto:
    from ..models._torch import import_torch

    torch = import_torch()
    g = _Graph()
    x = g.op("Cast", INPUT_NAME, to=g.onnx.TensorProto.DOUBLE)
    z = g.op("Cast", _scaler_nodes(g, x, clf.scaler_), to=g.onnx.TensorProto.FLOAT)
    wrapper = clf.network_
    h, width = z, clf.n_features_in_
    with torch.no_grad():
        for layer in wrapper.nn:
            if isinstance(layer, torch.nn.Linear):
                # reading .weight evaluates the normalisation: the weights the forward pass uses
                w = layer.weight.detach().cpu().numpy()
                b = layer.bias.detach().cpu().numpy()
                h = g.op("Gemm", h, g.const(w, np.float32), g.const(b, np.float32), transB=1)
                width = int(layer.out_features)
            elif type(layer).__name__ == "GroupSort":
                if 2 * int(layer.n_groups) != width or layer.axis != -1:
                    msg = f"cannot export {layer!r}: only groups of two units are supported"
                    raise ExportError(msg)
                pairs = g.op("Reshape", h, g.const([0, -1, 2], np.int64))
                low = g.op("ReduceMin", pairs, axes=[2], keepdims=1)
                high = g.op("ReduceMax", pairs, axes=[2], keepdims=1)
                h = g.op("Reshape", g.op("Concat", low, high, axis=2), g.const([0, -1], np.int64))
            else:
                msg = f"cannot export the Lipschitz network layer {layer!r}"
                raise ExportError(msg)
        mono = (
            (wrapper.lipschitz_const * wrapper.monotonic_constraints.expand(clf.n_features_in_, -1))
            .cpu()
            .numpy()
        )
    h = g.op("Add", h, g.op("MatMul", z, g.const(mono, np.float32)))
    p = g.op("Sigmoid", h)
    g.op("Reshape", p, g.const([-1], np.int64), out=OUTPUT_NAME)
    return g.model(
        clf.n_features_in_,
        "hepsel Lipschitz monotonic network (standard scaling): signal probability",
        dtype,
    )


def _fisher_model(clf: Any, dtype: str) -> onnx.ModelProto:
    g = _Graph()
    x = g.op("Cast", INPUT_NAME, to=g.onnx.TensorProto.DOUBLE)
    t = g.op(
        "Add",
        g.op("MatMul", x, g.const(np.asarray(clf.coef_)[:, None], np.float64)),
        g.const([clf.intercept_], np.float64),
    )
    p = g.op("Sigmoid", g.op("Reshape", t, g.const([-1], np.int64)))
    g.op("Cast", p, to=g.onnx.TensorProto.FLOAT, out=OUTPUT_NAME)
    return g.model(
        clf.n_features_in_, "hepsel Fisher discriminant: sigmoid(x . coef + intercept)", dtype
    )


def _bdt_booster(clf: Any) -> Any:
    """The booster with the trees hepsel predicts with (``iteration_range=(0, best_iteration + 1)``)."""
    return clf.booster_[: clf.best_iteration_ + 1]


def _bdt_model(clf: Any, dtype: str) -> onnx.ModelProto:
    try:
        from onnxmltools.convert import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:
        msg = "exporting a BDT to ONNX needs the 'onnxmltools' package; install it with pip install 'hepsel[onnx]'"
        raise ImportError(msg) from exc
    n = clf.n_features_in_
    converted = convert_xgboost(
        _bdt_booster(clf),
        initial_types=[("features_float32", FloatTensorType(["n", n]))],
        name="hepsel",
    )
    # the converter's outputs: "label" and "probabilities" (n, 2), column 1 the signal
    probabilities = converted.graph.output[-1].name
    g = _Graph()
    # xgboost compares float32 features with float32 thresholds
    g.op("Cast", INPUT_NAME, to=g.onnx.TensorProto.FLOAT, out="features_float32")
    g.nodes.extend(converted.graph.node)
    g.initializers.extend(converted.graph.initializer)
    g.op("Gather", probabilities, g.const(1, np.int64), out=OUTPUT_NAME, axis=1)
    model = g.model(n, f"hepsel BDT ({clf.best_iteration_ + 1} trees): signal probability", dtype)
    model.opset_import.extend(op for op in converted.opset_import if op.domain != "")
    return model


def onnx_model(classifier: Any, *, dtype: str = "float64") -> onnx.ModelProto:
    """The ONNX graph of a fitted hepsel classifier (``bdt``, ``mlp``, ``lipschitz_mlp``, ``fisher`` or ``autoencoder``).

    Input ``features`` (shape (n, n_features), of ``dtype``), output ``score``
    (float32, shape (n,)): ``classifier.predict_proba(X)[:, 1]``.

    A float32 input gives hepsel's score of the float32-rounded features,
    which can differ from the score of the float64 features by more than
    float32 arithmetic does: an MLP's quantile scaling is steep in the tails
    of a feature's distribution and jumps at repeated quantiles (discrete
    values), so its score moves with the rounding of such inputs.

    Raises
    ------
    ExportError
        For a classifier or a layer that cannot be exported.
    ImportError
        If ``onnx`` (or, for a BDT, ``onnxmltools``) is not installed.
    """
    from ..models.autoencoder import AutoencoderSelector
    from ..models.bdt import BDTClassifier
    from ..models.fisher import FisherClassifier
    from ..models.lipschitz import LipschitzMLPClassifier
    from ..models.mlp import MLPClassifier

    if dtype not in _DTYPES:
        msg = f"unknown input dtype {dtype!r}; choose from {sorted(_DTYPES)}"
        raise ExportError(msg)
    if isinstance(classifier, BDTClassifier):
        model = _bdt_model(classifier, dtype)
    elif isinstance(classifier, LipschitzMLPClassifier):
        model = _lipschitz_model(classifier, dtype)
    elif isinstance(classifier, MLPClassifier):
        model = _mlp_model(classifier, dtype)
    elif isinstance(classifier, FisherClassifier):
        model = _fisher_model(classifier, dtype)
    elif isinstance(classifier, AutoencoderSelector):
        model = _autoencoder_model(classifier, dtype)
    else:
        msg = f"cannot export a {type(classifier).__name__} to ONNX; hepsel exports bdt, mlp, lipschitz_mlp, fisher and autoencoder models"
        raise ExportError(msg)
    _import_onnx().checker.check_model(model)
    return model


# -- writing an export ------------------------------------------------------------------

#: Model kinds with an ONNX form (a ``bbdt`` exports as a lookup table: ``--format bbdt``).
ONNX_KINDS = ("bdt", "mlp", "lipschitz_mlp", "fisher", "autoencoder")

#: How hepsel computes the input columns: what a user must reproduce for hepsel's score.
FEATURE_PRECISION = (
    "hepsel computes each feature with numpy in the types of the branches it reads: float32 branches give "
    "float32 arithmetic (expressions and transforms such as log), float64 or integer operands promote to "
    "float64; each column is then widened to float64 for the model. Compute the features the same way "
    "(e.g. float sums of float32 branches) to reproduce hepsel's score exactly"
)


def onnx_exportable(selection: Selection) -> tuple[list[str], dict[str, str]]:
    """The models of ``selection`` with an ONNX form, and the others -> why not."""
    names = [n for n, m in selection.models.items() if m["kind"] in ONNX_KINDS]
    skipped = {
        n: (
            f"{m['kind']}: export it with --format bbdt"
            if m["kind"] == "bbdt"
            else f"{m['kind']}: no ONNX form"
        )
        for n, m in selection.models.items()
        if n not in names
    }
    return names, skipped


def _user_functions(sel: Selection) -> dict[str, Any]:
    """Feature name -> what a user outside Python has to supply for a ``function:`` feature."""
    import inspect

    out: dict[str, Any] = {}
    for f in sel.features.features:
        if f.function is None:
            continue
        module_file = f.function.rsplit(":", 1)[0]
        try:
            source = inspect.getsource(f._func)  # type: ignore[arg-type]
        except (OSError, TypeError):
            source = None
        module = (sel.features.base_dir / module_file).resolve()
        out[f.name] = {
            "function": f.function,
            "inputs": list(f.inputs),
            "transform": f.transform,
            "source": source,
            "module_source": module.read_text() if module.is_file() else None,
            "note": (
                "hepsel computes this feature with a Python function; the graphs take its value as an input "
                "column, so a C++ user has to supply an equivalent implementation (its Python source is given)"
            ),
        }
    return out


def _side_file(
    sel: Selection, names: Sequence[str], files: dict[str, dict[str, list[str]]], dtype: str
) -> dict[str, Any]:
    ks = {len(sel.fold_models(n)) for n in names}
    k = ks.pop() if len(ks) == 1 else None
    branch = sel.fold_branch
    features = sel.features.to_dict()
    functions = _user_functions(sel)
    for f in features["features"]:
        if f["name"] in functions:
            f["user_supplied"] = True
    return {
        "format": _FORMAT,
        "version": 1,
        "hepsel_version": __version__,
        "input": {"name": INPUT_NAME, "dtype": dtype, "shape": ["n", len(sel.features.names)]},
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": ["n"],
            "meaning": "signal probability predict_proba[:, 1] of the fold model, as hepsel scores",
        },
        "feature_names": sel.features.names,
        "features": features["features"],
        "feature_precision": FEATURE_PRECISION,
        "user_functions": functions,
        "aliases": features["aliases"],
        "tree": sel.tree,
        "preselection": [{"name": n, "cut": c} for n, c in sel.preselection],
        "folds": {
            "k": k,
            "branch": branch,
            "rule": (f"{branch} % {k if k else 'k'}" if branch else None),
            "note": (
                "score each candidate with the graph of fold (event number modulo k, the non-negative remainder): "
                "the model that did not train on the event; without an event number, average the k fold scores"
            ),
        },
        "working_points": {
            "rule": "a candidate passes when it passes the preselection and score >= threshold",
            "thresholds": {n: sel.working_points.get(n, {}) for n in names},
        },
        **({"menu": sel.menu.describe()} if sel.menu is not None else {}),
        "default_model": sel.default_model if sel.default_model in names else names[0],
        "models": {
            n: {"kind": sel.models[n]["kind"], "folds": len(sel.fold_models(n)), **files[n]}
            for n in names
        },
    }


#: Side-file entries that must agree for two exports to share a directory.
_SHARED = (
    "format",
    "version",
    "input",
    "output",
    "feature_names",
    "features",
    "aliases",
    "tree",
    "preselection",
)


def _earlier_export(out: Path) -> dict[str, Any] | None:
    """The side file of an earlier export in ``out``; None for a missing or empty directory.

    Raises
    ------
    ExportError
        If ``out`` holds anything else.
    """
    if not out.exists() and not out.is_symlink():
        return None
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        return None
    side = None
    f = out / _SIDE_FILE
    if out.is_dir() and not out.is_symlink() and f.is_file() and not f.is_symlink():
        try:
            side = read_json(f)
        except (OSError, ValueError):
            side = None
    if not isinstance(side, dict) or side.get("format") != _FORMAT:
        msg = f"output {str(out)!r} exists and is not a hepsel export: choose a new directory"
        raise ExportError(msg)
    return side


def _merge(out: Path, earlier: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The side file of ``out`` after adding ``new`` to ``earlier``.

    Raises
    ------
    ExportError
        If the two exports do not share their inputs (another selection or
        input type), or the earlier side file names files outside its model's folder.
    """
    differ = [key for key in _SHARED if earlier.get(key) != new.get(key)]
    if (earlier.get("folds") or {}).get("branch") != new["folds"]["branch"]:
        differ.append("folds.branch")
    if differ:
        msg = (
            f"output {str(out)!r} holds an export that differs from this one in {differ} (another selection, "
            "or another --dtype): choose a new directory, or pass --force to replace it"
        )
        raise ExportError(msg)
    old_models = earlier.get("models") or {}
    kept = [n for n in old_models if n not in new["models"]]
    check_model_names(kept, f"{out / _SIDE_FILE}: models")
    for n in kept:
        for rel in (*old_models[n].get("onnx", []), *old_models[n].get("xgboost_json", [])):
            p = Path(rel)
            if p.is_absolute() or p.parts[:1] != (n,) or ".." in p.parts or not (out / p).is_file():
                msg = f"{out / _SIDE_FILE}: models.{n}: file {rel!r} is not a file of {str(out / n)!r}; pass --force to replace the export"
                raise ExportError(msg)
    merged = dict(new)
    merged["models"] = {**{n: old_models[n] for n in kept}, **new["models"]}
    old_thresholds = (earlier.get("working_points") or {}).get("thresholds") or {}
    merged["working_points"] = {
        **new["working_points"],
        "thresholds": {
            **{n: old_thresholds.get(n, {}) for n in kept},
            **new["working_points"]["thresholds"],
        },
    }
    ks = {m.get("folds") for m in merged["models"].values()}
    k = ks.pop() if len(ks) == 1 else None
    branch = new["folds"]["branch"]
    merged["folds"] = {
        **new["folds"],
        "k": k,
        "rule": (f"{branch} % {k if k else 'k'}" if branch else None),
    }
    merged["user_functions"] = {**(earlier.get("user_functions") or {}), **new["user_functions"]}
    return merged


def export_onnx(
    selection: Selection | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    models: Sequence[str] | None = None,
    dtype: str = "float64",
    force: bool = False,
) -> list[Path]:
    """Write an ONNX graph per model and fold of a selection, and the side file ``export.json``.

    Layout of ``out_dir``: ``<model>/fold<i>.onnx`` for every model and fold,
    ``<model>/fold<i>.xgb.json`` for BDTs (the same trees in xgboost's format),
    and ``export.json``. Everything is written into a temporary directory
    next to ``out_dir`` and renamed into place, so a failed export leaves no
    partial output.

    An earlier export of the same selection (same features, preselection and
    input type) in ``out_dir`` is added to: the models exported now replace
    their earlier files, every other file stays, and ``export.json`` lists
    all models. ``force=True`` replaces an earlier export instead, also one
    of another selection.

    Parameters
    ----------
    selection
        A :class:`~hepsel.Selection` or a saved selection directory.
    out_dir
        Output directory: new, empty, or an earlier export.
    models
        Models to export (default: every model with an ONNX form, see
        :func:`onnx_exportable`; a ``bbdt`` exports with
        :func:`hepsel.deploy.export_bbdt.export_bbdt`).
    dtype : {"float64", "float32"}
        The graphs' input type (see :func:`onnx_model`); float64 is the
        feature vector as hepsel computes it.
    force
        Replace an earlier export in ``out_dir`` rather than add to it.

    Returns
    -------
    list of Path
        The files written, side file last.

    Raises
    ------
    ModelFileError
        If the selection directory is missing or invalid.
    ExportError
        For an unknown model, a model without an ONNX form, a model name that
        is not an identifier, an ``out_dir`` that holds something other than
        an earlier export, or (without ``force``) an earlier export of
        another selection.
    ImportError
        If ``onnx`` or ``onnxmltools`` is not installed (``pip install 'hepsel[onnx]'``).
    """
    if dtype not in _DTYPES:
        msg = f"unknown input dtype {dtype!r}; choose from {sorted(_DTYPES)}"
        raise ExportError(msg)
    out = Path(out_dir)
    earlier = _earlier_export(out)
    sel = selection if isinstance(selection, Selection) else Selection.load(selection)
    exportable, skipped = onnx_exportable(sel)
    if models:
        names = list(dict.fromkeys(models))
        unknown = [n for n in names if n not in sel.models]
        if unknown:
            msg = f"unknown model(s) {unknown}; this selection has {sorted(sel.models)}"
            raise ExportError(msg)
        no_onnx = [f"{n} ({skipped[n]})" for n in names if n in skipped]
        if no_onnx:
            msg = f"model(s) without an ONNX form: {', '.join(no_onnx)}"
            raise ExportError(msg)
    else:
        names = exportable
        if not names:
            msg = f"no model of this selection has an ONNX form: {', '.join(f'{n} ({r})' for n, r in skipped.items())}"
            raise ExportError(msg)
    check_model_names(names, "selection")

    # build every graph before anything is written
    graphs: dict[str, list[Any]] = {}
    for name in names:
        folds = sel.fold_models(name)
        graphs[name] = []
        for i, clf in enumerate(folds):
            model = onnx_model(clf, dtype=dtype)
            if clf.n_features_in_ != len(sel.features.names):
                msg = f"model {name!r} fold {i} takes {clf.n_features_in_} features; the selection defines {len(sel.features.names)}"
                raise ExportError(msg)
            _set_metadata(model, sel, name, i, len(folds))
            graphs[name].append(model)
    files: dict[str, dict[str, list[str]]] = {}
    for name, fold_models in graphs.items():
        files[name] = {"onnx": [f"{name}/fold{i}.onnx" for i in range(len(fold_models))]}
        if sel.models[name]["kind"] == "bdt":
            files[name]["xgboost_json"] = [
                f"{name}/fold{i}.xgb.json" for i in range(len(fold_models))
            ]
    side = _side_file(sel, names, files, dtype)
    if earlier is not None and not force:
        side = _merge(out, earlier, side)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        if earlier is not None and not force:
            # everything of the earlier export but the models written now (links stay links)
            for entry in out.iterdir():
                if entry.name in graphs or entry.name == _SIDE_FILE:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.copytree(entry, tmp / entry.name, symlinks=True)
                else:
                    shutil.copy2(entry, tmp / entry.name, follow_symlinks=False)
        written: list[Path] = []
        for name, fold_models in graphs.items():
            (tmp / name).mkdir()
            for i, model in enumerate(fold_models):
                rel = files[name]["onnx"][i]
                (tmp / rel).write_bytes(model.SerializeToString())
                written.append(out / rel)
                if "xgboost_json" in files[name]:
                    rel = files[name]["xgboost_json"][i]
                    _bdt_booster(sel.fold_models(name)[i]).save_model(str(tmp / rel))
                    written.append(out / rel)
        write_json(tmp / _SIDE_FILE, side)
        written.append(out / _SIDE_FILE)
        os.chmod(tmp, 0o777 & ~_umask())
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def _set_metadata(model: Any, sel: Selection, name: str, fold: int, k: int) -> None:
    """Key-value metadata a C++ reader finds with ``Ort::Session::GetModelMetadata``."""
    onnx = _import_onnx()
    props = {
        "hepsel.model": name,
        "hepsel.kind": sel.models[name]["kind"],
        "hepsel.fold": str(fold),
        "hepsel.folds": str(k),
        "hepsel.fold_rule": f"{sel.fold_branch} % {k} == {fold}"
        if sel.fold_branch
        else "mean of the fold scores",
        "hepsel.features": ",".join(sel.features.names),
    }
    onnx.helper.set_model_props(model, props)
    model.producer_version = __version__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_dir(new: Path, target: Path) -> None:
    """Rename ``new`` onto ``target``; an existing ``target`` goes only once ``new`` is in place."""
    if not target.exists():
        new.rename(target)
        return
    old = new.with_name(new.name + ".old")
    target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
