"""Working points ranked and cut on the models' raw output, and decisions named in their own unit.

A model whose logits reach 60 gives probabilities of exactly 1 above a logit
of about 37 (float64): ranked on probabilities, its rate working points
collapse onto one unreachable threshold. The expectations are recomputed by
brute force on the logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot
from scipy.special import expit

from hepsel.config.schema import AnalysisConfig
from hepsel.deploy.apply import EVENTS_TREE, FRIEND_TREE, apply_file
from hepsel.deploy.selection import Selection, wp_branch
from hepsel.prep.dataset import Dataset
from hepsel.prep.features import Feature, FeatureSet
from hepsel.workflow.cross_scoring import cross_scores
from hepsel.workflow.evaluation import model_summary, proba_at
from hepsel.workflow.labels import working_point_thresholds
from hepsel.workflow.layout import Layout

from .conftest import tiny_config

INPUT_KHZ = 30000.0
TARGETS = [660.0, 330.0, 100.0]
MB_EVENTS = 3000  # processed; 2400 of them have candidates
SIG_EVENTS = 1000


class LogitModel:
    """A fitted classifier stand-in: its logit is the first feature, as the kinds' ``decision_function``."""

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)[:, 0].copy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def save(self, prefix: Path) -> None:
        Path(f"{prefix}.json").write_text("{}")


def _cfg(tmp_path: Path, **trigger: object) -> AnalysisConfig:
    raw = tiny_config(
        "data",
        folds={"k": 2},
        trigger={"input_rate_khz": INPUT_KHZ, "target_rates_khz": TARGETS, **trigger},
        models={"net": {"type": "mlp"}},
    )
    raw["evaluation"] = {"bootstrap": 0}
    return AnalysisConfig.model_validate(raw)


def _dataset(seed: int = 1) -> Dataset:
    """Minimum bias: 1-2 candidates per event, logits up to 60; signal: logits 25-62 for the truth-matched one."""
    rng = np.random.default_rng(seed)
    rows = []  # sample, event, logit, truth, weight
    for e in range(2400):
        rows += [(0, e, float(v), 1, 1.0) for v in rng.uniform(-5.0, 60.0, rng.integers(1, 3))]
    for e in range(SIG_EVENTS):
        rows.append((1, e, float(rng.uniform(25.0, 62.0)), 1, 1.0))
        if rng.random() < 0.3:
            rows.append((1, e, float(rng.uniform(-5.0, 40.0)), 0, 1.0))
    sample, evt, logit, truth, weight = (np.array(v) for v in zip(*rows, strict=True))
    cols = {
        "sample": sample.astype(np.int16),
        "label": sample.astype(np.int8),
        "runNumber": np.ones(len(evt), dtype=np.int64),
        "eventNumber": evt.astype(np.int64),
        "fold": (evt % 2).astype(np.int8),
        "truth": truth.astype(np.int8),
        "weight": weight,
        "logit": logit,
    }
    samples = {
        "minbias": {
            "index": 0,
            "label": 0,
            "n_events": MB_EVENTS,
            "normalisation": 1.0,
            "sum_gen_weights": float(MB_EVENTS),
            "sum_gen_weights2": float(MB_EVENTS),
        },
        "signal": {
            "index": 1,
            "label": 1,
            "n_events": SIG_EVENTS,
            "normalisation": 1.0,
            "sum_gen_weights": float(SIG_EVENTS),
            "sum_gen_weights2": float(SIG_EVENTS),
        },
    }
    return Dataset(cols, ["logit"], samples)


def _best(ds: Dataset, sample: int, truth_only: bool = False) -> np.ndarray:
    c = ds.columns
    m = (c["sample"] == sample) & (ds.truth if truth_only else True)
    out: dict[int, float] = {}
    for e, v in zip(c["eventNumber"][m], c["logit"][m], strict=True):
        out[int(e)] = max(out.get(int(e), -np.inf), float(v))
    return np.array(list(out.values()))


