"""Sequential cuts and the cut-flow table.

A :class:`CutSequence` applies named boolean expressions in order and
accumulates a :class:`CutFlow`: raw and weighted candidate counts after each
step, from which step and cumulative efficiencies with binomial intervals are
derived.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config.expressions import Expression
from ..exceptions import EmptySelectionError, ExpressionError
from ..stats.intervals import INTERVAL_LABELS, clopper_pearson, effective_counts, normal, wilson

__all__ = ["CutFlow", "CutSequence"]

_INTERVALS = {"clopper_pearson": clopper_pearson, "wilson": wilson, "normal": normal}


@dataclass
class CutFlow:
    """Counts after each selection step (step 0 is 'all candidates').

    ``weighted`` and ``sumw2`` are the sum of weights and of squared weights of
    the candidates surviving each step.
    """

    steps: list[str]
    raw: list[int] = field(default_factory=list)
    weighted: list[float] = field(default_factory=list)
    sumw2: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.steps)
        self.raw = self.raw or [0] * n
        self.weighted = self.weighted or [0.0] * n
        self.sumw2 = self.sumw2 or [0.0] * n

    def add(
        self,
        step: int,
        weights: np.ndarray,
        keep: np.ndarray | None = None,
        weights2: np.ndarray | None = None,
    ) -> None:
        """Record the weights of candidates surviving ``step`` (those in ``keep``, if given).

        ``weights2`` (the squared weights) may be passed to avoid recomputing it.
        """
        w2 = np.square(weights) if weights2 is None else weights2
        if keep is None:
            self.raw[step] += len(weights)
            self.weighted[step] += float(np.sum(weights))
            self.sumw2[step] += float(np.sum(w2))
        else:
            # masked sums: no copies of the surviving weights
            self.raw[step] += int(np.count_nonzero(keep))
            self.weighted[step] += float(np.sum(weights, where=keep))
            self.sumw2[step] += float(np.sum(w2, where=keep))

    def merge(self, other: CutFlow) -> CutFlow:
        """Sum of two cut-flows over the same steps (e.g. from two files)."""
        if other.steps != self.steps:
            msg = f"cannot merge cut-flows with different steps: {self.steps} vs {other.steps}"
            raise ValueError(msg)
        return CutFlow(
            list(self.steps),
            [a + b for a, b in zip(self.raw, other.raw, strict=True)],
            [a + b for a, b in zip(self.weighted, other.weighted, strict=True)],
            [a + b for a, b in zip(self.sumw2, other.sumw2, strict=True)],
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain counts (mergeable)."""
        return {
            "steps": self.steps,
            "raw": self.raw,
            "weighted": self.weighted,
            "sumw2": self.sumw2,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CutFlow:
        """Inverse of :meth:`to_dict`."""
        return cls(list(d["steps"]), list(d["raw"]), list(d["weighted"]), list(d["sumw2"]))

    def table(
        self, *, interval: str = "clopper_pearson", scale: float = 1.0
    ) -> list[dict[str, Any]]:
        """Rows with counts and step / cumulative efficiencies with intervals.

        Raw efficiencies use the exact binomial counts; weighted ones use the
        effective counts ``n_eff = (sum w)^2 / sum w^2``. ``scale`` multiplies
        the weighted counts (a sample normalisation).
        """
        ci = _INTERVALS[interval]
        rows = []
        for i, name in enumerate(self.steps):
            row: dict[str, Any] = {
                "step": name,
                "raw": self.raw[i],
                "weighted": self.weighted[i] * scale,
            }
            for kind, ref in (("step", max(i - 1, 0)), ("cumulative", 0)):
                n = self.raw[ref]
                k = self.raw[i]
                eff = k / n if n else float("nan")
                lo, hi = ci(np.array([k]), np.array([n])) if n else (np.array([np.nan]),) * 2
                row[f"{kind}_eff"] = eff
                row[f"{kind}_eff_low"] = float(np.asarray(lo).ravel()[0])
                row[f"{kind}_eff_high"] = float(np.asarray(hi).ravel()[0])
                wn, wk = self.weighted[ref], self.weighted[i]
                weff = wk / wn if wn else float("nan")
                row[f"{kind}_eff_weighted"] = weff
                if wn > 0 and self.sumw2[ref] > 0 and wk >= 0:
                    k_eff, n_eff = effective_counts(wk, wn, self.sumw2[i], self.sumw2[ref])
                    wlo, whi = ci(np.atleast_1d(k_eff), np.atleast_1d(n_eff))
                    row[f"{kind}_eff_weighted_low"] = float(np.asarray(wlo).ravel()[0])
                    row[f"{kind}_eff_weighted_high"] = float(np.asarray(whi).ravel()[0])
                else:
                    row[f"{kind}_eff_weighted_low"] = float("nan")
                    row[f"{kind}_eff_weighted_high"] = float("nan")
            rows.append(row)
        return rows

    def to_markdown(
        self, *, title: str = "", interval: str = "clopper_pearson", scale: float = 1.0
    ) -> str:
        """The cut-flow as a Markdown table."""
        rows = self.table(interval=interval, scale=scale)
        head = f"### {title}\n\n" if title else ""
        lines = [
            head + "| step | raw | weighted | step eff. [%] | cumulative eff. [%] |",
            "|---|---:|---:|---:|---:|",
        ]

        def fmt(r: Mapping[str, Any], kind: str) -> str:
            e, lo, hi = r[f"{kind}_eff"], r[f"{kind}_eff_low"], r[f"{kind}_eff_high"]
            if not np.isfinite(e):
                return "n/a"
            return f"{100 * e:.2f} +{100 * (hi - e):.2f} -{100 * (e - lo):.2f}"

        for r in rows:
            lines.append(
                f"| {r['step']} | {r['raw']} | {r['weighted']:.6g} | {fmt(r, 'step')} | {fmt(r, 'cumulative')} |"
            )
        lines.append("")
        lines.append(f"Intervals: {INTERVAL_LABELS.get(interval, interval)} on raw counts.")
        return "\n".join(lines) + "\n"


class CutSequence:
    """Named boolean expressions applied in order.

    Parameters
    ----------
    cuts
        ``(name, expression)`` pairs.
    aliases
        Alias table for the expressions.
    where
        Config location used in error messages.
    """

    def __init__(
        self,
        cuts: Sequence[tuple[str, str]],
        *,
        aliases: Mapping[str, str] | None = None,
        where: str = "cuts",
    ) -> None:
        self.names = [n for n, _ in cuts]
        self.expressions = [
            Expression(text, aliases=aliases, where=f"{where}[{i}] ({name})")
            for i, (name, text) in enumerate(cuts)
        ]

    @property
    def branches(self) -> frozenset[str]:
        """All branches the cuts read."""
        return frozenset[str]().union(*(e.branches for e in self.expressions))

    def new_cutflow(self) -> CutFlow:
        """An empty cut-flow with these steps."""
        return CutFlow(["all candidates", *self.names])

    def mask(
        self, arrays: Mapping[str, Any], weights: np.ndarray, cutflow: CutFlow | None = None
    ) -> np.ndarray:
        """Boolean mask of candidates passing every cut, updating ``cutflow``."""
        n = len(weights)
        keep = np.ones(n, dtype=bool)
        w2 = np.square(weights) if cutflow is not None else None
        if cutflow is not None:
            cutflow.add(0, weights, weights2=w2)
        for i, expr in enumerate(self.expressions, start=1):
            passed = np.asarray(_as_bool(expr.evaluate(arrays), expr, n))
            keep &= passed
            if cutflow is not None:
                cutflow.add(i, weights, keep, w2)
        return keep

    @staticmethod
    def check_not_empty(cutflow: CutFlow, *, sample: str, where: str) -> None:
        """Raise if a step removed every candidate (usually a wrong cut value or unit)."""
        if cutflow.raw[0] == 0:
            msg = f"sample {sample!r} has no candidates at all ({where})"
            raise EmptySelectionError(msg)
        for i in range(1, len(cutflow.steps)):
            if cutflow.raw[i] == 0:
                msg = (
                    f"cut {cutflow.steps[i]!r} selects no candidate of sample {sample!r} "
                    f"({cutflow.raw[i - 1]} candidates before it; {where}); check its value and units (MeV, mm, ps)"
                )
                raise EmptySelectionError(msg)


def _as_bool(value: Any, expr: Expression, n: int) -> np.ndarray:
    arr = np.asarray(value) if not hasattr(value, "ndim") or isinstance(value, np.ndarray) else None
    if arr is None:
        import awkward as ak

        if value.ndim != 1:
            msg = f"cut {expr.text!r} gives a collection per entry; reduce it with any(), all() or count()"
            raise ExpressionError(msg)
        arr = np.asarray(ak.to_numpy(ak.fill_none(value, False)))
    if arr.ndim == 0:
        arr = np.full(n, bool(arr))
    if arr.dtype != bool:
        msg = f"cut {expr.text!r} is not a boolean expression (it gives {arr.dtype} values); write a comparison"
        raise ExpressionError(msg)
    return arr
