"""Reading a Chronos user folder: folder names matched without regard to
case, YAML read by libyaml (ordinary documents straight from its events, the
rest through PyYAML's C loader: docs/sequence.md "How files are read"), keys
lower-cased, durations in every form people write them.  Nothing here writes; every file that cannot be read
becomes a :class:`Problem` (path, line, why) and the rest is read anyway.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from chronoledger.errors import ConfigError

_logger = logging.getLogger("chronoledger.sequence")

try:
    from yaml import CSafeLoader as _BaseLoader  # the C parser: about 10x the pure-Python one
except ImportError:                              # pragma: no cover - PyYAML built without libyaml
    # mypy types a conditionally imported base class by its first import and
    # cannot take the alternative (python/mypy#1153); SafeLoader is the same
    # safe loader in pure Python, with the methods Loader uses.
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class Loader(_BaseLoader):
    """The safe loader (C parser), with mapping keys lower-cased (and
    stripped) as they are built, since keys may come in any case.

    Three things are done here rather than by PyYAML's generic machinery,
    because a user folder is tens of thousands of small files whose scalars
    repeat ("completed", "06:30", "habit"): the implicit type of a plain
    scalar is remembered per spelling instead of re-running the resolver's
    regular expressions; documents are built by one recursive walk over the
    composed nodes (strings directly; other tags through the safe
    constructor's own methods, so values come out exactly as the safe loader
    gives them); and a document that cannot hold an alias (no ``&`` in its
    bytes) and is far too small to exceed :data:`MAX_VALUES` skips the alias and
    size bookkeeping that the general walk needs."""

    _tags: dict = {}
    #: Mapping keys at this depth are kept as written (None: every key is lower-cased).
    case_depth: int | None = None

    def __init__(self, stream):
        super().__init__(stream)
        # libyaml reads UTF-16 only after a byte order mark; anything else is UTF-8, where an anchor
        # is spelled with the byte '&'.  Without an anchor there is no alias, so no shared or cyclic
        # node, and every value then takes at least a byte of its own (a character and a separator),
        # so a document of fewer than MAX_VALUES / 2 bytes stays well under the limit.
        self._plain = (isinstance(stream, bytes) and len(stream) < MAX_VALUES // 2
                       and stream[:2] not in (b"\xff\xfe", b"\xfe\xff") and b"&" not in stream)

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode:
            if implicit[0]:
                tag = self._tags.get(value)
                if tag is None:
                    tag = super().resolve(kind, value, implicit)
                    if len(self._tags) < 200_000:
                        self._tags[value] = tag
                return tag
        elif not self.yaml_path_resolvers:          # no path resolvers: a collection's tag is its kind's
            return _MAP if kind is yaml.MappingNode else _SEQ
        return super().resolve(kind, value, implicit)

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        if self._plain:
            try:
                return _plain(self, node, 0)
            except _NeedsFullWalk:        # a merge key, a '=' key or a key that is not a scalar
                pass
        return _Walk(self).build(node)


class CaseLoader(Loader):
    """As Loader, with the keys of second-level mappings kept as written: a
    completions file's ``entries:`` are keyed by ``name@HH:MM``, data rather
    than field names, while the fields around and inside them are lower-cased."""
    case_depth = 1


#: A document larger than this many values once its aliases are expanded is
#: refused: a few hundred bytes of nested aliases can otherwise stand for
#: billions of values when the item is stored as JSON.
MAX_VALUES = 1_000_000

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_COLLECTIONS = ((yaml.SequenceNode, _SEQ), (yaml.MappingNode, _MAP))
_SCALARS = frozenset("tag:yaml.org,2002:" + t for t in ("int", "float", "bool", "null", "timestamp", "binary"))
#: Key tags built as they are; any other key (a merge key ``<<``, a value key ``=``, a
#: mapping or sequence) is left to the general walk, which flattens merges as the safe loader does.
_PLAIN_KEYS = frozenset("tag:yaml.org,2002:" + t for t in ("int", "float", "bool", "null", "timestamp"))


class _NeedsFullWalk(Exception):
    pass


class _ValueProblem(yaml.constructor.ConstructorError):
    """A scalar its tag cannot hold (``!!bool maybe``, ``!!int ''``, a date
    that does not exist), with the place it is written."""


def _scalar(loader: Loader, node):
    """A scalar node's value, as the safe constructor builds it."""
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag in _SCALARS:
        # PyYAML's scalar constructors assume text their tag's pattern matched; an explicit tag on
        # other text fails inside them with KeyError, IndexError or AttributeError.
        try:
            return loader.yaml_constructors[tag](loader, node)
        except (KeyError, IndexError, AttributeError, TypeError, ValueError, OverflowError) as exc:
            why = f": {exc}" if isinstance(exc, (ValueError, OverflowError)) else ""
            raise _ValueProblem(None, None, f"{_short(node.value)} is not a valid {tag.rsplit(':', 1)[-1]}{why}",
                               node.start_mark) from None
    return loader.construct_object(node, deep=True)    # e.g. "!!seq text": refused there, as the safe loader does


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _plain(loader: Loader, node, depth: int):
    """The value of a node in a document without aliases (see Loader)."""
    cls = node.__class__
    if cls is yaml.ScalarNode:
        return node.value if node.tag == _STR else _scalar(loader, node)
    tag = node.tag
    # Strings, most of the nodes, are taken in place rather than through a call.
    if cls is yaml.SequenceNode and tag == _SEQ:
        return [n.value if n.tag == _STR and n.__class__ is yaml.ScalarNode else _plain(loader, n, depth + 1)
                for n in node.value]
    if cls is yaml.MappingNode and tag == _MAP:
        value = {}
        lower = depth != loader.case_depth
        for key_node, value_node in node.value:
            if key_node.__class__ is not yaml.ScalarNode:
                raise _NeedsFullWalk
            if key_node.tag == _STR:
                k = key_node.value.strip().lower() if lower else key_node.value
            elif key_node.tag in _PLAIN_KEYS:
                k = _scalar(loader, key_node)
            else:
                raise _NeedsFullWalk
            if value_node.tag == _STR and value_node.__class__ is yaml.ScalarNode:
                value[k] = value_node.value
            else:
                value[k] = _plain(loader, value_node, depth + 1)
        return value
    return loader.construct_object(node, deep=True)    # !!omap, !!pairs, !!set...: the safe constructor's own way