def test_saturated_probabilities_give_distinct_reachable_rate_working_points(
    tmp_path: Path, monkeypatch
) -> None:
    """Logits up to 60 on minimum bias: 660/330/100 kHz get distinct, reachable cuts, as brute force on the logits."""
    import hepsel.workflow.cross_scoring as cross_scoring

    cfg, ds = _cfg(tmp_path), _dataset()
    monkeypatch.setattr(cross_scoring, "load_classifier", lambda kind, prefix: LogitModel())
    cs = cross_scores(cfg, ds, "net", Layout(tmp_path))
    mb_proba = cs.test[ds.sample_mask("minbias")]
    assert np.sum(mb_proba == 1.0) > 500  # the probability has saturated for hundreds of events
    out = model_summary(cfg, ds, cs)["eff_at_rate"]

    mb, sig = _best(ds, 0), _best(ds, 1)
    raw_cuts, effs = [], []
    for target in TARGETS:
        e = out[f"{target:g}"]
        # brute force: the lowest event logit whose rate stays within the target
        cut = min(t for t in mb if INPUT_KHZ * np.sum(mb >= t) / MB_EVENTS <= target)
        assert e["threshold_raw"] == cut
        assert 0 < e["rate_khz"] <= target
        assert e["rate_khz"] == pytest.approx(INPUT_KHZ * np.sum(mb >= cut) / MB_EVENTS, rel=1e-12)
        assert e["eff"] == pytest.approx(np.mean(sig >= cut), rel=1e-12)
        # the probability cut is that of the cut candidate: saturated at 1 here
        assert e["threshold"] == expit(cut) == 1.0
        raw_cuts.append(e["threshold_raw"])
        effs.append(e["eff"])
    assert raw_cuts[0] < raw_cuts[1] < raw_cuts[2]
    assert effs[0] > effs[1] > effs[2] > 0
    assert working_point_thresholds({"eff_at_rate": out}, raw=True) == dict(
        zip(map("{:g}".format, TARGETS), raw_cuts, strict=True)
    )


def test_proba_at_matches_brute_force() -> None:
    rng = np.random.default_rng(4)
    raw = rng.normal(0, 30, 500)
    proba = expit(raw) + rng.normal(
        0, 0.01, 500
    )  # not monotone: the lowest probability among the passing
    thr = np.concatenate([raw[:20], [np.inf, -np.inf, raw.max() + 1]])
    want = [proba[raw >= t].min() if np.any(raw >= t) else np.inf for t in thr]
    np.testing.assert_array_equal(proba_at(raw, proba, thr), want)


def _stub_selection(unit: str = "kHz", raw: bool = True) -> Selection:
    """Decisions must cut the logit (45): the probability cut (1.0) would pass every logit above ~37."""
    return Selection(
        preselection=[("x positive", "x > 0")],
        features=FeatureSet([Feature("logit", expr="60 * x")]),
        models={"net": {"kind": "mlp", "folds": [LogitModel(), LogitModel()]}},
        working_points={"net": {"0.5": 1.0}},
        working_points_raw={"net": {"0.5": 45.0}} if raw else None,
        working_point_unit=unit,
    )


def test_selection_decisions_cut_the_raw_output(tmp_path: Path) -> None:
    x = np.linspace(-0.1, 1.0, 111)
    arrays = {"x": x, "eventNumber": np.arange(len(x))}
    sel = _stub_selection("signal efficiency")
    want = (x > 0) & (60 * x >= 45.0)
    np.testing.assert_array_equal(sel.passes(arrays, signal_eff=0.5), want)
    np.testing.assert_array_equal(sel.passes(arrays), want)
    np.testing.assert_allclose(
        sel.decision_function(arrays), np.where(x > 0, 60 * x, np.nan), rtol=1e-12
    )
    d = sel.decisions(arrays)
    np.testing.assert_array_equal(d["pass_net_eff50"], want)
    np.testing.assert_allclose(d["raw_net"], np.where(x > 0, 60 * x, np.nan), rtol=1e-12)
    assert "pass_net_0p5kHz" not in d
    assert sel.threshold(signal_eff=0.5) == 1.0 and sel.threshold(signal_eff=0.5, raw=True) == 45.0
    # an explicit threshold is a cut on the probability
    np.testing.assert_array_equal(
        sel.passes(arrays, threshold=expit(30.0)), (x > 0) & (60 * x >= 30.0)
    )
    # saved and loaded: the raw cuts and the unit travel with the selection
    sel.save(tmp_path / "sel")
    back = Selection.load(tmp_path / "sel")
    assert back.working_points_raw == {"net": {"0.5": 45.0}} and back.working_points == {
        "net": {"0.5": 1.0}
    }
    assert back.working_point_unit == "signal efficiency"


