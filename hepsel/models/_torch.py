"""Helpers shared by the torch-based models: loading torch, devices and seeds.

torch is imported inside the functions so that importing this module (and
therefore :mod:`hepsel.models`) stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils import check_random_state

if TYPE_CHECKING:
    import torch

__all__ = [
    "ACTIVATIONS",
    "draw_seed",
    "import_torch",
    "make_generator",
    "resolve_device",
    "seeded_init",
    "torch_threads",
]

#: Activation names accepted by the torch models, mapped to ``torch.nn`` class names.
ACTIVATIONS: dict[str, str] = {"relu": "ReLU", "silu": "SiLU", "tanh": "Tanh", "elu": "ELU"}


def import_torch() -> Any:
    """Import and return :mod:`torch`, with an install hint if it is missing.

    Returns
    -------
    module
        The :mod:`torch` module.

    Raises
    ------
    ImportError
        If torch is not installed.
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a declared dependency
        msg = (
            "hepsel's MLP and GAN models need PyTorch; install it with "
            "'pip install torch' (see https://pytorch.org for CUDA builds)"
        )
        raise ImportError(msg) from exc
    return torch


def resolve_device(device: str) -> torch.device:
    """Turn a device request into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"} or str
        ``"auto"`` picks CUDA when available and the CPU otherwise. Any other
        string torch understands (e.g. ``"cuda:1"``) is passed through.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If CUDA is requested but not available, or the string is not a device.
    """
    torch = import_torch()
    given: object = device
    if not isinstance(given, str):
        msg = f"device must be a string ('auto', 'cpu' or 'cuda'), got {type(device).__name__}"
        raise TypeError(msg)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        msg = f"device {device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'"
        raise ValueError(msg) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        msg = f"device {device!r} requested but CUDA is not available; use device='cpu' or 'auto'"
        raise ValueError(msg)
    return resolved


def draw_seed(random_state: int | np.random.RandomState | None) -> int:
    """Draw a 31-bit integer seed from a scikit-learn style ``random_state``.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or None
        Passed through :func:`sklearn.utils.check_random_state`.

    Returns
    -------
    int
        A seed in ``[0, 2**31 - 1)``.
    """
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Return a :class:`torch.Generator` on ``device`` seeded with ``seed``.

    A private generator keeps the models' shuffling and noise reproducible
    without touching torch's global random state.
    """
    torch = import_torch()
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


@contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Seed torch's global CPU generator for the duration of the block.

    ``torch.nn`` layers draw their initial weights from the global generator,
    so networks are built on the CPU inside this block; the previous global
    state is restored on exit so callers' random streams are not disturbed.
    """
    torch = import_torch()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


@contextmanager
def torch_threads(n_jobs: int | None) -> Iterator[None]:
    """Use ``n_jobs`` intra-op torch threads inside the block (``None``: leave as is).

    Negative values count back from the number of CPUs, as in scikit-learn
    (``-1``: all of them).
    """
    torch = import_torch()
    if n_jobs is None:
        yield
        return
    given: object = n_jobs  # checked as given, whatever its declared type
    if not isinstance(given, int | np.integer) or given == 0:
        msg = f"n_jobs must be a non-zero integer or None, got {n_jobs!r}"
        raise ValueError(msg)
    n_cpu = os.cpu_count() or 1
    n_threads = int(n_jobs) if n_jobs > 0 else max(1, n_cpu + 1 + int(n_jobs))
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_prefix(path: str | Path, default_stem: str) -> Path:
    """A file prefix; an existing directory means ``<dir>/<default_stem>``."""
    p = Path(path)
    return p / default_stem if p.is_dir() else p


def read_saved_model(path: str | Path, *, default_stem: str, fmt: str, name: str) -> tuple[Path, Path, dict[str, Any]]:
    """Check the ``.json`` + ``.pt`` files of a saved torch model and read the metadata.

    Returns ``(json_path, pt_path, metadata)``.

    Raises
    ------
    ModelFileError
        A file is missing, the JSON is invalid, or it describes another model.
    """
    from ..exceptions import ModelFileError

    prefix = resolve_prefix(path, default_stem)
    json_path, pt_path = prefix.with_suffix(".json"), prefix.with_suffix(".pt")
    for p in (json_path, pt_path):
        if not p.is_file():
            msg = f"model file {p} not found; save the model with {name}.save({str(prefix)!r})"
            raise ModelFileError(msg)
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as exc:
        msg = f"{json_path} is not valid JSON: {exc}"
        raise ModelFileError(msg) from exc
    if meta.get("format") != fmt:
        msg = f"{json_path} does not describe a saved {name} (format {meta.get('format')!r})"
        raise ModelFileError(msg)
    return json_path, pt_path, meta
