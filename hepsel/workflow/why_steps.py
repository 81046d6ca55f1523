"""The why steps: local explanations of single candidates, and global rankings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config.schema import AnalysisConfig
from ..exceptions import ConfigError
from .labels import feature_labels, working_point_thresholds, wp_label
from .layout import Layout

__all__ = [
    "why",
    "why_candidate",
]


@dataclass
class _WhyContext:
    """What explaining candidates of one model needs: data, scores, fold models and their training samples."""

    ds: Any
    kind: str
    folds: list[Any]
    references: list[np.ndarray]
    margin: np.ndarray
    labels: dict[str, str]
    X: Any = None  # the features of the rows explained (_FeatureRows), read on demand


#: Columns a "why" job reads besides the features (read only for the candidates it explains).
_WHY_COLUMNS = ("runNumber", "eventNumber", "label", "sample", "fold", "truth")


class _FeatureRows:
    """The features of chosen rows of a data set, read on demand and kept (a few thousand rows)."""

    def __init__(self, path: Path, cfg: AnalysisConfig) -> None:
        self.path, self.cfg = path, cfg
        self.rows = np.zeros(0, dtype=np.int64)
        self.X = np.zeros((0, len(cfg.feature_names)))

    def load(self, rows: Any) -> None:
        """Read the rows not held yet (one pass over the feature columns)."""
        from ..prep.dataset import feature_matrix

        new = np.setdiff1d(np.asarray(rows, dtype=np.int64), self.rows)
        if new.size:
            rows_all = np.concatenate([self.rows, new])
            X_all = np.concatenate([self.X, feature_matrix(self.path, self.cfg, rows=new)])
            order = np.argsort(rows_all, kind="stable")
            self.rows, self.X = rows_all[order], X_all[order]

    def __getitem__(self, rows: Any) -> np.ndarray:
        """The features of a row (1-d) or of an array of rows (2-d), read if needed."""
        self.load(np.atleast_1d(rows))
        return self.X[np.searchsorted(self.rows, rows)]


def _held_out_margin(
    path: Path, cfg: AnalysisConfig, folds: Sequence[Any], fold: np.ndarray
) -> np.ndarray:
    """Every candidate's raw output from its held-out fold model, streamed over the data set's row groups."""
    import pyarrow.parquet as pq

    margin = np.full(len(fold), np.nan)
    start = 0
    pf = pq.ParquetFile(path)
    # row group by row group: iter_batches keeps the whole file's buffers allocated
    for i in range(pf.num_row_groups):
        table = pf.read_row_group(i, columns=cfg.feature_names)
        X = np.column_stack([table.column(f).to_numpy() for f in cfg.feature_names]).astype(
            np.float64, copy=False
        )
        part = fold[start : start + len(X)]
        for k, clf in enumerate(folds):
            m = part == k
            if m.any():
                margin[start + np.flatnonzero(m)] = clf.decision_function(X[m])
        start += len(X)
    return margin


def _stored_margin(lay: Layout, model: str, ds: Any) -> np.ndarray | None:
    """The raw outputs the evaluate step wrote to ``scores.root`` for these candidates, if it did.

    The same fold models score the same candidates there, so reading them
    saves scoring the whole data set again; None when the file is missing,
    lacks the model, or holds other candidates (then they are computed). The
    caller checks a sample of them against the fold models it holds.
    """
    import uproot

    if not lay.scores.is_file():
        return None
    with uproot.open(lay.scores) as f:
        tree = f.get("scores") if "scores" in f else None
        if tree is None or f"raw_{model}" not in tree.keys() or tree.num_entries != len(ds):
            return None
        stored = tree.arrays([f"raw_{model}", "runNumber", "eventNumber"], library="np")
    c = ds.columns
    if not (
        np.array_equal(stored["runNumber"], c["runNumber"])
        and np.array_equal(stored["eventNumber"], c["eventNumber"])
    ):
        return None
    return np.asarray(stored[f"raw_{model}"], dtype=np.float64)


def _why_context(cfg: AnalysisConfig, model: str) -> _WhyContext:
    from ..models import load_classifier
    from ..prep.dataset import load_dataset
    from .cross_scoring import model_kind

    lay = Layout.of(cfg)
    ds = load_dataset(lay.dataset, cfg, columns=_WHY_COLUMNS)
    kind = model_kind(cfg, model)
    folds = [load_classifier(kind, lay.model(model, k)) for k in range(cfg.folds.k)]
    fold, truth = ds.fold, ds.truth
    rng = np.random.default_rng(cfg.seed)
    reference_rows = []
    for k in range(len(folds)):
        train = (fold != k) & truth
        if kind == "autoencoder":
            train &= ds.y == 0  # what the autoencoder learnt: background candidates
        train = np.flatnonzero(train)
        n = min(cfg.explain.reference_events, len(train))
        reference_rows.append(np.sort(rng.choice(train, size=n, replace=False)))
    check = np.sort(rng.choice(len(fold), size=min(64, len(fold)), replace=False))
    X = _FeatureRows(lay.dataset, cfg)
    X.load(np.concatenate([*reference_rows, check]))
    references = [X[r] for r in reference_rows]
    margin = _stored_margin(lay, model, ds)
    if margin is not None:
        # a sample scored here again: models trained since scores.root was written are caught
        now = np.array([folds[int(fold[r])].decision_function(X[[r]])[0] for r in check])
        if not np.allclose(now, margin[check], rtol=1e-9, atol=1e-9):
            margin = None
    if margin is None:
        margin = _held_out_margin(lay.dataset, cfg, folds, fold)
    labels = {f.name: f.label for f in cfg.features if f.label}
    return _WhyContext(ds, kind, folds, references, margin, labels, X)


def _explain_row(cfg: AnalysisConfig, ctx: _WhyContext, row: int) -> Any:
    from ..explain.local import explain_candidate

    e = cfg.explain
    return explain_candidate(
        ctx.folds,
        ctx.X[row],
        int(ctx.ds.fold[row]),
        ctx.references,
        cfg.feature_names,
        lime_seeds=[cfg.seed + i for i in range(e.lime_seeds)],
        lime_samples=e.lime_samples,
        random_state=cfg.seed,
        mlp_samples=e.mlp_samples,
    )


def _candidate_id(ds: Any, row: int) -> dict[str, Any]:
    """Run, event, index among the event's candidates (all samples), and sample of a data-set row."""
    c = ds.columns
    run, evt = int(c["runNumber"][row]), int(c["eventNumber"][row])
    same = np.flatnonzero((c["runNumber"] == run) & (c["eventNumber"] == evt))
    index = int(np.searchsorted(same, row))
    names = {int(v["index"]): n for n, v in ds.samples.items()}
    return {
        "run": run,
        "event": evt,
        "index": index,
        "candidate": f"{run}:{evt}:{index}",
        "sample": names.get(int(c["sample"][row]), str(int(c["sample"][row]))),
        "row": int(row),
        "label": int(ds.y[row]),
        "truth": bool(ds.truth[row]),
    }


