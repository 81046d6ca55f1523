"""The bdt-only topo2body study without hepsel: uproot + numpy + xgboost + scikit-learn + matplotlib.

What ``benchmarks/lean.py`` times hepsel against. It reads the default
analysis's generated files, applies the same preselection and features,
trains the same xgboost model on the same five folds (``eventNumber % 5``)
with hepsel's seeds, class-balanced weights and event-level early-stopping
split, scores every candidate with the fold model that did not train on it,
and writes the same deliverables as hepsel's bdt-only study: ``summary.json``
(AUC, efficiencies at the trigger's target rates on minimum bias with their
intervals and TOS variants, rates measured on the other minimum-bias half, KS
p-values, optimal cuts, feature correlations), ``scores.root`` and the same
nine figures in the LHCb style, PNG and PDF: the cut flow, ROC, efficiency vs
rate (any and TOS), overtraining scores, efficiency vs cut, figures of merit
and the two correlation matrices (``FIGURES``).

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
import mplhep
import numpy as np
import uproot
import xgboost as xgb
from scipy.stats import beta, kstwobign
from sklearn.metrics import roc_auc_score, roc_curve

SEED = 42  # the config's seed
K = 5
TARGETS_KHZ = (660.0, 330.0, 100.0)
INPUT_KHZ = 30000.0
PARAMS = {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.1, "early_stopping_rounds": 20}
VALIDATION_FRACTION = 0.2  # BDTClassifier's default
S_YIELD, B_YIELD, PUNZI_SIGMA = 1000.0, 1.0e6, 5.0  # evaluation.optimal_cut's defaults
MIN_BKG_CANDIDATES = 10  # cuts keeping fewer simulated background candidates are not optimised over
MARKERS = ["o", "s", "^", "D"]
#: The figures, named as hepsel's plots step names them for a bdt-only study.
FIGURES = (
    "cutflow", "roc", "eff_vs_rate", "eff_vs_rate_tos", "scores_bdt", "eff_vs_cut_bdt",
    "optimal_cut_bdt", "correlation_signal", "correlation_background",
)  # fmt: skip
FEATURES = [
    "sum_pt", "min_pt", "B_PT", "B_ETA", "B_MCORR", "log_fdchi2", "log_ipchi2", "dira_angle",
    "vtx_chi2", "doca", "log_min_ipchi2", "log_max_ipchi2", "max_ghostprob",
]  # fmt: skip
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


Flow = list[tuple[str, float, float]]


def read(path: Path) -> tuple[dict[str, np.ndarray], Flow, Flow, float]:
    """Preselected candidates, the cut flow of all and of truth-matched candidates, the generated events' weight.

    A cut-flow step is (name, sum of weights, sum of squared weights) of the candidates left.
    """
    with uproot.open(path) as f:
        c = f["DecayTree"].arrays(BRANCHES, library="np")
        total = float(f["EventTuple"]["eventWeight"].array(library="np").sum())
    w = c["eventWeight"].astype(np.float64)
    steps = [("all", np.ones(len(w), dtype=bool)), *preselection(c)]
    flows = []
    for only in (np.ones(len(w), dtype=bool), c["truth_matched"] == 1):
        flows.append(
            [(n, float(w[m & only].sum()), float(np.square(w[m & only]).sum())) for n, m in steps]
        )
    keep = steps[-1][1]
    return {k: v[keep] for k, v in c.items()}, flows[0], flows[1], total


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


def events(run: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidates grouped by event: the order that sorts them by event, and where each event starts."""
    key = run.astype(np.int64) * (1 << 40) + event.astype(np.int64)
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
    return order, starts


