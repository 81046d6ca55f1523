"""End-to-end: the Snakefile on a tiny analysis, and bad input through Snakemake and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot
from sklearn.metrics import roc_auc_score, roc_curve

from .conftest import REPO, tiny_config, write_config

pytestmark = pytest.mark.slow


def _snakemake(workdir: Path, analysis: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *extra,
        "--config",
        f"analysis={analysis}",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=workdir)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("tiny")
    analysis = work / "analyses" / "tiny"
    apply = {
        "datasets": {
            "signal": {"files": ["data/signal_000.root"]},
            "minbias": {"files": ["data/minbias_*.root"]},
        }
    }
    write_config(analysis, tiny_config("data", apply=apply))
    proc = _snakemake(work, analysis)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work / "results" / "tiny"


def test_outputs_exist(tiny_run: Path) -> None:
    for f in (
        "summary.json",
        "scores.root",
        "cutflow.json",
        "cutflow.md",
        "plots/roc.png",
        "plots/roc.pdf",
        "plots/eff_vs_rate.png",
        "plots/scores_bdt.png",
        "plots/cutflow.png",
        "selection/selection.json",
    ):
        assert (tiny_run / f).is_file(), f
    assert (tiny_run / "logs" / "gather.log").is_file()


def _scores(run: Path) -> dict[str, np.ndarray]:
    with uproot.open(run / "scores.root") as f:
        return f["scores"].arrays(library="np")


def test_summary_contract(tiny_run: Path) -> None:
    s = json.loads((tiny_run / "summary.json").read_text())
    bdt = s["bdt"]
    assert set(bdt["eff_at_bkg_eff"]) == {"0.01", "0.1", "0.3"}
    assert set(bdt["ks_pvalue"]) == {"signal", "background"}
    assert set(bdt["eff_at_rate"]) == {"1000", "500"}
    for e in bdt["eff_at_rate"].values():
        assert len(e["eff_folds"]) == 3
        assert set(e["per_mode"]) == {"B0 -> K+ pi-", "Bs0 -> K+ K-", "B0 -> D- pi+"}


def test_eff_at_bkg_eff_matches_sklearn_roc(tiny_run: Path) -> None:
    """Signal efficiency at each background efficiency, read off sklearn's ROC curve of scores.root."""
    t = _scores(tiny_run)
    m = t["truth"] == 1
    fpr, tpr, _ = roc_curve(
        t["label"][m], t["score_bdt"][m], sample_weight=t["weight"][m], drop_intermediate=False
    )
    s = json.loads((tiny_run / "summary.json").read_text())
    for key, got in s["bdt"]["eff_at_bkg_eff"].items():
        b = float(key)
        if np.any(
            fpr == b
        ):  # on a vertical stretch of the curve the highest signal efficiency counts
            want = tpr[fpr == b].max()
        else:  # on the straight line to the next point of the curve
            i = np.flatnonzero(fpr < b)[-1]
            want = tpr[i] + (tpr[i + 1] - tpr[i]) * (b - fpr[i]) / (fpr[i + 1] - fpr[i])
        assert got == pytest.approx(want, abs=1e-12), key


