"""Wasserstein GAN with gradient penalty (WGAN-GP) for tabular event features.

:class:`WGANGP` learns the distribution of (signal) event features, optionally
conditioned on a categorical label such as the decay mode, and samples new
events in physical units. Training follows the standard recipe of Gulrajani
et al. (2017): gradient penalty ``lambda_gp = 10``, ``n_critic = 5`` critic
steps per generator step, Adam with ``lr = 1e-4`` and ``betas = (0, 0.9)``,
no batch normalisation in the critic.

On top of that recipe, for tabular features with hard kinematic relations:
the networks work in a per-feature Gaussianised (quantile -> normal) space
fitted on the training events, whose inverse maps back to physical units;
the generator adds its noise to its output (standard-normal marginals from
the start); the learning rates follow a cosine annealing; the generator kept
is an exponential moving average of its weights; and a monotone map per
feature and condition category, fitted after training, moves each generated
marginal onto the (weighted) training one without touching the rank
correlations.

With held-out events (``validation_fraction > 0``) the generator kept is the
one with the best *fidelity* on them: the mean 1-Wasserstein distance between
generated and held-out events in the preprocessed space, over the features
and ``selection_projections`` random directions (which see correlations),
evaluated every ``selection_interval`` generator steps. The GAN losses are
not a usable model-selection criterion.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import wasserstein_distance
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._validation import check_weights
from ..exceptions import NonFiniteError
from ._checks import check_X
from ._torch import (
    TorchEstimator,
    draw_seed,
    import_torch,
    make_generator,
    state_on_cpu,
    torch_threads,
)

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["WGANGP"]

_FORMAT = "hepsel.WGANGP"
_FORMAT_VERSION = 1
_DEFAULT_STEM = "wgangp"
_SAMPLE_BATCH = 65_536
_MAX_SELECTION_EVENTS = 20_000
_MAX_RESAMPLE_ROUNDS = 10
_LR_SCHEDULES = ("constant", "cosine")
_LR_FLOOR = 0.05
_CALIBRATION_QUANTILES = 257
_CALIBRATION_EVENTS = 50_000
#: far beyond any Gaussianised value, so np.interp over this span is the identity
_IDENTITY_SPAN = 1.0e6
_LEGACY_PARAMS = {
    "lr_schedule": "constant",
    "ema_decay": 0.0,
    "generator_skip": False,
    "selection_projections": 0,
    "calibrate_marginals": False,
}


def _mlp(n_in: int, layers: Sequence[int], n_out: int) -> torch.nn.Sequential:
    torch = import_torch()
    widths = [int(n_in), *(int(h) for h in layers)]
    if any(w < 1 for w in widths) or n_out < 1:
        msg = f"layer widths must be positive integers, got {list(layers)!r}"
        raise ValueError(msg)
    modules: list[Any] = []
    for w_in, w_out in itertools.pairwise(widths):
        modules += [torch.nn.Linear(w_in, w_out), torch.nn.LeakyReLU(0.2)]
    modules.append(torch.nn.Linear(widths[-1], int(n_out)))
    return torch.nn.Sequential(*modules)


def _generator(
    n_latent: int, layers: Sequence[int], n_out: int, n_cond: int, skip: bool
) -> torch.nn.Module:
    """An MLP from noise (and one-hot condition) to features, optionally plus a linear skip from the noise.

    With ``skip`` the first ``n_out`` noise components are added to the
    outputs, so in the Gaussianised feature space the untrained generator
    already draws standard-normal marginals and training only has to learn
    their deformations and the correlations.
    """
    torch = import_torch()
    body = _mlp(n_latent + n_cond, layers, n_out)
    if not skip:
        return body
    # with fewer noise components than features, the last features get no skip
    n_skip = min(n_latent, n_out)

    class SkipGenerator(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, inputs: Tensor) -> Tensor:
            out = self.body(inputs)
            return torch.cat([out[:, :n_skip] + inputs[:, :n_skip], out[:, n_skip:]], dim=1)

    return SkipGenerator()


def _weighted_quantiles(
    x: np.ndarray, levels: np.ndarray, weight: np.ndarray | None = None
) -> np.ndarray:
    """Quantiles of ``x`` at ``levels`` (in [0, 1]); level 0 is the minimum, 1 the maximum."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    w = np.ones(xs.size) if weight is None else np.asarray(weight, dtype=np.float64)[order]
    cumulative = np.cumsum(w)
    # plotting positions at the middle of each event's weight, stretched to [0, 1]
    position = cumulative - 0.5 * w
    span = position[-1] - position[0]
    position = (position - position[0]) / span if span > 0 else np.linspace(0.0, 1.0, xs.size)
    return np.interp(levels, position, xs)


