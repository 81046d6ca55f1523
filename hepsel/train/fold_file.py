"""Training one fold from the data-set file, in memory or streamed.

:func:`train_fold_file` reads only the fold's training rows and the model's
columns, and hands them to :func:`hepsel.train.kfold.train_fold`; with
``training.external_memory`` the kinds that can stream the row groups instead
(:mod:`hepsel.train.out_of_core`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from .kfold import train_fold, training_columns, training_rows

__all__ = [
    "train_fold_file",
]


def train_fold_file(
    cfg: AnalysisConfig,
    path: str | os.PathLike[str],
    model: str,
    fold: int,
    prefix: str | os.PathLike[str],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """:func:`train_fold` on the data set at ``path``, reading only what the fold model needs.

    Only the fold's training rows (:func:`training_rows`) and the model's
    columns (:func:`training_columns`) are read; the features go straight
    into one float32 matrix, one column at a time. With
    ``training.external_memory`` the models that can (``bdt``, ``fisher``,
    ``mlp``, ``lipschitz_mlp``) stream the row groups of the file instead
    (:mod:`hepsel.train.out_of_core`).
    """
    from ..io.storage import read_table
    from ..prep.dataset import feature_matrix, load_dataset

    if model not in cfg.models:
        msg = f"unknown model {model!r}; the config has {sorted(cfg.models)}"
        raise ValueError(msg)
    if cfg.training.external_memory:
        from .out_of_core import streams, train_fold_streaming

        if streams(cfg, model):
            return train_fold_streaming(cfg, path, model, fold, prefix, progress=progress)
    keep = read_table(path, ["fold", "truth"])
    rows = np.flatnonzero((keep["fold"] != fold) & keep["truth"].astype(bool))
    del keep
    ds = load_dataset(
        path, cfg, columns=training_columns(cfg, model, features=False), rows=training_rows(fold)
    )
    X = feature_matrix(path, cfg, rows=rows, dtype=np.float32)
    del rows
    return train_fold(cfg, ds, model, fold, prefix, progress=progress, X=X)
