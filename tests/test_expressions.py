"""Tests of hepsel.config.expressions against direct numpy/awkward computations."""

from __future__ import annotations

import math
import pickle
import time

import awkward as ak
import numpy as np
import pytest

from hepsel.config import expressions
from hepsel.config.expressions import FUNCTIONS, Expression, evaluate
from hepsel.exceptions import BranchNotFoundError, ExpressionError, UnknownFunctionError

MUON_MASS = 105.66  # MeV


@pytest.fixture
def flat() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240501)
    n = 200
    return {
        "B_PT": rng.uniform(500.0, 20000.0, n),
        "B_ETA": rng.uniform(1.5, 5.5, n),
        "H1_IPCHI2": rng.exponential(30.0, n) + 0.1,
        "H2_IPCHI2": rng.exponential(30.0, n) + 0.1,
        "x": rng.normal(0.0, 2.0, n),
        "y": rng.uniform(0.1, 0.9, n),
        "nTracks": rng.integers(0, 100, n),
    }


@pytest.fixture
def events() -> dict[str, ak.Array]:
    """Six events with 0 to 3 muons and 0 to 4 jets (MeV, rad)."""
    return {
        "Muon_pt": ak.Array([[45000.0, 32000.0], [], [20000.0], [50000.0, 41000.0, 7000.0],
                             [8000.0, 9000.0], [30000.0, 30000.0]]),
        "Muon_eta": ak.Array([[0.5, -1.2], [], [2.1], [1.0, 0.3, -2.0], [-0.4, 0.4], [2.0, 2.0]]),
        "Muon_phi": ak.Array([[0.1, 3.0], [], [-1.0], [2.9, -2.9, 0.0], [1.5, -1.5], [0.2, 0.2]]),
        "Jet_pt": ak.Array([[120000.0, 35000.0, 20000.0], [60000.0], [], [25000.0, 31000.0],
                            [90000.0, 45000.0, 31000.0, 10000.0], []]),
        "Jet_eta": ak.Array([[0.1, 3.0, -1.0], [2.5], [], [-2.0, 1.0], [0.0, -2.45, 2.3, 1.0], []]),
        "MET_pt": np.array([30000.0, 10000.0, 50000.0, 20000.0, 40000.0, 5000.0]),
    }  # fmt: skip


def _per_event(jagged: ak.Array, fn) -> np.ndarray:
    """Apply a Python function to each event's list: an independent reference."""
    return np.array([fn(values) for values in ak.to_list(jagged)], dtype=float)


def _p4(pt: float, eta: float, phi: float, mass: float) -> np.ndarray:
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return np.array([px, py, pz, math.sqrt(px * px + py * py + pz * pz + mass * mass)])


def _mass(p4: np.ndarray) -> float:
    return math.sqrt(max(p4[3] ** 2 - p4[0] ** 2 - p4[1] ** 2 - p4[2] ** 2, 0.0))


# ---------------------------------------------------------------------------
# Flat arrays
# ---------------------------------------------------------------------------

