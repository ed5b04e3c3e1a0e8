"""How much of budget-matched MDE's error is the snapshot approximation (issue 21)?

A budget snapshot at fraction ``f`` is the expert part-way through the cosine schedule of its
full budget (learning rate not yet decayed), not a model trained with its own schedule to
``f``. Here every expert is also trained *with its own schedule* to ``--fractions`` of the
budget (same preset, seed and batches, only ``tokens`` cut), scored, and compared with the
snapshots at the same fractions: each expert's loss on its own validation domain and the mean
over all sets, then budget-matched MDE at the mixing runs (bias and Spearman with the realised
loss) with budgets {fractions, 1} from either source (so both clamp at the smallest fraction).

    nice -n 15 python bench/realtext/snapshot_gap.py --scores bench/data/realtext-budget-scores \\
        --corpus /tmp/corpus-v1024 --work /tmp/snapshot-gap --out bench/results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
import budget  # noqa: E402  (a sibling script)
import compare  # noqa: E402

from mixsurrogate.evaluation import protocol as evaluate  # noqa: E402
from mixsurrogate.evaluation.metrics import json_safe  # noqa: E402
from mixsurrogate.evaluation.report import with_interval  # noqa: E402
from mixsurrogate.experts.presets import load_preset, preset_from_dict  # noqa: E402
from mixsurrogate.experts.score import score_experts  # noqa: E402
from mixsurrogate.experts.train import train_experts  # noqa: E402
from mixsurrogate.mde.features import MDEFeatureMap  # noqa: E402
from mixsurrogate.mde.store import Budget, ScoreStore, load_scores  # noqa: E402


def own_schedule_store(corpus: str, work: Path, fraction: float, domains: list[str]) -> Path:
    """Experts trained with their own schedule to ``fraction`` of bench-cpu's budget, scored."""
    base = load_preset("bench-cpu")
    data = base.to_dict()
    data["train"]["tokens"] = int(base.train.tokens * fraction)
    preset = preset_from_dict(data, f"bench-cpu@{fraction:g}")
    experts = work / f"experts-{fraction:g}"
    for seed, domain in enumerate(domains):  # expert i has seed i, as generate.py
        train_experts(corpus, preset, experts, [domain], seed, "cpu", progress=False)
    scores = work / f"scores-{fraction:g}"
    if not (scores / "manifest.json").is_file():
        score_experts(experts, corpus, scores, "cpu", "float16", progress=False)
    return scores


def with_budgets(store: ScoreStore, fractions: list[float], arrays: dict) -> ScoreStore:
    """``store`` (full experts) with budgets ``fractions`` + 1 whose log-probs are ``arrays``
    (set name -> one array per fraction)."""
    full = store.budgets[-1].tokens
    budgets = tuple(Budget(f, int(f * full)) for f in fractions) + (store.budgets[-1],)
    sets = {n: replace(s, budget_logp=tuple(arrays[n])) for n, s in store.eval_sets.items()}
    return replace(store, eval_sets=sets, budgets=budgets)


