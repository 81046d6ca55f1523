"""Event views, rates and efficiencies of hepsel.workflow.evaluation against brute force on a hand-made sample.

The sample (``_dataset``): 8 minimum-bias events with candidates out of 20
processed, and 8 signal events, one of which has no truth-matched candidate.
Candidates are shuffled; two minimum-bias events share an event number but not
a run; signal and minimum-bias reuse event numbers. The expectations are
worked out by hand in the comments and recomputed with explicit loops.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from hepsel.config.schema import AnalysisConfig
from hepsel.prep.dataset import Dataset
from hepsel.stats.trigger import EventScores
from hepsel.workflow.cross_scoring import CrossScores, one_per_event
from hepsel.workflow.evaluation import (
    EventViews,
    _rates,
    event_views,
    model_summary,
    offline_figures,
    rate_curves,
)

from .conftest import tiny_config

CL = float(stats.norm.cdf(1.0) - stats.norm.cdf(-1.0))  # 68.3%
INPUT_KHZ = 1000.0
NORM = 0.5  # the minimum-bias normalisation: weights and event totals both carry it

# (run, event, [candidate scores]); 20 processed events, 12 of them without candidates
MINBIAS = [
    (1, 100, [0.10, 0.35]),
    (1, 101, [0.80]),
    (1, 102, [0.55, 0.20, 0.60]),
    (1, 103, [0.95]),
    (2, 100, [0.30]),  # same event number, another run: another event
    (1, 105, [0.70, 0.05]),
    (1, 106, [0.45]),
    (1, 107, [0.65]),
]
MB_EVENTS = 20

# (run, event, event weight, [(score, truth-matched, mode)]); mode 9 marks candidates that are not truth-matched
SIGNAL = [
    (1, 100, 1.0, [(0.90, 1, 1), (0.40, 0, 9)]),
    (1, 101, 2.0, [(0.50, 0, 9), (0.85, 1, 2)]),
    (1, 102, 1.0, [(0.75, 0, 9), (0.20, 1, 1)]),
    (1, 103, 1.5, [(0.30, 0, 9)]),  # no truth-matched candidate: not a signal event of the study
    (1, 104, 0.5, [(0.62, 1, 2)]),
    (1, 105, 1.0, [(0.99, 0, 9), (0.58, 1, 1)]),
    (1, 106, 1.0, [(0.10, 1, 3)]),
    (1, 107, 1.0, [(0.81, 1, 1), (0.70, 0, 9)]),
]


def _cfg(**evaluation: object) -> AnalysisConfig:
    raw = tiny_config(
        "data",
        folds={"k": 2},
        trigger={"input_rate_khz": INPUT_KHZ, "target_rates_khz": [120, 260]},
    )
    raw["evaluation"] = {
        "bootstrap": 0,
        "mode_column": "mode",
        "mode_names": {1: "A", 2: "B"},
        **evaluation,
    }
    return AnalysisConfig.model_validate(raw)


def _dataset(seed: int = 0) -> Dataset:
    rows = []  # sample, run, event, score, truth, mode, weight
    for run, evt, scores in MINBIAS:
        rows += [(0, run, evt, s, 1, 0, NORM) for s in scores]
    for run, evt, w, cands in SIGNAL:
        rows += [(1, run, evt, s, t, m, w) for s, t, m in cands]
    rows = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
    sample, run, evt, score, truth, mode, weight = (np.array(v) for v in zip(*rows, strict=True))
    cols = {
        "sample": sample.astype(np.int16),
        "label": sample.astype(np.int8),
        "runNumber": run.astype(np.int64),
        "eventNumber": evt.astype(np.int64),
        "fold": (evt % 2).astype(np.int8),
        "truth": truth.astype(np.int8),
        "mode": mode.astype(np.float64),
        "weight": weight.astype(np.float64),
        "score": score.astype(np.float64),
    }
    samples = {
        "minbias": {
            "index": 0,
            "label": 0,
            "n_events": MB_EVENTS,
            "normalisation": NORM,
            "sum_gen_weights": float(MB_EVENTS),
            "sum_gen_weights2": float(MB_EVENTS),
        },
        "signal": {
            "index": 1,
            "label": 1,
            "n_events": len(SIGNAL),
            "normalisation": 1.0,
            "sum_gen_weights": 8.0,
            "sum_gen_weights2": 8.0,
        },
    }
    return Dataset(cols, [], samples)


# -- brute force ------------------------------------------------------------------------------


def brute_events(run, event, score, weight, truth=None, extra=None) -> dict:
    """Per (run, event): best score of any candidate, of the truth-matched one, the event weight and ``extra`` columns of the truth-matched candidate."""
    out: dict = {}
    for i in range(len(score)):
        e = out.setdefault(
            (int(run[i]), int(event[i])), {"any": -np.inf, "tos": None, "w": float(weight[i])}
        )
        e["any"] = max(e["any"], float(score[i]))
        if truth is not None and truth[i]:
            e["tos"] = float(score[i]) if e["tos"] is None else max(e["tos"], float(score[i]))
            for name, col in (extra or {}).items():
                e[name] = col[i]
    return out


def brute_threshold(
    best: list[float], weight: list[float], total: float, input_khz: float, target_khz: float
) -> float:
    """Lowest event score whose rate (passing weight over all processed events) stays within the target."""
    chosen = np.inf
    for t in sorted(set(best), reverse=True):
        rate = input_khz * sum(w for b, w in zip(best, weight, strict=True) if b >= t) / total
        if rate > target_khz * (1 + 1e-12):
            break
        chosen = t
    return chosen


def brute_cp(passed, weight) -> tuple[float, float, float]:
    """Efficiency and its Clopper-Pearson interval from scipy's beta quantiles, with effective counts for weights."""
    p, w = np.asarray(passed, bool), np.asarray(weight, float)
    eff = w[p].sum() / w.sum()
    n = w.sum() ** 2 / (w**2).sum()
    k = eff * n
    alpha = 1 - CL
    lo = 0.0 if k <= 0 else stats.beta.ppf(alpha / 2, k, n - k + 1)
    hi = 1.0 if np.isclose(k, n) else stats.beta.ppf(1 - alpha / 2, k + 1, n - k)
    return float(eff), float(lo), float(hi)


