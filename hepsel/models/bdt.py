"""Gradient-boosted decision trees (xgboost) with scikit-learn's estimator contract."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._xgboost import BOOSTING_PARAMS, BoostingEstimator, Mask

__all__ = ["BDTClassifier"]


@dataclass(kw_only=True, eq=False, repr=False)
class BDTClassifier(BoostingEstimator):
    """A boosted decision tree classifier trained with xgboost.

    Early stopping monitors the weighted log-loss on a seeded random
    validation split carved out of the training data passed to :meth:`fit`.

    Parameters
    ----------
    monotone_constraints
        One value per feature, in feature order: 1 (margin non-decreasing in
        that feature), -1 (non-increasing) or 0 (free); xgboost's
        ``monotone_constraints``. In an analysis set from
        ``models.<name>.monotone``.
    n_estimators, max_depth, ...
        The boosting parameters of
        :class:`~hepsel.models._xgboost.BoostingEstimator`: ``n_estimators``
        (400), ``max_depth`` (4), ``learning_rate`` (0.1), ``subsample``
        (0.8), ``colsample_bytree`` (1.0), ``min_child_weight`` (1.0),
        ``reg_lambda`` (1.0), ``early_stopping_rounds`` (20; 0 disables early
        stopping), ``validation_fraction`` (0.2), ``tree_method`` ("hist"),
        ``device`` ("cpu"), ``n_jobs`` (None: all cores), ``random_state``
        (seeds the validation split and xgboost's subsampling) and
        ``verbose`` (a progress bar over boosting rounds).
    """

    _params = (*BOOSTING_PARAMS, "monotone_constraints")
    _fitted = "booster_"

    monotone_constraints: list[int] | None = None

    def _xgb_params(self, seed: int, n_features: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "tree_method": self.tree_method,
            "device": self.device,
            "nthread": self.n_jobs or os.cpu_count() or 1,
            "seed": seed,
        }
        if self.monotone_constraints is not None:
            mono = [int(m) for m in self.monotone_constraints]
            if len(mono) != n_features or any(m not in (-1, 0, 1) for m in mono):
                msg = f"monotone_constraints must hold {n_features} values in (-1, 0, 1), one per feature; got {mono}"
                raise ValueError(msg)
            params["monotone_constraints"] = "(" + ",".join(map(str, mono)) + ")"
        return params

    def _fit(
        self, X: np.ndarray, y: np.ndarray, w: np.ndarray, synthetic: Mask, validation: Mask
    ) -> BDTClassifier:
        X = np.asarray(X, dtype=np.float32)
        rng = np.random.default_rng(self.random_state)
        seed = int(rng.integers(2**31 - 1))
        evals = []
        self.n_validation_ = 0
        if self.early_stopping_rounds and self.validation_fraction > 0:
            val = rng.random(len(y)) < self.validation_fraction
            if validation is not None:
                val = np.asarray(validation, dtype=bool)
                self._check_validation(val, len(y))
            if synthetic is not None:
                val = val & ~np.asarray(synthetic, dtype=bool)
            self.n_validation_ = int(val.sum())
            # quantised (hist) matrices: about one byte per value instead of a float copy
            dtrain = self._quantile_matrix(X[~val], y[~val], w[~val])
            dval = self._quantile_matrix(X[val], y[val], w[val], ref=dtrain)
            evals = [(dtrain, "train"), (dval, "validation")]
        else:
            dtrain = self._quantile_matrix(X, y, w)
        return self._boost(dtrain, evals, seed, X.shape[1])

    def _quantile_matrix(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, ref: Any = None) -> Any:
        """An in-memory :class:`xgboost.QuantileDMatrix` (a plain DMatrix for a tree method other than hist)."""
        import xgboost as xgb

        if self.tree_method != "hist":
            return xgb.DMatrix(X, label=y, weight=w, nthread=self.n_jobs or -1)
        return xgb.QuantileDMatrix(X, label=y, weight=w, ref=ref, nthread=self.n_jobs or -1)

    def fit_batches(
        self, batches: Any, n_features: int, *, cache_prefix: str | os.PathLike[str]
    ) -> BDTClassifier:
        """Train from data in external memory: xgboost's :class:`~xgboost.ExtMemQuantileDMatrix`.

        ``batches(part)`` returns a fresh iterator over ``(X, y, w)`` batches
        of the training (``part="train"``) or early-stopping validation rows
        (``part="validation"``; empty without early stopping); it is called
        again on every pass xgboost makes. The quantised pages are cached in
        files beginning with ``cache_prefix`` (removed at the end). The
        booster's seed is drawn as in :meth:`fit`.
        """
        import xgboost as xgb

        rng = np.random.default_rng(self.random_state)
        seed = int(rng.integers(2**31 - 1))
        use_val = bool(self.early_stopping_rounds and self.validation_fraction > 0)
        prefix = Path(cache_prefix)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        matrices: list[Any] = []
        try:
            dtrain = xgb.ExtMemQuantileDMatrix(
                _BatchIter(batches, "train", str(prefix) + "-train"), nthread=self.n_jobs or -1
            )
            matrices.append(dtrain)
            self.n_validation_ = 0
            if use_val:
                it = _BatchIter(batches, "validation", str(prefix) + "-validation")
                matrices.append(
                    xgb.ExtMemQuantileDMatrix(it, ref=dtrain, nthread=self.n_jobs or -1)
                )
                self.n_validation_ = int(matrices[1].num_row())
            del dtrain
            evals = list(zip(matrices, ["train", "validation"], strict=False)) if use_val else []
            self._boost(matrices[0], evals, seed, n_features)
            del evals
        finally:
            # the matrices are freed before their cache files go
            matrices.clear()
            gc.collect()
            for f in prefix.parent.glob(prefix.name + "-*"):
                f.unlink(missing_ok=True)
        return self

    def _boost(self, dtrain: Any, evals: list[Any], seed: int, n_features: int) -> BDTClassifier:
        import xgboost as xgb

        history: dict[str, Any] = {}
        callbacks = [_progress_callback(self.n_estimators)] if self.verbose else None
        self.booster_ = xgb.train(
            self._xgb_params(seed, n_features),
            dtrain,
            num_boost_round=self.n_estimators,
            evals=evals,
            early_stopping_rounds=self.early_stopping_rounds if evals else None,
            evals_result=history,
            verbose_eval=False,
            callbacks=callbacks,
        )
        self.best_iteration_ = int(getattr(self.booster_, "best_iteration", self.n_estimators - 1))
        if not evals:
            self.best_iteration_ = self.n_estimators - 1
        self.n_features_in_ = n_features
        self.history_ = {
            k: {m: list(map(float, v)) for m, v in d.items()} for k, d in history.items()
        }
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Margin (log-odds) output, shape (n,)."""
        self._check_fitted()
        # inplace_predict skips building a DMatrix: the fastest CPU path
        out = self.booster_.inplace_predict(
            np.ascontiguousarray(X, dtype=np.float32),
            iteration_range=(0, self.best_iteration_ + 1),
            predict_type="margin",
        )
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n, 2)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def shap_values(self, X: np.ndarray) -> tuple[np.ndarray, float]:
        """Exact TreeSHAP contributions on the margin, and the base value.

        Uses xgboost's native ``pred_contribs``: per row, the contributions plus
        the base value sum to :meth:`decision_function`.
        """
        import xgboost as xgb

        self._check_fitted()
        d = xgb.DMatrix(np.asarray(X, dtype=np.float32))
        contrib = self.booster_.predict(
            d, pred_contribs=True, iteration_range=(0, self.best_iteration_ + 1)
        )
        return np.asarray(contrib[:, :-1], dtype=np.float64), float(contrib[0, -1]) if len(
            contrib
        ) else 0.0

    # -- persistence: xgboost's JSON model format plus plain JSON metadata --------
    def save(self, prefix: str | os.PathLike[str]) -> list[Path]:
        """Write ``<prefix>.xgb.json`` (the booster) and ``<prefix>.json`` (metadata)."""
        from ..io.storage import atomic_path, write_json

        self._check_fitted()
        model_path = self._file(prefix, ".xgb.json")
        with atomic_path(model_path, suffix=".json") as tmp:
            self.booster_.save_model(str(tmp))
        meta = {
            "kind": "bdt",
            "params": self.get_params(),
            "best_iteration": self.best_iteration_,
            "n_features": self.n_features_in_,
            "history": self.history_,
        }
        return [model_path, write_json(self._file(prefix, ".json"), meta)]

    @classmethod
    def load(cls, prefix: str | os.PathLike[str]) -> BDTClassifier:
        """Inverse of :meth:`save` (no pickle: xgboost JSON + JSON)."""
        import xgboost as xgb

        model_path = cls._file(prefix, ".xgb.json")
        meta = cls._read_metadata((cls._file(prefix, ".json"), model_path), "BDT")
        obj = cls._from_metadata(meta)
        obj.booster_ = xgb.Booster()
        obj.booster_.load_model(str(model_path))
        obj.best_iteration_ = int(meta["best_iteration"])
        obj.n_features_in_ = int(meta["n_features"])
        obj.history_ = meta.get("history", {})
        return obj


