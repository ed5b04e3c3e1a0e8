"""Targets computed from an evaluation's per-set results, without refitting: a blended
objective (``add_objective``) and means over sets (``add_set_mean``, ``add_set_means``).

A blend is scored on each split from the stored per-set predictions; a set mean averages each
split's metrics over sets, and never mixes sets in different units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import MixsurrogateError
from ..objective import Objective
from .metrics import METRICS, metrics
from .results import (
    INTERVAL_COLUMNS,
    OBJECTIVE_TARGET,
    Evaluation,
    SetMean,
    by_reason,
    cell_status,
)


def add_objective(
    evaluation: Evaluation, objective: Objective, name: str = OBJECTIVE_TARGET
) -> str:
    """Score a blend of the evaluated sets as target ``name``, from the stored predictions.

    No refitting: each split's per-set predictions are combined, so several objectives (SP,
    ET, ET+SP) cost one evaluation. A split's blend is scored only if every set it weighs
    was fitted there; otherwise it is ``skipped`` with the sets it lacked.
    """
    missing = [s for s in objective.sets if s not in evaluation.sets]
    if missing:
        raise MixsurrogateError(f"objective {objective.spec!r} needs unevaluated {missing}")
    if name in evaluation.targets:
        raise MixsurrogateError(f"target {name!r} is already evaluated")
    n = len(evaluation.sets)
    cols = [evaluation.sets.index(s) for s in objective.sets]
    truth = objective.combine(evaluation.truth[:, :n], evaluation.sets)
    evaluation.truth = np.column_stack([evaluation.truth, truth])
    evaluation.targets.append(name)
    scores = evaluation.scores
    per_set = scores[scores["target"].isin(objective.sets)]
    keys = ["predictor", *evaluation.key_columns]
    rows = []
    for values, cell in per_set.groupby(keys, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        predictor, split_values = values[0], values[1:]
        key = (evaluation.protocol, *split_values)
        pred = evaluation.predictions[predictor][key]
        first = cell.iloc[0]
        row = {k: v for k, v in zip(keys, values, strict=True)}
        # a blend is only as well fitted as its least evaluated set
        row |= {"n_train": cell["n_train"].min(), "n_scored": first["n_scored"], "target": name}
        lacking = cell.loc[cell["status"] != "ok", "target"].tolist()
        est = objective.combine(pred[:, cols], objective.sets)
        # the blend is scored on the held-out runs evaluated on every set it weighs
        true = truth[evaluation.split_rows[key]]
        have = np.isfinite(true)
        row["n_scored"] = int(have.sum())
        if lacking:
            row |= {"status": "skipped", "reason": f"needs {', '.join(lacking)}, not fitted"}
        elif not have.any():
            row |= {"status": "skipped", "reason": "no held-out run was evaluated on every set"}
        else:
            row |= {"status": "ok", "reason": ""}
            row |= metrics(true[have], est[have])
        evaluation.predictions[predictor][key] = np.column_stack([pred, est])
        rows.append(row)
    evaluation.scores = pd.concat([scores, pd.DataFrame(rows)], ignore_index=True)
    return name


def _fully_scored(per_set: pd.DataFrame) -> pd.Series:
    """(target, predictor) -> whether every split of that cell was scored."""
    return per_set.groupby(["target", "predictor"])["status"].agg(lambda x: bool((x == "ok").all()))


def add_set_mean(
    evaluation: Evaluation,
    sets: Sequence[str] | None = None,
    covered: dict[str, Sequence[str]] | None = None,
    units: str | None = None,
) -> SetMean:
    """Add a target ``mean of N sets`` (``... (units)`` with ``units``): per split, each
    metric averaged over the sets.

    Default: ``sets`` are the evaluation's sets that some predictor scored on every split,
    and each predictor's mean covers the sets *it* scored on every split, so a predictor
    that cannot score a set (bimix on a set named like no domain, a failed fit) never takes
    that set, nor the mean, from the others; ``SetMean.left_out`` and ``footnotes`` name
    what its own mean lacks, and ``compare`` pairs two such means on the sets both scored.
    With ``sets`` given, every predictor's mean covers them all (or ``covered``'s sets), and
    a split where one was not scored (a curve size a law cannot fit) is skipped with the
    sets it lacked. A predictor that covers none gets skipped cells with the reason. The
    mean is registered (``evaluation.set_means``) only if it has a set.
    """
    scores = evaluation.scores
    candidates = list(evaluation.sets if sets is None else sets)
    per_set = scores[scores["target"].isin(candidates)]
    predictors = list(dict.fromkeys(per_set["predictor"]))
    fully = _fully_scored(per_set)
    if covered is None:
        covered = {
            p: [t for t in candidates if sets is not None or fully.get((t, p), False)]
            for p in predictors
        }
    covered = {p: [t for t in candidates if t in covered.get(p, ())] for p in predictors}
    chosen_sets = [t for t in candidates if any(t in c for c in covered.values())]
    if sets is not None:
        chosen_sets = candidates
    name = f"mean of {len(chosen_sets)} sets" + (f" ({units})" if units else "")
    reasons = {
        p: {t: _set_reason(per_set, p, t) for t in chosen_sets if t not in covered[p]}
        for p in predictors
    }
    mean = SetMean(
        name,
        chosen_sets,
        covered,
        units,
        {p: r for p, r in reasons.items() if r},
        [t for t in candidates if t not in chosen_sets],
    )
    if not chosen_sets:
        return mean
    keys = [*evaluation.key_columns]
    pairs = {(p, t) for p, ts in covered.items() for t in ts}
    mask = [(p, t) in pairs for p, t in zip(per_set["predictor"], per_set["target"], strict=True)]
    chosen = per_set[mask]
    columns = list(METRICS) + [c for c in INTERVAL_COLUMNS if c in chosen.columns]
    tables = []
    if len(chosen):
        means = chosen.groupby(["predictor", *keys], sort=False)[columns].mean()
        first = chosen.groupby(["predictor", *keys], sort=False)[["n_train", "n_scored"]].first()
        table = means.join(first).reset_index()
        table["target"], table["status"], table["reason"] = name, "ok", ""
        # a split where some set was not scored (a curve size a law cannot fit) is not scored
        lacking = chosen[chosen["status"] != "ok"].groupby(["predictor", *keys], sort=False)
        missing = lacking["target"].agg(lambda t: ", ".join(t)).rename("lacking").reset_index()
        table = table.merge(missing, on=["predictor", *keys], how="left")
        bad = table["lacking"].notna()
        table.loc[bad, "status"] = "skipped"
        table.loc[bad, "reason"] = "needs " + table.loc[bad, "lacking"] + ", not scored"
        table.loc[bad, columns] = np.nan
        tables.append(table.drop(columns=["lacking"]))
    for p in (p for p in predictors if not covered[p]):  # no set: skipped, with the reason
        own = per_set[per_set["predictor"] == p]
        table = own.groupby(keys, sort=False)[["n_train", "n_scored"]].first().reset_index()
        why = "; ".join(r for r, _ in by_reason(mean.reasons, p, chosen_sets))
        table["predictor"], table["target"], table["status"] = p, name, "skipped"
        table["reason"] = f"scored none of the {len(chosen_sets)} sets: {why}"
        tables.append(table)
    evaluation.scores = pd.concat([scores, *tables], ignore_index=True)
    evaluation.set_means[name] = mean
    return mean


def _set_reason(per_set: pd.DataFrame, predictor: str, target: str) -> str:
    """Why ``predictor``'s cell of ``target`` was not scored on every split."""
    cell = per_set[(per_set["predictor"] == predictor) & (per_set["target"] == target)]
    if not len(cell):
        return "not evaluated"
    status, reason = cell_status(cell["status"], cell["reason"])
    return f"{status}: {reason}" if status != "ok" else "not scored"