def _sample_events(ds: Dataset, sample: int, score: np.ndarray) -> dict:
    c = ds.columns
    m = c["sample"] == sample
    extra = {"mode": c["mode"][m], "fold": c["fold"][m]}
    return brute_events(
        c["runNumber"][m], c["eventNumber"][m], score[m], c["weight"][m], c["truth"][m], extra
    )


# -- event views ------------------------------------------------------------------------------


def test_event_views_match_loops_over_events() -> None:
    cfg, ds = _cfg(), _dataset()
    views = event_views(cfg, ds, ds.columns["score"], ["mode", "fold"])
    mb = _sample_events(ds, 0, ds.columns["score"])
    assert len(mb) == 8  # (1, 100) and (2, 100) are two events
    np.testing.assert_array_equal(
        np.sort(views.minbias.score), sorted(e["any"] for e in mb.values())
    )
    # the rate denominator counts all 20 processed events, with the sample normalisation
    assert views.minbias.total_weight == pytest.approx(MB_EVENTS * NORM, rel=1e-15)
    assert views.minbias.pass_fraction(0.0)[0] == pytest.approx(8 / 20, rel=1e-15)
    sig = {
        k: e for k, e in _sample_events(ds, 1, ds.columns["score"]).items() if e["tos"] is not None
    }
    assert len(sig) == 7  # event 103 has no truth-matched candidate
    assert views.counts == {"n_signal_events": 7, "n_minbias_events": MB_EVENTS}
    # per event, in the views' event order (sorted by run, event)
    keys = sorted(sig)
    np.testing.assert_array_equal(views.signal_any.score, [sig[k]["any"] for k in keys])
    np.testing.assert_array_equal(views.signal_tos.score, [sig[k]["tos"] for k in keys])
    np.testing.assert_array_equal(views.signal_any.weight, [sig[k]["w"] for k in keys])
    assert views.signal_any.total_weight == views.signal_tos.total_weight == pytest.approx(7.5)
    # columns come from the truth-matched candidate, never from the others (mode 9)
    np.testing.assert_array_equal(views.columns["mode"], [1, 2, 1, 2, 1, 3, 1])
    np.testing.assert_array_equal(views.columns["fold"], [k[1] % 2 for k in keys])


