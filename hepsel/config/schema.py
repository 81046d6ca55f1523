"""The analysis config: one schema, validated once on load.

Every default lives here. A config is a YAML file (``analyses/<name>/config.yaml``);
:func:`load_config` validates it and resolves relative paths against the
directory the workflow runs from. Errors name the file and the key at fault.
"""

from __future__ import annotations

import glob
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from ..exceptions import ConfigError
from ..io.remote import InputPath, expand_url, is_url

__all__ = [
    "AnalysisConfig",
    "ApplyConfig",
    "ApplyDatasetConfig",
    "CandidateConfig",
    "EvaluationConfig",
    "FeatureConfig",
    "FoldConfig",
    "GenerateConfig",
    "LineModelConfig",
    "MenuConfig",
    "MenuLineConfig",
    "ModelConfig",
    "NormalisationConfig",
    "ReadingConfig",
    "SampleConfig",
    "TriggerConfig",
    "UncertaintyConfig",
    "WarningsConfig",
]


class _Strict(BaseModel):
    """Base: unknown keys are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class GenerateConfig(_Strict):
    """How to make a sample's files with the built-in simulation when they are missing."""

    kind: Literal["signal", "minbias"]
    events: int = Field(gt=0)
    files: int = Field(default=1, gt=0, description="number of files the events are split into")
    seed: int = 1
    pileup: float = Field(default=1.1, gt=0)
    modes: dict[str, float] | None = None
    tracks: bool = Field(
        default=True, description="also write the track tree TrackTuple (one-track trigger lines)"
    )


class NormalisationConfig(_Strict):
    """Per-sample normalisation of the event weights.

    Either a fixed ``scale``, or ``cross_section_pb`` x ``luminosity_pb`` divided by
    the sum of generated weights (all events before any cut).
    """

    scale: float | None = None
    cross_section_pb: float | None = Field(default=None, gt=0)
    luminosity_pb: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_scheme(self) -> NormalisationConfig:
        xs = self.cross_section_pb is not None or self.luminosity_pb is not None
        if xs and self.scale is not None:
            msg = "give either 'scale' or 'cross_section_pb' + 'luminosity_pb', not both"
            raise ValueError(msg)
        if xs and (self.cross_section_pb is None or self.luminosity_pb is None):
            msg = "'cross_section_pb' and 'luminosity_pb' go together"
            raise ValueError(msg)
        return self


#: Sample keys that override ``reading``'s where a sample sets them (also to null).
_SAMPLE_EVENT_KEYS = ("run_branch", "event_branch", "entries_are_events")


class SampleConfig(_Strict):
    """One input sample: a set of ROOT files holding one TTree of candidates."""

    files: list[str] = Field(
        min_length=1,
        description="paths, root:// or http(s):// URLs, or glob patterns (also on root:// directories); '{index}' with generate",
    )
    tree: str = "DecayTree"
    label: Literal[0, 1]
    weight: str | None = Field(default=None, description="per-event weight expression")
    normalisation: NormalisationConfig = Field(default_factory=NormalisationConfig)
    cuts: list[str] = Field(
        default_factory=list, description="sample-specific cuts, after the preselection"
    )
    truth: str | None = Field(
        default=None,
        description="expression flagging candidates that represent the class (e.g. truth-matched signal); "
        "others are kept for event-level decisions but not trained on",
    )
    events_tree: str | None = Field(
        default=None,
        description="tree with one entry per processed event (for rates and efficiencies)",
    )
    n_events: int | None = Field(
        default=None,
        gt=0,
        description="number of processed events of the whole sample, including those without candidates "
        "(instead of events_tree)",
    )
    generate: GenerateConfig | None = None
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="aliases for this sample only, over the global 'aliases' (this sample's win): lets "
        "samples whose trees name branches differently feed the same features",
    )
    run_branch: str | None = Field(
        default=None,
        description="this sample's run number branch, over reading.run_branch (null: 0)",
    )
    event_branch: str | None = Field(
        default=None,
        description="this sample's event number branch, over reading.event_branch (null: the entry number, "
        "with entries_are_events: true)",
    )
    entries_are_events: bool | None = Field(
        default=None,
        description="this sample's entries are whole events, over reading.entries_are_events; with an event "
        "branch, entries repeating a (run, event) are refused",
    )

    @model_serializer(mode="wrap")
    def _inherited_event_keys_left_out(
        self, handler: SerializerFunctionWrapHandler
    ) -> dict[str, Any]:
        # an event key the sample does not set comes from 'reading': written out as null it would,
        # read back, set that sample's key to null (a dumped config must load as the same config)
        out = handler(self)
        for key in _SAMPLE_EVENT_KEYS:
            if key not in self.model_fields_set:
                out.pop(key, None)
        return out

    @model_validator(mode="after")
    def _one_event_count(self) -> SampleConfig:
        if self.events_tree is not None and self.n_events is not None:
            msg = "give either 'events_tree' or 'n_events', not both"
            raise ValueError(msg)
        return self

    @field_validator("files")
    @classmethod
    def _no_empty(cls, v: list[str]) -> list[str]:
        if any(not f.strip() for f in v):
            msg = "empty file name"
            raise ValueError(msg)
        return v

    @model_validator(mode="after")
    def _generate_local(self) -> SampleConfig:
        # the built-in simulation writes local files; a URL names a file to read, never one to make
        if self.generate is not None and any(is_url(f) and "{index}" in f for f in self.files):
            msg = "'generate' writes local files: a URL pattern with '{index}' cannot be generated; drop 'generate' or use a local path"
            raise ValueError(msg)
        return self


