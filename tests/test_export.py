"""ONNX export: every exported graph gives hepsel's score on the default study's candidates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from hepsel.cli import main
from hepsel.config.loading import load_config
from hepsel.config.schema import AnalysisConfig
from hepsel.deploy.export import export_onnx, onnx_model
from hepsel.deploy.selection import Selection
from hepsel.exceptions import ExportError, ModelFileError
from hepsel.models.mlp import MLPClassifier
from hepsel.models.preprocessing import FeatureScaler
from hepsel.prep.cuts import CutSequence
from hepsel.prep.features import FeatureSet
from hepsel.sim.simulation import simulate_events
from hepsel.train.kfold import fit_model, model_seed
from hepsel.workflow.cross_scoring import model_kind

REPO = Path(__file__).resolve().parents[1]
N_CANDIDATES = 100_000
K = 3
TOLERANCE = 1e-5  # max |score difference|; the graphs' scores are float32

#: Small models of every kind, the GAN-augmented one with a tiny GAN.
MODELS: dict[str, Any] = {
    # stops early: the exports must keep the trees up to the best round only
    "bdt": {
        "type": "bdt",
        "params": {
            "n_estimators": 200,
            "max_depth": 3,
            "learning_rate": 0.5,
            "early_stopping_rounds": 3,
            "n_jobs": 1,
        },
    },
    "mlp_quantile": {
        "type": "mlp",
        "params": {
            "hidden_layers": [16, 16],
            "activation": "silu",
            "preprocessing": "quantile",
            "max_epochs": 3,
            "batch_size": 512,
            "n_jobs": 1,
            "device": "cpu",
        },
    },
    "mlp_standard": {
        "type": "mlp",
        "params": {
            "hidden_layers": [16],
            "activation": "elu",
            "preprocessing": "standard",
            "max_epochs": 3,
            "batch_size": 512,
            "n_jobs": 1,
            "device": "cpu",
        },
    },
    "gan_bdt": {
        "type": "gan_augmented",
        "base": "bdt",
        "params": {
            "n_estimators": 40,
            "max_depth": 3,
            "learning_rate": 0.3,
            "early_stopping_rounds": 5,
            "n_jobs": 1,
        },
        "gan": {
            "generator_layers": [16, 16],
            "critic_layers": [16, 16],
            "n_iterations": 30,
            "n_critic": 2,
            "batch_size": 128,
            "selection_interval": 15,
            "n_jobs": 1,
            "device": "cpu",
        },
        "synthetic_ratio": 0.5,
    },
    "fisher": {"type": "fisher"},
    "autoencoder": {
        "type": "autoencoder",
        "params": {
            "hidden_layers": [16],
            "bottleneck": 3,
            "preprocessing": "quantile",
            "error_scaling": "feature",
            "max_epochs": 3,
            "n_jobs": 1,
            "device": "cpu",
        },
    },
}


def _candidates(cfg: AnalysisConfig, fs: FeatureSet) -> dict[str, np.ndarray]:
    """100k preselected candidates of the default study's generator settings, with a label and truth flag."""
    cuts = CutSequence(
        [(p.name, p.cut) for p in cfg.preselection], aliases=fs.aliases, where="preselection"
    )
    parts = []
    for sample, n_events in (("signal", 20_000), ("minbias", 60_000)):
        gen = cfg.samples[sample].generate
        assert gen is not None
        cands, _ = simulate_events(gen.kind, n_events, seed=gen.seed, pileup=gen.pileup)
        keep = cuts.mask(cands, np.ones(len(cands["eventNumber"])))
        part = {k: v[keep] for k, v in cands.items()}
        part["label"] = np.full(int(keep.sum()), cfg.samples[sample].label)
        part["truth"] = (
            part["truth_matched"] == 1
            if sample == "signal"
            else np.ones(int(keep.sum()), dtype=bool)
        )
        parts.append(part)
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    assert len(joined["eventNumber"]) >= N_CANDIDATES
    return {k: v[:N_CANDIDATES] for k, v in joined.items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A saved selection of small fold models of every kind, trained on the default study's features."""
    cfg = load_config(
        REPO / "analyses" / "topo2body",
        base_dir=REPO,
        overrides={"folds": {"k": K}, "models": MODELS},
    )
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
                cfg,
                cfg.models[name],
                X[train],
                y[train],
                w[train],
                seed=model_seed(cfg, name, i),
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
        name: {"660": float(np.quantile(s[bkg], 0.99)), "100": float(np.quantile(s[bkg], 0.999))}
        for name, s in scores.items()
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


def test_exported_graphs_match_hepsel_on_100k_candidates(
    study: dict[str, Any], tmp_path: Path
) -> None:
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


def test_float32_graphs_match_hepsel_on_the_same_values(
    study: dict[str, Any], tmp_path: Path
) -> None:
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
    print(
        "max |ONNX - hepsel| (float32 input, same values):",
        {k: f"{v:.1e}" for k, v in worst.items()},
    )
    print(
        "max |ONNX(float32 features) - hepsel(float64 features)|:",
        {k: f"{v:.1e}" for k, v in rounding.items()},
    )
    assert all(v <= TOLERANCE for v in worst.values()), worst
    # only the quantile scalings (the MLP's and the autoencoder's) are steep enough for the input rounding to show
    assert all(
        v <= TOLERANCE for k, v in rounding.items() if k not in ("mlp_quantile", "autoencoder")
    ), rounding


def test_cli_export(
    study: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    rc = main(
        [
            "export",
            "--selection",
            str(study["dir"]),
            "--format",
            "onnx",
            "-o",
            str(out),
            "--model",
            "gan_bdt",
            "--model",
            "fisher",
        ]
    )
    assert rc == 0
    side = json.loads((out / "export.json").read_text())
    assert sorted(side["models"]) == ["fisher", "gan_bdt"]
    assert sorted(p.name for p in (out / "gan_bdt").iterdir()) == sorted(
        [f"fold{i}.onnx" for i in range(K)] + [f"fold{i}.xgb.json" for i in range(K)]
    )
    printed = capsys.readouterr().out.split()
    assert str(out / "export.json") in printed
    for name in ("gan_bdt", "fisher"):
        diff = (
            _exported_scores(out, name, study["X"], study["arrays"]["eventNumber"])
            - study["scores"][name]
        )
        assert np.max(np.abs(diff)) <= TOLERANCE


def test_side_file(study: dict[str, Any], tmp_path: Path) -> None:
    import xgboost as xgb

    out = tmp_path / "deploy"
    export_onnx(study["dir"], out, models=["bdt", "mlp_quantile"])
    side = json.loads((out / "export.json").read_text())
    sel: Selection = study["selection"]
    assert side["feature_names"] == sel.features.names
    assert [f["name"] for f in side["features"]] == sel.features.names
    assert side["features"][5] == {
        **side["features"][5],
        "expr": "B_FDCHI2_OWNPV",
        "transform": "log",
    }
    assert side["input"] == {
        "name": "features",
        "dtype": "float64",
        "shape": ["n", len(sel.features.names)],
    }
    assert side["folds"]["branch"] == "eventNumber" and side["folds"]["k"] == K
    assert side["folds"]["rule"] == f"eventNumber % {K}"
    assert side["preselection"] == [{"name": n, "cut": c} for n, c in sel.preselection]
    assert side["working_points"]["thresholds"] == {
        m: sel.working_points[m] for m in ("bdt", "mlp_quantile")
    }
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
    meta = ort.InferenceSession(
        str(out / "bdt/fold1.onnx"), providers=["CPUExecutionProvider"]
    ).get_modelmeta()
    assert meta.custom_metadata_map["hepsel.fold_rule"] == f"eventNumber % {K} == 1"


def test_export_replaces_an_earlier_export_with_force(
    study: dict[str, Any], tmp_path: Path
) -> None:
    # issue 16: without force an earlier export is added to (test_export_adds_to_an_earlier_export)
    out = tmp_path / "deploy"
    export_onnx(study["dir"], out, models=["bdt"])
    export_onnx(study["dir"], out, models=["fisher"], force=True)
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "fisher"]
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]