def test_event_views_do_not_depend_on_candidate_order() -> None:
    cfg = _cfg()
    a, b = _dataset(seed=0), _dataset(seed=1)
    assert not np.array_equal(a.columns["score"], b.columns["score"])
    va, vb = (
        event_views(cfg, a, a.columns["score"], ["mode"]),
        event_views(cfg, b, b.columns["score"], ["mode"]),
    )
    np.testing.assert_array_equal(np.sort(va.minbias.score), np.sort(vb.minbias.score))
    np.testing.assert_array_equal(va.signal_tos.score, vb.signal_tos.score)
    np.testing.assert_array_equal(va.columns["mode"], vb.columns["mode"])


# -- efficiencies at the target rates ---------------------------------------------------------


def test_rates_hand_values() -> None:
    """Worked out by hand: each minimum-bias event carries 1000 kHz x 0.5 / 10 = 50 kHz."""
    cfg, ds = _cfg(), _dataset()
    out = _rates(cfg, event_views(cfg, ds, ds.columns["score"], ["fold", "mode"]))
    # 120 kHz: 2 events allowed (0.95, 0.80); 260 kHz: 5 (down to 0.60)
    e120, e260 = out["120"], out["260"]
    assert (e120["threshold"], e120["rate_khz"]) == (0.80, pytest.approx(100.0))
    assert (e260["threshold"], e260["rate_khz"]) == (0.60, pytest.approx(250.0))
    # signal weight 7.5; at 0.80 any candidate: events 100 (1), 101 (2), 105 (1), 107 (1); TOS: 100, 101, 107
    assert e120["eff"] == pytest.approx(5 / 7.5) and e120["eff_tos"] == pytest.approx(4 / 7.5)
    assert e260["eff"] == pytest.approx(6.5 / 7.5) and e260["eff_tos"] == pytest.approx(4.5 / 7.5)
    # folds (event number % 2): fold 0 holds events 100, 102, 104, 106 (weight 3.5), fold 1 the rest (4)
    assert e120["eff_folds"] == pytest.approx([1 / 3.5, 4 / 4])
    assert e120["eff_fold_std"] == pytest.approx(np.std([1 / 3.5, 1.0], ddof=1))
    # per mode at 0.80: A = events 100, 102, 105, 107; B = 101 (2), 104 (0.5); "3" (no name) = 106
    pm = e120["per_mode"]
    assert set(pm) == {"A", "B", "3"}
    assert (pm["A"]["eff"], pm["A"]["eff_tos"], pm["A"]["n_events"]) == (0.75, 0.5, 4)
    assert (pm["B"]["eff"], pm["B"]["eff_tos"], pm["B"]["n_events"]) == (
        pytest.approx(0.8),
        pytest.approx(0.8),
        2,
    )
    assert (pm["3"]["eff"], pm["3"]["n_events"]) == (0.0, 1)
    # threshold on the even events (50 kHz x 2 = 100 kHz each in a half), rate on the odd ones
    assert e120["threshold_split"] == 0.60 and e120["rate_khz_measured"] == pytest.approx(400.0)
    assert e260["threshold_split"] == 0.45 and e260["rate_khz_measured"] == pytest.approx(400.0)
    # n_eff of a half: 10 events; binomial error of 0.4
    assert e120["rate_khz_measured_err"] == pytest.approx(1000 * np.sqrt(0.4 * 0.6 / 10))
    assert e120["rate_khz_err"] == pytest.approx(1000 * np.sqrt(0.1 * 0.9 / 20))
    assert np.isnan(e120["eff_wp_std"])  # bootstrap: 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rates_match_brute_force(seed: int) -> None:
    """Random scores on the hand-made events: every eff_at_rate entry recomputed with loops."""
    cfg, ds = _cfg(), _dataset()
    score = np.round(np.random.default_rng(seed).random(len(ds)), 2)  # ties included
    out = _rates(cfg, event_views(cfg, ds, score, ["fold", "mode"]))
    mb = list(_sample_events(ds, 0, score).values())
    sig = [e for e in _sample_events(ds, 1, score).values() if e["tos"] is not None]
    best, w_mb = [e["any"] for e in mb], [e["w"] for e in mb]
    total = MB_EVENTS * NORM
    w = np.array([e["w"] for e in sig])
    for target in cfg.trigger.target_rates_khz:
        e = out[f"{target:g}"]
        thr = brute_threshold(best, w_mb, total, INPUT_KHZ, target)
        assert e["threshold"] == thr
        frac = sum(x for b, x in zip(best, w_mb, strict=True) if b >= thr) / total
        assert e["rate_khz"] == pytest.approx(INPUT_KHZ * frac, abs=1e-9)
        assert e["rate_target_khz"] == target
        for key, name in (("any", "eff"), ("tos", "eff_tos")):
            passed = np.array([s[key] >= thr for s in sig])
            want = brute_cp(passed, w)
            assert (e[name], e[f"{name}_low"], e[f"{name}_high"]) == pytest.approx(want, abs=1e-12)
        folds = []
        for k in range(2):
            in_k = np.array([s["fold"] == k for s in sig])
            folds.append(w[in_k & (np.array([s["any"] for s in sig]) >= thr)].sum() / w[in_k].sum())
        assert e["eff_folds"] == pytest.approx(folds, abs=1e-12)
        for code, label in ((1, "A"), (2, "B"), (3, "3")):
            in_m = np.array([s["mode"] == code for s in sig])
            for key, name in (("any", "eff"), ("tos", "eff_tos")):
                passed = np.array([s[key] >= thr for s in sig])[in_m]
                want = brute_cp(passed, w[in_m])
                got = e["per_mode"][label]
                assert (got[name], got[f"{name}_low"], got[f"{name}_high"]) == pytest.approx(
                    want, abs=1e-12
                )
        # measured rate: threshold from the even-numbered half, rate from the odd one, each half of the total
        par = [k[1] % 2 for k in _sample_events(ds, 0, score)]
        thr_split = brute_threshold(
            [b for b, p in zip(best, par, strict=True) if p == 0],
            [x for x, p in zip(w_mb, par, strict=True) if p == 0],
            total / 2,
            INPUT_KHZ,
            target,
        )
        assert e["threshold_split"] == thr_split
        odd = sum(
            x for b, x, p in zip(best, w_mb, par, strict=True) if p == 1 and b >= thr_split
        ) / (total / 2)
        assert e["rate_khz_measured"] == pytest.approx(INPUT_KHZ * odd, abs=1e-9)