def _bind_libyaml():
    try:
        # optional: PyYAML may be built without its C extension (then every file goes to Loader)
        import yaml._yaml

        from chronoledger import _yamlread

        if _yamlread.bind(yaml._yaml.__file__):
            return _yamlread
        _logger.info("libyaml cannot be bound from PyYAML's C extension; YAML is read by PyYAML's loader")
        return None
    except Exception as exc:              # pragma: no cover - no C extension, an odd path: PyYAML's loader
        _logger.info("libyaml is not available (%s: %s); YAML is read by PyYAML's loader", type(exc).__name__, exc)
        return None


#: The direct reader of libyaml's events (src/_yamlread.pyx), or None where
#: libyaml cannot be bound; every document it declines goes to Loader.
_yamlread = _bind_libyaml()
_RESOLVER = Loader(b"")                   # PyYAML's resolver and scalar constructors, for _yamlread
_VALUES: dict = {}                        # (tag, text) -> value of an immutable scalar (int, date...)
_KEYS: dict = {}                          # key as written -> stripped and lower-cased
_MISSING = object()


@dataclass(frozen=True)
class _TooDeep:
    """_read_direct's answer for a document nested past MAX_DEPTH."""
    line: int


def _resolve_plain(text: str) -> str:
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))      # remembered in Loader._tags


