"""The data steps: generate simulated samples, prepare one input file, gather the data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError
from .layout import Layout

__all__ = [
    "gather",
    "generate",
    "prepare",
]


def generate(cfg: AnalysisConfig, sample: str, *, progress: bool = True) -> list[Path]:
    """Make the files of a sample that has a ``generate`` block."""
    from ..sim.generate import generate_sample

    gen = cfg.samples[sample].generate
    if gen is None:
        msg = f"samples.{sample} has no 'generate' block; its files must exist"
        raise ConfigError(msg)
    # shared with another analysis when generated with equal settings; refused when with others
    paths, _ = generate_sample(gen, cfg.sample_files(sample), source=cfg.source, progress=progress)
    return paths


def prepare(
    cfg: AnalysisConfig, sample: str, index: int, *, progress: bool = True
) -> dict[str, Any]:
    """Preselect input file ``index`` of ``sample`` into its Parquet table."""
    from ..prep.ingest import prepare_file

    files = cfg.sample_files(sample)
    if not 0 <= index < len(files):
        msg = (
            f"samples.{sample}: file index {index} out of range (the sample has {len(files)} files)"
        )
        raise ConfigError(msg)
    return prepare_file(
        cfg,
        sample,
        files[index],
        Layout.of(cfg).prepared(sample, index),
        file_index=index,
        progress=progress,
    )


def gather(cfg: AnalysisConfig) -> dict[str, Any]:
    """Merge the prepared tables, write the cut-flow table (its figure: the plots step)."""
    from ..prep.dataset import gather as gather_tables

    lay = Layout.of(cfg)
    prepared = {
        s: [lay.prepared(s, i) for i in range(len(cfg.sample_files(s)))] for s in cfg.samples
    }
    return gather_tables(cfg, prepared, lay.dataset)
