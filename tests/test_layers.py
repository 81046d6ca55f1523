"""The package's structure: import-linter contracts, no import circles, no oversized module.

The layers and contracts are ``[tool.importlinter]`` in ``pyproject.toml``
(described in CONTRIBUTING.md, "Layout").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hepsel"

MAX_LINES = 800

#: Modules allowed over MAX_LINES, each one cohesive thing that a split would only scatter.
LONG_MODULES = {
    "hepsel/config/expressions.py": "one language: the parser, the checks and the evaluator of config expressions",
    "hepsel/sim/simulation.py": "one generator: the decay, kinematics and detector model of the simulated samples",
    "hepsel/config/schema.py": "one pydantic schema: every config key, its default and the cross-key checks",
    "hepsel/report/html.py": "one page: the HTML report's template, tables and panels",
    "hepsel/deploy/export.py": "one exporter: an ONNX graph per model kind, sharing the selection's inputs",
    "hepsel/cli.py": "one command line: the parsers of every subcommand and their dispatch",
}


def test_import_contracts() -> None:
    """``lint-imports`` on this checkout: every contract of pyproject.toml is kept."""
    code = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.append(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_circles() -> None:
    """No module reaches itself through imports, function-level and TYPE_CHECKING ones included."""
    graph = grimp.build_graph("hepsel", cache_dir=None)
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_no_oversized_module() -> None:
    """No module of hepsel over MAX_LINES lines, but the cohesive ones listed with their reason."""
    sizes = {
        p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    over = {p: n for p, n in sizes.items() if n > MAX_LINES and p not in LONG_MODULES}
    assert over == {}, f"split these modules (or add one with its reason to LONG_MODULES): {over}"
    stale = [p for p in LONG_MODULES if sizes.get(p, 0) <= MAX_LINES]
    assert stale == [], (
        f"no longer over {MAX_LINES} lines (or gone): remove from LONG_MODULES: {stale}"
    )
