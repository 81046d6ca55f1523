"""The robustness study: shifted branches at fixed working points.

A tiny analysis is run in-process once; the shifted efficiencies and rates
are then checked against the nominal ones (identity shift) and against the
nominal pipeline run on ROOT files shifted by hand, with the efficiencies
recomputed event by event in plain Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from hepsel import workflow
from hepsel.config.loading import load_config
from hepsel.config.provenance import step_digest
from hepsel.exceptions import ConfigError
from hepsel.models import load_classifier
from hepsel.prep.dataset import gather as gather_tables
from hepsel.prep.dataset import load_dataset
from hepsel.prep.ingest import prepare_file
from hepsel.prep.robustness import (
    BranchShift,
    apply_shift,
    format_table,
    paired_ratio_difference,
    table_rows,
)
from hepsel.workflow.cross_scoring import model_kind

from .conftest import tiny_config, write_config

MODELS = {
    "bdt": {
        "type": "bdt",
        "params": {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 1},
    },
    "fisher": {"type": "fisher"},
}


# -- pure pieces -----------------------------------------------------------------


def test_patterns_resolve_to_branches() -> None:
    s = BranchShift("ip", {"*_IPCHI2_OWNPV": (1.2, 0.0), "H?_PT": (0.98, 5.0)})
    got = s.resolve(
        ["B_IPCHI2_OWNPV", "H1_IPCHI2_OWNPV", "H1_PT", "H2_PT", "B_PT", "eventNumber"],
        where="f.root:T",
    )
    assert got == {
        "B_IPCHI2_OWNPV": (1.2, 0.0),
        "H1_IPCHI2_OWNPV": (1.2, 0.0),
        "H1_PT": (0.98, 5.0),
        "H2_PT": (0.98, 5.0),
    }


def test_pattern_matching_nothing_is_an_error_naming_shift_and_pattern() -> None:
    s = BranchShift("pt_scale", {"H?_PT": (0.98, 0.0), "TRACK_PTT*": (1.1, 0.0)})
    with pytest.raises(
        ConfigError,
        match=r"robustness\.shifts\.pt_scale: pattern 'TRACK_PTT\*' matches no branch of f\.root:T",
    ):
        s.resolve(["H1_PT", "H2_PT"], where="f.root:T")


def test_overlapping_patterns_and_event_ids_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"'H1_PT' .* matched by both 'H\?_PT' and 'H1_\*'"):
        BranchShift("s", {"H?_PT": (0.98, 0.0), "H1_*": (1.0, 1.0)}).resolve(
            ["H1_PT", "H2_PT"], where="f"
        )
    with pytest.raises(ConfigError, match="event identifier"):
        BranchShift("s", {"*Number": (2.0, 0.0)}).resolve(
            ["eventNumber", "x"], where="f", protected=["eventNumber"]
        )


def test_apply_shift_numpy_and_awkward() -> None:
    arrays = {"a": np.array([1.0, 2.0], dtype=np.float32), "b": np.array([3, 4])}
    out = apply_shift(arrays, {"a": (2.0, 1.0), "missing": (3.0, 0.0)})
    assert out["a"].tolist() == [3.0, 5.0] and out["b"] is arrays["b"]
    assert out["a"].dtype == np.float32  # stored as the branch was
    assert apply_shift(arrays, {"b": (0.5, 0.0)})["b"].tolist() == [
        1.5,
        2.0,
    ]  # integers become floats
    assert arrays["a"].tolist() == [1.0, 2.0]  # the input is left alone
    jagged = ak.Array({"a": [[1.0, 2.0], [], [3.0]], "b": [1, 2, 3]})
    jagged = ak.with_field(jagged, ak.values_astype(jagged["a"], np.float32), "a")
    got = apply_shift(jagged, {"a": (10.0, 0.0)})
    assert ak.to_list(got["a"]) == [[10.0, 20.0], [], [30.0]]
    assert str(ak.type(got["a"])).endswith("float32")
    assert ak.to_list(got["b"]) == [1, 2, 3]


def test_paired_error_matches_a_paired_event_bootstrap() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    w = rng.uniform(0.5, 1.5, n)
    score = rng.random(n)
    shifted = score + rng.normal(0, 0.05, n)
    reco_n, reco_s = rng.random(n) < 0.9, rng.random(n) < 0.88
    pass_n, pass_s = reco_n & (score > 0.5), reco_s & (shifted > 0.5)
    got = paired_ratio_difference(w * pass_n, w * reco_n, w * pass_s, w * reco_s)
    want_n = np.sum(w * pass_n) / np.sum(w * reco_n)
    want_s = np.sum(w * pass_s) / np.sum(w * reco_s)
    assert got["nominal"] == pytest.approx(want_n, rel=1e-12)
    assert got["delta"] == pytest.approx(want_s - want_n, rel=1e-12)
    deltas = []
    for _ in range(400):
        k = rng.poisson(1.0, n)
        deltas.append(
            np.sum(k * w * pass_s) / np.sum(k * w * reco_s)
            - np.sum(k * w * pass_n) / np.sum(k * w * reco_n)
        )
    assert got["delta_err"] == pytest.approx(np.std(deltas, ddof=1), rel=0.15)


def test_paired_error_with_events_outside_the_arrays() -> None:
    """Events without candidates only in the denominators: the same as listing them with zero numerators."""
    rng = np.random.default_rng(2)
    w = rng.uniform(0.5, 1.5, 300)
    a_n, a_s = w * (rng.random(300) < 0.3), w * (rng.random(300) < 0.35)
    extra = rng.uniform(0.5, 1.5, 200)
    got = paired_ratio_difference(
        a_n, w, a_s, w, extra_den=float(extra.sum()), extra_den2=float(np.sum(extra**2))
    )
    z = np.zeros(200)
    full = paired_ratio_difference(np.r_[a_n, z], np.r_[w, extra], np.r_[a_s, z], np.r_[w, extra])
    for k in full:
        assert got[k] == pytest.approx(full[k], rel=1e-10)


def test_config_rejects_an_empty_shift(tmp_path: Path) -> None:
    p = write_config(tmp_path / "a", tiny_config("data", robustness={"shifts": {"none": {}}}))
    with pytest.raises(ConfigError, match=r"robustness\.shifts\.none"):
        load_config(p)


def test_shifts_enter_only_the_robustness_and_report_digests(tmp_path: Path) -> None:
    a = load_config(
        write_config(
            tmp_path / "a", tiny_config("data", robustness={"shifts": {"s": {"H?_PT": 0.98}}})
        )
    )
    b = load_config(
        write_config(
            tmp_path / "b", tiny_config("data", robustness={"shifts": {"s": {"H?_PT": 0.97}}})
        )
    )
    for step, kw in (
        ("prepare", {"sample": "signal"}),
        ("gather", {}),
        ("train", {"model": "bdt"}),
        ("evaluate", {}),
        ("plots", {}),
    ):
        assert step_digest(a, step, **kw) == step_digest(b, step, **kw), step
    assert step_digest(a, "robustness") != step_digest(b, "robustness")
    assert step_digest(a, "report") != step_digest(b, "report")


# -- the tiny analysis -------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny analysis (bdt + fisher) trained and evaluated in-process; returns its directory."""
    work = tmp_path_factory.mktemp("robust")
    d = work / "analyses" / "tiny"
    write_config(
        d, tiny_config(str(work / "data"), models=MODELS, output=str(work / "results" / "tiny"))
    )
    cfg = load_config(d)
    for s in cfg.samples:
        workflow.generate(cfg, s, progress=False)
        workflow.prepare(cfg, s, 0, progress=False)
    workflow.gather(cfg)
    for m in cfg.models:
        for k in range(cfg.folds.k):
            workflow.train(cfg, m, k, progress=False)
    workflow.evaluate(cfg, progress=False)
    return d


