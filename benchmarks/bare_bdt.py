"""The bdt-only topo2body study without hepsel: uproot + numpy + xgboost + scikit-learn + matplotlib.

What ``benchmarks/lean.py`` times hepsel against. It reads the default
analysis's generated files, applies the same preselection and features,
trains the same xgboost model on the same five folds (``eventNumber % 5``)
with hepsel's seeds, class-balanced weights and event-level early-stopping
split, scores every candidate with the fold model that did not train on it,
and writes the same deliverables: ``summary.json`` (AUC, efficiency at the
trigger's target rates on minimum bias), ``scores.root`` and the ROC, rate,
score and cut-flow figures (PNG and PDF).

    python benchmarks/bare_bdt.py --data-dir data/generated/topo2body --output /tmp/bare
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import uproot
import xgboost as xgb
from sklearn.metrics import roc_auc_score, roc_curve

SEED = 42  # the config's seed
K = 5
TARGETS_KHZ = (660.0, 330.0, 100.0)
INPUT_KHZ = 30000.0
PARAMS = {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.1, "early_stopping_rounds": 20}
VALIDATION_FRACTION = 0.2  # BDTClassifier's default
BRANCHES = [
    "runNumber", "eventNumber", "eventWeight", "truth_matched",
    "H1_PT", "H2_PT", "H1_IPCHI2_OWNPV", "H2_IPCHI2_OWNPV", "H1_TRACK_CHI2NDOF", "H2_TRACK_CHI2NDOF",
    "H1_GhostProb", "H2_GhostProb", "B_PT", "B_ETA", "B_MCORR", "B_FDCHI2_OWNPV", "B_IPCHI2_OWNPV",
    "B_DIRA_OWNPV", "B_VTXCHI2", "B_DOCA",
]  # fmt: skip


def preselection(c: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The cumulative cuts of analyses/topo2body/config.yaml."""
    cuts = [
        ("track pT > 500 MeV", np.minimum(c["H1_PT"], c["H2_PT"]) > 500),
        ("track IP chi2 > 4", np.minimum(c["H1_IPCHI2_OWNPV"], c["H2_IPCHI2_OWNPV"]) > 4),
        ("track chi2/ndof < 3", np.maximum(c["H1_TRACK_CHI2NDOF"], c["H2_TRACK_CHI2NDOF"]) < 3),
        ("vertex chi2 < 10", c["B_VTXCHI2"] < 10),
        ("sum pT > 1.5 GeV", c["H1_PT"] + c["H2_PT"] > 1500),
    ]
    out, keep = [], np.ones(len(c["B_PT"]), dtype=bool)
    for name, m in cuts:
        keep = keep & m
        out.append((name, keep))
    return out


def features(c: dict[str, np.ndarray]) -> np.ndarray:
    """The 13 features of the default analysis, float32 (n, 13)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = [
            c["H1_PT"] + c["H2_PT"],
            np.minimum(c["H1_PT"], c["H2_PT"]),
            c["B_PT"],
            c["B_ETA"],
            c["B_MCORR"],
            np.log(c["B_FDCHI2_OWNPV"]),
            np.log(c["B_IPCHI2_OWNPV"]),
            np.arccos(c["B_DIRA_OWNPV"]),
            c["B_VTXCHI2"],
            c["B_DOCA"],
            np.log(np.minimum(c["H1_IPCHI2_OWNPV"], c["H2_IPCHI2_OWNPV"])),
            np.log(np.maximum(c["H1_IPCHI2_OWNPV"], c["H2_IPCHI2_OWNPV"])),
            np.maximum(c["H1_GhostProb"], c["H2_GhostProb"]),
        ]
    return np.column_stack([np.asarray(x, dtype=np.float64) for x in cols]).astype(np.float32)


def read(path: Path) -> tuple[dict[str, np.ndarray], list[tuple[str, float]], float]:
    """Preselected candidates, the cut flow (name, weighted candidates) and the generated events' weight."""
    with uproot.open(path) as f:
        c = f["DecayTree"].arrays(BRANCHES, library="np")
        total = float(f["EventTuple"]["eventWeight"].array(library="np").sum())
    flow = [("all", float(c["eventWeight"].sum()))]
    steps = preselection(c)
    flow += [(name, float(c["eventWeight"][m].sum())) for name, m in steps]
    keep = steps[-1][1]
    return {k: v[keep] for k, v in c.items()}, flow, total


