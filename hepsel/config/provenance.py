"""Which config settings each workflow step reads, and who owns an output directory.

Snakemake reruns a job when one of its ``params`` changes (its default
``params`` rerun trigger). Each rule of the Snakefile therefore carries
:func:`step_digest`: a digest of exactly the config settings its step reads,
so that a config edit reruns the jobs it affects, and only those (their
downstream jobs follow through Snakemake's ``mtime`` trigger).

What each step reads:

======================== ==============================================================
``generate``             the sample's ``generate`` block and its file names
``prepare``              the sample (not ``generate`` / ``normalisation``), the sample
                         names, ``preselection``, ``aliases``, the features'
                         computation (not ``label`` / ``range``), ``spectators``,
                         ``candidates``, ``folds``, ``reading``
``gather``               every sample's ``label`` / ``normalisation`` / event and
                         weight settings, ``evaluation.interval``
``train``                the model's own block (``uncertainty`` included: the
                         replicas train in the same job), ``training`` (not
                         ``fold_jobs``, read by no step: it only groups the folds into
                         jobs), ``seed``, ``folds``, feature names and ranges (GAN bounds)
``evaluate``             everything but ``generate`` blocks, ``study``,
                         ``decorrelation_scan``, ``explain``, ``robustness``, ``apply``,
                         ``evaluation.shap``, plot labels and feature labels (the saved
                         selection holds no labels)
``plots``                ``evaluation`` (binnings and labels), ``trigger``, model names
``explain``              the model (not its ``uncertainty``), ``evaluation.shap``, ``seed``, ``folds``,
                         feature names (its figures are drawn by ``report``)
``fidelity``             the model (not its ``uncertainty``), ``seed``, ``folds``, features
``why``                  the model, ``explain``, ``seed``, ``folds``, feature names, and
                         what the model's working points depend on beyond its fold models
                         and the data set (inputs): ``trigger``, ``evaluation.signal_effs``.
                         It reads its first working point from ``summary.json``, an
                         ``ancient`` input: another model's changes rewrite that file
                         without rerunning this job; the Snakefile's ``why_settings``
                         rule writes this digest to a file the job reads, since
                         Snakemake does not check the params of a job linked to a
                         rerun job by ancient inputs alone (its figures are drawn by
                         ``report``)
``study``                the point's model (not its ``uncertainty``), ``study``, ``training``, ``seed``,
                         ``folds``, ``trigger``, features
``decorrelation_scan``   the ``decorrelation_scan`` block and its model's
                         block, ``training``, ``seed``, ``folds``, ``trigger``,
                         ``evaluation.bkg_effs``, features
``robustness``           ``robustness``, what ``prepare`` and ``gather`` read,
                         ``trigger``, model names and kinds, ``folds``
``report``               everything the report shows: ``evaluation``, ``trigger``,
                         model names and kinds, feature labels (it draws the SHAP and
                         "why" figures from the saved explanations), whether there is a
                         ``decorrelation_scan``, ``robustness`` (if set)
``apply``                the dataset's block, ``apply.models``, ``apply.copy_branches``
                         (and the saved selection, an input)
======================== ==============================================================
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from .schema import AnalysisConfig

__all__ = [
    "OWNER_FILE",
    "check_output_owner",
    "claim_output",
    "function_modules",
    "output_owner",
    "step_digest",
    "step_settings",
]

#: Marker file naming the config that owns an output directory.
OWNER_FILE = ".hepsel-analysis.json"

STEPS = (
    "generate",
    "prepare",
    "gather",
    "train",
    "evaluate",
    "plots",
    "explain",
    "why",
    "fidelity",
    "study",
    "decorrelation_scan",
    "robustness",
    "menu_line",
    "menu",
    "report",
    "apply",
)


def _features(cfg: AnalysisConfig, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.model_dump(mode="json").items() if k in keys} for f in cfg.features]


def _without_uncertainty(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """A model's block without ``uncertainty``: only train and evaluate use the replicas."""
    return {k: v for k, v in model_cfg.items() if k != "uncertainty"}