def _with_shifts(run: Path, shifts: dict, name: str = "config.yaml"):
    nominal = load_config(run)
    base = nominal.model_dump(mode="json", exclude={"base_dir", "source"})
    base["output"] = str(nominal.output_dir.resolve())  # the results of the run
    base["robustness"] = {"shifts": shifts}
    (run / name).write_text(json.dumps(base))
    return load_config(run / name)


def test_identity_shift_reproduces_the_nominal_figures_exactly(run: Path) -> None:
    cfg = _with_shifts(
        run,
        {"none": {"H?_PT": 1.0, "*_IPCHI2_OWNPV": {"scale": 1.0, "offset": 0.0}}},
        "identity.yaml",
    )
    out = workflow.robustness(cfg, progress=False)
    summary = json.loads((cfg.output_dir / "summary.json").read_text())
    assert out["n_candidates"]["none"] == out["n_candidates"]["nominal"]
    for m in MODELS:
        wps = out["models"][m]["shifts"]["none"]
        assert set(wps) == set(summary[m]["eff_at_rate"])
        for key, e in wps.items():
            ref = summary[m]["eff_at_rate"][key]
            assert e["threshold"] == ref["threshold"]
            for q in ("eff", "eff_tos", "eff_total", "rate_khz"):
                assert e[q]["shifted"] == e[q]["nominal"], (m, key, q)
                assert e[q]["delta"] == 0.0 and e[q]["delta_err"] == 0.0
            assert e["eff"]["nominal"] == ref["eff"]
            assert e["eff_tos"]["nominal"] == ref["eff_tos"]
            assert e["rate_khz"]["nominal"] == pytest.approx(ref["rate_khz"], rel=1e-12)
            assert e["changed_signal_events"] == 0
    assert (cfg.output_dir / "plots" / "robustness.png").is_file()
    assert len(table_rows(out)) == 2 * 2  # 2 models x 2 working points
    assert "none" in format_table(out)


