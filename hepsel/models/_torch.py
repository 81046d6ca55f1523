"""Shared by the torch models: their base classes (parameters, training loop, files), devices and seeds.

torch is imported inside the functions so that importing this module (and
therefore :mod:`hepsel.models`) stays cheap.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

import numpy as np
from sklearn.utils import check_random_state

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from .preprocessing import FeatureScaler

__all__ = [
    "ACTIVATIONS",
    "PREDICT_BATCH",
    "EpochTrainedEstimator",
    "TorchEstimator",
    "check_activation",
    "dense_stack",
    "draw_seed",
    "import_torch",
    "make_generator",
    "resolve_device",
    "seeded_init",
    "state_on_cpu",
    "torch_threads",
]

#: Rows per forward pass outside training (prediction, validation losses), bounding the memory.
PREDICT_BATCH = 65_536
#: Activation names accepted by the torch models, mapped to ``torch.nn`` class names.
ACTIVATIONS: dict[str, str] = {"relu": "ReLU", "silu": "SiLU", "tanh": "Tanh", "elu": "ELU"}


def check_activation(activation: str) -> None:
    """Raise ``ValueError`` unless ``activation`` is one of :data:`ACTIVATIONS`."""
    if activation not in ACTIVATIONS:
        msg = f"unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}"
        raise ValueError(msg)


def dense_stack(widths: Sequence[int], activation: str) -> torch.nn.Sequential:
    """``Linear`` layers between consecutive ``widths``, each but the last followed by the activation.

    Raises
    ------
    ValueError
        If ``activation`` is unknown.
    """
    torch = import_torch()
    check_activation(activation)
    act = getattr(torch.nn, ACTIVATIONS[activation])
    layers: list[Any] = []
    for i, (w_in, w_out) in enumerate(itertools.pairwise(widths)):
        layers.append(torch.nn.Linear(w_in, w_out))
        if i < len(widths) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers)


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
    from ..io.storage import read_json

    prefix = resolve_prefix(path, default_stem)
    json_path, pt_path = prefix.with_suffix(".json"), prefix.with_suffix(".pt")
    for p in (json_path, pt_path):
        if not p.is_file():
            msg = f"model file {p} not found; save the model with {name}.save({str(prefix)!r})"
            raise ModelFileError(msg)
    try:
        meta = read_json(json_path)
    except json.JSONDecodeError as exc:
        msg = f"{json_path} is not valid JSON: {exc}"
        raise ModelFileError(msg) from exc
    if meta.get("format") != fmt:
        msg = f"{json_path} does not describe a saved {name} (format {meta.get('format')!r})"
        raise ModelFileError(msg)
    return json_path, pt_path, meta


# The estimators are dataclasses for their constructors alone: each declares its own
# parameters as fields and inherits these, and the generated signature (what
# scikit-learn's get_params, the config check and the docs read) lists them all.
@dataclass(kw_only=True, eq=False, repr=False)
class TorchEstimator:
    """The scaffolding shared by the torch estimators: common parameters, checks, seeds, saving and loading.

    The parameters every torch model takes are fields here: ``preprocessing``,
    ``validation_fraction``, ``device``, ``random_state``, ``n_jobs`` and
    ``verbose`` (see the models' docstrings). :meth:`_fit_seeds` draws a
    fit's seeds from ``random_state`` and :meth:`_predict_batches` is the
    batched forward pass. :meth:`save` and :meth:`load` need no pickle, and
    each file is written atomically:

    ``<prefix>.pt`` holds the networks' ``state_dict`` tensors (read back with
    ``torch.load(..., weights_only=True)``) and ``<prefix>.json`` everything
    else: ``format``, ``format_version`` and what :meth:`_metadata` returns.
    A subclass sets ``_format``, ``_format_version``, ``_stem`` (the file name
    inside a directory), ``_fitted`` (the attribute a fitted model has, its
    network) and ``_layer_params`` (parameters holding layer widths), and
    implements :meth:`_build` and :meth:`_metadata`; :meth:`_state`,
    :meth:`_params_from_metadata`, :meth:`_restore` and :meth:`_load_state`
    cover one network and are extended or replaced where a model has more.
    """

    _format: ClassVar[str]
    _format_version: ClassVar[int] = 1
    _stem: ClassVar[str]
    _fitted: ClassVar[str] = "network_"
    _layer_params: ClassVar[tuple[str, ...]] = ("hidden_layers",)
    #: Parameters added after format version 1, with the values that reproduce older files.
    _legacy_params: ClassVar[dict[str, Any]] = {}

    preprocessing: str = "quantile"
    validation_fraction: float = 0.2
    device: str = "auto"
    random_state: int | np.random.RandomState | None = None
    n_jobs: int | None = None
    verbose: bool = False

    # learned in fit or read by load
    device_: torch.device = field(init=False)
    n_features_in_: int = field(init=False)
    scaler_: FeatureScaler = field(init=False)
    history_: dict[str, Any] = field(init=False)

    # -- parameters ----------------------------------------------------------------
    def _check_positive_ints(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                msg = f"{name} must be a positive integer, got {value!r}"
                raise ValueError(msg)

    def _check_validation_fraction(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            msg = f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            raise ValueError(msg)

    def _check_preprocessing(self) -> None:
        if self.preprocessing not in ("quantile", "standard"):
            msg = f"preprocessing must be 'quantile' or 'standard', got {self.preprocessing!r}"
            raise ValueError(msg)

    def _fit_seeds(self, n: int) -> tuple[int, ...]:
        """``n`` seeds for one fit (data split, torch, scaler, ...), all drawn from ``random_state``.

        The GAN draws more from the same stream after its seeds, so it keeps its own.
        """
        rng = np.random.RandomState(draw_seed(self.random_state))
        return tuple(draw_seed(rng) for _ in range(n))

    def _build(self, n_in: int) -> Any:
        """New, untrained network(s) for ``n_in`` input features."""
        raise NotImplementedError

    def _seeded_build(self, seed: int) -> Any:
        """:meth:`_build` for ``n_features_in_`` inputs, the initial weights drawn from ``seed`` (on the CPU)."""
        with seeded_init(seed):
            return self._build(self.n_features_in_)

    def _fit_scaler(self, X: np.ndarray, seed: int) -> None:
        """Fit the input scaling ``scaler_`` on the training rows ``X`` and resolve ``device_``."""
        from .preprocessing import FeatureScaler

        self.scaler_ = FeatureScaler(self.preprocessing, random_state=seed).fit(X)
        self.device_ = resolve_device(self.device)

    # -- prediction ----------------------------------------------------------------
    def _predict_batches(
        self,
        forward: Callable[[Tensor], Tensor],
        X: np.ndarray,
        out: np.ndarray,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """``out[rows] = forward(transform(X[rows]))`` in float64, over blocks of rows, with no gradients."""
        torch = import_torch()
        getattr(self, self._fitted).eval()
        # the same threads as in training: the scores do not depend on the machine's core count
        with torch.no_grad(), torch_threads(self.n_jobs):
            # Scale per block too, so memory stays bounded for very large inputs.
            for begin in range(0, X.shape[0], PREDICT_BATCH):
                sl = slice(begin, begin + PREDICT_BATCH)
                rows = X[sl] if transform is None else transform(X[sl])
                z = torch.as_tensor(rows, dtype=torch.float32, device=self.device_)
                out[sl] = forward(z).double().cpu().numpy()
        return out

    # -- saving and loading --------------------------------------------------------
    def _json_params(self) -> dict[str, Any]:
        """The constructor parameters as JSON values (layer widths as lists, a seed only if an int)."""
        params: dict[str, Any] = cast("Any", self).get_params()  # from sklearn's BaseEstimator
        for name in self._layer_params:
            params[name] = [int(h) for h in params[name]]
        random_state: object = self.random_state
        params["random_state"] = (
            int(random_state) if isinstance(random_state, int | np.integer) else None
        )
        return params

    def _metadata(self) -> dict[str, Any]:
        """Everything but the tensors, as JSON values (after ``format`` and ``format_version``)."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """The tensors to save: ``state_dict`` entries on the CPU, possibly nested by network."""
        return state_on_cpu(getattr(self, self._fitted))

    @classmethod
    def _params_from_metadata(cls, meta: dict[str, Any]) -> dict[str, Any]:
        """The constructor parameters of a saved model (``device`` is set by :meth:`load`)."""
        params = {**cls._legacy_params, **meta["params"]}
        for name in cls._layer_params:
            params[name] = tuple(params[name])
        return params

    def _restore(self, meta: dict[str, Any]) -> None:
        """Set the fitted attributes from the metadata, before the networks are loaded."""
        from .preprocessing import FeatureScaler

        self.n_features_in_ = int(meta["n_features_in"])
        self.scaler_ = FeatureScaler.from_dict(meta["scaler"])
        self.history_ = meta["history"]

    def _load_state(self, state: dict[str, Any]) -> None:
        """Build the network, load ``state`` into it and put it on ``self.device_`` in eval mode."""
        network = self._build(self.n_features_in_)
        network.load_state_dict(state)
        setattr(self, self._fitted, network.to(self.device_).eval())

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
    def load(cls, path: str | Path, device: str = "cpu") -> Self:
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


@dataclass(kw_only=True, eq=False, repr=False)
class EpochTrainedEstimator(TorchEstimator):
    """A torch estimator trained in epochs of shuffled minibatches with AdamW and early stopping.

    Its parameters ``learning_rate``, ``weight_decay``, ``batch_size``,
    ``max_epochs`` and ``patience`` are fields here (a model may change their
    defaults). :meth:`_run_epochs` is the training loop, :meth:`_minibatches`
    an epoch of minibatches of in-memory tensors.
    """

    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 1024
    max_epochs: int = 50
    patience: int = 5

    best_epoch_: int = field(init=False)

    def _minibatches(
        self, generator: torch.Generator, *tensors: Tensor | None
    ) -> Iterator[tuple[Any, ...]]:
        """One epoch of minibatches of ``tensors`` (rows in a random order drawn from ``generator``)."""
        torch = import_torch()
        n, batch_size = cast("Tensor", tensors[0]).shape[0], int(self.batch_size)
        permutation = torch.randperm(n, generator=generator).to(self.device_)
        for begin in range(0, n, batch_size):
            batch = permutation[begin : begin + batch_size]
            yield tuple(None if t is None else t[batch] for t in tensors)

    def _run_epochs(
        self,
        network: torch.nn.Module,
        batches: Callable[[torch.Generator], Iterable[tuple[Any, ...]]],
        batch_loss: Callable[..., tuple[Any, Any]],
        validation_loss: Callable[[], float] | None,
        total_weight: float,
        seed: int,
        desc: str,
    ) -> None:
        """The fit loop: AdamW over ``max_epochs`` epochs, early stopping, ``history_`` and ``best_epoch_``.

        Every epoch trains on ``batches(generator)``; ``batch_loss(*batch)``
        returns the loss to minimise and the per-row weighted losses, whose
        sum over the epoch divided by ``total_weight`` is the epoch's
        ``train_loss``. It runs with ``n_jobs`` torch threads. With
        ``validation_loss`` the network keeps the state
        of the epoch with the lowest validation loss, and training stops
        after ``patience`` epochs without a lower one; without it, the last
        epoch's state.
        """
        torch = import_torch()
        # the minibatch order comes from a CPU generator on every device: a CUDA generator
        # draws other permutations from the same seed
        generator = make_generator(seed)
        optimizer = torch.optim.AdamW(
            network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "epoch_time_s": []}
        best_loss = np.inf
        best_epoch = 0
        best_state: dict[str, Any] | None = None
        epochs: Any = range(int(self.max_epochs))
        if self.verbose:
            from tqdm.auto import tqdm

            epochs = tqdm(
                epochs, desc=desc, unit="epoch", disable=None
            )  # None: off when not a terminal

        # the threads of n_jobs: torch's sums depend on their number
        with torch_threads(self.n_jobs):
            for epoch in epochs:
                start = time.perf_counter()
                network.train()
                # Accumulate on the device: a .item() per batch would synchronise a GPU.
                loss_sum = torch.zeros((), device=self.device_)
                for batch in batches(generator):
                    loss, weighted = batch_loss(*batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += weighted.detach().sum()
                train_loss = float(loss_sum) / total_weight
                history["epoch_time_s"].append(time.perf_counter() - start)
                history["train_loss"].append(train_loss)

                if validation_loss is not None:
                    val_loss = validation_loss()
                    history["val_loss"].append(val_loss)
                    if val_loss < best_loss:
                        best_loss, best_epoch = val_loss, epoch
                        best_state = copy.deepcopy(network.state_dict())
                    elif epoch - best_epoch >= self.patience:
                        break
                else:
                    best_epoch = epoch
                if self.verbose:
                    epochs.set_postfix(
                        train_loss=f"{train_loss:.4f}",
                        val_loss=f"{history['val_loss'][-1]:.4f}" if validation_loss else "-",
                    )
        if self.verbose:
            epochs.close()
        if best_state is not None:
            network.load_state_dict(best_state)
        network.eval()
        self.history_ = history
        self.best_epoch_ = int(best_epoch)

    @staticmethod
    def _weighted_mean(
        network: torch.nn.Module, row_loss: Callable[[slice], Tensor], w: Tensor
    ) -> float:
        """``sum(w * row_loss) / sum(w)`` in float64, with ``row_loss(rows)`` evaluated in blocks of rows."""
        torch = import_torch()
        network.eval()
        total = torch.zeros((), dtype=torch.float64, device=w.device)
        with torch.no_grad():
            for begin in range(0, w.shape[0], PREDICT_BATCH):
                sl = slice(begin, begin + PREDICT_BATCH)
                total += (row_loss(sl) * w[sl]).sum(dtype=torch.float64)
        return float(total) / float(w.sum(dtype=torch.float64))


def state_on_cpu(network: torch.nn.Module) -> dict[str, Any]:
    """A network's ``state_dict``, detached and on the CPU (what :meth:`TorchEstimator.save` writes)."""
    return {k: v.detach().cpu() for k, v in network.state_dict().items()}