def test_selection_without_raw_cuts_uses_the_probability() -> None:
    """A selection saved before raw cuts were stored keeps deciding on the probability."""
    x = np.linspace(0.01, 1.0, 100)
    sel = _stub_selection(raw=False)
    np.testing.assert_array_equal(sel.passes({"x": x}, rate_khz="0.5"), expit(60 * x) >= 1.0)
    with pytest.raises(KeyError, match="raw-output thresholds"):
        sel.threshold(raw=True)


@pytest.mark.parametrize(
    ("unit", "key", "branch"),
    [
        ("kHz", "660", "pass_bdt_660kHz"),
        ("kHz", "0.5", "pass_bdt_0p5kHz"),
        ("signal efficiency", "0.5", "pass_bdt_eff50"),
        ("signal efficiency", "0.995", "pass_bdt_eff99p5"),
        ("signal efficiency", "0.07", "pass_bdt_eff7"),
        ("background efficiency", "0.001", "pass_bdt_bkgeff0p001"),
        ("background efficiency", "1e-05", "pass_bdt_bkgeff1em05"),
        ("signal efficiency", "1e-07", "pass_bdt_eff1em05"),
    ],
)
def test_working_point_branch_names_carry_their_unit(unit: str, key: str, branch: str) -> None:
    assert wp_branch("bdt", key, unit) == branch


