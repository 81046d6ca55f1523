"""Helpers shared by the torch-based models: loading torch, devices, seeds, saving and loading.

torch is imported inside the functions so that importing this module (and
therefore :mod:`hepsel.models`) stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sklearn.utils import check_random_state

if TYPE_CHECKING:
    import torch

__all__ = [
    "ACTIVATIONS",
    "TorchEstimator",
    "draw_seed",
    "import_torch",
    "make_generator",
    "resolve_device",
    "seeded_init",
    "state_on_cpu",
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


def read_saved_model(
    path: str | Path, *, default_stem: str, fmt: str, name: str
) -> tuple[Path, Path, dict[str, Any]]:
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


class TorchEstimator:
    """The scaffolding shared by the torch estimators: the seeds of a fit, saving and loading.

    :meth:`_fit_seeds` draws a fit's seeds from ``random_state``. :meth:`save`
    and :meth:`load` need no pickle, and each file is written atomically:

    ``<prefix>.pt`` holds the networks' ``state_dict`` tensors (read back with
    ``torch.load(..., weights_only=True)``) and ``<prefix>.json`` everything
    else: ``format``, ``format_version`` and what :meth:`_metadata` returns.
    A subclass sets ``_format``, ``_format_version``, ``_stem`` (the file name
    inside a directory) and ``_fitted`` (the attribute a fitted model has), and
    implements :meth:`_metadata`, :meth:`_state`, :meth:`_params_from_metadata`,
    :meth:`_restore` and :meth:`_load_state`.
    """

    _format: str
    _format_version: int = 1
    _stem: str
    _fitted: str = "network_"

    def _fit_seeds(self, n: int) -> tuple[int, ...]:
        """``n`` seeds for one fit (data split, torch, scaler, ...), all drawn from ``random_state``.

        The GAN draws more from the same stream after its seeds, so it keeps its own.
        """
        rng = np.random.RandomState(draw_seed(cast("Any", self).random_state))
        return tuple(draw_seed(rng) for _ in range(n))

    def _metadata(self) -> dict[str, Any]:
        """Everything but the tensors, as JSON values (after ``format`` and ``format_version``)."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """The tensors to save: ``state_dict`` entries on the CPU, possibly nested by network."""
        raise NotImplementedError

    @classmethod
    def _params_from_metadata(cls, meta: dict[str, Any]) -> dict[str, Any]:
        """The constructor parameters of a saved model (``device`` is set by :meth:`load`)."""
        raise NotImplementedError

    def _restore(self, meta: dict[str, Any]) -> None:
        """Set the fitted attributes from the metadata, before the networks are loaded."""
        raise NotImplementedError

    def _load_state(self, state: dict[str, Any]) -> None:
        """Build the networks, load ``state`` into them and put them on ``self.device_`` in eval mode."""
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write ``<prefix>.pt`` (the ``state_dict`` tensors) and ``<prefix>.json`` (everything else).

        Parameters
        ----------
        path : str or Path
            A file prefix, or an existing directory (files ``<stem>.pt`` and
            ``<stem>.json`` inside it, e.g. ``mlp.pt``).

        Returns
        -------
        Path
            The prefix used.
        """
        from sklearn.utils.validation import check_is_fitted

        from ..io.storage import atomic_path, write_text

        torch = import_torch()
        check_is_fitted(self, self._fitted)
        prefix = resolve_prefix(path, self._stem)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": self._format, "format_version": self._format_version, **self._metadata()}
        state = self._state()
        with atomic_path(prefix.with_suffix(".pt")) as tmp:
            torch.save(state, tmp)
        write_text(prefix.with_suffix(".json"), json.dumps(meta, indent=1))
        return prefix

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Any:
        """Load a model written by :meth:`save` (no pickle: the tensors with ``weights_only=True``).

        Parameters
        ----------
        path : str or Path
            The prefix (or directory) given to :meth:`save`.
        device : {"cpu", "cuda", "auto"}, default "cpu"
            Where to put the networks.

        Raises
        ------
        ModelFileError
            If a file is missing, is not a saved model of this class, or its
            tensors do not fit the architecture its JSON describes.
        """
        from ..exceptions import ModelFileError

        torch = import_torch()
        json_path, pt_path, meta = read_saved_model(
            path, default_stem=cls._stem, fmt=cls._format, name=cls.__name__
        )
        params = cls._params_from_metadata(meta)
        params["device"] = device
        model = cast("Any", cls)(**params)
        model.device_ = resolve_device(device)
        model._restore(meta)
        try:
            state = torch.load(pt_path, map_location=model.device_, weights_only=True)
            model._load_state(state)
        except (RuntimeError, KeyError) as exc:
            msg = f"{pt_path} does not match the architecture in {json_path}: {exc}"
            raise ModelFileError(msg) from exc
        return model


def state_on_cpu(network: torch.nn.Module) -> dict[str, Any]:
    """A network's ``state_dict``, detached and on the CPU (what :meth:`TorchEstimator.save` writes)."""
    return {k: v.detach().cpu() for k, v in network.state_dict().items()}
