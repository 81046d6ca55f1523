"""The public API is small, stable, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import hepsel


def test_public_api() -> None:
    assert dir(hepsel) == sorted(
        [
            "AnalysisConfig",
            "CutFlow",
            "CutSequence",
            "Expression",
            "Feature",
            "FeatureSet",
            "Selection",
            "__version__",
            "export_onnx",
            "load_config",
        ]
    )
    for name in hepsel.__all__:
        assert getattr(hepsel, name) is not None


def test_import_does_not_load_heavy_dependencies() -> None:
    code = "import sys, hepsel; hepsel.Selection; hepsel.load_config; hepsel.export_onnx; print(sorted(m for m in ('torch', 'xgboost', 'shap', 'onnx', 'onnxruntime', 'onnxmltools') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