def add_set_means(evaluation: Evaluation, units: dict[str, str] | None = None) -> list[SetMean]:
    """The set means of an evaluation: one over every set, or, when the sets are in different
    units (``units``: set -> ``nats``, ``bpb``, ``1 - value``...), one per unit, each named
    with its units. Sets in different units are never averaged together: an MSE or regret in
    nats plus one in ``1 - accuracy`` means nothing (and each unit's mean says which it is)."""
    units = units or {}
    groups: dict[str, list[str]] = {}
    for t in evaluation.sets:
        groups.setdefault(units.get(t, ""), []).append(t)
    if len(groups) == 1:
        return [add_set_mean(evaluation)]
    return [_add_group_mean(evaluation, sets, unit) for unit, sets in groups.items()]


def _add_group_mean(evaluation: Evaluation, sets: list[str], unit: str) -> SetMean:
    """``add_set_mean``'s default rule (each predictor covers what it scored everywhere)
    over one unit's sets."""
    per_set = evaluation.scores[evaluation.scores["target"].isin(sets)]
    fully = _fully_scored(per_set)
    predictors = list(dict.fromkeys(per_set["predictor"]))
    covered = {p: [t for t in sets if fully.get((t, p), False)] for p in predictors}
    scored = [t for t in sets if any(t in c for c in covered.values())]
    mean = add_set_mean(evaluation, scored, covered, unit or None)
    mean.unscored = [t for t in sets if t not in scored]
    return mean