def _scalar_value(tag: str, text: str, is_key: bool = False):
    """A non-string scalar, as _scalar builds it; the values are immutable,
    so one object per spelling is shared."""
    if tag not in (_PLAIN_KEYS if is_key else _SCALARS):
        raise _yamlread.NotPlain(tag)
    value = _VALUES.get((tag, text), _MISSING)
    if value is _MISSING:
        value = _RESOLVER.yaml_constructors[tag](_RESOLVER, yaml.ScalarNode(tag, text))
        if len(text) <= 64 and len(_VALUES) < 50_000:      # short, repeated spellings; bounded for the listener
            _VALUES[(tag, text)] = value
    return value


def _read_direct(raw: bytes, keep_case: bool) -> Any:
    """The document through _yamlread; _MISSING when it is left to Loader
    (see _yamlread's docstring), a _TooDeep past MAX_DEPTH."""
    if _yamlread is None or len(raw) >= MAX_VALUES // 2:     # larger: the value count must be kept (_Walk)
        return _MISSING
    try:
        return _yamlread.read(raw, CaseLoader.case_depth if keep_case else -1, MAX_DEPTH,
                              Loader._tags, _resolve_plain, _scalar_value, _KEYS)
    except _yamlread.TooDeep as exc:
        return _TooDeep(exc.line)
    except Exception:       # NotPlain, or a value PyYAML refuses: its loader gives the value or the exact error
        return _MISSING


class _Walk:
    """The Python value of a composed document: aliases share one object (as
    in PyYAML), a node that contains itself is refused (it could not be
    stored), and so is a document too large once expanded."""

    def __init__(self, loader: Loader):
        self.loader = loader
        self.memo: dict = {}                     # id(node) [, depth] -> (value, expanded size)
        self.open: set[int] = set()              # nodes being built: seeing one again is a cycle

    def build(self, node):
        value, size = self._build(node, 0)
        return value

    def _build(self, node, depth: int) -> tuple:
        loader = self.loader
        cls = node.__class__
        if cls is yaml.ScalarNode:
            return _scalar(loader, node), 1
        key = id(node)
        if key in self.open:
            raise yaml.constructor.ConstructorError(None, None, "an alias refers to a value that contains it "
                                                    "(a recursive structure)", node.start_mark)
        # where some keys keep their case, a node's value depends on its depth down to that level
        memo_key = key if loader.case_depth is None or depth > loader.case_depth else (key, depth)
        seen = self.memo.get(memo_key)
        if seen is not None:
            return seen
        value: Any
        if (cls, node.tag) not in _COLLECTIONS:     # !!omap, !!pairs, !!set...: the safe constructor's own way
            value = loader.construct_object(node, deep=True)
            return value, len(value) + 1 if hasattr(value, "__len__") else 1
        self.open.add(key)
        size = 1
        if cls is yaml.SequenceNode:
            value = []
            for n in node.value:
                v, k = self._build(n, depth + 1)
                value.append(v)
                size += k
        else:
            value = {}
            loader.flatten_mapping(node)             # YAML merge keys (<<), as the safe loader does
            lower = depth != loader.case_depth
            for key_node, value_node in node.value:
                k, _ = self._build(key_node, depth + 1)
                if isinstance(k, str):
                    if lower:
                        k = k.strip().lower()
                elif not isinstance(k, (str, int, float, bool, type(None), tuple, date, bytes)):
                    raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                            "found an unhashable key", key_node.start_mark)
                v, n = self._build(value_node, depth + 1)
                value[k] = v
                size += n
        if size > MAX_VALUES:
            raise yaml.constructor.ConstructorError(None, None, f"more than {MAX_VALUES:,} values once its "
                                                    f"aliases are expanded", node.start_mark)
        self.open.discard(key)
        self.memo[memo_key] = (value, size)
        return value, size


#: Top-level folders that hold logs and settings rather than items.
SPECIAL = {"schedules", "logs", "reviews", "settings", "data", "profile"}
_DATE_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.ya?ml$", re.I)
_ITEM_FILE = re.compile(r"^(.+)\.ya?ml$", re.I)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$", re.I)
_HMM = re.compile(r"^\s*(\d{1,3}):([0-5]\d)\s*$")