FLAT_CASES = {
    "arithmetic": ("B_PT / 1000 + 2 * x - y ** 2", lambda d: d["B_PT"] / 1000 + 2 * d["x"] - d["y"] ** 2),
    "floordiv-mod": ("B_PT // 1000 + B_PT % 7", lambda d: d["B_PT"] // 1000 + d["B_PT"] % 7),
    "unary": ("-x + +y", lambda d: -d["x"] + d["y"]),
    "constants": ("2 * pi * y", lambda d: 2 * np.pi * d["y"]),
    "log-min": ("log(min(H1_IPCHI2, H2_IPCHI2)) + B_PT / 1000",
                lambda d: np.log(np.minimum(d["H1_IPCHI2"], d["H2_IPCHI2"])) + d["B_PT"] / 1000),
    "max-three": ("max(H1_IPCHI2, H2_IPCHI2, 40)",
                  lambda d: np.maximum(np.maximum(d["H1_IPCHI2"], d["H2_IPCHI2"]), 40)),
    "min-three": ("min(x, y, 0.5)", lambda d: np.minimum(np.minimum(d["x"], d["y"]), 0.5)),
    "minimum-maximum": ("minimum(x, y) + maximum(x, y)",
                        lambda d: np.minimum(d["x"], d["y"]) + np.maximum(d["x"], d["y"])),
    "clip": ("clip(x, -1, 1)", lambda d: np.clip(d["x"], -1, 1)),
    "where": ("where(x > 0, B_PT, -1)", lambda d: np.where(d["x"] > 0, d["B_PT"], -1)),
    "arctan2": ("arctan2(y, x) - atan2(x, y)",
                lambda d: np.arctan2(d["y"], d["x"]) - np.arctan2(d["x"], d["y"])),
    "int-branch": ("nTracks / 10", lambda d: d["nTracks"] / 10),
    "comparison": ("B_PT > 2000", lambda d: d["B_PT"] > 2000),
    "equality": ("(nTracks == 3) | (nTracks != 4)", lambda d: (d["nTracks"] == 3) | (d["nTracks"] != 4)),
    # Python precedence holds: | binds tighter than ==, as in numpy code.
    "precedence": ("nTracks == 3 | 4", lambda d: d["nTracks"] == 7),
    "chained": ("2 < B_ETA <= 5", lambda d: (d["B_ETA"] > 2) & (d["B_ETA"] <= 5)),
    "chained-three": ("-1 < x < y < 0.5",
                      lambda d: (d["x"] > -1) & (d["x"] < d["y"]) & (d["y"] < 0.5)),
    "and-or-not": ("B_PT > 2000 and not x < 0 or y > 0.8",
                   lambda d: ((d["B_PT"] > 2000) & ~(d["x"] < 0)) | (d["y"] > 0.8)),
    "bitwise": ("(B_PT > 2000) & ~(x < 0) | (y > 0.8)",
                lambda d: ((d["B_PT"] > 2000) & ~(d["x"] < 0)) | (d["y"] > 0.8)),
    "and-of-numbers": ("x and y", lambda d: np.logical_and(d["x"], d["y"])),
}  # fmt: skip


@pytest.mark.parametrize(("text", "reference"), FLAT_CASES.values(), ids=FLAT_CASES.keys())
def test_flat_matches_numpy(flat, text, reference):
    result = evaluate(text, flat)
    expected = reference(flat)
    assert isinstance(result, np.ndarray)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


UFUNCS = {
    "abs": np.absolute, "sqrt": np.sqrt, "log": np.log, "log10": np.log10, "log1p": np.log1p,
    "exp": np.exp, "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin,
    "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "tanh": np.tanh, "arccosh": np.arccosh, "floor": np.floor, "ceil": np.ceil,
    "sign": np.sign, "isfinite": np.isfinite,
}  # fmt: skip


@pytest.mark.parametrize("name", UFUNCS)
def test_math_functions_flat_and_jagged(name):
    values = np.array([-2.5, -0.5, 0.0, 0.3, 1.0, 4.0, np.inf])
    jagged = ak.Array([[-2.5, -0.5], [], [0.0, 0.3, 1.0], [4.0, np.inf]])
    with np.errstate(all="ignore"):
        expected_flat = UFUNCS[name](values)
        expected_jagged = UFUNCS[name](jagged)
    np.testing.assert_array_equal(evaluate(f"{name}(v)", {"v": values}), expected_flat)
    result = evaluate(f"{name}(v)", {"v": jagged})
    assert ak.to_list(ak.num(result)) == ak.to_list(ak.num(expected_jagged))
    np.testing.assert_array_equal(
        ak.flatten(result).to_numpy(), ak.flatten(expected_jagged).to_numpy()
    )


def test_every_function_is_documented():
    assert set(UFUNCS) | {"arctan2", "atan2", "clip", "where", "minimum", "maximum"} <= set(
        FUNCTIONS
    )
    for name in ("min", "max", "count", "sum", "mean", "any", "all", "leading", "sort",
                 "p4_ptetaphim", "p4_ptetaphie", "p4_xyzt", "p4_xyzm", "p3_xyz",
                 "inv_mass", "delta_r", "delta_phi"):  # fmt: skip
        assert FUNCTIONS[name].startswith(f"{name}(")
    with pytest.raises(TypeError, match="does not support item assignment"):
        FUNCTIONS["eval"] = "no"


def test_public_api():
    assert sorted(expressions.__all__) == ["Expression", "FUNCTIONS", "evaluate"]


def test_float32_is_kept_and_cuts_are_bool():
    arrays = {"x": np.linspace(1.0, 2.0, 5, dtype=np.float32)}
    assert evaluate("x / 1000 + sqrt(2) * log(x)", arrays).dtype == np.float32
    assert evaluate("x > 1.5", arrays).dtype == np.bool_


def test_constant_expression_is_broadcast_per_event(flat):
    np.testing.assert_array_equal(evaluate("True", flat), np.ones(200, dtype=bool))
    np.testing.assert_array_equal(evaluate("1 + 2 * 3", flat), np.full(200, 7))


def test_log_of_zero_does_not_warn():
    arrays = {"x": np.array([0.0, -1.0, 1.0])}
    np.testing.assert_array_equal(evaluate("log(x)", arrays), [-np.inf, np.nan, 0.0])
    np.testing.assert_array_equal(evaluate("1 / x", arrays), [np.inf, -1.0, 1.0])


def test_awkward_record_array_input(events):
    flat_ak = {"B_PT": ak.Array([1000.0, 3000.0]), "Jet_pt": ak.Array([[10.0], []])}
    records = ak.zip(flat_ak, depth_limit=1)
    for arrays in (flat_ak, records):
        result = evaluate("B_PT / 1000 + count(Jet_pt)", arrays)
        assert isinstance(result, np.ndarray)
        np.testing.assert_array_equal(result, [2.0, 3.0])


def test_numpy_object_arrays_are_rejected_with_hint():
    jagged_np = np.empty(2, dtype=object)
    jagged_np[:] = [np.array([1.0]), np.array([])]
    with pytest.raises(ExpressionError, match="library='ak'"):
        evaluate("count(Jet_pt)", {"Jet_pt": jagged_np})


# ---------------------------------------------------------------------------
# Jagged collections
# ---------------------------------------------------------------------------


def test_count_with_and_without_mask(events):
    np.testing.assert_array_equal(evaluate("count(Jet_pt)", events), [3, 1, 0, 2, 4, 0])
    expected = _per_event(events["Jet_pt"], lambda v: sum(p > 30000 for p in v))
    np.testing.assert_array_equal(evaluate("count(Jet_pt > 30000)", events), expected)
    np.testing.assert_array_equal(evaluate("count(Jet_pt[Jet_pt > 30000])", events), expected)


def test_sum_mean_any_all(events):
    jets = events["Jet_pt"]
    np.testing.assert_allclose(evaluate("sum(Jet_pt)", events), _per_event(jets, sum))
    expected_mean = _per_event(jets, lambda v: sum(v) / len(v) if v else math.nan)
    np.testing.assert_allclose(evaluate("mean(Jet_pt)", events), expected_mean)
    any_high = _per_event(jets, lambda v: any(p > 50000 for p in v)).astype(bool)
    all_high = _per_event(jets, lambda v: all(p > 20000 for p in v)).astype(bool)
    np.testing.assert_array_equal(evaluate("any(Jet_pt > 50000)", events), any_high)
    np.testing.assert_array_equal(evaluate("all(Jet_pt > 20000)", events), all_high)


@pytest.mark.parametrize(("name", "reducer"), [("max", max), ("min", min)])
def test_min_max_reduction_gives_nan_for_empty(events, name, reducer):
    result = evaluate(f"{name}(Jet_pt)", events)
    expected = _per_event(events["Jet_pt"], lambda v: reducer(v) if v else math.nan)
    np.testing.assert_array_equal(result, expected)
    assert np.isnan(result[[2, 5]]).all()


def test_leading_with_default(events):
    jets = events["Jet_pt"]
    second = _per_event(jets, lambda v: v[1] if len(v) > 1 else math.nan)
    np.testing.assert_array_equal(evaluate("leading(Jet_pt, 1)", events), second)
    first_or_zero = _per_event(jets, lambda v: v[0] if v else 0.0)
    np.testing.assert_array_equal(evaluate("leading(Jet_pt, default=0)", events), first_or_zero)
    fourth = _per_event(jets, lambda v: v[3] if len(v) > 3 else -1.0)
    np.testing.assert_array_equal(evaluate("leading(Jet_pt, k=3, default=-1)", events), fourth)


def test_masked_subscripts(events):
    result = evaluate("Jet_pt[abs(Jet_eta) < 2.4]", events)
    expected = [
        [p for p, e in zip(pts, etas, strict=True) if abs(e) < 2.4]
        for pts, etas in zip(
            ak.to_list(events["Jet_pt"]), ak.to_list(events["Jet_eta"]), strict=True
        )
    ]
    assert isinstance(result, ak.Array)
    assert ak.to_list(result) == expected
    central_sum = _per_event(ak.Array(expected), sum)
    np.testing.assert_allclose(evaluate("sum(Jet_pt[abs(Jet_eta) < 2.4])", events), central_sum)


def test_flat_branch_broadcasts_against_jagged(events):
    result = evaluate("count(Jet_pt > MET_pt)", events)
    expected = [
        sum(p > met for p in pts)
        for pts, met in zip(ak.to_list(events["Jet_pt"]), events["MET_pt"], strict=True)
    ]
    np.testing.assert_array_equal(result, expected)


def test_sort(events):
    result = evaluate("leading(sort(Jet_eta), 0)", events)
    expected = _per_event(events["Jet_eta"], lambda v: max(v) if v else math.nan)
    np.testing.assert_array_equal(result, expected)
    ascending = evaluate("sort(Jet_eta, ascending=True)", events)
    assert ak.to_list(ascending) == [sorted(v) for v in ak.to_list(events["Jet_eta"])]


def test_missing_leading_object_in_cut_is_false(events):
    cut = evaluate("leading(Muon_pt, 1) > 10000", events)
    assert cut.dtype == np.bool_
    np.testing.assert_array_equal(cut, [True, False, False, True, False, True])


# ---------------------------------------------------------------------------
# 4-vectors
# ---------------------------------------------------------------------------

MUON_ALIASES = {"mu": f"p4_ptetaphim(Muon_pt, Muon_eta, Muon_phi, {MUON_MASS})"}


def _muon_lists(events):
    return zip(
        ak.to_list(events["Muon_pt"]),
        ak.to_list(events["Muon_eta"]),
        ak.to_list(events["Muon_phi"]),
        strict=True,
    )


def test_dimuon_mass_of_two_leading_muons(events):
    expected = []
    for pts, etas, phis in _muon_lists(events):
        if len(pts) < 2:
            expected.append(math.nan)
            continue
        total = _p4(pts[0], etas[0], phis[0], MUON_MASS) + _p4(pts[1], etas[1], phis[1], MUON_MASS)
        expected.append(_mass(total))
    for text in ("inv_mass(leading(mu, 0), leading(mu, 1))",
                 "(leading(mu, 0) + leading(mu, 1)).mass"):  # fmt: skip
        result = evaluate(text, events, aliases=MUON_ALIASES)
        assert isinstance(result, np.ndarray)
        assert result.dtype == np.float64
        np.testing.assert_allclose(result, expected, rtol=1e-9)


def test_delta_r_and_delta_phi(events):
    expected_dr, expected_dphi = [], []
    for _, etas, phis in _muon_lists(events):
        if len(etas) < 2:
            expected_dr.append(math.nan)
            expected_dphi.append(math.nan)
            continue
        dphi = (phis[0] - phis[1] + math.pi) % (2 * math.pi) - math.pi
        expected_dphi.append(dphi)
        expected_dr.append(math.hypot(etas[0] - etas[1], dphi))
    np.testing.assert_allclose(
        evaluate("delta_r(leading(mu), leading(mu, 1))", events, aliases=MUON_ALIASES),
        expected_dr,
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        evaluate("delta_phi(leading(mu), leading(mu, 1))", events, aliases=MUON_ALIASES),
        expected_dphi,
        rtol=1e-12,
    )


def test_vector_properties_and_constructors(events):
    mu_pt = evaluate("mu.pt", events, aliases=MUON_ALIASES)
    assert ak.to_list(ak.num(mu_pt)) == ak.to_list(ak.num(events["Muon_pt"]))
    np.testing.assert_allclose(ak.flatten(mu_pt), ak.flatten(events["Muon_pt"]), rtol=1e-12)
    px = evaluate("leading(mu).px", events, aliases=MUON_ALIASES)
    expected_px = _per_event(events["Muon_pt"], lambda v: v[0] if v else math.nan) * np.cos(
        _per_event(events["Muon_phi"], lambda v: v[0] if v else math.nan)
    )
    np.testing.assert_allclose(px, expected_px)
    np.testing.assert_array_equal(evaluate("count(mu)", events, aliases=MUON_ALIASES),
                                  [2, 0, 1, 3, 2, 2])  # fmt: skip

    flat = {"px": np.array([3.0, 0.0]), "py": np.array([4.0, 0.0]), "pz": np.array([0.0, 12.0]),
            "E": np.array([13.0, 13.0])}  # fmt: skip
    np.testing.assert_allclose(evaluate("p4_xyzt(px, py, pz, E).mass", flat), [12.0, 5.0])
    np.testing.assert_allclose(evaluate("p4_xyzm(px, py, pz, 0).E", flat), [5.0, 12.0])
    np.testing.assert_allclose(evaluate("p3_xyz(px, py, pz).p", flat), [5.0, 12.0])
    np.testing.assert_allclose(evaluate("p4_ptetaphie(5, 0, 0, E).mass", flat), [12.0, 12.0])
    diff = evaluate("(p4_xyzt(px, py, pz, E) - p4_xyzt(px, py, pz, E)).E", flat)
    np.testing.assert_array_equal(diff, [0.0, 0.0])


def test_vector_result_stays_awkward(events):
    result = evaluate("leading(mu)", events, aliases=MUON_ALIASES)
    assert isinstance(result, ak.Array)
    assert ak.to_list(result.pt)[1] is None


# ---------------------------------------------------------------------------
# Aliases and branches
# ---------------------------------------------------------------------------


def test_aliases_recursive(flat):
    aliases = {
        "pt_gev": "B_PT / 1000",
        "boosted": "pt_gev > 5 and eta_ok",
        "eta_ok": "2 < B_ETA < 5",
    }
    result = evaluate("boosted", flat, aliases=aliases)
    expected = (flat["B_PT"] / 1000 > 5) & (flat["B_ETA"] > 2) & (flat["B_ETA"] < 5)
    np.testing.assert_array_equal(result, expected)
    assert Expression("boosted or pt_gev > 15", aliases=aliases).branches == {"B_PT", "B_ETA"}


def test_alias_shadows_branch_and_accepts_yaml_numbers(flat):
    result = evaluate("x * scale", flat, aliases={"x": "y", "scale": 2.5})
    np.testing.assert_array_equal(result, flat["y"] * 2.5)


def test_alias_cycle_is_an_error():
    with pytest.raises(ExpressionError, match=r"cycle: a -> b -> c -> a"):
        Expression("a + 1", aliases={"a": "b", "b": "2 * c", "c": "a"})
    with pytest.raises(ExpressionError, match=r"cycle: x -> x"):
        Expression("x", aliases={"x": "x / 1000"})


def test_error_in_alias_names_alias_and_location():
    with pytest.raises(
        ExpressionError,
        match=r"in alias 'bad' = 'x.__class__' used by expression 'bad > 0' \(cfg.yaml: cuts\[1\]\)",
    ):
        Expression("bad > 0", aliases={"bad": "x.__class__"}, where="cfg.yaml: cuts[1]")


def test_branches_exclude_functions_constants_and_literals():
    expr = Expression(
        "log(min(H1_IPCHI2, H2_IPCHI2)) + count(Jet_pt[abs(Jet_eta) < 2.4]) * pi"
        " + leading(Jet_pt, k=1, default=nan) + inv_mass(leading(mu), leading(mu, 1))",
        aliases=MUON_ALIASES,
    )
    assert expr.branches == frozenset(
        {"H1_IPCHI2", "H2_IPCHI2", "Jet_pt", "Jet_eta", "Muon_pt", "Muon_eta", "Muon_phi"}
    )


def test_repr_and_pickle(flat):
    expr = Expression("pt_gev > 5", aliases={"pt_gev": "B_PT / 1000"}, where="cfg.yaml")
    assert repr(expr) == "Expression('pt_gev > 5')"
    clone = pickle.loads(pickle.dumps(expr))
    assert clone.branches == expr.branches
    np.testing.assert_array_equal(clone.evaluate(flat), expr.evaluate(flat))


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

FORBIDDEN = {
    "import": ("__import__('os')", UnknownFunctionError, r"unknown function '__import__'"),
    "open": ("open('/etc/passwd')", UnknownFunctionError, r"unknown function 'open'"),
    "eval": ("eval('1')", UnknownFunctionError, r"Available functions: abs, all"),
    "dunder-attribute": ("x.__class__", ExpressionError,
                         r"attribute access '\.__class__' is not allowed in expression 'x\.__class__'"),
    "nested-attribute": ("(x + 1).__class__.__bases__", ExpressionError, r"attribute access '\.__bases__'"),
    "method-call": ("x.sum()", ExpressionError, r"method call 'x\.sum\(\)' is not allowed"),
    "lambda": ("(lambda: 1)()", ExpressionError, r"calling 'lambda: 1' is not allowed"),
    "lambda-bare": ("lambda x: x", ExpressionError, r"lambda 'lambda x: x' is not allowed"),
    "list-comprehension": ("[v for v in x]", ExpressionError, r"list comprehension"),
    "generator": ("sum(v for v in x)", ExpressionError, r"generator expression"),
    "string": ("x == 'abc'", ExpressionError, r"string constant 'abc' is not allowed"),
    "bytes": ("b'abc'", ExpressionError, r"bytes constant"),
    "none": ("x == None", ExpressionError, r"None is not allowed"),
    "ifexp": ("x if y else 0", ExpressionError, r"conditional expression .* write where\(cond, a, b\)"),
    "walrus": ("(z := x)", ExpressionError, r"assignment expression"),
    "fstring": ("f'{x}'", ExpressionError, r"f-string"),
    "in": ("x in y", ExpressionError, r"operator 'in' is not allowed"),
    "is": ("x is y", ExpressionError, r"operator 'is' is not allowed"),
    "xor": ("x ^ y", ExpressionError, r"operator '\^' is not allowed \(write \*\* for a power\)"),
    "starred": ("max(*x)", ExpressionError, r"argument unpacking"),
    "kwargs": ("leading(x, **y)", ExpressionError, r"keyword unpacking '\*\*'"),
    "tuple": ("(x, y)", ExpressionError, r"tuple '\(x, y\)' is not allowed"),
    "dict": ("{'a': x}", ExpressionError, r"dict literal"),
    "statement": ("import os", ExpressionError, r"invalid syntax"),
    "huge-power": ("x * 9 ** 9 ** 9", ExpressionError, r"cannot compute constant '9 \*\* 9 \*\* 9'"),
    "division-by-zero": ("x * (1 // (1 - 1))", ExpressionError, r"cannot compute constant '1 // \(1 - 1\)' \(ZeroDivisionError"),
    "complex": ("x * 1j", ExpressionError, r"complex constant"),
    "function-not-called": ("sum + 1", ExpressionError, r"function 'sum' must be called"),
    "empty": ("   ", ExpressionError, r"empty expression"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "error", "match"), FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_forbidden_constructs(text, error, match):
    with pytest.raises(error, match=match):
        Expression(text)


KEYWORD_MISUSE = {
    "no-keywords": ("sqrt(x, base=2)", r"sqrt\(\) takes no keyword arguments \(got 'base'\)"),
    "unknown-keyword": ("leading(x, n=1)", r"leading\(\) has no keyword argument 'n' \(it takes k, default\)"),
    "negative-k": ("leading(x, k=-1)", r"argument 'k' of leading\(\) must be a literal non-negative integer"),
    "float-k": ("leading(x, 1.5)", r"argument 'k' of leading\(\) must be a literal non-negative integer such as 0 or 1, got '1.5'"),
    "branch-k": ("leading(x, k=n)", r"must be a literal non-negative integer such as 0 or 1, got 'n'"),
    "bool-k": ("leading(x, True)", r"must be a literal non-negative integer"),
    "default-branch": ("leading(x, 0, y)", r"argument 'default' of leading\(\) must be a literal number"),
    "twice": ("leading(x, 1, k=2)", r"leading\(\) got two values for argument 'k'"),
    "ascending-int": ("sort(x, ascending=1)", r"argument 'ascending' of sort\(\) must be True or False"),
    "too-many": ("sqrt(x, y)", r"sqrt\(\) takes at most 1 arguments, got 2; it is sqrt\(x\)"),
    "too-few": ("clip(x, 0)", r"clip\(\) needs at least 3 arguments"),
    "min-empty": ("min()", r"min\(\) needs at least 1 argument"),
    "inv-mass-one": ("inv_mass(v)", r"inv_mass\(\) needs at least 2 arguments"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "match"), KEYWORD_MISUSE.values(), ids=KEYWORD_MISUSE.keys())
def test_argument_misuse(text, match):
    with pytest.raises(ExpressionError, match=match):
        Expression(text)


def test_literal_arguments_may_be_constant_expressions(events):
    result = evaluate("leading(Jet_pt, k=1, default=-inf)", events)
    assert result[2] == -np.inf


def test_unknown_function_suggests_close_match():
    with pytest.raises(
        UnknownFunctionError,
        match=r"unknown function 'sqroot' in expression 'sqroot\(x\)'\. Did you mean 'sqrt' or 'sort'\? Available functions: abs, all",
    ):
        Expression("sqroot(x)")


def test_syntax_error_shows_position_and_location():
    with pytest.raises(
        ExpressionError,
        match=r"column 4 in expression 'a \+' \(cfg.yaml: features\[3\]\):\n    a \+\n       \^",
    ) as info:
        Expression("a +", where="cfg.yaml: features[3]")
    assert isinstance(info.value, ValueError)


def test_unknown_branch_suggests_close_match(flat):
    with pytest.raises(
        BranchNotFoundError,
        match=r"branch 'B_PTT' not found for expression 'B_PTT > 1'\. Did you mean 'B_PT'( or 'B_ETA')?\? Available: B_ETA, B_PT, ",
    ) as info:
        evaluate("B_PTT > 1", flat)
    assert isinstance(info.value, KeyError)
    with pytest.raises(BranchNotFoundError, match=r"Did you mean 'B_PT'"):
        evaluate("b_pt", ak.zip(flat, depth_limit=1))


RUNTIME_ERRORS = {
    "reduce-flat": ("sum(MET_pt)", r"sum\(\) reduces the objects of each event and needs a jagged collection"),
    "max-flat": ("max(MET_pt)", r"for the elementwise maximum of several values write max\(a, b\)"),
    "leading-flat": ("leading(MET_pt, 1)", r"leading\(\) reduces the objects"),
    "mask-flat": ("MET_pt[MET_pt > 1]", r"masking it would drop events; write where\(cond, x, default\)"),
    "mask-per-event": ("Jet_pt[MET_pt > 1]", r"per-object boolean mask"),
    "mask-numbers": ("Jet_pt[Jet_eta]", r"per-object boolean mask"),
    "property-of-number": ("Jet_pt.pt", r"property '\.pt' needs a vector value, built with p4_ptetaphim.*; at 'Jet_pt\.pt'"),
    "inv-mass-numbers": ("inv_mass(Jet_pt, Jet_eta)", r"inv_mass\(\) needs vector arguments"),
    "vector-default": ("leading(mu, 0, 0)", r"takes no default"),
    "sum-vectors": ("sum(mu)", r"sum\(\) needs numbers, not vectors"),
    "structure": ("Jet_pt + Muon_pt", r"cannot evaluate expression 'Jet_pt \+ Muon_pt'"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "match"), RUNTIME_ERRORS.values(), ids=RUNTIME_ERRORS.keys())
def test_runtime_errors(events, text, match):
    with pytest.raises(ExpressionError, match=match):
        evaluate(text, events, aliases=MUON_ALIASES)


def test_integer_subscript_points_to_leading():
    with pytest.raises(
        ExpressionError,
        match=r"integer subscript 'Jet_pt\[0\]' is not allowed; write leading\(Jet_pt, 0\)",
    ):
        Expression("Jet_pt[0]")
    with pytest.raises(ExpressionError, match=r"slice 'Jet_pt\[1:\]' is not allowed"):
        Expression("Jet_pt[1:]")


def test_bad_argument_types():
    with pytest.raises(TypeError, match="an expression must be a string"):
        Expression(["x"])
    with pytest.raises(TypeError, match="arrays must be a mapping"):
        evaluate("x", [np.ones(2)])


# -- hostile or oversized input: bounded work, short messages -------------------------


def test_nested_integer_powers_are_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match=r"cannot compute constant '\(10 \*\* 64\) \*\* 64'"):
        Expression("x * (((10**64)**64)**64)**64")
    assert time.perf_counter() - start < 2.0


def test_large_integer_constants_still_fold_exactly(flat):
    assert Expression("2 ** 100 - 2 ** 99").evaluate({"x": flat["x"]})[0] == 2**99
    np.testing.assert_array_equal(Expression("x * 10 ** 300").evaluate(flat), flat["x"] * 1e300)


def test_long_flat_sum_evaluates():
    rng = np.random.default_rng(7)
    arrays = {f"x{i}": rng.normal(size=5) for i in range(1000)}
    text = " + ".join(arrays) + " - x0 * 2"
    expected = np.zeros(5)
    for v in arrays.values():
        expected = expected + v
    expected -= arrays["x0"] * 2
    np.testing.assert_allclose(Expression(text).evaluate(arrays), expected, rtol=1e-12)


def test_oversized_sum_is_refused_with_a_short_message():
    text = " + ".join(f"x{i}" for i in range(16000))
    assert len(text) > 100_000
    with pytest.raises(ExpressionError) as err:
        Expression(text, where="config.yaml: features[0]")
    message = str(err.value)
    assert "too long or nested too deeply" in message and "'x0 + x1 + x2" in message
    assert "config.yaml: features[0]" in message
    assert len(message) < 400


def test_syntax_error_in_a_long_line_shows_a_window():
    text = " + ".join(f"x{i}" for i in range(2000)) + " + + * 2"
    with pytest.raises(ExpressionError, match=r"invalid syntax") as err:
        Expression(text)
    assert len(str(err.value)) < 800
