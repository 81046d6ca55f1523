"""Domain errors raised by hepsel.

Every message names the file, tree, branch, expression, feature or config key
at fault and, where it can, says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "BranchNotFoundError",
    "BranchTypeError",
    "CandidateError",
    "ConfigError",
    "EmptySelectionError",
    "ExportError",
    "ExpressionError",
    "HepselError",
    "InputFileError",
    "ModelFileError",
    "NonFiniteError",
    "OutputError",
    "TreeNotFoundError",
    "UnknownFunctionError",
]


class HepselError(Exception):
    """Base class of every error hepsel raises on purpose."""


class CandidateError(HepselError, ValueError):
    """A candidate asked for by RUN:EVENT[:INDEX] is malformed, absent or ambiguous."""


class ConfigError(HepselError, ValueError):
    """An analysis config is missing a key, has a wrong value or an unknown key."""


class InputFileError(HepselError, OSError):
    """An input file is missing, is not a ROOT file, or is truncated/corrupt."""


class TreeNotFoundError(HepselError, KeyError):
    """A ROOT file does not hold the requested TTree."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class BranchNotFoundError(HepselError, KeyError):
    """An expression refers to a branch (or alias) that the tree does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class BranchTypeError(InputFileError):
    """An input branch has a type that would change its values against the one a selection was trained on."""


class ExpressionError(HepselError, ValueError):
    """A cut or feature expression does not parse or uses a forbidden construct."""


class UnknownFunctionError(ExpressionError):
    """An expression calls a function outside hepsel's expression language."""


class EmptySelectionError(HepselError, ValueError):
    """A cut (or the whole preselection) keeps no candidate of a sample."""


class NonFiniteError(HepselError, ValueError):
    """Features or weights hold NaN or infinite values and the policy is 'fail'."""


class ModelFileError(HepselError, OSError):
    """A saved model or selection directory is missing or inconsistent."""


class OutputError(HepselError, OSError):
    """An output location cannot be written: under a regular file, read-only, or not a place for files."""


class ExportError(HepselError, ValueError):
    """A selection cannot be exported as asked: unknown model or kind, or an output directory in the way."""
