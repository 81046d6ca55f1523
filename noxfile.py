#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox>=2024.10"]
# ///
"""Tasks: ``nox -s tests``, ``nox -s lint``, ``nox -s benchmarks``, ``nox -s docs``; ``nox -l`` lists them.

Every session installs the CPU build of torch first (``torch==2.13.0``), as the
README's commands do, so that pip does not pull a multi-GB CUDA build.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import nox

nox.needs_version = ">=2024.10"
nox.options.default_venv_backend = "venv"

TORCH = "torch==2.13.0"


@nox.session(default=True)
def tests(session: nox.Session) -> None:
    """The test suite, as CI runs it (pass pytest options after ``--``, e.g. ``-- -m 'not slow'``)."""
    session.install(TORCH)
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-n", "2", "--dist", "loadfile", *session.posargs)


@nox.session(default=True)
def lint(session: nox.Session) -> None:
    """ruff (lint and format), mypy and codespell on every file: the pre-commit hooks' checks, from PyPI."""
    groups = tomllib.loads(Path("pyproject.toml").read_text())["dependency-groups"]
    session.install(TORCH)
    session.install("-e", ".", *[g for g in groups["lint"] if not g.startswith("pre-commit")])
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("codespell", *session.posargs)


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """The documentation site: ``mkdocs build --strict`` into ``site/``; ``-- serve`` serves it with live reload."""
    session.install(TORCH)
    groups = tomllib.loads(Path("pyproject.toml").read_text())["dependency-groups"]
    session.install("-e", ".", *groups["docs"])  # the 'docs' group (pip < 25.1 has no --group)
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session(default=False)
def benchmarks(session: nox.Session) -> None:
    """The scaling benchmark at 1x (``-- --scales 1 10 100`` for the README's table; 100x takes ~30 min)."""
    session.install(TORCH)
    session.install("-e", ".[onnx]")
    args = session.posargs or ["--scales", "1"]
    session.run("python", "benchmarks/scaling.py", *args)


if __name__ == "__main__":
    nox.main()
