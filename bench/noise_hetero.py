"""gp-hetero against gp on the shipped real-text runs: held-out log-likelihood and Spearman.

The real-text runs log and its seed-repeat log (``mixsurrogate/data/realtext``) read as one
(as ``mixsurrogate noise runs.csv seeds.csv`` does): 6 mixtures trained 3-5 times. Both GPs see
the same 5-fold splits (x ``--repeats``); per set, the mean held-out log density of the runs
under each predictor's posterior predictive (latent posterior + noise: gp's fitted constant,
gp-hetero's noise model at that mixture), Spearman of the held-out predictions, and the range
of gp-hetero's predicted noise std over the log. Fit notes are counted, never silenced.

    nice -n 15 python bench/noise_hetero.py --out bench/results
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm, spearmanr
from sklearn.model_selection import RepeatedKFold

from mixsurrogate.predictors import make_predictor
from mixsurrogate.runs.log import RunsLog, load_runs

DATA = Path(__file__).resolve().parents[1] / "mixsurrogate" / "data" / "realtext"
ONE_SIGMA = 0.6826894921370859


def realtext() -> RunsLog:
    runs, seeds = load_runs(DATA / "runs.csv"), load_runs(DATA / "seeds.csv")
    frames = [runs.frame, seeds.with_domain_order(runs.domains).frame]
    return RunsLog(pd.concat(frames, ignore_index=True)).completed()


def score(log: RunsLog, target: str, folds: int, repeats: int, seed: int) -> dict:
    y = log.loss(target)
    out: dict[str, dict] = {}
    notes: Counter = Counter()
    for name in ("gp", "gp-hetero"):
        loglik, rho = [], []
        for train, test in RepeatedKFold(
            n_splits=folds, n_repeats=repeats, random_state=seed
        ).split(log.W):
            model = make_predictor(name, interval="posterior", seed=seed)
            model.fit(log.W[train], y[train])
            notes.update(f"{name}: {n}" for n in model.fit_notes_)
            low, high = model.predict_interval(log.W[test], level=ONE_SIGMA)
            centre, std = (low + high) / 2, (high - low) / 2
            loglik.append(float(norm.logpdf(y[test], centre, std).mean()))
            rho.append(float(spearmanr(model.predict(log.W[test]), y[test]).statistic))
        out[name] = {"loglik": float(np.mean(loglik)), "spearman": float(np.mean(rho))}
    full = make_predictor("gp-hetero", seed=seed).fit(log.W, y)
    noise = full.predict_noise_std(log.W)
    out["noise_std_range"] = [float(noise.min()), float(noise.max())]
    out["fit_notes"] = dict(notes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write noise_hetero.{md,json} here")
    args = parser.parse_args()
    log = realtext()
    results = {t: score(log, t, args.folds, args.repeats, args.seed) for t in log.targets}
    lines = [
        f"# gp-hetero vs gp on the real-text runs ({len(log)} runs, {args.folds}-fold x "
        f"{args.repeats})",
        "",
        "| set | log-lik gp | log-lik gp-hetero | Spearman gp | Spearman gp-hetero | "
        "hetero noise std range |",
        "|---|---|---|---|---|---|",
    ]
    for t, r in results.items():
        lo, hi = r["noise_std_range"]
        lines.append(
            f"| {t} | {r['gp']['loglik']:.3f} | {r['gp-hetero']['loglik']:.3f} | "
            f"{r['gp']['spearman']:.3f} | {r['gp-hetero']['spearman']:.3f} | {lo:.4f}-{hi:.4f} |"
        )
    notes = Counter()
    for r in results.values():
        notes.update(r["fit_notes"])
    lines += ["", "Fit notes (counted over every fit): " + (", ".join(
        f"{n} x{c}" for n, c in notes.items()) or "none")]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "noise_hetero.md").write_text(text)
        (args.out / "noise_hetero.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