def expert_losses(store: ScoreStore, index: int) -> np.ndarray:
    """(experts, sets) mean loss of each expert at budget ``index`` on each set."""
    out = []
    for s in store.eval_sets.values():
        lp = np.asarray(s.logp_at(index), dtype=np.float64)[:, s.mask]
        out.append(-lp.mean(axis=1))
    return np.array(out).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=compare.DEFAULT_DATA)
    parser.add_argument("--scores", type=Path, required=True, help="the snapshot store")
    parser.add_argument("--corpus", default="/tmp/corpus-v1024")
    parser.add_argument("--work", type=Path, default=Path("/tmp/snapshot-gap"))
    parser.add_argument("--fractions", default="0.125,0.25")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    fractions = sorted(float(f) for f in args.fractions.split(","))
    data = budget.data_folder(args.data, args.scores)
    log, _, snap, objectives = compare.load_benchmark(data)
    scored = evaluate.scoring_mask(log, exclude=[compare.VERTEX])
    index = {b.fraction: i for i, b in enumerate(snap.budgets)}
    missing = [f for f in fractions if f not in index]
    if missing:
        raise SystemExit(f"fractions {missing} are not budgets of {args.scores}")
    own_stores = [
        load_scores(own_schedule_store(args.corpus, args.work, f, log.domains)).reordered(
            log.domains
        )
        for f in fractions
    ]
    sets = list(snap.eval_sets)
    stores = {
        "snapshots": with_budgets(
            snap, fractions,
            {n: [snap.eval_sets[n].logp_at(index[f]) for f in fractions] for n in sets},
        ),
        "own schedule": with_budgets(
            snap, fractions, {n: [o.eval_sets[n].logp for o in own_stores] for n in sets}
        ),
    }  # fmt: skip
    gap_rows = []
    for k, f in enumerate(fractions):
        s_loss = expert_losses(stores["snapshots"], k)
        o_loss = expert_losses(stores["own schedule"], k)
        full = expert_losses(snap, len(snap.budgets) - 1)
        own_set = [sets.index(d) for d in log.domains]
        diag = np.arange(len(log.domains))
        gap_rows.append(
            {
                "fraction": f,
                "own domain: snapshot": float(s_loss[diag, own_set].mean()),
                "own domain: own schedule": float(o_loss[diag, own_set].mean()),
                "own domain: full expert": float(full[diag, own_set].mean()),
                "all sets: snapshot": float(s_loss.mean()),
                "all sets: own schedule": float(o_loss.mean()),
                "all sets: full expert": float(full.mean()),
            }
        )
    mde_rows = []
    for name, store in [("token (full experts)", snap), *stores.items()]:
        kind = "token" if store is snap else "budget"
        F = MDEFeatureMap(store, log.targets, kind=kind)(log.W)[scored]  # noqa: N806
        row = {"experts": name}
        for obj_name, objective in objectives.items():
            weights = objective.vector(log.targets) / objective.vector(log.targets).sum()
            f, y = F @ weights, log.Y[scored] @ weights
            row[f"{obj_name} bias"] = with_interval(*budget.interval(f - y))
            row[f"{obj_name} Spearman"] = float(spearmanr(f, y).statistic)
        mde_rows.append(row)
    gap, mde = pd.DataFrame(gap_rows), pd.DataFrame(mde_rows)
    md = [
        "# Budget snapshots vs experts trained with their own schedule (real-text, issue 21)",
        "",
        "Every bench-cpu expert trained again to "
        + ", ".join(f"{f:g}" for f in fractions)
        + " of its 1,048,576-token budget with its own cosine schedule (same preset, seed and "
        "batches; only `tokens` cut), scored, and set beside the snapshot at the same fraction "
        "(the full-budget run part-way through its schedule).",
        "",
        "## Mean loss (nats per token): each expert on its own domain's validation set, and "
        "over all 11 sets",
        "",
        compare.markdown(gap),
        "",
        "## Budget-matched MDE at the mixing runs, budgets {"
        + ", ".join(f"{f:g}" for f in fractions)
        + ", 1} from either source (clamped below the smallest)",
        "",
        "Mean raw bias (mde - realised loss) [95% CI over runs] and the raw MDE's Spearman with "
        "the realised loss on each objective (no fitting).",
        "",
        compare.markdown(mde),
        "",
    ]
    (args.out / "realtext_snapshot_gap.md").write_text("\n".join(md) + "\n")
    payload = {
        "fractions": fractions,
        "expert_losses": gap.to_dict(orient="records"),
        "budget_mde": mde.to_dict(orient="records"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (args.out / "realtext_snapshot_gap.json").write_text(
        json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n"
    )
    print("\n".join(md))


if __name__ == "__main__":
    main()