def test_eff_at_rate_recomputed_from_scores_root(tiny_run: Path) -> None:
    """Every eff_at_rate figure, by explicit loops over the events of scores.root and the event counts of samples.json."""
    from .test_evaluation import brute_cp, brute_events, brute_threshold

    t = _scores(tiny_run)
    info = json.loads((tiny_run / "samples.json").read_text())
    s = json.loads((tiny_run / "summary.json").read_text())["bdt"]
    score = t["score_bdt"]
    mb_i, sig_i = info["minbias"], info["signal"]
    mb = t["sample"] == mb_i["index"]
    sg = t["sample"] == sig_i["index"]
    mb_ev = brute_events(t["runNumber"][mb], t["eventNumber"][mb], score[mb], t["weight"][mb])
    best = [e["any"] for e in mb_ev.values()]
    w_mb = [e["w"] for e in mb_ev.values()]
    raw = t["raw_bdt"]
    best_raw = [
        e["any"]
        for e in brute_events(
            t["runNumber"][mb], t["eventNumber"][mb], raw[mb], t["weight"][mb]
        ).values()
    ]
    parity = [k[1] % 2 for k in mb_ev]
    # every processed minimum-bias event counts, with or without candidates
    total = mb_i["sum_gen_weights"] * mb_i["normalisation"]
    total2 = mb_i["sum_gen_weights2"] * mb_i["normalisation"] ** 2
    assert mb_i["n_events"] > len(mb_ev)
    extra = {"mode": t["mode"][sg], "fold": t["fold"][sg]}
    sig = brute_events(
        t["runNumber"][sg],
        t["eventNumber"][sg],
        score[sg],
        t["weight"][sg],
        t["truth"][sg] == 1,
        extra,
    )
    sig = [e for e in sig.values() if e["tos"] is not None]
    w = np.array([e["w"] for e in sig])
    any_score = np.array([e["any"] for e in sig])
    tos_score = np.array([e["tos"] for e in sig])
    fold = np.array([e["fold"] for e in sig])
    mode = np.array([e["mode"] for e in sig])
    assert s["trigger_events"] == {
        "n_signal_events": len(sig),
        "n_minbias_events": mb_i["n_events"],
    }
    names = {1: "B0 -> K+ pi-", 2: "Bs0 -> K+ K-", 3: "B0 -> D- pi+"}
    for target in (1000.0, 500.0):
        e = s["eff_at_rate"][f"{target:g}"]
        thr = brute_threshold(best, w_mb, total, 30000.0, target)
        assert e["threshold"] == thr
        # the working point is chosen on the raw output (the BDT margin); same events as on the probability here
        assert e["threshold_raw"] == brute_threshold(best_raw, w_mb, total, 30000.0, target)
        f = sum(x for b, x in zip(best, w_mb, strict=True) if b >= thr) / total
        assert e["rate_khz"] == pytest.approx(30000.0 * f, rel=1e-9)
        assert e["rate_khz_err"] == pytest.approx(
            30000.0 * np.sqrt(f * (1 - f) / (total**2 / total2)), rel=1e-9
        )
        assert (e["eff"], e["eff_low"], e["eff_high"]) == pytest.approx(
            brute_cp(any_score >= thr, w), abs=1e-9
        )
        assert (e["eff_tos"], e["eff_tos_low"], e["eff_tos_high"]) == pytest.approx(
            brute_cp(tos_score >= thr, w), abs=1e-9
        )
        folds = [w[(fold == k) & (any_score >= thr)].sum() / w[fold == k].sum() for k in range(3)]
        assert e["eff_folds"] == pytest.approx(folds, abs=1e-9)
        for code, name in names.items():
            pm, sel = e["per_mode"][name], mode == code
            assert pm["n_events"] == int(sel.sum())
            assert (pm["eff"], pm["eff_low"], pm["eff_high"]) == pytest.approx(
                brute_cp(any_score[sel] >= thr, w[sel]), abs=1e-9
            )
            assert pm["eff_tos"] == pytest.approx(
                brute_cp(tos_score[sel] >= thr, w[sel])[0], abs=1e-9
            )
        # measured rate: threshold from the even-numbered events, rate from the odd ones, each half the processed events
        even = [(b, x) for b, x, p in zip(best, w_mb, parity, strict=True) if p == 0]
        thr_split = brute_threshold(
            [b for b, _ in even], [x for _, x in even], total / 2, 30000.0, target
        )
        assert e["threshold_split"] == thr_split
        odd = sum(
            x for b, x, p in zip(best, w_mb, parity, strict=True) if p == 1 and b >= thr_split
        ) / (total / 2)
        assert e["rate_khz_measured"] == pytest.approx(30000.0 * odd, rel=1e-9)
        assert e["rate_khz_measured_err"] == pytest.approx(
            30000.0 * np.sqrt(odd * (1 - odd) / (total**2 / total2 / 2)), rel=1e-9
        )