class ReadingConfig(_Strict):
    """How ROOT files are streamed."""

    step_size: int | str = Field(
        default="100 MB", description="uproot.iterate step: entries or '100 MB'"
    )
    non_finite: Literal["fail", "drop"] = "fail"
    run_branch: str | None = Field(default="runNumber", description="run number branch (None: 0)")
    event_branch: str | None = Field(
        default="eventNumber",
        description="event number branch (None: the entry number, with entries_are_events: true)",
    )
    entries_are_events: bool = Field(
        default=False,
        description="each tree entry is a whole event (e.g. NanoAOD); needed for event_branch: null",
    )

    # event_branch: null without entries_are_events is refused per sample (AnalysisConfig), where
    # samples.<name>.event_branch / entries_are_events may override these


class CutConfig(_Strict):
    """A named preselection cut (a boolean expression)."""

    name: str
    cut: str


class FeatureConfig(_Strict):
    """A derived feature: an expression, or a named function of an analysis module."""

    name: str
    expr: str | None = None
    function: str | None = Field(
        default=None, description="'module.py:function' relative to the analysis directory"
    )
    inputs: list[str] = Field(default_factory=list, description="branches a function needs")
    transform: Literal["none", "log", "log1p", "abs", "arccos"] = "none"
    range: tuple[float, float] | None = Field(
        default=None, description="physical bounds (for generated events)"
    )
    label: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FeatureConfig:
        if (self.expr is None) == (self.function is None):
            msg = f"feature {self.name!r}: give exactly one of 'expr' or 'function'"
            raise ValueError(msg)
        return self


class CandidateConfig(_Strict):
    """Which candidates of an event are kept (when the tables are prepared, before any training)."""

    mode: Literal["all", "best"] = "all"
    by: str = Field(
        default="B_PT",
        description="mode 'best': the expression whose largest value per event is kept",
    )

    @field_validator("by")
    @classmethod
    def _not_score(cls, v: str) -> str:
        if v.strip() == "score":
            msg = (
                "'score' is not a selection criterion: candidates are chosen before any classifier "
                "exists, and event-level trigger figures already take each event's best-scored "
                "candidate; give a branch expression (e.g. B_PT) or use mode: all"
            )
            raise ValueError(msg)
        return v


class FoldConfig(_Strict):
    """k-fold cross-training: the fold of a candidate is its event number (``reading.event_branch``) mod k."""

    k: int = Field(default=5, ge=2)


class DecorrelateConfig(_Strict):
    """DisCo decorrelation of a torch classifier's score from a spectator (arXiv:2001.05310)."""

    spectator: str = Field(description="a column listed in spectators (e.g. the B mass)")
    strength: float = Field(
        ge=0, description="lambda: loss += lambda * dCor^2(score, spectator) on background"
    )


#: Model kinds that honour ``models.<name>.monotone``.
MONOTONE_KINDS = ("bdt", "lipschitz_mlp")
#: Model kinds that honour ``models.<name>.decorrelate``.
DECORRELATE_KINDS = ("mlp", "lipschitz_mlp")


class UncertaintyConfig(_Strict):
    """Per-candidate score uncertainty: extra replicas of each fold model (see :mod:`hepsel.stats.uncertainty`).

    Each fold trains ``replicas`` more models by the same procedure with
    other seeds; a candidate's ``score_<model>_err`` is the sample standard
    deviation of its scores from the replicas of the fold that did not see it.
    """

    replicas: int = Field(
        default=3, ge=2, description="extra fold models per fold, each with its own seed"
    )
    bootstrap: bool = Field(
        default=False,
        description="each replica also trains on a Poisson bootstrap (whole events) of the training candidates",
    )
    calibration: bool = Field(
        default=True,
        description="train one more independent replica per fold and check the uncertainty against it",
    )


class ModelConfig(_Strict):
    """One classifier. ``params`` go to the estimator's constructor."""

    type: Literal["bdt", "bbdt", "mlp", "lipschitz_mlp", "gan_augmented", "fisher", "autoencoder"]
    params: dict[str, Any] = Field(default_factory=dict)
    base: Literal["bdt", "mlp"] = Field(default="bdt", description="gan_augmented: the classifier")
    gan: dict[str, Any] = Field(default_factory=dict, description="gan_augmented: WGANGP params")
    synthetic_ratio: float = Field(default=1.0, ge=0, description="synthetic / real signal events")
    synthetic_weight: float = Field(default=1.0, gt=0, description="weight of a synthetic event")
    condition_on: str | None = Field(
        default=None, description="gan_augmented: a categorical column"
    )
    uncertainty: UncertaintyConfig | None = Field(
        default=None,
        description="per-candidate score uncertainty from replicas of the fold models (default: off)",
    )
    monotone: dict[str, Literal[1, -1]] = Field(
        default_factory=dict,
        description="feature -> 1 (score non-decreasing in it) or -1 (non-increasing); bdt and lipschitz_mlp",
    )
    decorrelate: DecorrelateConfig | None = Field(
        default=None, description="DisCo decorrelation from a spectator; mlp and lipschitz_mlp"
    )


