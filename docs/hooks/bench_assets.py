"""MkDocs hook: serve the committed benchmark plots beside the benchmark pages.

The benchmark pages include ``bench/results/<name>.md`` verbatim (include-markdown), so their
image links stay relative (``regmix_learning_curve.png``). This hook adds every
``bench/results/*.png`` to the site as ``benchmarks/<name>.png``, the folder of those pages,
so the links resolve in the built site without copying the plots into ``docs/``.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
PAGES = "benchmarks"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the plots as generated files; a plot of the same name in docs/ would be a mistake."""
    for plot in sorted(RESULTS.glob("*.png")):
        uri = f"{PAGES}/{plot.name}"
        if files.get_file_from_path(uri) is not None:
            raise ValueError(f"docs/{uri} shadows bench/results/{plot.name}; delete the copy")
        files.append(File.generated(config, uri, abs_src_path=str(plot)))
    return files