@dataclass
class Problem:
    """A file that could not be used (``skipped``), or a value in a file
    that was used without it (a warning), and why."""
    path: str                 # relative to the user folder, with / separators
    line: int | None
    reason: str
    skipped: bool = True

    def __str__(self) -> str:
        return f"{self.path}{f':{self.line}' if self.line else ''}: {self.reason}"


@dataclass
class Item:
    slug: str
    type: str
    name: str
    path: str                 # relative to the user folder
    data: dict                # the whole mapping, keys lower-cased
    mtime: float


@dataclass
class UserTree:
    """Everything read from one user folder."""
    root: Path
    items: list[Item] = field(default_factory=list)
    completions: dict[str, dict] = field(default_factory=dict)      # date -> {"name@HH:MM": entry}
    completion_files: dict[str, str] = field(default_factory=dict)  # date -> the file's relative path
    schedules: dict[str, list] = field(default_factory=dict)         # date -> blocks
    points: dict = field(default_factory=dict)
    points_file: str = "Rewards/points.yml"
    status: dict[str, list] = field(default_factory=dict)            # date -> snapshots
    narratives: dict[str, str] = field(default_factory=dict)         # date -> markdown
    reviews: list[tuple[str, str, dict]] = field(default_factory=list)   # (kind, relative path, data)
    settings: dict[str, Any] = field(default_factory=dict)           # file stem (lower) -> data
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


def find_user_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it is named User/user, else its child of that name."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{shown_name(str(p))}: no such folder (pass the user folder, or the folder that holds it)")
    if p.name.lower() == "user":
        return _utf8_path(p)
    for child in p.iterdir():
        if child.is_dir() and child.name.lower() == "user":
            return _utf8_path(child)
    raise ConfigError(f"{shown_name(str(p))}: neither it nor a folder in it is named User/ or user/")


def _utf8_path(p: Path) -> Path:
    """``p``, if its path is UTF-8: SQLite opens files by UTF-8 names only, so
    mirrors cannot be written, nor a command recorded, under any other."""
    if not utf8_name(str(p.absolute())):
        raise ConfigError(f"{shown_name(str(p))}: the folder's path is not UTF-8, and SQLite opens files only by "
                          f"UTF-8 names; rename the folder (or the one above it that is not UTF-8)")
    return p


