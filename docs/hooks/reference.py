"""MkDocs hook: the configuration and command-line references, generated at build time.

``docs/reference/config.md`` and ``docs/reference/cli.md`` hold a marker line
(``<!-- hepsel:config-reference -->``, ``<!-- hepsel:cli-reference -->``) that
this hook replaces with tables built from the code itself: the pydantic schema
of :class:`hepsel.config.schema.AnalysisConfig` (every key, its type, default,
constraints and description) and :func:`hepsel.cli.build_parser`. Nothing in
those tables is written by hand, so they cannot drift from the code.

``tests/test_docs.py`` imports this module to check the reference against
``AnalysisConfig.model_json_schema()``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # document this checkout, not another installed copy

CONFIG_MARKER = "<!-- hepsel:config-reference -->"
CLI_MARKER = "<!-- hepsel:cli-reference -->"

# the placeholder shown for the free keys of a dict of sections
PLACEHOLDERS = {
    "samples": "<sample>",
    "models": "<model>",
    "datasets": "<dataset>",
    "shifts": "<shift>",
    "efficiency_vs": "<variable>",
}


@dataclass
class Row:
    """One key of the config."""

    key: str
    type: str
    default: str
    description: str
    section: str | None = None  # anchor of the nested section, for a key holding one


@dataclass
class Section:
    """One schema class and the prefix its keys sit under."""

    prefix: str
    model: type[BaseModel]
    rows: list[Row] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        """A stable HTML id for the section."""
        if not self.prefix:
            return "cfg-top-level"
        slug = "".join(c if c.isalnum() else "-" for c in self.prefix)
        return "cfg-" + "-".join(s for s in slug.split("-") if s)


def _escape(text: str) -> str:
    """Plain text for a Markdown table cell."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("\n", " ")
    )


def _code(text: str) -> str:
    """A code span for a table cell (``|`` escaped for the table)."""
    text = text.replace("|", "\\|")
    return f"``{text}``" if "`" in text else f"`{text}`"


def type_name(annotation: Any) -> str:
    """A short, readable name of a type annotation."""
    if annotation is type(None):
        return "null"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "mapping"
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return json.dumps(value)
    except TypeError:
        return str(value)


def default_text(info: Any) -> str:
    """The default of a field as JSON (``null`` for None), or ``required``."""
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return _json(info.default_factory())
    return _json(info.default)


def _constraints(info: Any) -> str:
    out = []
    for m in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(m, attr, None) is not None:
                out.append(f"{sym} {getattr(m, attr)}")
        if getattr(m, "min_length", None):
            out.append(f"at least {m.min_length} " + ("entry" if m.min_length == 1 else "entries"))
    return ", ".join(out)


def _nested(annotation: Any, key: str) -> tuple[str, type[BaseModel]] | None:
    """The (prefix suffix, schema class) a key holds, if it holds sections of keys."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "", annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        found = [n for a in args if (n := _nested(a, key)) is not None]
        return found[0] if found else None
    if origin is typing.Annotated:
        return _nested(args[0], key)
    if origin is list and args:
        inner = _nested(args[0], key)
        return (f"[]{inner[0]}", inner[1]) if inner else None
    if origin is dict and len(args) == 2:
        inner = _nested(args[1], "pattern")
        if inner is None:
            return None
        placeholder = PLACEHOLDERS.get(key, "<pattern>")
        return (f".{placeholder}{inner[0]}", inner[1])
    return None


def config_sections() -> list[Section]:
    """Every section of the analysis config, depth first from the top level."""
    from hepsel.config.schema import AnalysisConfig

    sections: list[Section] = []

    def walk(prefix: str, model: type[BaseModel]) -> Section:
        section = Section(prefix, model)
        sections.append(section)
        for name, info in model.model_fields.items():
            if info.exclude:
                continue  # set by load_config, not a key of the YAML
            key = f"{prefix}.{name}" if prefix else name
            desc = info.description or ""
            limits = _constraints(info)
            if limits:
                desc = f"{desc} ({limits})" if desc else limits
            row = Row(key, type_name(info.annotation), default_text(info), desc)
            section.rows.append(row)
            nested = _nested(info.annotation, name)
            if nested is not None:
                child = walk(key + nested[0], nested[1])
                row.section = child.anchor
                if nested[0] == "" and row.default.startswith("{"):
                    row.default = "see below"  # a section whose keys have their own defaults
        return section

    walk("", AnalysisConfig)
    return sections


def _first_paragraph(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ")


def model_params_markdown() -> str:
    """The parameters of each model kind (``models.<model>.params``), from the estimators' signatures."""
    from hepsel.config.schema import ModelConfig
    from hepsel.models import estimator_class

    kinds = [
        k
        for k in typing.get_args(ModelConfig.model_fields["type"].annotation)
        if k != "gan_augmented"
    ]
    out = [
        "A `gan_augmented` model takes the parameters of its `base` (`bdt` or `mlp`) under `params` "
        "and those of the WGAN-GP under `gan`.\n"
    ]
    kinds.append("gan")
    for kind in kinds:
        cls = estimator_class(kind)
        where = (
            "models.<model>.gan (gan_augmented)"
            if kind == "gan"
            else f"models.<model>.params (type: {kind})"
        )
        out.append(f"### `{kind}`: `{cls.__name__}` {{#params-{kind.replace('_', '-')}}}\n")
        out.append(f"{_escape(_first_paragraph(cls))} Set under `{where}`.\n")
        out.append("| parameter | default |\n|---|---|")
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            default = "required" if p.default is p.empty else _json(p.default)
            out.append(f"| {_code(p.name)} | {_code(default)} |")
        out.append("")
    return "\n".join(out)


