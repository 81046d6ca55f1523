"""Cross-scoring: every candidate scored by the fold model that did not train on it.

:func:`cross_scores` scores every candidate with the fold model that did not
train on it (and, for the overtraining check, each training candidate with the
models that did); :func:`replica_scores` does the same for the uncertainty
replicas. The figures made from these scores are :mod:`hepsel.workflow.evaluation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..models import load_classifier
from ..prep.dataset import Dataset
from ..stats.trigger import event_ids
from .layout import Layout

__all__ = [
    "CrossScores",
    "cross_scores",
    "feature_blocks",
    "held_out",
    "model_kind",
    "one_per_event",
    "overtraining_sets",
    "rate_key",
    "replica_scores",
    "score_models",
]


def rate_key(rate_khz: float) -> str:
    """Key of a target rate in ``summary.json`` (e.g. ``"660"``)."""
    return f"{rate_khz:g}"


def model_kind(cfg: AnalysisConfig, model: str) -> str:
    """The classifier kind saved for ``model`` (``gan_augmented`` saves its base)."""
    m = cfg.models[model]
    return m.base if m.type == "gan_augmented" else m.type


@dataclass
class CrossScores:
    """Scores of one model.

    ``test[i]`` is candidate i's score from the model that did not see it
    (fold ``f``'s model). ``train[i]`` is its score from a model that was
    fitted on it, the model of the next fold ``(f + 1) % k`` (NaN for
    candidates never trained on, and for those that model held out for early
    stopping). So model ``k`` sees its training candidates of fold ``k - 1``
    in ``train`` and its test candidates of fold ``k`` in ``test``: disjoint
    candidates scored by one model, as an overtraining test needs.

    For a model with ``uncertainty`` replicas, ``err[i]`` is the sample
    standard deviation of candidate i's scores from the replicas of fold
    ``f`` (none of which saw it), ``replica_mean[i]`` their mean and
    ``check[i]`` the score of the calibration replica (NaN without one);
    all three are ``None`` for a model without replicas.

    ``test_raw[i]`` is the raw output of the same model (``decision_function``:
    xgboost margin, network logit, Fisher discriminant, reconstruction error),
    on which working points are ranked and cut: probabilities reach exactly 1
    once a logit passes about 37, raw outputs do not saturate. ``None``: rank on
    ``test``.
    """

    test: np.ndarray
    train: np.ndarray
    err: np.ndarray | None = None
    replica_mean: np.ndarray | None = None
    check: np.ndarray | None = None
    test_raw: np.ndarray | None = None

    @property
    def ranking(self) -> np.ndarray:
        """What working points cut on: ``test_raw``, or ``test`` without it."""
        return self.test if self.test_raw is None else self.test_raw


def cross_scores(cfg: AnalysisConfig, ds: Dataset, model: str, layout: Layout) -> CrossScores:
    """Score all candidates of ``ds`` with the fold models of ``model`` saved under ``layout``.

    The features are those of ``ds`` when it holds them, else they are read
    from ``layout.dataset`` block by block (:func:`score_models`).
    """
    if all(f in ds.columns for f in ds.feature_names):
        blocks: Iterable[tuple[int, np.ndarray]] = [(0, ds.X)]
    else:
        blocks = feature_blocks(layout.dataset, ds.feature_names)
    return score_models(cfg, ds, [model], layout, blocks)[model]


#: Rows of features held at a time while scoring (about 27 MB of float64 for 13 features).
BLOCK_ROWS = 1 << 18


def feature_blocks(
    path: str | Path, feature_names: Sequence[str], block_rows: int = BLOCK_ROWS
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, X)`` for consecutive blocks of whole row groups of a data set, each of at least ``block_rows`` rows.

    ``X`` holds the rows ``start:start + len(X)`` of the features, as
    :attr:`hepsel.prep.dataset.Dataset.X` does (their common dtype); the last
    block holds the rest. Only the feature columns of one block are in
    memory at a time (read row group by row group: a batch iterator over the
    file would keep what it read).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = list(feature_names)
    pf = pq.ParquetFile(path)
    start, pending, n_pending = 0, [], 0
    for group in range(pf.metadata.num_row_groups):
        table = pf.read_row_group(group, columns=names)
        pending.append(table)
        n_pending += table.num_rows
        last = group == pf.metadata.num_row_groups - 1
        if n_pending >= block_rows or (last and n_pending):
            block = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
            pending, n_pending = [], 0
            X = np.column_stack([block.column(name).to_numpy() for name in names])
            del block
            yield start, X
            start += len(X)


class _Moments:
    """Weighted means and scatter of the rows of a matrix, merged block by block (Chan et al.).

    One block gives exactly :func:`hepsel.stats.performance.correlation_matrix`
    of that block.
    """

    def __init__(self) -> None:
        self.blocks = 0
        self.first: tuple[np.ndarray, np.ndarray] | None = None
        self.w = 0.0
        self.mean: np.ndarray | None = None
        self.scatter: np.ndarray | None = None

    def add(self, X: np.ndarray, weight: np.ndarray) -> None:
        if len(X) == 0:
            return
        self.blocks += 1
        if self.blocks == 1:
            self.first = (X.copy(), weight.copy())
            return
        if self.first is not None:
            self._merge(*self.first)
            self.first = None
        self._merge(X, weight)

    def _merge(self, X: np.ndarray, weight: np.ndarray) -> None:
        w = np.abs(np.asarray(weight, dtype=np.float64))
        wb = float(w.sum())
        mean_b = np.average(X, axis=0, weights=w)
        d = X - mean_b
        scatter_b = (d * w[:, None]).T @ d
        if self.mean is None or self.scatter is None:
            self.w, self.mean, self.scatter = wb, mean_b, scatter_b
            return
        total = self.w + wb
        delta = mean_b - self.mean
        self.scatter = self.scatter + scatter_b + np.outer(delta, delta) * (self.w * wb / total)
        self.mean = self.mean + delta * (wb / total)
        self.w = total

    def correlation(self, n_features: int) -> np.ndarray:
        """Weighted Pearson correlation matrix of everything added."""
        from ..stats.performance import correlation_matrix

        if self.first is not None:
            return correlation_matrix(*self.first)
        if self.scatter is None:
            return correlation_matrix(np.zeros((0, n_features)), np.zeros(0))
        sd = np.sqrt(np.diag(self.scatter))
        with np.errstate(invalid="ignore", divide="ignore"):
            c = self.scatter / np.outer(sd, sd)
        return np.asarray(np.nan_to_num(c), dtype=np.float64)


def score_models(
    cfg: AnalysisConfig,
    ds: Dataset,
    models: Sequence[str],
    layout: Layout,
    blocks: Iterable[tuple[int, np.ndarray]],
    *,
    correlations: dict[str, Any] | None = None,
    raw: bool = True,
) -> dict[str, CrossScores]:
    """Cross-scores of several models from one pass over the feature blocks.

    Each block ``(start, X)`` holds the features of the rows
    ``start:start + len(X)`` of ``ds`` (whose own feature columns are not
    needed). Every fold model (and uncertainty replica) is loaded once and
    scores the block's rows of its fold, so the result equals scoring all
    rows at once while only one block of features is held. With
    ``correlations`` (a dict), its ``"signal"`` and ``"background"`` entries
    are set to the weighted feature correlation matrices of the
    class-representative candidates of each class. ``raw=False`` skips the
    raw outputs (``test_raw`` stays NaN).
    """
    from ..exceptions import ConfigError
    from ..train.kfold import replica_prefix

    n, k_folds = len(ds), cfg.folds.k
    fold, truth, label = ds.fold, ds.truth, ds.columns["label"]
    run, event = ds.columns["runNumber"], ds.columns["eventNumber"]
    out: dict[str, CrossScores] = {}
    fitted: dict[str, list[Any]] = {}
    validation: dict[str, list[tuple[float, int] | None]] = {}
    replicas: dict[str, list[list[Any]]] = {}
    for model in models:
        kind = model_kind(cfg, model)
        fitted[model] = [load_classifier(kind, layout.model(model, k)) for k in range(k_folds)]
        validation[model] = [_validation_split(layout.model_info(model, k)) for k in range(k_folds)]
        unc = cfg.models[model].uncertainty
        nan = np.full(n, np.nan)
        if unc is None:
            out[model] = CrossScores(nan, nan.copy(), test_raw=nan.copy())
            continue
        out[model] = CrossScores(
            nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), test_raw=nan.copy()
        )
        tags: list[int | str] = [*range(unc.replicas), *(["check"] if unc.calibration else [])]
        replicas[model] = []
        for k in range(k_folds):
            fold_replicas = []
            for tag in tags:
                prefix = replica_prefix(layout.model(model, k), tag)
                if not any(prefix.parent.glob(prefix.name + ".*")):
                    msg = (
                        f"models.{model}.uncertainty: replica {tag} of fold {k} not found at {prefix}; "
                        "train the model again (hepsel train) after adding or changing 'uncertainty'"
                    )
                    raise ConfigError(msg)
                fold_replicas.append(load_classifier(kind, prefix))
            replicas[model].append(fold_replicas)
    moments = {"signal": _Moments(), "background": _Moments()}
    n_features = len(ds.feature_names)
    for start, X in blocks:
        rows = slice(start, start + len(X))
        f, t = fold[rows], truth[rows]
        if correlations is not None:
            w = ds.weight[rows]
            for cls, code in (("signal", 1), ("background", 0)):
                sel = t & (label[rows] == code)
                moments[cls].add(X[sel], w[sel])
        for model in models:
            cs = out[model]
            test, test_raw, train = cs.test[rows], cs.ranking[rows], cs.train[rows]
            for k in range(k_folds):
                clf = fitted[model][k]
                in_fold = f == k
                if in_fold.any():
                    Xk = X[in_fold]
                    test[in_fold] = clf.predict_proba(Xk)[:, 1]
                    if raw:
                        test_raw[in_fold] = clf.decision_function(Xk)
                    if model in replicas:
                        _replica_block(
                            cfg,
                            model,
                            cs,
                            rows,
                            in_fold,
                            [r.predict_proba(Xk)[:, 1] for r in replicas[model][k]],
                        )
                # candidates of the previous fold were in this model's training set ...
                seen = (f == (k - 1) % k_folds) & t
                # ... except the events it held out for early stopping
                split = validation[model][k]
                if split is not None:
                    seen &= ~_event_validation_mask(run[rows], event[rows], *split)
                if seen.any():
                    train[seen] = clf.predict_proba(X[seen])[:, 1]
    if correlations is not None:
        correlations.update({cls: m.correlation(n_features) for cls, m in moments.items()})
    return out


def _replica_block(
    cfg: AnalysisConfig,
    model: str,
    cs: CrossScores,
    rows: slice,
    in_fold: np.ndarray,
    scores: list[np.ndarray],
) -> None:
    """Fill the replica figures of ``cs`` for the rows ``rows`` of one block that are in one fold."""
    from ..stats.uncertainty import replica_spread

    unc = cfg.models[model].uncertainty
    assert (
        unc is not None
        and cs.err is not None
        and cs.replica_mean is not None
        and cs.check is not None
    )
    mean, err = replica_spread(np.asarray(scores[: unc.replicas]))
    cs.replica_mean[rows][in_fold], cs.err[rows][in_fold] = mean, err
    if unc.calibration:
        cs.check[rows][in_fold] = scores[-1]


def replica_scores(
    cfg: AnalysisConfig, ds: Dataset, model: str, layout: Layout
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(err, replica_mean, check)`` of every candidate from the saved uncertainty replicas of ``model``.

    Each candidate is scored by the replicas of the fold that did not see it;
    ``check`` is the calibration replica's score (NaN without one).

    Raises
    ------
    ConfigError
        If ``model`` has no ``uncertainty`` block, or its replica files are
        missing (train again).
    """
    from ..exceptions import ConfigError

    if cfg.models[model].uncertainty is None:
        msg = f"models.{model} has no 'uncertainty' block; add 'uncertainty: {{replicas: 3}}' and train again"
        raise ConfigError(msg)
    if all(f in ds.columns for f in ds.feature_names):
        blocks: Iterable[tuple[int, np.ndarray]] = [(0, ds.X)]
    else:
        blocks = feature_blocks(layout.dataset, ds.feature_names)
    cs = score_models(cfg, ds, [model], layout, blocks, raw=False)[model]
    assert cs.err is not None and cs.replica_mean is not None and cs.check is not None
    return cs.err, cs.replica_mean, cs.check


def _validation_split(info_path: Any) -> tuple[float, int] | None:
    """``(fraction, seed)`` of the events a fold model held out for early stopping, from its training record."""
    from ..io.storage import read_json

    p = Path(info_path)
    val = read_json(p).get("validation") if p.is_file() else None
    return (float(val["fraction"]), int(val["seed"])) if val else None


def _event_validation_mask(
    run: np.ndarray, event: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    from ..train.kfold import event_validation_mask

    return event_validation_mask(run, event, fraction, seed)


def held_out(ds: Dataset, info_path: Any) -> np.ndarray:
    """Candidates a fold model held out of its fit (its early-stopping events), from its training record."""
    from ..io.storage import read_json
    from ..train.kfold import event_validation_mask

    p = Path(info_path)
    val = read_json(p).get("validation") if p.is_file() else None
    if not val:
        return np.zeros(len(ds), dtype=bool)
    c = ds.columns
    return event_validation_mask(
        c["runNumber"], c["eventNumber"], float(val["fraction"]), int(val["seed"])
    )


def one_per_event(ds: Dataset, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of one randomly chosen candidate in ``mask`` per event (sample, run, event).

    Candidates of one event share tracks, so their scores are correlated;
    statistical tests that assume independent entries take one per event.
    """
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return idx
    c = ds.columns
    idx = idx[rng.permutation(len(idx))]
    # a stable sort keeps the permuted order within an event: its first candidate is a random one
    _, order, starts = event_ids(c["sample"][idx], c["runNumber"][idx], c["eventNumber"][idx])
    return np.sort(idx[order[starts]])


def overtraining_sets(
    cfg: AnalysisConfig, ds: Dataset, cs: CrossScores, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of model ``k``'s train (fold k-1, rows it was fitted on) and test (fold k) class-representative candidates."""
    train = (ds.fold == (k - 1) % cfg.folds.k) & ds.truth & np.isfinite(cs.train)
    test = (ds.fold == k) & ds.truth
    return train, test