def test_unknown_model_is_refused_without_output(
    study: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deploy"
    with pytest.raises(
        ExportError,
        match=r"unknown model\(s\) \['bdtt'\]; this selection has \['autoencoder', 'bdt', 'fisher'",
    ):
        export_onnx(study["dir"], out, models=["bdtt"])
    rc = main(["export", "--selection", str(study["dir"]), "-o", str(out), "--model", "bdtt"])
    assert rc == 1
    assert "unknown model(s) ['bdtt']" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_selection_is_refused_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "deploy"
    with pytest.raises(
        ModelFileError, match=r"selection\.json' not found: is .* a saved hepsel selection"
    ):
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
    X = np.column_stack(
        [
            rng.exponential(2000.0, n),  # continuous, long tail
            np.round(rng.normal(0.0, 1.0, n), 1),  # discrete, ties not float32 numbers
            rng.integers(0, 4, n).astype(float),  # few values: long runs of repeated quantiles
            np.where(rng.random(n) < 0.7, 0.0, rng.random(n)),  # a spike at the lower bound
        ]
    )
    clf = MLPClassifier(
        hidden_layers=(), preprocessing="quantile", max_epochs=1, random_state=0
    ).fit(X, X[:, 0] > 2000)
    scaler: FeatureScaler = clf.scaler_
    q = np.asarray(scaler.to_dict()["quantiles"])
    probes = [X, q, np.nextafter(q, np.inf), np.nextafter(q, -np.inf), q[:1] - 1e-7, q[:1] + 1e-7, q[-1:] + 1e-7, q[-1:] - 1e-7,
              q[:1] - 2e-7, q[-1:] + 2e-7, np.full((1, 4), 1e30), np.full((1, 4), -1e30)]  # fmt: skip
    Xp = np.vstack(probes)
    model = onnx_model(clf, dtype="float64")
    # the scaling alone, as a graph of its own
    from hepsel.deploy.export import _Graph, _scaler_nodes

    g = _Graph()
    x = g.op("Cast", "features", to=g.onnx.TensorProto.DOUBLE)
    g.op("Cast", _scaler_nodes(g, x, scaler), to=g.onnx.TensorProto.DOUBLE, out="z")
    graph = g.model(4, "scaler", "float64")
    graph.graph.output[0].CopyFrom(
        g.onnx.helper.make_tensor_value_info("z", g.onnx.TensorProto.DOUBLE, ["n", 4])
    )
    z = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"features": Xp}
    )[0]
    np.testing.assert_allclose(z, scaler.transform(Xp), rtol=0, atol=1e-8)
    bad = Xp[:3].copy()
    bad[1, 2] = np.nan
    z_bad = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"features": bad}
    )[0]
    assert np.isnan(z_bad[1, 2]) and np.isfinite(np.delete(z_bad.ravel(), 1 * 4 + 2)).all()
    # and the whole model on the same probes
    p = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"features": Xp}
    )[0]
    np.testing.assert_allclose(p, clf.predict_proba(Xp)[:, 1], rtol=0, atol=1e-6)