class DecorrelationScanConfig(_Strict):
    """Retrain one model with ``decorrelate`` at several strengths on one fold (``hepsel decorrelation-scan``)."""

    model: str = Field(description="a model with a decorrelate block")
    strengths: list[float] = Field(
        default_factory=lambda: [0.0, 1.0, 3.0, 10.0, 30.0],
        min_length=1,
        description="lambda values",
    )
    fold: int = Field(default=0, ge=0, description="the held-out fold the scan is evaluated on")
    chosen: float | None = Field(
        default=None,
        description="lambda whose sculpting plot is shown next to lambda = 0 (default: the model's strength)",
    )

    @field_validator("strengths")
    @classmethod
    def _non_negative(cls, v: list[float]) -> list[float]:
        if any(x < 0 for x in v):
            msg = f"strengths must be >= 0, got {v}"
            raise ValueError(msg)
        return v


class TriggerConfig(_Strict):
    """Trigger-rate settings."""

    input_rate_khz: float = Field(default=30000.0, gt=0)
    target_rates_khz: list[float] = Field(
        default_factory=lambda: [330.0, 660.0, 1000.0], min_length=1
    )
    signal_sample: str | None = None
    minbias_sample: str | None = None


class LineModelConfig(_Strict):
    """A classifier trained for one menu line on its own candidate tree (e.g. a one-track BDT)."""

    type: Literal["bdt"] = "bdt"
    features: list[str] = Field(min_length=1, description="expressions over the line's tree")
    params: dict[str, Any] = Field(default_factory=dict)


