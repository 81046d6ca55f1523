"""Training beyond memory (``training.external_memory``): the features stream from the data set.

Only the per-row bookkeeping of the fold's training rows (label, weight,
event numbers; about 30 bytes a row) is held in memory; the features are
read from ``dataset.parquet`` row group by row group, again on every pass
a learner makes:

* ``bdt``: xgboost's external-memory interface, an
  :class:`xgboost.ExtMemQuantileDMatrix` built from an :class:`xgboost.DataIter`
  over the batches (quantised pages cached on disk next to the model);
* ``fisher``: two passes (class means, then the scatter about them);
* ``mlp`` and ``lipschitz_mlp``: every epoch the row groups come in a seeded
  order, are pooled into shuffle buffers of at least :data:`SHUFFLE_ROWS`
  rows and minibatches drawn from each; the input scaling is fitted on, and
  early stopping monitors, seeded subsamples of at most
  :data:`SUBSAMPLE_ROWS` training and validation rows held in memory.

The training rows, weights and validation split are those of the
in-memory path (:func:`hepsel.train.kfold.train_fold`); the same seed gives the
same model.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..io.storage import read_table
from ..prep.dataset import training_weights

__all__ = [
    "SHUFFLE_ROWS",
    "STREAMING_KINDS",
    "SUBSAMPLE_ROWS",
    "FoldStream",
    "streams",
    "train_fold_streaming",
]

#: Model kinds that train from streamed batches.
STREAMING_KINDS = ("bdt", "fisher", "mlp", "lipschitz_mlp")
#: Rows pooled (from several row groups) and shuffled together by the torch models' streamed epochs.
SHUFFLE_ROWS = 2_000_000
#: At most this many rows fit the torch models' input scaling, and as many form their validation set.
SUBSAMPLE_ROWS = 200_000


def streams(cfg: AnalysisConfig, model: str) -> bool:
    """Whether ``model`` trains from streamed batches under ``training.external_memory``.

    ``gan_augmented``, ``bbdt`` and ``autoencoder`` models, and models with
    uncertainty replicas, train in memory.
    """
    mcfg = cfg.models[model]
    return mcfg.type in STREAMING_KINDS and mcfg.uncertainty is None


class FoldStream:
    """The features of one fold's training rows, read from a data set row group by row group.

    Parameters
    ----------
    path
        The data set (``dataset.parquet``; :func:`hepsel.prep.dataset.gather` writes
        a row group per prepared file, at most about a million rows each).
    feature_names
        The feature columns, in order.
    keep
        Boolean mask over all rows of the file: the rows streamed.
    """

    def __init__(
        self, path: str | os.PathLike[str], feature_names: list[str], keep: np.ndarray
    ) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.feature_names = list(feature_names)
        self._file = pq.ParquetFile(self.path)
        keep = np.asarray(keep, dtype=bool)
        sizes = [
            self._file.metadata.row_group(g).num_rows for g in range(self._file.num_row_groups)
        ]
        if sum(sizes) != len(keep):
            msg = f"{self.path} has {sum(sizes)} rows, {len(keep)} expected; it changed while it was read"
            raise RuntimeError(msg)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        kept = np.concatenate(
            [[0], np.cumsum([keep[a:b].sum() for a, b in itertools.pairwise(bounds)])]
        )
        #: per row group: the mask of its kept rows and their positions among all kept rows
        self.groups = [
            (keep[bounds[g] : bounds[g + 1]], slice(int(kept[g]), int(kept[g + 1])))
            for g in range(len(sizes))
            if kept[g + 1] > kept[g]
        ]
        self._index = [g for g in range(len(sizes)) if kept[g + 1] > kept[g]]
        self.n_rows = int(kept[-1])

    def read(self, i: int) -> np.ndarray:
        """The float32 features of the kept rows of the ``i``-th group of :attr:`groups`."""
        m, sl = self.groups[i]
        table = self._file.read_row_group(self._index[i], columns=self.feature_names)
        X = np.empty((sl.stop - sl.start, len(self.feature_names)), dtype=np.float32)
        for j in range(len(self.feature_names)):
            X[:, j] = table.column(j).to_numpy()[m]
        return X

    def __iter__(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(rows, X)`` in file order: positions of a group's rows among the kept rows, their features."""
        for i, (_, sl) in enumerate(self.groups):
            yield sl, self.read(i)

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """The features of the kept rows at sorted positions ``rows``, in one pass."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), len(self.feature_names)), dtype=np.float32)
        for i, (_, sl) in enumerate(self.groups):
            lo, hi = np.searchsorted(rows, [sl.start, sl.stop])
            if hi > lo:
                out[lo:hi] = self.read(i)[rows[lo:hi] - sl.start]
        return out


def train_fold_streaming(
    cfg: AnalysisConfig,
    path: str | os.PathLike[str],
    model: str,
    fold: int,
    prefix: str | os.PathLike[str],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Train model ``model`` of fold ``fold`` from the data set at ``path`` without loading its features.

    The counterpart of :func:`hepsel.train.fold_file.train_fold_file` for the kinds
    of :data:`STREAMING_KINDS`; the model is saved under ``prefix`` and the
    training record returned (with ``external_memory: true``).

    Raises
    ------
    ValueError
        A kind that does not stream, or negative weights the learner would
        need cell-resampled (that needs the features in memory: use
        ``training.negative_weights: abs`` or ``drop``).
    """
    from ..models import make_classifier
    from .kfold import (
        TAKES_NEGATIVE_WEIGHTS,
        TRAIN_THREADS,
        event_validation_mask,
        model_seed,
        training_rows,
        validation_fraction,
    )

    mcfg = cfg.models[model]
    if not streams(cfg, model):
        msg = f"model {model!r} ({mcfg.type}) does not train from streamed data; kinds that do: {STREAMING_KINDS}"
        raise ValueError(msg)
    if not 0 <= fold < cfg.folds.k:
        msg = f"fold {fold} out of range for folds.k = {cfg.folds.k}"
        raise ValueError(msg)
    t0 = time.perf_counter()
    kind = mcfg.type
    seed = model_seed(cfg, model, fold)
    flags = read_table(path, ["fold", "truth"])
    keep = (flags["fold"] != fold) & flags["truth"].astype(bool)
    del flags
    cols = ["label", "weight", "runNumber", "eventNumber"]
    spectator_name = mcfg.decorrelate.spectator if mcfg.decorrelate else None
    if spectator_name is not None:
        cols.append(spectator_name)
    book = read_table(path, cols, rows=training_rows(fold))
    y = book["label"].astype(np.int64)
    w = training_weights(
        book["weight"],
        y,
        negative=cfg.training.negative_weights,
        balance=cfg.training.balance_classes,
    )
    info: dict[str, Any] = {
        "n_train": len(y),
        "n_signal": int((y == 1).sum()),
        "n_background": int((y == 0).sum()),
    }
    info["n_negative_weights"] = int((w < 0).sum())
    policy = cfg.training.negative_weights
    if (w < 0).any() and (
        policy == "resample" or (policy == "keep" and kind not in TAKES_NEGATIVE_WEIGHTS)
    ):
        msg = (
            f"model {model!r}: {info['n_negative_weights']} training candidates have negative weights, which {kind} "
            f"gets made positive by cell resampling (training.negative_weights: {policy}); that needs the features in "
            "memory: set training.external_memory: false, or training.negative_weights: abs or drop"
        )
        raise ValueError(msg)
    params = dict(mcfg.params)
    if kind in ("mlp", "lipschitz_mlp"):
        params.setdefault("n_jobs", TRAIN_THREADS)
    if mcfg.monotone:
        params["monotone_constraints"] = [int(mcfg.monotone.get(f, 0)) for f in cfg.feature_names]
    spectator = None
    if mcfg.decorrelate is not None:
        params["decorrelation_strength"] = float(mcfg.decorrelate.strength)
        spectator = np.asarray(book[mcfg.decorrelate.spectator], dtype=np.float64)
        info["decorrelate"] = mcfg.decorrelate.model_dump()
    clf = make_classifier(kind, params, random_state=seed)
    if progress and kind != "fisher":
        clf.verbose = True
    fraction = validation_fraction(clf)
    val = np.zeros(len(y), dtype=bool)
    if fraction > 0:
        val = event_validation_mask(book["runNumber"], book["eventNumber"], fraction, seed)
        info["validation"] = {"fraction": fraction, "seed": seed, "n_validation": int(val.sum())}
    del book
    stream = FoldStream(path, cfg.feature_names, keep)
    del keep
    n_features = len(cfg.feature_names)
    p = Path(prefix)
    p.parent.mkdir(parents=True, exist_ok=True)
    if kind == "bdt":

        def batches(part: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            if part == "validation" and fraction == 0:
                return
            for sl, X in stream:
                m = val[sl] if part == "validation" else ~val[sl]
                yield X[m], y[sl][m], w[sl][m]

        clf.fit_batches(batches, n_features, cache_prefix=p.with_name(f".{p.name}.xgbcache"))
    elif kind == "fisher":

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            for sl, X in stream:
                yield X, y[sl], w[sl]

        clf.fit_blocks(blocks, classes=np.array([0, 1]))
    else:
        clf.fit_stream(
            stream,
            y,
            w,
            validation=val,
            decorrelate_with=spectator,
            subsample=SUBSAMPLE_ROWS,
            shuffle_rows=SHUFFLE_ROWS,
        )
    for old in [*p.parent.glob(f"{p.name}_replica*"), *p.parent.glob(f"{p.name}_check.*")]:
        old.unlink()
    clf.save(p)
    info["seconds"] = time.perf_counter() - t0
    info.update(model=model, fold=fold, seed=seed, kind=kind, external_memory=True)
    return info
