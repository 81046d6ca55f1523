"""Bonsai BDT: the table is the BDT on each cell, lookups, the cell budget, files without pickle, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hepsel.config.loading import load_config
from hepsel.exceptions import ConfigError
from hepsel.models.bbdt import BonsaiBDTClassifier

from .conftest import tiny_config, write_config

FAST = {"n_estimators": 15, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 1}


def _toy(n: int = 3000, n_features: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    X = rng.normal(y[:, None] * np.linspace(1.0, 0.3, n_features), 1.0, (n, n_features))
    return X, y


@pytest.fixture(scope="module")
def fitted() -> tuple[BonsaiBDTClassifier, np.ndarray]:
    """Three of four columns, by name, with 3, 4 and 5 bins."""
    X, y = _toy()
    clf = BonsaiBDTClassifier(
        bins={"c": 3, "a": 4, "d": 5},
        features=["c", "a", "d"],
        feature_names=["a", "b", "c", "d"],
        random_state=1,
        **FAST,
    )
    return clf.fit(X, y), X


def _brute_force_bins(clf: BonsaiBDTClassifier, X: np.ndarray) -> np.ndarray:
    """Bin of each used feature by counting the inner edges at or below the value."""
    return np.column_stack(
        [
            (X[:, col, None] >= e[None, 1:-1]).sum(axis=1)
            for col, e in zip(clf.feature_indices_, clf.edges_, strict=True)
        ]
    )


def test_lookup_is_the_bdt_on_the_cell(fitted: tuple[BonsaiBDTClassifier, np.ndarray]) -> None:
    clf, _ = fitted
    X = np.random.default_rng(5).normal(0.0, 2.0, (500, 4))  # also beyond the outer edges
    bins = _brute_force_bins(clf, X)
    want = clf.bdt_.predict_proba(bins.astype(np.float32))[:, 1].astype(np.float32)
    np.testing.assert_array_equal(clf.predict_proba(X)[:, 1], want)
    np.testing.assert_array_equal(clf.feature_indices_, [2, 0, 3])
    assert len(np.unique(bins[:, 0])) == 3  # every bin reached


def test_response_is_constant_in_a_cell(fitted: tuple[BonsaiBDTClassifier, np.ndarray]) -> None:
    clf, _ = fitted
    rng = np.random.default_rng(6)
    X = rng.normal(0.0, 1.5, (300, 4))
    other = rng.normal(0.0, 5.0, (300, 4))  # unused column 1 changes freely
    for col, e in zip(clf.feature_indices_, clf.edges_, strict=True):
        j = np.searchsorted(e[1:-1], X[:, col], side="right")
        low = np.where(j == 0, X[:, col] - 3.0, e[j])
        high = np.where(j == len(e) - 2, X[:, col] + 3.0, e[np.minimum(j + 1, len(e) - 1)])
        other[:, col] = low + rng.random(len(X)) * (high - low) * 0.999
    np.testing.assert_array_equal(clf.cell_index(X), clf.cell_index(other))
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(other))
    assert len(np.unique(clf.predict_proba(X)[:, 1])) > 10


def _on_the_edges(clf: BonsaiBDTClassifier) -> np.ndarray:
    """Rows whose used features lie exactly on every edge, and just below each."""
    n = 2 * max(len(e) for e in clf.edges_)
    X = np.zeros((n, clf.n_features_in_))
    for col, e in zip(clf.feature_indices_, clf.edges_, strict=True):
        below = np.nextafter(e, -np.inf)
        X[:, col] = np.concatenate([e, below, e, below])[:n]
    return X


def test_a_value_on_an_edge_belongs_to_the_bin_above(
    fitted: tuple[BonsaiBDTClassifier, np.ndarray],
) -> None:
    clf, _ = fitted
    X = _on_the_edges(clf)
    bins = clf.bin_indices(X)
    np.testing.assert_array_equal(bins, _brute_force_bins(clf, X))
    for j, (col, e) in enumerate(zip(clf.feature_indices_, clf.edges_, strict=True)):
        on = np.isin(X[:, col], e)
        # on inner edge i (1 <= i <= n_bins - 1): bin i; on the outer edges: the first and last bin
        want = np.clip(np.searchsorted(e, X[on, col]), 0, len(e) - 2)
        np.testing.assert_array_equal(bins[on, j], want)
        np.testing.assert_array_equal(
            bins[~on, j], np.clip(np.searchsorted(e, X[~on, col]) - 1, 0, len(e) - 2)
        )
    idx = (bins * np.asarray(clf.strides_)).sum(axis=1)
    np.testing.assert_array_equal(clf.cell_index(X), idx)
    np.testing.assert_array_equal(clf.predict_proba(X)[:, 1], clf.table_[idx])


def test_table_has_one_entry_per_cell(fitted: tuple[BonsaiBDTClassifier, np.ndarray]) -> None:
    clf, X = fitted
    assert clf.bins_ == (3, 4, 5)
    assert clf.table_.shape == (60,) and clf.table_.dtype == np.float32
    assert clf.strides_ == (20, 5, 1)
    # quantile edges: about equal training counts per bin (unit weights)
    counts = np.bincount(clf.bin_indices(X)[:, 0])
    np.testing.assert_allclose(counts, len(X) / 3, rtol=0.01)


def test_refuses_more_cells_than_max_cells() -> None:
    X, y = _toy(200, 3)
    with pytest.raises(ValueError, match=r"has 1,000 cells, more than max_cells = 999"):
        BonsaiBDTClassifier(bins=10, max_cells=999, **FAST).fit(X, y)


def test_config_refuses_a_table_too_large(tmp_path: Path) -> None:
    models = {"bb": {"type": "bbdt", "params": {"bins": 32, **FAST}}}  # 32**5 cells
    with pytest.raises(
        ConfigError,
        match=r"models\.bb\.params: .*33,554,432 cells, more than max_cells = 16,777,216",
    ):
        load_config(write_config(tmp_path, tiny_config("data", models=models)), base_dir=tmp_path)
    models = {"bb": {"type": "bbdt", "params": {"features": ["B_PT", "no_such"], **FAST}}}
    with pytest.raises(ConfigError, match=r"feature 'no_such' is not among the input features"):
        load_config(write_config(tmp_path, tiny_config("data", models=models)), base_dir=tmp_path)


def test_save_load_without_pickle(
    fitted: tuple[BonsaiBDTClassifier, np.ndarray], tmp_path: Path
) -> None:
    clf, X = fitted
    files = clf.save(tmp_path / "fold0")
    assert {f.name for f in files} == {
        "fold0.json",
        "fold0.table.npy",
        "fold0.bdt.json",
        "fold0.bdt.xgb.json",
    }
    np.testing.assert_array_equal(
        np.load(tmp_path / "fold0.table.npy", allow_pickle=False), clf.table_
    )
    meta = json.loads((tmp_path / "fold0.json").read_text())
    assert (
        meta["features"] == ["c", "a", "d"]
        and meta["strides"] == [20, 5, 1]
        and meta["shape"] == [3, 4, 5]
    )
    back = BonsaiBDTClassifier.load(tmp_path / "fold0")
    assert back.bdt_ is None  # the table alone scores
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.shap_values(X[:50])[0], clf.shap_values(X[:50])[0])


def _selection(tmp_path: Path) -> tuple[Path, list[BonsaiBDTClassifier]]:
    from hepsel.deploy.selection import Selection
    from hepsel.models.fisher import FisherClassifier
    from hepsel.prep.features import Feature, FeatureSet

    X, y = _toy(2000, 3, seed=2)
    folds = [
        BonsaiBDTClassifier(
            bins=[4, 3], features=["u", "w"], feature_names=["u", "v", "w"], random_state=i, **FAST
        ).fit(X[i::2], y[i::2])
        for i in range(2)
    ]
    features = FeatureSet([Feature("u", expr="u"), Feature("v", expr="v"), Feature("w", expr="w")])
    sel = Selection(
        preselection=[("u finite", "u > -100")],
        features=features,
        models={
            "bb": {"kind": "bbdt", "folds": folds},
            "fisher": {"kind": "fisher", "folds": [FisherClassifier().fit(X, y)] * 2},
        },
        working_points={"bb": {"660": 0.6, "100": 0.9}, "fisher": {"660": 0.5}},
    )
    d = sel.save(tmp_path / "selection")
    return d, folds


def test_selection_scores_with_the_fold_table(tmp_path: Path) -> None:
    from hepsel.deploy.selection import Selection

    d, folds = _selection(tmp_path)
    rng = np.random.default_rng(3)
    sample = {
        "u": rng.normal(size=40),
        "v": rng.normal(size=40),
        "w": rng.normal(size=40),
        "eventNumber": np.arange(40),
    }
    X = np.column_stack([sample["u"], sample["v"], sample["w"]])
    want = np.where(
        np.arange(40) % 2 == 0, folds[0].predict_proba(X)[:, 1], folds[1].predict_proba(X)[:, 1]
    )
    np.testing.assert_array_equal(Selection.load(d).score(sample, model="bb"), want)


def test_export_writes_the_table_and_its_description(tmp_path: Path) -> None:
    from hepsel.deploy.export_bbdt import export_bbdt

    d, folds = _selection(tmp_path)
    files = export_bbdt(d, tmp_path / "out")
    assert sorted(f.name for f in files) == [
        "bb_fold0.bin",
        "bb_fold0.json",
        "bb_fold1.bin",
        "bb_fold1.json",
    ]
    X = np.random.default_rng(4).normal(0.0, 2.0, (300, 3))
    for k, clf in enumerate(folds):
        X = np.vstack(
            [X, _on_the_edges(clf)]
        )  # values exactly on an edge follow the documented rule
        table = np.fromfile(tmp_path / "out" / f"bb_fold{k}.bin", dtype="<f4")
        np.testing.assert_array_equal(table, clf.table_)
        desc = json.loads((tmp_path / "out" / f"bb_fold{k}.json").read_text())
        # the JSON alone reproduces the lookup
        cols = [["u", "v", "w"].index(f) for f in desc["features"]]
        idx = sum(
            np.searchsorted(np.asarray(e)[1:-1], X[:, c], side="right") * s
            for c, e, s in zip(cols, desc["edges"], desc["strides"], strict=True)
        )
        np.testing.assert_array_equal(table[idx], clf.predict_proba(X)[:, 1])
        assert desc["bin_rule"].startswith("bin_j = number of inner edges edges[j][1:-1] <= x_j")
        assert desc["fold_rule"] == {
            **desc["fold_rule"],
            "branch": "eventNumber",
            "k": 2,
            "fold": k,
        }
        assert desc["thresholds"] == {"660": 0.6, "100": 0.9}
        assert [f["name"] for f in desc["feature_definitions"]] == ["u", "w"]
    with pytest.raises(ValueError, match="'fisher' is a fisher, not a bbdt"):
        export_bbdt(d, tmp_path / "out2", models=["fisher"])


def test_cli_export_format_bbdt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hepsel.cli import main

    d, folds = _selection(tmp_path)
    assert (
        main(["export", "--selection", str(d), "--format", "bbdt", "-o", str(tmp_path / "cli")])
        == 0
    )
    np.testing.assert_array_equal(
        np.fromfile(tmp_path / "cli" / "bb_fold1.bin", dtype="<f4"), folds[1].table_
    )
    assert (
        main(
            [
                "export",
                "--selection",
                str(d),
                "--format",
                "bbdt",
                "-o",
                str(tmp_path / "x"),
                "--model",
                "fisher",
            ]
        )
        == 1
    )
    assert "not a bbdt" in capsys.readouterr().err


def _fit(
    tmp_path: Path, params: dict, w: np.ndarray | None = None, negative: str = "keep"
) -> tuple:
    from hepsel.train.kfold import fit_model

    models = {"bb": {"type": "bbdt", "params": params}}
    cfg = load_config(
        write_config(
            tmp_path, tiny_config("data", models=models, training={"negative_weights": negative})
        ),
        base_dir=tmp_path,
    )
    rng = np.random.default_rng(1)
    X, y = _toy(3000, len(cfg.feature_names))
    X[:, 1] = rng.uniform(0, 6000, len(X))  # B_MCORR
    events = (np.zeros(len(y), dtype=np.int64), np.arange(len(y)))
    w = np.ones(len(y)) if w is None else w
    return cfg, X, y, fit_model(cfg, cfg.models["bb"], X, y, w, seed=7, events=events)


def test_negative_weights_are_resampled_for_the_bbdt(tmp_path: Path) -> None:
    from hepsel.train.kfold import TAKES_NEGATIVE_WEIGHTS

    assert "bbdt" not in TAKES_NEGATIVE_WEIGHTS
    w = np.where(np.random.default_rng(2).random(3000) < 0.1, -0.3, 1.0)
    _, X, _, (clf, _, info) = _fit(
        tmp_path, {"features": ["B_PT", "log_fdchi2"], "bins": 6, **FAST}, w
    )
    assert info["n_negative_weights"] == int((w < 0).sum()) > 0
    assert info["negative_weights"]["learner"] == "bbdt"
    assert clf.n_validation_ == info["validation"]["n_validation"] > 0
    assert clf.table_.shape == (36,) and np.isfinite(clf.predict_proba(X)).all()


def test_edges_from_the_config_are_used(tmp_path: Path) -> None:
    params = {
        "features": ["B_MCORR", "log_fdchi2"],
        "bins": 5,
        "edges": {"B_MCORR": [0, 1000, 2500, 6000]},
        **FAST,
    }
    cfg, _, _, (clf, _, _) = _fit(tmp_path, params)
    assert clf.features_ == ["B_MCORR", "log_fdchi2"]
    np.testing.assert_array_equal(clf.edges_[0], [0, 1000, 2500, 6000])
    assert clf.bins_ == (3, 5)
    assert clf.feature_indices_ == [
        cfg.feature_names.index("B_MCORR"),
        cfg.feature_names.index("log_fdchi2"),
    ]


def test_shap_sums_to_the_cell_margin(fitted: tuple[BonsaiBDTClassifier, np.ndarray]) -> None:
    from hepsel.explain.shap_values import explain_model

    clf, X = fitted
    expl = explain_model(
        "bbdt", [clf], X[:200], np.zeros(200, dtype=int), np.arange(200), ["a", "b", "c", "d"]
    )
    assert expl.feature_names == ["c", "a", "d"] and expl.values.shape == (200, 3)
    np.testing.assert_array_equal(expl.data, X[:200][:, [2, 0, 3]])
    np.testing.assert_allclose(
        expl.values.sum(axis=1) + expl.base, clf.decision_function(X[:200]), atol=1e-4
    )