class MenuLineConfig(_Strict):
    """One line of a trigger menu: a score with one free threshold (the line fires at score >= threshold).

    Exactly one of ``model`` (a trained model of the study, on its candidates),
    ``score`` (an expression) or ``train`` (a classifier trained for the line).
    """

    model: str | None = Field(
        default=None, description="a model of `models:`; its raw output is the score"
    )
    score: str | None = Field(
        default=None, description="expression whose threshold the menu chooses"
    )
    train: LineModelConfig | None = Field(
        default=None, description="a classifier trained on `tree`"
    )
    tree: str | None = Field(
        default=None,
        description="candidate tree of a score or train line (default: the samples' tree)",
    )
    cut: str | None = Field(default=None, description="fixed requirements before the threshold")
    preselection: bool = Field(
        default=False,
        description="score line on the samples' tree: apply the study's preselection too",
    )
    prescale: float = Field(default=1.0, ge=0, le=1)
    group: str | None = Field(
        default=None, description="lines of one group share one threshold (scores on one scale)"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> MenuLineConfig:
        kinds = [k for k in ("model", "score", "train") if getattr(self, k) is not None]
        if len(kinds) != 1:
            msg = f"a line needs exactly one of 'model', 'score' or 'train', got {kinds or 'none'}"
            raise ValueError(msg)
        if self.model is not None and (
            self.tree is not None or self.cut is not None or self.preselection
        ):
            msg = "a 'model' line runs on the study's preselected candidates: 'tree', 'cut' and 'preselection' do not apply"
            raise ValueError(msg)
        return self

    @property
    def kind(self) -> str:
        """``"model"``, ``"score"`` or ``"train"``."""
        return "model" if self.model is not None else "score" if self.score is not None else "train"


class BandwidthConfig(_Strict):
    """Settings of the bandwidth division (:func:`hepsel.stats.bandwidth.divide_bandwidth`)."""

    n_steps: int = Field(default=300, gt=0)
    learning_rate: float = Field(default=0.05, gt=0)
    temperature: tuple[float, float] = (1.0, 0.005)
    curve_points: int = Field(
        default=6, ge=0, description="extra rates for the efficiency-vs-rate curves (0: none)"
    )


class MenuConfig(_Strict):
    """A trigger menu: lines sharing ``trigger.target_rates_khz``, thresholds chosen together."""

    lines: dict[str, MenuLineConfig] = Field(min_length=1)
    channel_weights: dict[int, float] = Field(
        default_factory=dict,
        description="weight of each signal channel (value of evaluation.mode_column) in the objective; default 1",
    )
    bandwidth: BandwidthConfig = Field(default_factory=BandwidthConfig)


class ShapConfig(_Strict):
    """SHAP interpretability settings."""

    enabled: bool = Field(
        default=True,
        description="compute SHAP values of each explainable model (the workflow's explain rule) and show "
        "their figures in the report; false: no explain jobs, no SHAP section",
    )
    events: int = Field(default=2000, gt=0)
    background_events: int = Field(default=200, gt=0)
    mlp_samples: int = Field(
        default=50, gt=0, description="expected-gradients samples per event (MLP)"
    )


class WhyCandidatesConfig(_Strict):
    """How many candidates of each kind the workflow explains per model, at its first working point."""

    background: int = Field(
        default=2, ge=0, description="highest-scoring background candidates that pass"
    )
    signal: int = Field(
        default=2, ge=0, description="lowest-scoring truth-matched signal candidates that fail"
    )
    random: int = Field(default=1, ge=0, description="random candidates (seeded)")


class ExplainConfig(_Strict):
    """Local explanations (SHAP waterfall and LIME per candidate), global rankings and their trust."""

    enabled: bool = Field(
        default=True,
        description="explain selected candidates of each model (the workflow's why rule) and show them in the "
        "report; false: no why jobs, no 'Why this candidate?' section",
    )
    candidates: WhyCandidatesConfig = Field(default_factory=WhyCandidatesConfig)
    reference_events: int = Field(
        default=2000,
        gt=1,
        description="candidates of each fold model's training sample used as LIME/SHAP reference",
    )
    lime_samples: int = Field(
        default=3000, gt=10, description="LIME neighbourhood size per explanation"
    )
    lime_seeds: int = Field(
        default=3, ge=1, description="LIME seeds per explained candidate (spread of the weights)"
    )
    min_lime_r2: float = Field(
        default=0.5, ge=0, le=1, description="LIME fits with a lower R^2 are flagged"
    )
    ranking_events: int = Field(
        default=40,
        gt=1,
        description="candidates for the mean |SHAP| and mean |LIME weight| rankings",
    )
    permutation_events: int = Field(
        default=20000, gt=10, description="held-out candidates for permutation importance"
    )
    permutation_repeats: int = Field(
        default=5, ge=2, description="permutations per feature (spread of the AUC drop)"
    )
    mlp_samples: int = Field(
        default=200, gt=0, description="expected-gradients samples per candidate (torch models)"
    )


class ReportConfig(_Strict):
    """The HTML report (``report.html``, with ``benchmarks.json``)."""

    enabled: bool = Field(
        default=True,
        description="write report.html in the workflow's default target; false: summary.json, scores.root "
        "and the plots only (the report rule still runs when asked for: snakemake report)",
    )


class OptimalCutConfig(_Strict):
    """Expected yields for S/sqrt(S+B) and Punzi optimisation.

    In an offline study (no ``trigger`` block) yields not given here are the
    samples' expected yields after the preselection (their normalised weights).
    """

    signal_yield: float = Field(default=1000.0, gt=0)
    background_yield: float = Field(default=1.0e6, gt=0)
    punzi_sigma: float = Field(default=5.0, gt=0)
    min_background_candidates: int = Field(
        default=10,
        ge=0,
        description="cuts keeping fewer simulated background candidates are not considered",
    )


class WarningsConfig(_Strict):
    """Thresholds of the report's warnings panel (see :mod:`hepsel.report.diagnostics`)."""

    ks_pvalue: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="train/test KS p-value below this, corrected for the number of tests (all folds and classes, Bonferroni): overtraining",
    )
    auc_gap: float = Field(
        default=0.005, ge=0, description="train AUC minus test AUC above this: overtraining"
    )
    fold_spread: float = Field(
        default=2.0,
        gt=0,
        description="fold spread of the signal efficiency above this many binomial errors of one fold",
    )
    auc_fold_std: float = Field(
        default=0.005, ge=0, description="standard deviation of the per-fold AUCs above this"
    )
    c2st_auc: float = Field(
        default=0.6,
        gt=0.5,
        le=1,
        description="GAN classifier two-sample AUC above this (0.5: indistinguishable)",
    )
    min_minbias_events: int = Field(
        default=10,
        ge=0,
        description="working points passed by fewer minimum-bias events (offline: simulated background candidates, "
        "or events with evaluation.yields: events) are unresolved",
    )
    max_rate_rel_error: float = Field(
        default=0.3,
        gt=0,
        description="working points whose measured rate has a larger relative error are unresolved",
    )


class BinningConfig(_Strict):
    """Binning of an efficiency-vs-variable plot."""

    bins: list[float] = Field(min_length=2)
    label: str


class EvaluationConfig(_Strict):
    """What the evaluation computes."""

    bkg_effs: list[float] = Field(default_factory=lambda: [0.01, 0.1, 0.3])
    signal_effs: list[float] = Field(
        default_factory=lambda: [0.5, 0.8, 0.9],
        description="offline studies (no trigger block): working points at these signal efficiencies",
    )
    bootstrap: int = Field(
        default=100, ge=0, description="replicas for AUC and working-point spreads; 0: none"
    )
    interval: Literal["clopper_pearson", "wilson", "normal"] = "clopper_pearson"
    efficiency_vs: dict[str, BinningConfig] = Field(default_factory=dict)
    mass: str | None = Field(default=None, description="column for the sculpting check")
    mass_label: str | None = Field(
        default=None,
        description="axis label of the mass column, with its unit (default: the column's name)",
    )
    mode_column: str | None = Field(
        default=None, description="spectator holding the signal decay mode"
    )
    mode_names: dict[int, str] = Field(default_factory=dict, description="decay-mode code -> label")
    background_category: str | None = Field(
        default=None,
        description="spectator holding the minimum-bias candidate's category (background composition)",
    )
    background_category_names: dict[int, str] = Field(
        default_factory=dict, description="background category code -> label"
    )
    warnings: WarningsConfig = Field(default_factory=WarningsConfig)
    shap: ShapConfig = Field(default_factory=ShapConfig)
    optimal_cut: OptimalCutConfig = Field(default_factory=OptimalCutConfig)
    yields: Literal["candidates", "events"] = Field(
        default="candidates",
        description="offline studies: expected yields, working points and optimal cuts count candidates, or "
        "events (an event passes when any of its class-representative candidates passes; its weight counts once)",
    )

    @field_validator("bootstrap")
    @classmethod
    def _no_single_replica(cls, v: int) -> int:
        if v == 1:
            msg = "one bootstrap replica has no spread; use 0 (no bootstrap) or at least 2"
            raise ValueError(msg)
        return v