def _shift_file_by_hand(src: Path, dst: Path, scales: dict[str, float]) -> None:
    """Copy a ROOT file with some DecayTree branches scaled (computed in float64, stored as float32 like the input)."""
    with uproot.open(src) as f:
        cand = f["DecayTree"].arrays(library="np")
        events = f["EventTuple"].arrays(library="np")
    for b, s in scales.items():
        assert cand[b].dtype == np.float32
        cand[b] = (cand[b].astype(np.float64) * s).astype(np.float32)
    with uproot.recreate(dst) as out:
        for name, cols in (("DecayTree", cand), ("EventTuple", events)):
            out.mktree(name, {k: v.dtype for k, v in cols.items()})
            out[name].extend(cols)


def _brute_force(
    cand: dict[str, np.ndarray], scores: np.ndarray, thr: float
) -> tuple[float, float]:
    """(signal efficiency, minimum-bias passing weight) at ``thr``, event by event in plain Python."""
    events: dict[tuple[int, int, int], list[tuple[float, bool, float]]] = {}
    for i in range(len(scores)):
        key = (int(cand["sample"][i]), int(cand["runNumber"][i]), int(cand["eventNumber"][i]))
        events.setdefault(key, []).append(
            (float(scores[i]), bool(cand["truth"][i]), float(cand["weight"][i]))
        )
    num = den = mb_pass = 0.0
    for (sample, _, _), cands in events.items():
        w = cands[0][2]
        best = max(s for s, _, _ in cands)
        if sample == 1:  # signal (samples sorted: minbias 0, signal 1)
            if any(t for _, t, _ in cands):
                den += w
                num += w * (best >= thr)
        elif best >= thr:
            mb_pass += w
    return num / den, mb_pass


def test_in_pipeline_shift_agrees_with_a_file_shifted_by_hand(run: Path, tmp_path: Path) -> None:
    scales = {"H1_PT": 0.9, "H2_PT": 0.9, "H1_IPCHI2_OWNPV": 1.3, "H2_IPCHI2_OWNPV": 1.3}
    cfg = _with_shifts(run, {"by_hand": {"H?_PT": 0.9, "H?_IPCHI2_OWNPV": 1.3}}, "shifted.yaml")
    out = workflow.robustness(cfg, progress=False)
    summary = json.loads((cfg.output_dir / "summary.json").read_text())

    # the nominal pipeline on files shifted by hand
    prepared = {}
    for s in ("signal", "minbias"):
        src = cfg.sample_files(s)[0]
        _shift_file_by_hand(src, tmp_path / src.name, scales)
        prepared[s] = [tmp_path / "prep" / f"{s}.parquet"]
        prepare_file(cfg, s, tmp_path / src.name, prepared[s][0], progress=False)
    gather_tables(cfg, prepared, tmp_path / "prep" / "dataset.parquet")
    ds = load_dataset(tmp_path / "prep" / "dataset.parquet", cfg)
    mb_total = ds.samples["minbias"]["sum_gen_weights"] * ds.samples["minbias"]["normalisation"]
    changed = 0
    for m in MODELS:
        folds = [
            load_classifier(model_kind(cfg, m), cfg.output_dir / "models" / m / f"fold{k}")
            for k in range(cfg.folds.k)
        ]
        X, fold = ds.X, ds.fold
        scores = np.full(len(ds), np.nan)
        for k, clf in enumerate(folds):
            scores[fold == k] = clf.predict_proba(X[fold == k])[:, 1]
        for key, e in out["models"][m]["shifts"]["by_hand"].items():
            thr = summary[m]["eff_at_rate"][key]["threshold"]
            eff, mb_pass = _brute_force(ds.columns, scores, thr)
            assert e["eff"]["shifted"] == pytest.approx(eff, rel=1e-9), (m, key)
            assert e["rate_khz"]["shifted"] == pytest.approx(
                30000 * mb_pass / mb_total, rel=1e-9
            ), (m, key)
            changed += e["eff"]["delta"] != 0.0
    assert changed  # the shift does move the working points


