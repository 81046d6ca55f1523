"""Training from the data-set file: only the needed columns and rows, and beyond memory (``training.external_memory``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hepsel.config.loading import load_config
from hepsel.exceptions import ConfigError
from hepsel.io.storage import ParquetAppender, write_json
from hepsel.models import load_classifier
from hepsel.prep.dataset import feature_matrix, load_dataset
from hepsel.train.fold_file import train_fold_file
from hepsel.train.kfold import training_columns

from .conftest import tiny_config, write_config

MODELS = {
    "bdt": {"type": "bdt", "params": {"n_estimators": 30, "max_depth": 3, "n_jobs": 1}},
    "fisher": {"type": "fisher"},
    "mlp": {
        "type": "mlp",
        "params": {
            "hidden_layers": [16],
            "max_epochs": 4,
            "batch_size": 256,
            "n_jobs": 1,
            "device": "cpu",
        },
    },
    "lip": {
        "type": "lipschitz_mlp",
        "monotone": {"log_fdchi2": 1},
        "params": {"hidden_layers": [8], "max_epochs": 2, "n_jobs": 1, "device": "cpu"},
    },
}
N = 6000
GROUP = 1000  # rows per row group: six of them, so streaming really goes group by group


def _config(tmp_path: Path, *, external_memory: bool = False) -> Any:
    raw = tiny_config("data", models=MODELS, training={"external_memory": external_memory})
    return load_config(
        write_config(tmp_path / ("ext" if external_memory else "mem"), raw), base_dir=tmp_path
    )


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A gathered-like data set in row groups of GROUP rows (features as float32, one as float64)."""
    cfg = _config(tmp_path)
    rng = np.random.default_rng(1)
    y = (rng.random(N) < 0.3).astype(np.int8)
    cols: dict[str, np.ndarray] = {
        "runNumber": np.zeros(N, dtype=np.int64),
        "eventNumber": np.arange(N, dtype=np.int64),
        "label": y,
        "sample": y.astype(np.int16),
        "weight_raw": rng.uniform(0.5, 1.5, N),
        "fold": (np.arange(N) % 3).astype(np.int8),
        "truth": np.where(y == 1, rng.random(N) < 0.9, True).astype(np.int8),
    }
    for i, f in enumerate(cfg.feature_names):
        x = rng.normal(y * (0.6 + 0.2 * i), 1.0)
        cols[f] = x if i == 0 else x.astype(np.float32)
    for s in cfg.spectators:
        cols[s] = rng.normal(size=N)
    cols["weight"] = cols["weight_raw"] * 2.0
    path = tmp_path / "results" / "dataset.parquet"
    with ParquetAppender(path) as out:
        for start in range(0, N, GROUP):
            out.append({k: v[start : start + GROUP] for k, v in cols.items()})
    samples = {
        "minbias": {"index": 0, "n_events": N, "sum_gen_weights": N, "normalisation": 2.0},
        "signal": {"index": 1, "n_events": N, "sum_gen_weights": N, "normalisation": 2.0},
    }
    write_json(path.with_name("samples.json"), samples)
    return path


def _held_out_auc(cfg: Any, path: Path, model: str, prefix: Path, fold: int = 0) -> float:
    ds = load_dataset(path, cfg, columns=["label", "weight", "fold", "truth"])
    test = (ds.fold == fold) & ds.truth
    X = feature_matrix(path, cfg, rows=np.flatnonzero(test), dtype=np.float32)
    clf = load_classifier(cfg.models[model].type, prefix)
    return float(
        roc_auc_score(ds.y[test], clf.predict_proba(X)[:, 1], sample_weight=ds.weight[test])
    )


def test_external_memory_is_off_by_default_and_validated(tmp_path: Path) -> None:
    assert (
        load_config(write_config(tmp_path, tiny_config("data"))).training.external_memory is False
    )
    assert _config(tmp_path, external_memory=True).training.external_memory is True
    raw = tiny_config("data", training={"external_memory": "sometimes"})
    with pytest.raises(ConfigError, match=r"training\.external_memory"):
        load_config(write_config(tmp_path / "bad", raw))


