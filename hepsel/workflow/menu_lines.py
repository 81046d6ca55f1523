"""The menu_line step: one menu line's best score per event, for the bandwidth division.

Each line of ``menu.lines`` becomes a table ``menu/lines/<line>.parquet``
with one row per event in which the line has a candidate:

- minimum-bias events (``signal == 0``): the best score of any of the
  line's candidates in the event;
- signal events (``signal == 1``): the best score of the line's candidates
  made from the signal decay's own tracks (the sample's ``truth``
  expression evaluated on the line's tree): the TOS score.

A ``model`` line takes the study's out-of-fold raw scores (``scores.root``)
of the preselected candidates. A ``score`` line evaluates its expression on
the samples' files (``tree`` and ``cut`` as configured). A ``train`` line
trains a classifier on its tree with the study's k folds (fold =
event number mod k, as for the study's models), signal = the truth-matched
candidates of the signal sample, background = the minimum-bias candidates,
after the line's ``cut``; each candidate is scored by the fold model that
did not train on its event, and the fold models are written beside the
table (``menu/lines/<line>/fold<k>``) for :class:`~hepsel.Selection`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig, MenuLineConfig
from ..exceptions import ConfigError, HepselError
from .layout import Layout

__all__ = ["LineCandidates", "line_candidates", "menu_line", "read_line_table"]


@dataclass
class LineCandidates:
    """The candidates of a line in one sample, after its ``cut`` (flat arrays of one length)."""

    run: np.ndarray
    event: np.ndarray
    weight: np.ndarray
    truth: np.ndarray
    score: np.ndarray | None  # score lines
    features: np.ndarray | None  # train lines: (n, n_features)


def _line(cfg: AnalysisConfig, name: str) -> MenuLineConfig:
    if cfg.menu is None or name not in cfg.menu.lines:
        lines = sorted(cfg.menu.lines) if cfg.menu else []
        msg = f"{cfg.source}: menu.lines has no line {name!r} (lines: {lines})"
        raise ConfigError(msg)
    return cfg.menu.lines[name]


def _chunks(
    cfg: AnalysisConfig, sample: str, tree: str, needed: Mapping[str, list[str]]
) -> Iterator[Any]:
    from ..io.reading import check_branches, iterate, open_tree

    for path in cfg.sample_files(sample):
        check_branches(open_tree(str(path), tree), needed, path=str(path), tree=tree)
        for arrays, _ in iterate(path, tree, sorted(needed), step_size=cfg.reading.step_size):
            yield arrays


def line_candidates(
    cfg: AnalysisConfig, name: str, sample: str, *, normalisation: float = 1.0
) -> LineCandidates:
    """Read the candidates of score or train line ``name`` from the files of ``sample``.

    The tree is the line's ``tree`` (default: the sample's); the line's
    ``cut`` (and the study's preselection with ``preselection: true``)
    select the candidates; weights are the sample's ``weight`` expression
    times ``normalisation``; ``truth`` is the sample's truth expression
    (all True when it has none).
    """
    from ..config.expressions import Expression

    line = _line(cfg, name)
    scfg = cfg.samples[sample]
    tree = line.tree or scfg.tree
    where = f"menu.lines.{name}"
    ids = cfg.event_ids(sample)
    if ids.event_branch is None or ids.run_branch is None:
        msg = f"{where}: a menu joins lines by run and event number; sample {sample!r} needs both branches"
        raise ConfigError(msg)
    exprs: dict[str, Expression] = {}
    if line.score is not None:
        exprs["score"] = Expression(line.score, aliases=cfg.aliases, where=f"{where}.score")
    if line.train is not None:
        for i, text in enumerate(line.train.features):
            exprs[f"f{i}"] = Expression(text, aliases=cfg.aliases, where=f"{where}.train.features")
    cuts = [Expression(line.cut, aliases=cfg.aliases, where=f"{where}.cut")] if line.cut else []
    if line.preselection:
        cuts += [
            Expression(p.cut, aliases=cfg.aliases, where=f"preselection ({p.name})")
            for p in cfg.preselection
        ]
    weight = (
        Expression(scfg.weight, aliases=cfg.aliases, where=f"samples.{sample}.weight")
        if scfg.weight
        else None
    )
    truth = (
        Expression(scfg.truth, aliases=cfg.aliases, where=f"samples.{sample}.truth")
        if scfg.truth
        else None
    )
    every = [*exprs.values(), *cuts, *(e for e in (weight, truth) if e is not None)]
    needed: dict[str, list[str]] = {
        ids.run_branch: ["run numbers"],
        ids.event_branch: ["event numbers"],
    }
    for e in every:
        for b in e.branches:
            needed.setdefault(b, []).append(e.where or where)
    parts: dict[str, list[np.ndarray]] = {}
    for arrays in _chunks(cfg, sample, tree, needed):
        keep = np.ones(len(arrays[ids.event_branch]), dtype=bool)
        for c in cuts:
            keep &= np.asarray(c.evaluate(arrays), dtype=bool)
        cols = {
            "run": np.asarray(arrays[ids.run_branch])[keep],
            "event": np.asarray(arrays[ids.event_branch])[keep],
            "weight": (
                np.asarray(weight.evaluate(arrays), dtype=np.float64)[keep]
                if weight
                else np.ones(int(keep.sum()))
            ),
            "truth": (
                np.asarray(truth.evaluate(arrays), dtype=bool)[keep]
                if truth
                else np.ones(int(keep.sum()), bool)
            ),
        }
        for k, e in exprs.items():
            cols[k] = np.asarray(e.evaluate(arrays), dtype=np.float64)[keep]
        for k, v in cols.items():
            parts.setdefault(k, []).append(v)
    if not parts:
        msg = f"{where}: sample {sample!r} has no entries in tree {tree!r}"
        raise ConfigError(msg)
    col = {k: np.concatenate(v) for k, v in parts.items()}
    feats = [col[f"f{i}"] for i in range(len(line.train.features))] if line.train else []
    return LineCandidates(
        run=col["run"].astype(np.int64),
        event=col["event"].astype(np.int64),
        weight=col["weight"] * normalisation,
        truth=col["truth"],
        score=col.get("score"),
        features=np.column_stack(feats) if feats else None,
    )


def _event_best(
    run: np.ndarray, event: np.ndarray, score: np.ndarray, weight: np.ndarray
) -> dict[str, np.ndarray]:
    """One row per (run, event): the best score and the event's weight (that of its first candidate)."""
    from ..stats.trigger import event_max, group_events

    if len(run) == 0:
        return {
            k: np.zeros(0, dt)
            for k, dt in (
                ("runNumber", np.int64),
                ("eventNumber", np.int64),
                ("score", np.float64),
                ("weight", np.float64),
            )
        }
    order, starts = group_events(run, event)
    return {
        "runNumber": np.asarray(run)[order][starts].astype(np.int64),
        "eventNumber": np.asarray(event)[order][starts].astype(np.int64),
        "score": event_max(np.asarray(score, dtype=np.float64), order, starts),
        "weight": np.asarray(weight, dtype=np.float64)[order][starts],
    }


def _table(signal: dict[str, np.ndarray], minbias: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "signal": np.concatenate(
            [np.ones(len(signal["score"]), np.int8), np.zeros(len(minbias["score"]), np.int8)]
        ),
        **{
            k: np.concatenate([signal[k], minbias[k]])
            for k in ("runNumber", "eventNumber", "score", "weight")
        },
    }


def _model_line(cfg: AnalysisConfig, model: str) -> dict[str, np.ndarray]:
    """A study model's raw out-of-fold scores, best per event (TOS for signal)."""
    import uproot

    lay = Layout.of(cfg)
    with uproot.open(lay.scores) as f:
        t = f["scores"]
        if f"raw_{model}" not in t.keys():
            msg = f"{lay.scores} has no scores of model {model!r}; rerun the evaluate step"
            raise HepselError(msg)
        c = t.arrays(
            ["runNumber", "eventNumber", "weight", "truth", "sample", f"raw_{model}"], library="np"
        )
    from ..prep.dataset import load_dataset

    samples = load_dataset(lay.dataset, cfg, columns=["label"]).samples
    sig = c["sample"] == samples[cfg.signal_sample]["index"]
    sig &= c["truth"].astype(bool)
    mb = c["sample"] == samples[cfg.minbias_sample]["index"]
    score = c[f"raw_{model}"].astype(np.float64)
    return _table(
        _event_best(c["runNumber"][sig], c["eventNumber"][sig], score[sig], c["weight"][sig]),
        _event_best(c["runNumber"][mb], c["eventNumber"][mb], score[mb], c["weight"][mb]),
    )


def _train_line(
    cfg: AnalysisConfig, name: str, sig: LineCandidates, mb: LineCandidates, out_dir: Path
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """k-fold train the line's classifier; the out-of-fold raw scores of both samples."""
    from ..models.bdt import BDTClassifier

    line = _line(cfg, name)
    assert line.train is not None and sig.features is not None and mb.features is not None
    k = cfg.folds.k
    train_sig = sig.truth
    X = np.concatenate([sig.features[train_sig], mb.features])
    y = np.concatenate([np.ones(int(train_sig.sum())), np.zeros(len(mb.weight))])
    w = np.concatenate([sig.weight[train_sig], mb.weight])
    fold = np.concatenate([sig.event[train_sig], mb.event]) % k
    if (w < 0).any():
        msg = f"menu.lines.{name}.train: negative weights cannot train a BDT line"
        raise ConfigError(msg)
    # each class carries half of the total weight, as the study's models
    w = w / np.where(y == 1, w[y == 1].sum(), w[y == 0].sum())
    sig_score = np.full(len(sig.weight), np.nan)
    mb_score = np.full(len(mb.weight), np.nan)
    info = []
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"n_jobs": 1, **line.train.params, "random_state": cfg.seed}
    for j in range(k):
        t0 = time.perf_counter()
        tr = fold != j
        if not (y[tr] == 1).any() or not (y[tr] == 0).any():
            msg = f"menu.lines.{name}: fold {j}'s training events hold no signal or no background candidate after the cut"
            raise ConfigError(msg)
        model = BDTClassifier(**params).fit(X[tr], y[tr], w[tr] * len(w[tr]))
        model.save(out_dir / f"fold{j}")
        s_in = sig.event % k == j
        m_in = mb.event % k == j
        if s_in.any():
            sig_score[s_in] = model.decision_function(sig.features[s_in])
        if m_in.any():
            mb_score[m_in] = model.decision_function(mb.features[m_in])
        info.append(
            {
                "fold": j,
                "n_train": int(tr.sum()),
                "best_iteration": model.best_iteration_,
                "seconds": time.perf_counter() - t0,
            }
        )
    return sig_score, mb_score, info


def menu_line(cfg: AnalysisConfig, name: str) -> Path:
    """Write ``menu/lines/<name>.parquet`` (and a train line's fold models); the table's path."""
    from ..io.storage import write_json, write_table
    from ..prep.dataset import load_dataset

    line = _line(cfg, name)
    lay = Layout.of(cfg)
    out = lay.menu_line(name)
    meta: dict[str, Any] = {"line": name, "kind": line.kind}
    if line.model is not None:
        table = _model_line(cfg, line.model)
    else:
        samples = load_dataset(lay.dataset, cfg, columns=["label"]).samples
        norm = {
            s: float(samples[s]["normalisation"]) for s in (cfg.signal_sample, cfg.minbias_sample)
        }
        sig = line_candidates(cfg, name, cfg.signal_sample, normalisation=norm[cfg.signal_sample])
        mb = line_candidates(cfg, name, cfg.minbias_sample, normalisation=norm[cfg.minbias_sample])
        if line.train is not None:
            sig_score, mb_score, meta["folds"] = _train_line(
                cfg, name, sig, mb, out.with_suffix("")
            )
        else:
            assert sig.score is not None and mb.score is not None
            sig_score, mb_score = sig.score, mb.score
        bad = ~np.isfinite(sig_score[sig.truth])
        if bad.any() or not np.isfinite(mb_score).all():
            msg = f"menu.lines.{name}: the line's score is NaN or infinite for some candidates; give a finite score (or cut them away)"
            raise ConfigError(msg)
        t = sig.truth
        table = _table(
            _event_best(sig.run[t], sig.event[t], sig_score[t], sig.weight[t]),
            _event_best(mb.run, mb.event, mb_score, mb.weight),
        )
        meta["n_candidates"] = {"signal_tos": int(t.sum()), "minbias": len(mb.weight)}
    meta["n_events"] = {
        "signal_tos": int(table["signal"].sum()),
        "minbias": int((table["signal"] == 0).sum()),
    }
    write_table(out, table)
    write_json(out.with_suffix(".json"), meta)
    return out


def read_line_table(path: str | Path) -> Mapping[str, np.ndarray]:
    """A table written by :func:`menu_line`."""
    from ..io.storage import read_table

    return read_table(path)