def config_tables() -> str:
    """One table per section of the schema: every key, its type, default and description."""
    out = []
    for section in config_sections():
        title = f"`{section.prefix}`" if section.prefix else "Top level"
        out.append(f"## {title} {{#{section.anchor}}}\n")
        out.append(f"{_escape(_first_paragraph(section.model))} (`{section.model.__name__}`)\n")
        out.append("| key | type | default | description |\n|---|---|---|---|")
        for row in section.rows:
            desc = _escape(row.description)
            if row.section:
                desc = (desc.rstrip(".") + ". " if desc else "") + f"See [below](#{row.section})."
            default = row.default if row.default == "see below" else _code(row.default)
            out.append(f"| {_code(row.key)} | {_code(row.type)} | {default} | {desc} |")
        out.append("")
    return "\n".join(out)


def config_markdown() -> str:
    """The configuration reference: the schema's tables, then each model kind's parameters."""
    out = [config_tables()]
    out.append("## Model parameters {#cfg-model-params}\n")
    out.append(
        "The keys of `models.<model>.params` depend on the model's `type`: they are the arguments of its "
        "estimator class, checked when the config is loaded (a misspelt one is refused with a suggestion).\n"
    )
    out.append(model_params_markdown())
    return "\n".join(out)


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _options_table(parser: argparse.ArgumentParser) -> str:
    rows = ["| option | default | description |", "|---|---|---|"]
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(a.option_strings) if a.option_strings else a.dest
        if a.option_strings and a.nargs != 0:
            if a.choices:
                name += " {" + ",".join(map(str, a.choices)) + "}"
            else:
                name += f" {a.metavar or a.dest.upper()}"
        if a.required and a.option_strings:
            default = "required"
        elif (
            a.default is None
            or a.default is argparse.SUPPRESS
            or (a.nargs == 0 and a.default is False)
        ):
            default = ""
        else:
            default = _code(_json(a.default))
        rows.append(f"| {_code(name)} | {default} | {_escape(a.help or '')} |")
    return "\n".join(rows)


def cli_markdown() -> str:
    """The command-line reference: every subcommand of ``hepsel`` with its options."""
    from hepsel.cli import build_parser

    parser = build_parser()
    out = [f"```text\n{parser.format_usage().strip()}\n```\n", _options_table(parser), ""]
    for name, help_text, sub in _subcommands(parser):
        out.append(f"## `hepsel {name}` {{#hepsel-{name}}}\n")
        if help_text:
            out.append(f"{_escape(help_text[0].upper() + help_text[1:])}.\n")
        out.append(f"```text\n{sub.format_usage().strip()}\n```\n")
        out.append(_options_table(sub))
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: fill the generated references into their pages."""
    if CONFIG_MARKER in markdown:
        markdown = markdown.replace(CONFIG_MARKER, config_markdown())
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_markdown())
    return markdown