def _BatchIter(batches: Any, part: str, cache_prefix: str) -> Any:
    """An :class:`xgboost.DataIter` over ``batches(part)``, caching its pages under ``cache_prefix``."""
    import xgboost as xgb

    class _Iter(xgb.DataIter):
        def __init__(self) -> None:
            self._it: Any = None
            super().__init__(cache_prefix=cache_prefix, release_data=True)

        def next(self, input_data: Any) -> bool:
            if self._it is None:
                self._it = iter(batches(part))
            for X, y, w in self._it:
                if len(y):
                    input_data(data=np.ascontiguousarray(X, dtype=np.float32), label=y, weight=w)
                    return True
            return False

        def reset(self) -> None:
            self._it = None

    return _Iter()


def _progress_callback(total: int) -> Any:
    """An xgboost callback drawing a tqdm bar over boosting rounds (on a terminal only)."""
    import xgboost as xgb
    from tqdm.auto import tqdm

    class _Progress(xgb.callback.TrainingCallback):
        def before_training(self, model: Any) -> Any:
            self.bar = tqdm(total=total, desc="BDT", unit="tree", mininterval=1.0, disable=None)
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            self.bar.update(1)
            return False

        def after_training(self, model: Any) -> Any:
            self.bar.close()
            return model

    return _Progress()