def test_total_efficiency_includes_the_preselection(tiny_run: Path) -> None:
    s = json.loads((tiny_run / "summary.json").read_text())["bdt"]
    presel = s["eff_preselection"]
    assert presel["n_events"] == 3000  # every generated signal event, from the events tree
    assert 0 < presel["eff"] < 1
    for rate, e in s["eff_at_rate"].items():
        total = s["eff_total"][rate]
        # same numerator, denominator all generated events instead of the preselected ones
        assert total["eff"] == pytest.approx(e["eff"] * presel["eff"], rel=1e-9)
        assert total["eff_low"] <= total["eff"] <= total["eff_high"]
        for mode, pm in e["per_mode"].items():
            assert total["per_mode"][mode]["eff"] == pytest.approx(
                pm["eff"] * presel["per_mode"][mode]["eff"], rel=1e-9
            )
    tau = s["efficiency_vs_total"]["B_TRUETAU"]
    assert set(tau["per_mode"]) == set(s["eff_total"]["1000"]["per_mode"])
    assert (tiny_run / "plots" / "eff_vs_B_TRUETAU_total_bdt_per_mode.png").is_file()
    html = (tiny_run / "report.html").read_text()
    assert "total signal eff." in html and "eff_vs_B_TRUETAU_total_bdt.png" in html


def test_auc_matches_sklearn_from_scores_root(tiny_run: Path) -> None:
    with uproot.open(tiny_run / "scores.root") as f:
        t = f["scores"].arrays(library="np")
    for b in ("runNumber", "eventNumber", "label", "weight", "fold", "score_bdt"):
        assert b in t
    m = t["truth"] == 1
    auc = roc_auc_score(t["label"][m], t["score_bdt"][m], sample_weight=t["weight"][m])
    s = json.loads((tiny_run / "summary.json").read_text())
    assert s["bdt"]["auc"] == pytest.approx(auc, abs=1e-9)
    assert np.all(np.isfinite(t["score_bdt"]))
    # folds follow eventNumber % k
    np.testing.assert_array_equal(t["fold"], t["eventNumber"] % 3)


def test_selection_reproduces_scores(tiny_run: Path) -> None:
    import hepsel

    sel = hepsel.Selection.load(tiny_run / "selection")
    with uproot.open(tiny_run / "scores.root") as f:
        t = f["scores"].arrays(library="np")
    data = tiny_run.parents[1] / "data" / "signal_000.root"
    raw = uproot.open(data)["DecayTree"].arrays(library="np")
    pre = sel.preselect(raw)
    scores = sel.score({k: v[pre] for k, v in raw.items()})
    sig = t["sample"] == 1  # samples are indexed in sorted name order: minbias 0, signal 1
    np.testing.assert_allclose(np.sort(scores), np.sort(t["score_bdt"][sig]), rtol=1e-6)
    passed = sel.passes(str(data), rate_khz=1000)
    thr = sel.threshold(rate_khz=1000)
    assert passed.sum() == int(np.sum(scores >= thr))