def _scaler_graph(scaler: FeatureScaler, n_features: int) -> Any:
    from hepsel.deploy.export import _Graph, _scaler_nodes

    g = _Graph()
    x = g.op("Cast", "features", to=g.onnx.TensorProto.DOUBLE)
    g.op("Cast", _scaler_nodes(g, x, scaler), to=g.onnx.TensorProto.DOUBLE, out="z")
    graph = g.model(n_features, "scaler", "float64")
    graph.graph.output[0].CopyFrom(
        g.onnx.helper.make_tensor_value_info("z", g.onnx.TensorProto.DOUBLE, ["n", n_features])
    )
    return ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("n_quantiles", [2, 3, 4, 7, 8, 1000, 1023, 1024])
def test_quantile_search_at_every_table_size(n_quantiles: int) -> None:
    """The search table is padded to a power of two: sizes just below, at and above one, with ties, as scikit-learn."""
    rng = np.random.default_rng(n_quantiles)
    n = 4 * n_quantiles + 50
    X = np.column_stack(
        [
            rng.normal(0.0, 1.0, n),
            rng.integers(0, 3, n).astype(float),
            np.where(rng.random(n) < 0.5, 1.0, rng.random(n)),
        ]
    )
    scaler = FeatureScaler(method="quantile", n_quantiles=n_quantiles, random_state=0).fit(X)
    q = np.asarray(scaler.to_dict()["quantiles"])
    assert q.shape[0] == n_quantiles
    mid = (q[1:] + q[:-1]) / 2
    probes = np.vstack(
        [X, q, mid, np.nextafter(q, np.inf), np.nextafter(q, -np.inf), q[:1] - 1.0, q[-1:] + 1.0]
    )
    z = _scaler_graph(scaler, 3).run(None, {"features": probes})[0]
    np.testing.assert_allclose(z, scaler.transform(probes), rtol=0, atol=1e-8)


