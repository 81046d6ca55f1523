"""Shared fixtures: small ROOT files and a tiny analysis written into tmp dirs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
import yaml

REPO = Path(__file__).resolve().parents[1]


def write_flat_tree(
    path: Path,
    n_events: int = 200,
    seed: int = 0,
    tree: str = "DecayTree",
    rntuple: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """A small DecayTuple-like file: 1-3 candidates per event, known contents.

    The candidate tree and ``EventTuple`` are TTrees, or RNTuples if named in ``rntuple``.
    """
    rng = np.random.default_rng(seed)
    per_event = rng.integers(1, 4, n_events)
    evt = np.repeat(np.arange(n_events, dtype=np.int64) + 1000, per_event)
    n = len(evt)
    cols = {
        "runNumber": np.full(n, 7, dtype=np.int32),
        "eventNumber": evt,
        "nCandidate": np.concatenate([np.arange(k) for k in per_event]).astype(np.int32),
        "B_PT": rng.exponential(3000.0, n).astype(np.float32),
        "H1_PT": rng.exponential(1000.0, n).astype(np.float32),
        "H2_PT": rng.exponential(1000.0, n).astype(np.float32),
        "B_IPCHI2_OWNPV": rng.chisquare(2, n).astype(np.float32),
        "eventWeight": rng.uniform(0.5, 1.5, n).astype(np.float32),
        "truth_matched": (rng.random(n) < 0.5).astype(np.int32),
    }
    ev = {
        "runNumber": np.full(n_events + 5, 7, dtype=np.int32),
        "eventWeight": np.ones(n_events + 5, dtype=np.float32),
    }
    with uproot.recreate(path) as f:
        for name, content in ((tree, cols), ("EventTuple", ev)):
            if name in rntuple:
                f.mkrntuple(name, content)
            else:
                f.mktree(name, {k: v.dtype for k, v in content.items()})
                f[name].extend(content)
    return cols


@pytest.fixture
def flat_file(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A flat candidate tree and its contents."""
    p = tmp_path / "flat.root"
    return p, write_flat_tree(p)


def tiny_config(
    data_dir: str,
    *,
    models: dict | None = None,
    sig_events: int = 3000,
    mb_events: int = 12000,
    files: int = 1,
    **extra: object,
) -> dict:
    """A small but complete topo2body-like analysis config (as a dict)."""
    cfg = {
        "name": "tiny",
        "seed": 3,
        "samples": {
            "signal": {
                "files": [f"{data_dir}/signal_{{index}}.root"],
                "events_tree": "EventTuple",
                "label": 1,
                "weight": "eventWeight",
                "truth": "truth_matched == 1",
                "generate": {"kind": "signal", "events": sig_events, "files": files, "seed": 5},
            },
            "minbias": {
                "files": [f"{data_dir}/minbias_{{index}}.root"],
                "events_tree": "EventTuple",
                "label": 0,
                "weight": "eventWeight",
                "generate": {"kind": "minbias", "events": mb_events, "files": files, "seed": 6},
            },
        },
        "preselection": [
            {"name": "track pT", "cut": "min(H1_PT, H2_PT) > 500"},
            {"name": "track IP", "cut": "min(H1_IPCHI2_OWNPV, H2_IPCHI2_OWNPV) > 4"},
        ],
        "features": [
            {"name": "B_PT", "expr": "B_PT", "range": [0, 1.0e7]},
            {"name": "B_MCORR", "expr": "B_MCORR", "range": [0, 1.0e5]},
            {"name": "log_fdchi2", "expr": "B_FDCHI2_OWNPV", "transform": "log"},
            {"name": "vtx_chi2", "expr": "B_VTXCHI2", "range": [0, 100]},
            {
                "name": "log_min_ipchi2",
                "expr": "min(H1_IPCHI2_OWNPV, H2_IPCHI2_OWNPV)",
                "transform": "log",
            },
        ],
        "spectators": ["B_M", "B_TRUETAU", "B_TRUEPT", "mode", "nPVs"],
        "folds": {"k": 3},
        "models": models
        or {
            "bdt": {
                "type": "bdt",
                "params": {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.3, "n_jobs": 1},
            }
        },
        "trigger": {"input_rate_khz": 30000, "target_rates_khz": [1000, 500]},
        "evaluation": {
            "bootstrap": 10,
            "mass": "B_M",
            "mode_column": "mode",
            "mode_names": {1: "B0 -> K+ pi-", 2: "Bs0 -> K+ K-", 3: "B0 -> D- pi+"},
            "efficiency_vs": {
                "B_TRUETAU": {"bins": [0, 1, 2, 4, 10], "label": "true decay time [ps]"}
            },
        },
    }
    cfg.update(extra)
    return cfg


def write_config(directory: Path, cfg: dict) -> Path:
    """Write ``cfg`` as ``directory/config.yaml``."""
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / "config.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium at 1400 x 900 px (``tests/browser.py``); skips where none is installed."""
    from .browser import start_chromium

    chrome = start_chromium()
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


def interrupted_write(first: object, second: object, *args: object, **kwargs: object) -> None:
    """Stand-in for ``torch.save(obj, path)`` or ``Path.write_text(path, text)`` on a full disk.

    It leaves half a file behind at the path, then fails.
    """
    path = first if isinstance(first, (str, Path)) else second
    Path(str(path)).write_bytes(b"half a fi")
    msg = "No space left on device"
    raise OSError(28, msg)


def config_editor(
    work: Path, analysis: str = "tiny"
) -> Iterator[Callable[[Callable[[dict], None]], Path]]:
    """Body of an ``edit`` fixture: yields ``apply(change)``, which edits ``work``'s analysis config in place
    (``change`` mutates the parsed YAML) and returns ``work``; the original config is put back afterwards."""
    path = work / "analyses" / analysis / "config.yaml"
    original = path.read_text()

    def apply(change: Callable[[dict], None]) -> Path:
        cfg = yaml.safe_load(original)
        change(cfg)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return work

    yield apply
    path.write_text(original)
