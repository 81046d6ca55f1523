"""Plot helpers and plot functions: names, bands, ranges, and where each artist ends up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

from hepsel.report import explain_plots, feature_plots, plotting, study_plots


def test_dots_in_names_do_not_make_plots_collide(tmp_path: Path) -> None:
    written = []
    for feature in ("mu.pt", "mu.eta"):
        fig, ax = plotting.new_figure()
        ax.set_title(feature)
        written += plotting.save(fig, tmp_path / f"shap_dependence_{feature}_bdt")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "shap_dependence_mu.eta_bdt.pdf",
        "shap_dependence_mu.eta_bdt.png",
        "shap_dependence_mu.pt_bdt.pdf",
        "shap_dependence_mu.pt_bdt.png",
    ]
    assert sorted(p.name for p in written) == names


# --------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "tex"),
    [
        pytest.param("B0 -> K+ pi-", r"$B^0 \to K^+ \pi^-$", id="B0-Kpi"),
        pytest.param("Bs0 -> K+ K-", r"$B^0_s \to K^+ K^-$", id="Bs-KK"),
        pytest.param(
            "B0 -> D- pi+ (2 tracks)", r"$B^0 \to D^- \pi^+$ (2 tracks)", id="trailing-text"
        ),
        pytest.param("Lambdab0 -> p K-", r"$\Lambda^0_b \to p K^-$", id="Lambda_b"),
        pytest.param("B+ -> J/psi K+", r"$B^+ \to J/\psi K^+$", id="Jpsi"),
        pytest.param("D~0 -> K+ pi-", r"$\bar{D}^0 \to K^+ \pi^-$", id="antiparticle"),
        pytest.param("Bs0 -> mu+ mu-", r"$B^0_s \to \mu^+ \mu^-$", id="mumu"),
        pytest.param("minimum bias", "minimum bias", id="no-particles"),
    ],
)
def test_mode_latex(name: str, tex: str) -> None:
    assert plotting.mode_latex(name) == tex


def test_mode_latex_renders_with_mathtext() -> None:
    from matplotlib.mathtext import MathTextParser

    parser = MathTextParser("agg")
    for name in ("B0 -> K+ pi-", "Lambdab0 -> p K-", "D~0 -> K+ pi-", "B+ -> J/psi K+"):
        parser.parse(plotting.mode_latex(name).split("$")[1].join("$$"))


@pytest.mark.parametrize("method", ["clopper_pearson", "wilson", "normal"])
def test_binomial_band_matches_intervals(method: str) -> None:
    from hepsel.stats import intervals

    eff = np.array([0.0, 0.1, 0.5, 0.853, 1.0])
    lo, hi = plotting.binomial_band(eff, 13047, method=method)
    ref_lo, ref_hi = getattr(intervals, method)(eff * 13047, np.full(5, 13047.0))
    np.testing.assert_allclose(lo, ref_lo)
    np.testing.assert_allclose(hi, ref_hi)
    assert np.all(lo <= eff + 1e-12)
    assert np.all(hi >= eff - 1e-12)


def test_binomial_band_clopper_pearson_against_scipy() -> None:
    from scipy.stats import beta

    lo, hi = plotting.binomial_band(np.array([0.3]), 1000, method="clopper_pearson", cl=0.95)
    assert lo[0] == pytest.approx(beta.ppf(0.025, 300, 701))
    assert hi[0] == pytest.approx(beta.ppf(0.975, 301, 700))


def test_binomial_band_shrinks_with_more_events() -> None:
    lo1, hi1 = plotting.binomial_band(np.array([0.8]), 100)
    lo2, hi2 = plotting.binomial_band(np.array([0.8]), 10000)
    assert (hi2 - lo2)[0] < 0.2 * (hi1 - lo1)[0]


def test_binomial_band_bootstrap_falls_back_to_clopper_pearson() -> None:
    a = plotting.binomial_band(np.array([0.4]), 50, method="bootstrap")
    b = plotting.binomial_band(np.array([0.4]), 50, method="clopper_pearson")
    np.testing.assert_allclose(a, b)


def test_quantile_range_ignores_outliers() -> None:
    x = np.concatenate([np.random.default_rng(1).uniform(0, 10, 10_000), [1e6, -1e6, np.nan]])
    lo, hi = plotting.quantile_range(x)
    assert -1 < lo < 0.5
    assert 9.5 < hi < 11


def test_quantile_range_log_is_positive_and_multiplicative() -> None:
    x = np.concatenate([np.geomspace(1e-3, 1e2, 1000), [0.0, -5.0]])
    lo, hi = plotting.quantile_range(x, q=(0.0, 1.0), log=True)
    assert 0 < lo < 1e-3
    assert hi > 1e2
    assert np.log10(1e-3 / lo) == pytest.approx(np.log10(hi / 1e2))


def test_quantile_range_degenerate() -> None:
    assert plotting.quantile_range(np.full(10, 3.0)) == (2.5, 3.5)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        pytest.param(np.geomspace(1e-4, 1.0, 1000), True, id="four-decades"),
        pytest.param(np.linspace(1500, 20000, 1000), False, id="one-decade"),
        pytest.param(np.linspace(-1, 1e4, 1000), False, id="not-positive"),
        pytest.param(np.r_[np.linspace(1, 5, 1000), 1e9], False, id="one-outlier"),
    ],
)
def test_spans_decades(x: np.ndarray, expected: bool) -> None:
    assert plotting.spans_decades(x) is expected


def test_is_integer_binning() -> None:
    assert plotting.is_integer_binning([0.5, 2.5, 4.5, 12.5])
    assert not plotting.is_integer_binning([0, 0.5, 1.0])
    assert not plotting.is_integer_binning([2.0, 2.5, 3.0])


# --------------------------------------------------------------------------
# each plot function on small inputs
# --------------------------------------------------------------------------
def _legend_outside(ax: Any) -> None:
    """The legend lies right of the axes, so it cannot cover any data."""
    leg = ax.get_legend()
    assert leg is not None
    ax.figure.canvas.draw()
    assert leg.get_window_extent().x0 >= ax.get_window_extent().x1


@pytest.fixture
def rate_curves() -> dict[str, dict[str, np.ndarray]]:
    thr = np.linspace(1, 0, 101)
    return {
        m: {
            "threshold": thr,
            "rate_khz": 30000 * (1 - thr) ** 3 + 0.1,
            "eff": (1 - thr) ** (0.3 + 0.2 * i),
            "eff_tos": 0.9 * (1 - thr) ** (0.3 + 0.2 * i),
        }
        for i, m in enumerate(("bdt", "mlp"))
    }


def test_roc_plot_marks_working_points() -> None:
    with plotting.lhcb_style():
        thr = np.linspace(1, 0, 101)
        curves = {
            m: {
                "bkg_eff": (1 - thr) ** 3 + 1e-5,
                "sig_eff": (1 - thr) ** 0.3,
                "threshold": thr,
                "auc": 0.9,
            }
            for m in ("bdt", "mlp")
        }
        ax = plotting.roc_plot(
            curves, working_points={m: {"660 kHz": 0.8, "100 kHz": 0.95} for m in curves}
        )
        _legend_outside(ax)
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "cut at 660 kHz" in texts
        # two curves + two working points on each
        assert len(ax.lines) == 2 + 4
        marks = [ln.get_marker() for ln in ax.lines if ln.get_marker() not in ("None", "")]
        assert sorted(marks) == ["o", "o", "s", "s"]
        plt.close(ax.figure)


def test_rate_plot_marks_working_points_at_their_measured_rates(
    rate_curves: dict[str, dict[str, np.ndarray]],
) -> None:
    """Each working point sits at the rate measured on the other minimum-bias half, with its error bars."""
    name = next(iter(rate_curves))
    wp = {
        "rate_khz_measured": 700.0,
        "rate_khz_measured_err": 20.0,
        "eff": 0.8,
        "eff_low": 0.79,
        "eff_high": 0.82,
    }
    with plotting.lhcb_style():
        ax = plotting.rate_plot(
            rate_curves,
            targets_khz=[660, 100],
            n_signal_events=500,
            input_rate_khz=30000,
            working_points={name: {"660": wp}},
        )
        ax.figure.canvas.draw()
        bars = [c for c in ax.containers if hasattr(c, "has_xerr") and c.has_xerr]
        assert len(bars) == 1
        (x,), (y,) = bars[0].lines[0].get_data()
        assert (x, y) == (700.0, 0.8)
        xerr, yerr = bars[0].lines[2]
        (xs,) = xerr.get_segments()
        assert xs[0][0] == pytest.approx(680.0) and xs[1][0] == pytest.approx(720.0)
        (ys,) = yerr.get_segments()
        assert ys[0][1] == pytest.approx(0.79) and ys[1][1] == pytest.approx(0.82)
        _legend_outside(ax)
        labels = [t.get_text() for t in ax.texts]
        assert any("660 kHz" in t for t in labels)
        assert "30 MHz" in ax.get_xlabel()
        assert "500 signal events" in ax.get_legend().get_title().get_text()
        plt.close(ax.figure)


def test_rate_text_for_people() -> None:
    assert [plotting.rate_text(r) for r in (30000.0, 660.0, 1.5, 0.02)] == [
        "30 MHz",
        "660 kHz",
        "1.5 kHz",
        "20 Hz",
    ]


def test_logit_ticks_use_one_notation() -> None:
    texts = [plotting.logit_tick_text(t) for t in (1e-4, 1e-2, 0.5, 0.99, 0.9999)]
    assert texts == ["0.0001", "0.01", "0.5", "0.99", "0.9999"]


def test_count_text() -> None:
    assert plotting.count_text(1000.0) == "1000"
    assert plotting.count_text(1.5384e6) == "$1.54 \\times 10^{6}$"
    assert plotting.count_text(1e6) == "$10^{6}$"


def _binned(edges: list[float], v: float) -> dict[str, np.ndarray]:
    n = len(edges) - 1
    return {
        "edges": np.array(edges),
        "value": np.full(n, v),
        "low": np.full(n, v - 0.05),
        "high": np.full(n, v + 0.05),
    }


def test_efficiency_plot_points_at_true_centres_with_integer_ticks() -> None:
    edges = [0.5, 2.5, 4.5, 6.5, 12.5]
    with plotting.lhcb_style():
        ax = plotting.efficiency_plot(
            {
                plotting.mode_latex("B0 -> K+ pi-"): _binned(edges, 0.9),
                plotting.mode_latex("Bs0 -> K+ K-"): _binned(edges, 0.8),
            },
            xlabel="number of PVs",
            interval_label="Clopper-Pearson",
        )
        centres = 0.5 * (np.array(edges[1:]) + np.array(edges[:-1]))
        for line in ax.lines:
            if line.get_linestyle() == "None" and len(line.get_xdata()) == len(centres):
                np.testing.assert_allclose(line.get_xdata(), centres)
        markers = {
            ln.get_marker()
            for ln in ax.lines
            if ln.get_linestyle() == "None" and ln.get_marker() not in ("", "None")
        }
        assert len(markers) == 2
        assert ax.xaxis.get_major_locator()._integer
        _legend_outside(ax)
        plt.close(ax.figure)


def test_efficiency_vs_cut_plot_resolves_region_near_one() -> None:
    thr = np.r_[np.inf, np.linspace(0.9999, 0.001, 500)]
    with plotting.lhcb_style():
        ax = study_plots.efficiency_vs_cut_plot(
            thr, 1 - thr**8, (1 - thr) ** 2, working_points={"660 kHz": 0.83, "100 kHz": 0.97}
        )
        assert ax.get_xscale() == "logit"
        assert ax.get_yscale() == "logit"
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(t.startswith("660 kHz: cut 0.8300") for t in texts)
        assert sum(1 for ln in ax.lines if ln.get_linestyle() == "--") == 2
        plt.close(ax.figure)


def test_score_plot_y_range_fits_the_data() -> None:
    rng = np.random.default_rng(2)
    s, b = rng.beta(5, 1, 2000), rng.beta(1, 5, 2000)
    w = np.ones(2000)
    with plotting.lhcb_style():
        ax = plotting.score_plot(
            {"signal": (s, w), "background": (b, w)}, {"signal": (s, w), "background": (b, w)}
        )
        lo, hi = ax.get_ylim()
        h, _ = np.histogram(s, np.linspace(0, 1, 41), density=True)
        assert hi == pytest.approx(
            2 * max(h.max(), np.histogram(b, np.linspace(0, 1, 41), density=True)[0].max())
        )
        assert lo > 0
        _legend_outside(ax)
        plt.close(ax.figure)


def test_cutflow_plot_leaves_room_for_every_marker() -> None:
    rows = [
        {
            "step": s,
            "cumulative_eff": e,
            "cumulative_eff_low": e * 0.9,
            "cumulative_eff_high": min(e * 1.1, 1),
        }
        for s, e in (
            ("all candidates", 1.0),
            ("track pT > 500 MeV", 0.3),
            ("vertex chi2 < 10", 0.05),
        )
    ]
    with plotting.lhcb_style():
        ax = plotting.cutflow_plot({"signal": rows, "minbias": rows})
        lo, hi = ax.get_ylim()
        assert lo < 0.045 and hi > 1.0
        xlo, xhi = ax.get_xlim()
        assert xlo < 0 and xhi > 2
        plt.close(ax.figure)


def test_correlation_plot_difference_uses_its_own_scale() -> None:
    d = np.array([[0.0, 0.12], [0.12, 0.0]])
    with plotting.lhcb_style():
        ax = feature_plots.correlation_plot(d, ["a", "b"], difference=True, title="fold 0")
        assert ax.images[0].get_clim() == pytest.approx((-0.12, 0.12))
        assert "+0.12" in [t.get_text() for t in ax.texts]
        plt.close(ax.figure)
        ax = feature_plots.correlation_plot(np.array([[1.0, -0.001], [-0.001, 1.0]]), ["a", "b"])
        assert "-0" not in [t.get_text() for t in ax.texts]
        plt.close(ax.figure)


def test_dependence_plot_log_scale_and_quantile_range() -> None:
    rng = np.random.default_rng(3)
    x = 10 ** rng.uniform(-4, 0, 2000)
    y = np.log10(x) + rng.normal(0, 0.1, 2000)
    y[0] = 1e3
    with plotting.lhcb_style():
        ax = explain_plots.dependence_plot(x, y, colour=rng.normal(size=2000), colour_label="c")
        assert ax.get_xscale() == "log"
        assert ax.get_ylim()[1] < 10
        plt.close(ax.figure)


def test_overlay_grid_histograms_are_not_clipped() -> None:
    rng = np.random.default_rng(4)
    real = np.c_[rng.normal(size=1000), 10 ** rng.uniform(-4, 0, 1000)]
    gen = np.c_[rng.normal(scale=0.3, size=1000), 10 ** rng.uniform(-4, 0, 1000)]
    with plotting.lhcb_style():
        fig = feature_plots.overlay_grid(real, gen, ["x", "y"], title="fold 0")
        hists, ratios = fig.axes[0::2], fig.axes[1::2]
        for ax in hists:
            from matplotlib.patches import StepPatch

            top = max(
                float(np.max(p.get_data().values)) for p in ax.patches if isinstance(p, StepPatch)
            )
            assert top < ax.get_ylim()[1]
        assert hists[1].get_xscale() == "log" and ratios[1].get_xscale() == "log"
        assert "fold 0" in fig._suptitle.get_text()
        # the ratio panel: generated / real per bin (same sample sizes: the ratio of counts)
        edges = hists[0].patches[0].get_data().edges
        hr, _ = np.histogram(np.clip(real[:, 0], edges[0], edges[-1]), edges)
        hg, _ = np.histogram(np.clip(gen[:, 0], edges[0], edges[-1]), edges)
        line = ratios[0].containers[0].lines[0]
        ok = hr > 0
        np.testing.assert_allclose(np.asarray(line.get_ydata())[ok], (hg / hr)[ok])
        # the generated histogram carries Poisson error bars
        assert hists[0].containers and hists[0].containers[0].has_yerr
        plt.close(fig)


def test_pull_plot_keeps_the_tallest_bin_and_quotes_robust_width() -> None:
    from scipy.stats import t

    rng = np.random.default_rng(7)
    pulls = 0.2 * rng.standard_normal(5000)  # far narrower than Student t: a tall central bin
    with plotting.lhcb_style():
        ax = study_plots.pull_plot(pulls, 3)
        dens = ax.patches[0].get_data().values
        assert dens.max() < ax.get_ylim()[1]
        (text,) = [x.get_text() for x in ax.texts if "median" in x.get_text()]
        lo, med, hi = np.quantile(pulls, [0.15866, 0.5, 0.84134])
        assert f"median {med:+.2f}" in text
        assert f"half-width {(hi - lo) / 2:.2f} (Student t: {t.ppf(0.84134, 2):.2f})" in text
        plt.close(ax.figure)


def test_log_efficiency_plot_keeps_intervals_in_the_frame_and_draws_empty_bins_as_limits() -> None:
    edges = [0.0, 1.0, 2.0, 3.0]
    binned = {
        "wp": {
            "edges": np.array(edges),
            "value": np.array([0.2, 0.0, 1e-5]),
            "low": np.array([0.15, 0.0, 2e-6]),
            "high": np.array([0.25, 0.05, 4e-5]),
        }
    }
    with plotting.lhcb_style():
        ax = plotting.efficiency_plot(binned, xlabel="$m$ [MeV]", interval_label="CP", logy=True)
        lo, hi = ax.get_ylim()
        assert ax.get_yscale() == "log"
        assert lo < 2e-6 and hi >= 1.0  # the lowest lower edge and 1 inside the frame
        limits = [c for c in ax.containers if getattr(c, "has_yerr", False) and c.lines[1]]
        # the empty bin: an upper limit (arrow) at its upper edge, no point at zero
        arrows = [c for c in ax.containers if c.lines[0] is None]
        assert len(arrows) == 1 and limits
        assert ax.get_xlabel() == "$m$ [MeV]"
        plt.close(ax.figure)
