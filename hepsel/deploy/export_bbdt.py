"""Export the lookup tables of a selection's bonsai BDTs (``--format bbdt``).

Per model and fold, ``<model>_fold<k>.bin`` holds the table as flat
little-endian float32 (C order: the last feature varies fastest) and
``<model>_fold<k>.json`` everything needed to use it without hepsel: the
features (names and definitions), their edges, the bins and strides, the
fold rule, the preselection and the working points. For a candidate,

``bin_j = number of inner edges edges[j][1:-1] <= x_j`` and
``score = table[sum_j bin_j * strides[j]]``;

it passes a working point when ``score >= threshold``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.storage import atomic_path, read_json, write_json
from .export import FEATURE_PRECISION, _user_functions
from .selection import check_model_names

__all__ = ["export_bbdt"]

_FORMAT = "hepsel-bbdt-table"


def export_bbdt(
    selection_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    models: Sequence[str] | None = None,
) -> list[Path]:
    """Write the tables of the bonsai BDT models of a saved selection into ``out_dir``.

    Parameters
    ----------
    selection_dir
        A selection written by the workflow (``results/<analysis>/selection``).
    out_dir
        Output directory (created if needed).
    models
        Models to export (each must be a ``bbdt``); default: every ``bbdt`` model.

    Returns
    -------
    list of Path
        The files written, ``.bin`` and ``.json`` per model and fold.

    Raises
    ------
    ModelFileError
        ``selection_dir`` is not a saved selection, or a model file is missing.
    ValueError
        A named model is unknown or not a bonsai BDT, or the selection has none;
        an :class:`~hepsel.exceptions.ExportError` for a model name that is not
        an identifier (names become file names).

    Files of other models in ``out_dir`` stay; the tables and descriptions
    are written under temporary names and renamed into place once all are
    written.
    """
    from .selection import Selection

    d = Path(selection_dir)
    meta = _selection_meta(d)
    kinds = {name: m["kind"] for name, m in meta["models"].items()}
    bbdts = [n for n, k in kinds.items() if k == "bbdt"]
    if models is None:
        if not bbdts:
            msg = f"the selection {str(d)!r} has no bbdt model (its models: {kinds}); add a model of type bbdt to the config"
            raise ValueError(msg)
        names = bbdts
    else:
        names = list(models)
        for n in names:
            if n not in kinds:
                msg = f"unknown model {n!r}; the selection {str(d)!r} has {sorted(kinds)}"
                raise ValueError(msg)
            if kinds[n] != "bbdt":
                msg = f"model {n!r} is a {kinds[n]}, not a bbdt: only bonsai BDTs export as a lookup table"
                raise ValueError(msg)
    check_model_names(names, f"{d / 'selection.json'}: models")
    sel = Selection.load(d, models=names)
    features = sel.features.to_dict()
    definitions = {f["name"]: f for f in features["features"]}
    folds = {
        name: sel.fold_models(name) for name in names
    }  # a model that does not load fails before any output
    functions = _user_functions(sel)
    out = Path(out_dir)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    # every table and description under a temporary name first, then all renamed into place: no half export
    tmp = Path(tempfile.mkdtemp(prefix=".hepsel-export.", dir=out))
    written: list[Path] = []
    try:
        for name in names:
            k = len(folds[name])
            for i, clf in enumerate(folds[name]):
                stem = f"{name}_fold{i}"
                with atomic_path(tmp / f"{stem}.bin") as part:
                    part.write_bytes(np.ascontiguousarray(clf.table_, dtype="<f4").tobytes())
                desc = _description(
                    sel, name, i, k, clf, out / f"{stem}.bin", definitions, features
                )
                used = {f: functions[f] for f in clf.features_ if f in functions}
                desc.update(feature_precision=FEATURE_PRECISION, user_functions=used)
                write_json(tmp / f"{stem}.json", desc)
                written += [out / f"{stem}.bin", out / f"{stem}.json"]
        for path in written:
            os.replace(tmp / path.name, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    for name in names:
        _remove_stale_folds(out, name, len(folds[name]))
    return written


def _remove_stale_folds(out: Path, name: str, k: int) -> None:
    """Remove the tables of folds ``>= k`` that an earlier export of ``name`` with more folds left behind."""
    i = k
    while True:
        desc = out / f"{name}_fold{i}.json"
        try:
            meta = read_json(desc)
        except (OSError, ValueError):
            return
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT or meta.get("model") != name:
            return
        (out / f"{name}_fold{i}.bin").unlink(missing_ok=True)
        desc.unlink()
        i += 1


def _selection_meta(d: Path) -> dict[str, Any]:
    from ..exceptions import ModelFileError

    f = d / "selection.json"
    if not f.is_file():
        msg = f"{str(f)!r} not found: is {str(d)!r} a saved hepsel selection?"
        raise ModelFileError(msg)
    meta: dict[str, Any] = read_json(f)
    return meta


def _description(
    sel: Any,
    name: str,
    fold: int,
    k: int,
    clf: Any,
    table_path: Path,
    definitions: dict[str, Any],
    features: dict[str, Any],
) -> dict[str, Any]:
    branch = sel.fold_branch
    fold_rule: dict[str, Any] = {"branch": branch, "k": k, "fold": fold}
    fold_rule["rule"] = (
        f"use this table for candidates with {branch} % {k} == {fold} (the fold model that did not train on them); "
        f"without {branch}, average the scores of the {k} tables"
        if branch
        else f"average the scores of the {k} tables"
    )
    return {
        "format": _FORMAT,
        "version": 1,
        "model": name,
        "fold": fold,
        "table": table_path.name,
        "dtype": "float32",
        "byte_order": "little",
        "order": "C",
        "n_cells": int(clf.table_.size),
        "shape": list(clf.bins_),
        "features": list(clf.features_),
        "feature_indices": list(clf.feature_indices_),
        "edges": [e.tolist() for e in clf.edges_],
        "bins": list(clf.bins_),
        "strides": list(clf.strides_),
        "bin_rule": "bin_j = number of inner edges edges[j][1:-1] <= x_j (values outside the edges go to the first or last bin)",
        "lookup": "score = table[sum_j bin_j * strides[j]]",
        "score": "signal probability",
        "fold_rule": fold_rule,
        "thresholds": {rate: float(t) for rate, t in sel.working_points.get(name, {}).items()},
        "threshold_rule": "keys are output rates in kHz; a candidate passes when it passes the preselection and score >= threshold",
        "preselection": [{"name": n, "cut": c} for n, c in sel.preselection],
        "aliases": features["aliases"],
        "feature_definitions": [definitions[f] for f in clf.features_ if f in definitions],
        **({"menu": sel.menu.describe()} if sel.menu is not None else {}),
    }
