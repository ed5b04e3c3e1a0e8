"""Scratch probe: Spearman on RegMix Pile-CC for predictor settings (not the benchmark).

usage: python bench/predictor_probe.py [--select] [--target=pile_cc] SPEC [SPEC ...]
Each spec is ``name[:key=value,...]``, e.g. ``gp:inputs=log``.

``--select`` (how defaults were chosen): the 512 training runs are split in two halves;
fit on n = 32, 64 (5 draws each) and 256 runs of one half, score on the other. No test run
is used. Without it: fit on n = 32, 64 (5 draws) and all 512 training runs, score on the
256 1M test runs and the 64 1B runs, and time the 512-run fit.
"""

from __future__ import annotations

import ast
import sys
import time

import numpy as np
from scipy.stats import spearmanr

from mixsurrogate.predictors import make_predictor
from mixsurrogate.runs.builtin import regmix_runs


def parse(spec: str) -> tuple[str, dict]:
    name, _, rest = spec.partition(":")
    params = {}
    for kv in filter(None, rest.split(",")):
        k, v = kv.split("=")
        try:
            params[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            params[k] = v
    return name, params


def main(specs: list[str], target: str, select: bool, draws: int = 5) -> None:
    tr = regmix_runs("train-1m")
    y = tr.loss(target)
    if select:
        perm = np.random.default_rng(123).permutation(len(y))
        pool, held = perm[:256], perm[256:]
        evals = {"val": (tr.W[held], y[held])}
        full = pool
    else:
        te, tb = regmix_runs("test-1m"), regmix_runs("test-1b")
        evals = {"1m": (te.W, te.loss(target)), "1B": (tb.W, tb.loss(target))}
        pool = full = np.arange(len(y))
    extra = {"domain_index": tr.domains.index(target)} if target in tr.domains else {}
    for spec in specs:
        name, params = parse(spec)
        if name == "bimix":
            params = {**extra, **params}
        first = next(iter(evals.values()))
        cells = []
        for n in (32, 64):
            rhos = []
            for seed in range(draws):
                idx = np.random.default_rng(seed).choice(pool, n, replace=False)
                p = make_predictor(name, **params).fit(tr.W[idx], y[idx])
                rhos.append(spearmanr(p.predict(first[0]), first[1])[0])
            cells.append(f"n{n} {np.mean(rhos):.4f}")
        t0 = time.perf_counter()
        p = make_predictor(name, **params).fit(tr.W[full], y[full])
        dt = time.perf_counter() - t0
        for key, (Wt, yt) in evals.items():  # noqa: N806
            cells.append(f"n{len(full)}/{key} {spearmanr(p.predict(Wt), yt)[0]:.4f}")
        cells.append(f"fit {dt:.2f}s")
        print(f"{spec:40s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    select = "--select" in args
    target = next((a.split("=", 1)[1] for a in args if a.startswith("--target=")), "pile_cc")
    main([a for a in args if not a.startswith("--")], target, select)