def _why_record(
    cfg: AnalysisConfig,
    ctx: _WhyContext,
    row: int,
    expl: Any,
    role: str,
    threshold: float | None,
    threshold_raw: float | None = None,
    *,
    labels: bool = True,
) -> dict[str, Any]:
    """One explained candidate; it passes when its raw output (``margin``) reaches ``threshold_raw``.

    Without ``labels`` its contributions name features only (labels are plot text).
    """
    from scipy.special import expit

    rec = _candidate_id(ctx.ds, row)
    score = float(expit(expl.output))
    rec.update(
        {
            "role": role,
            "fold": expl.fold,
            "margin": expl.output,
            "score": score,
            "passes": None if threshold_raw is None else bool(expl.output >= threshold_raw),
            "threshold": threshold,
            "threshold_raw": threshold_raw,
            "shap_method": expl.shap_method,
            "shap_base": expl.shap_base,
            "shap_sum": float(expl.shap_base + np.sum(expl.shap)),
            "lime_intercept": expl.lime_intercept,
            "lime_local_pred": expl.lime_local_pred,
            "lime_r2": expl.lime_r2,
            "lime_r2_mean": float(np.mean(expl.lime_r2)),
            "poor_lime_fit": bool(np.mean(expl.lime_r2) < cfg.explain.min_lime_r2),
            "sign_flips": expl.sign_flips,
            "contributions": [
                {
                    **{k: v for k, v in r.items() if labels or k != "label"},
                    "lime_weight_std": float(
                        expl.lime_weight_std[cfg.feature_names.index(r["feature"])]
                    ),
                    "lime_offset": float(expl.lime_offset[cfg.feature_names.index(r["feature"])]),
                    "shap_fold_std": float(
                        expl.shap_fold_std[cfg.feature_names.index(r["feature"])]
                    ),
                }
                for r in expl.rows(ctx.labels)
            ],
            "shap_folds": expl.shap_folds.tolist(),
        }
    )
    return rec


