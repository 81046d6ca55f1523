"""ONNX export: every exported graph gives hepsel's score on the default study's candidates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from hepsel.cli import main
from hepsel.config import AnalysisConfig, load_config
from hepsel.cuts import CutSequence
from hepsel.evaluation import model_kind
from hepsel.exceptions import ExportError, ModelFileError
from hepsel.export import export_onnx, onnx_model
from hepsel.features import FeatureSet
from hepsel.models.mlp import MLPClassifier
from hepsel.preprocessing import FeatureScaler
from hepsel.selection import Selection
from hepsel.simulation import simulate_events
from hepsel.training import fit_model, model_seed

REPO = Path(__file__).resolve().parents[1]
N_CANDIDATES = 100_000
K = 3
TOLERANCE = 1e-5  # max |score difference|; the graphs' scores are float32

#: Small models of every kind, the GAN-augmented one with a tiny GAN.
MODELS: dict[str, Any] = {
    # stops early: the exports must keep the trees up to the best round only
    "bdt": {"type": "bdt", "params": {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.5, "early_stopping_rounds": 3, "n_jobs": 1}},
    "mlp_quantile": {
        "type": "mlp",
        "params": {"hidden_layers": [16, 16], "activation": "silu", "preprocessing": "quantile", "max_epochs": 3, "batch_size": 512, "n_jobs": 1, "device": "cpu"},
    },
    "mlp_standard": {
        "type": "mlp",
        "params": {"hidden_layers": [16], "activation": "elu", "preprocessing": "standard", "max_epochs": 3, "batch_size": 512, "n_jobs": 1, "device": "cpu"},
    },
    "gan_bdt": {
        "type": "gan_augmented",
        "base": "bdt",
        "params": {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.3, "early_stopping_rounds": 5, "n_jobs": 1},
        "gan": {
            "generator_layers": [16, 16], "critic_layers": [16, 16], "n_iterations": 30, "n_critic": 2,
            "batch_size": 128, "selection_interval": 15, "n_jobs": 1, "device": "cpu",
        },
        "synthetic_ratio": 0.5,
    },
    "fisher": {"type": "fisher"},
    "autoencoder": {
        "type": "autoencoder",
        "params": {"hidden_layers": [16], "bottleneck": 3, "preprocessing": "quantile", "error_scaling": "feature", "max_epochs": 3, "n_jobs": 1, "device": "cpu"},
    },
}


def _candidates(cfg: AnalysisConfig, fs: FeatureSet) -> dict[str, np.ndarray]:
    """100k preselected candidates of the default study's generator settings, with a label and truth flag."""
    cuts = CutSequence([(p.name, p.cut) for p in cfg.preselection], aliases=fs.aliases, where="preselection")
    parts = []
    for sample, n_events in (("signal", 20_000), ("minbias", 60_000)):
        gen = cfg.samples[sample].generate
        assert gen is not None
        cands, _ = simulate_events(gen.kind, n_events, seed=gen.seed, pileup=gen.pileup)
        keep = cuts.mask(cands, np.ones(len(cands["eventNumber"])))
        part = {k: v[keep] for k, v in cands.items()}
        part["label"] = np.full(int(keep.sum()), cfg.samples[sample].label)
        part["truth"] = part["truth_matched"] == 1 if sample == "signal" else np.ones(int(keep.sum()), dtype=bool)
        parts.append(part)
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    assert len(joined["eventNumber"]) >= N_CANDIDATES
    return {k: v[:N_CANDIDATES] for k, v in joined.items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A saved selection of small fold models of every kind, trained on the default study's features."""
    cfg = load_config(REPO / "analyses" / "topo2body", base_dir=REPO, overrides={"folds": {"k": K}, "models": MODELS})
    fs = FeatureSet.from_config(cfg)
    arrays = _candidates(cfg, fs)
    X = fs.matrix(arrays)
    fold = arrays["eventNumber"] % K
    y = arrays["label"]
    w = np.asarray(arrays["eventWeight"], dtype=np.float64)
    models: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        folds = []
        for i in range(K):
            # every other candidate of the training folds: enough for a model, quick to fit
            train = np.flatnonzero((fold != i) & arrays["truth"])[::2]
            clf, _, _ = fit_model(
                cfg, cfg.models[name], X[train], y[train], w[train], seed=model_seed(cfg, name, i),
                events=(arrays["runNumber"][train], arrays["eventNumber"][train]),
            )
            folds.append(clf)
        models[name] = {"kind": model_kind(cfg, name), "folds": folds}
    sel = Selection(
        preselection=[(p.name, p.cut) for p in cfg.preselection],
        features=fs,
        models=models,
        working_points={},
        fold_branch="eventNumber",
    )
    scores = {name: sel.score(arrays, model=name) for name in MODELS}
    bkg = y == 0
    sel.working_points = {
        name: {"660": float(np.quantile(s[bkg], 0.99)), "100": float(np.quantile(s[bkg], 0.999))} for name, s in scores.items()
    }
    directory = sel.save(tmp_path_factory.mktemp("study") / "selection")
    return {"dir": directory, "arrays": arrays, "X": X, "scores": scores, "selection": sel}


def _run(path: Path, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["score"], {"features": X})
    return np.asarray(out)


def _exported_scores(out: Path, model: str, X: np.ndarray, event_number: np.ndarray) -> np.ndarray:
    """Scores from the exported graphs, each candidate by the fold graph the side file's rule picks."""
    side = json.loads((out / "export.json").read_text())
    files = side["models"][model]["onnx"]
    k = side["folds"]["k"]
    assert side["folds"]["rule"] == f"{side['folds']['branch']} % {k}"
    fold = event_number % k
    scores = np.full(len(X), np.nan)
    for i, f in enumerate(files):
        m = fold == i
        scores[m] = _run(out / f, X[m])
    return scores


def test_exported_graphs_match_hepsel_on_100k_candidates(study: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    written = export_onnx(study["dir"], out)
    assert all(p.is_file() for p in written)
    assert len(study["X"]) == N_CANDIDATES
    worst = {}
    for name in MODELS:
        onnx_scores = _exported_scores(out, name, study["X"], study["arrays"]["eventNumber"])
        worst[name] = float(np.max(np.abs(onnx_scores - study["scores"][name])))
    print("max |ONNX - hepsel| (float64 input):", {k: f"{v:.1e}" for k, v in worst.items()})
    assert all(v <= TOLERANCE for v in worst.values()), worst


def test_float32_graphs_match_hepsel_on_the_same_values(study: dict[str, Any], tmp_path: Path) -> None:
    """A float32 graph gives hepsel's score of the float32-rounded features."""
    out = tmp_path / "deploy32"
    export_onnx(study["selection"], out, dtype="float32")
    X32 = study["X"].astype(np.float32)
    fold = study["arrays"]["eventNumber"] % K
    worst, rounding = {}, {}
    for name in MODELS:
        hepsel_scores = np.empty(len(X32))
        for i, clf in enumerate(study["selection"].models[name]["folds"]):
            hepsel_scores[fold == i] = clf.predict_proba(X32[fold == i].astype(np.float64))[:, 1]
        onnx_scores = _exported_scores(out, name, X32, study["arrays"]["eventNumber"])
        worst[name] = float(np.max(np.abs(onnx_scores - hepsel_scores)))
        rounding[name] = float(np.max(np.abs(onnx_scores - study["scores"][name])))
    print("max |ONNX - hepsel| (float32 input, same values):", {k: f"{v:.1e}" for k, v in worst.items()})
    print("max |ONNX(float32 features) - hepsel(float64 features)|:", {k: f"{v:.1e}" for k, v in rounding.items()})
    assert all(v <= TOLERANCE for v in worst.values()), worst
    # only the quantile scalings (the MLP's and the autoencoder's) are steep enough for the input rounding to show
    assert all(v <= TOLERANCE for k, v in rounding.items() if k not in ("mlp_quantile", "autoencoder")), rounding


def test_cli_export(study: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = main(["export", "--selection", str(study["dir"]), "--format", "onnx", "-o", str(out), "--model", "gan_bdt", "--model", "fisher"])
    assert rc == 0
    side = json.loads((out / "export.json").read_text())
    assert sorted(side["models"]) == ["fisher", "gan_bdt"]
    assert sorted(p.name for p in (out / "gan_bdt").iterdir()) == sorted(
        [f"fold{i}.onnx" for i in range(K)] + [f"fold{i}.xgb.json" for i in range(K)]
    )
    printed = capsys.readouterr().out.split()
    assert str(out / "export.json") in printed
    for name in ("gan_bdt", "fisher"):
        diff = _exported_scores(out, name, study["X"], study["arrays"]["eventNumber"]) - study["scores"][name]
        assert np.max(np.abs(diff)) <= TOLERANCE


def test_side_file(study: dict[str, Any], tmp_path: Path) -> None:
    import xgboost as xgb

    out = tmp_path / "deploy"
    export_onnx(study["dir"], out, models=["bdt", "mlp_quantile"])
    side = json.loads((out / "export.json").read_text())
    sel: Selection = study["selection"]
    assert side["feature_names"] == sel.features.names
    assert [f["name"] for f in side["features"]] == sel.features.names
    assert side["features"][5] == {**side["features"][5], "expr": "B_FDCHI2_OWNPV", "transform": "log"}
    assert side["input"] == {"name": "features", "dtype": "float64", "shape": ["n", len(sel.features.names)]}
    assert side["folds"]["branch"] == "eventNumber" and side["folds"]["k"] == K
    assert side["folds"]["rule"] == f"eventNumber % {K}"
    assert side["preselection"] == [{"name": n, "cut": c} for n, c in sel.preselection]
    assert side["working_points"]["thresholds"] == {m: sel.working_points[m] for m in ("bdt", "mlp_quantile")}
    assert side["models"]["mlp_quantile"]["kind"] == "mlp"
    assert side["models"]["bdt"]["onnx"] == [f"bdt/fold{i}.onnx" for i in range(K)]
    # xgboost's own JSON holds exactly the trees hepsel predicts with
    X = study["X"][:2000]
    stopped_early = []
    for i, f in enumerate(side["models"]["bdt"]["xgboost_json"]):
        clf = sel.models["bdt"]["folds"][i]
        booster = xgb.Booster()
        booster.load_model(str(out / f))
        assert booster.num_boosted_rounds() == clf.best_iteration_ + 1
        stopped_early.append(clf.best_iteration_ + 1 < clf.booster_.num_boosted_rounds())
        native = booster.predict(xgb.DMatrix(X.astype(np.float32)))
        np.testing.assert_allclose(native, clf.predict_proba(X)[:, 1], rtol=0, atol=1e-6)
    assert any(stopped_early)
    # the graphs say which fold they are
    meta = ort.InferenceSession(str(out / "bdt/fold1.onnx"), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert meta.custom_metadata_map["hepsel.fold_rule"] == f"eventNumber % {K} == 1"


def test_export_replaces_an_earlier_export(study: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    export_onnx(study["dir"], out, models=["bdt"])
    export_onnx(study["dir"], out, models=["fisher"])
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "fisher"]
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]


def test_unknown_model_is_refused_without_output(study: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deploy"
    with pytest.raises(ExportError, match=r"unknown model\(s\) \['bdtt'\]; this selection has \['autoencoder', 'bdt', 'fisher'"):
        export_onnx(study["dir"], out, models=["bdtt"])
    rc = main(["export", "--selection", str(study["dir"]), "-o", str(out), "--model", "bdtt"])
    assert rc == 1
    assert "unknown model(s) ['bdtt']" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_selection_is_refused_without_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "deploy"
    with pytest.raises(ModelFileError, match=r"selection\.json' not found: is .* a saved hepsel selection"):
        export_onnx(tmp_path / "nowhere", out)
    assert main(["export", "--selection", str(tmp_path / "nowhere"), "-o", str(out)]) == 1
    assert "a saved hepsel selection" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_output_in_the_way_is_left_alone(study: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match=r"exists and is not a hepsel export"):
        export_onnx(study["dir"], out, models=["fisher"])
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]


def test_quantile_scaling_at_the_edges() -> None:
    """Ties, values on and next to the quantiles, the bounds' 1e-7 margin, far outside: as scikit-learn."""
    rng = np.random.default_rng(4)
    n = 5000
    X = np.column_stack([
        rng.exponential(2000.0, n),                   # continuous, long tail
        np.round(rng.normal(0.0, 1.0, n), 1),         # discrete, ties not float32 numbers
        rng.integers(0, 4, n).astype(float),          # few values: long runs of repeated quantiles
        np.where(rng.random(n) < 0.7, 0.0, rng.random(n)),  # a spike at the lower bound
    ])
    clf = MLPClassifier(hidden_layers=(), preprocessing="quantile", max_epochs=1, random_state=0).fit(X, X[:, 0] > 2000)
    scaler: FeatureScaler = clf.scaler_
    q = np.asarray(scaler.to_dict()["quantiles"])
    probes = [X, q, np.nextafter(q, np.inf), np.nextafter(q, -np.inf), q[:1] - 1e-7, q[:1] + 1e-7, q[-1:] + 1e-7, q[-1:] - 1e-7,
              q[:1] - 2e-7, q[-1:] + 2e-7, np.full((1, 4), 1e30), np.full((1, 4), -1e30)]  # fmt: skip
    Xp = np.vstack(probes)
    model = onnx_model(clf, dtype="float64")
    # the scaling alone, as a graph of its own
    from hepsel.export import _Graph, _scaler_nodes

    g = _Graph()
    x = g.op("Cast", "features", to=g.onnx.TensorProto.DOUBLE)
    g.op("Cast", _scaler_nodes(g, x, scaler), to=g.onnx.TensorProto.DOUBLE, out="z")
    graph = g.model(4, "scaler", "float64")
    graph.graph.output[0].CopyFrom(g.onnx.helper.make_tensor_value_info("z", g.onnx.TensorProto.DOUBLE, ["n", 4]))
    z = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"features": Xp})[0]
    np.testing.assert_allclose(z, scaler.transform(Xp), rtol=0, atol=1e-8)
    bad = Xp[:3].copy()
    bad[1, 2] = np.nan
    z_bad = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"features": bad})[0]
    assert np.isnan(z_bad[1, 2]) and np.isfinite(np.delete(z_bad.ravel(), 1 * 4 + 2)).all()
    # and the whole model on the same probes
    p = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"features": Xp})[0]
    np.testing.assert_allclose(p, clf.predict_proba(Xp)[:, 1], rtol=0, atol=1e-6)


def test_unknown_classifier_is_refused() -> None:
    with pytest.raises(ExportError, match=r"cannot export a FeatureScaler to ONNX; hepsel exports bdt, mlp, lipschitz_mlp, fisher and autoencoder"):
        onnx_model(FeatureScaler())
    with pytest.raises(ExportError, match=r"unknown input dtype 'float16'"):
        onnx_model(FeatureScaler(), dtype="float16")
