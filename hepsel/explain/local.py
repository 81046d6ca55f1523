"""Why was this candidate selected (or not)? Local explanations of one candidate's score.

Each candidate is explained by the fold model that scored it (the one that
did not train on it), on the model's margin (log-odds, logit) output, twice:

* SHAP, by the most exact path the model offers: xgboost's TreeSHAP for BDTs
  and bonsai BDTs; the closed form ``coef * (x - mean)`` for a linear model
  (Fisher), with the mean of the model's training sample as reference;
  expected gradients (``shap.GradientExplainer``) for torch networks exposing
  ``network_`` and ``scaler_`` (MLPs and any model with the MLP interface);
  shap's model-agnostic permutation explainer on ``decision_function`` for
  anything else.
* LIME (``lime.lime_tabular.LimeTabularExplainer`` in regression mode on the
  same margin), with the model's own training sample as reference. LIME
  samples around the candidate with the reference's spread and fits a linear
  surrogate in units of the reference's standard deviations; its attribution
  of a feature is ``weight * (x - mean) / std``: the local slope carried from
  the reference mean to the candidate, in the same units as SHAP (for a
  linear model the two agree exactly; for a tree model LIME's slope is
  local, SHAP's attribution is not).

Trust: the surrogate's weighted R^2 (``exp.score``) and the spread of the LIME
weights over several seeds; the spread of SHAP values when the same candidate
is explained by every fold model, and the features whose sign flips between
them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..exceptions import CandidateError

__all__ = [
    "LocalExplanation",
    "explain_candidate",
    "find_candidate",
    "lime_attribution",
    "parse_candidate",
    "shap_attribution",
    "shap_method",
]


def shap_method(clf: Any) -> str:
    """How :func:`shap_attribution` explains ``clf`` (one line, for tables and captions)."""
    if hasattr(clf, "shap_values") and hasattr(clf, "feature_indices_"):
        return "TreeSHAP (xgboost pred_contribs) of the bonsai BDT's internal BDT on the candidate's cell; exact"
    if hasattr(clf, "shap_values"):
        return "TreeSHAP (xgboost pred_contribs); exact"
    if hasattr(clf, "coef_") and hasattr(clf, "intercept_"):
        return "exact linear SHAP: coefficient x (value - training-sample mean)"
    if hasattr(clf, "score_module"):
        return "expected gradients (shap.GradientExplainer) on the reconstruction error; a sampling estimate"
    if hasattr(clf, "network_") and hasattr(clf, "scaler_"):
        return "expected gradients (shap.GradientExplainer) on the logit; a sampling estimate"
    return "permutation SHAP (interventional, antithetic permutations; model-agnostic) on decision_function"


def shap_attribution(
    clf: Any, X: np.ndarray, reference: np.ndarray, *, random_state: int = 0, n_samples: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """SHAP values (n, n_features) and base values (n,) of ``clf``'s margin for rows ``X``.

    ``reference`` (n_ref, n_features), in physical units, is the model's
    training sample: the mean of a linear model, the background of expected
    gradients and of the permutation explainer. Features a bonsai BDT does not
    use get 0. For the exact paths, ``values.sum(1) + base`` equals
    ``clf.decision_function(X)``.
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    n, d = X.shape
    if hasattr(clf, "shap_values"):
        vals, base = clf.shap_values(X)
        vals = np.asarray(vals, dtype=np.float64)
        if hasattr(clf, "feature_indices_"):
            full = np.zeros((n, d))
            full[:, [int(c) for c in clf.feature_indices_]] = vals
            vals = full
        return vals, np.full(n, float(base))
    if hasattr(clf, "coef_") and hasattr(clf, "intercept_"):
        coef = np.asarray(clf.coef_, dtype=np.float64).reshape(-1)
        mean = np.asarray(reference, dtype=np.float64).mean(axis=0)
        return coef * (X - mean), np.full(
            n, float(coef @ mean + float(np.ravel(clf.intercept_)[0]))
        )
    if hasattr(clf, "score_module"):
        # an autoencoder: its score is the reconstruction error, explained against background candidates
        from .shap_values import explain_autoencoder

        bg = _subsample(reference, 200, random_state)
        return explain_autoencoder(clf, X, bg, random_state=random_state, n_samples=n_samples)
    if hasattr(clf, "network_") and hasattr(clf, "scaler_"):
        from .shap_values import explain_mlp

        bg = _subsample(reference, 200, random_state)
        return explain_mlp(clf, X, bg, random_state=random_state, n_samples=n_samples)
    bg = _subsample(reference, 100, random_state)
    vals = np.vstack(
        [_permutation_shap(clf.decision_function, row, bg, random_state=random_state) for row in X]
    )
    return vals, np.full(n, float(np.mean(clf.decision_function(bg))))