def _why_plot(
    labels: Mapping[str, str],
    expl: Any,
    rec: Mapping[str, Any],
    model: str,
    path: Path,
    min_r2: float | None = None,
) -> list[Path]:
    from ..report import explain_plots, plotting

    verdict = "" if rec["passes"] is None else (" passes" if rec["passes"] else " fails")
    score = float(rec["score"])
    # a saturated score keeps its significant digits (not "0.0000" or "1.0000")
    fmt = explain_plots.format_sig
    score_text = (
        f"{score:.4f}"
        if 1e-3 <= score <= 0.999
        else fmt(score)
        if score < 1e-3 or score == 1
        else f"1 {explain_plots.MINUS} {fmt(1 - score)}"
    )
    title = (
        f"{model}: candidate {rec['candidate']} ({rec['sample']}{', truth-matched' if rec['truth'] and rec['label'] else ''}), "
        f"fold {rec['fold']} model, score {score_text}{verdict}"
    )
    with plotting.lhcb_style():
        fig = explain_plots.why_figure(expl, labels=labels, title=title, min_r2=min_r2)
        return plotting.save(fig, path)


def _first_working_point(
    cfg: AnalysisConfig, model: str
) -> tuple[str | None, float | None, float | None]:
    """Label, probability cut and raw-output cut of the model's first reachable working point."""
    from ..io.storage import read_json

    lay = Layout.of(cfg)
    if not lay.summary.exists():
        return None, None, None
    perf = read_json(lay.summary).get(model, {})
    thr = working_point_thresholds(perf)
    thr_raw = working_point_thresholds(perf, raw=True)
    if not thr_raw:
        return None, None, None
    key = next(iter(thr_raw))
    return wp_label(key, perf), thr.get(key), thr_raw[key]


def why_candidate(cfg: AnalysisConfig, model: str, candidate: str) -> dict[str, Any]:
    """Explain one candidate ``RUN:EVENT[:INDEX]`` by the fold model of ``model`` that scored it.

    Writes ``explain/candidates/<model>_<run>_<event>_<index>.json`` and the
    figure ``plots/why/<model>_<run>_<event>_<index>.png``; returns the record
    (``contributions``: feature, label, value, SHAP, LIME weight and
    contribution, by decreasing |SHAP|; ``json`` and ``png``: the paths).

    Raises
    ------
    CandidateError
        If the string is malformed, or names no candidate or several.
    ConfigError
        If ``model`` is not a model of the config.
    """
    from ..explain.local import find_candidate, parse_candidate
    from ..io.storage import write_json

    wanted = parse_candidate(candidate)
    if model not in cfg.models:
        msg = f"model {model!r} is not in the config; models: {', '.join(cfg.models)}"
        raise ConfigError(msg)
    lay = Layout.of(cfg)
    ctx = _why_context(cfg, model)
    c = ctx.ds.columns

    def describe(row: int) -> str:
        i = _candidate_id(ctx.ds, row)
        return f"sample {i['sample']}, {'truth-matched, ' if i['truth'] and i['label'] else ''}score {float(1 / (1 + np.exp(-ctx.margin[row]))):.4f}"

    row = find_candidate(c["runNumber"], c["eventNumber"], wanted, describe)
    wp, thr, thr_raw = _first_working_point(cfg, model)
    expl = _explain_row(cfg, ctx, row)
    rec = _why_record(cfg, ctx, row, expl, "asked", thr, thr_raw)
    rec["working_point"] = wp
    tag = rec["candidate"].replace(":", "_").replace("-", "m")
    rec["png"] = str(
        _why_plot(
            ctx.labels,
            expl,
            rec,
            model,
            _why_figure_stem(lay, model, rec["candidate"]),
            cfg.explain.min_lime_r2,
        )[-1]
    )
    rec["json"] = str(write_json(lay.why_candidate(model, tag), rec))
    return rec


