"""Feature functions: only Python files inside the analysis directory are imported."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hepsel.exceptions import ConfigError
from hepsel.prep.features import Feature, FeatureSet


def _module(path: Path, marker: Path, factor: float) -> Path:
    """A feature module that leaves ``marker`` behind when it is executed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"open({str(marker)!r}, 'w').close()\ndef f(arrays):\n    return {factor} * arrays['x']\n"
    )
    return path


@pytest.fixture
def analysis(tmp_path: Path) -> Path:
    d = tmp_path / "analyses" / "mine"
    d.mkdir(parents=True)
    return d


def _build(spec: str, base_dir: Path) -> FeatureSet:
    return FeatureSet(
        [Feature("g", function=spec, inputs=["x"])],
        base_dir=base_dir,
        where="config.yaml: features",
    )


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
def test_modules_outside_the_analysis_are_refused(
    tmp_path: Path, analysis: Path, spec: str, problem: str
) -> None:
    marker = tmp_path / "executed"
    outside = _module(tmp_path / "analyses" / "outside.py", marker, 2.0)
    (tmp_path / "analyses" / "outside.txt").write_text(outside.read_text())
    _module(analysis / "features.py", tmp_path / "unused", 1.0)
    spec = spec.replace("ABSOLUTE", str(outside))
    with pytest.raises(
        ConfigError, match=rf"config\.yaml: features\[0\] \(g\): feature function .*{problem}"
    ):
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


# -- the signature of a feature function, checked when the config is loaded ---------------------


def _analysis_with_function(tmp_path: Path, source: str) -> Path:
    from .conftest import write_config, write_flat_tree

    d = tmp_path / "ana"
    d.mkdir(exist_ok=True)
    write_flat_tree(d / "flat.root", n_events=50)
    (d / "features.py").write_text(source)
    cfg = {
        "name": "fana",
        "samples": {
            "sig": {"files": [str(d / "flat.root")], "label": 1},
            "bkg": {"files": [str(d / "flat.root")], "label": 0},
        },
        "features": [
            {"name": "pt_sum", "function": "features.py:pt_sum", "inputs": ["H1_PT", "H2_PT"]},
            {"name": "b", "expr": "B_PT"},
        ],
        "models": {"bdt": {"type": "bdt"}},
    }
    return write_config(d, cfg)


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("def pt_sum(H1_PT, H2_PT):\n    return H1_PT + H2_PT\n", r"\(H1_PT, H2_PT\)"),
        ("def pt_sum():\n    return 0\n", r"\(\)"),
        ("def pt_sum(arrays, *, scale):\n    return scale\n", r"\(arrays, \*, scale\)"),
        ("def pt_sum(**branches):\n    return 0\n", r"\(\*\*branches\)"),
    ],
)
def test_function_with_branch_arguments_is_refused_at_load(
    tmp_path: Path, source: str, shown: str
) -> None:
    from hepsel.config.loading import load_config

    path = _analysis_with_function(tmp_path, source)
    with pytest.raises(
        ConfigError,
        match=rf"config\.yaml: features\.pt_sum: feature function 'features\.py:pt_sum' has the signature {shown}.*def pt_sum\(arrays\)",
    ) as err:
        load_config(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "source",
    [
        "def pt_sum(arrays):\n    return arrays['H1_PT'] + arrays['H2_PT']\n",
        "def pt_sum(arrays, scale=1.0, /):\n    return scale * (arrays['H1_PT'] + arrays['H2_PT'])\n",
        "def pt_sum(*args):\n    return args[0]['H1_PT'] + args[0]['H2_PT']\n",
        "class _F:\n    def __call__(self, arrays):\n        return arrays['H1_PT'] + arrays['H2_PT']\npt_sum = _F()\n",
    ],
)
def test_one_mapping_argument_is_accepted(tmp_path: Path, source: str) -> None:
    from hepsel.config.loading import load_config

    cfg = load_config(_analysis_with_function(tmp_path, source))
    fs = FeatureSet.from_config(cfg)
    x = {"H1_PT": np.array([1.0, 2.0]), "H2_PT": np.array([3.0, 5.0]), "B_PT": np.zeros(2)}
    np.testing.assert_array_equal(fs.matrix(x)[:, 0], [4.0, 7.0])


def test_selection_modules_are_checked_too(tmp_path: Path, analysis: Path) -> None:
    """A saved selection's feature function goes through the same check (FeatureSet, as Selection.load builds it)."""
    (analysis / "features.py").write_text("def f(x):\n    return x\n\ndef g(a, b):\n    return a\n")
    _build("features.py:f", analysis)  # one argument: fine, whatever its name
    with pytest.raises(
        ConfigError,
        match=r"features\[0\] \(g\): feature function 'features\.py:g' has the signature \(a, b\)",
    ):
        _build("features.py:g", analysis)


def test_module_that_does_not_import_is_one_error(tmp_path: Path) -> None:
    from hepsel.config.loading import load_config

    path = _analysis_with_function(tmp_path, "def pt_sum(arrays):\n    return arrays[\n")
    with pytest.raises(
        ConfigError,
        match=r"features\.pt_sum: feature function 'features\.py:pt_sum': importing .*features\.py failed \(line 2\): SyntaxError",
    ):
        load_config(path)
    path = _analysis_with_function(
        tmp_path, "import not_a_module_anywhere\ndef pt_sum(arrays):\n    return 0\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"features\.pt_sum: .*ModuleNotFoundError: No module named 'not_a_module_anywhere'",
    ):
        load_config(path)


def test_cli_prepare_prints_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = _analysis_with_function(
        tmp_path, "def pt_sum(H1_PT, H2_PT):\n    return H1_PT + H2_PT\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hepsel.cli",
            "prepare",
            "-c",
            str(path.parent),
            "--sample",
            "sig",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("hepsel: error: ") and "features.pt_sum" in lines[0]
    ), proc.stderr
