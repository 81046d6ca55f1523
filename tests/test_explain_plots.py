"""Explanation figures: SHAP summaries, dependence plots and one candidate's waterfall + LIME.

Layout is checked with matplotlib's renderer (text extents in pixels), so the
tests hold what a reader sees: labels, units, digits, ranges, nothing on top
of anything else.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.transforms import Bbox

from hepsel.report import explain_plots, plotting

NAMES = ["sum_pt", "B_PT", "B_ETA", "B_MCORR", "noise"]
LABELS = {
    "sum_pt": "$p_T(h_1)+p_T(h_2)$ [MeV]",
    "B_PT": "$p_T(B)$ [MeV]",
    "B_ETA": r"$\eta(B)$",
    "B_MCORR": "$m_{corr}(B)$ [MeV]",
}


@pytest.fixture(autouse=True)
def _style() -> Iterator[None]:
    with plotting.lhcb_style():
        yield
    plt.close("all")


def _explanation(output: str = "margin (log-odds)") -> SimpleNamespace:
    """SHAP values with a long-tailed feature (B_MCORR) whose effect depends on B_ETA."""
    rng = np.random.default_rng(1)
    n = 1500
    data = np.c_[
        rng.gamma(3.0, 1500.0, n),
        rng.gamma(2.0, 2000.0, n),
        rng.uniform(2.0, 5.0, n),
        np.where(rng.random(n) < 0.03, rng.uniform(10e3, 40e3, n), rng.gamma(4.0, 600.0, n)),
        rng.normal(size=n),
    ]
    values = np.c_[
        (data[:, 0] - 4500) / 1500,
        0.3 * rng.normal(size=n),
        0.4 * (data[:, 2] - 3.5),
        np.tanh((data[:, 3] - 3000) / 1500) * (1 + (data[:, 2] - 3.5)),
        0.01 * rng.normal(size=n),
    ]
    return SimpleNamespace(
        values=values, base=np.zeros(n), data=data, feature_names=NAMES, output=output
    )


def _boxes(fig: Any, artists: list[Any]) -> list[Bbox]:
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return [a.get_window_extent(r) for a in artists]


def _overlaps(a: Bbox, b: Bbox, tol: float = 0.5) -> bool:
    return a.x0 < b.x1 - tol and b.x0 < a.x1 - tol and a.y0 < b.y1 - tol and b.y0 < a.y1 - tol


def _texts(fig: Any) -> list[Any]:
    return [t for ax in fig.axes for t in ax.texts if t.get_text() and t.get_visible()]


# --------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "kw", "text"),
    [
        (3.6513, {}, "3.65"),
        (0.2, {}, "0.200"),
        (0.0004364, {}, r"$4.36\times10^{-4}$"),
        (6171.3, {}, "6170"),
        (-3.198, {"signed": True}, "\N{MINUS SIGN}3.20"),
        (0.5913, {"signed": True}, "+0.591"),
        (-0.0, {"signed": True}, "0"),
        (-1.234e-5, {}, r"$-1.23\times10^{-5}$"),
        (2.02e5, {}, r"$2.02\times10^{5}$"),
    ],
    ids=[
        "mean-shap",
        "no-plus",
        "small",
        "MeV",
        "negative",
        "signed",
        "no-minus-zero",
        "small-negative",
        "large",
    ],
)
def test_format_sig(value: float, kw: dict[str, bool], text: str) -> None:
    assert explain_plots.format_sig(value, **kw) == text


def test_one_name_for_the_log_odds_of_every_classifier() -> None:
    q = explain_plots.explained_quantity
    log_odds = {
        q("margin (log-odds)"),  # bdt, bbdt
        q("logit"),  # mlp, lipschitz_mlp
        q("TreeSHAP (xgboost pred_contribs); exact"),
        q("expected gradients (shap.GradientExplainer) on the logit; a sampling estimate"),
        q("exact linear SHAP: coefficient x (value - training-sample mean)"),  # fisher
    }
    assert log_odds == {"log-odds"}
    assert q("reconstruction error") == "reconstruction error"
    assert (
        q("expected gradients (shap.GradientExplainer) on the reconstruction error")
        == "reconstruction error"
    )


def test_bulk_range_cuts_a_long_tail_and_keeps_the_bulk() -> None:
    rng = np.random.default_rng(0)
    x = np.r_[rng.gamma(4.0, 600.0, 1940), rng.uniform(10e3, 200e3, 60)]
    lo, hi = explain_plots.bulk_range(x)
    assert hi < 0.5 * np.quantile(x, 0.995)  # the tail no longer sets the range
    assert np.mean(x > hi) <= 0.05  # at most 5% beyond
    assert lo < np.quantile(x, 0.005)
    # a compact distribution keeps its 0.5%-99.5% quantiles (padded)
    y = rng.normal(size=2000)
    assert explain_plots.bulk_range(y) == pytest.approx(plotting.quantile_range(y))


def test_quantile_colours() -> None:
    q = explain_plots.quantile_colours([5.0, 1e6, np.nan, 1.0, 5.0])
    np.testing.assert_allclose(q[[0, 1, 3, 4]], [0.5, 1.0, 0.0, 0.5])
    assert np.isnan(q[2])


# --------------------------------------------------------------------------
# SHAP summaries
# --------------------------------------------------------------------------
def test_summaries_are_drawn_without_shap_in_the_lhcb_style(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "shap", None)  # `import shap` now fails
    figs = explain_plots.shap_figures(_explanation(), labels=LABELS, max_dependence=5)
    style_font = plt.rcParams["font.serif"][0]
    for name, fig in figs.items():
        ax = fig.axes[0]
        for t in [*ax.get_yticklabels(), ax.xaxis.label]:
            assert t.get_fontfamily() == ["serif"], name
        assert "LHCb-like Simulation" in [t.get_text() for t in ax.texts], name
    assert style_font == "Tex Gyre Termes"


def test_labels_name_the_particle_and_units_reach_the_figures() -> None:
    figs = explain_plots.shap_figures(_explanation(), labels=LABELS, max_dependence=5)
    for kind in ("beeswarm", "bar"):
        ticks = {t.get_text() for t in figs[kind].axes[0].get_yticklabels()}
        assert set(LABELS.values()) <= ticks
        assert "noise" in ticks  # a feature without a label keeps its name
    dep = figs["dependence_B_MCORR"].axes[0]
    assert dep.get_xlabel() == "$m_{corr}(B)$ [MeV]"


def test_bar_numbers_are_plain_with_three_significant_digits() -> None:
    ax = explain_plots.bar_plot(_explanation().values, NAMES, labels=LABELS)
    numbers = [t.get_text() for t in ax.texts if t.get_text() != "LHCb-like Simulation"]
    assert len(numbers) == len(NAMES)
    for s in numbers:
        assert not s.startswith("+")
        digits = s.lstrip("0.").replace(".", "")
        assert len(digits) == 3, s
    # every number inside the frame, none on another
    fig = ax.figure
    frame = _boxes(fig, [ax])[0]
    boxes = _boxes(fig, [t for t in ax.texts if t.get_text() in numbers])
    for b in boxes:
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1
    assert not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


@pytest.mark.parametrize(
    ("output", "quantity"),
    [
        ("margin (log-odds)", "log-odds"),
        ("logit", "log-odds"),
        ("reconstruction error", "reconstruction error"),
    ],
    ids=["bdt", "mlp", "autoencoder"],
)
def test_output_is_named_the_same_for_every_model_kind(output: str, quantity: str) -> None:
    figs = explain_plots.shap_figures(_explanation(output), labels=LABELS, max_dependence=5)
    assert figs["beeswarm"].axes[0].get_xlabel() == f"SHAP value (contribution to the {quantity})"
    assert figs["bar"].axes[0].get_xlabel() == f"mean |SHAP value| (contribution to the {quantity})"
    assert f"(contribution to the {quantity})" in figs["dependence_B_MCORR"].axes[0].get_ylabel()
    for fig in figs.values():
        text = " ".join(t.get_text() for ax in fig.axes for t in [ax.xaxis.label, ax.yaxis.label])
        assert "((" not in text and "))" not in text
        assert "margin" not in text and "logit" not in text


def test_beeswarm_is_reproducible_and_coloured_by_quantile() -> None:
    e = _explanation()
    a = explain_plots.beeswarm_plot(e.values, e.data, NAMES, labels=LABELS)
    b = explain_plots.beeswarm_plot(e.values, e.data, NAMES, labels=LABELS)
    for ca, cb in zip(a.collections, b.collections, strict=True):
        np.testing.assert_array_equal(ca.get_offsets(), cb.get_offsets())
    coloured = [c for c in a.collections if c.get_array() is not None]
    assert coloured and all(0 <= c.norm.vmin and c.norm.vmax <= 1 for c in coloured)
    # each row's colours span low to high, whatever the feature's tail
    for c in coloured:
        arr = np.asarray(c.get_array())
        assert arr.min() == pytest.approx(0) and arr.max() == pytest.approx(1)
    cbar = a.figure.axes[-1]
    assert cbar.get_ylabel() == r"feature value (low $\rightarrow$ high)"
    # rows ordered by mean |SHAP|, largest on top
    ticks = [t.get_text() for t in a.get_yticklabels()]
    ys = [t.get_position()[1] for t in a.get_yticklabels()]
    top = ticks[int(np.argmax(ys))]
    mean = np.abs(e.values).mean(0)
    assert top == LABELS[NAMES[int(np.argmax(mean))]]


def test_summary_titles_do_not_overlap() -> None:
    figs = explain_plots.shap_figures(
        _explanation(), labels=LABELS, max_dependence=3, title="bdt: 1,500 candidates"
    )
    for name, fig in figs.items():
        ax = fig.axes[0]
        texts = [t for t in [*ax.texts, ax.title, ax._right_title] if t.get_text()]
        boxes = _boxes(fig, texts)
        assert not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]), name


def test_max_display_sums_the_rest_into_one_row() -> None:
    e = _explanation()
    ax = explain_plots.bar_plot(e.values, NAMES, max_display=3)
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ticks) == 3 and "sum of 3 other features" in ticks


# --------------------------------------------------------------------------
# dependence plots
# --------------------------------------------------------------------------
def test_dependence_range_from_the_bulk_with_the_tail_counted() -> None:
    e = _explanation()
    x, y = e.data[:, 3], e.values[:, 3]
    ax = explain_plots.dependence_plot(x, y, xlabel="$m_{corr}(B)$ [MeV]")
    lo, hi = ax.get_xlim()
    assert hi < 12e3  # the tail to 40 GeV does not squeeze the bulk
    assert np.mean(x < hi) > 0.95
    note = ax._right_title.get_text()
    m = re.match(rf"(\d+) of {len(x)} candidates beyond the range", note)
    assert m
    # those candidates are drawn as open triangles at the edge, inside the frame
    triangles = [c for c in ax.collections if len(c.get_facecolors()) == 0]
    at_edge = np.concatenate([c.get_offsets() for c in triangles])
    assert len(at_edge) == int(m[1]) >= np.sum((x > hi) | (x < lo)) > 0
    ylo, yhi = ax.get_ylim()
    assert np.all((lo < at_edge[:, 0]) & (at_edge[:, 0] < hi))
    assert np.all((ylo < at_edge[:, 1]) & (at_edge[:, 1] < yhi))


def test_dependence_colour_is_the_quantile_of_the_interacting_feature() -> None:
    e = _explanation()
    figs = explain_plots.shap_figures(
        e, labels=LABELS, max_dependence=4, colour_by={"B_MCORR": "B_ETA"}
    )
    fig = figs["dependence_B_MCORR"]
    cbar = fig.axes[-1]
    assert cbar.get_ylabel() == r"$\eta(B)$"
    ticks = [t.get_text() for t in cbar.get_yticklabels()]
    expected = [explain_plots.format_sig(v) for v in np.quantile(e.data[:, 2], [0.1, 0.5, 0.9])]
    assert ticks == expected
    # no colour asked for: one colour, no colour bar
    assert len(figs["dependence_sum_pt"].axes) == 1


# --------------------------------------------------------------------------
# one candidate: SHAP waterfall and LIME
# --------------------------------------------------------------------------
def _candidate(
    lime_pred: float = 2.4, r2: tuple[float, ...] = (0.8, 0.82, 0.79)
) -> SimpleNamespace:
    # contributions chosen so that a label beyond a bar's end would sit on the output line
    shap = np.array([3.0, -1.2, 0.9, -0.9, 0.45, -0.0004364, 0.02, 0.001])
    lime = np.array([2.0, -1.6, 0.3, -0.05, 0.4, -0.3, 0.02, 0.001])
    return SimpleNamespace(
        feature_names=["B_MCORR", "sum_pt", "B_ETA", "B_PT", "min_pt", "dira", "doca", "vtx"],
        value=np.array([5447.3, 5500.2, 3.8437, 1080.0, 2210.0, 0.0004364, 0.05, 1.15]),
        shap=shap,
        shap_base=0.0578,
        output=0.0578 + shap.sum(),
        shap_method="TreeSHAP (xgboost pred_contribs); exact",
        lime_contribution=lime,
        lime_weight_std=np.array([0.05, 0.2, 0.3, 0.1, 0.05, 0.1, 0.2, 0.05]),
        lime_offset=np.array([1.0, 0.5, 0.4, 1.2, 0.8, 0.6, 0.5, 0.2]),
        lime_r2=list(r2),
        lime_local_pred=lime_pred,
    )


def _value_labels(ax: Any) -> list[Any]:
    return [t for t in ax.texts if t.get_text()]


def test_why_labels_clear_of_bars_error_bars_and_lines() -> None:
    e = _candidate()
    fig = explain_plots.why_figure(e, labels={"B_MCORR": "$m_{corr}(B)$ [MeV]"}, title="t")
    ax1, ax2 = fig.axes
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for ax in (ax1, ax2):
        labels = _value_labels(ax)
        assert len(labels) == len(e.shap)
        boxes = [t.get_window_extent(r) for t in labels]
        bars = [p.get_window_extent(r) for p in ax.patches]
        lines = [ln.get_window_extent(r) for ln in ax.lines if ln.get_linestyle() != "None"]
        frame = ax.get_window_extent(r)
        for b in boxes:
            assert not any(_overlaps(b, o) for o in bars), ax.get_title()
            assert not any(_overlaps(b, o) for o in lines if o.width < 5), ax.get_title()
            assert frame.x0 <= b.x0 and b.x1 <= frame.x1
        # error bars: one segment per row; a label may not touch the one of its own row
        for seg in ax.collections[0].get_segments() if ax is ax2 else []:
            (x0, y0), (x1, _) = ax.transData.transform(seg)
            seg_box = Bbox([[min(x0, x1), y0 - 1], [max(x0, x1), y0 + 1]])
            assert not any(_overlaps(b, seg_box) for b in boxes)
        assert not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_why_numbers_have_three_significant_digits_and_units_after_the_value() -> None:
    fig = explain_plots.why_figure(
        _candidate(), labels={"B_MCORR": "$m_{corr}(B)$ [MeV]", "dira": "acos(DIRA) [rad]"}
    )
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "$m_{corr}(B)$ = 5450 MeV" in ticks
    assert r"acos(DIRA) = $4.36\times10^{-4}$ rad" in ticks
    values = [t.get_text() for ax in fig.axes for t in _value_labels(ax)]
    assert "+3.00" in values and "\N{MINUS SIGN}1.20" in values
    assert not any("0004364" in v for v in values + ticks)
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()][:2] == [
        "base value 0.0578",
        f"model output {explain_plots.format_sig(_candidate().output)}",
    ]


def test_why_legend_sits_under_the_axis_labels_without_a_blank_band() -> None:
    fig = explain_plots.why_figure(_candidate(), title="t")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(r)
    lowest = min(ax.get_tightbbox(r).y0 for ax in fig.axes)
    assert legend.y1 <= lowest  # below every axis label, on none
    assert lowest - legend.y1 < 20  # and right under them
    assert fig.get_tightbbox(r).y0 * fig.dpi >= legend.y0 - 20


@pytest.mark.parametrize(
    ("lime_pred", "r2", "reason"),
    [
        (-4.9, (0.8, 0.8), "opposite sign"),
        (2.4, (0.2, 0.3), "below 0.5"),
    ],
    ids=["wrong-sign", "poor-fit"],
)
def test_untrustworthy_lime_gets_a_red_framed_warning(
    lime_pred: float, r2: tuple[float, ...], reason: str
) -> None:
    fig = explain_plots.why_figure(_candidate(lime_pred, r2), min_r2=0.5)
    title = fig.axes[1].title
    assert "WARNING" in title.get_text() and reason in title.get_text()
    box = title.get_bbox_patch()
    assert box is not None
    assert matplotlib.colors.same_color(box.get_edgecolor(), "#d62728")
    # the framed warning stays clear of the SHAP panel's title
    boxes = _boxes(fig, [fig.axes[0].title, title])
    assert not _overlaps(*boxes)


def test_trustworthy_lime_has_no_warning() -> None:
    fig = explain_plots.why_figure(_candidate(), min_r2=0.5)
    title = fig.axes[1].title
    assert "WARNING" not in title.get_text()
    assert title.get_bbox_patch() is None
    assert "prediction 2.40" in title.get_text()


def test_dependence_colour_bar_label_clear_of_its_ticks() -> None:
    e = _explanation()
    ax = explain_plots.dependence_plot(
        e.data[:, 2], e.values[:, 2], colour=e.data[:, 4], colour_label="log min $\\chi^2_{IP}(h)$"
    )
    cbar = ax.figure.axes[-1]
    label, *ticks = _boxes(ax.figure, [cbar.yaxis.label, *cbar.get_yticklabels()])
    assert label.x0 - max(t.x1 for t in ticks) >= 4  # a visible gap, not touching
