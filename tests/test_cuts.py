from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from hepsel.exceptions import EmptySelectionError, ExpressionError
from hepsel.prep.cuts import CutFlow, CutSequence


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"pt": rng.exponential(1000, 5000), "ip": rng.chisquare(2, 5000)}


def test_mask_and_cutflow_match_numpy(arrays: dict[str, np.ndarray]) -> None:
    seq = CutSequence([("pt", "pt > 500"), ("ip", "ip > 4")])
    w = np.linspace(0.5, 1.5, 5000)
    flow = seq.new_cutflow()
    mask = seq.mask(arrays, w, flow)
    m1 = arrays["pt"] > 500
    m2 = m1 & (arrays["ip"] > 4)
    np.testing.assert_array_equal(mask, m2)
    assert flow.raw == [5000, int(m1.sum()), int(m2.sum())]
    np.testing.assert_allclose(flow.weighted, [w.sum(), w[m1].sum(), w[m2].sum()])
    np.testing.assert_allclose(flow.sumw2, [(w**2).sum(), (w[m1] ** 2).sum(), (w[m2] ** 2).sum()])


def test_table_intervals_are_clopper_pearson(arrays: dict[str, np.ndarray]) -> None:
    seq = CutSequence([("pt", "pt > 500"), ("ip", "ip > 4")])
    flow = seq.new_cutflow()
    seq.mask(arrays, np.ones(5000), flow)
    rows = flow.table()
    k, n = flow.raw[2], flow.raw[1]
    ci = binomtest(k, n).proportion_ci(confidence_level=0.6826894921370859, method="exact")
    assert rows[2]["step_eff"] == pytest.approx(k / n)
    assert rows[2]["step_eff_low"] == pytest.approx(ci.low, abs=1e-10)
    assert rows[2]["step_eff_high"] == pytest.approx(ci.high, abs=1e-10)
    assert rows[2]["cumulative_eff"] == pytest.approx(k / 5000)
    # unit weights: weighted intervals equal the raw ones
    assert rows[2]["step_eff_weighted_low"] == pytest.approx(ci.low, abs=1e-8)
    md = flow.to_markdown(title="sig")
    assert "| ip |" in md and "Clopper-Pearson" in md


def test_merge_is_sum() -> None:
    a = CutFlow(["all", "x"], [10, 5], [10.0, 5.0], [10.0, 5.0])
    b = CutFlow(["all", "x"], [4, 1], [2.0, 0.5], [1.0, 0.25])
    m = a.merge(b)
    assert m.raw == [14, 6]
    assert m.weighted == [12.0, 5.5]
    with pytest.raises(ValueError, match="different steps"):
        a.merge(CutFlow(["all", "y"]))
    assert CutFlow.from_dict(m.to_dict()) == m


def test_empty_cut_is_reported_by_name() -> None:
    flow = CutFlow(["all candidates", "pt > 1e9"], [100, 0], [100.0, 0.0], [100.0, 0.0])
    with pytest.raises(
        EmptySelectionError, match=r"cut 'pt > 1e9' selects no candidate of sample 'sig'"
    ):
        CutSequence.check_not_empty(flow, sample="sig", where="test")


def test_non_boolean_cut_is_rejected(arrays: dict[str, np.ndarray]) -> None:
    seq = CutSequence([("oops", "pt * 2")])
    with pytest.raises(ExpressionError, match="not a boolean expression"):
        seq.mask(arrays, np.ones(5000))