def test_friend_trees_carry_raw_output_and_unit_named_decisions(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 400
    cols = {
        "x": rng.uniform(-0.2, 1.0, n),
        "eventNumber": np.repeat(np.arange(n // 2, dtype=np.int64), 2),
    }
    with uproot.recreate(tmp_path / "in.root") as f:
        f["DecayTree"] = cols
    sel = _stub_selection("signal efficiency")
    apply_file(sel, tmp_path / "in.root", tmp_path / "out.root", progress=False)
    with uproot.open(tmp_path / "out.root") as f:
        fr = f[FRIEND_TREE].arrays(library="np")
        ev = f[EVENTS_TREE].arrays(library="np")
    presel = cols["x"] > 0
    np.testing.assert_allclose(fr["raw_net"], np.where(presel, 60 * cols["x"], np.nan), rtol=1e-12)
    np.testing.assert_array_equal(fr["pass_net_eff50"], presel & (60 * cols["x"] >= 45.0))
    assert not any(k.endswith("kHz") for k in fr)
    best = np.array(
        [
            np.max(np.where(presel[i : i + 2], 60 * cols["x"][i : i + 2], -np.inf))
            for i in range(0, n, 2)
        ]
    )
    np.testing.assert_allclose(ev["raw_net"], np.where(np.isfinite(best), best, np.nan), rtol=1e-12)
    np.testing.assert_array_equal(ev["pass_net_eff50"], best >= 45.0)


def test_why_picks_candidates_by_raw_output_beyond_saturation(tmp_path: Path) -> None:
    """The 'why' step ranks and cuts on the margin: with margins up to 60 it picks the highest passing background."""
    from hepsel.workflow.why_steps import _pick_candidates, _WhyContext

    cfg, ds = _cfg(tmp_path), _dataset()
    margin = ds.columns["logit"]
    n = cfg.explain.candidates
    picked = _pick_candidates(cfg, _WhyContext(ds, "mlp", [], [], margin, {}), 50.0)
    bkg = [r for role, r in picked if role == "background passing"]
    sig = [r for role, r in picked if role == "signal failing"]
    want_bkg = np.flatnonzero(ds.y == 0)[np.argsort(-margin[ds.y == 0], kind="stable")][
        : n.background
    ]
    assert bkg == want_bkg.tolist() and margin[bkg].min() >= 50.0
    failing = np.flatnonzero((ds.y == 1) & ds.truth & (margin < 50.0))
    assert sig == failing[np.argsort(margin[failing], kind="stable")][: n.signal].tolist()


def test_offline_working_points_rank_beyond_saturation(tmp_path: Path) -> None:
    """Offline: signal logits 25-62 (two thirds saturated) still give each signal efficiency, as brute force."""
    from hepsel.workflow.cross_scoring import CrossScores

    raw = tiny_config("data", folds={"k": 2}, models={"net": {"type": "mlp"}})
    raw.pop("trigger")
    raw["evaluation"] = {"bootstrap": 0, "signal_effs": [0.5, 0.2, 0.05]}
    cfg, ds = AnalysisConfig.model_validate(raw), _dataset()
    logit = ds.columns["logit"]
    out = model_summary(cfg, ds, CrossScores(expit(logit), expit(logit), test_raw=logit))
    wps = out["offline"]["working_points"]
    sig = logit[ds.truth & (ds.y == 1)]
    for e in (0.5, 0.2, 0.05):
        wp = wps[f"{e:g}"]
        # brute force: the highest cut keeping at least the fraction e of the signal
        cut = max(t for t in sig if np.mean(sig >= t) >= e - 1e-12)
        assert wp["threshold_raw"] == cut and wp["threshold"] == expit(cut) == 1.0
        assert wp["sig_eff"] == pytest.approx(np.mean(sig >= cut), rel=1e-12)
        assert e <= wp["sig_eff"] < e + 1.5 / len(sig)
    assert wps["0.5"]["threshold_raw"] < wps["0.2"]["threshold_raw"] < wps["0.05"]["threshold_raw"]


def test_optimal_cut_ranks_beyond_saturation() -> None:
    """S/sqrt(S+B) is maximised over cuts on the logit, as brute force, and the cut is given in both units."""
    from hepsel.workflow.evaluation import performance

    raw = tiny_config("data", folds={"k": 2}, models={"net": {"type": "mlp"}})
    raw.pop("trigger")
    # few signal in much background: the optimum is a tight cut, where the probability has saturated
    raw["evaluation"] = {
        "bootstrap": 0,
        "optimal_cut": {"signal_yield": 10.0, "background_yield": 1e6},
    }
    cfg, ds = AnalysisConfig.model_validate(raw), _dataset()
    # the signal squeezed to logits 55-62, above most background
    logit = np.where(
        ds.y == 1, 55.0 + (ds.columns["logit"] - 25.0) * 7.0 / 37.0, ds.columns["logit"]
    )
    m = ds.truth
    out = performance(cfg, ds, expit(logit), {}, raw=logit, thresholds_raw={})["optimal_cut"]
    s, y, w = logit[m], ds.y[m], ds.weight[m]
    tot_s, tot_b = w[y == 1].sum(), w[y == 0].sum()
    best = (-np.inf, None)
    for t in np.unique(s):
        if np.sum((y == 0) & (s >= t)) < 10:
            continue
        S = 10.0 * w[(y == 1) & (s >= t)].sum() / tot_s
        B = 1e6 * w[(y == 0) & (s >= t)].sum() / tot_b
        best = max(best, (S / np.sqrt(S + B), t), key=lambda v: v[0])
    sig = out["significance"]
    assert sig["value"] == pytest.approx(best[0], rel=1e-12) and sig["threshold_raw"] == best[1]
    assert (
        sig["threshold"] == expit(best[1]) == 1.0
    )  # the optimum lies where the probability has saturated


def test_selection_file_cuts_are_checked(tmp_path: Path) -> None:
    """A null cut (unreachable working point) is left out on loading; a cut that is not a number is refused."""
    import json

    from hepsel.exceptions import ModelFileError

    _stub_selection().save(tmp_path / "sel")
    path = tmp_path / "sel" / "selection.json"
    meta = json.loads(path.read_text())
    meta["working_points_raw"]["net"]["0.1"] = None
    path.write_text(json.dumps(meta))
    assert Selection.load(tmp_path / "sel").working_points_raw == {"net": {"0.5": 45.0}}
    meta["working_points_raw"]["net"]["0.1"] = "high"
    path.write_text(json.dumps(meta))
    with pytest.raises(
        ModelFileError, match=r"working_points_raw\.net\.0\.1: threshold 'high' is not a number"
    ):
        Selection.load(tmp_path / "sel")
    meta["working_points_raw"]["net"].pop("0.1")
    meta["working_point_unit"] = "parsec"
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="working_point_unit 'parsec'"):
        Selection.load(tmp_path / "sel")