def test_unit_weight_interval_is_clopper_pearson_of_the_counts() -> None:
    """With unit weights the interval is the textbook one for k of n events."""
    cfg, ds = _cfg(), _dataset()
    m = ds.columns["sample"] == 1
    ds.columns["weight"][m] = 1.0
    out = _rates(cfg, event_views(cfg, ds, ds.columns["score"], ["fold", "mode"]))
    e = out["120"]  # 4 of the 7 signal events pass at 0.80 (100, 101, 105, 107)
    alpha = 1 - CL
    assert e["eff"] == pytest.approx(4 / 7)
    assert e["eff_low"] == pytest.approx(stats.beta.ppf(alpha / 2, 4, 4), rel=1e-10)
    assert e["eff_high"] == pytest.approx(stats.beta.ppf(1 - alpha / 2, 5, 3), rel=1e-10)


def test_working_point_spread_matches_error_propagation() -> None:
    """The bootstrap spread of the efficiency at a fixed rate is the threshold's binomial error carried to the signal.

    Uniform minimum-bias scores, one candidate per event, and a signal spread
    evenly over [0, 1]: the threshold for a pass fraction r has a standard
    error sqrt(r (1 - r) / N), and so does the signal efficiency. A bootstrap
    that kept the rate denominator fixed would give sqrt(r / N) instead
    (1.4x larger at r = 0.5).
    """
    rng = np.random.default_rng(8)
    n = 20000
    mb = EventScores(rng.random(n), np.ones(n), float(n), float(n), np.arange(n))
    grid = np.linspace(0.0, 1.0, 20001)
    sig = EventScores(grid, np.ones(len(grid)), float(len(grid)))
    views = EventViews(mb, sig, sig, {"fold": np.zeros(len(grid))}, {})
    raw = tiny_config(
        "data", folds={"k": 2}, trigger={"input_rate_khz": 1000.0, "target_rates_khz": [500.0]}
    )
    raw["evaluation"] = {"bootstrap": 300}
    cfg = AnalysisConfig.model_validate(raw)
    got = _rates(cfg, views)["500"]["eff_wp_std"]
    assert got == pytest.approx(np.sqrt(0.5 * 0.5 / n), rel=0.15)