def test_selection_records_training_branch_types_and_refuses_bool(
    tiny_run: Path, tmp_path: Path
) -> None:
    """selection.json holds each input branch's type as training read it; B_VTXCHI2 stored as bool is refused."""
    import hepsel
    from hepsel.exceptions import BranchTypeError

    sel = hepsel.Selection.load(tiny_run / "selection")
    meta = json.loads((tiny_run / "selection" / "selection.json").read_text())
    data = tiny_run.parents[1] / "data" / "signal_000.root"
    with uproot.open(data) as f:
        tree = f["DecayTree"]
        want = {b: str(tree[b].interpretation.awkward_form(f.file).type) for b in sel.branches}
        raw = tree.arrays(library="np")
    assert meta["branch_types"] == want and want["B_VTXCHI2"] == "float32"
    bad = tmp_path / "bool.root"
    with uproot.recreate(bad) as f:
        cols = dict(raw, B_VTXCHI2=raw["B_VTXCHI2"] > 5)
        f.mktree("DecayTree", {k: v.dtype for k, v in cols.items()})
        f["DecayTree"].extend(cols)
    with pytest.raises(
        BranchTypeError,
        match=r"bool\.root:DecayTree: branch 'B_VTXCHI2' is bool but the selection was trained on float32",
    ):
        sel.score(bad)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            lambda c: c["features"].append({"name": "typo", "expr": "B_PTT"}),
            "branch 'B_PTT' not found",
            id="misspelt-branch",
        ),
        pytest.param(
            lambda c: c["preselection"].append({"name": "broken", "cut": "B_PT >> > 3"}),
            "B_PT >> > 3",
            id="cut-syntax",
        ),
        pytest.param(
            lambda c: c["samples"]["minbias"].update(files=["data/missing.root"], generate=None),
            "missing.root",
            id="missing-file",
        ),
    ],
)
def test_bad_input_stops_snakemake(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = tiny_config("data", sig_events=500, mb_events=1000)
    mutate(raw)
    if raw["samples"]["minbias"].get("generate") is None:
        raw["samples"]["minbias"].pop("generate")
    analysis = tmp_path / "analyses" / "bad"
    write_config(analysis, raw)
    proc = _snakemake(tmp_path, analysis)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results" / "tiny" / "summary.json").exists()
    assert not (tmp_path / "results" / "tiny" / "dataset.parquet").exists()


def test_cli_error_exit_code(tmp_path: Path) -> None:
    raw = tiny_config(str(tmp_path / "nodata"))
    raw["samples"]["minbias"]["files"] = [str(tmp_path / "nodata" / "x.root")]
    raw["samples"]["minbias"].pop("generate")
    analysis = tmp_path / "a"
    write_config(analysis, raw)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hepsel.cli",
            "prepare",
            "--config",
            str(analysis),
            "--sample",
            "minbias",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "hepsel: error: input file" in proc.stderr and "x.root" in proc.stderr
    assert "Traceback" not in proc.stderr


def _numbers(obj, prefix=""):  # type: ignore[no-untyped-def]
    """Flatten the numeric leaves of a summary, skipping timings."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in ("seconds", "gan_seconds", "files", "_meta"):
                continue
            out.update(_numbers(v, f"{prefix}/{k}"))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(_numbers(v, f"{prefix}[{i}]"))
        return out
    return {prefix: obj} if isinstance(obj, (int, float)) else {}


def test_split_files_give_the_same_summary(tiny_run: Path, tmp_path: Path) -> None:
    """Samples split over 3 files (one of them empty) and run with --cores 2 reproduce the 1-file numbers."""
    analysis = tmp_path / "analyses" / "tiny"
    write_config(analysis, tiny_config("data", files=3))
    proc = _snakemake(tmp_path, analysis)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "results" / "tiny"
    assert len(list((out / "prepared" / "minbias").glob("*.parquet"))) == 3
    split = _numbers(json.loads((out / "summary.json").read_text()))
    single = _numbers(json.loads((tiny_run / "summary.json").read_text()))
    assert split.keys() == single.keys()
    for k in single:
        assert split[k] == pytest.approx(single[k], rel=1e-12, abs=1e-12), k


def test_all_model_kinds_report_and_study(tmp_path: Path) -> None:
    """bdt, mlp, gan_bdt and fisher through the Snakefile, plus the report and the augmentation study target."""
    from .test_training import MODELS

    raw = tiny_config("data", models=MODELS)
    raw["study"] = {"n_real": [200, "all"], "seeds": [1, 2], "models": ["bdt", "gan_bdt"]}
    raw["evaluation"]["shap"] = {"events": 300, "background_events": 50, "mlp_samples": 10}
    raw["training"] = {"fold_jobs": "per_model"}  # one start-up per model (the same fold models)
    analysis = tmp_path / "analyses" / "tiny"
    write_config(analysis, raw)
    proc = _snakemake(tmp_path, analysis, "all", "study")
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "results" / "tiny"
    s = json.loads((out / "summary.json").read_text())
    t = _scores(out)
    truth = t["truth"] == 1
    for m in ("bdt", "mlp", "gan_bdt", "fisher", "bbdt"):
        want = roc_auc_score(
            t["label"][truth], t[f"score_{m}"][truth], sample_weight=t["weight"][truth]
        )
        assert s[m]["auc"] == pytest.approx(want, abs=1e-9), m
        assert "eff_at_rate" in s[m] and "optimal_cut" in s[m] and "efficiency_vs" in s[m]
    n_dataset = len(
        __import__("hepsel.io.storage", fromlist=["read_table"]).read_table(
            out / "dataset.parquet"
        )["label"]
    )
    assert len(t["score_gan_bdt"]) == n_dataset  # no synthetic candidate is ever scored or stored
    fid = json.loads((out / "fidelity" / "gan_bdt.json").read_text())
    signal = truth & (t["label"] == 1)
    # each fold's GAN is compared with the truth-matched signal of its own fold, which it never saw
    assert [f["n_real"] for f in fid["folds"]] == [
        int((signal & (t["fold"] == k)).sum()) for k in range(3)
    ]
    assert fid["c2st_auc_mean"] == pytest.approx(
        np.mean([f["c2st_auc"] for f in fid["folds"]]), rel=1e-12
    )
    assert set(fid["wasserstein"]) == set(fid["baseline_wasserstein"])
    shap = np.load(out / "shap" / "bdt.npz")
    assert shap["values"].shape == (300, 5)
    study = json.loads((out / "study" / "augmentation.json").read_text())
    assert {r["model"] for r in study["rows"]} == {"bdt", "gan_bdt"}
    assert len(study["points"]) == 2 * 2 * 2
    # the study trains on the truth-matched signal of folds 1 and 2: 200 of them, or all
    pool = int((signal & (t["fold"] != 0)).sum())
    assert sorted({p["n_real"] for p in study["points"]}) == [200, pool]
    for p in (
        "plots/augmentation_auc.png",
        "plots/gan_overlay_gan_bdt.png",
        "plots/shap_beeswarm_bdt.png",
        "plots/shap_beeswarm_mlp.png",
        "report.html",
    ):
        assert (out / p).is_file(), p
    html = (out / "report.html").read_text()
    assert "gan_bdt" in html and "plots/roc.png" in html


def test_apply_target_writes_friends_that_reproduce_scores_root(tiny_run: Path) -> None:
    """snakemake apply, then the docs' own snippets (docs/howto/apply-export.md), run on this study's files."""
    import re

    work = tiny_run.parents[1]
    proc = _snakemake(work, work / "analyses" / "tiny", "apply")
    assert proc.returncode == 0, proc.stderr[-4000:]
    with uproot.open(tiny_run / "scores.root") as f:
        t = f["scores"].arrays(library="np")
    for index, sample in ((0, "minbias"), (1, "signal")):
        out = tiny_run / "apply" / sample / "000" / f"{sample}_000_hepsel.root"
        with uproot.open(out) as f, uproot.open(work / "data" / f"{sample}_000.root") as fin:
            fr = f["hepsel"].arrays(library="np")
            assert len(fr["presel"]) == fin["DecayTree"].num_entries
            np.testing.assert_array_equal(
                fr["eventNumber"], fin["DecayTree"]["eventNumber"].array(library="np")
            )
        m = t["sample"] == index
        np.testing.assert_allclose(
            fr["score_bdt"][fr["presel"]], t["score_bdt"][m], rtol=0, atol=1e-6
        )
        assert (
            np.isnan(fr["score_bdt"][~fr["presel"]]).all()
            and not fr["pass_bdt_1000kHz"][~fr["presel"]].any()
        )
        # the raw output (the BDT margin) travels too, and the decisions cut it
        np.testing.assert_allclose(
            fr["raw_bdt"][fr["presel"]], t["raw_bdt"][m], rtol=1e-6, atol=1e-5
        )
        thr = json.loads((tiny_run / "summary.json").read_text())["bdt"]["eff_at_rate"]["1000"][
            "threshold_raw"
        ]
        np.testing.assert_array_equal(fr["pass_bdt_1000kHz"], fr["presel"] & (fr["raw_bdt"] >= thr))
    page = REPO / "docs" / "howto" / "apply-export.md"
    text = page.read_text()
    # the blocks carry a no-exec marker (tests/test_docs.py does not run them: they need a finished study)
    snippet = re.search(
        r"Reading the friend next to the input:\n\n(?:<!--[^\n]*-->\n)?```python\n(.*?)```",
        text,
        flags=re.DOTALL,
    )
    assert snippet is not None
    code = (
        snippet.group(1)
        .replace("data/generated/topo2body/", f"{work}/data/")
        .replace("results/topo2body/", f"{tiny_run}/")
        .replace("pass_bdt_660kHz", "pass_bdt_1000kHz")
        .replace("660 kHz", "1000 kHz")
    )
    exec(compile(code, str(page), "exec"), {})
    api = re.search(
        r"## From Python\n\n(?:<!--[^\n]*-->\n)?```python\n(.*?)```", text, flags=re.DOTALL
    )
    assert api is not None
    code = (
        api.group(1)
        .replace("data/generated/topo2body/", f"{work}/data/")
        .replace("results/topo2body/", f"{tiny_run}/")
        .replace("660", "1000")
    )
    from hepsel.deploy.selection import InterpolatedWorkingPoint

    with pytest.warns(InterpolatedWorkingPoint):
        exec(compile(code, str(page), "exec"), {})


def test_apply_glob_over_own_results_is_stable(tiny_run: Path) -> None:
    """An apply: glob that also matches the study's own outputs ('results/**/*.root', recursive): they are skipped
    with one line each, so repeated runs keep the same two jobs and never apply to an output."""
    from .conftest import config_editor

    work = tiny_run.parents[1]
    analysis = work / "analyses" / "tiny"
    editor = config_editor(work)
    edit = next(editor)
    try:
        edit(
            lambda c: c.update(
                apply={
                    "datasets": {"mixed": {"files": ["data/**/*_000.root", "results/**/*.root"]}}
                }
            )
        )
        # mtime only: the apply: edit is not what this test is about (it must not retrain or re-evaluate)
        runs = [
            _snakemake(
                work, analysis, "apply", "--rerun-triggers", "mtime", "--forcerun", "apply_file"
            )
            for _ in range(3)
        ]
        for proc in runs:
            assert proc.returncode == 0, proc.stderr[-4000:]
            ran = proc.stderr.count("rule apply_file:")
            assert ran == 2, proc.stderr[-4000:]
            skips = [
                line for line in proc.stderr.splitlines() if line.startswith("hepsel: skipping ")
            ]
            assert skips and all(
                f"'{tiny_run}/" in line and "hepsel's own output" in line for line in skips
            )
            assert any("scores.root" in line for line in skips)
        made = sorted(
            str(p.relative_to(tiny_run / "apply" / "mixed"))
            for p in (tiny_run / "apply" / "mixed").rglob("*.root")
        )
        assert made == ["000/minbias_000_hepsel.root", "001/signal_000_hepsel.root"]
        assert not list(work.rglob("*_hepsel_hepsel*"))
    finally:
        next(editor, None)


def test_switched_off_steps_leave_the_default_target(tmp_path: Path) -> None:
    """With shap, explain and report switched off the default target has no explain, why or report job."""
    analysis = tmp_path / "analyses" / "tiny"
    cfg = tiny_config("data", explain={"enabled": False}, report={"enabled": False})
    cfg["evaluation"]["shap"] = {"enabled": False}
    write_config(analysis, cfg)
    proc = _snakemake(tmp_path, analysis, "-n")
    assert proc.returncode == 0, proc.stderr[-4000:]
    jobs = proc.stdout + proc.stderr
    for rule in ("prepare", "gather", "train", "evaluate", "plots"):
        assert f"rule {rule}:" in jobs or f"localrule {rule}:" in jobs, rule
    for rule in ("explain", "why", "why_settings", "report"):
        assert f"rule {rule}:" not in jobs, rule
    on = _snakemake(tmp_path, write_config(tmp_path / "on", tiny_config("data")).parent, "-n")
    assert "rule explain:" in on.stdout + on.stderr or "localrule explain:" in on.stdout + on.stderr