def test_mlp_graph_is_small() -> None:
    """A batch-1 call costs about the number of nodes: the quantile scaling must not take hundreds."""
    rng = np.random.default_rng(3)
    X = rng.exponential(1.0, (3000, 13))
    clf = MLPClassifier(
        hidden_layers=(16, 16), preprocessing="quantile", max_epochs=1, random_state=0
    ).fit(X, X[:, 0] > 1)
    nodes = onnx_model(clf).graph.node
    # 10 search steps of 4 nodes, the interpolation both ways, the inverse normal CDF, the network
    assert len(nodes) <= 110, len(nodes)
    assert sum(n.op_type == "Gather" for n in nodes) <= 20


def test_unknown_classifier_is_refused() -> None:
    with pytest.raises(
        ExportError,
        match=r"cannot export a FeatureScaler to ONNX; hepsel exports bdt, mlp, lipschitz_mlp, fisher and autoencoder",
    ):
        onnx_model(FeatureScaler())
    with pytest.raises(ExportError, match=r"unknown input dtype 'float16'"):
        onnx_model(FeatureScaler(), dtype="float16")


# -- small selections: which models export, names, merging, atomic writes ------------------------------------


def _small_selection(tmp_path: Path, *, feature_w: str = "expr", name: str = "selection") -> Path:
    """A saved selection of two Fisher models and a bonsai BDT on features u, v, w (w optionally a Python function)."""
    from hepsel.models.bbdt import BonsaiBDTClassifier
    from hepsel.models.fisher import FisherClassifier
    from hepsel.prep.features import Feature

    rng = np.random.default_rng(1)
    y = (rng.random(1500) < 0.4).astype(int)
    X = rng.normal(y[:, None] * np.array([1.0, 0.5, 0.2]), 1.0, (1500, 3))
    d = tmp_path / name
    d.mkdir(parents=True)
    if feature_w == "function":
        (d / "lib").mkdir()
        (d / "lib" / "extra.py").write_text(
            'SCALE = 2.0\n\n\ndef scaled_w(arrays):\n    """w times SCALE."""\n    return SCALE * arrays[\'w\']\n'
        )
        w = Feature("w", function="lib/extra.py:scaled_w", inputs=["w"])
    else:
        w = Feature("w", expr="w")
    features = FeatureSet(
        [Feature("u", expr="u"), Feature("v", expr="v", transform="abs"), w], base_dir=d
    )
    fisher = [FisherClassifier().fit(X[i::2], y[i::2]) for i in range(2)]
    linear = [FisherClassifier(ridge=0.5).fit(X[i::2], y[i::2]) for i in range(2)]
    bb = [
        BonsaiBDTClassifier(
            bins=[4, 3],
            features=["u", "w"],
            feature_names=["u", "v", "w"],
            n_estimators=10,
            max_depth=2,
            n_jobs=1,
            random_state=i,
        ).fit(X[i::2], y[i::2])
        for i in range(2)
    ]
    sel = Selection(
        preselection=[("u finite", "u > -100")],
        features=features,
        models={
            "fisher": {"kind": "fisher", "folds": fisher},
            "bb": {"kind": "bbdt", "folds": bb},
            "linear": {"kind": "fisher", "folds": linear},
        },
        working_points={"fisher": {"660": 0.6}, "bb": {"660": 0.7}, "linear": {"660": 0.55}},
    )
    return sel.save(d)


