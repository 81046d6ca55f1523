"""k-fold cross-training.

The model for fold ``i`` trains on the candidates of every other fold, so
that each candidate is later scored by a model that never saw it. For the
GAN-augmented classifier the WGAN-GP of fold ``i`` is trained on fold ``i``'s
training signal only, and synthetic events only ever enter training.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig, ModelConfig
from ..models import make_classifier
from ..prep.dataset import Dataset, training_weights

__all__ = [
    "TAKES_NEGATIVE_WEIGHTS",
    "event_validation_mask",
    "fit_model",
    "learner_weights",
    "model_seed",
    "replica_prefix",
    "replica_seed",
    "train_fold",
    "train_replicas",
    "training_columns",
    "training_mask",
    "training_rows",
    "validation_fraction",
]

#: torch threads of a model trained by the workflow without ``n_jobs`` in its params
#: (the train rule's ``threads: 1``): the model does not depend on the machine's core count.
TRAIN_THREADS = 1

_TORCH_KINDS = ("mlp", "lipschitz_mlp", "autoencoder")


def model_seed(cfg: AnalysisConfig, model: str, fold: int, extra: int = 0) -> int:
    """A seed derived from the config seed, the model name, the fold (and ``extra``)."""
    return int(
        np.random.SeedSequence([cfg.seed, zlib.crc32(model.encode()), fold, extra]).generate_state(
            1
        )[0]
    )


def replica_seed(cfg: AnalysisConfig, model: str, fold: int, replica: int) -> int:
    """Seed of uncertainty replica ``replica`` of a fold model (``replicas``: the calibration replica).

    Drawn from a longer entropy than :func:`model_seed`, so it never equals a
    nominal or augmentation-study seed.
    """
    entropy = [cfg.seed, zlib.crc32(model.encode()), fold, 0, replica + 1]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def replica_prefix(prefix: str | os.PathLike[str], replica: int | str) -> Path:
    """Files of a replica next to the fold model: ``fold<k>_replica<r>`` (or ``fold<k>_check``)."""
    p = Path(prefix)
    tag = replica if isinstance(replica, str) else f"replica{replica}"
    return p.with_name(f"{p.name}_{tag}")


def _bootstrap_rows(events: tuple[np.ndarray, np.ndarray], seed: int) -> np.ndarray:
    """Poisson(1) count of each row's event (all candidates of an event share it)."""
    keys = np.column_stack(
        [np.asarray(events[0], dtype=np.int64), np.asarray(events[1], dtype=np.int64)]
    )
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.random.default_rng(seed).poisson(
        1.0, size=int(inverse.max()) + 1 if len(inverse) else 0
    )
    return counts[inverse]


