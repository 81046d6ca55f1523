"""Per-candidate score uncertainty from replicas of a fold model, and its calibration check.

A model with ``uncertainty: {replicas: R}`` trains, for every fold, ``R``
more models by the same procedure with other seeds (optionally each on a
bootstrap of the training events). A candidate's uncertainty is the sample
standard deviation (``ddof=1``) of its ``R`` replica scores, each replica
being one of the fold that did not see the candidate: the spread of the
score over the randomness of training.

Calibration check
-----------------
One more independent replica is trained per fold (``calibration: true``).
If the replica scores of a candidate are independent draws from a normal
distribution of mean ``mu`` and standard deviation ``sigma``, the new score
``s_new``, the replica mean ``m`` and the replica standard deviation ``err``
give the prediction-interval pull

    pull = (s_new - m) / (err * sqrt(1 + 1/R)),

which follows Student's t distribution with ``R - 1`` degrees of freedom
exactly (the ``sqrt(1 + 1/R)`` accounts for the noise of ``m``, the t
distribution for that of ``err``). The fraction of candidates with
``|pull| > 1`` is therefore expected to be ``2 * t.sf(1, R - 1)``:
0.423 for ``R = 3``, tending to 0.317 for many replicas. A larger fraction
means ``err`` underestimates the spread; a smaller one, that it overestimates it.
Candidates with ``err == 0`` (all replicas agree exactly) have no pull and
are counted apart.

The functions here are pure array kernels; the evaluation step reads and
writes the files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "BOOTSTRAP_MAX_EVENTS",
    "PULL_DEFINITION",
    "bootstrap_subsample",
    "calibration_figures",
    "expected_fraction_beyond",
    "pulls",
    "replica_spread",
]

#: How the pull is defined (stored next to the figures in ``summary.json``).
PULL_DEFINITION = (
    "pull = (s_check - mean of the R replica scores) / (err * sqrt(1 + 1/R)), "
    "s_check from one more independent replica; Student t with R-1 dof if err is calibrated"
)


def replica_spread(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (``ddof=1``) over replicas.

    Parameters
    ----------
    scores : numpy.ndarray, shape (n_replicas, n_candidates)
        Each row the scores of one replica (same units as the score).

    Returns
    -------
    mean, err : numpy.ndarray, shape (n_candidates,)

    Raises
    ------
    ValueError
        With fewer than two replicas (no spread).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 2:
        msg = f"scores must have shape (n_replicas >= 2, n_candidates), got {s.shape}"
        raise ValueError(msg)
    return s.mean(axis=0), s.std(axis=0, ddof=1)


def pulls(check: np.ndarray, mean: np.ndarray, err: np.ndarray, n_replicas: int) -> np.ndarray:
    """Prediction-interval pulls ``(check - mean) / (err * sqrt(1 + 1/R))``; NaN where ``err == 0``."""
    err = np.asarray(err, dtype=np.float64)
    denom = err * np.sqrt(1.0 + 1.0 / n_replicas)
    out = np.full(err.shape, np.nan)
    ok = denom > 0
    out[ok] = (
        np.asarray(check, dtype=np.float64)[ok] - np.asarray(mean, dtype=np.float64)[ok]
    ) / denom[ok]
    return out


def expected_fraction_beyond(n_replicas: int, k: float = 1.0) -> float:
    """Expected fraction of ``|pull| > k`` for calibrated, normal replica scores: ``2 t.sf(k, R - 1)``."""
    from scipy.stats import t

    if n_replicas < 2:
        msg = f"n_replicas must be at least 2, got {n_replicas}"
        raise ValueError(msg)
    return float(2.0 * t.sf(k, n_replicas - 1))


def calibration_figures(
    check: np.ndarray,
    mean: np.ndarray,
    err: np.ndarray,
    n_replicas: int,
    *,
    score: np.ndarray | None = None,
    n_bins: int = 5,
) -> dict[str, Any]:
    """The calibration check of ``err`` against an independent replica's scores ``check``.

    Parameters
    ----------
    check, mean, err : numpy.ndarray, shape (n,)
        The independent replica's scores, the replica mean and the
        uncertainty of each candidate.
    n_replicas : int
        ``R``, the replicas behind ``mean`` and ``err``.
    score : numpy.ndarray, shape (n,), optional
        The nominal score, to split the check in ``n_bins`` bins of equal
        population.

    Returns
    -------
    dict
        ``fraction_beyond_1`` (of candidates with ``err > 0``),
        ``expected_fraction_beyond_1``, ``n_candidates``, ``n_zero_err``,
        ``pull_std`` (the t distribution's is ``sqrt((R-1)/(R-3))`` for
        ``R > 3``), ``pull_mad`` (median |pull|; the t distribution's median
        |t| is 0.816 for ``R = 3``), ``mean_err``, ``median_err``,
        ``definition`` and, with ``score``, ``bins``: per bin the score range,
        fraction and candidate count.
    """
    from scipy.stats import t

    p = pulls(check, mean, err, n_replicas)
    ok = np.isfinite(p)
    out: dict[str, Any] = {
        "definition": PULL_DEFINITION,
        "n_replicas": int(n_replicas),
        "n_candidates": int(ok.sum()),
        "n_zero_err": int((~ok).sum()),
        "fraction_beyond_1": float(np.mean(np.abs(p[ok]) > 1.0)) if ok.any() else float("nan"),
        "expected_fraction_beyond_1": expected_fraction_beyond(n_replicas),
        "pull_mean": float(np.mean(p[ok])) if ok.any() else float("nan"),
        "pull_std": float(np.std(p[ok], ddof=1)) if ok.sum() > 1 else float("nan"),
        "median_abs_pull": float(np.median(np.abs(p[ok]))) if ok.any() else float("nan"),
        "expected_median_abs_pull": float(t.ppf(0.75, n_replicas - 1)),
        "mean_err": float(np.mean(err)) if len(err) else float("nan"),
        "median_err": float(np.median(err)) if len(err) else float("nan"),
    }
    if score is not None and ok.sum() >= n_bins:
        s = np.asarray(score, dtype=np.float64)[ok]
        edges = np.quantile(s, np.linspace(0, 1, n_bins + 1))
        which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
        bins = []
        for b in range(n_bins):
            m = which == b
            bins.append(
                {
                    "score_low": float(edges[b]),
                    "score_high": float(edges[b + 1]),
                    "n_candidates": int(m.sum()),
                    "fraction_beyond_1": float(np.mean(np.abs(p[ok][m]) > 1.0))
                    if m.any()
                    else float("nan"),
                    "median_err": float(np.median(np.asarray(err)[ok][m]))
                    if m.any()
                    else float("nan"),
                }
            )
        out["bins"] = bins
    return out


#: Above this many independent units (events) a bootstrap resamples a seeded subsample of this size.
BOOTSTRAP_MAX_EVENTS = 1_000_000


def bootstrap_subsample(
    n_units: int, max_units: int | None = BOOTSTRAP_MAX_EVENTS, random_state: Any = None
) -> tuple[np.ndarray | None, float]:
    """Which units a bootstrap resamples, and the factor that scales its spread to all ``n_units``.

    A bootstrap costs ``n_bootstrap`` passes over the sample. Above
    ``max_units`` units a uniform random subsample of ``max_units`` of them
    is bootstrapped instead: the spread of a statistic of ``n`` independent
    units falls as ``1 / sqrt(n)``, so the subsample's spread times
    ``sqrt(max_units / n_units)`` estimates the spread of the full sample,
    with the relative precision of the bootstrap itself
    (``~1 / sqrt(2 (n_bootstrap - 1))``).

    Returns
    -------
    keep : ndarray of int or None
        Sorted indices of the units to resample; ``None``: all of them.
    scale : float
        ``sqrt(len(keep) / n_units)``; exactly 1.0 without subsampling.
    """
    if max_units is None or n_units <= max_units:
        return None, 1.0
    if max_units < 1:
        msg = f"max_units must be positive, got {max_units}"
        raise ValueError(msg)
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.choice(n_units, size=int(max_units), replace=False))
    return keep, float(np.sqrt(max_units / n_units))