def _pick_candidates(
    cfg: AnalysisConfig, ctx: _WhyContext, threshold: float | None
) -> list[tuple[str, int]]:
    """(role, row): the highest-scoring passing background, the lowest-scoring failing signal, random ones.

    ``threshold`` is a cut on the raw output (``ctx.margin``), which ranks
    candidates whose probabilities have saturated at 1.
    """
    n = cfg.explain.candidates
    ds = ctx.ds
    score = ctx.margin
    picked: list[tuple[str, int]] = []
    if threshold is not None:
        bkg = np.flatnonzero((ds.y == 0) & (score >= threshold))
        picked += [
            ("background passing", int(r))
            for r in bkg[np.argsort(-score[bkg], kind="stable")][: n.background]
        ]
        sig = np.flatnonzero((ds.y == 1) & ds.truth & (score < threshold))
        picked += [
            ("signal failing", int(r))
            for r in sig[np.argsort(score[sig], kind="stable")][: n.signal]
        ]
    rng = np.random.default_rng(cfg.seed + 1)
    taken = {r for _, r in picked}
    pool = np.setdiff1d(np.arange(len(ds)), np.fromiter(taken, dtype=np.int64, count=len(taken)))
    picked += [
        ("random", int(r)) for r in rng.choice(pool, size=min(n.random, len(pool)), replace=False)
    ]
    return picked