def event_max(score: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per event: the highest score (-inf for an event with no candidate in ``score``'s mask)."""
    return np.maximum.reduceat(score[order], starts) if len(starts) else np.zeros(0)


def clopper_pearson(k: float, n: float, cl: float = 0.6827) -> tuple[float, float]:
    """Central Clopper-Pearson interval of k passing of n (effective counts)."""
    a = 0.5 * (1 - cl)
    lo = float(beta.ppf(a, k, n - k + 1)) if k > 0 else 0.0
    hi = float(beta.ppf(1 - a, k + 1, n - k)) if k < n else 1.0
    return lo, hi


def efficiency(passed: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Weighted efficiency with its Clopper-Pearson interval at the effective counts."""
    eff = float(w[passed].sum() / w.sum())
    n_eff = float(w.sum() ** 2 / np.square(w).sum())
    return (eff, *clopper_pearson(eff * n_eff, n_eff))


def weighted_ks(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test of weighted samples (effective sizes)."""
    x = np.sort(np.concatenate([a, b]))
    cdf = [
        np.cumsum(w[np.argsort(s)])[np.searchsorted(np.sort(s), x, side="right") - 1] / w.sum()
        for s, w in ((a, wa), (b, wb))
    ]
    d = float(np.max(np.abs(cdf[0] - cdf[1])))
    na, nb = (w.sum() ** 2 / np.square(w).sum() for w in (wa, wb))
    return float(kstwobign.sf(d * np.sqrt(na * nb / (na + nb))))


def threshold_for_rate(score: np.ndarray, w: np.ndarray, total: float, target: float) -> float:
    """The loosest cut on the events' best scores whose rate stays at or below ``target`` kHz."""
    order = np.argsort(-score, kind="stable")
    rates = INPUT_KHZ * np.cumsum(w[order]) / total
    ok = np.flatnonzero(rates <= target * (1 + 1e-12))
    return float(score[order][ok[-1]]) if len(ok) else float("inf")


def rate(score: np.ndarray, w: np.ndarray, total: float, total2: float, thr: float):
    """Output rate [kHz] above ``thr`` and its binomial error (effective number of events)."""
    frac = float(w[score >= thr].sum() / total)
    return INPUT_KHZ * frac, INPUT_KHZ * np.sqrt(frac * (1 - frac) / (total**2 / total2))


def style(ax, *, legend_title: str | None = None) -> None:
    """The legend to the right of the axes and the experiment label above them."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=18,
              title=legend_title, title_fontsize=14)  # fmt: skip
    ax.text(0.0, 1.01, "LHCb-like Simulation", transform=ax.transAxes, ha="left", va="bottom",
            fontsize=24, fontweight="bold")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="data/generated/topo2body")
    ap.add_argument("--output", "-o", required=True)
    args = ap.parse_args()
    out = Path(args.output)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = Path(args.data_dir)
    sig, sig_flow, sig_flow_truth, _ = read(data / "signal_000.root")
    mb, mb_flow, _, mb_total = read(data / "minbias_000.root")
    # samples in name order, as hepsel's data set holds them (xgboost's row subsampling sees the order)
    truth = np.concatenate([np.ones(len(mb["B_PT"]), dtype=bool), sig["truth_matched"] == 1])
    y = np.concatenate([np.zeros(len(mb["B_PT"])), np.ones(len(sig["B_PT"]))]).astype(np.int32)
    cols = {k: np.concatenate([mb[k], sig[k]]) for k in BRANCHES}
    run_no, evt_no = cols["runNumber"], cols["eventNumber"]
    X = features(cols)
    w = cols["eventWeight"].astype(np.float64)
    fold = evt_no % K
    score = np.full(len(y), np.nan)
    train0 = (fold != 0) & truth
    for k in range(K):
        train = (fold != k) & truth
        bst = train_fold(X[train], y[train], w[train], run_no[train], evt_no[train], k)
        best = (0, bst.best_iteration + 1)
        test = fold == k
        margin = bst.inplace_predict(X[test], iteration_range=best, predict_type="margin")
        score[test] = 1.0 / (1.0 + np.exp(-np.asarray(margin, dtype=np.float64)))
        if k == 0:  # the overtraining figure: fold 0's model on its own training candidates
            margin = bst.inplace_predict(X[train0], iteration_range=best, predict_type="margin")
            score_train0 = 1.0 / (1.0 + np.exp(-np.asarray(margin, dtype=np.float64)))
    # the ROC of truth-matched signal against minimum bias, weighted
    auc = float(roc_auc_score(y[truth], score[truth], sample_weight=w[truth]))
    fpr, tpr, roc_thr = roc_curve(y[truth], score[truth], sample_weight=w[truth])
    # rates: minimum-bias events by their best candidate; every generated event counts
    is_mb = y == 0
    order, starts = events(run_no[is_mb], evt_no[is_mb])
    mb_score = event_max(score[is_mb], order, starts)
    mb_w = w[is_mb][order][starts]
    mb_even = evt_no[is_mb][order][starts] % 2 == 0
    rank = np.argsort(-mb_score, kind="stable")
    thresholds = mb_score[rank]
    rates = INPUT_KHZ * np.cumsum(mb_w[rank]) / mb_total
    # signal events with a truth-matched candidate: their best candidate (any) and best truth-matched one (TOS)
    s = ~is_mb
    order, starts = events(run_no[s], evt_no[s])
    sig_any = event_max(score[s], order, starts)
    sig_tos = event_max(np.where(truth[s], score[s], -np.inf), order, starts)
    reco = np.isfinite(sig_tos)
    sig_any, sig_tos, sig_w = sig_any[reco], sig_tos[reco], w[s][order][starts][reco]
    eff_at_rate = {}
    for target in TARGETS_KHZ:
        thr = threshold_for_rate(mb_score, mb_w, mb_total, target)
        # the threshold chosen on the even minimum-bias events, the rate measured on the odd ones
        thr_split = threshold_for_rate(mb_score[mb_even], mb_w[mb_even], mb_total / 2, target)
        measured, measured_err = rate(
            mb_score[~mb_even], mb_w[~mb_even], mb_total / 2, mb_total / 2, thr_split
        )
        e = {"threshold": thr, "rate_khz_measured": measured, "rate_khz_measured_err": measured_err}
        for key, best_score in (("eff", sig_any), ("eff_tos", sig_tos)):
            e[key], e[f"{key}_low"], e[f"{key}_high"] = efficiency(best_score >= thr, sig_w)
        eff_at_rate[f"{target:g}"] = e
    # overtraining check: fold 0's test candidates against its training candidates
    test0 = (fold == 0) & truth
    ks = {
        cls: weighted_ks(score[test0 & (y == code)], w[test0 & (y == code)],
                         score_train0[y[train0] == code], w[train0][y[train0] == code])
        for cls, code in (("signal", 1), ("background", 0))
    }  # fmt: skip
    # cuts maximising S/sqrt(S+B) and the Punzi figure of merit (candidates)
    se, be, fom_thr = tpr[1:], fpr[1:], roc_thr[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        significance = se * S_YIELD / np.sqrt(se * S_YIELD + be * B_YIELD)
        punzi = se / (PUNZI_SIGMA / 2 + np.sqrt(be * B_YIELD))
    bkg_sorted = np.sort(score[truth & (y == 0)])
    allowed = len(bkg_sorted) - np.searchsorted(bkg_sorted, fom_thr) >= MIN_BKG_CANDIDATES
    optimal = {
        name: int(np.nanargmax(np.where(allowed, fom, -np.inf)))
        for name, fom in (("significance", significance), ("punzi", punzi))
    }
    # the features' weighted correlation matrices per class
    correlation = {
        cls: (lambda c: c / np.sqrt(np.outer(np.diag(c), np.diag(c))))(
            np.cov(X[truth & (y == code)], rowvar=False, aweights=w[truth & (y == code)])
        )
        for cls, code in (("signal", 1), ("background", 0))
    }
    summary = {
        "bdt": {
            "auc": auc,
            "ks_pvalue": ks,
            "eff_at_rate": eff_at_rate,
            "optimal_cut": {
                name: {"threshold": float(fom_thr[i]), "sig_eff": float(se[i])}
                for name, i in optimal.items()
            },
        },
        "_inputs": {"features": FEATURES, **{f"correlation_{c}": m.tolist() for c, m in correlation.items()}},
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    with uproot.recreate(out / "scores.root") as f:
        f["scores"] = {
            "runNumber": run_no,
            "eventNumber": evt_no,
            "label": y,
            "truth": truth.astype(np.int8),
            "weight": w,
            "fold": fold.astype(np.int32),
            "bdt": score,
        }
    wps = {f"{t:g} kHz": eff_at_rate[f"{t:g}"]["threshold"] for t in TARGETS_KHZ}
    figures = {}
    with plt.style.context(mplhep.style.LHCb2):
        figures["cutflow"], ax = plt.subplots(figsize=(12, 8))
        flows = {"signal, all candidates": sig_flow, "signal, truth-matched": sig_flow_truth,
                 "minbias": mb_flow}  # fmt: skip
        for i, (name, flow) in enumerate(flows.items()):
            counts = np.array([v for _, v, _ in flow])
            n_eff = counts[0] ** 2 / flow[0][2]
            eff = counts / counts[0]
            lo, hi = np.array([clopper_pearson(e * n_eff, n_eff) for e in eff]).T
            ax.errorbar(np.arange(len(flow)), eff, yerr=[eff - lo, hi - eff],
                        fmt=MARKERS[i] + "-", ms=9, label=name)  # fmt: skip
        ax.set_xticks(np.arange(len(sig_flow)))
        ax.set_xticklabels([n for n, _, _ in sig_flow], rotation=30, ha="right",
                           rotation_mode="anchor", fontsize=17)  # fmt: skip
        ax.set(yscale="log", ylabel="Cumulative efficiency (candidates)")
        style(ax)
        figures["roc"], ax = plt.subplots(figsize=(10, 8))
        ax.plot(fpr, tpr, label=f"bdt (AUC = {auc:.4f})")
        t_inc = roc_thr[::-1][1:]
        for i, (lab, cut) in enumerate(wps.items()):
            ax.plot(np.interp(cut, t_inc, fpr[::-1][1:]), np.interp(cut, t_inc, tpr[::-1][1:]),
                    MARKERS[i], ms=11, mfc="white", mew=2, label=f"cut at {lab}")  # fmt: skip
        ax.set(xscale="log", xlim=(1e-4, 1), ylim=(0, 1.05),
               xlabel="Background efficiency (candidates)", ylabel="Signal efficiency (candidates)")  # fmt: skip
        style(ax)
        thin = np.unique(np.geomspace(1, len(thresholds), 400).astype(int) - 1)
        for tos in (False, True):
            key = "eff_tos" if tos else "eff"
            best_score = sig_tos if tos else sig_any
            fig, ax = plt.subplots(figsize=(10, 8))
            curve = np.array([sig_w[best_score >= t].sum() for t in thresholds[thin]]) / sig_w.sum()
            (line,) = ax.plot(rates[thin], curve, label="bdt")
            for i, t in enumerate(TARGETS_KHZ):
                e = eff_at_rate[f"{t:g}"]
                ax.errorbar(e["rate_khz_measured"], e[key], xerr=e["rate_khz_measured_err"],
                            yerr=[[e[key] - e[f"{key}_low"]], [e[f"{key}_high"] - e[key]]],
                            fmt=MARKERS[i], ms=10, mfc="white", mec=line.get_color(), mew=2,
                            color=line.get_color(), capsize=3)  # fmt: skip
                ax.axvline(t, ls="--", color="dimgrey", lw=1.5, zorder=0)
                ax.text(t, 0.985, f"{t:g} kHz ", rotation=90, color="dimgrey", fontsize=17,
                        ha="right", va="top", transform=ax.get_xaxis_transform())  # fmt: skip
            ax.set(xscale="log", ylim=(0, 1.05), xlabel="Output rate [kHz] (input 30 MHz)",
                   ylabel="Signal efficiency (events" + (", TOS)" if tos else ")"))  # fmt: skip
            style(ax, legend_title="markers: rate measured on the\nother minimum-bias half,\n"
                  f"efficiency 68% Clopper-Pearson\non {len(sig_w):,} signal events")  # fmt: skip
            figures["eff_vs_rate_tos" if tos else "eff_vs_rate"] = fig
        figures["scores_bdt"], ax = plt.subplots(figsize=(10, 8))
        edges = np.linspace(0, 1, 41)
        centres = 0.5 * (edges[1:] + edges[:-1])
        for cls, code in (("signal", 1), ("background", 0)):
            m = test0 & (y == code)
            h, _ = np.histogram(score[m], edges, weights=w[m])
            mplhep.histplot(h / (h.sum() * np.diff(edges)), edges, ax=ax, histtype="fill",
                            alpha=0.35, label=f"{cls} (test)")  # fmt: skip
            m = y[train0] == code
            h, _ = np.histogram(score_train0[m], edges, weights=w[train0][m])
            h2, _ = np.histogram(score_train0[m], edges, weights=np.square(w[train0][m]))
            norm = h.sum() * np.diff(edges)
            ax.errorbar(centres, h / norm, yerr=np.sqrt(h2) / norm, xerr=0.5 * np.diff(edges),
                        fmt="o", ms=4, label=f"{cls} (train), KS p = {ks[cls]:.3f}")  # fmt: skip
        ax.set(yscale="log", xlim=(0, 1), xlabel="bdt response",
               ylabel="Normalised entries / bin width")  # fmt: skip
        style(ax)
        figures["eff_vs_cut_bdt"], ax = plt.subplots(figsize=(10, 8))
        finite = np.isfinite(roc_thr)
        (line,) = ax.plot(roc_thr[finite], tpr[finite], label="signal")
        ax.plot(roc_thr[finite], fpr[finite], label="background")
        for i, (lab, cut) in enumerate(wps.items()):
            eff_s = float(np.interp(cut, roc_thr[finite][::-1], tpr[finite][::-1]))
            ax.axvline(cut, ls="--", color="dimgrey", lw=1.5, zorder=0)
            ax.plot(cut, eff_s, MARKERS[i], ms=10, mfc="white", mec=line.get_color(), mew=2,
                    label=f"{lab}: cut {cut:.4f}, $\\varepsilon_S$ = {eff_s:.3f}")  # fmt: skip
        ax.set(xscale="logit", yscale="logit", xlim=(1e-3, 1 - 1e-6), ylim=(1e-6, 1 - 1e-6),
               xlabel="Cut on the bdt response", ylabel="Efficiency (candidates, score > cut)")  # fmt: skip
        style(ax)
        figures["optimal_cut_bdt"], ax = plt.subplots(figsize=(10, 8))
        for name, label, fom in (("significance", "S/√(S+B)", significance),
                                 ("punzi", f"Punzi, $\\sigma$ = {PUNZI_SIGMA:g}", punzi)):  # fmt: skip
            y_fom = fom / fom[optimal[name]]
            (line,) = ax.plot(se, np.where(allowed, y_fom, np.nan), label=label)
            ax.plot(se, np.where(allowed, np.nan, y_fom), color=line.get_color(), ls=":")
            ax.axvline(se[optimal[name]], color=line.get_color(), ls="--", lw=1.5)
        ax.axvspan(0, float(se[allowed].min()), color="0.85", zorder=0,
                   label=f"< {MIN_BKG_CANDIDATES} simulated\nbackground pass")  # fmt: skip
        ax.set(xlim=(0, 1), ylim=(0, 1.1), xlabel="Signal efficiency (candidates)",
               ylabel="Figure of merit / maximum")  # fmt: skip
        style(ax, legend_title=f"S = {S_YIELD:g}, B = {B_YIELD:g}\nbefore the cut")
        for cls, matrix in correlation.items():
            fig, ax = plt.subplots(figsize=(12, 10))
            shown = np.round(100 * matrix) + 0.0
            im = ax.imshow(shown, cmap="RdBu_r", vmin=-100, vmax=100)
            ax.set_xticks(range(len(FEATURES)))
            ax.set_yticks(range(len(FEATURES)))
            ax.set_xticklabels(
                FEATURES, rotation=60, ha="right", rotation_mode="anchor", fontsize=14
            )
            ax.set_yticklabels(FEATURES, fontsize=14)
            for i in range(len(FEATURES)):
                for j in range(len(FEATURES)):
                    ax.text(j, i, f"{shown[i, j]:.0f}", ha="center", va="center", fontsize=14,
                            color="white" if abs(shown[i, j]) > 60 else "black")  # fmt: skip
            fig.colorbar(im, ax=ax, label="correlation [%]")
            ax.set_title(cls, loc="right", fontsize=18)
            figures[f"correlation_{cls}"] = fig
        for name, fig in figures.items():
            for ext in ("pdf", "png"):
                fig.savefig(out / "plots" / f"{name}.{ext}", dpi=100 if ext == "png" else None,
                            bbox_inches="tight", pad_inches=0.15)  # fmt: skip
            plt.close(fig)
    print(f"bare: AUC {auc:.6f}; {time.perf_counter() - t0:.1f} s after imports")


if __name__ == "__main__":
    main()
