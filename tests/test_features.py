"""Feature functions: only Python files inside the analysis directory are imported."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hepsel.exceptions import ConfigError
from hepsel.features import Feature, FeatureSet


def _module(path: Path, marker: Path, factor: float) -> Path:
    """A feature module that leaves ``marker`` behind when it is executed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"open({str(marker)!r}, 'w').close()\ndef f(arrays):\n    return {factor} * arrays['x']\n")
    return path


@pytest.fixture
def analysis(tmp_path: Path) -> Path:
    d = tmp_path / "analyses" / "mine"
    d.mkdir(parents=True)
    return d


def _build(spec: str, base_dir: Path) -> FeatureSet:
    return FeatureSet([Feature("g", function=spec, inputs=["x"])], base_dir=base_dir, where="config.yaml: features")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("../outside.py:f", "lies outside"),
        ("lib/../../outside.py:f", "lies outside"),
        ("ABSOLUTE:f", "must be a relative path"),
        ("outside.txt:f", "must be a relative path to a .py file"),
        ("features.py:os.system", "is not a Python function name"),
    ],
)
def test_modules_outside_the_analysis_are_refused(tmp_path: Path, analysis: Path, spec: str, problem: str) -> None:
    marker = tmp_path / "executed"
    outside = _module(tmp_path / "analyses" / "outside.py", marker, 2.0)
    (tmp_path / "analyses" / "outside.txt").write_text(outside.read_text())
    _module(analysis / "features.py", tmp_path / "unused", 1.0)
    spec = spec.replace("ABSOLUTE", str(outside))
    with pytest.raises(ConfigError, match=rf"config\.yaml: features\[0\] \(g\): feature function .*{problem}"):
        _build(spec, analysis)
    assert not marker.exists()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_symlink_leading_out_of_the_analysis_is_refused(tmp_path: Path, analysis: Path) -> None:
    marker = tmp_path / "executed"
    outside = _module(tmp_path / "outside.py", marker, 2.0)
    (analysis / "linked.py").symlink_to(outside)
    with pytest.raises(ConfigError, match="lies outside"):
        _build("linked.py:f", analysis)
    assert not marker.exists()


def test_nested_module_inside_the_analysis_works(tmp_path: Path, analysis: Path) -> None:
    marker = tmp_path / "executed"
    _module(analysis / "lib" / "kin.py", marker, 3.0)
    fs = _build("lib/kin.py:f", analysis)
    np.testing.assert_array_equal(fs.matrix({"x": np.array([1.0, 2.0])}).ravel(), [3.0, 6.0])
    assert marker.exists()


def test_same_file_name_in_two_directories_gives_two_modules(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "sel", tmp_path / "b" / "sel"
    _module(a / "features.py", tmp_path / "m", 2.0)
    _module(b / "features.py", tmp_path / "m", 5.0)
    x = {"x": np.array([1.0])}
    assert _build("features.py:f", a).matrix(x)[0, 0] == 2.0
    assert _build("features.py:f", b).matrix(x)[0, 0] == 5.0
