"""Where every output of an analysis lives: :class:`Layout`.

The Snakefile, the CLI and the steps agree on file names through it. It is the
lowest module of :mod:`hepsel.workflow`: the evaluation and study modules import
it without importing any step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.schema import AnalysisConfig

__all__ = [
    "Layout",
]


@dataclass(frozen=True)
class Layout:
    """Where every output of an analysis lives (under ``cfg.output_dir``)."""

    root: Path

    @classmethod
    def of(cls, cfg: AnalysisConfig) -> Layout:
        """The layout of ``cfg``."""
        return cls(cfg.output_dir)

    def prepared(self, sample: str, index: int) -> Path:
        """Prepared Parquet table of input file ``index`` of ``sample``."""
        return self.root / "prepared" / sample / f"{index:03d}.parquet"

    @property
    def dataset(self) -> Path:
        """The gathered table of all samples."""
        return self.root / "dataset.parquet"

    def model(self, model: str, fold: int) -> Path:
        """Prefix of a fold model's files."""
        return self.root / "models" / model / f"fold{fold}"

    def model_info(self, model: str, fold: int) -> Path:
        """Training record of a fold model."""
        return self.root / "models" / model / f"fold{fold}.info.json"

    @property
    def scores(self) -> Path:
        """Per-candidate scores (a contract: TTree ``scores``)."""
        return self.root / "scores.root"

    @property
    def summary(self) -> Path:
        """Per-model figures (a contract)."""
        return self.root / "summary.json"

    @property
    def curves(self) -> Path:
        """Curves and histograms behind the plots."""
        return self.root / "curves.npz"

    def menu_line(self, line: str) -> Path:
        """A menu line's best score per event (Parquet; a train line's fold models beside it)."""
        return self.root / "menu" / "lines" / f"{line}.parquet"

    @property
    def menu(self) -> Path:
        """The bandwidth division of the menu (json)."""
        return self.root / "menu.json"

    @property
    def selection(self) -> Path:
        """The saved :class:`~hepsel.Selection`."""
        return self.root / "selection"

    def shap(self, model: str) -> Path:
        """SHAP values of a model (npz)."""
        return self.root / "shap" / f"{model}.npz"

    def why(self, model: str) -> Path:
        """Local explanations, global rankings and trust figures of a model (json)."""
        return self.root / "explain" / f"{model}.json"

    def why_candidate(self, model: str, tag: str) -> Path:
        """Explanation of one candidate asked for by ``hepsel explain --candidate`` (json)."""
        return self.root / "explain" / "candidates" / f"{model}_{tag}.json"

    @property
    def why_plots(self) -> Path:
        """Plot directory of the single-candidate explanations."""
        return self.root / "plots" / "why"

    @property
    def report(self) -> Path:
        """The HTML report."""
        return self.root / "report.html"

    @property
    def plots(self) -> Path:
        """Plot directory."""
        return self.root / "plots"

    @property
    def robustness(self) -> Path:
        """Efficiencies and rates at fixed working points on miscalibrated inputs."""
        return self.root / "robustness.json"
