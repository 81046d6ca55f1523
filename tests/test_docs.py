"""The documentation site: it builds strictly, its Python blocks run, its config reference is complete.

Python blocks of ``docs/**/*.md`` are run from the repository root, each in a
fresh namespace. A block that needs a finished run or data the repository
does not hold is preceded by an HTML comment starting with ``<!-- no-exec``
(e.g. ``<!-- no-exec: needs a finished run -->``) and only compiled.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NO_EXEC = "<!-- no-exec"


def _hook() -> ModuleType:
    """docs/hooks/reference.py, the MkDocs hook that generates the references."""
    name = "hepsel_docs_reference_hook"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / "reference.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line, code, executable) of every ```python block of a Markdown page (not those nested in other fences)."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        fence = re.match(r"^(`{3,}|~{3,})\s*(\w*)", stripped)
        if fence is None:
            i += 1
            continue
        marker, lang = fence.group(1), fence.group(2)
        indent = len(lines[i]) - len(lines[i].lstrip())
        start = i
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(marker):
            body.append(lines[i][indent:])
            i += 1
        i += 1
        if lang == "python":
            before = [ln for ln in lines[:start] if ln.strip()]
            executable = not (before and before[-1].strip().startswith(NO_EXEC))
            blocks.append((start + 1, "\n".join(body) + "\n", executable))
    return blocks


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)


def _blocks() -> list[pytest.param]:
    return [
        pytest.param(page, line, code, executable, id=f"{page.relative_to(DOCS)}:{line}")
        for page in _pages()
        for line, code, executable in python_blocks(page.read_text())
    ]


def test_python_blocks_are_found() -> None:
    """The parser sees fenced blocks, skips nested ones and honours the no-exec marker."""
    text = "a\n\n```python\nx = 1\n```\n\n<!-- no-exec: needs a run -->\n```python\nopen('results/x')\n```\n"
    text += "~~~markdown\n```python\nnested = True\n```\n~~~\n  ```python\n  y = 2\n  ```\n"
    assert python_blocks(text) == [
        (3, "x = 1\n", True),
        (8, "open('results/x')\n", False),
        (16, "y = 2\n", True),
    ]
    assert len(_blocks()) >= 5


@pytest.mark.parametrize(("page", "line", "code", "executable"), _blocks())
def test_python_block_runs(
    page: Path, line: int, code: str, executable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each self-contained Python block of the docs runs; the others at least compile."""
    name = f"{page.relative_to(REPO)}:{line}"
    compiled = compile(code, name, "exec")
    if not executable:
        return
    monkeypatch.chdir(REPO)
    exec(compiled, {"__name__": "__docs__"})


def _config_rows() -> dict[str, list[str]]:
    """Key -> the cells of its row in the generated configuration reference."""
    rows = {}
    for line in _hook().config_tables().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    return rows


def test_config_reference_lists_every_key_with_its_default() -> None:
    """Every property of AnalysisConfig's JSON schema, at every depth, has a row with the schema's default."""
    import hepsel.config.schema
    from hepsel.config.schema import AnalysisConfig

    schema = AnalysisConfig.model_json_schema()
    defs = schema.get("$defs", {})
    rows = _config_rows()
    documented = {key.rsplit(".", 1)[-1].split("[]")[-1] for key in rows}

    def props(node: dict) -> dict:
        return node.get("properties", {})

    seen_models = []
    for title, node in [("AnalysisConfig", schema), *defs.items()]:
        model = getattr(hepsel.config.schema, title)
        for name, prop in props(node).items():
            if model.model_fields[name].exclude:
                continue  # set by load_config (base_dir, source), not a key of the YAML
            matches = [k for k in rows if k == name or k.endswith(f".{name}")]
            assert matches, f"{title}.{name} is missing from the configuration reference"
            if "default" in prop:
                want = json.dumps(prop["default"])
                assert any(rows[k][2].strip("`") == want for k in matches), (
                    f"{title}.{name}: default {want} not in the reference ({[rows[k][2] for k in matches]})"
                )
        seen_models.append(title)
    assert documented >= {n for n in props(schema) if not AnalysisConfig.model_fields[n].exclude}
    assert len(seen_models) > 10
    # the page itself asks for the generated tables
    assert _hook().CONFIG_MARKER in (DOCS / "reference" / "config.md").read_text()


def test_config_reference_covers_nested_sections() -> None:
    """Dict and list sections get their own rows (samples.<sample>.tree, features[].transform, ...)."""
    rows = _config_rows()
    for key in (
        "samples.<sample>.tree",
        "features[].transform",
        "models.<model>.uncertainty.replicas",
        "evaluation.warnings.ks_pvalue",
        "robustness.shifts.<shift>.<pattern>.scale",
        "evaluation.efficiency_vs.<variable>.bins",
        "apply.datasets.<dataset>.files",
    ):
        assert key in rows, key
    assert rows["samples.<sample>.tree"][2] == '`"DecayTree"`'
    assert rows["folds.k"][2] == "`5`"
    assert rows["samples.<sample>.label"][2] == "`required`"


def test_cli_reference_lists_every_command() -> None:
    """Every subcommand and option of build_parser() is in the generated CLI reference."""
    import argparse

    from hepsel.cli import build_parser

    text = _hook().cli_markdown()
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, sub in commands.items():
        assert f"## `hepsel {name}`" in text, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in text, (name, flag)
    assert _hook().CLI_MARKER in (DOCS / "reference" / "cli.md").read_text()


@pytest.mark.skipif(
    shutil.which("mkdocs") is None and importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed (pip install -e '.[test]' or the 'docs' dependency group)",
)
def test_site_builds_strictly(tmp_path: Path) -> None:
    """mkdocs build --strict: a broken link, anchor or API reference, or a griffe warning, fails it."""
    for package in ("material", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(
                f"{package} is not installed (pip install -e '.[test]' or the 'docs' dependency group)"
            )
    site = tmp_path / "site"
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    config = (site / "reference" / "config" / "index.html").read_text()
    assert "samples.&lt;sample&gt;.tree" in config and "DecayTree" in config
    assert "hepsel generate" in (site / "reference" / "cli" / "index.html").read_text()
    assert "Selection" in (site / "api" / "selection" / "index.html").read_text()
    # the README's headline links point at pages that exist
    readme = (REPO / "README.md").read_text()
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / link).is_file(), link
