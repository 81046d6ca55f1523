"""hepsel: event selection for high-energy physics.

Read ROOT ntuples with uproot, derive features, train classifiers with k-fold
cross-training and evaluate them as a trigger study. The few names an analyst
needs are available here; heavy dependencies (torch, xgboost, shap) load only
when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
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

_LAZY = {
    "AnalysisConfig": "config.schema",
    "load_config": "config.loading",
    "CutFlow": "prep.cuts",
    "CutSequence": "prep.cuts",
    "Expression": "config.expressions",
    "Feature": "prep.features",
    "FeatureSet": "prep.features",
    "Selection": "deploy.selection",
    "export_onnx": "deploy.export",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    msg = f"module 'hepsel' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