def child(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` named ``name`` in any case, or None."""
    if not folder.is_dir():
        return None
    want = name.lower()
    for entry in os.scandir(folder):
        if entry.name.lower() == want:
            return Path(entry.path)
    return None


def parse_duration(value: Any) -> float | None:
    """Minutes from "00:05" / "02:00" (h:mm), "90d", "24h", "45m" or a bare
    number of minutes; None when the value says nothing we can read."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if 0 <= value < math.inf else None      # .inf and NaN say nothing either
    if not isinstance(value, str):
        return None
    m = _HMM.match(value)
    if m:
        return float(int(m.group(1)) * 60 + int(m.group(2)))
    m = _DURATION.match(value)
    if m:
        return float(m.group(1)) * {"d": 1440, "h": 60, "m": 1}[m.group(2).lower()]
    try:
        n = float(value)
    except ValueError:
        return None
    return n if 0 <= n < math.inf else None


def minutes_of(t: str | None) -> int | None:
    """Minutes after midnight of an "HH:MM" time; None for none."""
    if not t:
        return None
    h, m = t.split(":")
    return int(h) * 60 + int(m)


def singular(folder: str) -> str:
    """The item type a plural folder name implies (Inventory_Items -> inventory_item)."""
    f = folder.lower()
    for plural, single in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("xes", "x")):
        if f.endswith(plural):
            return f[: -len(plural)] + single
    return f[:-1] if f.endswith("s") and not f.endswith("ss") else f


def load_yaml(root: str, path: str, expect: str | None = None, keep_case: bool = False) -> tuple[Any, Problem | None]:
    """One file's data with keys lower-cased (``keep_case``: as written), or
    (None, the Problem).  ``expect`` is "dict", "list" or None.  Whatever
    goes wrong in one file becomes its Problem: nothing in a file stops a sync."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        return None, Problem(_rel(root, path), None, f"cannot be read: {exc.strerror or exc}")
    if not raw or raw.isspace():
        return None, Problem(_rel(root, path), None, "the file is empty")
    data = _read_direct(raw, keep_case)
    if data.__class__ is _TooDeep:
        return None, _too_deep(root, path, data.line)
    if data is _MISSING:
        data, problem = _load_with_pyyaml(root, path, raw, keep_case)
        if problem is not None:
            return None, problem
    if expect is not None and not isinstance(data, dict if expect == "dict" else list):
        return None, Problem(_rel(root, path), 1, f"expected {'a mapping' if expect == 'dict' else 'a list'}, "
                                                  f"found {type(data).__name__}")
    return data, None


def _too_deep(root: str, path: str, line: int) -> Problem:
    return Problem(_rel(root, path), line, f"nested more than {MAX_DEPTH} levels deep")


def _load_with_pyyaml(root: str, path: str, raw: bytes, keep_case: bool) -> tuple[Any, Problem | None]:
    loader = (CaseLoader if keep_case else Loader)(raw)
    try:
        line = too_deep_line(raw, MAX_DEPTH)
        if line is not None:
            return None, _too_deep(root, path, line)
        data = loader.get_single_data()
    except _ValueProblem as exc:
        mark = exc.problem_mark
        return None, Problem(_rel(root, path), mark.line + 1 if mark is not None else None,
                             f"a value cannot be read: {exc.problem}")
    except yaml.reader.ReaderError as exc:     # bytes that are not text: no YAML is involved yet
        return None, _text_problem(_rel(root, path), raw, exc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        return None, Problem(_rel(root, path), mark.line + 1 if mark is not None else None, f"malformed YAML: {what}")
    except yaml.YAMLError as exc:
        return None, Problem(_rel(root, path), None, f"malformed YAML: {exc}")
    except UnicodeDecodeError as exc:
        return None, Problem(_rel(root, path), None, f"not UTF-8 text: {exc}")
    except RecursionError:
        return None, Problem(_rel(root, path), None, "nested too deeply to read")
    except (ValueError, OverflowError) as exc:     # e.g. a date that does not exist (2025-02-30), a giant int
        return None, Problem(_rel(root, path), None, f"a value cannot be read: {exc}")
    finally:
        loader.dispose()
    return data, None


#: The characters YAML 1.1 does not allow in a stream (its "printable" set, section 5.1).
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text_problem(rel: str, raw: bytes, exc: yaml.reader.ReaderError) -> Problem:
    """Why libyaml refused a file's bytes, on one line with the line and the
    byte where it happened: not UTF-8, or a character YAML does not allow
    (a control character)."""
    if raw[:2] not in (b"\xff\xfe", b"\xfe\xff"):        # UTF-16 only after a byte order mark
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return Problem(rel, raw.count(b"\n", 0, bad.start) + 1, f"not UTF-8 text at byte {bad.start}")
        m = _NOT_PRINTABLE.search(text)
        if m is not None:
            at = len(text[:m.start()].encode("utf-8"))
            return Problem(rel, text.count("\n", 0, m.start()) + 1,
                           f"character U+{ord(m.group()[0]):04X} at byte {at}: YAML allows no control characters")
    return Problem(rel, None, f"not readable as text: {exc.reason} (at {exc.position})")


#: Deeper documents are refused before they are built: PyYAML's C composer
#: recurses once per level and overflows the C stack (the process dies) a few
#: tens of thousands of levels down, which a 50 KB file can reach.
MAX_DEPTH = 500


def too_deep_line(raw: bytes, limit: int) -> int | None:
    """The 1-based line of the first collection in ``raw`` that nests more
    than ``limit`` deep, or None when none does (or the YAML is malformed
    before that depth: the loader reports that).

    Every level needs an indicator of its own: ``[`` or ``{`` (which may
    carry an implicit single-pair mapping too, hence twice), or a block
    ``-``, ``?`` or ``:``.  A document with fewer of these bytes cannot be
    deeper, and that count, five byte scans, settles almost every file.  The
    rest (long files: a points ledger) are measured on libyaml's event
    stream, whose parser keeps its own stack and cannot overflow.

    Our limit is decided here, not by whichever libyaml PyYAML bundles: the
    libyaml in PyYAML 6.0.4 refuses flow collections past its own nesting
    limit while its scanner looks up to 1,024 characters ahead, before the
    parser has handed over our 501st level, and words that refusal its own
    way.  So a document the C parser refuses is measured again by PyYAML's
    pure-Python parser (the same grammar; no nesting limit), and a refusal
    of either parser only means "not deeper than ``limit`` as far as it
    could be read"."""
    bound = 2 * (raw.count(b"[") + raw.count(b"{")) + raw.count(b"-") + raw.count(b"?") + raw.count(b":") + 1
    if bound <= limit:
        return None
    try:
        return _too_deep_in(yaml.parse(raw, Loader=_BaseLoader), limit)
    except yaml.YAMLError:
        if _BaseLoader is yaml.SafeLoader:
            return None
    try:
        return _too_deep_in(yaml.parse(raw, Loader=yaml.SafeLoader), limit)
    except yaml.YAMLError:
        return None


def _too_deep_in(events, limit: int) -> int | None:
    depth = 0
    for event in events:
        cls = event.__class__
        if cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
            depth += 1
            if depth > limit:
                return event.start_mark.line + 1
        elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
            depth -= 1
    return None


def _rel(root: str, path: str) -> str:
    """``path`` relative to ``root``, with / separators (os.path.relpath is slow, and paths here are
    always under the root they were found in)."""
    if path.startswith(root) and path[len(root):len(root) + 1] in (os.sep, "/"):
        path = path[len(root) + 1:]
    else:
        path = os.path.relpath(path, root)
    return path.replace(os.sep, "/")


def load_many(root: Path, tasks: list[tuple[str, str | None, bool]]) -> list:
    """load_yaml over many files, in order.  (Worker processes were tried: on
    two cores the copying of results and copy-on-write of the parent's heap
    cost more than they saved.)"""
    r = str(root)
    return [load_yaml(r, path, expect, keep_case) for path, expect, keep_case in tasks]


def utf8_name(name: str) -> bool:
    """Whether a file name read from the OS is UTF-8.  One that is not comes
    with its bytes as lone surrogates (``os.fsdecode``), which no UTF-8 text
    (a database, databases.yml, the terminal) can hold."""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def shown_name(name: str) -> str:
    """A file name as text that can be shown and stored: bytes that are not
    UTF-8 as \\xNN (``caf\\xe9.yml``)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _scan(folder: Path, pattern: re.Pattern, odd: list[str] | None = None) -> list[tuple[str, re.Match]]:
    """The files of ``folder`` whose names match ``pattern``, sorted by name.
    Those whose names are not UTF-8 are left out and, with ``odd``, their
    paths appended to it."""
    out = []
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        m = pattern.match(e.name)
        if m and e.is_file():
            if utf8_name(e.name):
                out.append((e.path, m))
            elif odd is not None:
                odd.append(e.path)
    return out


def read_user_folder(path: str | os.PathLike[str]) -> UserTree:
    """Read every item, log and setting of the user folder at (or in) ``path``."""
    root = find_user_folder(path)
    tree = UserTree(root=root)
    tasks: list[tuple[str, str | None, bool]] = []
    plan: list[tuple[str, Any]] = []          # what each task is for, in task order

    def add(p: str, expect: str | None, what: str, key: Any) -> None:
        tasks.append((p, expect, what == "completions"))     # entry keys are item names: keep their case
        plan.append((what, key))

    def scan(folder: Path | None, pattern: re.Pattern) -> list[tuple[str, re.Match]]:
        """A folder's files, or none and a Problem: one unreadable folder (permissions, a file where
        a folder belongs) skips what it holds, never the sync."""
        if folder is None:
            return []
        odd: list[str] = []
        try:
            found = _scan(folder, pattern, odd)
        except OSError as exc:
            tree.problems.append(Problem(_rel(str(root), str(folder)), None,
                                         f"cannot be read: {exc.strerror or exc}; what it holds is skipped"))
            return []
        for fpath in odd:                     # no text can hold the name: skipped, like an unreadable file
            tree.problems.append(Problem(shown_name(_rel(str(root), fpath)), None,
                                         "the file name is not UTF-8; rename the file to read it"))
        tree.files += len(odd)
        return found

    def sub(folder: Path | None, name: str) -> Path | None:
        if folder is None:
            return None
        try:
            return child(folder, name)
        except OSError as exc:
            tree.problems.append(Problem(_rel(str(root), str(folder)), None,
                                         f"cannot be read: {exc.strerror or exc}; what it holds is skipped"))
            return None

    for entry in sorted(os.scandir(root), key=lambda e: (e.name.lower(), e.name)):     # a stable order, in any case
        if not entry.is_dir() or entry.name.lower() in SPECIAL:
            continue
        if not utf8_name(entry.name):
            tree.problems.append(Problem(shown_name(entry.name), None, "the folder name is not UTF-8; what it "
                                                                       "holds is skipped (rename it to read it)"))
            continue
        lname = entry.name.lower()
        for fpath, m in scan(Path(entry.path), _ITEM_FILE):
            if lname == "rewards" and m.group(1).lower() == "points":
                continue                      # the points ledger, not a reward
            add(fpath, "dict", "item", (m.group(1), singular(entry.name)))
    schedules = sub(root, "schedules")
    for fpath, m in scan(schedules, _DATE_FILE):
        add(fpath, "list", "schedule", m.group(1))
    for fpath, m in scan(sub(schedules, "completions"), _DATE_FILE):
        add(fpath, "dict", "completions", m.group(1))
    points = sub(sub(root, "rewards"), "points.yml")
    if points is not None:
        add(str(points), "dict", "points", None)
    for fpath, m in scan(sub(sub(root, "logs"), "status"), _DATE_FILE):
        add(fpath, "list", "status", m.group(1))
    reviews = sub(root, "reviews")
    for kind in ("daily", "weekly", "monthly"):
        for fpath, _ in scan(sub(reviews, kind), _ITEM_FILE):
            add(fpath, "dict", "review", kind)
    for fpath, m in scan(sub(root, "settings"), _ITEM_FILE):
        add(fpath, None, "setting", m.group(1).lower())

    results = load_many(root, tasks)
    tree.files += len(tasks)
    seen_items: dict[tuple[str, str], str] = {}
    for (fpath, _, _), (what, key), (data, problem) in zip(tasks, plan, results):
        if problem is not None:
            tree.problems.append(problem)
            continue
        rel = _rel(str(root), fpath)
        if what in ("schedule", "completions", "status") and not valid_date(key):
            tree.problems.append(Problem(rel, None, f"{key} is not a date; the file is skipped"))
            continue
        if what == "item":
            name, why = _item_name(data.get("name"), fpath)
            if name is None:
                tree.problems.append(Problem(rel, why[0], why[1]))
                continue
            itype = data.get("type")
            itype = itype.strip().lower() if isinstance(itype, str) and itype.strip() else key[1]
            ident = (itype, key[0].lower())
            if ident in seen_items:
                tree.problems.append(Problem(rel, None, f"another file already holds the {itype} {key[0]!r} "
                                                        f"({seen_items[ident]}); this one is skipped"))
                continue
            seen_items[ident] = rel
            try:
                mtime = os.stat(fpath).st_mtime
            except OSError:
                mtime = 0.0
            tree.items.append(Item(slug=key[0], type=itype, name=name, path=rel, data=data, mtime=mtime))
        elif what == "schedule":
            tree.schedules[key] = data
        elif what == "completions":
            entries = data.get("entries") or {}       # CaseLoader: top-level fields lower-cased, entry keys as written
            if not isinstance(entries, dict):
                tree.problems.append(Problem(rel, None, "entries: expected a mapping"))
            else:
                tree.completions[key] = entries
                tree.completion_files[key] = rel
        elif what == "points":
            tree.points = data
            tree.points_file = rel
        elif what == "status":
            tree.status[key] = data
        elif what == "review":
            tree.reviews.append((key, rel, data))
        else:
            tree.settings[key] = data
    for fpath, m in scan(sub(sub(root, "logs"), "narratives"), re.compile(r"^(\d{4}-\d{2}-\d{2})\.md$", re.I)):
        try:
            tree.narratives[m.group(1)] = Path(fpath).read_text(encoding="utf-8")
        except OSError as exc:              # the reason only: the message must not carry an absolute path
            tree.problems.append(Problem(_rel(str(root), fpath), None, f"cannot be read: {exc.strerror or exc}"))
        except UnicodeDecodeError as exc:
            tree.problems.append(Problem(_rel(str(root), fpath), None, f"not UTF-8 text: {exc.reason} at byte "
                                                                      f"{exc.start}"))
    return tree


_NAME_LINE = re.compile(rb"^[\"']?name[\"']?[ \t]*:[ \t]*([^#\r\n]*)", re.I | re.M)


def _item_name(value: Any, path: str) -> tuple[str | None, tuple[int | None, str]]:
    """An item's name as text, or (None, (line, why)).  YAML reads an
    unquoted ``name: 1984`` as a number and ``name: 2025-01-01`` as a date:
    those are names as written.  ``name: yes`` (also no, on, off, true,
    false) reads as a boolean, which cannot say which word was meant: the
    file is skipped and the message says to quote it."""
    if isinstance(value, str):
        return (value.strip(), (None, "")) if value.strip() else (None, (1, "the item has no name"))
    if value is None:
        return None, (1, "the item has no name")
    line, written = _name_as_written(path)
    if isinstance(value, bool):
        said = f"{written} " if written else ""
        return None, (line, f"the name {said}reads as the boolean {str(value).lower()} (so do yes, no, on, off, "
                            f"true and false); quote it: name: \"{written or 'Yes'}\"")
    if isinstance(value, (int, float, date)):
        # the spelling in the file (007, 3.10, 2025-01-01T10:00:00) when it reads as this very value
        if written and _reads_as(written, value):
            return written, (None, "")
        return str(value), (None, "")
    return None, (line, f"the name is a {'mapping' if isinstance(value, dict) else type(value).__name__}, not text")


def _name_as_written(path: str) -> tuple[int | None, str]:
    """The line of a file's top-level ``name:`` and the text after it (rare: only for names that are not text)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None, ""
    m = _NAME_LINE.search(raw)
    if m is None:
        return None, ""
    return raw.count(b"\n", 0, m.start()) + 1, m.group(1).strip().decode("utf-8", "replace")


def _reads_as(text: str, value: Any) -> bool:
    try:
        again = yaml.load(text, Loader=_BaseLoader)
    except yaml.YAMLError:
        return False
    if isinstance(again, float) and isinstance(value, float) and math.isnan(again) and math.isnan(value):
        return True
    return type(again) is type(value) and again == value


#: load_yaml's ``expect`` for the types Reader.load takes.
_EXPECT: dict[type, str] = {dict: "dict", list: "list"}


class Reader:
    """Reads single YAML files of a tree, keeping the problems (the listener's settings)."""

    def __init__(self, tree: UserTree):
        self.tree = tree

    def load(self, path: Path, expect: type | None = None) -> Any:
        data, problem = load_yaml(str(self.tree.root), str(path), _EXPECT.get(expect) if expect else None)
        if problem is not None:
            self.tree.problems.append(problem)
        return data


def valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False