def why(cfg: AnalysisConfig, model: str) -> dict[str, Any]:
    """Why these candidates? Local explanations, global rankings and trust figures of ``model``.

    At the model's first working point (first target rate, or the first
    offline one): the highest-scoring background candidates that pass, the
    lowest-scoring truth-matched signal candidates that fail, and random ones,
    each explained by SHAP and LIME (figures under ``plots/why/``). Global
    rankings by mean |SHAP|, mean |LIME weight|, permutation importance on the
    test folds and xgboost's gain, with Kendall's tau between them. Written to
    ``explain/<model>.json``.
    """
    from ..explain.local import lime_attribution, shap_attribution
    from ..explain.rankings import kendall_table, permutation_importance, xgboost_gain
    from ..io.storage import write_json

    lay = Layout.of(cfg)
    ctx = _why_context(cfg, model)
    ds, e = ctx.ds, cfg.explain
    wp, thr, thr_raw = _first_working_point(cfg, model)
    picked = _pick_candidates(cfg, ctx, thr_raw)
    # global rankings on one sample of truth-matched candidates, each by its own fold model
    rng = np.random.default_rng(cfg.seed + 2)
    pool = np.flatnonzero(ds.truth)
    sample = np.sort(rng.choice(pool, size=min(e.ranking_events, len(pool)), replace=False))
    test = pool
    if len(test) > e.permutation_events:
        test = np.sort(rng.choice(test, size=e.permutation_events, replace=False))
    # the features of every candidate used below, in one pass over the data set
    ctx.X.load(np.concatenate([[r for _, r in picked], sample, test]))
    records = []
    for role, row in picked:
        expl = _explain_row(cfg, ctx, row)
        rec = _why_record(cfg, ctx, row, expl, role, thr, thr_raw, labels=False)
        # drawn by why_figures (with the feature labels) from this record
        stem = _why_figure_stem(lay, model, rec["candidate"])
        rec["png"] = stem.with_name(stem.name + ".png").relative_to(lay.root).as_posix()
        records.append(rec)

    X, fold = ctx.X, ds.fold
    shap_abs, lime_abs, lime_r2 = [], [], []
    for row in sample:
        k = int(fold[row])
        v, _ = shap_attribution(
            ctx.folds[k],
            X[row][None, :],
            ctx.references[k],
            random_state=cfg.seed,
            n_samples=e.mlp_samples,
        )
        shap_abs.append(np.abs(v[0]))
        lime = lime_attribution(
            ctx.folds[k].decision_function,
            X[row],
            ctx.references[k],
            num_samples=e.lime_samples,
            random_state=cfg.seed,
        )
        lime_abs.append(np.abs(lime["weight"]))
        lime_r2.append(lime["r2"])
    perm = permutation_importance(
        ctx.folds,
        X[test],
        ds.y[test],
        fold[test],
        n_repeats=e.permutation_repeats,
        random_state=cfg.seed,
    )
    gain = xgboost_gain(ctx.folds, len(cfg.feature_names))
    methods: dict[str, np.ndarray] = {
        "mean |SHAP|": np.mean(shap_abs, axis=0),
        "mean |LIME weight|": np.mean(lime_abs, axis=0),
        "permutation (AUC drop)": np.asarray(perm["mean"]),
    }
    if gain is not None:
        methods["xgboost gain"] = gain
    names = cfg.feature_names
    out: dict[str, Any] = {
        "model": model,
        "kind": ctx.kind,
        "working_point": wp,
        "threshold": thr,
        "threshold_raw": thr_raw,
        "shap_method": records[0]["shap_method"] if records else None,
        "min_lime_r2": e.min_lime_r2,
        "candidates": records,
        "rankings": {
            "n_candidates": len(sample),
            "features": names,
            "methods": {m: v.tolist() for m, v in methods.items()},
            "permutation_std": np.asarray(perm["std"]).tolist(),
            "permutation_auc": perm["auc"],
            "permutation_candidates": len(test),
            "permutation_repeats": e.permutation_repeats,
            "lime_r2_mean": float(np.mean(lime_r2)),
            "kendall_tau": kendall_table(methods),
        },
    }
    write_json(lay.why(model), out)
    return out


def _why_figure_stem(lay: Layout, model: str, candidate: str) -> Path:
    return lay.why_plots / f"{model}_{candidate.replace(':', '_').replace('-', 'm')}"


def why_figures(cfg: AnalysisConfig, model: str) -> list[Path]:
    """Draw ``plots/why/<model>_<candidate>`` for each candidate of ``explain/<model>.json``.

    Drawn apart from :func:`why`, with the config's feature labels, so that
    editing a label redraws the figures without explaining the candidates again.
    """
    from types import SimpleNamespace

    from ..io.storage import read_json

    lay = Layout.of(cfg)
    labels = feature_labels(cfg)
    written: list[Path] = []
    for rec in read_json(lay.why(model))["candidates"]:
        rows = rec["contributions"]
        col = {
            k: np.array([r[k] for r in rows], dtype=float)
            for k in ("value", "shap", "lime_contribution", "lime_weight_std", "lime_offset")
        }
        expl = SimpleNamespace(
            feature_names=[r["feature"] for r in rows],
            output=rec["margin"],
            shap_base=rec["shap_base"],
            shap_method=rec["shap_method"],
            lime_r2=rec["lime_r2"],
            lime_local_pred=rec["lime_local_pred"],
            **col,
        )
        written += _why_plot(
            labels,
            expl,
            rec,
            model,
            _why_figure_stem(lay, model, rec["candidate"]),
            cfg.explain.min_lime_r2,
        )
    return written