def _check_bounds(bounds: Any, n_features: int) -> np.ndarray:
    """Return bounds as an array of shape (n_features, 2) with -inf/+inf for ``None``."""
    out = np.empty((n_features, 2))
    out[:, 0], out[:, 1] = -np.inf, np.inf
    if bounds is None:
        return out
    bounds = list(bounds)
    if len(bounds) != n_features:
        msg = f"bounds has {len(bounds)} entries but X has {n_features} features; give one (low, high) pair per feature"
        raise ValueError(msg)
    for j, pair in enumerate(bounds):
        try:
            low, high = pair
        except (TypeError, ValueError) as exc:
            msg = f"bounds[{j}] must be a (low, high) pair with None for no limit, got {pair!r}"
            raise ValueError(msg) from exc
        if low is not None:
            out[j, 0] = float(low)
        if high is not None:
            out[j, 1] = float(high)
        if not out[j, 0] < out[j, 1] or np.isnan(out[j]).any():
            msg = f"bounds[{j}] = {pair!r} is empty; low must be below high"
            raise ValueError(msg)
    return out


def _bounds_to_json(bounds: Any) -> list[list[float | None]] | None:
    if bounds is None:
        return None
    return [[None if v is None else float(v) for v in pair] for pair in bounds]


@dataclass(kw_only=True, eq=False, repr=False)
class WGANGP(TorchEstimator, BaseEstimator):
    """Wasserstein GAN with gradient penalty for event features.

    Parameters
    ----------
    latent_dim : int, default 16
        Dimension of the Gaussian noise fed to the generator.
    generator_layers, critic_layers : tuple of int, default (128, 128)
        Hidden-layer widths (LeakyReLU(0.2) activations, no normalisation).
    batch_size : int, default 256
    n_iterations : int, default 2000
        Generator steps.
    n_critic : int, default 5
        Critic steps per generator step.
    lambda_gp : float, default 10.0
        Gradient-penalty strength.
    learning_rate : float, default 1e-4
    betas : tuple of float, default (0.0, 0.9)
        Adam betas, for both networks.
    lr_schedule : {"cosine", "constant"}, default "cosine"
        ``"cosine"`` anneals both learning rates from ``learning_rate`` to 5%
        of it over ``n_iterations``.
    ema_decay : float, default 0.999
        Decay of the exponential moving average of the generator weights
        (with a warm-up over the first steps); the average is evaluated,
        selected and kept. ``0``: the raw generator.
    generator_skip : bool, default True
        Add the first ``n_features`` noise components to the generator
        output, so the untrained generator draws standard-normal marginals in
        the Gaussianised space.
    selection_projections : int, default 32
        Random directions whose 1-Wasserstein distance joins the per-feature
        ones in the selection metric.
    calibrate_marginals : bool, default True
        After training, map each generated marginal (per condition category)
        onto the weighted training marginal with a monotone quantile map in
        the preprocessed space (:attr:`calibration_`).
    preprocessing : {"quantile", "standard"}, default "quantile"
        Feature scaling fitted on the training portion. With ``"quantile"``
        the inverse map interpolates between the stored training quantiles,
        so every generated value lies inside the ``[min, max]`` range of the
        training data of its feature: positive pT or chi2 stay positive,
        DIRA stays <= 1 and masses stay in their window whenever the
        training data respect these limits.
    n_conditions : int, default 0
        Number of categories of an optional conditioning label (e.g. decay
        mode); its one-hot encoding is appended to the generator and critic
        inputs. ``0``: unconditional.
    bounds : sequence of (float or None, float or None), optional
        Physical limits per feature, in the features' units. Samples are
        clipped to them as a safety net (the quantile preprocessing already
        keeps them inside the training range); the number of clipped values
        is recorded in :attr:`last_sample_clipped_`.
    selection_interval : int, default 200
        Evaluate fidelity on the validation events every this many generator
        steps (and after the last one) and keep the best generator.
    validation_fraction : float, default 0.2
        Fraction of the events held out for that model selection. ``0``
        keeps the last generator.
    device : {"auto", "cpu", "cuda"}, default "auto"
    random_state : int, numpy.random.RandomState or None
        Seeds the split, initial weights, minibatches and noise.
    n_jobs : int or None
        Torch intra-op threads during :meth:`fit`.
    verbose : bool, default False
        Show a progress bar over generator steps.

    Attributes
    ----------
    n_features_in_ : int
    scaler_ : FeatureScaler
    generator_, critic_ : torch.nn.Sequential
        ``generator_`` holds the selected (best) or, without validation
        events, the last (weight-averaged) state; ``critic_`` the last.
    bounds_ : numpy.ndarray, shape (n_features, 2)
        Lower and upper limits, ``-inf``/``+inf`` where none is given.
    history_ : dict of list
        At each selection point: ``iteration``, mean ``critic_loss`` and
        ``generator_loss`` since the previous point, ``wasserstein_estimate``
        (the critic's estimate, without penalty) and ``val_w1`` (the
        selection metric; empty without validation events).
    fidelity_ : dict
        ``metric``, ``best_w1`` (``None`` without validation),
        ``best_iteration`` and ``n_validation``.
    device_ : torch.device
    calibration_ : dict or None
        ``generated`` and ``real``: quantiles in the preprocessed space, shape
        (max(n_conditions, 1), n_features, 257), of the generator's and the
        training events' marginals; ``None`` without ``calibrate_marginals``.
    last_sample_clipped_ : numpy.ndarray of int, shape (n_features,)
        Values clipped to :attr:`bounds_` in the last :meth:`sample` call.
    last_sample_rejected_ : int
        Non-finite samples discarded (and redrawn) in the last :meth:`sample` call.
    """

    _format = _FORMAT
    _format_version = _FORMAT_VERSION
    _stem = _DEFAULT_STEM
    _fitted = "generator_"
    _layer_params = ("generator_layers", "critic_layers")
    _legacy_params = _LEGACY_PARAMS

    latent_dim: int = 16
    generator_layers: Sequence[int] = (128, 128)
    critic_layers: Sequence[int] = (128, 128)
    batch_size: int = 256
    n_iterations: int = 2000
    n_critic: int = 5
    lambda_gp: float = 10.0
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    lr_schedule: str = "cosine"
    ema_decay: float = 0.999
    generator_skip: bool = True
    selection_projections: int = 32
    calibrate_marginals: bool = True
    n_conditions: int = 0
    bounds: Sequence[tuple[float | None, float | None]] | None = None
    selection_interval: int = 200

    # -------------------------------------------------------------- helpers
    def _check_params(self) -> None:
        self._check_preprocessing()
        self._check_positive_ints(
            "latent_dim", "batch_size", "n_iterations", "n_critic", "selection_interval"
        )
        projections: object = self.selection_projections  # parameters are checked as given
        if not isinstance(projections, int | np.integer) or projections < 0:
            msg = f"selection_projections must be a non-negative integer, got {self.selection_projections!r}"
            raise ValueError(msg)
        conditions: object = self.n_conditions
        if not isinstance(conditions, int | np.integer) or conditions < 0:
            msg = f"n_conditions must be a non-negative integer, got {self.n_conditions!r}"
            raise ValueError(msg)
        if self.lr_schedule not in _LR_SCHEDULES:
            msg = f"lr_schedule must be one of {_LR_SCHEDULES}, got {self.lr_schedule!r}"
            raise ValueError(msg)
        if not 0.0 <= self.ema_decay < 1.0:
            msg = f"ema_decay must be in [0, 1) (0: no weight averaging), got {self.ema_decay!r}"
            raise ValueError(msg)
        self._check_validation_fraction()

    def _check_conditions(self, conditions: Any, n: int) -> np.ndarray | None:
        if self.n_conditions == 0:
            if conditions is not None:
                msg = "conditions given but the model is unconditional; set n_conditions > 0"
                raise ValueError(msg)
            return None
        if conditions is None:
            msg = f"the model is conditioned on {self.n_conditions} categories; pass conditions (integer labels)"
            raise ValueError(msg)
        c = np.asarray(conditions)
        if c.ndim == 0:
            c = np.full(n, c)
        if c.shape != (n,):
            msg = f"conditions must have shape ({n},), got {c.shape}"
            raise ValueError(msg)
        if c.size and not np.issubdtype(c.dtype, np.integer):
            if not np.array_equal(c, np.round(c)):
                msg = "conditions must be integer category labels"
                raise ValueError(msg)
        c = c.astype(np.int64)
        if c.size and (c.min() < 0 or c.max() >= self.n_conditions):
            msg = (
                f"conditions must lie in [0, {self.n_conditions}), got range [{c.min()}, {c.max()}]"
            )
            raise ValueError(msg)
        return c

    def _inputs(self, main: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if cond is None:
            return main
        torch = import_torch()
        one_hot = torch.nn.functional.one_hot(cond, int(self.n_conditions)).to(main.dtype)
        return torch.cat([main, one_hot], dim=1)

    def _build(self, n_features: int) -> tuple[torch.nn.Module, torch.nn.Sequential]:
        n_cond = int(self.n_conditions)
        generator = _generator(
            int(self.latent_dim),
            self.generator_layers,
            n_features,
            n_cond,
            bool(self.generator_skip),
        )
        critic = _mlp(n_features + n_cond, self.critic_layers, 1)
        return generator, critic

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, conditions: Any = None, sample_weight: Any = None) -> WGANGP:
        """Train the GAN on real events.

        Parameters
        ----------
        X : array_like, shape (n_events, n_features)
            Real (e.g. signal) features in physical units (MeV, mm, ...).
        conditions : array_like of int, shape (n_events,), optional
            Category labels in ``[0, n_conditions)``; required iff
            ``n_conditions > 0``.
        sample_weight : array_like, shape (n_events,), optional
            Non-negative weights; minibatches are drawn with probability
            proportional to them. (The validation metric uses them too;
            the quantile preprocessing does not.)

        Returns
        -------
        WGANGP
            ``self``.

        Raises
        ------
        ValueError
            On bad parameters, shapes, conditions, bounds, or negative
            weights (drop or clip negative sWeights first).
        NonFiniteError
            If ``X`` or the weights hold NaN or infinite values.
        """
        torch = import_torch()
        self._check_params()
        X = check_X(X, nonempty=True)
        n, n_features = X.shape
        c = self._check_conditions(conditions, n)
        w = check_weights(sample_weight, n, against="X")
        if w is not None:
            if (w < 0).any():
                msg = (
                    f"sample_weight holds {(w < 0).sum()} negative values (min {w.min():g}); "
                    "WGANGP draws minibatches with probability proportional to the weights, "
                    "so they must be >= 0: drop or clip negative sWeights first"
                )
                raise ValueError(msg)
            if w.sum() <= 0:
                msg = "sample_weight sums to zero; at least one event needs a positive weight"
                raise ValueError(msg)
        self.bounds_ = _check_bounds(self.bounds, n_features)

        rng = np.random.RandomState(draw_seed(self.random_state))
        split_seed, torch_seed, scaler_seed, eval_seed = (draw_seed(rng) for _ in range(4))
        permutation = np.random.RandomState(split_seed).permutation(n)
        n_val = round(self.validation_fraction * n)
        if self.validation_fraction > 0 and not 1 <= n_val < n:
            msg = f"validation_fraction={self.validation_fraction} leaves no validation or training events out of {n}"
            raise ValueError(msg)
        val_idx, train_idx = np.sort(permutation[:n_val]), np.sort(permutation[n_val:])

        self.n_features_in_ = int(n_features)
        self._fit_scaler(X[train_idx], scaler_seed)
        Z = self.scaler_.transform(X)

        selection = None
        if n_val > 0:
            # A subset bounds the cost of each selection step on large samples.
            keep = val_idx
            if keep.size > _MAX_SELECTION_EVENTS:
                keep = np.sort(rng.choice(keep, _MAX_SELECTION_EVENTS, replace=False))
            selection = (
                Z[keep],
                None if c is None else c[keep],
                None if w is None else w[keep],
            )

        with torch_threads(self.n_jobs):
            generator, critic = self._seeded_build(torch_seed)
            self.generator_ = generator.to(self.device_)
            self.critic_ = critic.to(self.device_)
            self._train(
                torch.as_tensor(Z[train_idx], dtype=torch.float32, device=self.device_),
                None if c is None else torch.as_tensor(c[train_idx], device=self.device_),
                None if w is None else torch.as_tensor(w[train_idx], device=self.device_),
                selection,
                torch_seed,
                eval_seed,
            )
            self.calibration_ = (
                self._calibrate(
                    Z[train_idx],
                    None if c is None else c[train_idx],
                    None if w is None else w[train_idx],
                    eval_seed,
                )
                if self.calibrate_marginals
                else None
            )
        return self

    def _calibrate(
        self, z: np.ndarray, c: np.ndarray | None, w: np.ndarray | None, seed: int
    ) -> dict[str, Any]:
        """Quantile tables mapping each generated marginal onto the training one, per condition.

        The generator learns the correlations well before the last few
        percent of each marginal; a monotone map per feature (and category)
        from the generated to the (weighted) training quantiles, both in the
        Gaussianised space, corrects the marginals and keeps the generator's
        rank correlations.
        """
        torch = import_torch()
        levels = np.linspace(0.0, 1.0, _CALIBRATION_QUANTILES)
        n_groups = max(int(self.n_conditions), 1)
        generated_q = np.empty((n_groups, z.shape[1], levels.size))
        real_q = np.empty_like(generated_q)
        gen = make_generator(seed, self.device_)
        self.generator_.eval()
        for g in range(n_groups):
            rows = np.ones(z.shape[0], dtype=bool) if c is None else c == g
            noise = torch.randn(
                _CALIBRATION_EVENTS, int(self.latent_dim), generator=gen, device=self.device_
            )
            cond = (
                None
                if c is None
                else torch.full((_CALIBRATION_EVENTS,), g, device=self.device_, dtype=torch.int64)
            )
            with torch.no_grad():
                fake = self.generator_(self._inputs(noise, cond)).double().cpu().numpy()
            fake = fake[np.isfinite(fake).all(axis=1)]
            if not rows.any() or fake.shape[0] == 0:
                # a category absent from training (or a broken generator): the identity map
                generated_q[g] = real_q[g] = np.linspace(
                    -_IDENTITY_SPAN, _IDENTITY_SPAN, levels.size
                )
                continue
            for j in range(z.shape[1]):
                generated_q[g, j] = _weighted_quantiles(fake[:, j], levels)
                real_q[g, j] = _weighted_quantiles(
                    z[rows, j], levels, None if w is None else w[rows]
                )
        return {"generated": generated_q, "real": real_q}

    def _apply_calibration(self, z: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        if self.calibration_ is None:
            return z
        generated_q, real_q = self.calibration_["generated"], self.calibration_["real"]
        out = np.empty_like(z)
        groups = np.zeros(z.shape[0], dtype=np.int64) if c is None else c
        for g in np.unique(groups):
            rows = groups == g
            for j in range(z.shape[1]):
                out[rows, j] = np.interp(z[rows, j], generated_q[g, j], real_q[g, j])
        return out

    def _train(
        self,
        x_train: torch.Tensor,
        c_train: torch.Tensor | None,
        w_train: torch.Tensor | None,
        selection: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None,
        seed: int,
        eval_seed: int,
    ) -> None:
        torch = import_torch()
        device = self.device_
        generator, critic = self.generator_, self.critic_
        gen = make_generator(seed, device)
        betas = (float(self.betas[0]), float(self.betas[1]))
        opt_g = torch.optim.Adam(generator.parameters(), lr=self.learning_rate, betas=betas)
        opt_c = torch.optim.Adam(critic.parameters(), lr=self.learning_rate, betas=betas)
        n_iterations = int(self.n_iterations)
        schedules = []
        if self.lr_schedule == "cosine":
            # anneal both learning rates to _LR_FLOOR of their start over the run
            def factor(step: int) -> float:
                return _LR_FLOOR + (1.0 - _LR_FLOOR) * 0.5 * (
                    1.0 + np.cos(np.pi * min(step, n_iterations) / n_iterations)
                )

            schedules = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_c)]
        ema_decay = float(self.ema_decay)
        # the averaged generator is the one evaluated, selected and kept
        averaged = copy.deepcopy(generator).requires_grad_(False) if ema_decay > 0 else generator
        n_train, bs, latent = x_train.shape[0], int(self.batch_size), int(self.latent_dim)
        cumulative = None if w_train is None else torch.cumsum(w_train, 0)

        def draw_batch() -> Tensor:
            if cumulative is None:
                return torch.randint(n_train, (bs,), generator=gen, device=device)
            u = torch.rand(bs, generator=gen, device=device, dtype=cumulative.dtype)
            idx = torch.searchsorted(cumulative, u * cumulative[-1], right=True)
            return idx.clamp_(max=n_train - 1)

        if selection is not None:
            z_sel, c_sel, w_sel = selection
            # random unit directions: W1 along them sees correlations that the marginals miss
            directions = np.random.RandomState(eval_seed).normal(
                size=(z_sel.shape[1], int(self.selection_projections))
            )
            directions /= np.linalg.norm(directions, axis=0, keepdims=True).clip(min=1e-12)
            z_sel = np.hstack([z_sel, z_sel @ directions])
            eval_gen = make_generator(eval_seed, device)
            # Fixed noise makes successive evaluations differ only by the generator.
            eval_noise = torch.randn(z_sel.shape[0], latent, generator=eval_gen, device=device)
            eval_cond = None if c_sel is None else torch.as_tensor(c_sel, device=device)

        history: dict[str, list[float]] = {
            "iteration": [],
            "critic_loss": [],
            "generator_loss": [],
            "wasserstein_estimate": [],
            "val_w1": [],
        }
        zero = torch.zeros((), device=device)
        sums = {"critic": zero.clone(), "generator": zero.clone(), "w": zero.clone()}
        steps_since = 0
        best_w1, best_iteration, best_state = np.inf, int(self.n_iterations), None

        iterations: Any = range(1, int(self.n_iterations) + 1)
        if self.verbose:
            from tqdm.auto import tqdm

            iterations = tqdm(
                iterations, desc="WGAN-GP", unit="step", disable=None
            )  # None: off when not a terminal
        for iteration in iterations:
            generator.train()
            critic.train()
            for _ in range(int(self.n_critic)):
                idx = draw_batch()
                real = x_train[idx]
                cond = None if c_train is None else c_train[idx]
                noise = torch.randn(bs, latent, generator=gen, device=device)
                with torch.no_grad():
                    fake = generator(self._inputs(noise, cond))
                eps = torch.rand(bs, 1, generator=gen, device=device)
                interp = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
                both_cond = None if cond is None else cond.repeat(3)
                # One critic pass over real, fake and interpolated events.
                scores = critic(self._inputs(torch.cat([real, fake, interp]), both_cond))
                d_real, d_fake, d_interp = scores.squeeze(1).split(bs)
                (grad,) = torch.autograd.grad(d_interp.sum(), interp, create_graph=True)
                penalty = ((grad.norm(2, dim=1) - 1.0) ** 2).mean()
                w_estimate = d_real.mean() - d_fake.mean()
                loss_c = -w_estimate + self.lambda_gp * penalty
                opt_c.zero_grad(set_to_none=True)
                loss_c.backward()
                opt_c.step()
            idx = draw_batch()
            cond = None if c_train is None else c_train[idx]
            noise = torch.randn(bs, latent, generator=gen, device=device)
            critic.requires_grad_(False)
            loss_g = -critic(self._inputs(generator(self._inputs(noise, cond)), cond)).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            critic.requires_grad_(True)
            for schedule in schedules:
                schedule.step()
            if ema_decay > 0:
                # warm-up: early on the average follows the generator closely
                decay = min(ema_decay, (1.0 + iteration) / (10.0 + iteration))
                with torch.no_grad():
                    for p_avg, p in zip(averaged.parameters(), generator.parameters(), strict=True):
                        p_avg.lerp_(p, 1.0 - decay)

            sums["critic"] += loss_c.detach()
            sums["generator"] += loss_g.detach()
            sums["w"] += w_estimate.detach()
            steps_since += 1
            if iteration % int(self.selection_interval) == 0 or iteration == self.n_iterations:
                history["iteration"].append(int(iteration))
                history["critic_loss"].append(float(sums["critic"]) / steps_since)
                history["generator_loss"].append(float(sums["generator"]) / steps_since)
                history["wasserstein_estimate"].append(float(sums["w"]) / steps_since)
                sums = {k: zero.clone() for k in sums}
                steps_since = 0
                if selection is not None:
                    averaged.eval()
                    with torch.no_grad():
                        generated = (
                            averaged(self._inputs(eval_noise, eval_cond)).double().cpu().numpy()
                        )
                    w1 = self._selection_metric(
                        z_sel, np.hstack([generated, generated @ directions]), w_sel
                    )
                    history["val_w1"].append(w1)
                    if w1 < best_w1:
                        best_w1, best_iteration = w1, int(iteration)
                        best_state = copy.deepcopy(averaged.state_dict())
                    if self.verbose:
                        iterations.set_postfix(val_w1=f"{w1:.4f}", best=best_iteration)
        if self.verbose:
            iterations.close()
        if best_state is not None:
            generator.load_state_dict(best_state)
        elif averaged is not generator:
            generator.load_state_dict(averaged.state_dict())
        generator.eval()
        critic.eval()
        self.history_ = history
        self.fidelity_ = {
            "metric": "mean over features of the 1-Wasserstein distance, preprocessed space",
            "best_w1": float(best_w1) if np.isfinite(best_w1) else None,
            "best_iteration": int(best_iteration),
            "n_validation": 0 if selection is None else int(selection[0].shape[0]),
        }

    @staticmethod
    def _selection_metric(
        real: np.ndarray, generated: np.ndarray, weight: np.ndarray | None
    ) -> float:
        if not np.isfinite(generated).all():
            return float("inf")
        distances = [
            wasserstein_distance(real[:, j], generated[:, j], u_weights=weight)
            for j in range(real.shape[1])
        ]
        return float(np.mean(distances))

    # --------------------------------------------------------------- sample
    def sample(
        self,
        n: int,
        conditions: Any = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> np.ndarray:
        """Generate events in physical units.

        Rows with non-finite values are discarded and redrawn; values outside
        :attr:`bounds_` are clipped (counted in :attr:`last_sample_clipped_`).

        Parameters
        ----------
        n : int
            Number of events.
        conditions : int or array_like of int, shape (n,), optional
            Category labels, required iff ``n_conditions > 0``; a scalar
            applies to all events.
        random_state : int, numpy.random.RandomState or None
            Seeds the noise; the same seed gives the same events on the same
            device.

        Returns
        -------
        numpy.ndarray, shape (n, n_features), float64
            Same features and units as the training ``X``.

        Raises
        ------
        NonFiniteError
            If non-finite samples keep appearing after repeated redraws.
        """
        torch = import_torch()
        check_is_fitted(self, "generator_")
        given: object = n
        if not isinstance(given, int | np.integer) or given < 0:
            msg = f"n must be a non-negative integer, got {n!r}"
            raise ValueError(msg)
        n = int(n)
        c = self._check_conditions(conditions, n)
        gen = make_generator(draw_seed(random_state), self.device_)
        out = np.empty((n, self.n_features_in_))
        missing = np.arange(n)
        rejected = 0
        self.generator_.eval()
        for _ in range(_MAX_RESAMPLE_ROUNDS):
            if missing.size == 0:
                break
            for begin in range(0, missing.size, _SAMPLE_BATCH):
                rows = missing[begin : begin + _SAMPLE_BATCH]
                noise = torch.randn(
                    rows.size, int(self.latent_dim), generator=gen, device=self.device_
                )
                cond = None if c is None else torch.as_tensor(c[rows], device=self.device_)
                with torch.no_grad():
                    z = self.generator_(self._inputs(noise, cond)).double().cpu().numpy()
                # Non-finite network outputs would turn into NaN or limits; mark them first.
                finite_z = np.isfinite(z).all(axis=1)
                z = self._apply_calibration(
                    np.where(finite_z[:, None], z, 0.0), None if c is None else c[rows]
                )
                out[rows] = self.scaler_.inverse_transform(z)
                out[rows[~finite_z]] = np.nan
            finite = np.isfinite(out[missing]).all(axis=1)
            rejected += int((~finite).sum())
            missing = missing[~finite]
        if missing.size:
            msg = (
                f"{missing.size} generated events are still non-finite after "
                f"{_MAX_RESAMPLE_ROUNDS} redraws; the generator is broken, retrain it"
            )
            raise NonFiniteError(msg)
        low, high = self.bounds_[:, 0], self.bounds_[:, 1]
        self.last_sample_clipped_ = ((out < low) | (out > high)).sum(axis=0).astype(np.int64)
        self.last_sample_rejected_ = rejected
        return np.clip(out, low, high)

    # -- saving and loading (TorchEstimator) -------------------------------------
    def _metadata(self) -> dict[str, Any]:
        params = self._json_params()
        params["betas"] = [float(b) for b in self.betas]
        params["bounds"] = _bounds_to_json(self.bounds)
        return {
            "params": params,
            "n_features_in": self.n_features_in_,
            "scaler": self.scaler_.to_dict(),
            "history": self.history_,
            "fidelity": self.fidelity_,
            "calibration": None
            if self.calibration_ is None
            else {k: np.asarray(v).tolist() for k, v in self.calibration_.items()},
        }

    def _state(self) -> dict[str, Any]:
        return {"generator": state_on_cpu(self.generator_), "critic": state_on_cpu(self.critic_)}

    @classmethod
    def _params_from_metadata(cls, meta: dict[str, Any]) -> dict[str, Any]:
        params = super()._params_from_metadata(meta)
        params["betas"] = tuple(params["betas"])
        if params["bounds"] is not None:
            params["bounds"] = [tuple(pair) for pair in params["bounds"]]
        return params

    def _restore(self, meta: dict[str, Any]) -> None:
        super()._restore(meta)
        self.bounds_ = _check_bounds(self.bounds, self.n_features_in_)
        self.fidelity_ = meta["fidelity"]
        calibration = meta.get("calibration")
        self.calibration_ = (
            None
            if calibration is None
            else {k: np.asarray(v, dtype=np.float64) for k, v in calibration.items()}
        )

    def _load_state(self, state: dict[str, Any]) -> None:
        generator, critic = self._build(self.n_features_in_)
        generator.load_state_dict(state["generator"])
        critic.load_state_dict(state["critic"])
        self.generator_ = generator.to(self.device_).eval()
        self.critic_ = critic.to(self.device_).eval()
