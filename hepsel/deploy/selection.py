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

from ..exceptions import BranchTypeError, ConfigError, ExportError, ModelFileError, NonFiniteError
from ..io.storage import atomic_path, read_json, write_json
from ..models import load_classifier
from ..prep.cuts import CutSequence
from ..prep.features import FeatureSet
from .menu import Menu

__all__ = [
    "WORKING_POINT_UNITS",
    "InterpolatedWorkingPoint",
    "Selection",
    "UntypedSelection",
    "check_model_names",
    "wp_branch",
]

_FORMAT = "hepsel-selection"
_MAX_NAME = 100


class InterpolatedWorkingPoint(UserWarning):
    """A working point not stored with the selection, interpolated along its stored rate curve."""


class UntypedSelection(UserWarning):
    """A saved selection without the input branch types it was trained on: input types are not checked."""


#: What a working-point key measures: an output rate, a signal or a background efficiency.
WORKING_POINT_UNITS = ("kHz", "signal efficiency", "background efficiency")


def wp_branch(model: str, key: str, unit: str = "kHz") -> str:
    """Branch name of a working point's decision, named in the working point's own unit.

    ``kHz``: ``pass_bdt_660kHz`` (``0.5`` kHz -> ``0p5kHz``); ``signal
    efficiency``: the percentage, ``pass_bdt_eff50`` (``0.995`` ->
    ``eff99p5``); ``background efficiency``: the fraction,
    ``pass_bdt_bkgeff0p001`` (``1e-05`` -> ``bkgeff1em05``).
    """
    if unit == "kHz":
        return f"pass_{model}_{key.replace('.', 'p')}kHz"
    if unit in ("signal efficiency", "background efficiency"):
        # letters, digits and underscores only: ROOT's TTree::Draw parses a '.' or '-' in a name
        value = (
            f"eff{100 * float(key):.10g}"
            if unit == "signal efficiency"
            else f"bkgeff{float(key):g}"
        )
        return f"pass_{model}_" + value.replace(".", "p").replace("-", "m").replace("+", "")
    msg = f"unknown working-point unit {unit!r}; choose from {WORKING_POINT_UNITS}"
    raise ValueError(msg)


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
        Model name -> {working-point key (e.g. ``"660"`` kHz) -> threshold on
        the score (the probability)}.
    working_points_raw
        The same working points as thresholds on the models' raw output
        (``decision_function``: margin, logit, discriminant or reconstruction
        error). Decisions at stored working points use these where given: the
        probability saturates at 1, the raw output does not.
    working_point_unit
        What the working-point keys measure (:data:`WORKING_POINT_UNITS`):
        ``"kHz"`` (trigger studies) or ``"signal efficiency"`` (offline ones);
        it names the decision branches (:func:`wp_branch`).
    fold_branch
        Branch whose value modulo the number of folds picks the fold model
        (the one that did not train on the event); if absent from the input,
        the fold models' scores are averaged.
    default_model
        Model used when none is named.
    rate_curves
        Model name -> ``{"threshold", "rate_khz", "eff"}`` lists (decreasing
        thresholds), from the study: working points at other rates or signal
        efficiencies are interpolated along them (on ``threshold_raw`` where
        the curve has it).
    branch_types
        Input branch -> its type as seen in training (``"float32"``,
        ``"var * int32"``; a list when the training files differ). Input
        files are checked against it: a type that changes values (narrower,
        float -> integer, bool for a number or back) is refused. ``None``: not
        recorded, nothing checked.

    Notes
    -----
    Fold models are loaded when first used, so loading a selection is fast
    whatever its models.
    """

    def __init__(
        self,
        *,
        preselection: Sequence[tuple[str, str]],
        features: FeatureSet,
        models: Mapping[str, Mapping[str, Any]],
        working_points: Mapping[str, Mapping[str, float]],
        working_points_raw: Mapping[str, Mapping[str, float]] | None = None,
        working_point_unit: str = "kHz",
        fold_branch: str | None = "eventNumber",
        default_model: str | None = None,
        tree: str = "DecayTree",
        rate_curves: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
        branch_types: Mapping[str, str | Sequence[str]] | None = None,
        menu: Menu | None = None,
    ) -> None:
        self.preselection = [cast("tuple[str, str]", tuple(c)) for c in preselection]
        self.features = features
        self.models = {n: dict(m) for n, m in models.items()}
        self.rate_curves = {
            n: {k: list(v) for k, v in c.items()} for n, c in (rate_curves or {}).items()
        }
        self.working_points = {m: dict(v) for m, v in working_points.items()}
        self.working_points_raw = {m: dict(v) for m, v in (working_points_raw or {}).items()}
        if working_point_unit not in WORKING_POINT_UNITS:
            msg = f"unknown working-point unit {working_point_unit!r}; choose from {WORKING_POINT_UNITS}"
            raise ValueError(msg)
        self.working_point_unit = working_point_unit
        self.fold_branch = fold_branch
        self.default_model = default_model or next(iter(self.models))
        self.tree = tree
        self.menu = menu
        self._cuts = CutSequence(
            self.preselection, aliases=features.aliases, where="selection preselection"
        )
        self.branch_types = (
            None
            if branch_types is None
            else {
                b: [t] if isinstance(t, str) else list(t)
                for b, t in branch_types.items()
                if b in self.branches
            }
        )

    # -- inputs ---------------------------------------------------------------
    @property
    def branches(self) -> list[str]:
        """Branches read from an input file."""
        b = set(self.features.branches) | set(self._cuts.branches)
        return sorted(b)

    def needed_branches(self) -> dict[str, list[str]]:
        """Branch -> the features and cuts that read it (for error messages)."""
        needed: dict[str, list[str]] = {}
        for f in self.features.features:
            for b in f.branches:
                needed.setdefault(b, []).append(f"feature {f.name!r}")
        for name, e in zip(self._cuts.names, self._cuts.expressions, strict=True):
            for b in e.branches:
                needed.setdefault(b, []).append(f"cut {name!r}")
        return needed

    def _read_file(self, path: str | os.PathLike[str], tree: str | None) -> Any:
        from ..io.reading import check_branches, open_tree, read_arrays

        t = tree or self.tree
        ttree = open_tree(path, t)
        keys = set(ttree.keys())
        wanted = sorted(
            {*self.branches, *(b for b in (self.fold_branch, "runNumber") if b and b in keys)}
        )
        check_branches(ttree, self.needed_branches(), path=str(path), tree=t)
        self.check_types(ttree, path=str(path), tree=t)
        return read_arrays(path, ttree, t, wanted)

    def check_types(self, ttree: Any, *, path: str, tree: str) -> None:
        """Refuse input branches whose type would change their values against training (see ``branch_types``).

        Raises
        ------
        BranchTypeError
            Naming the file, tree, each such branch and both types.
        """
        from ..io.reading import branch_types, type_change

        if not self.branch_types:
            return
        seen = branch_types(ttree, [b for b in self.branches if b in self.branch_types])
        bad = []
        for b, now in seen.items():
            trained = self.branch_types[b]
            reasons = [type_change(t, now) for t in trained]
            if all(r is not None for r in reasons):
                was = " or ".join(trained)
                bad.append(
                    f"branch {b!r} is {now} but the selection was trained on {was} ({reasons[0]})"
                )
        if bad:
            msg = f"{path}:{tree}: {'; '.join(bad)}; convert the branch to the trained type, or train on such files"
            raise BranchTypeError(msg)

    def _arrays(self, source: Any, tree: str | None) -> Mapping[str, Any]:
        """Branches of ``source``: a file, a list of files, a mapping of arrays, an awkward array or a DataFrame."""
        if isinstance(source, (str, os.PathLike)):
            return cast("Mapping[str, Any]", self._read_file(source, tree))
        if isinstance(source, (list, tuple)) and all(
            isinstance(x, (str, os.PathLike)) for x in source
        ):
            if not source:
                msg = "no input files given"
                raise ValueError(msg)
            parts = [self._read_file(x, tree) for x in source]
            if any(hasattr(p, "fields") for p in parts):
                import awkward as ak

                return cast(
                    "Mapping[str, Any]",
                    ak.concatenate([ak.Array(p) if not hasattr(p, "fields") else p for p in parts]),
                )
            common = set.intersection(*(set(p) for p in parts))
            return {k: np.concatenate([p[k] for p in parts]) for k in sorted(common)}
        if type(source).__module__.startswith("pandas") and hasattr(source, "columns"):
            return {str(c): source[c].to_numpy() for c in source.columns}
        if isinstance(source, Mapping) or hasattr(source, "fields"):
            return source
        msg = (
            f"cannot read candidates from a {type(source).__name__}; give a ROOT file, a list of files, "
            "a dict of arrays, an awkward array or a pandas DataFrame"
        )
        raise TypeError(msg)

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

    def score(
        self, source: Any, *, model: str | None = None, tree: str | None = None
    ) -> np.ndarray:
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

    def decision_function(
        self, source: Any, *, model: str | None = None, tree: str | None = None
    ) -> np.ndarray:
        """Raw output of each entry (margin, logit, discriminant or reconstruction error), shape (n,).

        As :meth:`score` (NaN where the preselection rejects the entry), but
        the fold model's ``decision_function``: what the stored working points
        cut on (:attr:`working_points_raw`).
        """
        name = self._model_name(model)
        arrays = self._arrays(source, tree)
        return self._score(arrays, name, self.preselect(arrays), raw=True)

    def _model_name(self, model: str | None) -> str:
        name = model or self.default_model
        if name not in self.models:
            msg = f"unknown model {name!r}; this selection has {sorted(self.models)}"
            raise KeyError(msg)
        return name

    def fold_models(self, model: str | None = None) -> list[Any]:
        """The fitted fold classifiers of ``model``, loaded on first use."""
        name = self._model_name(model)
        m = self.models[name]
        if m.get("folds") is None or any(f is None for f in m["folds"]):
            m["folds"] = [load_classifier(m["kind"], p) for p in m["prefixes"]]
        return cast("list[Any]", m["folds"])

    def _score(
        self, arrays: Mapping[str, Any], name: str, keep: np.ndarray, *, raw: bool = False
    ) -> np.ndarray:
        return self._outputs(arrays, name, keep, (raw,))[0]

    def _outputs(
        self, arrays: Mapping[str, Any], name: str, keep: np.ndarray, raw: Sequence[bool]
    ) -> list[np.ndarray]:
        """Per entry, for each flag of ``raw``, the probability (False) or raw output (True); features computed once."""
        outs = [np.full(len(keep), np.nan) for _ in raw]
        if not keep.any():
            return outs
        sub = _subset(arrays, keep)
        X = self.features.matrix(sub)
        bad = ~np.isfinite(X)
        if bad.any():
            counts = ", ".join(
                f"{f!r}: {int(c)}"
                for f, c in zip(self.features.names, bad.sum(axis=0), strict=True)
                if c
            )
            msg = (
                f"non-finite feature values (NaN/inf) for entries that pass the preselection: {counts}; "
                "the models were trained without such values: tighten the preselection or fix the input"
            )
            raise NonFiniteError(msg)
        event = (
            np.asarray(sub[self.fold_branch])
            if self.fold_branch and self._has(sub, self.fold_branch)
            else None
        )
        for out, r in zip(outs, raw, strict=True):
            out[keep] = self.predict(X, event, model=name, raw=r)
        return outs

    def predict(
        self,
        X: np.ndarray,
        event: np.ndarray | None = None,
        *,
        model: str | None = None,
        raw: bool = False,
    ) -> np.ndarray:
        """Scores of feature rows ``X`` (n, n_features): each row by the fold model ``event % k``.

        Without ``event`` numbers the fold models' scores are averaged.
        ``raw``: the raw outputs (``decision_function``) instead of the probabilities.
        """
        folds = self.fold_models(model)
        k = len(folds)

        def output(clf: Any, x: np.ndarray) -> np.ndarray:
            return np.asarray(
                clf.decision_function(x) if raw else clf.predict_proba(x)[:, 1], dtype=np.float64
            )

        if event is None:
            return np.asarray(np.mean([output(clf, X) for clf in folds], axis=0))
        fold = np.asarray(event, dtype=np.int64) % k
        scores = np.empty(len(X))
        for i, clf in enumerate(folds):
            m = fold == i
            if m.any():
                scores[m] = output(clf, X[m])
        return scores

    def threshold(
        self,
        *,
        rate_khz: float | str | None = None,
        signal_eff: float | None = None,
        threshold: float | None = None,
        model: str | None = None,
        raw: bool = False,
    ) -> float:
        """Score threshold of a working point, asked for by one of:

        ``rate_khz``
            a target output rate: a stored working point (default: the first),
            or else interpolated along the stored rate curve (with an
            :class:`InterpolatedWorkingPoint` warning);
        ``signal_eff``
            a signal efficiency (event level, preselected signal events): a
            stored working point of an offline selection, or else
            interpolated along the stored curve;
        ``threshold``
            the score cut itself.

        ``raw``: the cut on the raw output (:meth:`decision_function`) instead
        of the probability (:meth:`score`); a given ``threshold`` is then a
        raw cut.

        Raises
        ------
        KeyError
            If no such working point is stored and there is no curve to
            interpolate along, or ``raw`` and the selection stores no raw cuts.
        """
        name = self._model_name(model)
        given = [x is not None for x in (rate_khz, signal_eff, threshold)]
        if sum(given) > 1:
            msg = "give one of rate_khz, signal_eff or threshold"
            raise ValueError(msg)
        if threshold is not None:
            return float(threshold)
        if raw and name not in self.working_points_raw:
            raise _NoRawThreshold(name)
        wps = (self.working_points_raw if raw else self.working_points).get(name, {})
        curve_key = "threshold_raw" if raw else "threshold"
        if signal_eff is not None:
            key = f"{signal_eff:g}"
            if self.working_point_unit == "signal efficiency" and key in wps:
                return float(wps[key])
            return self._interpolate(name, "eff", float(signal_eff), "signal efficiency", curve_key)
        if rate_khz is None:
            if not wps:
                msg = f"model {name!r} has no stored working points"
                raise KeyError(msg)
            return float(next(iter(wps.values())))
        key = rate_khz if isinstance(rate_khz, str) else f"{rate_khz:g}"
        if key in wps and (isinstance(rate_khz, str) or self.working_point_unit == "kHz"):
            return float(wps[key])
        if name not in self.rate_curves:
            msg = f"no working point at {key} kHz for model {name!r}; available: {sorted(wps)} (no stored rate curve)"
            raise KeyError(msg)
        return self._interpolate(name, "rate_khz", float(key), "output rate [kHz]", curve_key)

    def _interpolate(
        self, name: str, key: str, value: float, what: str, threshold_key: str = "threshold"
    ) -> float:
        import warnings

        curve = self.rate_curves.get(name)
        if not curve:
            msg = f"model {name!r} has no stored rate curve to find a {what} of {value:g} on"
            raise KeyError(msg)
        if threshold_key not in curve:
            raise _NoRawThreshold(name)
        x, thr = (
            np.asarray(curve[key], dtype=np.float64),
            np.asarray(curve[threshold_key], dtype=np.float64),
        )
        if not x.min() <= value <= x.max():
            msg = f"{what} {value:g} is outside the stored curve of model {name!r} ({x.min():g} to {x.max():g})"
            raise ValueError(msg)
        order = np.argsort(x, kind="stable")
        out = float(np.interp(value, x[order], thr[order]))
        unit = "raw-output " if threshold_key == "threshold_raw" else ""
        warnings.warn(
            f"model {name!r}: no stored working point at {what} {value:g}; {unit}threshold {out:.6g} interpolated "
            "linearly along the stored curve (a new study gives an exact one)",
            InterpolatedWorkingPoint,
            stacklevel=3,
        )
        return out

    def _cut(
        self,
        name: str,
        rate_khz: float | str | None,
        signal_eff: float | None,
        threshold: float | None,
    ) -> tuple[float, bool]:
        """``(cut, raw)``: a working point's cut on the raw output where stored, else on the probability.

        An explicit ``threshold`` is a cut on the probability (:meth:`score`).
        """
        if threshold is None:
            try:
                return self.threshold(
                    rate_khz=rate_khz, signal_eff=signal_eff, model=name, raw=True
                ), True
            except _NoRawThreshold:
                pass  # a selection saved before raw cuts were stored
        return self.threshold(
            rate_khz=rate_khz, signal_eff=signal_eff, threshold=threshold, model=name
        ), False

    def passes(
        self,
        source: Any,
        *,
        rate_khz: float | str | None = None,
        signal_eff: float | None = None,
        threshold: float | None = None,
        model: str | None = None,
        tree: str | None = None,
    ) -> np.ndarray:
        """Entries passing the preselection and the working point's cut.

        Entries the preselection rejects never pass and are never scored. The
        working point is asked for as in :meth:`threshold`; a stored or
        interpolated one cuts on the raw output (``raw >= threshold_raw``,
        which does not saturate as the probability does), a given
        ``threshold`` on the probability (``score >= threshold``).
        """
        arrays = self._arrays(source, tree)
        name = self._model_name(model)
        thr, raw = self._cut(name, rate_khz, signal_eff, threshold)
        keep = self.preselect(arrays)
        passed = np.zeros(len(keep), dtype=bool)
        passed[keep] = self._score(arrays, name, keep, raw=raw)[keep] >= thr
        return passed

    def decision_thresholds(self, model: str | None = None) -> tuple[dict[str, float], bool]:
        """``(cuts, raw)``: the stored working points' cuts decisions use, and whether they are on the raw output."""
        name = self._model_name(model)
        if name in self.working_points_raw:
            return dict(self.working_points_raw[name]), True
        return dict(self.working_points.get(name, {})), False

    def decisions(
        self,
        source: Any,
        *,
        models: Sequence[str] | None = None,
        tree: str | None = None,
        menu: bool = True,
    ) -> dict[str, np.ndarray]:
        """Everything per entry, aligned with ``source``: identifiers, ``presel``, scores and stored decisions.

        Keys: ``runNumber`` / ``eventNumber`` (where the input has them),
        ``presel``, ``score_<model>`` (probability), ``raw_<model>`` (raw
        output) and, for every stored working point, its decision named in
        its unit (:func:`wp_branch`: ``pass_<model>_660kHz``,
        ``pass_<model>_eff50``), cut on the raw output where stored.

        With a menu (:attr:`menu`, saved by the menu step) also
        ``pass_<line>_<rate>kHz`` and ``pass_menu_<rate>kHz``: whether each
        line, and the menu, keeps the entry's event (any candidate of the
        line in the event fires). A line on another tree (a one-track line)
        is read from the same file, so ``source`` must then be a file;
        ``menu=False`` leaves the menu out.
        """
        arrays = self._arrays(source, tree)
        keep = self.preselect(arrays)
        out: dict[str, np.ndarray] = {}
        for b in ("runNumber", self.fold_branch):
            if b and self._has(arrays, b):
                out[b] = np.asarray(arrays[b])
        out["presel"] = keep
        for name in models or list(self.models):
            s, r = self._outputs(arrays, self._model_name(name), keep, (False, True))
            out[f"score_{name}"] = s
            out[f"raw_{name}"] = r
            cuts, raw = self.decision_thresholds(name)
            with np.errstate(invalid="ignore"):
                for key, thr in cuts.items():
                    out[wp_branch(name, key, self.working_point_unit)] = keep & (
                        (r if raw else s) >= thr
                    )
        if menu and self.menu is not None and (tree or self.tree) == self.tree:
            run = (
                np.asarray(arrays["runNumber"], np.int64)
                if self._has(arrays, "runNumber")
                else np.zeros(self._len(arrays), np.int64)
            )
            evt = np.asarray(arrays[self.fold_branch or "eventNumber"], np.int64)
            menu_source = source if isinstance(source, (str, os.PathLike)) else arrays
            out.update(self.menu.event_decisions(self, menu_source).lookup(run, evt))
        return out

    # -- persistence ----------------------------------------------------------------
    def save(
        self,
        directory: str | os.PathLike[str],
        *,
        model_files: Mapping[str, Sequence[Path]] | None = None,
    ) -> Path:
        """Write ``selection.json`` and the model files into ``directory``.

        ``model_files`` maps model name -> the saved fold prefixes to copy; if
        omitted, each fold model is saved again with its ``save`` method.
        """
        check_model_names(list(self.models), "Selection.save")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        models_meta = {}
        for name, m in self.models.items():
            prefixes = []
            folds = m["folds"] if model_files and name in model_files else self.fold_models(name)
            for i, clf in enumerate(folds):
                prefix = d / "models" / name / f"fold{i}"
                prefix.parent.mkdir(parents=True, exist_ok=True)
                if model_files and name in model_files:
                    src = Path(model_files[name][i])
                    for f in src.parent.glob(src.name + ".*"):
                        if not f.name.endswith(".info.json") and "_gan" not in f.name:
                            target = prefix.parent / (prefix.name + f.name[len(src.name) :])
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
            "working_points_raw": self.working_points_raw,
            "working_point_unit": self.working_point_unit,
            "fold_branch": self.fold_branch,
            "default_model": self.default_model,
            "rate_curves": self.rate_curves,
            "branch_types": (
                None
                if self.branch_types is None
                else {b: t[0] if len(t) == 1 else t for b, t in self.branch_types.items()}
            ),
        }
        write_json(d / "selection.json", meta)
        return d

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], *, models: Sequence[str] | None = None
    ) -> Selection:
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
        if models is not None:
            unknown = [m for m in models if m not in meta["models"]]
            if unknown:
                msg = (
                    f"{f}: unknown model(s) {unknown}; this selection has {sorted(meta['models'])}"
                )
                raise ModelFileError(msg)
        loaded = {}
        for name, m in meta["models"].items():
            if models is not None and name not in models:
                continue
            prefixes = [_inside(d, p, f"{f}: models.{name}") for p in m["folds"]]
            for p in prefixes:
                files = sorted(p.parent.glob(p.name + ".*"))
                if not files:
                    msg = f"{f}: models.{name}: no model file {str(p)!r}.*"
                    raise ModelFileError(msg)
                for file in files:
                    # the loaders open these names: a link must not lead out of the selection
                    _inside(d, str(file.relative_to(d.resolve())), f"{f}: models.{name}")
            # loaded on first use (Selection.fold_models)
            loaded[name] = {"kind": m["kind"], "folds": None, "prefixes": prefixes}
        cuts = {
            table: _cuts(meta.get(table) or {}, f"{f}: {table}")
            for table in ("working_points", "working_points_raw")
        }
        unit = meta.get("working_point_unit", "kHz")
        if unit not in WORKING_POINT_UNITS:
            msg = f"{f}: working_point_unit {unit!r} is not one of {WORKING_POINT_UNITS}"
            raise ModelFileError(msg)
        try:
            features = FeatureSet.from_dict(meta["features"], base_dir=d, where=f"{f}: features")
        except ConfigError as err:
            raise ModelFileError(str(err)) from None
        if "branch_types" not in meta:
            import warnings

            warnings.warn(
                f"{f} has no record of the input branch types it was trained on (saved by an older hepsel): "
                "input types are not checked; evaluate again to record them",
                UntypedSelection,
                stacklevel=2,
            )
        return cls(
            preselection=[(c["name"], c["cut"]) for c in meta["preselection"]],
            features=features,
            models=loaded,
            working_points=cuts["working_points"],
            working_points_raw={n: v for n, v in cuts["working_points_raw"].items() if n in loaded},
            working_point_unit=unit,
            fold_branch=meta.get("fold_branch"),
            default_model=meta.get("default_model")
            if (models is None or meta.get("default_model") in models)
            else None,
            tree=meta.get("tree", "DecayTree"),
            rate_curves={n: c for n, c in meta.get("rate_curves", {}).items() if n in loaded},
            branch_types=meta.get("branch_types"),
            menu=_menu_with(Menu.load(d), models),
        )

    def __repr__(self) -> str:
        return f"Selection(models={sorted(self.models)}, features={self.features.names})"