def test_unmatched_pattern_fails_before_any_output(run: Path) -> None:
    cfg = _with_shifts(run, {"typo": {"H?_PT": 0.98, "*_IPCHI2_OWNPVV": 1.2}}, "typo.yaml")
    with pytest.raises(
        ConfigError, match=r"robustness\.shifts\.typo: pattern '\*_IPCHI2_OWNPVV' matches no branch"
    ):
        workflow.robustness(cfg, progress=False)


def test_without_a_robustness_block_the_step_refuses(run: Path) -> None:
    with pytest.raises(ConfigError, match="no 'robustness: shifts:' block"):
        workflow.robustness(load_config(run), progress=False)


def test_offline_study_with_samples_of_different_layouts(tmp_path: Path) -> None:
    """Offline: a jagged signal tree (``Muon_pt``) and flat backgrounds (``mu1_pt``), each pattern matching one layout."""
    from .test_offline import _write_inputs, offline_config

    _write_inputs(tmp_path / "data")
    raw = offline_config(tmp_path / "data")
    raw["robustness"] = {
        "shifts": {"same": {"Muon_pt": 1.0, "mu1_pt": 1.0}, "signal_pt": {"Muon_pt": 0.8}}
    }
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", raw), base_dir=tmp_path)
    for s in sorted(cfg.samples):
        workflow.prepare(cfg, s, 0, progress=False)
    workflow.gather(cfg)
    for k in range(cfg.folds.k):
        workflow.train(cfg, "bdt", k, progress=False)
    summary = workflow.evaluate(cfg, progress=False)
    out = workflow.robustness(cfg, progress=False)
    assert out["offline"] and set(out["models"]["bdt"]["shifts"]) == {"same", "signal_pt"}
    for key, e in out["models"]["bdt"]["shifts"]["same"].items():
        wp = summary["bdt"]["offline"]["working_points"][key]
        assert e["sig_eff"]["nominal"] == pytest.approx(wp["sig_eff"], rel=1e-12)
        assert e["bkg_eff"]["nominal"] == pytest.approx(wp["bkg_eff"], rel=1e-12)
        for q in ("sig_eff", "bkg_eff"):
            assert e[q]["shifted"] == e[q]["nominal"] and e[q]["delta_err"] == 0.0
    moved = out["models"]["bdt"]["shifts"]["signal_pt"]
    # only the signal tree has Muon_pt: the backgrounds are untouched
    assert all(e["bkg_eff"]["delta"] == 0.0 for e in moved.values())
    assert any(e["sig_eff"]["delta"] != 0.0 for e in moved.values())
    assert "signal_pt" in format_table(out)

    raw["robustness"] = {"shifts": {"typo": {"Muon_pt": 0.9, "mu2_pt": 0.9}}}
    cfg = load_config(write_config(tmp_path / "analyses" / "offline", raw), base_dir=tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"robustness\.shifts\.typo: pattern 'mu2_pt' matches no branch of .*signal\.root",
    ):
        workflow.robustness(cfg, progress=False)


def test_unreachable_working_points_have_no_threshold() -> None:
    """A working point whose threshold is null (the model cannot reach the rate) is skipped, not a crash."""
    from hepsel.workflow.labels import working_point_thresholds

    perf = {
        "eff_at_rate": {
            "1000": {"threshold": None, "eff": 0.0},
            "500": {"threshold": 0.75, "eff": 0.4},
        }
    }
    assert working_point_thresholds(perf) == {"500": 0.75}
    offline = {
        "offline": {"working_points": {"0.8": {"threshold": 0.5}, "0.9": {"threshold": None}}}
    }
    assert working_point_thresholds(offline) == {"0.8": 0.5}