def test_bad_external_memory_is_one_cli_error_line(tmp_path: Path) -> None:
    raw = tiny_config("data", training={"external_memory": [1]})
    path = write_config(tmp_path / "bad", raw)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hepsel.cli",
            "train",
            "-c",
            str(path),
            "--model",
            "bdt",
            "--fold",
            "0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert proc.stderr.startswith("hepsel: error: ") and "training.external_memory" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("external_memory", [False, True])
@pytest.mark.parametrize("model", ["bdt", "fisher", "mlp"])
def test_training_reads_only_its_columns_and_rows(
    dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    model: str,
    external_memory: bool,
) -> None:
    import hepsel.io.storage
    import hepsel.prep.dataset
    import hepsel.train.out_of_core

    cfg = _config(tmp_path, external_memory=external_memory)
    calls: list[tuple[list[str], Any]] = []
    real = hepsel.io.storage.read_table

    def spy(path, columns=None, *, rows=None):  # type: ignore[no-untyped-def]
        assert columns is not None, "the whole table was read"
        calls.append((list(columns), rows))
        return real(path, columns, rows=rows)

    for module in (hepsel.io.storage, hepsel.prep.dataset, hepsel.train.out_of_core):
        monkeypatch.setattr(module, "read_table", spy)
    info = train_fold_file(cfg, dataset, model, 1, tmp_path / "m" / "fold1", progress=False)
    allowed = set(training_columns(cfg, model))
    read = {c for cols, _ in calls for c in cols}
    assert read <= allowed
    assert not read & {"sample", "weight_raw", *cfg.spectators}
    if external_memory:
        # the features never come through read_table: they stream row group by row group
        assert not read & set(cfg.feature_names)
        assert info["external_memory"] is True
    # whole columns are read only for the fold/truth flags; the rest are the training rows only
    for cols, rows in calls:
        assert rows is not None or set(cols) <= {"fold", "truth", *cfg.feature_names}
    ds = load_dataset(dataset, cfg, columns=["fold", "truth"])
    assert info["n_train"] == int(((ds.fold != 1) & ds.truth).sum())


