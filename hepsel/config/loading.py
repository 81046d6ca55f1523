"""Loading an analysis config: YAML in, a validated :class:`~hepsel.config.schema.AnalysisConfig` out.

:func:`load_config` reads the file, validates it against the schema, resolves
relative paths, and checks each model's parameters against its estimator and
each feature function's signature, so that a misspelt key fails at load time.
Errors name the file and the key at fault.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..exceptions import ConfigError
from .schema import AnalysisConfig, ModelConfig

__all__ = [
    "load_config",
]


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid analysis config {source}:"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "<top level>"
        text = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            parent = _model_at(AnalysisConfig, e["loc"][:-1])
            known = sorted(parent.model_fields) if parent is not None else []
            close = difflib.get_close_matches(str(e["loc"][-1]), known, n=3)
            text = "unknown key" + (
                f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            )
            if known:
                text += f"; allowed keys: {', '.join(k for k in known if k not in ('base_dir', 'source'))}"
        lines.append(f"  {loc}: {text}")
    return "\n".join(lines)


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk a pydantic error location to the model class that holds the last key."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                # a dict-valued field: the key is the dict key, keep the value type
                continue
            current = _inner_model(field.annotation)
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside Optional[...], list[...], dict[str, ...] annotations."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    meta = getattr(annotation, "__metadata__", None)
    if meta is not None:
        return _inner_model(annotation.__origin__)
    return None


def load_config(
    path: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    check_models: bool = True,
) -> AnalysisConfig:
    """Read and validate an analysis config.

    Parameters
    ----------
    path
        The YAML file, or an analysis directory holding ``config.yaml``.
    base_dir
        Directory that relative paths in the config (data files, output) are
        resolved against; default: the current working directory.
    overrides
        Top-level keys replacing those of the file (e.g. ``{"output": ...}``).
    check_models
        Check each model's parameters against its estimator (imports the
        estimator modules: about a second). The steps that read input files
        (one job per file) skip it: they build no model, and the workflow
        checks the whole config once before any job.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or does not match the schema; the
        message names the file and the key.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "config.yaml"
    if not p.is_file():
        msg = f"analysis config {str(p)!r} not found"
        raise ConfigError(msg)
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        msg = f"analysis config {p} is not valid YAML: {err}"
        raise ConfigError(msg) from err
    if not isinstance(raw, dict):
        msg = f"analysis config {p} must be a mapping of keys to values"
        raise ConfigError(msg)
    if overrides:
        raw = {**raw, **overrides}
    try:
        cfg = AnalysisConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, str(p))) from None
    cfg.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    cfg.source = p.resolve()
    if not raw.get("output"):
        # derived from where the config lives, not from 'name': a copied config
        # that keeps another analysis's name still writes to its own directory
        cfg.output = f"results/{cfg.analysis_id}"
    if check_models:
        _check_model_params(cfg, str(p))
    _check_feature_functions(cfg, str(p))
    return cfg


def _check_feature_functions(cfg: AnalysisConfig, source: str) -> None:
    """Import each feature function and check that it takes one mapping of branches, before any file is read."""
    from .functions import load_function

    for f in cfg.features:
        if f.function is None:
            continue
        try:
            load_function(f.function, cfg.analysis_dir)
        except ConfigError as err:
            msg = f"invalid analysis config {source}: features.{f.name}: {err}"
            raise ConfigError(msg) from None


def _check_model_params(cfg: AnalysisConfig, source: str) -> None:
    """Reject misspelt estimator parameters at load time, not after hours of preprocessing."""
    import inspect

    from ..models import estimator_class

    for name, model in cfg.models.items():
        kind = model.base if model.type == "gan_augmented" else model.type
        checks = [(f"models.{name}.params", estimator_class(kind), model.params)]
        if model.type == "gan_augmented":
            checks.append((f"models.{name}.gan", estimator_class("gan"), model.gan))
        for key, cls, params in checks:
            allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
            for p in params:
                if p not in allowed:
                    close = difflib.get_close_matches(p, allowed, n=2)
                    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
                    msg = f"invalid analysis config {source}:\n  {key}: unknown parameter {p!r}{hint}; allowed: {', '.join(allowed)}"
                    raise ConfigError(msg)
        if model.type == "bbdt":
            _check_bbdt(cfg, name, model, source)
        if model.type == "autoencoder":
            _check_autoencoder(cfg, name, model, source)


def _check_autoencoder(cfg: AnalysisConfig, name: str, model: ModelConfig, source: str) -> None:
    """An autoencoder's parameters, and a bottleneck narrower than the features, checked before any training."""
    from ..models import estimator_class

    key = f"models.{name}.params"
    try:
        clf = estimator_class("autoencoder")(**model.params)
        clf._check_params()
    except (TypeError, ValueError) as err:
        msg = f"invalid analysis config {source}:\n  {key}: {err}"
        raise ConfigError(msg) from None
    n = len(cfg.feature_names)
    if isinstance(clf.bottleneck, int) and clf.bottleneck >= n:
        msg = (
            f"invalid analysis config {source}:\n  {key}.bottleneck: {clf.bottleneck} must be smaller than "
            f"the number of features ({n}); an autoencoder that can copy its input learns nothing"
        )
        raise ConfigError(msg)


def _check_bbdt(cfg: AnalysisConfig, name: str, model: ModelConfig, source: str) -> None:
    """A bonsai BDT's features, bins and edges, and its cell count, checked before any training."""
    from ..models import estimator_class

    key = f"models.{name}.params"
    if "feature_names" in model.params:
        msg = f"invalid analysis config {source}:\n  {key}: feature_names is set from the config's features; choose columns with 'features'"
        raise ConfigError(msg)
    try:
        estimator_class("bbdt")(**model.params, feature_names=cfg.feature_names).validate(
            len(cfg.feature_names)
        )
    except (TypeError, ValueError) as err:
        msg = f"invalid analysis config {source}:\n  {key}: {err}"
        raise ConfigError(msg) from None