class TrainingConfig(_Strict):
    """Training-set policy, and how a fold model's training data are held.

    Every fold job reads only its training rows and its model's columns,
    features as float32. ``external_memory: true`` keeps even those
    features on disk for ``bdt``, ``fisher``, ``mlp`` and ``lipschitz_mlp``
    (:mod:`hepsel.train.out_of_core`), for data sets beyond a job's memory.
    """

    negative_weights: Literal["keep", "resample", "abs", "drop"] = Field(
        default="keep",
        description="keep: learners that take negative weights (mlp, fisher) get them as they are, "
        "the others (bdt, bbdt, autoencoder, the GAN) get them made positive by cell resampling; resample: cell resampling "
        "for every learner; abs: |w|; drop: weight 0 for negative weights",
    )
    balance_classes: bool = True
    external_memory: bool = Field(
        default=False,
        description="train beyond memory: bdt through xgboost's external-memory interface (quantised pages "
        "cached on disk), fisher in two passes, mlp and lipschitz_mlp from minibatches read row group by row group; "
        "only the per-row bookkeeping (label, weight, event numbers) is held in memory. Other kinds train in memory",
    )
    fold_jobs: Literal["per_fold", "per_model"] = Field(
        default="per_fold",
        description="Snakemake jobs of the train rule: per_fold, one job per model and fold; per_model, "
        "one job per model whose threads (its share of the cores: --cores over the number of models, "
        "1 to k) train that many folds side by side, one process each, or with one thread all folds in turn "
        "(one interpreter start-up and one set of imports per worker, not per fold: faster on few cores). "
        "The fold models are the same; switching reruns nothing",
    )


class ApplyDatasetConfig(_Strict):
    """Files a trained selection is applied to (``snakemake apply``)."""

    files: list[str] = Field(
        min_length=1,
        description="paths or glob patterns ('**' matches any depth of directories); hepsel's own outputs are skipped",
    )
    tree: str | None = Field(
        default=None, description="input tree (default: the signal sample's tree)"
    )


class ApplyConfig(_Strict):
    """Application of the trained selection to other files: one job per input file."""

    datasets: dict[str, ApplyDatasetConfig] = Field(default_factory=dict)
    models: list[str] = Field(default_factory=list, description="models applied (default: all)")
    copy_branches: bool = Field(
        default=False, description="also copy the input's flat numeric branches"
    )


def _default_n_real() -> list[int | Literal["all"]]:
    return [500, 2000, 10000, "all"]


class StudyConfig(_Strict):
    """The augmentation study: baseline vs GAN-augmented at reduced signal statistics."""

    n_real: list[int | Literal["all"]] = Field(default_factory=_default_n_real)
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    models: list[str] = Field(
        default_factory=list,
        description="models compared; default: every bdt, mlp and gan_augmented model",
    )


class BranchShiftConfig(_Strict):
    """A miscalibration of the branches a pattern matches: ``x -> scale * x + offset``."""

    scale: float = 1.0
    offset: float = Field(default=0.0, description="added after scaling, in the branch's own units")


class RobustnessConfig(_Strict):
    """Robustness study: the selection at fixed working points on miscalibrated inputs."""

    shifts: dict[str, dict[str, float | BranchShiftConfig]] = Field(
        min_length=1,
        description="shift name -> {branch pattern (fnmatch glob on the ntuple's branch names): "
        "scale factor, or {scale, offset}}; applied to the raw branches when reading",
    )

    @field_validator("shifts")
    @classmethod
    def _check_shifts(
        cls, v: dict[str, dict[str, float | BranchShiftConfig]]
    ) -> dict[str, dict[str, float | BranchShiftConfig]]:
        for name, patterns in v.items():
            _check_file_name(name, f"robustness.shifts.{name}", "shift names")
            if not patterns:
                msg = f"robustness.shifts.{name}: give at least one branch pattern with its scale factor"
                raise ValueError(msg)
            for pattern, spec in patterns.items():
                scale, offset = (
                    (spec, 0.0) if isinstance(spec, (int, float)) else (spec.scale, spec.offset)
                )
                if not (math.isfinite(scale) and math.isfinite(offset)):
                    msg = f"robustness.shifts.{name}.{pattern}: scale and offset must be finite numbers"
                    raise ValueError(msg)
        return v


_SAMPLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")
_MAX_NAME = 100
_NOT_IN_FILE_NAMES = frozenset('/\\<>:"|?*')


