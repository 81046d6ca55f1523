"""The train step: one model on one fold."""

from __future__ import annotations

from typing import Any

from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError
from .layout import Layout

__all__ = [
    "train",
]


def train(cfg: AnalysisConfig, model: str, fold: int, *, progress: bool = True) -> dict[str, Any]:
    """Train one fold model, reading only its columns and training rows (:func:`~hepsel.train.fold_file.train_fold_file`)."""
    from ..io.storage import write_json
    from ..train.fold_file import train_fold_file

    if model not in cfg.models:
        msg = f"unknown model {model!r}; the config has {sorted(cfg.models)}"
        raise ConfigError(msg)
    lay = Layout.of(cfg)
    info = train_fold_file(cfg, lay.dataset, model, fold, lay.model(model, fold), progress=progress)
    write_json(lay.model_info(model, fold), info)
    return info