_COMPUTE = ("name", "expr", "function", "inputs", "transform")


def step_settings(
    cfg: AnalysisConfig, step: str, *, sample: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """The config settings that workflow step ``step`` reads (JSON-serialisable).

    ``sample`` is needed for ``generate`` and ``prepare``, ``model`` for
    ``train``, ``explain``, ``fidelity`` and ``study``, and the line's name
    (as ``model``) for ``menu_line``.
    """
    d = cfg.model_dump(mode="json")
    for m in d["models"].values():
        # keys added after a config was written, left at their "off" default, keep the digests it had
        for key in ("uncertainty", "decorrelate", "monotone"):
            if key in m and not m[key]:
                del m[key]
    # switches added later, left at their "on" default, keep the digests too
    for block in (d["evaluation"]["shap"], d["explain"]):
        if block.get("enabled", False):
            del block["enabled"]
    del d["report"]  # whether report.html is in the default target: no step reads it
    # how the folds are grouped into jobs: the same fold models either way
    del d["training"]["fold_jobs"]
    if step == "apply" and sample not in cfg.apply.datasets:
        msg = f"step 'apply' needs one of the datasets {sorted(cfg.apply.datasets)}, not {sample!r}"
        raise ConfigError(msg)
    if step in ("generate", "prepare") and sample not in cfg.samples:
        msg = f"step {step!r} needs one of the samples {sorted(cfg.samples)}, not {sample!r}"
        raise ConfigError(msg)
    if step in ("train", "explain", "why", "fidelity") and model not in cfg.models:
        msg = f"step {step!r} needs one of the models {sorted(cfg.models)}, not {model!r}"
        raise ConfigError(msg)
    if step == "generate":
        assert sample is not None
        return {
            "generate": d["samples"][sample]["generate"],
            "files": [str(p) for p in cfg.sample_files(sample)],
        }
    if step == "prepare":
        assert sample is not None
        s = {
            k: v for k, v in d["samples"][sample].items() if k not in ("generate", "normalisation")
        }
        return {
            "sample": sample,
            "sample_cfg": s,
            "samples": sorted(cfg.samples),
            "preselection": d["preselection"],
            "aliases": d["aliases"],
            "features": _features(cfg, _COMPUTE),
            "spectators": d["spectators"],
            "candidates": d["candidates"],
            "folds": d["folds"],
            "reading": d["reading"],
        }
    if step == "gather":
        return {
            "samples": {
                n: {
                    k: v
                    for k, v in s.items()
                    if k in ("label", "normalisation", "weight", "events_tree")
                }
                for n, s in d["samples"].items()
            },
            "interval": d["evaluation"]["interval"],
        }
    if step == "train":
        assert model is not None
        return {
            "model": model,
            "model_cfg": d["models"][model],
            "training": d["training"],
            "seed": d["seed"],
            "folds": d["folds"],
            "features": _features(cfg, ("name", "range")),
        }
    if step == "evaluate":
        out = {
            k: v
            for k, v in d.items()
            if k
            not in (
                "study",
                "output",
                "decorrelation_scan",
                "explain",
                "robustness",
                "apply",
                "menu",
            )
        }
        out["features"] = _features(cfg, tuple(k for k in d["features"][0] if k != "label"))
        out["samples"] = {
            n: {k: v for k, v in s.items() if k != "generate"} for n, s in d["samples"].items()
        }
        ev = dict(d["evaluation"])
        ev.pop("shap")
        ev["efficiency_vs"] = {var: b["bins"] for var, b in ev["efficiency_vs"].items()}
        out["evaluation"] = ev
        return out
    if step == "plots":
        # whether SHAP values are computed does not change a plot
        ev = {
            **d["evaluation"],
            "shap": {k: v for k, v in d["evaluation"]["shap"].items() if k != "enabled"},
        }
        return {"evaluation": ev, "trigger": d["trigger"], "models": list(d["models"])}
    if step in ("explain", "fidelity"):
        assert model is not None
        out = {
            "model": model,
            "model_cfg": _without_uncertainty(d["models"][model]),
            "seed": d["seed"],
            "folds": d["folds"],
            "features": _features(cfg, ("name", "label") if step == "fidelity" else ("name",)),
        }
        if step == "explain":
            out["shap"] = d["evaluation"]["shap"]
        return out
    if step == "why":
        assert model is not None
        return {
            "model": model,
            "model_cfg": _without_uncertainty(d["models"][model]),
            "seed": d["seed"],
            "folds": d["folds"],
            "features": _features(cfg, ("name",)),
            "explain": d["explain"],
            # the first working point's threshold (read from summary.json) depends on these settings
            "working_points": {
                "trigger": d["trigger"],
                "signal_effs": d["evaluation"]["signal_effs"],
            },
        }
    if step == "study":
        # one point (``model`` given) or the summary over all points
        return {
            "model": model,
            "model_cfg": _without_uncertainty(d["models"][model]) if model is not None else None,
            "study": d["study"],
            "training": d["training"],
            "seed": d["seed"],
            "folds": d["folds"],
            "trigger": d["trigger"],
            "features": _features(cfg, ("name", "range")),
        }
    if step == "decorrelation_scan":
        scan = d["decorrelation_scan"]
        return {
            "scan": scan,
            "model_cfg": _without_uncertainty(d["models"][scan["model"]]) if scan else None,
            "training": d["training"],
            "seed": d["seed"],
            "folds": d["folds"],
            "trigger": d["trigger"],
            "bkg_effs": d["evaluation"]["bkg_effs"],
            "features": _features(cfg, ("name", "range")),
        }
    if step == "apply":
        # one dataset (``sample`` holds its name); the models come in through selection.json
        assert sample is not None
        return {
            "dataset": d["apply"]["datasets"][sample],
            "models": d["apply"]["models"],
            "copy_branches": d["apply"]["copy_branches"],
        }
    if step == "robustness":
        prepare = {s: step_settings(cfg, "prepare", sample=s) for s in sorted(cfg.samples)}
        return {
            "robustness": d["robustness"],
            "prepare": prepare,
            "gather": step_settings(cfg, "gather"),
            "trigger": d["trigger"],
            "models": {n: {"type": m["type"], "base": m["base"]} for n, m in d["models"].items()},
            "folds": d["folds"],
        }
    if step == "menu_line":
        menu = d["menu"]
        if menu is None or model not in menu["lines"]:
            lines = sorted(menu["lines"]) if menu else []
            msg = f"step 'menu_line' needs one of the menu lines {lines}, not {model!r}"
            raise ConfigError(msg)
        line = dict(menu["lines"][model])
        for key in ("prescale", "group"):  # applied by the menu step, not in the line's scores
            line.pop(key)
        out = {"line": model, "line_cfg": line, "mode_column": d["evaluation"]["mode_column"]}
        if line["model"] is None:  # read from the samples' files
            out.update(
                {
                    "samples": {
                        s: step_settings(cfg, "prepare", sample=s)["sample_cfg"]
                        for s in (cfg.signal_sample, cfg.minbias_sample)
                    },
                    "gather": step_settings(cfg, "gather"),
                    "aliases": d["aliases"],
                    "preselection": d["preselection"] if line["preselection"] else [],
                    "reading": d["reading"],
                    "folds": d["folds"],
                    "seed": d["seed"],
                }
            )
        return out
    if step == "menu":
        menu = d["menu"]
        return {
            "menu": {
                "lines": {
                    n: {k: line[k] for k in ("prescale", "group")}
                    for n, line in (menu or {"lines": {}})["lines"].items()
                },
                "channel_weights": menu["channel_weights"] if menu else None,
                "bandwidth": menu["bandwidth"] if menu else None,
            },
            "trigger": d["trigger"],
            "mode_column": d["evaluation"]["mode_column"],
            "mode_names": d["evaluation"]["mode_names"],
            "seed": d["seed"],
        }
    if step == "report":
        # optional blocks enter only when set, so configs without them keep their digests
        extra: dict[str, Any] = (
            {"robustness": d["robustness"]} if d["robustness"] is not None else {}
        )
        if d["decorrelation_scan"] is not None:
            extra["decorrelation_scan"] = True  # its figures come in as an input
        if d["menu"] is not None:
            extra["menu"] = sorted(
                d["menu"]["lines"]
            )  # its figures and menu.json come in as inputs
        # switched-off explanations: their sections go (their files are no longer inputs)
        if not cfg.evaluation.shap.enabled:
            extra["shap"] = False
        if not cfg.explain.enabled:
            extra["why"] = False
        return {
            "name": d["name"],
            "evaluation": d["evaluation"],
            "trigger": d["trigger"],
            "models": {n: {"type": m["type"], "base": m["base"]} for n, m in d["models"].items()},
            "features": _features(cfg, ("name", "label")),
            **extra,
        }
    msg = f"unknown workflow step {step!r}; steps are {', '.join(STEPS)}"
    raise ValueError(msg)


def step_digest(
    cfg: AnalysisConfig, step: str, *, sample: str | None = None, model: str | None = None
) -> str:
    """A short digest of :func:`step_settings` (stable across runs and Python versions)."""
    text = json.dumps(
        step_settings(cfg, step, sample=sample, model=model), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def function_modules(cfg: AnalysisConfig) -> list[Path]:
    """Python modules of function features (their edits rerun prepare and evaluate)."""
    mods = {f.function.rsplit(":", 1)[0] for f in cfg.features if f.function}
    return sorted(cfg.analysis_dir / m for m in mods)


def _owner(cfg: AnalysisConfig) -> str:
    return str(cfg.source) if cfg.source is not None else f"<config {cfg.name!r} built in Python>"


def _read_owner(marker: Path) -> str | None:
    try:
        return json.loads(marker.read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        return None


def output_owner(path: str | os.PathLike[str]) -> tuple[Path, str | None] | None:
    """The output directory of an analysis that ``path`` lies under, and the config owning it.

    Looks for the ownership marker (:data:`OWNER_FILE`) in every directory above
    ``path``, as written and with symbolic links resolved. ``None`` if there is none.
    """
    p = Path(path)
    for start in (p.absolute(), p.resolve()):
        for d in start.parents:
            marker = d / OWNER_FILE
            if marker.is_file():
                return d, _read_owner(marker)
    return None


def check_output_owner(cfg: AnalysisConfig) -> None:
    """Refuse to write into an output directory that another analysis config owns.

    Raises
    ------
    ConfigError
        If ``<output>/.hepsel-analysis.json`` names another config file.
    """
    marker = cfg.output_dir / OWNER_FILE
    if not marker.is_file():
        return
    owner = _read_owner(marker)
    if owner != _owner(cfg):
        msg = (
            f"output directory {str(cfg.output_dir)!r} belongs to the analysis config {owner!r}, "
            f"not to {_owner(cfg)!r}; set 'output:' in the config (or --config output=DIR) to another "
            f"directory, or delete {str(marker)!r} if the old results may be overwritten"
        )
        raise ConfigError(msg)


def claim_output(cfg: AnalysisConfig) -> Path:
    """Record ``cfg``'s config file as the owner of its output directory (after :func:`check_output_owner`)."""
    from ..io.storage import write_json

    check_output_owner(cfg)
    marker = cfg.output_dir / OWNER_FILE
    if not marker.is_file():
        write_json(marker, {"config": _owner(cfg), "name": cfg.name})
    return marker