def test_plot_with_a_model_that_misses_a_working_point() -> None:
    """One model reaches only one of two working points: the figure still draws both, that model at one."""
    import matplotlib.pyplot as plt

    from hepsel.report.study_plots import robustness_figure

    def q(nominal: float, delta: float) -> dict[str, float]:
        return {"nominal": nominal, "shifted": nominal + delta, "delta": delta, "delta_err": 0.01}

    both = {
        "1000": {"eff": q(0.8, -0.01), "rate_khz": q(1000.0, 20.0)},
        "500": {"eff": q(0.6, -0.02), "rate_khz": q(500.0, 5.0)},
    }
    result = {
        "shifts": {"ip": {"*_IPCHI2_OWNPV": {"scale": 1.2, "offset": 0.0}}},
        "working_point_unit": "kHz",
        "models": {"a": {"shifts": {"ip": {"500": both["500"]}}}, "b": {"shifts": {"ip": both}}},
    }
    fig = robustness_figure(result)
    labels = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
    assert labels == ["500 kHz", "1000 kHz"]
    plt.close(fig)


def _text_boxes(ax) -> list:  # type: ignore[no-untyped-def]
    """Window extents of an axes' visible tick labels, axis labels and title."""
    r = ax.figure.canvas.get_renderer()
    texts = [ax.xaxis.label, ax.yaxis.label]
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        # the labels drawn: ticks inside the view limits
        texts += [
            t.label1 for t in axis.get_major_ticks() if min(lo, hi) <= t.get_loc() <= max(lo, hi)
        ]
    return [t.get_window_extent(r) for t in texts if t.get_visible() and t.get_text()]


def test_figure_of_two_shifts_has_no_text_over_another_panel() -> None:
    """Labels of one panel never overlap the frame or labels of a neighbouring panel."""
    import matplotlib.pyplot as plt

    from hepsel.report.plotting import lhcb_style
    from hepsel.report.study_plots import robustness_figure

    def q(nominal: float, delta: float) -> dict[str, float]:
        return {"nominal": nominal, "shifted": nominal + delta, "delta": delta, "delta_err": 0.01}

    wps = {k: {"eff": q(0.8, -0.01), "rate_khz": q(float(k), -25.0)} for k in ("660", "100")}
    result = {
        "shifts": {s: {"*_PT": {"scale": 0.98, "offset": 0.0}} for s in ("a", "b")},
        "working_point_unit": "kHz",
        "models": {m: {"shifts": {"a": wps, "b": wps}} for m in ("bdt", "long_model_name")},
    }
    with lhcb_style():
        fig = robustness_figure(result)
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        for ax in fig.axes:
            for other in fig.axes:
                if other is ax:
                    continue
                frame = other.get_window_extent(r)
                for box in _text_boxes(ax):
                    assert not box.overlaps(frame), (ax.get_ylabel(), box, frame)
                    for b2 in _text_boxes(other):
                        assert not box.overlaps(b2)
        # one y label per row
        assert [ax.get_ylabel() != "" for ax in fig.axes] == [True, False, True, False]
        plt.close(fig)


def test_console_table_stays_aligned_with_long_names() -> None:
    def q(nominal: float, delta: float) -> dict[str, float]:
        return {"nominal": nominal, "shifted": nominal + delta, "delta": delta, "delta_err": 0.01}

    wps = {"660": {"eff": q(0.8, -0.01), "rate_khz": q(660.0, 20.0)}}
    result = {
        "shifts": {"a_rather_long_shift_name": {}, "b": {}},
        "working_point_unit": "kHz",
        "models": {
            m: {"shifts": {"a_rather_long_shift_name": wps, "b": wps}}
            for m in ("bdt", "decorrelated_mlp_v2")
        },
    }
    lines = format_table(result).splitlines()
    assert len({len(line) for line in lines}) == 1
    # every row's columns start where the header's do
    start = lines[0].index("eff_S nom") + len("eff_S nom")
    assert all(line[start - 1] != " " and line[start] == " " for line in lines[2:])