def _splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def validation_events(run: np.ndarray, event: np.ndarray, seed: int) -> np.ndarray:
    """hepsel's early-stopping split: whole events, by a hash of (run, event, seed)."""
    with np.errstate(over="ignore"):
        h = _splitmix64(
            event.astype(np.int64).view(np.uint64)
            ^ _splitmix64(run.astype(np.int64).view(np.uint64) + np.uint64(seed % 2**63))
        )
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53) < VALIDATION_FRACTION


def train_fold(X: np.ndarray, y: np.ndarray, w: np.ndarray, run, event, fold: int) -> xgb.Booster:
    """One fold model with hepsel's seeds: the model seed, then xgboost's seed drawn from it."""
    seed = int(np.random.SeedSequence([SEED, zlib.crc32(b"bdt"), fold, 0]).generate_state(1)[0])
    xgb_seed = int(np.random.default_rng(seed).integers(2**31 - 1))
    w = w.astype(np.float64).copy()
    for cls in (0, 1):  # classes of equal total weight, mean weight 1
        w[y == cls] *= 0.5 * len(w) / w[y == cls].sum()
    val = validation_events(run, event, seed)
    dtrain = xgb.QuantileDMatrix(X[~val], label=y[~val], weight=w[~val], nthread=1)
    dval = xgb.QuantileDMatrix(X[val], label=y[val], weight=w[val], ref=dtrain, nthread=1)
    params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "max_depth": PARAMS["max_depth"],
        "eta": PARAMS["learning_rate"],
        "subsample": 0.8,  # BDTClassifier's defaults from here on
        "colsample_bytree": 1.0,
        "min_child_weight": 1.0,
        "lambda": 1.0,
        "tree_method": "hist",
        "device": "cpu",
        "nthread": 1,
        "seed": xgb_seed,
    }
    return xgb.train(
        params,
        dtrain,
        num_boost_round=PARAMS["n_estimators"],
        evals=[(dtrain, "train"), (dval, "validation")],
        early_stopping_rounds=PARAMS["early_stopping_rounds"],
        verbose_eval=False,
    )