def _check_file_name(name: str, key: str, what: str) -> None:
    """Refuse a name that cannot safely be part of a file name (plots are named after it)."""
    bad = sorted({c for c in name if c in _NOT_IN_FILE_NAMES or not c.isprintable()})
    if not name or name != name.strip() or name.startswith(".") or len(name) > _MAX_NAME or bad:
        detail = f" (it contains {', '.join(map(repr, bad))})" if bad else ""
        msg = (
            f"{key}: {what} become parts of file names; {name!r} is not usable{detail}: use at most "
            f"{_MAX_NAME} printable characters without / \\ < > : \" | ? * and no leading '.' or spaces"
        )
        raise ValueError(msg)


def _feature_list(v: Any) -> Any:
    # A bare string is shorthand for a feature that is just a branch.
    if isinstance(v, list):
        return [{"name": f, "expr": f} if isinstance(f, str) else f for f in v]
    return v


def _cut_list(v: Any) -> Any:
    if isinstance(v, list):
        return [{"name": c, "cut": c} if isinstance(c, str) else c for c in v]
    return v


@dataclass(frozen=True)
class EventIds:
    """A sample's event identification (see :meth:`AnalysisConfig.event_ids`)."""

    run_branch: str | None
    event_branch: str | None
    entries_are_events: bool
    source: dict[str, str]


