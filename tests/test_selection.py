"""Selection: scoring only preselected candidates, working points, what a saved selection may load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hepsel.deploy.selection import Selection
from hepsel.exceptions import ModelFileError, NonFiniteError
from hepsel.models.fisher import FisherClassifier
from hepsel.prep.features import Feature, FeatureSet


def _fold_models(k: int = 2) -> list[FisherClassifier]:
    """Fisher discriminants on (log x, y), each trained on a different toy sample."""
    models = []
    for i in range(k):
        rng = np.random.default_rng(10 + i)
        X = np.vstack(
            [rng.normal([0.0, 0.0], 1.0, (200, 2)), rng.normal([1.0, 0.5], 1.0, (200, 2))]
        )
        models.append(FisherClassifier().fit(X, np.r_[np.zeros(200), np.ones(200)]))
    return models


@pytest.fixture
def selection() -> Selection:
    """Preselection ``x > 0``, features ``log(x)`` and ``y``, two fold models."""
    features = FeatureSet([Feature("log_x", expr="x", transform="log"), Feature("y", expr="y")])
    return Selection(
        preselection=[("x positive", "x > 0")],
        features=features,
        models={"fisher": {"kind": "fisher", "folds": _fold_models()}},
        working_points={"fisher": {"100": 0.5}},
    )


@pytest.fixture
def sample() -> dict[str, np.ndarray]:
    """Hand-made candidates: x = 0 gives log(0) = -inf and must be rejected, not scored."""
    return {
        "x": np.array([0.0, 1.0, 0.5, 0.0, 3.0, 2.0, -1.0, 0.2]),
        "y": np.array([0.1, -0.4, 2.0, 1.0, 0.3, 1.5, 0.0, -2.0]),
        "eventNumber": np.array([10, 11, 12, 13, 14, 15, 16, 17]),
    }


def _expected_scores(sel: Selection, sample: dict[str, np.ndarray]) -> np.ndarray:
    """Scores computed by hand: numpy features, fold model = eventNumber % k, NaN if rejected."""
    folds = sel.models["fisher"]["folds"]
    out = np.full(len(sample["x"]), np.nan)
    for i, (x, y, evt) in enumerate(
        zip(sample["x"], sample["y"], sample["eventNumber"], strict=True)
    ):
        if x > 0:
            out[i] = folds[evt % len(folds)].predict_proba(np.array([[np.log(x), y]]))[0, 1]
    return out


def test_score_only_preselected_candidates(
    selection: Selection, sample: dict[str, np.ndarray]
) -> None:
    scores = selection.score(sample)
    expected = _expected_scores(selection, sample)
    rejected = sample["x"] <= 0
    assert np.isnan(scores[rejected]).all()
    np.testing.assert_allclose(scores[~rejected], expected[~rejected], rtol=1e-12)


def test_passes_matches_a_threshold_cut(
    selection: Selection, sample: dict[str, np.ndarray]
) -> None:
    thr = 0.5
    expected = _expected_scores(selection, sample)
    brute = np.array([x > 0 and s >= thr for x, s in zip(sample["x"], expected, strict=True)])
    assert brute.any() and not brute.all()
    np.testing.assert_array_equal(selection.passes(sample, rate_khz=100), brute)


def test_score_without_event_number_averages_the_folds(
    selection: Selection, sample: dict[str, np.ndarray]
) -> None:
    no_evt = {k: v for k, v in sample.items() if k != "eventNumber"}
    keep = sample["x"] > 0
    X = np.column_stack([np.log(sample["x"][keep]), sample["y"][keep]])
    mean = np.mean(
        [clf.predict_proba(X)[:, 1] for clf in selection.models["fisher"]["folds"]], axis=0
    )
    scores = selection.score(no_evt)
    np.testing.assert_allclose(scores[keep], mean, rtol=1e-12)
    assert np.isnan(scores[~keep]).all()


def test_non_finite_feature_of_a_preselected_candidate_is_named(
    selection: Selection, sample: dict[str, np.ndarray]
) -> None:
    bad = dict(sample, y=np.where(sample["x"] == 1.0, np.inf, sample["y"]))
    with pytest.raises(NonFiniteError, match=r"'y': 1"):
        selection.score(bad)


def _saved(tmp_path: Path, selection: Selection) -> Path:
    return selection.save(tmp_path / "selection")


def _edit(directory: Path, change) -> None:
    f = directory / "selection.json"
    meta = json.loads(f.read_text())
    change(meta)
    f.write_text(json.dumps(meta))


def test_saved_selection_round_trip(
    tmp_path: Path, selection: Selection, sample: dict[str, np.ndarray]
) -> None:
    loaded = Selection.load(_saved(tmp_path, selection))
    np.testing.assert_array_equal(loaded.score(sample), selection.score(sample))


@pytest.mark.parametrize("module", ["../evil.py", "ABSOLUTE"])
def test_load_refuses_feature_modules_outside_the_selection(
    tmp_path: Path, selection: Selection, module: str
) -> None:
    d = _saved(tmp_path, selection)
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\ndef f(arrays):\n    return arrays['y']\n")
    spec = f"{evil if module == 'ABSOLUTE' else module}:f"

    def add_function(meta: dict) -> None:
        meta["features"]["features"].append(
            {
                "name": "f",
                "expr": None,
                "function": spec,
                "inputs": ["y"],
                "transform": "none",
                "range": None,
                "label": None,
            }
        )

    _edit(d, add_function)
    with pytest.raises(
        ModelFileError,
        match=r"selection\.json: features\[2\] \(f\): feature function .*(lies outside|must be a relative path)",
    ):
        Selection.load(d)
    assert not marker.exists()


def test_load_runs_feature_modules_inside_the_selection(
    tmp_path: Path, selection: Selection, sample: dict[str, np.ndarray]
) -> None:
    d = _saved(tmp_path, selection)
    (d / "lib").mkdir()
    (d / "lib" / "extra.py").write_text("def double_y(arrays):\n    return 2 * arrays['y']\n")

    def add_function(meta: dict) -> None:
        meta["features"]["features"][1] = {
            "name": "y",
            "expr": None,
            "function": "lib/extra.py:double_y",
            "inputs": ["y"],
            "transform": "none",
            "range": None,
            "label": None,
        }

    _edit(d, add_function)
    loaded = Selection.load(d)
    halved = dict(sample, y=sample["y"] / 2)
    np.testing.assert_allclose(loaded.score(halved), selection.score(sample), rtol=1e-12)


def test_load_refuses_model_files_outside_the_selection(
    tmp_path: Path, selection: Selection
) -> None:
    d = _saved(tmp_path, selection)
    _edit(d, lambda meta: meta["models"]["fisher"]["folds"].__setitem__(0, "../../elsewhere/fold0"))
    with pytest.raises(
        ModelFileError, match=r"models\.fisher: model file '\.\./\.\./elsewhere/fold0' lies outside"
    ):
        Selection.load(d)


@pytest.mark.parametrize("kind", ["TTree", "RNTuple"])
def test_score_a_root_file(
    tmp_path: Path, selection: Selection, sample: dict[str, np.ndarray], kind: str
) -> None:
    import uproot

    path = tmp_path / "candidates.root"
    with uproot.recreate(path) as f:
        if kind == "RNTuple":
            f.mkrntuple("DecayTree", sample)
        else:
            f.mktree("DecayTree", {k: v.dtype for k, v in sample.items()})
            f["DecayTree"].extend(sample)
    assert uproot.open(path).classnames()["DecayTree;1"].endswith(kind)
    np.testing.assert_array_equal(selection.score(str(path)), selection.score(sample))
    np.testing.assert_array_equal(
        selection.passes(str(path), rate_khz=100), selection.passes(sample, rate_khz=100)
    )


def test_working_point_keys_and_unknown_rates(selection: Selection) -> None:
    assert (
        selection.threshold(rate_khz=100.0)
        == selection.threshold(rate_khz="100")
        == selection.threshold()
        == 0.5
    )
    with pytest.raises(
        KeyError, match=r"no working point at 660 kHz for model 'fisher'; available: \['100'\]"
    ):
        selection.threshold(rate_khz=660)


@pytest.mark.parametrize("target", ["file", "directory"])
def test_load_refuses_model_files_linked_from_outside(
    tmp_path: Path, selection: Selection, target: str
) -> None:
    """A link inside the selection to a model file (or folder) elsewhere is refused, naming the file and where it leads."""
    d = _saved(tmp_path, selection)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    model_dir = d / "models" / "fisher"
    if target == "file":
        moved = elsewhere / "fold0.json"
        (model_dir / "fold0.json").rename(moved)
        (model_dir / "fold0.json").symlink_to(moved)
        match = r"models\.fisher: model file 'models/fisher/fold0\.json' \(a link to '.*elsewhere/fold0\.json'\) lies outside the selection directory"
    else:
        for f in model_dir.iterdir():
            f.rename(elsewhere / f.name)
        model_dir.rmdir()
        model_dir.symlink_to(elsewhere)
        match = r"models\.fisher: model file 'models/fisher/fold0' \(a link to '.*elsewhere/fold0'\) lies outside the selection directory"
    with pytest.raises(ModelFileError, match=match):
        Selection.load(d)


def test_load_accepts_links_inside_the_selection(
    tmp_path: Path, selection: Selection, sample: dict[str, np.ndarray]
) -> None:
    d = _saved(tmp_path, selection)
    store = d / "store"
    store.mkdir()
    (d / "models" / "fisher" / "fold1.json").rename(store / "fold1.json")
    (d / "models" / "fisher" / "fold1.json").symlink_to(Path("..", "..", "store", "fold1.json"))
    np.testing.assert_array_equal(Selection.load(d).score(sample), selection.score(sample))


def test_load_refuses_a_feature_module_linked_from_outside(
    tmp_path: Path, selection: Selection
) -> None:
    d = _saved(tmp_path, selection)
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\ndef f(arrays):\n    return arrays['y']\n")
    (d / "extra.py").symlink_to(evil)

    def add_function(meta: dict) -> None:
        meta["features"]["features"].append(
            {
                "name": "f",
                "expr": None,
                "function": "extra.py:f",
                "inputs": ["y"],
                "transform": "none",
                "range": None,
                "label": None,
            }
        )

    _edit(d, add_function)
    with pytest.raises(
        ModelFileError,
        match=r"features\[2\] \(f\): feature function 'extra\.py:f': module .*evil\.py' lies outside",
    ):
        Selection.load(d)
    assert not marker.exists()