def event_max(run: np.ndarray, event: np.ndarray, score: np.ndarray, weight: np.ndarray):
    """Per event: the highest score and the event's weight."""
    key = run.astype(np.int64) * (1 << 40) + event.astype(np.int64)
    order = np.lexsort((-score, key))
    first = np.r_[True, key[order][1:] != key[order][:-1]]
    return score[order][first], weight[order][first]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="data/generated/topo2body")
    ap.add_argument("--output", "-o", required=True)
    args = ap.parse_args()
    out = Path(args.output)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = Path(args.data_dir)
    sig, sig_flow, _ = read(data / "signal_000.root")
    mb, mb_flow, mb_total = read(data / "minbias_000.root")
    # samples in name order, as hepsel's data set holds them (xgboost's row subsampling sees the order)
    truth = np.concatenate([np.ones(len(mb["B_PT"]), dtype=bool), sig["truth_matched"] == 1])
    y = np.concatenate([np.zeros(len(mb["B_PT"])), np.ones(len(sig["B_PT"]))]).astype(np.int32)
    cols = {k: np.concatenate([mb[k], sig[k]]) for k in BRANCHES}
    X = features(cols)
    w = cols["eventWeight"].astype(np.float64)
    fold = cols["eventNumber"] % K
    score = np.full(len(y), np.nan)
    for k in range(K):
        train = (fold != k) & truth
        bst = train_fold(
            X[train], y[train], w[train], cols["runNumber"][train], cols["eventNumber"][train], k
        )
        test = fold == k
        margin = bst.inplace_predict(
            X[test], iteration_range=(0, bst.best_iteration + 1), predict_type="margin"
        )
        score[test] = 1.0 / (1.0 + np.exp(-np.asarray(margin, dtype=np.float64)))
    # the ROC of truth-matched signal against minimum bias, weighted
    auc = float(roc_auc_score(y[truth], score[truth], sample_weight=w[truth]))
    fpr, tpr, _ = roc_curve(y[truth], score[truth], sample_weight=w[truth])
    # rates: minimum-bias events by their best candidate; every generated event counts
    is_mb = y == 0
    mb_score, mb_w = event_max(
        cols["runNumber"][is_mb], cols["eventNumber"][is_mb], score[is_mb], w[is_mb]
    )
    order = np.argsort(-mb_score, kind="stable")
    thresholds = mb_score[order]
    rates = INPUT_KHZ * np.cumsum(mb_w[order]) / mb_total
    # signal events with a truth-matched candidate, by their best candidate
    s = ~is_mb
    reco_key = set(zip(cols["runNumber"][s & truth], cols["eventNumber"][s & truth], strict=True))
    sig_score, sig_w = event_max(cols["runNumber"][s], cols["eventNumber"][s], score[s], w[s])
    _, first = np.unique(
        cols["runNumber"][s].astype(np.int64) * (1 << 40) + cols["eventNumber"][s],
        return_index=True,
    )
    ev_run, ev_evt = cols["runNumber"][s][first], cols["eventNumber"][s][first]
    reco = np.array([(r, e) in reco_key for r, e in zip(ev_run, ev_evt, strict=True)])
    sig_score, sig_w = sig_score[reco], sig_w[reco]
    eff_at_rate = {}
    for target in TARGETS_KHZ:
        ok = np.flatnonzero(rates <= target * (1 + 1e-12))
        thr = float(thresholds[ok[-1]]) if len(ok) else float("inf")
        eff_at_rate[f"{target:g}"] = {
            "threshold": thr,
            "eff": float(sig_w[sig_score >= thr].sum() / sig_w.sum()),
        }
    summary = {"bdt": {"auc": auc, "eff_at_rate": eff_at_rate}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    with uproot.recreate(out / "scores.root") as f:
        f["scores"] = {
            "runNumber": cols["runNumber"],
            "eventNumber": cols["eventNumber"],
            "label": y,
            "truth": truth.astype(np.int8),
            "weight": w,
            "fold": fold.astype(np.int32),
            "bdt": score,
        }
    figures = {}
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.plot(fpr, tpr, label=f"bdt (AUC = {auc:.4f})")
    ax.set(xscale="log", xlim=(1e-4, 1), xlabel="background efficiency", ylabel="signal efficiency")
    ax.legend()
    figures["roc"] = fig
    fig, ax = plt.subplots(figsize=(8, 6))
    thin = slice(None, None, max(1, len(thresholds) // 500))
    eff_curve = np.array([sig_w[sig_score >= t].sum() for t in thresholds[thin]]) / sig_w.sum()
    ax.plot(rates[thin], eff_curve, label="bdt")
    for t in TARGETS_KHZ:
        ax.axvline(t, ls=":", color="grey")
    ax.set(xscale="log", xlabel="output rate [kHz]", ylabel="signal efficiency")
    ax.legend()
    figures["eff_vs_rate"] = fig
    fig, ax = plt.subplots(figsize=(8, 6))
    for cls, name in ((1, "signal"), (0, "background")):
        m = truth & (y == cls)
        ax.hist(
            score[m], bins=50, range=(0, 1), weights=w[m], density=True, histtype="step", label=name
        )
    ax.set(yscale="log", xlabel="bdt response")
    ax.legend()
    figures["scores_bdt"] = fig
    fig, ax = plt.subplots(figsize=(12, 8))
    for name, flow in (("signal", sig_flow), ("minbias", mb_flow)):
        ax.plot([n for n, _ in flow], [v / flow[0][1] for _, v in flow], marker="o", label=name)
    ax.set(yscale="log", ylabel="cumulative efficiency")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    fig.tight_layout()
    figures["cutflow"] = fig
    for name, fig in figures.items():
        for ext in ("png", "pdf"):
            fig.savefig(out / "plots" / f"{name}.{ext}")
        plt.close(fig)
    print(f"bare: AUC {auc:.6f}; {time.perf_counter() - t0:.1f} s after imports")


if __name__ == "__main__":
    main()
