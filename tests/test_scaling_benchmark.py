"""The scaling benchmark's analyses and table (``benchmarks/scaling.py``; the runs themselves are not tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from hepsel.config.loading import load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scaling():
    spec = importlib.util.spec_from_file_location(
        "scaling_benchmark", REPO / "benchmarks" / "scaling.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scaled_config_multiplies_events_and_files_and_keeps_its_own_paths(
    scaling, tmp_path: Path
) -> None:
    base = yaml.safe_load((REPO / "analyses" / "topo2body" / "config.yaml").read_text())
    cfg = scaling.scaled_config(base, 7, ["bdt", "fisher"])
    assert cfg["name"] == f"{base['name']}_x7"
    for sample, scfg in cfg["samples"].items():
        gen, base_gen = scfg["generate"], base["samples"][sample]["generate"]
        assert gen["events"] == 7 * base_gen["events"] and gen["files"] == 7
        assert scfg["files"] == [f"data/generated/topo2body_x7/{sample}_{{index}}.root"]
    assert set(cfg["models"]) == {"bdt", "fisher"}
    assert all(
        f.startswith("data/generated/topo2body_x7/")
        for d in cfg["apply"]["datasets"].values()
        for f in d["files"]
    )
    # the base config is left as it was, and the scaled one is a valid analysis
    assert base["name"] == "topo2body" and base["samples"]["signal"]["generate"]["files"] != 7
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    loaded = load_config(tmp_path / "config.yaml")
    assert len(loaded.sample_files("minbias")) == 7
    with pytest.raises(SystemExit, match="not in the default study"):
        scaling.scaled_config(base, 2, ["bdt", "nonexistent"])


def test_markdown_has_one_row_per_rule_and_columns_per_scale(scaling) -> None:
    def rule(name, jobs, seconds, longest, cpu, rss):
        return {
            "rule": name,
            "jobs": jobs,
            "seconds": seconds,
            "max_seconds": longest,
            "cpu_seconds": cpu,
            "max_rss_mb": rss,
        }

    results = [
        {
            "scale": 1,
            "events": {"signal": 20_000},
            "dataset_mb": 16.4,
            "wall_seconds": 90.0,
            "rules": [
                rule("gather", 1, 2.0, 2.0, 1.5, 400.0),
                rule("train", 4, 40.0, 12.0, 35.0, 600.0),
            ],
        },
        {
            "scale": 10,
            "events": {"signal": 200_000},
            "dataset_mb": 160.0,
            "wall_seconds": 600.0,
            "rules": [rule("train", 4, 400.0, 120.0, None, 900.0)],
        },
    ]
    lines = scaling.markdown(results).splitlines()
    assert "- **10x**: 200,000 signal; data set 160 MB; the run took 10.0 min" in lines
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].count("|") == 1 + 2 + 3 * 2  # rule, jobs, then three per scale
    assert "| gather | 1/- | 2 | 2 | 400 | - | - | - |" in table
    assert "| train | 4/4 | 40 (12) | 35 | 600 | 400 (120) | - | 900 |" in table