def test_in_memory_fit_gets_float32_training_rows(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hepsel.train.kfold as training

    cfg = _config(tmp_path)
    seen: dict[str, np.ndarray] = {}
    real_fit = training.fit_model

    def spy(cfg_, mcfg, X, y, w, **kw):  # type: ignore[no-untyped-def]
        seen["X"] = X
        return real_fit(cfg_, mcfg, X, y, w, **kw)

    monkeypatch.setattr(training, "fit_model", spy)
    train_fold_file(cfg, dataset, "fisher", 2, tmp_path / "m" / "fold2", progress=False)
    ds = load_dataset(dataset, cfg)
    mask = (ds.fold != 2) & ds.truth
    assert seen["X"].dtype == np.float32
    np.testing.assert_array_equal(seen["X"], ds.X[mask].astype(np.float32))


def test_external_memory_bdt_matches_in_memory(dataset: Path, tmp_path: Path) -> None:
    aucs = {}
    for ext in (False, True):
        cfg = _config(tmp_path, external_memory=ext)
        prefix = tmp_path / ("ext" if ext else "mem") / "bdt" / "fold0"
        info = train_fold_file(cfg, dataset, "bdt", 0, prefix, progress=False)
        assert info["validation"]["n_validation"] > 0
        aucs[ext] = _held_out_auc(cfg, dataset, "bdt", prefix)
        # the quantised pages xgboost cached on disk are gone
        assert sorted(p.name for p in prefix.parent.iterdir()) == ["fold0.json", "fold0.xgb.json"]
    assert aucs[False] > 0.75
    assert aucs[True] == pytest.approx(aucs[False], abs=0.01)


def test_external_memory_fisher_equals_in_memory(dataset: Path, tmp_path: Path) -> None:
    models = {}
    for ext in (False, True):
        cfg = _config(tmp_path, external_memory=ext)
        prefix = tmp_path / ("ext" if ext else "mem") / "fisher" / "fold1"
        train_fold_file(cfg, dataset, "fisher", 1, prefix, progress=False)
        models[ext] = load_classifier("fisher", prefix)
    np.testing.assert_allclose(models[True].coef_, models[False].coef_, rtol=1e-9)
    np.testing.assert_allclose(models[True].covariance_, models[False].covariance_, rtol=1e-9)


@pytest.mark.parametrize("model", ["bdt", "mlp", "lip"])
def test_external_memory_same_seed_same_model(dataset: Path, tmp_path: Path, model: str) -> None:
    cfg = _config(tmp_path, external_memory=True)
    ds = load_dataset(dataset, cfg)
    scores = []
    for run in ("a", "b"):
        prefix = tmp_path / run / model / "fold0"
        train_fold_file(cfg, dataset, model, 0, prefix, progress=False)
        scores.append(load_classifier(cfg.models[model].type, prefix).predict_proba(ds.X)[:, 1])
    np.testing.assert_array_equal(scores[0], scores[1])


def test_external_memory_mlp_learns_as_in_memory(dataset: Path, tmp_path: Path) -> None:
    aucs = {}
    for ext in (False, True):
        cfg = _config(tmp_path, external_memory=ext)
        prefix = tmp_path / ("ext" if ext else "mem") / "mlp" / "fold0"
        train_fold_file(cfg, dataset, "mlp", 0, prefix, progress=False)
        aucs[ext] = _held_out_auc(cfg, dataset, "mlp", prefix)
    assert aucs[False] > 0.75
    assert aucs[True] == pytest.approx(aucs[False], abs=0.02)


def test_external_memory_refuses_negative_weights_it_would_resample(
    dataset: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(dataset)
    w = table.column("weight").to_numpy().copy()
    w[::7] *= -1
    pq.write_table(
        table.set_column(table.schema.get_field_index("weight"), "weight", [w]),
        dataset,
        row_group_size=GROUP,
    )
    cfg = _config(tmp_path, external_memory=True)
    with pytest.raises(
        ValueError, match=r"negative weights.*training\.negative_weights: abs or drop"
    ):
        train_fold_file(cfg, dataset, "bdt", 0, tmp_path / "m" / "fold0", progress=False)
    # fisher takes them as they are
    info = train_fold_file(cfg, dataset, "fisher", 0, tmp_path / "f" / "fold0", progress=False)
    assert info["n_negative_weights"] > 0


def test_models_that_do_not_stream_train_in_memory(dataset: Path, tmp_path: Path) -> None:
    raw = tiny_config(
        "data",
        models={
            "bbdt": {
                "type": "bbdt",
                "params": {
                    "features": ["B_PT", "B_MCORR"],
                    "bins": 4,
                    "n_estimators": 5,
                    "max_depth": 2,
                    "n_jobs": 1,
                },
            }
        },
        training={"external_memory": True},
    )
    cfg = load_config(write_config(tmp_path / "bb", raw), base_dir=tmp_path)
    info = train_fold_file(cfg, dataset, "bbdt", 0, tmp_path / "bb" / "fold0", progress=False)
    assert "external_memory" not in info and info["n_train"] > 0


def test_fold_stream_groups_and_gather(dataset: Path, tmp_path: Path) -> None:
    from hepsel.train.out_of_core import FoldStream

    cfg = _config(tmp_path)
    ds = load_dataset(dataset, cfg)
    keep = (ds.fold != 0) & ds.truth
    stream = FoldStream(dataset, cfg.feature_names, keep)
    assert len(stream.groups) == N // GROUP and stream.n_rows == keep.sum()
    X = np.concatenate([x for _, x in stream])
    want = ds.X[keep].astype(np.float32)
    np.testing.assert_array_equal(X, want)
    rows = np.array([0, 5, 999, 1500, stream.n_rows - 1])
    np.testing.assert_array_equal(stream.gather(rows), want[rows])