def _rename_model(d: Path, old: str, new: str) -> None:
    f = d / "selection.json"
    meta = json.loads(f.read_text())
    meta["models"] = {(new if n == old else n): m for n, m in meta["models"].items()}
    meta["working_points"] = {
        (new if n == old else n): m for n, m in meta["working_points"].items()
    }
    f.write_text(json.dumps(meta))


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_default_onnx_export_skips_models_without_onnx_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _small_selection(tmp_path)
    out = tmp_path / "deploy"
    rc = main(["export", "--selection", str(d), "--format", "onnx", "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err.splitlines() == ["hepsel: skipped bb (bbdt: export it with --format bbdt)"]
    side = json.loads((out / "export.json").read_text())
    assert sorted(side["models"]) == ["fisher", "linear"]
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "fisher", "linear"]
    # --model narrows; asking for the bbdt by name is an error, nothing written
    rc = main(["export", "--selection", str(d), "-o", str(tmp_path / "one"), "--model", "linear"])
    assert rc == 0 and sorted(
        json.loads((tmp_path / "one" / "export.json").read_text())["models"]
    ) == ["linear"]
    assert capsys.readouterr().err == ""
    rc = main(
        [
            "export",
            "--selection",
            str(d),
            "-o",
            str(tmp_path / "two"),
            "--model",
            "bb",
            "--model",
            "fisher",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and err.splitlines() == [
        "hepsel: error: model(s) without an ONNX form: bb (bbdt: export it with --format bbdt)"
    ]
    assert not (tmp_path / "two").exists()


@pytest.mark.parametrize("fmt", ["onnx", "bbdt"])
@pytest.mark.parametrize("explicit", [False, True])
def test_model_names_cannot_lead_out_of_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, explicit: bool
) -> None:
    d = _small_selection(tmp_path / "a" / "b" / "c")
    bad = "../../../escaped"
    _rename_model(d, "bb" if fmt == "bbdt" else "fisher", bad)
    before = _tree(tmp_path)
    out = tmp_path / "a" / "b" / "c" / "deploy"
    args = ["export", "--selection", str(d), "--format", fmt, "-o", str(out)] + (
        ["--model", bad] if explicit else []
    )
    assert main(args) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and err.startswith("hepsel: error: ")
        and "['../../../escaped'] are not identifiers" in err
    )
    assert _tree(tmp_path) == before
    assert not list(tmp_path.rglob("*escaped*")) and not out.exists()


def test_selection_save_refuses_a_model_name_leading_out(tmp_path: Path) -> None:
    from hepsel.models.fisher import FisherClassifier

    sel = Selection(
        preselection=[],
        features=FeatureSet([]),
        models={"../out": {"kind": "fisher", "folds": [FisherClassifier()]}},
        working_points={},
    )
    with pytest.raises(ExportError, match=r"Selection\.save: model name\(s\) \['\.\./out'\]"):
        sel.save(tmp_path / "sel")
    assert list(tmp_path.iterdir()) == []


def test_export_adds_to_an_earlier_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _small_selection(tmp_path)
    out = tmp_path / "deploy"
    export_onnx(d, out, models=["fisher"])
    (out / "README.txt").write_text("notes kept with the export")
    first = _tree(out)
    written = export_onnx(d, out, models=["linear"])
    assert written == [out / "linear/fold0.onnx", out / "linear/fold1.onnx", out / "export.json"]
    after = _tree(out)
    # the first model's files and the user's note are untouched, the side file lists both
    assert {
        k: v for k, v in after.items() if not k.startswith("linear/") and k != "export.json"
    } == {k: v for k, v in first.items() if k != "export.json"}
    side = json.loads((out / "export.json").read_text())
    assert sorted(side["models"]) == ["fisher", "linear"]
    assert side["models"]["fisher"] == json.loads(first["export.json"])["models"]["fisher"]
    assert side["working_points"]["thresholds"] == {"fisher": {"660": 0.6}, "linear": {"660": 0.55}}
    assert side["folds"]["k"] == 2
    X = np.random.default_rng(0).normal(size=(50, 3))
    for name in ("fisher", "linear"):
        sel = Selection.load(d)
        np.testing.assert_allclose(
            _run(out / f"{name}/fold1.onnx", X),
            sel.fold_models(name)[1].predict_proba(X)[:, 1],
            atol=1e-6,
        )
    # re-exporting a model replaces its files only
    export_onnx(d, out, models=["fisher"])
    assert sorted(json.loads((out / "export.json").read_text())["models"]) == ["fisher", "linear"]
    assert (out / "README.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy", "selection"]
    # --force replaces the whole export
    assert main(["export", "-s", str(d), "-o", str(out), "--model", "linear", "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "linear"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "an earlier export, which is added to" in help_text
        and "--force onnx: replace an earlier export" in help_text
    )


def test_export_of_another_selection_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _small_selection(tmp_path)
    other = _small_selection(tmp_path, feature_w="function", name="other")
    out = tmp_path / "deploy"
    export_onnx(d, out, models=["fisher"])
    before = _tree(out)
    assert main(["export", "-s", str(other), "-o", str(out), "--model", "linear"]) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "holds an export that differs from this one in ['features']" in err
        and "--force" in err
    )
    with pytest.raises(ExportError, match=r"differs from this one in \['input'\]"):
        export_onnx(d, out, models=["linear"], dtype="float32")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy", "other", "selection"]
    export_onnx(other, out, models=["linear"], force=True)
    assert sorted(json.loads((out / "export.json").read_text())["models"]) == ["linear"]


def test_failed_export_keeps_the_earlier_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hepsel.deploy.export

    d = _small_selection(tmp_path)
    out = tmp_path / "deploy"
    export_onnx(d, out, models=["fisher"])
    before = _tree(out)

    def full_disk(path: Any, data: Any) -> None:
        Path(path).write_text("{half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hepsel.deploy.export, "write_json", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export_onnx(d, out, models=["linear"])
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy", "selection"]


def test_failed_bbdt_export_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hepsel.deploy.export_bbdt
    from hepsel.deploy.export_bbdt import export_bbdt

    d = _small_selection(tmp_path)
    out = tmp_path / "tables"
    out.mkdir()
    (out / "other_fold0.bin").write_bytes(b"another model's table")
    real = hepsel.deploy.export_bbdt.write_json
    calls = []

    def fails_second(path: Any, data: Any) -> Path:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(hepsel.deploy.export_bbdt, "write_json", fails_second)
    with pytest.raises(OSError, match="No space left"):
        export_bbdt(d, out)
    assert [p.name for p in out.iterdir()] == ["other_fold0.bin"]
    calls.clear()
    with pytest.raises(OSError, match="No space left"):
        export_bbdt(d, tmp_path / "new" / "tables")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "selection", "tables"]
    assert list((tmp_path / "new").iterdir()) == []
    monkeypatch.undo()
    files = export_bbdt(d, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "bb_fold0.bin",
        "bb_fold0.json",
        "bb_fold1.bin",
        "bb_fold1.json",
        "other_fold0.bin",
    ]
    assert all(p.parent == out for p in files)
    # an earlier export of the model with more folds leaves no stale tables behind
    for suffix in (".bin", ".json"):
        (out / f"bb_fold2{suffix}").write_bytes(
            (out / f"bb_fold1{suffix}").read_bytes().replace(b'"fold": 1', b'"fold": 2')
        )
    export_bbdt(d, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "bb_fold0.bin",
        "bb_fold0.json",
        "bb_fold1.bin",
        "bb_fold1.json",
        "other_fold0.bin",
    ]


def test_function_features_are_flagged_with_their_source(tmp_path: Path) -> None:
    import inspect

    from hepsel.config.functions import load_function

    d = _small_selection(tmp_path, feature_w="function")
    out = tmp_path / "deploy"
    export_onnx(d, out)
    side = json.loads((out / "export.json").read_text())
    module = (d / "lib" / "extra.py").read_text()
    func = load_function("lib/extra.py:scaled_w", d)
    assert side["user_functions"]["w"] == {
        **side["user_functions"]["w"],
        "function": "lib/extra.py:scaled_w",
        "inputs": ["w"],
        "source": inspect.getsource(func),
        "module_source": module,
    }
    assert "C++ user has to supply" in side["user_functions"]["w"]["note"]
    assert "def scaled_w(arrays)" in side["user_functions"]["w"]["source"]
    assert [f.get("user_supplied", False) for f in side["features"]] == [False, False, True]
    assert "float32 arithmetic" in side["feature_precision"]
    # the bonsai tables say the same for the features they use
    from hepsel.deploy.export_bbdt import export_bbdt

    export_bbdt(d, tmp_path / "tables")
    desc = json.loads((tmp_path / "tables" / "bb_fold0.json").read_text())
    assert (
        list(desc["user_functions"]) == ["w"]
        and desc["feature_precision"] == side["feature_precision"]
    )
    # an export without function features has none to supply
    plain = _small_selection(tmp_path, name="plain")
    export_onnx(plain, tmp_path / "plain_deploy")
    assert (
        json.loads((tmp_path / "plain_deploy" / "export.json").read_text())["user_functions"] == {}
    )


def test_features_are_computed_in_the_branches_precision() -> None:
    """What export.json's feature_precision says: float32 branches give float32 arithmetic, widened afterwards."""
    from hepsel.prep.features import Feature

    rng = np.random.default_rng(2)
    a = rng.exponential(3000.0, 1000).astype(np.float32)
    b = rng.exponential(1000.0, 1000).astype(np.float32)
    c = rng.exponential(1.0, 1000)  # float64
    fs = FeatureSet(
        [
            Feature("s", expr="a + b"),
            Feature("l", expr="a * 1.5", transform="log"),
            Feature("m", expr="a + c"),
        ]
    )
    X = fs.matrix({"a": a, "b": b, "c": c})
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X[:, 0], (a + b).astype(np.float64))
    np.testing.assert_array_equal(X[:, 1], np.log(a * np.float32(1.5)).astype(np.float64))
    np.testing.assert_array_equal(X[:, 2], a.astype(np.float64) + c)
    assert not np.array_equal(X[:, 0], a.astype(np.float64) + b.astype(np.float64))


@pytest.mark.parametrize("fmt", ["onnx", "bbdt"])
def test_unwritable_output_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    d = _small_selection(tmp_path)
    (tmp_path / "afile").write_text("mine")
    before = _tree(tmp_path)
    out = tmp_path / "afile" / "deploy"
    assert main(["export", "-s", str(d), "--format", fmt, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and err.startswith("hepsel: error: cannot write ") and str(out) in err
    )
    assert "is a file, not a directory" in err
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "afile",
        "selection",
    ]