# -- model summary ----------------------------------------------------------------------------


def brute_eff_at_bkg_eff(y, s, w, target: float) -> float:
    """Signal efficiency at a background efficiency along the ROC curve, by walking its points.

    The points, in order of decreasing threshold, are joined by straight
    lines; where the curve is vertical at exactly ``target`` the highest
    signal efficiency counts.
    """
    pts = [(0.0, 0.0)]
    for t in sorted(set(s), reverse=True):
        pts.append(
            (
                w[(y == 0) & (s >= t)].sum() / w[y == 0].sum(),
                w[(y == 1) & (s >= t)].sum() / w[y == 1].sum(),
            )
        )
    at = [se for be, se in pts if np.isclose(be, target, rtol=0, atol=1e-12)]
    if at:
        return max(at)
    for (b0, s0), (b1, s1) in itertools.pairwise(pts):
        if b0 < target < b1:
            return s0 + (s1 - s0) * (target - b0) / (b1 - b0)
    raise AssertionError(target)


def test_model_summary_against_sklearn_and_loops() -> None:
    cfg, ds = _cfg(bkg_effs=[1 / 12, 0.2, 0.375, 0.5]), _dataset()
    s = ds.columns["score"]
    rng = np.random.default_rng(3)
    train = np.where(ds.truth, np.clip(s + rng.normal(0, 0.05, len(s)), 0, 1), np.nan)
    out = model_summary(cfg, ds, CrossScores(s, train))
    m = ds.truth
    y, w = ds.y, ds.weight
    assert out["auc"] == pytest.approx(roc_auc_score(y[m], s[m], sample_weight=w[m]), abs=1e-12)
    assert np.isnan(out["auc_std"])  # bootstrap: 0
    seen = np.isfinite(train)
    assert out["auc_train"] == pytest.approx(
        roc_auc_score(y[seen], train[seen], sample_weight=w[seen]), abs=1e-12
    )
    folds = [
        roc_auc_score(
            y[m & (ds.fold == k)], s[m & (ds.fold == k)], sample_weight=w[m & (ds.fold == k)]
        )
        for k in range(2)
    ]
    assert out["auc_folds"] == pytest.approx(folds, abs=1e-12)
    assert out["auc_fold_std"] == pytest.approx(np.std(folds, ddof=1), abs=1e-12)
    # 12 background candidates of equal weight. 1/12: only 0.95 passes while the cut goes down to 0.81
    # and the truth-matched signal at 0.90 (1), 0.85 (2) and 0.81 (1) joins: the highest, 4/7.5, counts.
    # 0.375 lies between the cut at 0.62 (4/12, 4.5/7.5) and the one at 0.60 (5/12, still 4.5/7.5);
    # the signal at 0.58 only joins further up the vertical stretch at 5/12
    assert out["eff_at_bkg_eff"][f"{1 / 12:g}"] == pytest.approx(4 / 7.5, abs=1e-12)
    assert out["eff_at_bkg_eff"]["0.375"] == pytest.approx(4.5 / 7.5, abs=1e-12)
    for b in cfg.evaluation.bkg_effs:
        want = brute_eff_at_bkg_eff(y[m], s[m], w[m], b)
        assert out["eff_at_bkg_eff"][f"{b:g}"] == pytest.approx(want, abs=1e-12), b
    assert out["trigger_events"] == {"n_signal_events": 7, "n_minbias_events": MB_EVENTS}
    assert out["eff_at_rate"]["120"]["eff"] == pytest.approx(5 / 7.5)


