"""A trained selection for analysts: preselection + features + fold models + working points.

>>> import hepsel
>>> sel = hepsel.Selection.load("results/topo2body/selection")  # doctest: +SKIP
>>> scores = sel.score("my_ntuple.root")  # per candidate         # doctest: +SKIP
>>> keep = sel.passes("my_ntuple.root", rate_khz=660)            # doctest: +SKIP

Saved as plain JSON plus each model's own no-pickle format (xgboost JSON,
torch ``state_dict`` loaded with ``weights_only=True``, a bonsai BDT's table
as ``.npy`` loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from .cuts import CutSequence
from .exceptions import ConfigError, ModelFileError, NonFiniteError
from .features import FeatureSet
from .models import load_classifier
from .storage import atomic_path, read_json, write_json

__all__ = ["Selection"]

_FORMAT = "hepsel-selection"


class Selection:
    """A trained selection.

    Parameters
    ----------
    preselection
        ``(name, expression)`` cuts applied before scoring.
    features
        The feature definitions the models were trained on.
    models
        Model name -> ``{"kind": ..., "folds": [fitted classifier per fold]}``.
    working_points
        Model name -> {target-rate key (kHz, e.g. ``"660"``) -> score threshold}.
    fold_branch
        Branch whose value modulo the number of folds picks the fold model
        (the one that did not train on the event); if absent from the input,
        the fold models' scores are averaged.
    default_model
        Model used when none is named.
    """

    def __init__(
        self,
        *,
        preselection: Sequence[tuple[str, str]],
        features: FeatureSet,
        models: Mapping[str, Mapping[str, Any]],
        working_points: Mapping[str, Mapping[str, float]],
        fold_branch: str | None = "eventNumber",
        default_model: str | None = None,
        tree: str = "DecayTree",
    ) -> None:
        self.preselection = [cast("tuple[str, str]", tuple(c)) for c in preselection]
        self.features = features
        self.models = dict(models)
        self.working_points = {m: dict(v) for m, v in working_points.items()}
        self.fold_branch = fold_branch
        self.default_model = default_model or next(iter(self.models))
        self.tree = tree
        self._cuts = CutSequence(self.preselection, aliases=features.aliases, where="selection preselection")

    # -- inputs ---------------------------------------------------------------
    @property
    def branches(self) -> list[str]:
        """Branches read from an input file."""
        b = set(self.features.branches) | set(self._cuts.branches)
        return sorted(b)

    def _arrays(self, source: Any, tree: str | None) -> Mapping[str, Any]:
        if isinstance(source, (str, os.PathLike)):
            from .reading import check_branches, open_tree

            t = tree or self.tree
            ttree = open_tree(source, t)
            wanted = self.branches
            if self.fold_branch and self.fold_branch in ttree.keys():
                wanted = sorted({*wanted, self.fold_branch})
            check_branches(ttree, {b: ["the selection"] for b in self.branches}, path=str(source), tree=t)
            from .reading import is_jagged

            return ttree.arrays(wanted, library="ak" if is_jagged(ttree, wanted) else "np")
        return source

    def _len(self, arrays: Mapping[str, Any]) -> int:
        if hasattr(arrays, "fields"):
            return len(arrays)
        return len(next(iter(arrays.values())))

    def _has(self, arrays: Mapping[str, Any], name: str) -> bool:
        return name in (arrays.fields if hasattr(arrays, "fields") else arrays)

    # -- API --------------------------------------------------------------------
    def preselect(self, source: Any, *, tree: str | None = None) -> np.ndarray:
        """Boolean mask of entries passing the preselection."""
        arrays = self._arrays(source, tree)
        n = self._len(arrays)
        return self._cuts.mask(arrays, np.ones(n))

    def score(self, source: Any, *, model: str | None = None, tree: str | None = None) -> np.ndarray:
        """Classifier score of each entry, shape (n,); NaN where the preselection rejects the entry.

        ``source`` is a ROOT file path or a mapping / awkward record array of
        branches. Features are computed for preselected entries only, so values
        that are not finite on rejected entries (``log(0)``, say) do no harm.

        Raises
        ------
        NonFiniteError
            If a feature is NaN or infinite for an entry that passes the preselection.
        """
        name = self._model_name(model)
        arrays = self._arrays(source, tree)
        return self._score(arrays, name, self.preselect(arrays))

    def _model_name(self, model: str | None) -> str:
        name = model or self.default_model
        if name not in self.models:
            msg = f"unknown model {name!r}; this selection has {sorted(self.models)}"
            raise KeyError(msg)
        return name

    def _score(self, arrays: Mapping[str, Any], name: str, keep: np.ndarray) -> np.ndarray:
        out = np.full(len(keep), np.nan)
        if not keep.any():
            return out
        sub = _subset(arrays, keep)
        X = self.features.matrix(sub)
        bad = ~np.isfinite(X)
        if bad.any():
            counts = ", ".join(
                f"{f!r}: {int(c)}" for f, c in zip(self.features.names, bad.sum(axis=0), strict=True) if c
            )
            msg = (
                f"non-finite feature values (NaN/inf) for entries that pass the preselection: {counts}; "
                "the models were trained without such values: tighten the preselection or fix the input"
            )
            raise NonFiniteError(msg)
        folds = self.models[name]["folds"]
        k = len(folds)
        if self.fold_branch and self._has(sub, self.fold_branch):
            fold = np.asarray(sub[self.fold_branch], dtype=np.int64) % k
            scores = np.empty(len(X))
            for i, clf in enumerate(folds):
                m = fold == i
                if m.any():
                    scores[m] = clf.predict_proba(X[m])[:, 1]
        else:
            scores = np.mean([clf.predict_proba(X)[:, 1] for clf in folds], axis=0)
        out[keep] = scores
        return out

    def threshold(self, *, rate_khz: float | str | None = None, model: str | None = None) -> float:
        """Score threshold of a working point (a target output rate in kHz)."""
        name = model or self.default_model
        wps = self.working_points.get(name, {})
        if not wps:
            msg = f"model {name!r} has no working points"
            raise KeyError(msg)
        key = next(iter(wps)) if rate_khz is None else (rate_khz if isinstance(rate_khz, str) else f"{rate_khz:g}")
        if key not in wps:
            msg = f"no working point at {key} kHz for model {name!r}; available: {sorted(wps)}"
            raise KeyError(msg)
        return float(wps[key])

    def passes(
        self, source: Any, *, rate_khz: float | str | None = None, model: str | None = None, tree: str | None = None
    ) -> np.ndarray:
        """Entries passing the preselection and the working point's score cut (``score >= threshold``).

        Entries the preselection rejects never pass and are never scored.
        """
        arrays = self._arrays(source, tree)
        name = self._model_name(model)
        thr = self.threshold(rate_khz=rate_khz, model=name)
        keep = self.preselect(arrays)
        passed = np.zeros(len(keep), dtype=bool)
        passed[keep] = self._score(arrays, name, keep)[keep] >= thr
        return passed

    # -- persistence ----------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str], *, model_files: Mapping[str, Sequence[Path]] | None = None) -> Path:
        """Write ``selection.json`` and the model files into ``directory``.

        ``model_files`` maps model name -> the saved fold prefixes to copy; if
        omitted, each fold model is saved again with its ``save`` method.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        models_meta = {}
        for name, m in self.models.items():
            prefixes = []
            for i, clf in enumerate(m["folds"]):
                prefix = d / "models" / name / f"fold{i}"
                prefix.parent.mkdir(parents=True, exist_ok=True)
                if model_files and name in model_files:
                    src = Path(model_files[name][i])
                    for f in src.parent.glob(src.name + ".*"):
                        if not f.name.endswith(".info.json") and "_gan" not in f.name:
                            target = prefix.parent / (prefix.name + f.name[len(src.name):])
                            with atomic_path(target) as tmp:
                                shutil.copyfile(f, tmp)
                else:
                    clf.save(prefix)
                prefixes.append(str(prefix.relative_to(d)))
            models_meta[name] = {"kind": m["kind"], "folds": prefixes}
        meta = {
            "format": _FORMAT,
            "version": 1,
            "tree": self.tree,
            "preselection": [{"name": n, "cut": c} for n, c in self.preselection],
            "features": self.features.to_dict(),
            "models": models_meta,
            "working_points": self.working_points,
            "fold_branch": self.fold_branch,
            "default_model": self.default_model,
        }
        write_json(d / "selection.json", meta)
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, models: Sequence[str] | None = None) -> Selection:
        """Load a selection written by :meth:`save` (no pickle).

        The only code a selection can bring along are feature functions in
        Python files inside ``directory``; model files must lie there too.

        Raises
        ------
        ModelFileError
            If ``selection.json`` is missing or invalid, or refers to a model
            file or feature module outside ``directory``.
        """
        d = Path(directory)
        f = d / "selection.json"
        if not f.is_file():
            msg = f"{str(f)!r} not found: is {str(d)!r} a saved hepsel selection?"
            raise ModelFileError(msg)
        meta = read_json(f)
        if meta.get("format") != _FORMAT:
            msg = f"{f} is not a hepsel selection file"
            raise ModelFileError(msg)
        loaded = {}
        for name, m in meta["models"].items():
            if models is not None and name not in models:
                continue
            prefixes = [_inside(d, p, f"{f}: models.{name}") for p in m["folds"]]
            loaded[name] = {"kind": m["kind"], "folds": [load_classifier(m["kind"], p) for p in prefixes]}
        try:
            features = FeatureSet.from_dict(meta["features"], base_dir=d, where=f"{f}: features")
        except ConfigError as err:
            raise ModelFileError(str(err)) from None
        return cls(
            preselection=[(c["name"], c["cut"]) for c in meta["preselection"]],
            features=features,
            models=loaded,
            working_points=meta["working_points"],
            fold_branch=meta.get("fold_branch"),
            default_model=meta.get("default_model") if (models is None or meta.get("default_model") in models) else None,
            tree=meta.get("tree", "DecayTree"),
        )

    def __repr__(self) -> str:
        return f"Selection(models={sorted(self.models)}, features={self.features.names})"


def _inside(directory: Path, relative: str, where: str) -> Path:
    """``directory / relative``, refusing paths that lead out of ``directory``."""
    path = (directory / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(directory.resolve()):
        msg = f"{where}: model file {relative!r} lies outside the selection directory {str(directory)!r}"
        raise ModelFileError(msg)
    return path


def _subset(arrays: Mapping[str, Any], keep: np.ndarray) -> Any:
    """The entries of ``arrays`` (a mapping or an awkward record array) selected by ``keep``."""
    if hasattr(arrays, "fields"):
        return cast("Any", arrays)[keep]
    return {k: v[keep] for k, v in arrays.items()}
