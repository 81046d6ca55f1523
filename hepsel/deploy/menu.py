"""A trigger menu carried by a saved selection: each line's decision and the menu's, per event.

``selection/menu.json`` (written by the menu step) holds every line and its
threshold at each target rate. A line fires in an event when one of its
candidates passes its cut and scores at or above the threshold, and the
event survives the line's prescale (the hash of
:func:`hepsel.stats.menu.prescale_mask`, so the same events are kept as in
the study). The menu keeps an event when any line fires. Lines run on their
own tree of the same file (a one-track line on the track tree), so event
decisions are made per file and joined by run and event number.

Branches: ``pass_<line>_<rate>kHz`` and ``pass_menu_<rate>kHz``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ModelFileError

# the Selection a menu belongs to is passed in (typed Any: selection.py imports this module)
Selection = Any

__all__ = ["MENU_FILE", "EventDecisions", "Menu", "line_branch", "menu_branch"]

MENU_FILE = "menu.json"


def line_branch(line: str, rate: str) -> str:
    """Decision branch of one line at one target rate: ``pass_TrackMVA_660kHz``."""
    return f"pass_{line}_{rate}kHz"


def menu_branch(rate: str) -> str:
    """Decision branch of the whole menu at one target rate: ``pass_menu_660kHz``."""
    return f"pass_menu_{rate}kHz"


@dataclass
class EventDecisions:
    """Per event (sorted unique run, event keys): every decision branch."""

    run: np.ndarray
    event: np.ndarray
    passes: dict[str, np.ndarray]

    def lookup(self, run: np.ndarray, event: np.ndarray) -> dict[str, np.ndarray]:
        """The decisions of the event of each entry (False for an event without a candidate of any line)."""
        from ..stats.trigger import match_events

        row = match_events(run, event, self.run, self.event)
        found = row >= 0
        return {
            b: found & v[np.maximum(row, 0)] if len(v) else np.zeros(len(row), bool)
            for b, v in self.passes.items()
        }


def _finite_or_inf(threshold: float | None) -> float:
    """A stored threshold; ``None`` (a line switched off at that rate) never passes."""
    return np.inf if threshold is None else float(threshold)


class Menu:
    """The lines of a menu and their thresholds per target rate (see the module notes)."""

    def __init__(self, meta: Mapping[str, Any], directory: Path) -> None:
        self.lines: dict[str, dict[str, Any]] = {n: dict(v) for n, v in meta["lines"].items()}
        self.thresholds: dict[str, dict[str, float | None]] = {
            r: dict(t) for r, t in meta["thresholds"].items()
        }
        self.aliases: dict[str, str] = dict(meta.get("aliases", {}))
        self.folds = int(meta.get("folds", 1))
        self.prescale_seed = int(meta.get("prescale_seed", 0))
        self.directory = directory
        self._models: dict[str, list[Any]] = {}

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Menu | None:
        """The menu of a saved selection, or ``None`` when it has none."""
        from ..io.storage import read_json

        f = Path(directory) / MENU_FILE
        if not f.is_file():
            return None
        meta = read_json(f)
        try:
            return cls(meta, Path(directory))
        except (KeyError, TypeError, ValueError) as err:
            msg = f"{f} is not a hepsel menu ({type(err).__name__}: {err})"
            raise ModelFileError(msg) from None

    @property
    def models(self) -> set[str]:
        """The selection's models the menu's model lines use."""
        return {spec["model"] for spec in self.lines.values() if spec["kind"] == "model"}

    def describe(self) -> dict[str, Any]:
        """The menu for an export's description: lines, thresholds per rate and the rules."""
        return {
            "lines": self.lines,
            "thresholds": self.thresholds,
            "unit": "kHz",
            "rule": (
                "a line fires in an event when one of its candidates (on its tree; a model line: the preselected "
                "candidates) passes its cut and its score >= the line's threshold at that rate, and the event "
                "survives its prescale; the menu keeps the event when any line fires"
            ),
            "scores": (
                "model line: the model's raw output (decision_function: log-odds for a BDT, "
                "probability = 1 / (1 + exp(-raw))); score line: the expression; train line: the raw output of "
                "the line's own fold model (folds by event number)"
            ),
            "prescale_seed": self.prescale_seed,
            "folds": self.folds,
        }

    @property
    def branches(self) -> list[str]:
        """Every decision branch, lines first, then the menu, per rate."""
        out = [line_branch(n, r) for r in self.thresholds for n in self.lines]
        return out + [menu_branch(r) for r in self.thresholds]

    def tree_of(self, line: str, selection: Selection) -> str:
        """The tree a line runs on (a model line: the selection's)."""
        return self.lines[line].get("tree") or selection.tree

    def _expr(self, text: str, where: str) -> Any:
        from ..config.expressions import Expression

        return Expression(text, aliases=self.aliases, where=where)

    def _train_models(self, line: str) -> list[Any]:
        if line not in self._models:
            from ..models.bdt import BDTClassifier

            self._models[line] = [
                BDTClassifier.load(self.directory / "menu" / line / f"fold{k}")
                for k in range(self.folds)
            ]
        return self._models[line]

    def _needed(self, line: str, selection: Selection) -> set[str]:
        spec = self.lines[line]
        texts = [spec.get("cut"), spec.get("score"), *(spec.get("features") or [])]
        b: set[str] = set()
        for t in texts:
            if t:
                b |= set(self._expr(t, f"menu line {line}").branches)
        if spec["kind"] == "model" or spec.get("preselection"):
            b |= set(selection.branches)
        return b

    def line_scores(
        self, selection: Selection, arrays: Any, line: str, event: np.ndarray
    ) -> np.ndarray:
        """Score of each entry for ``line`` (``-inf`` where its cut or the preselection fails)."""
        spec = self.lines[line]
        n = selection._len(arrays)
        keep = np.ones(n, dtype=bool)
        if spec["kind"] == "model" or spec.get("preselection"):
            keep &= selection.preselect(arrays)
        if spec.get("cut"):
            keep &= np.asarray(
                self._expr(spec["cut"], f"menu line {line}: cut").evaluate(arrays), bool
            )
        score = np.full(n, -np.inf)
        if not keep.any():
            return score
        if spec["kind"] == "model":
            raw = selection._outputs(arrays, selection._model_name(spec["model"]), keep, (True,))[0]
            score[keep] = raw[keep]
        elif spec["kind"] == "score":
            score[keep] = np.asarray(
                self._expr(spec["score"], f"menu line {line}: score").evaluate(arrays), float
            )[keep]
        else:
            X = np.column_stack(
                [
                    np.asarray(self._expr(t, f"menu line {line}: feature").evaluate(arrays), float)[
                        keep
                    ]
                    for t in spec["features"]
                ]
            )
            models = self._train_models(line)
            fold = event[keep] % self.folds
            out = np.empty(int(keep.sum()))
            for k, m in enumerate(models):
                sel = fold == k
                if sel.any():
                    out[sel] = m.decision_function(X[sel])
            score[keep] = out
        return np.where(np.isfinite(score), score, -np.inf)

    def event_decisions(
        self,
        selection: Selection,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        step_size: int | str = "100 MB",
    ) -> EventDecisions:
        """Every line's and the menu's decision per event of ``source``, each line on its tree.

        ``source`` is a ROOT file (every tree a line needs is read from it)
        or arrays of the selection's tree (only when every line runs there).
        """
        from ..stats.menu import prescale_mask
        from ..stats.trigger import event_max, group_events

        ev_branch = selection.fold_branch or "eventNumber"
        names = list(self.lines)
        runs, events, bests = [], [], []
        for j, line in enumerate(names):
            for arrays in self._chunks(selection, source, line, ev_branch, step_size):
                evt = np.asarray(arrays[ev_branch], np.int64)
                s = self.line_scores(selection, arrays, line, evt)
                ok = np.isfinite(s)
                runs.append(np.asarray(arrays["runNumber"], np.int64)[ok])
                events.append(evt[ok])
                col = np.full((int(ok.sum()), len(names)), -np.inf)
                col[:, j] = s[ok]
                bests.append(col)
        run = np.concatenate(runs) if runs else np.zeros(0, np.int64)
        evt = np.concatenate(events) if events else np.zeros(0, np.int64)
        best = np.concatenate(bests) if bests else np.zeros((0, len(names)))
        if len(run):
            order, starts = group_events(run, evt)
            best = np.column_stack(
                [event_max(best[:, j], order, starts) for j in range(len(names))]
            )
            run, evt = run[order][starts], evt[order][starts]
        prescales = [float(self.lines[n].get("prescale", 1.0)) for n in names]
        keep = prescale_mask(evt, prescales, self.prescale_seed)
        passes: dict[str, np.ndarray] = {}
        for rate, thr in self.thresholds.items():
            t = np.array([_finite_or_inf(thr.get(n)) for n in names])
            fired = np.asarray(keep & (best >= t), dtype=bool)
            for j, n in enumerate(names):
                passes[line_branch(n, rate)] = fired[:, j]
            passes[menu_branch(rate)] = np.asarray(fired.any(axis=1), dtype=bool)
        return EventDecisions(run, evt, passes)

    def _chunks(
        self, selection: Selection, source: Any, line: str, ev_branch: str, step_size: int | str
    ) -> Any:
        from ..io.reading import check_branches, iterate, open_tree

        tree = self.tree_of(line, selection)
        if not isinstance(source, (str, os.PathLike)):
            if tree != selection.tree:
                msg = (
                    f"menu line {line!r} runs on tree {tree!r}: give the ROOT file (not arrays of "
                    f"{selection.tree!r}) for the menu's decisions"
                )
                raise ValueError(msg)
            yield source
            return
        needed = self._needed(line, selection) | {"runNumber", ev_branch}
        ttree = open_tree(source, tree)
        check_branches(
            ttree, {b: [f"menu line {line}"] for b in needed}, path=str(source), tree=tree
        )
        for arrays, _ in iterate(source, tree, sorted(needed), step_size=step_size):
            yield arrays