# -- rate curves and one candidate per event --------------------------------------------------


def test_rate_curves_match_brute_force() -> None:
    cfg, ds = _cfg(), _dataset()
    s = ds.columns["score"]
    curves = rate_curves(cfg, event_views(cfg, ds, s))
    mb = list(_sample_events(ds, 0, s).values())
    sig = [e for e in _sample_events(ds, 1, s).values() if e["tos"] is not None]
    # every distinct minimum-bias event score, decreasing (few enough that none is thinned out)
    np.testing.assert_array_equal(curves["threshold"], sorted({e["any"] for e in mb}, reverse=True))
    w_sig = sum(e["w"] for e in sig)
    for i, t in enumerate(curves["threshold"]):
        rate = INPUT_KHZ * sum(e["w"] for e in mb if e["any"] >= t) / (MB_EVENTS * NORM)
        assert curves["rate_khz"][i] == pytest.approx(rate, abs=1e-9)
        assert curves["eff"][i] == pytest.approx(
            sum(e["w"] for e in sig if e["any"] >= t) / w_sig, abs=1e-12
        )
        assert curves["eff_tos"][i] == pytest.approx(
            sum(e["w"] for e in sig if e["tos"] >= t) / w_sig, abs=1e-12
        )
    assert curves["rate_khz"][0] == pytest.approx(50.0) and curves["rate_khz"][-1] == pytest.approx(
        400.0
    )


def test_one_per_event_respects_the_mask_and_picks_at_random() -> None:
    ds = _dataset()
    c = ds.columns
    mask = c["score"] != 0.60  # one candidate of minimum-bias event (1, 102) is not eligible
    counts: dict[int, int] = {}
    for trial in range(300):
        idx = one_per_event(ds, mask, np.random.default_rng(trial))
        keys = [
            (int(c["sample"][i]), int(c["runNumber"][i]), int(c["eventNumber"][i])) for i in idx
        ]
        assert len(keys) == len(set(keys)) == 16  # 8 minimum-bias and 8 signal events
        assert mask[idx].all()
        for i in idx:
            counts[int(i)] = counts.get(int(i), 0) + 1
    # the two eligible candidates of event (1, 102) share its picks about evenly; the masked one never
    in_102 = np.flatnonzero((c["sample"] == 0) & (c["runNumber"] == 1) & (c["eventNumber"] == 102))
    picks = {float(c["score"][i]): counts.get(int(i), 0) for i in in_102}
    assert picks[0.60] == 0
    assert picks[0.55] + picks[0.20] == 300
    assert abs(picks[0.55] - 150) < 4 * np.sqrt(300 * 0.25)
    assert len(one_per_event(ds, np.zeros(len(ds), bool), np.random.default_rng(0))) == 0


# -- offline working points at fixed signal efficiency ------------------------------------------


def _offline_dataset(seed: int) -> Dataset:
    """Weighted signal and two background samples; ties in score; untagged candidates scoring high."""
    rng = np.random.default_rng(seed)
    n_sig, n_a, n_b = 300, 400, 250
    sample = np.repeat([0, 1, 2], [n_sig, n_a, n_b]).astype(np.int16)
    label = (sample == 0).astype(np.int8)
    # scores on a coarse grid: many ties, shared by signal and background
    score = np.round(
        np.where(label == 1, rng.beta(4, 2, len(sample)), rng.beta(2, 4, len(sample))), 2
    )
    weight = rng.uniform(0.2, 3.0, len(sample))
    truth = np.ones(len(sample), dtype=np.int8)
    truth[rng.choice(len(sample), 40, replace=False)] = 0  # not class-representative: never counted
    score[truth == 0] = 0.999
    cols = {
        "sample": sample,
        "label": label,
        "truth": truth,
        "weight": weight,
        "score": score,
        "fold": (np.arange(len(sample)) % 2).astype(np.int8),
    }
    samples = {
        name: {"index": i, "label": int(i == 0), "normalisation": 1.0}
        for i, name in enumerate(["signal", "bkg_a", "bkg_b"])
    }
    return Dataset(cols, [], samples)