def train_replicas(
    cfg: AnalysisConfig,
    model_cfg: ModelConfig,
    model: str,
    fold: int,
    prefix: str | os.PathLike[str],
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    *,
    conditions: np.ndarray | None,
    events: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Train and save the uncertainty replicas (and the calibration replica) of a fold model.

    Each replica repeats :func:`fit_model` on the same training candidates
    with its own :func:`replica_seed`; with ``uncertainty.bootstrap`` each
    also trains on a Poisson(1) bootstrap of whole events (weights times the
    count, events drawn zero times left out).
    """
    unc = model_cfg.uncertainty
    if unc is None:
        return {}
    n = unc.replicas + (1 if unc.calibration else 0)
    records = []
    for r in range(n):
        seed = replica_seed(cfg, model, fold, r)
        Xr, yr, wr, cr, er = X, y, w, conditions, events
        if unc.bootstrap:
            count = _bootstrap_rows(events, seed)
            keep = count > 0
            Xr, yr, wr = X[keep], y[keep], w[keep] * count[keep]
            cr = None if conditions is None else conditions[keep]
            er = (events[0][keep], events[1][keep])
        clf, _, info = fit_model(
            cfg, model_cfg, Xr, yr, wr, seed=seed, conditions=cr, events=er, progress=False
        )
        tag: int | str = r if r < unc.replicas else "check"
        clf.save(replica_prefix(prefix, tag))
        records.append(
            {"replica": tag, "seed": seed, "seconds": info["seconds"], "n_train": info["n_train"]}
        )
    return {
        "replicas": unc.replicas,
        "bootstrap": unc.bootstrap,
        "calibration": unc.calibration,
        "fits": records,
        "seconds": float(sum(r["seconds"] for r in records)),
    }


def training_mask(ds: Dataset, fold: int) -> np.ndarray:
    """Candidates fold ``fold``'s model trains on: other folds, class-representative only."""
    return (ds.fold != fold) & ds.truth


def training_rows(fold: int) -> Any:
    """The pyarrow filter expression of :func:`training_mask` (for reading only those rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return (pc.field("fold") != fold) & pc.field("truth").cast(pa.bool_())


def training_columns(cfg: AnalysisConfig, model: str, *, features: bool = True) -> list[str]:
    """The data-set columns training ``model`` reads: its features (unless ``features=False``) and bookkeeping.

    Bookkeeping: label, weight, fold, truth, the event numbers (the
    validation split) and the model's ``condition_on`` and ``decorrelate``
    spectator columns.
    """
    mcfg = cfg.models[model]
    cols = [
        *(cfg.feature_names if features else []),
        "label",
        "weight",
        "fold",
        "truth",
        "runNumber",
        "eventNumber",
    ]
    for extra in (mcfg.condition_on, mcfg.decorrelate.spectator if mcfg.decorrelate else None):
        if extra is not None and extra not in cols:
            cols.append(extra)
    return cols


def _rows_features(ds: Dataset, idx: np.ndarray | None, dtype: Any = np.float32) -> np.ndarray:
    """Feature matrix of rows ``idx`` of ``ds`` (all rows if ``None``), filled one column at a time."""
    n = len(ds) if idx is None else len(idx)
    X = np.empty((n, len(ds.feature_names)), dtype=dtype)
    for j, name in enumerate(ds.feature_names):
        X[:, j] = ds.columns[name] if idx is None else ds.columns[name][idx]
    return X


def _gan_bounds(cfg: AnalysisConfig) -> list[tuple[float | None, float | None]]:
    bounds: list[tuple[float | None, float | None]] = []
    for f in cfg.features:
        bounds.append((f.range[0], f.range[1]) if f.range is not None else (None, None))
    return bounds


#: Learners that train on negative weights as they are (the others need them made positive; an
#: autoencoder's weighted reconstruction error would be unbounded below with negative weights).
TAKES_NEGATIVE_WEIGHTS = frozenset({"mlp", "lipschitz_mlp", "fisher"})


def learner_weights(
    cfg: AnalysisConfig, learner: str, X: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """The weights ``learner`` trains on, under ``training.negative_weights``.

    With ``keep`` a learner outside :data:`TAKES_NEGATIVE_WEIGHTS` (``bdt``,
    ``bbdt``, ``autoencoder``, ``gan``) gets its negative weights made positive by cell resampling
    within each class; with ``resample`` every learner does. Returns the
    weights and a record of the resampling (``None`` when nothing changed):
    cells formed and the residual of every weighted feature distribution.
    """
    from .negative_weights import cell_resample, weight_residuals

    policy = cfg.training.negative_weights
    if not (w < 0).any() or policy not in ("keep", "resample"):
        return w, None
    if policy == "keep" and learner in TAKES_NEGATIVE_WEIGHTS:
        return w, None
    out = w.copy()
    record: dict[str, Any] = {"learner": learner, "policy": policy}
    for cls, name in ((1, "signal"), (0, "background")):
        m = y == cls
        if not (w[m] < 0).any():
            continue
        r = cell_resample(X[m], w[m], where=f"the {name} training candidates")
        out[m] = r.weights
        record[name] = {
            **r.info(),
            "residuals": weight_residuals(X[m], w[m], r.weights, cfg.feature_names),
        }
    return out, record


def fit_model(
    cfg: AnalysisConfig,
    model_cfg: ModelConfig,
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    *,
    seed: int,
    conditions: np.ndarray | None = None,
    events: tuple[np.ndarray, np.ndarray] | None = None,
    spectator: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[Any, Any, dict[str, Any]]:
    """Fit one classifier (and its GAN for ``gan_augmented``).

    ``events`` (run and event numbers of the rows) makes the early-stopping
    validation split whole events, chosen by :func:`event_validation_mask`;
    without it the classifier splits rows at random. ``spectator`` is the
    column of the rows named by ``model_cfg.decorrelate`` (required with it).
    ``model_cfg.monotone`` becomes the estimator's ``monotone_constraints``.

    Returns ``(classifier, gan_or_None, info)``.
    """
    info: dict[str, Any] = {
        "n_train": len(y),
        "n_signal": int((y == 1).sum()),
        "n_background": int((y == 0).sum()),
    }
    info["n_negative_weights"] = int((w < 0).sum())
    t0 = time.perf_counter()
    gan = None
    kind: str = model_cfg.base if model_cfg.type == "gan_augmented" else model_cfg.type
    w, record = learner_weights(cfg, kind, X, y, w)
    if record is not None:
        info["negative_weights"] = record
    synthetic = None
    if model_cfg.type == "gan_augmented":
        from ..models.gan import WGANGP

        sig = y == 1
        w_gan, gan_record = learner_weights(cfg, "gan", X[sig], y[sig], w[sig])
        if gan_record is not None:
            info["negative_weights_gan"] = gan_record
        gan_params = dict(model_cfg.gan)
        gan_params.setdefault("n_jobs", TRAIN_THREADS)
        gan_params.setdefault("bounds", _gan_bounds(cfg))
        gan_params.setdefault("verbose", progress)
        cond_sig = None
        if conditions is not None:
            # categories of the signal the GAN learns (background codes are irrelevant to it)
            cats = np.unique(conditions[sig])
            gan_params.setdefault("n_conditions", len(cats))
            cond_sig = np.searchsorted(cats, conditions[sig])
            info["condition_categories"] = cats.tolist()
        gan = WGANGP(**gan_params, random_state=seed)
        # the GAN learns the *weighted* signal distribution (minibatches drawn by weight) ...
        gan.fit(X[sig], conditions=cond_sig, sample_weight=w_gan)
        n_syn = round(model_cfg.synthetic_ratio * sig.sum())
        rng = np.random.default_rng(seed + 1)
        cond_syn = None
        if cond_sig is not None:
            # ... so conditions are drawn by weight too, and every synthetic event gets the mean weight
            p = w_gan / w_gan.sum()
            cond_syn = rng.choice(cond_sig, size=n_syn, replace=True, p=p)
        X_syn = gan.sample(n_syn, conditions=cond_syn, random_state=seed + 2)
        w_syn = np.full(n_syn, model_cfg.synthetic_weight * float(np.mean(w_gan)))
        X = np.concatenate([X, X_syn])
        y = np.concatenate([y, np.ones(n_syn, dtype=y.dtype)])
        w = np.concatenate([w, w_syn])
        synthetic = np.concatenate([np.zeros(len(sig), dtype=bool), np.ones(n_syn, dtype=bool)])
        if cfg.training.balance_classes:
            # the synthetic events joined the signal: give the classes equal total weight again
            w = training_weights(w, y, negative="keep", balance=True)
        info.update(n_synthetic=n_syn, gan_seconds=time.perf_counter() - t0)
    params = dict(model_cfg.params)
    if kind in _TORCH_KINDS:
        # torch splits sums over its intra-op threads, in an order that depends on their number
        # (the DisCo penalty's 512 x 512 matrices, say): a fixed count makes the model the same on
        # every machine; a configured n_jobs is kept (the same n_jobs then gives the same model)
        params.setdefault("n_jobs", TRAIN_THREADS)
    if kind == "bbdt":
        # the bonsai BDT picks its columns by name
        params["feature_names"] = list(cfg.feature_names)
    if model_cfg.monotone:
        params["monotone_constraints"] = [
            int(model_cfg.monotone.get(f, 0)) for f in cfg.feature_names
        ]
    fit_kw: dict[str, Any] = {}
    if model_cfg.decorrelate is not None:
        if spectator is None:
            msg = f"the model decorrelates from {model_cfg.decorrelate.spectator!r}: pass that column as spectator="
            raise ValueError(msg)
        params["decorrelation_strength"] = float(model_cfg.decorrelate.strength)
        fit_kw["decorrelate_with"] = np.asarray(spectator, dtype=np.float64)
        info["decorrelate"] = model_cfg.decorrelate.model_dump()
    clf = make_classifier(kind, params, random_state=seed)
    if progress and kind in ("mlp", "lipschitz_mlp", "bdt", "bbdt", "autoencoder"):
        clf.verbose = True
    if synthetic is not None:
        # early stopping and input scaling see real events only
        fit_kw["synthetic"] = synthetic
    fraction = validation_fraction(clf)
    if events is not None and fraction > 0:
        # whole events go to the validation split, chosen by event number: the
        # evaluation can tell which candidates the model was fitted on
        val = event_validation_mask(events[0], events[1], fraction, seed)
        if synthetic is not None:
            val = np.concatenate([val, np.zeros(int(synthetic.sum()), dtype=bool)])
        fit_kw["validation"] = val
        info["validation"] = {"fraction": fraction, "seed": seed, "n_validation": int(val.sum())}
    clf.fit(X, y, sample_weight=w, **fit_kw)
    info["seconds"] = time.perf_counter() - t0
    return clf, gan, info


def validation_fraction(clf: Any) -> float:
    """Fraction of the training events a classifier holds out for early stopping (0: none)."""
    if getattr(clf, "early_stopping_rounds", 1) == 0:
        return 0.0
    return float(getattr(clf, "validation_fraction", 0.0) or 0.0)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fast, well-mixed 64-bit hash (splitmix64's finaliser), vectorised."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def event_validation_mask(
    run: np.ndarray, event: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """Candidates whose event falls in the validation split: a hash of (run, event, seed) below ``fraction``.

    All candidates of an event share the decision, and it can be recomputed
    from the event numbers and the seed alone.
    """
    with np.errstate(over="ignore"):
        h = _splitmix64(
            np.asarray(event).astype(np.int64).view(np.uint64)
            ^ _splitmix64(
                np.asarray(run).astype(np.int64).view(np.uint64) + np.uint64(seed % 2**63)
            )
        )
    u = (h >> np.uint64(11)).astype(np.float64) / float(2**53)
    return u < fraction


def train_fold(
    cfg: AnalysisConfig,
    ds: Dataset,
    model: str,
    fold: int,
    prefix: str | os.PathLike[str],
    *,
    progress: bool = True,
    n_real_signal: int | None = None,
    seed_extra: int = 0,
    X: np.ndarray | None = None,
) -> dict[str, Any]:
    """Train model ``model`` for fold ``fold`` and save it under ``prefix``.

    ``n_real_signal`` (for the augmentation study) keeps only a seeded random
    subset of that many signal training candidates.

    ``ds`` may hold only some rows (e.g. the training rows, read with
    :func:`training_rows`) and some columns (:func:`training_columns`);
    ``X`` gives the features of its rows when it holds no feature columns
    (:func:`train_fold_file`). Features are trained on as float32.
    """
    model_cfg = cfg.models[model]
    if not 0 <= fold < cfg.folds.k:
        msg = f"fold {fold} out of range for folds.k = {cfg.folds.k}"
        raise ValueError(msg)
    seed = model_seed(cfg, model, fold, seed_extra)
    mask = training_mask(ds, fold)
    idx = np.flatnonzero(mask)
    y_all = ds.y
    if n_real_signal is not None:
        sig_idx = idx[y_all[idx] == 1]
        if n_real_signal < len(sig_idx):
            rng = np.random.default_rng(seed)
            sig_idx = np.sort(rng.choice(sig_idx, size=n_real_signal, replace=False))
        idx = np.sort(np.concatenate([sig_idx, idx[y_all[idx] == 0]]))
    # None: ds holds just the training rows (train_fold_file), taken as they are, without copies
    take = None if len(idx) == len(ds) else idx
    del mask, idx

    def rows(a: np.ndarray) -> np.ndarray:
        return a if take is None else a[take]

    X = rows(X) if X is not None else _rows_features(ds, take)
    y = rows(y_all)
    del y_all
    w = training_weights(
        rows(ds.weight),
        y,
        negative=cfg.training.negative_weights,
        balance=cfg.training.balance_classes,
    )
    cond = rows(ds.columns[model_cfg.condition_on]) if model_cfg.condition_on else None
    events = (rows(ds.columns["runNumber"]), rows(ds.columns["eventNumber"]))
    spec = rows(ds.columns[model_cfg.decorrelate.spectator]) if model_cfg.decorrelate else None
    clf, gan, info = fit_model(
        cfg,
        model_cfg,
        X,
        y,
        w,
        seed=seed,
        conditions=cond,
        events=events,
        spectator=spec,
        progress=progress,
    )
    p = Path(prefix)
    p.parent.mkdir(parents=True, exist_ok=True)
    if seed_extra == 0 and n_real_signal is None:
        # replicas of an earlier configuration must not be scored with this model
        for old in [*p.parent.glob(f"{p.name}_replica*"), *p.parent.glob(f"{p.name}_check.*")]:
            old.unlink()
    clf.save(p)
    if gan is not None:
        gan.save(p.with_name(p.name + "_gan"))
    info.update(model=model, fold=fold, seed=seed, kind=model_cfg.type)
    if model_cfg.uncertainty is not None and seed_extra == 0 and n_real_signal is None:
        info["uncertainty"] = train_replicas(
            cfg, model_cfg, model, fold, p, X, y, w, conditions=cond, events=events
        )
    return info