def _permutation_shap(
    f: Any,
    x: np.ndarray,
    background: np.ndarray,
    *,
    random_state: int = 0,
    n_permutations: int = 10,
) -> np.ndarray:
    """Interventional SHAP values of ``f`` at ``x`` by antithetic permutation sampling.

    Features are switched from the background rows to ``x`` one at a time in
    random orders (each order also reversed); a feature's value is the mean
    change of the background-averaged output when it is switched. Every
    order's changes sum to ``f(x) - mean f(background)``, so the values are
    additive whatever the number of permutations, and exact for an additive
    ``f``.
    """
    rng = np.random.default_rng(random_state)
    d = len(x)
    out = np.zeros(d)
    orders = []
    for _ in range(n_permutations):
        p = rng.permutation(d)
        orders += [p, p[::-1]]
    for order in orders:
        z = np.array(background, dtype=np.float64, copy=True)
        prev = float(np.mean(f(z)))
        for j in order:
            z[:, j] = x[j]
            cur = float(np.mean(f(z)))
            out[j] += cur - prev
            prev = cur
    return out / len(orders)


def _subsample(a: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(a) <= n:
        return a
    return a[np.random.default_rng(seed).choice(len(a), size=n, replace=False)]


def lime_attribution(
    predict: Any,
    x: np.ndarray,
    reference: np.ndarray,
    *,
    num_samples: int = 3000,
    random_state: int = 0,
) -> dict[str, Any]:
    """One LIME explanation of ``predict`` (rows -> margin) at the candidate ``x`` (n_features,).

    LIME draws its neighbourhood around ``x`` with the reference's standard
    deviations and fits a weighted ridge surrogate in standardised units.
    Returns ``weight`` (the surrogate's slope per standard deviation of the
    reference sample), ``offset`` (``(x - mean) / std``), ``contribution``
    (``weight * offset``, margin units),
    ``intercept`` (the surrogate at the reference mean), ``local_pred`` (the
    surrogate at ``x``) and ``r2`` (LIME's ``score``: weighted R^2 of the
    surrogate on its neighbourhood).
    """
    from lime.lime_tabular import LimeTabularExplainer

    ref = np.asarray(reference, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    d = len(x)
    # sampling around the candidate: the candidates worth explaining (the highest-scoring background, say)
    # sit in the tails, where a neighbourhood drawn around the mean would get no kernel weight at all
    explainer = LimeTabularExplainer(
        ref,
        mode="regression",
        feature_names=[str(i) for i in range(d)],
        discretize_continuous=False,
        feature_selection="none",
        sample_around_instance=True,
        random_state=random_state,
    )
    with warnings.catch_warnings():
        # a bonsai BDT's table gives +-inf margins in empty cells: LIME sees them clipped
        warnings.simplefilter("ignore", RuntimeWarning)
        exp = explainer.explain_instance(
            x,
            lambda z: np.clip(np.asarray(predict(z), dtype=np.float64), -50.0, 50.0),
            num_features=d,
            num_samples=num_samples,
        )
    w = np.zeros(d)
    for i, v in exp.local_exp[1]:
        w[int(i)] = float(v)
    mean, scale = explainer.scaler.mean_, explainer.scaler.scale_
    offset = (x - mean) / scale
    return {
        "weight": w,
        "offset": offset,
        "contribution": w * offset,
        "intercept": float(exp.intercept[1]),
        "local_pred": float(np.ravel(exp.local_pred)[0]),
        "r2": float(exp.score),
    }


@dataclass
class LocalExplanation:
    """One candidate's explanation by its own fold model, with the trust figures.

    Arrays have one entry per feature (``feature_names``); ``value`` is in
    physical units; ``output`` is the model's margin for the candidate,
    ``shap + shap_base`` sums to it (exactly for the exact methods). ``lime``
    is the mean over the LIME seeds (``lime_weight_std`` the spread of the
    weights, ``lime_r2`` one R^2 per seed, ``lime_offset`` the candidate's
    ``(x - mean) / std`` in the reference sample); ``shap_folds`` (k, n_features) the
    SHAP values from every fold model, ``sign_flips`` the features whose SHAP
    value changes sign between them (ignoring values below 5% of the
    candidate's largest |SHAP|).
    """

    feature_names: list[str]
    value: np.ndarray
    output: float
    fold: int
    shap: np.ndarray
    shap_base: float
    shap_method: str
    lime_weight: np.ndarray
    lime_contribution: np.ndarray
    lime_intercept: float
    lime_local_pred: float
    lime_r2: list[float]
    lime_weight_std: np.ndarray
    lime_offset: np.ndarray
    shap_folds: np.ndarray
    sign_flips: list[str] = field(default_factory=list)

    @property
    def shap_fold_std(self) -> np.ndarray:
        """Standard deviation of each feature's SHAP value over the fold models."""
        return np.asarray(np.std(self.shap_folds, axis=0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (arrays as lists)."""
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        out["shap_fold_std"] = self.shap_fold_std.tolist()
        return out

    def rows(self, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """One row per feature, by decreasing |SHAP|: feature, label, value, SHAP, LIME weight and contribution."""
        labels = labels or {}
        order = np.argsort(-np.abs(self.shap), kind="stable")
        return [
            {
                "feature": self.feature_names[i],
                "label": labels.get(self.feature_names[i], self.feature_names[i]),
                "value": float(self.value[i]),
                "shap": float(self.shap[i]),
                "lime_weight": float(self.lime_weight[i]),
                "lime_contribution": float(self.lime_contribution[i]),
            }
            for i in order
        ]


def explain_candidate(
    fold_models: Sequence[Any],
    x: np.ndarray,
    fold: int,
    references: Sequence[np.ndarray],
    feature_names: Sequence[str],
    *,
    lime_seeds: Sequence[int] = (0, 1, 2),
    lime_samples: int = 3000,
    random_state: int = 0,
    mlp_samples: int = 200,
) -> LocalExplanation:
    """Explain candidate ``x`` (n_features,) of fold ``fold`` by ``fold_models[fold]``.

    ``references[k]`` is fold model ``k``'s training sample (physical units).
    SHAP is also computed with every other fold model (each against its own
    training sample) for the spread; LIME with each seed of ``lime_seeds``.
    """
    if not 0 <= fold < len(fold_models):
        msg = f"candidate fold {fold} has no model: there are {len(fold_models)} fold models"
        raise ValueError(msg)
    if not lime_seeds:
        msg = "lime_seeds must name at least one seed"
        raise ValueError(msg)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    clf = fold_models[fold]
    output = float(clf.decision_function(x[None, :])[0])
    shap_folds = np.vstack(
        [
            shap_attribution(
                m, x[None, :], references[k], random_state=random_state, n_samples=mlp_samples
            )[0]
            for k, m in enumerate(fold_models)
        ]
    )
    vals, base = shap_attribution(
        clf, x[None, :], references[fold], random_state=random_state, n_samples=mlp_samples
    )
    shap_folds[fold] = vals[0]
    runs = [
        lime_attribution(
            clf.decision_function, x, references[fold], num_samples=lime_samples, random_state=s
        )
        for s in lime_seeds
    ]
    w = np.array([r["weight"] for r in runs])
    scale = np.max(np.abs(vals[0])) if np.any(vals[0]) else 0.0
    significant = np.abs(shap_folds) > 0.05 * scale
    flips = [
        feature_names[j]
        for j in range(len(x))
        if np.any(significant[:, j] & (shap_folds[:, j] > 0))
        and np.any(significant[:, j] & (shap_folds[:, j] < 0))
    ]
    return LocalExplanation(
        feature_names=list(feature_names),
        value=x,
        output=output,
        fold=int(fold),
        shap=vals[0],
        shap_base=float(base[0]),
        shap_method=shap_method(clf),
        lime_weight=w.mean(axis=0),
        lime_contribution=np.mean([r["contribution"] for r in runs], axis=0),
        lime_intercept=float(np.mean([r["intercept"] for r in runs])),
        lime_local_pred=float(np.mean([r["local_pred"] for r in runs])),
        lime_r2=[r["r2"] for r in runs],
        lime_weight_std=w.std(axis=0),
        lime_offset=runs[0]["offset"],
        shap_folds=shap_folds,
        sign_flips=flips,
    )


_CANDIDATE = re.compile(r"^\s*(-?\d+):(-?\d+)(?::(\d+))?\s*$")


def parse_candidate(text: str) -> tuple[int, int, int | None]:
    """``"RUN:EVENT"`` or ``"RUN:EVENT:INDEX"`` -> (run, event, index or None).

    Raises
    ------
    CandidateError
        If ``text`` is not of that form.
    """
    m = _CANDIDATE.match(str(text))
    if m is None:
        msg = f"candidate {text!r} is not RUN:EVENT or RUN:EVENT:INDEX (integers, e.g. 1:2045 or 1:2045:0)"
        raise CandidateError(msg)
    return int(m.group(1)), int(m.group(2)), None if m.group(3) is None else int(m.group(3))


def find_candidate(
    run: np.ndarray, event: np.ndarray, wanted: tuple[int, int, int | None], describe: Any = None
) -> int:
    """Row of the candidate ``(run, event, index)`` among the rows with those run and event numbers.

    ``index`` counts the matching rows in order (all samples together). With
    several matches and no index, or an index out of range, the error lists
    the candidates; ``describe(row)`` gives each one's description.

    Raises
    ------
    CandidateError
        If no candidate matches, or the match is ambiguous.
    """
    r, e, i = wanted
    rows = np.flatnonzero((np.asarray(run) == r) & (np.asarray(event) == e))
    if len(rows) == 0:
        msg = f"no candidate with run {r} and event {e} in the data set; give RUN:EVENT of a preselected candidate"
        raise CandidateError(msg)
    listing = "; ".join(
        f"{r}:{e}:{j} ({describe(int(row)) if describe else f'row {int(row)}'})"
        for j, row in enumerate(rows)
    )
    if i is None and len(rows) > 1:
        msg = f"run {r} event {e} has {len(rows)} candidates; choose one with RUN:EVENT:INDEX: {listing}"
        raise CandidateError(msg)
    j = 0 if i is None else i
    if j >= len(rows):
        msg = f"run {r} event {e} has no candidate index {j}; its candidates are: {listing}"
        raise CandidateError(msg)
    return int(rows[j])
