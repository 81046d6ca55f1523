"""Python functions named by an analysis config (``'features.py:function'``).

A feature may be computed by a function of a Python file in the analysis
directory. :func:`load_function` imports it (the config loader checks each one
when the config is loaded) and :func:`check_signature` checks that it takes one
mapping of branches.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

from ..exceptions import ConfigError

__all__ = [
    "check_signature",
    "load_function",
    "module_path",
]


def module_path(spec: str, base_dir: str | os.PathLike[str]) -> Path:
    """The Python file of ``'module.py:function'``, checked to lie inside ``base_dir``.

    Only ``.py`` files under ``base_dir`` (nested folders allowed, as in
    ``'lib/kinematics.py:f'``) qualify: absolute paths, ``..`` and symbolic
    links that lead out of it are refused, so a config or a saved selection
    can only run code that ships with it.

    Raises
    ------
    ConfigError
        If the spec is malformed or the module lies outside ``base_dir`` or is missing.
    """
    if ":" not in spec:
        msg = f"feature function {spec!r} must look like 'features.py:my_function'"
        raise ConfigError(msg)
    module_file, func_name = spec.rsplit(":", 1)
    if not func_name.isidentifier():
        msg = f"feature function {spec!r}: {func_name!r} is not a Python function name"
        raise ConfigError(msg)
    base = Path(base_dir).resolve()
    rel = PurePath(module_file)
    if rel.is_absolute() or PureWindowsPath(module_file).is_absolute() or rel.suffix != ".py":
        msg = (
            f"feature function {spec!r}: the module must be a relative path to a .py file inside "
            f"{str(base)!r} (e.g. 'features.py:f' or 'lib/features.py:f')"
        )
        raise ConfigError(msg)
    path = (base / rel).resolve()
    if not path.is_relative_to(base):
        msg = (
            f"feature function {spec!r}: module {str(path)!r} lies outside {str(base)!r}; "
            "feature modules must live inside the analysis (or saved selection) directory"
        )
        raise ConfigError(msg)
    if not path.is_file():
        msg = f"feature function {spec!r}: module {str(path)!r} not found"
        raise ConfigError(msg)
    return path


def load_function(spec: str, base_dir: str | os.PathLike[str]) -> Callable[..., Any]:
    """Import ``'module.py:function'`` from a Python file inside ``base_dir`` (an analysis directory).

    See :func:`module_path` for which files qualify.
    """
    path = module_path(spec, base_dir)
    func_name = spec.rsplit(":", 1)[1]
    # one module object per file: two analyses' features.py must not shadow each other
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]
    mod_name = f"hepsel_analysis_{path.stem}_{digest}"
    module = sys.modules.get(mod_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        if loader_spec is None or loader_spec.loader is None:
            msg = f"cannot import {path}"
            raise ConfigError(msg)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[mod_name]
            where = f" (line {err.lineno})" if isinstance(err, SyntaxError) and err.lineno else ""
            msg = f"feature function {spec!r}: importing {path} failed{where}: {type(err).__name__}: {err}"
            raise ConfigError(msg) from err
        except BaseException:
            del sys.modules[mod_name]
            raise
    func = getattr(module, func_name, None)
    if not callable(func):
        msg = f"feature function {spec!r}: {path} has no function {func_name!r}"
        raise ConfigError(msg)
    check_signature(func, spec)
    return func


def check_signature(func: Callable[..., Any], spec: str) -> None:
    """Refuse a feature function that cannot be called with one mapping of its input branches.

    hepsel calls ``func(arrays)``, ``arrays`` mapping each of the feature's
    ``inputs`` to its values; a function written with one argument per
    branch (``def f(Jet_pt, Jet_eta)``) would fail in the middle of prepare.

    Raises
    ------
    ConfigError
        Naming the function, its parameters and the signature expected.
    """
    import inspect

    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins and C functions without a signature: trust them
        return
    try:
        sig.bind({})
    except TypeError:
        msg = (
            f"feature function {spec!r} has the signature {sig}, but it is called with one argument, the mapping "
            f"of its 'inputs' branches: def {spec.rsplit(':', 1)[1]}(arrays), reading arrays['<branch>'] "
            "and returning one value per entry"
        )
        raise ConfigError(msg) from None