def _brute_offline_point(y: np.ndarray, s: np.ndarray, w: np.ndarray, e: float) -> float:
    """The highest cut on a signal score that keeps at least the fraction ``e`` of the signal weight."""
    total = w[y == 1].sum()
    for t in sorted(set(s[y == 1]), reverse=True):
        if w[(y == 1) & (s >= t)].sum() >= e * total * (1 - 1e-12):
            return float(t)
    raise AssertionError(e)


@pytest.mark.parametrize("seed", [0, 1])
def test_offline_working_points_match_brute_force(seed: int) -> None:
    raw = tiny_config("data", folds={"k": 2})
    raw.pop("trigger")
    raw["evaluation"] = {"bootstrap": 0, "signal_effs": [0.3, 0.5, 0.8, 0.9, 0.97]}
    cfg = AnalysisConfig.model_validate(raw)
    ds = _offline_dataset(seed)
    c, m = ds.columns, ds.truth
    y, s, w, sample = ds.y[m], c["score"][m], ds.weight[m], c["sample"][m]
    out = offline_figures(cfg, ds, c["score"])
    total_s, total_b = w[y == 1].sum(), w[y == 0].sum()
    assert out["signal_yield"] == pytest.approx(total_s, rel=1e-12)
    assert out["background_yield"] == pytest.approx(total_b, rel=1e-12)
    for i, name in enumerate(["signal", "bkg_a", "bkg_b"]):
        assert out["yields"][name]["yield"] == pytest.approx(w[sample == i].sum(), rel=1e-12)
        assert out["yields"][name]["n_candidates"] == int((sample == i).sum())
    assert list(out["working_points"]) == ["0.3", "0.5", "0.8", "0.9", "0.97"]
    for e in cfg.evaluation.signal_effs:
        wp = out["working_points"][f"{e:g}"]
        thr = _brute_offline_point(y, s, w, e)
        assert wp["threshold"] == thr
        passed = s >= thr
        sig_y, bkg_y = w[passed & (y == 1)].sum(), w[passed & (y == 0)].sum()
        assert wp["signal_yield"] == pytest.approx(sig_y, rel=1e-12)
        assert wp["background_yield"] == pytest.approx(bkg_y, rel=1e-12)
        assert wp["sig_eff"] == pytest.approx(sig_y / total_s, rel=1e-12)
        assert wp["bkg_eff"] == pytest.approx(bkg_y / total_b, rel=1e-12)
        for i, name in enumerate(["signal", "bkg_a", "bkg_b"]):
            assert wp["yields"][name] == pytest.approx(w[passed & (sample == i)].sum(), rel=1e-12)
        # the next tighter cut on a signal score keeps less than the fraction e
        tighter = s[(y == 1) & (s > thr)]
        if len(tighter):
            assert w[(y == 1) & (s >= tighter.min())].sum() < e * total_s


def test_offline_working_point_exactly_on_a_candidate() -> None:
    # four unit-weight signal candidates: 50% is reached exactly at the second best, 0.7
    raw = tiny_config("data", folds={"k": 2})
    raw.pop("trigger")
    raw["evaluation"] = {"bootstrap": 0, "signal_effs": [0.5, 0.75, 1.0]}
    cfg = AnalysisConfig.model_validate(raw)
    score = np.array([0.9, 0.7, 0.4, 0.2, 0.8, 0.3])
    cols = {
        "sample": np.array([0, 0, 0, 0, 1, 1], np.int16),
        "label": np.array([1, 1, 1, 1, 0, 0], np.int8),
        "truth": np.ones(6, np.int8),
        "weight": np.ones(6),
        "score": score,
        "fold": np.zeros(6, np.int8),
    }
    samples = {
        "signal": {"index": 0, "label": 1, "normalisation": 1.0},
        "bkg": {"index": 1, "label": 0, "normalisation": 1.0},
    }
    wps = offline_figures(cfg, Dataset(cols, [], samples), score)["working_points"]
    assert [wps[k]["threshold"] for k in ("0.5", "0.75", "1")] == [0.7, 0.4, 0.2]
    assert [wps[k]["bkg_eff"] for k in ("0.5", "0.75", "1")] == [0.5, 0.5, 1.0]