def _menu_with(menu: Menu | None, models: Sequence[str] | None) -> Menu | None:
    """The saved menu, unless ``models`` leaves out a model one of its lines uses."""
    if menu is None or models is None or menu.models <= set(models):
        return menu
    return None


def _cuts(table: Mapping[str, Any], where: str) -> dict[str, dict[str, float]]:
    """Model -> {working point -> cut} from ``selection.json``; a null cut (unreachable working point) is left out.

    Raises
    ------
    ModelFileError
        If a cut is not a number.
    """
    out: dict[str, dict[str, float]] = {}
    for model, wps in table.items():
        out[model] = {}
        for key, value in (wps or {}).items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                msg = f"{where}.{model}.{key}: threshold {value!r} is not a number"
                raise ModelFileError(msg)
            out[model][key] = float(value)
    return out


class _NoRawThreshold(KeyError):
    """The selection stores no cut on the raw output for this model (saved before such cuts were)."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} has no stored raw-output thresholds; evaluate the study again to store them"
        )


def _inside(directory: Path, relative: str, where: str) -> Path:
    """``directory / relative`` resolved, refusing paths (``..``, links) that lead out of ``directory``."""
    path = (directory / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(directory.resolve()):
        link = (
            f" (a link to {str(path)!r})"
            if not Path(relative).is_absolute() and ".." not in Path(relative).parts
            else ""
        )
        msg = f"{where}: model file {relative!r}{link} lies outside the selection directory {str(directory)!r}"
        raise ModelFileError(msg)
    return path


def _subset(arrays: Mapping[str, Any], keep: np.ndarray) -> Any:
    """The entries of ``arrays`` (a mapping or an awkward record array) selected by ``keep``."""
    if hasattr(arrays, "fields"):
        return cast("Any", arrays)[keep]
    return {k: v[keep] for k, v in arrays.items()}


def check_model_names(names: Sequence[str], where: str) -> None:
    """Refuse model names that could not be file names: identifiers of at most 100 characters.

    Every export writes files named after the models, and a saved selection
    names them in its JSON: ``../x`` must not lead out of the output directory.

    Raises
    ------
    ExportError
        Naming ``where`` and the offending names.
    """
    given: list[object] = list(names)  # checked as given: names come from configs and saved files
    odd = [n for n in given if not isinstance(n, str) or not n.isidentifier() or len(n) > _MAX_NAME]
    if odd:
        msg = (
            f"{where}: model name(s) {odd} are not identifiers of at most {_MAX_NAME} characters, "
            "as hepsel's configs require (they become file names); rename them"
        )
        raise ExportError(msg)
