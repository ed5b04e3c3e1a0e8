"""Blended objectives: a weighted sum of evaluation-set losses.

``val=0.5,task=0.5`` weighs two groups (the mean over validation domains, the mean over
end-task sets); ``code=1,arc_easy=2`` (or ``loss:code=1``) weighs sets explicitly; a glob
term (``'*arc*'=0.5``) and a named family of globs (``qa='*arc*,*piqa*'=0.6``) split their
weight equally over the sets they match; ``@objective.toml`` reads the terms from a file. The
styles can be mixed. Each set is predicted separately, then combined, so one surrogate per
set serves every objective.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .errors import MixsurrogateError
from .runs.builtin import schedule_kinds
from .runs.log import LOSS_PREFIX

GROUPS = ("val", "task")
GLOB_CHARS = frozenset("*?[")
#: names an error lists before it says "... and N more"
SHOWN_NAMES = 10


def is_glob(text: str) -> bool:
    return any(c in GLOB_CHARS for c in text)


def name_list(names: Sequence[str], limit: int = SHOWN_NAMES, label: str = "valid") -> str:
    """``valid: a, b`` or, past ``limit`` names, ``valid (110): a, b, ... and 100 more``."""
    names = list(names)
    count = f" ({len(names)})" if len(names) > limit else ""
    return f"{label}{count}: {cut_names(names, limit)}"


def glob_example(names: Sequence[str], option: str = "-t") -> str:
    """``use a glob such as -t 'arc_*'``, the glob made from a real name."""
    if not names:
        return ""
    stems = [str(n)[: str(n).index("_") + 1] for n in names if "_" in str(n)]
    # the prefix most names share (ties: the first), else the first name's first letters
    stem = max(stems, key=stems.count) if stems else str(names[0])[:3]
    if option == "--objective":
        return f"use a glob term such as --objective \"'{stem}*'=1\""
    return f"use a glob such as {option} '{stem}*'"


def unknown_name_error(
    what: str,
    name: str,
    valid: Sequence[str],
    option: str = "-t",
    extra: Sequence[str] = (),
    prefix: str = "",
) -> MixsurrogateError:
    """One line for an unknown name: the valid names (cut when long), the close matches and,
    for long lists, a glob to try. ``extra`` names (e.g. val, task) are listed first."""
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    parts = [f"{prefix}unknown {what} {name!r}{hint}", name_list([*extra, *valid])]
    if len(extra) + len(valid) > SHOWN_NAMES:
        parts.append(glob_example(valid, option))
    return MixsurrogateError("; ".join(p for p in parts if p))


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside single or double quotes (the quotes are kept)."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quote:
        raise MixsurrogateError(f"objective {text!r}: a {quote} quote is not closed")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _unquote(text: str) -> tuple[str, bool]:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1], True
    return text, False


def match_names(patterns: Sequence[str], names: Sequence[str]) -> list[str]:
    """The names (in ``names`` order, once each) equal to a pattern or matching its glob
    (case-sensitive)."""
    return [n for n in names if any(n == p or fnmatch.fnmatchcase(n, p) for p in patterns)]


def expand_names(
    specs, names: list[str], what: str = "evaluation set", option: str = "-t", prefix: str = ""
):
    """``-t 'arc_*,piqa' -t hellaswag``: each value a comma list of names and globs, matched
    against ``names`` (globs case-sensitive, in ``names`` order); each name once, in the order
    first given. One clear line for a name or glob that matches nothing."""
    chosen: list[str] = []
    for spec in specs:
        for part in split_top_level(spec):
            part = part.strip().strip("'\"").removeprefix(LOSS_PREFIX)
            if not part:
                continue
            if is_glob(part):
                found = match_names([part], names)
                if not found:
                    raise MixsurrogateError(
                        f"{option} {part!r} matches no {what}; {name_list(names)}"
                    )
            elif part in names:
                found = [part]
            else:
                raise unknown_name_error(what, part, names, option, prefix=prefix)
            chosen += [n for n in found if n not in chosen]
    return chosen


@dataclass(frozen=True)
class Term:
    """One objective term: a group (val/task), a set, a glob, or a named family of globs."""

    text: str
    kind: str  # "group" | "set" | "glob" | "family"
    name: str
    patterns: tuple[str, ...]
    weight: float


def _weight(text: str, value: str, has_value: bool) -> float:
    try:
        amount = float(value) if has_value else 1.0
    except ValueError as err:
        raise MixsurrogateError(f"objective term {text!r}: {value!r} is not a number") from err
    if amount < 0 or not np.isfinite(amount):
        raise MixsurrogateError(f"objective term {text!r}: weights must be finite and >= 0")
    return amount


def parse_term(text: str) -> Term:
    """``code=1``, ``loss:code``, ``val=0.5``, ``'*arc*'=0.5``, ``arc_*=0.5``,
    ``qa='*arc*,*piqa*'=0.6`` or ``qa=*arc*=0.6`` (a family of one glob)."""
    if text[0] in "'\"":  # a quoted glob (or set name), then =WEIGHT
        end = text.find(text[0], 1)
        pattern, rest = text[1:end], text[end + 1 :].strip()
        if rest and not rest.startswith("="):
            raise MixsurrogateError(f"objective term {text!r}: expected '=WEIGHT' after the quotes")
        patterns = tuple(p.strip() for p in pattern.split(",") if p.strip())
        weight = _weight(text, rest[1:].strip(), bool(rest))
        if not patterns:
            raise MixsurrogateError(f"objective term {text!r}: the quotes hold no pattern")
        return Term(text, "glob", pattern, patterns, weight)
    name, sep, value = text.partition("=")
    name = name.strip().removeprefix(LOSS_PREFIX)
    value = value.strip()
    quoted = value[:1] in ("'", '"')
    if quoted or "=" in value:  # NAME='PAT,PAT'=WEIGHT or NAME=PAT=WEIGHT
        if quoted:
            end = value.find(value[0], 1)
            inner, rest = value[1:end], value[end + 1 :].strip()
            if rest and not rest.startswith("="):
                raise MixsurrogateError(
                    f"objective term {text!r}: expected '=WEIGHT' after the quoted patterns"
                )
            weight = _weight(text, rest[1:].strip(), bool(rest))
        else:
            inner, _, weight_text = value.partition("=")
            weight = _weight(text, weight_text.strip(), True)
        patterns = tuple(p.strip() for p in inner.split(",") if p.strip())
        if not name or not patterns:
            raise MixsurrogateError(
                f"objective term {text!r}: a family reads NAME='PATTERN,PATTERN'=WEIGHT"
            )
        return Term(text, "family", name, patterns, weight)
    weight = _weight(text, value, bool(sep))
    if name in GROUPS:
        return Term(text, "group", name, (name,), weight)
    return Term(text, "glob" if is_glob(name) else "set", name, (name,), weight)


def parse_terms(spec: str) -> list[Term]:
    """A spec's terms (commas inside quotes do not split), or a file's (``@FILE``)."""
    spec = spec.strip()
    if spec.startswith("@"):
        return read_objective_file(spec[1:])
    return [parse_term(part) for part in split_top_level(spec)]


def yaml_problem(err: Exception) -> str:
    """PyYAML's error in one line: what is wrong and where (its own text quotes the offending
    lines with a caret under them, eight lines for one mistake)."""
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if not problem:
        return " ".join(str(err).split())
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def read_objective_file(path: str) -> list[Term]:
    """An objective file (TOML, or YAML when it ends .yaml/.yml)::

    [sets]                 # set names, globs and groups -> weight
    pile_cc = 0.2
    "*arc*" = 0.2

    [families.code]        # a family: its weight split over the sets its patterns match
    patterns = ["*humaneval*", "*mbpp*"]
    weight = 0.4
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise MixsurrogateError(f"objective file {path!r} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise MixsurrogateError(f"objective file {path}: not UTF-8 text ({err.reason})") from err
    if file.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise MixsurrogateError(
                f"objective file {path}: not valid YAML ({yaml_problem(err)})"
            ) from err
    else:
        import tomllib  # here: standard library from Python 3.11 only (the package takes 3.10)

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise MixsurrogateError(f"objective file {path}: not valid TOML ({err})") from err
    if not isinstance(data, dict):
        raise MixsurrogateError(
            f"objective file {path}: expected tables [sets] and [families.NAME]"
        )
    unknown = [k for k in data if k not in ("sets", "families")]
    if unknown:
        raise MixsurrogateError(
            f"objective file {path}: unknown key {unknown[0]!r}; it holds [sets] and [families.NAME]"
        )
    terms: list[Term] = []
    sets = data.get("sets", {}) or {}
    families = data.get("families", {}) or {}
    if not isinstance(sets, dict) or not isinstance(families, dict):
        raise MixsurrogateError(f"objective file {path}: [sets] and [families] must be tables")
    for name, weight in sets.items():
        text = f"{name}={weight}"
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise MixsurrogateError(
                f"objective file {path}: sets.{name} = {weight!r} is not a number"
            )
        term = parse_term(f"'{name}'={weight}") if is_glob(name) else parse_term(text)
        terms.append(term)
    for name, body in families.items():
        where = f"objective file {path}: families.{name}"
        if not isinstance(body, dict) or "patterns" not in body:
            raise MixsurrogateError(f'{where} needs patterns = ["GLOB", ...] (and weight)')
        extra = [k for k in body if k not in ("patterns", "weight")]
        if extra:
            raise MixsurrogateError(f"{where}: unknown key {extra[0]!r} (patterns, weight)")
        patterns = body["patterns"]
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if (
            not isinstance(patterns, list)
            or not patterns
            or not all(isinstance(p, str) and p.strip() for p in patterns)
        ):
            raise MixsurrogateError(f"{where}: patterns must be a non-empty list of strings")
        weight = body.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise MixsurrogateError(f"{where}: weight {weight!r} is not a number")
        text = f"{name}='{','.join(patterns)}'={weight}"
        terms.append(
            Term(text, "family", str(name), tuple(p.strip() for p in patterns),
                 _weight(text, str(weight), True))
        )  # fmt: skip
    if not terms:
        raise MixsurrogateError(f"objective file {path}: no [sets] or [families.NAME] term")
    return terms


def missing_kinds_error(group: str, unknown: Sequence[str], n_sets: int) -> MixsurrogateError:
    """One line for a val/task objective term over sets whose kinds nobody gave (any imported
    log): which sets those are, and the exact --kinds or --objective to type instead."""
    unknown = list(unknown)
    example = f"--kinds val={','.join(unknown[:2])}" + (
        f" --kinds task={unknown[2]}" if len(unknown) > 2 else ""
    )
    return MixsurrogateError(
        f"objective group {group!r} needs every set's kind (val or task), and {len(unknown)} of "
        f"the {n_sets} sets have none ({cut_names(unknown)}): name them with --kinds (names or "
        f"globs), e.g. --kinds val='*' (all validation sets) or {example}; or weigh sets "
        f"directly, e.g. --objective {unknown[0]}=1 or --objective \"'*'=1\" (every set); or "
        "pass --scores (a score store knows the kinds)"
    )


def parse_kinds(specs: Sequence[str], sets: Sequence[str]) -> dict[str, str]:
    """``--kinds val=code,books --kinds task='arc_*'`` -> {set: kind}: names and globs as for
    ``-t`` (``expand_names``), each matching some set; a set given two kinds is an error."""
    kinds: dict[str, str] = {}
    for text in specs:
        kind, sep, names = text.partition("=")
        kind = kind.strip()
        if not sep or kind not in GROUPS:
            raise MixsurrogateError(f"--kinds {text!r}: give val=SET,SET or task=SET,SET")
        option = f"--kinds {kind}="
        for name in expand_names([names], list(sets), "set", option, "--kinds names "):
            if kinds.get(name, kind) != kind:
                raise MixsurrogateError(
                    f"--kinds gives {name!r} two kinds (val and task): make the names and "
                    "globs of --kinds val= and --kinds task= match different sets"
                )
            kinds[name] = kind
    return kinds


@dataclass(frozen=True)
class Objective:
    """Non-negative weights over evaluation sets (they need not sum to 1)."""

    weights: dict[str, float]
    spec: str = ""
    kinds_source: str = ""  # where the val/task kinds of a group term came from (for output)
    #: the sets each glob or family term matched (term text -> sets), for output
    matched: dict[str, list[str]] = field(default_factory=dict)

    @property
    def sets(self) -> list[str]:
        return [s for s, a in self.weights.items() if a != 0]

    @classmethod
    def parse(
        cls,
        spec: str,
        sets: Sequence[str],
        kinds: Mapping[str, str] | None = None,
        kinds_source: str = "",
    ) -> Objective:
        """Parse a spec (or ``@FILE``) against the known sets; ``kinds`` maps set -> 'val' |
        'task'.

        A group term (``val``, ``task``) needs every set's kind from somewhere explicit (a
        score store, ``--kinds``, a built-in log's metadata): guessing would silently count
        end-task sets as validation sets. ``kinds_source`` says where they came from. A glob
        or family term splits its weight equally over the sets it matches; one that matches
        none is an error, and so is each pattern of a family that matches none.
        """
        kinds = dict(kinds or {})
        sets = list(sets)
        weights: dict[str, float] = {}
        matched: dict[str, list[str]] = {}
        terms = parse_terms(spec)
        for term in terms:
            if term.kind == "group":
                name = term.name
                unknown = [s for s in sets if s not in kinds]
                if unknown:
                    raise missing_kinds_error(name, unknown, len(sets))
                members = [s for s in sets if kinds[s] == name]
                if not members:
                    raise MixsurrogateError(
                        f"objective group {name!r} has no evaluation sets"
                        + ("; pass --scores so end-task sets are known" if name == "task" else "")
                    )
            elif term.kind == "set":
                if term.name not in sets:
                    raise unknown_name_error(
                        "set", term.name, sets, "--objective", GROUPS, "objective names "
                    )
                members = [term.name]
            else:
                for p in term.patterns:
                    if not match_names([p], sets):
                        what = (
                            f"objective family {term.name!r}: pattern {p!r}"
                            if term.kind == "family"
                            else f"objective glob {p!r}"
                        )
                        raise MixsurrogateError(
                            f"{what} matches no evaluation set; {name_list(sets)}"
                        )
                members = match_names(term.patterns, sets)
                matched[term.text] = members
            for s in members:
                weights[s] = weights.get(s, 0.0) + term.weight / len(members)
        if not weights or sum(weights.values()) == 0:
            raise MixsurrogateError(f"objective {spec!r} gives no set a positive weight")
        uses_groups = any(t.kind == "group" for t in terms)
        return cls(weights, spec, kinds_source if uses_groups else "", matched)

    def describe_matches(self) -> list[str]:
        """``'*arc*'=0.5 -> arc_easy, arc_challenge (0.25 each)`` per glob or family term."""
        return [f"{text} -> {cut_names(sets)}" for text, sets in self.matched.items()]

    def vector(self, sets: Sequence[str]) -> np.ndarray:
        """The weights in the order of ``sets`` (0 for sets the objective does not use)."""
        return np.array([self.weights.get(s, 0.0) for s in sets])

    def combine(self, losses: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """Objective values from per-set losses (rows x sets)."""
        return np.atleast_2d(losses) @ self.vector(sets)

    def combine_std(self, stds: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """Objective std from per-set stds, treating the sets' errors as independent."""
        return np.sqrt((np.atleast_2d(stds) ** 2) @ (self.vector(sets) ** 2))


def cut_names(names: Sequence[str], limit: int = SHOWN_NAMES) -> str:
    """``a, b, c`` or, past ``limit`` names, ``a, b, ... and 100 more`` (for error lines)."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, ... and {len(names) - limit} more"


def resolve_kinds(
    kind_specs: Sequence[str], log_spec: str | None, sets: list[str], store
) -> tuple[dict[str, str] | None, str]:
    """Each set's kind and where it came from: --kinds, then the score store, then a built-in
    log's metadata (RegMix's sets are all validation sets); None when nothing says."""
    if kind_specs:
        return parse_kinds(kind_specs, sets), "--kinds"
    if store is not None:
        return store.kinds, "the score store"
    if log_spec and log_spec.startswith("regmix:"):
        return dict.fromkeys(sets, "val"), "RegMix's log (every set is a validation set)"
    if log_spec and log_spec.startswith("schedules:"):
        return schedule_kinds(list(sets)), "the schedule logs' corpus manifest (its task sets)"
    return None, ""