class AnalysisConfig(_Strict):
    """A whole analysis."""

    name: str
    output: str = Field(
        default="",
        description="default: results/<analysis directory name> (results/<name> for a config built in Python)",
    )
    seed: int = 42
    samples: dict[str, SampleConfig] = Field(min_length=2)
    aliases: dict[str, str] = Field(default_factory=dict)
    preselection: Annotated[list[CutConfig], Field(default_factory=list)]
    features: list[FeatureConfig] = Field(min_length=1)
    spectators: list[str] = Field(
        default_factory=list, description="extra columns kept for evaluation (branches or aliases)"
    )
    candidates: CandidateConfig = Field(default_factory=CandidateConfig)
    folds: FoldConfig = Field(default_factory=FoldConfig)
    reading: ReadingConfig = Field(default_factory=ReadingConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    models: dict[str, ModelConfig] = Field(min_length=1)
    trigger: TriggerConfig | None = Field(
        default=None,
        description="trigger-rate settings; without them the study is offline (expected yields)",
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    study: StudyConfig = Field(default_factory=StudyConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    apply: ApplyConfig = Field(default_factory=ApplyConfig)
    decorrelation_scan: DecorrelationScanConfig | None = Field(
        default=None, description="the DisCo strength scan of one model (only run when present)"
    )
    robustness: RobustnessConfig | None = Field(
        default=None, description="miscalibration shifts; without them there is no robustness step"
    )
    menu: MenuConfig | None = Field(
        default=None,
        description="a trigger menu of several lines sharing the output rate (menu step)",
    )

    # set by load_config, not by the YAML
    base_dir: Path = Field(default=Path(), exclude=True)
    source: Path | None = Field(default=None, exclude=True)

    _features_v = field_validator("features", mode="before")(_feature_list)
    _cuts_v = field_validator("preselection", mode="before")(_cut_list)

    @model_validator(mode="after")
    def _check(self) -> AnalysisConfig:
        if not self.output:
            self.output = f"results/{self.name}"
        labels = {s.label for s in self.samples.values()}
        if labels != {0, 1}:
            msg = "samples need at least one signal (label: 1) and one background (label: 0)"
            raise ValueError(msg)
        for sample in self.samples:
            if not _SAMPLE_NAME.fullmatch(sample):
                msg = (
                    f"samples.{sample}: sample names become file and directory names; use letters, digits, "
                    "'_' and '-' (not first)"
                )
                raise ValueError(msg)
        for f in self.features:
            _check_file_name(f.name, f"features ({f.name!r})", "feature names")
        for var in self.evaluation.efficiency_vs:
            _check_file_name(var, f"evaluation.efficiency_vs.{var}", "variable names")
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"duplicate feature names: {dupes}"
            raise ValueError(msg)
        for key in ("signal_sample", "minbias_sample"):
            value = getattr(self.trigger, key, None)
            if value is not None and value not in self.samples:
                msg = f"trigger.{key}: unknown sample {value!r}; samples are {sorted(self.samples)}"
                raise ValueError(msg)
        if self.trigger is not None and self.evaluation.yields != "candidates":
            msg = (
                "evaluation.yields: counts the expected yields of offline studies (no trigger block); a trigger "
                "study counts events already (rates and efficiencies are event level): remove the key"
            )
            raise ValueError(msg)
        for sample in self.samples:
            ids = self.event_ids(sample)
            if ids.event_branch is None and not ids.entries_are_events:
                msg = (
                    f"{ids.source['event_branch']}: null numbers the events of sample {sample!r} by tree entry, so "
                    "the candidates of one event would fall into different folds (a model would be tested on "
                    "candidates whose event it trained on); give the event-number branch, or set "
                    f"{ids.source['entries_are_events']}: true if every entry is one whole event (e.g. NanoAOD)"
                )
                raise ValueError(msg)
        rate_sample = self.samples[self.minbias_sample]
        if (
            self.trigger is not None
            and rate_sample.events_tree is None
            and rate_sample.n_events is None
        ):
            msg = (
                f"samples.{self.minbias_sample}: output rates need the number of processed events, including "
                "events without any candidate (a candidate tree alone overestimates every rate); set "
                "'events_tree' (a tree with one entry per event, e.g. EventTuple) or 'n_events'"
            )
            raise ValueError(msg)
        for name, model in self.models.items():
            if not name.isidentifier() or len(name) > _MAX_NAME:
                msg = f"models.{name}: model names must be identifiers of at most {_MAX_NAME} characters (they become branch and file names)"
                raise ValueError(msg)
            if model.condition_on is not None and model.condition_on not in self.spectators:
                msg = f"models.{name}.condition_on: {model.condition_on!r} must be listed in spectators"
                raise ValueError(msg)
            self._check_constraints(name, model)
        known = set(self.spectators) | set(self.feature_names)
        ev = self.evaluation
        for key, cols in (
            ("evaluation.efficiency_vs", list(ev.efficiency_vs)),
            ("evaluation.mass", [ev.mass] if ev.mass else []),
            ("evaluation.mode_column", [ev.mode_column] if ev.mode_column else []),
        ):
            for col in cols:
                if col not in known:
                    msg = f"{key}: {col!r} is neither a feature nor listed in spectators; add it to spectators"
                    raise ValueError(msg)
        for m in self.study.models:
            if m not in self.models:
                msg = f"study.models: unknown model {m!r}; models are {sorted(self.models)}"
                raise ValueError(msg)
        for m in self.apply.models:
            if m not in self.models:
                msg = f"apply.models: unknown model {m!r}; models are {sorted(self.models)}"
                raise ValueError(msg)
        for d in self.apply.datasets:
            if not d.replace("_", "").replace("-", "").isalnum():
                msg = f"apply.datasets.{d}: dataset names become directory names: use letters, digits, _ and -"
                raise ValueError(msg)
        if self.menu is not None:
            self._check_menu(self.menu)
        scan = self.decorrelation_scan
        if scan is not None:
            if scan.model not in self.models:
                msg = f"decorrelation_scan.model: unknown model {scan.model!r}; models are {sorted(self.models)}"
                raise ValueError(msg)
            if self.models[scan.model].decorrelate is None:
                msg = (
                    f"decorrelation_scan.model: model {scan.model!r} has no decorrelate block; add "
                    "models.<name>.decorrelate: {spectator: ..., strength: ...}"
                )
                raise ValueError(msg)
            if scan.fold >= self.folds.k:
                msg = f"decorrelation_scan.fold: {scan.fold} out of range for folds.k = {self.folds.k}"
                raise ValueError(msg)
        return self

    def _check_menu(self, menu: MenuConfig) -> None:
        """The ``menu`` block against the rest: a trigger study, known models, names fit for files."""
        if self.trigger is None:
            msg = "menu: a menu shares an output rate; it needs a trigger block (trigger.target_rates_khz)"
            raise ValueError(msg)
        if not self.evaluation.mode_column:
            msg = "menu: the signal channels are the values of evaluation.mode_column; set it"
            raise ValueError(msg)
        for name, line in menu.lines.items():
            if not name.isidentifier() or len(name) > _MAX_NAME:
                msg = f"menu.lines.{name}: line names must be identifiers of at most {_MAX_NAME} characters (they become branch and file names)"
                raise ValueError(msg)
            if name in self.models or name == "menu":
                msg = f"menu.lines.{name}: a line may not be named 'menu' or like a model (their decision branches would clash)"
                raise ValueError(msg)
            if line.model is not None and line.model not in self.models:
                msg = f"menu.lines.{name}.model: unknown model {line.model!r}; models are {sorted(self.models)}"
                raise ValueError(msg)
        for code, w in menu.channel_weights.items():
            if not (w >= 0 and w < float("inf")):
                msg = f"menu.channel_weights.{code}: weights must be finite and >= 0, got {w}"
                raise ValueError(msg)

    def _check_constraints(self, name: str, model: ModelConfig) -> None:
        """``monotone`` and ``decorrelate`` of model ``name``: known columns, a kind that honours them."""
        if model.monotone:
            if model.type not in MONOTONE_KINDS:
                msg = (
                    f"models.{name}.monotone: a {model.type} model cannot be constrained to be monotone; "
                    f"use type {' or '.join(MONOTONE_KINDS)}, or remove the monotone block"
                )
                raise ValueError(msg)
            for feature in model.monotone:
                if feature not in self.feature_names:
                    msg = f"models.{name}.monotone: {feature!r} is not a feature; features are {self.feature_names}"
                    raise ValueError(msg)
        if model.decorrelate is not None:
            if model.type not in DECORRELATE_KINDS:
                msg = (
                    f"models.{name}.decorrelate: a {model.type} model cannot be decorrelated; "
                    f"use type {' or '.join(DECORRELATE_KINDS)}, or remove the decorrelate block"
                )
                raise ValueError(msg)
            if model.decorrelate.spectator not in self.spectators:
                msg = (
                    f"models.{name}.decorrelate.spectator: {model.decorrelate.spectator!r} must be listed in "
                    f"spectators (spectators are {self.spectators})"
                )
                raise ValueError(msg)
        for key in ("monotone_constraints", "decorrelation_strength"):
            if key in model.params:
                block = "monotone" if key == "monotone_constraints" else "decorrelate"
                msg = f"models.{name}.params.{key}: set it with models.{name}.{block}"
                raise ValueError(msg)

    def monotone_constraints(self, model: str) -> list[int]:
        """``models.<model>.monotone`` as one value in (-1, 0, 1) per feature, in feature order."""
        mono = self.models[model].monotone
        return [int(mono.get(f, 0)) for f in self.feature_names]

    # -- derived, read-only views -------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Feature names in matrix-column order."""
        return [f.name for f in self.features]

    @property
    def signal_sample(self) -> str:
        """The sample whose events define trigger efficiencies."""
        if self.trigger is not None and self.trigger.signal_sample:
            return self.trigger.signal_sample
        return next(n for n, s in self.samples.items() if s.label == 1)

    @property
    def minbias_sample(self) -> str:
        """The sample whose events define output rates."""
        if self.trigger is not None and self.trigger.minbias_sample:
            return self.trigger.minbias_sample
        return next(n for n, s in self.samples.items() if s.label == 0)

    def event_ids(self, sample: str) -> EventIds:
        """How events of ``sample`` are identified: its own keys over ``reading``'s.

        ``samples.<name>.run_branch`` / ``event_branch`` / ``entries_are_events``
        win where the sample sets them (also to null); the others come from
        ``reading``. ``source`` names the config key of each, for messages.
        """
        scfg, reading = self.samples[sample], self.reading
        given = scfg.model_fields_set
        out: dict[str, Any] = {}
        where: dict[str, str] = {}
        for key in _SAMPLE_EVENT_KEYS:
            own = key in given and (
                key != "entries_are_events" or scfg.entries_are_events is not None
            )
            out[key] = getattr(scfg if own else reading, key)
            where[key] = f"samples.{sample}.{key}" if own else f"reading.{key}"
        return EventIds(**out, source=where)

    @property
    def offline(self) -> bool:
        """No ``trigger`` block: the study reports expected yields instead of rates."""
        return self.trigger is None

    @property
    def rates(self) -> TriggerConfig:
        """The ``trigger`` block, for steps that need rates (an error in an offline study)."""
        if self.trigger is None:
            msg = "this needs output rates: add a 'trigger' block (input_rate_khz, target_rates_khz) to the config"
            raise ConfigError(msg)
        return self.trigger

    def sample_aliases(self, sample: str | None = None) -> dict[str, str]:
        """The alias table expressions of ``sample`` are read with.

        The global ``aliases`` with ``samples.<sample>.aliases`` over them. Without
        ``sample``: those of the signal sample, the table a saved selection applies
        to new files with.
        """
        name = self.signal_sample if sample is None else sample
        return {**self.aliases, **self.samples[name].aliases}

    def path(self, p: str | os.PathLike[str]) -> Path:
        """Resolve a config path against the directory the analysis runs from."""
        q = Path(p)
        return q if q.is_absolute() else self.base_dir / q

    @property
    def output_dir(self) -> Path:
        """Where results go."""
        return self.path(self.output)

    @property
    def analysis_id(self) -> str:
        """The analysis as named by its location: the config's directory name.

        ``analyses/topo2body/config.yaml`` -> ``topo2body``; a config file with
        another name adds its stem (``analyses/b2kpi/tight.yaml`` ->
        ``b2kpi_tight``). Without a file (a config built in Python): ``name``.
        """
        if self.source is None:
            return self.name
        if self.source.stem == "config":
            return self.source.parent.name
        return f"{self.source.parent.name}_{self.source.stem}"

    @property
    def analysis_dir(self) -> Path:
        """The folder holding the config (and any features.py)."""
        return self.source.parent if self.source is not None else self.base_dir

    def apply_files(self, dataset: str) -> list[InputPath]:
        """The input files of an ``apply`` dataset, globs expanded, in sorted order (URLs stay strings)."""
        out: list[InputPath] = []
        for pattern in self.apply.datasets[dataset].files:
            out.extend(self._expand(pattern, f"apply.datasets.{dataset}.files"))
        return out

    def _expand(self, pattern: str, key: str) -> list[InputPath]:
        """A path or URL, or the sorted matches of a glob pattern (``**`` recursive; none is an error naming ``key``).

        A ``root://`` pattern is globbed on the XRootD server (:func:`hepsel.io.remote.expand_url`).
        """
        if is_url(pattern):
            return list(expand_url(pattern, key))
        if not glob.has_magic(pattern):
            return [self.path(pattern)]
        matches = sorted(glob.glob(str(self.path(pattern)), recursive=True))  # '**': any depth
        if not matches:
            msg = f"{key}: pattern {pattern!r} matches no file"
            raise ConfigError(msg)
        return [Path(m) for m in matches]

    def sample_files(self, sample: str) -> list[InputPath]:
        """The input files of a sample, globs expanded, in sorted order (URLs stay strings).

        With a ``generate`` block, ``{index}`` in the pattern expands to one name per
        file to generate (whether or not it exists yet).
        """
        cfg = self.samples[sample]
        out: list[InputPath] = []
        for pattern in cfg.files:
            if cfg.generate is not None and "{index}" in pattern:
                out.extend(
                    self.path(pattern.format(index=f"{i:03d}")) for i in range(cfg.generate.files)
                )
            else:
                out.extend(self._expand(pattern, f"samples.{sample}.files"))
        return out
