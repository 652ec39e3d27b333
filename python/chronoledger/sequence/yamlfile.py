"""One YAML file of a user folder, read into values, or the :class:`Problem`
that says why it cannot be (docs/sequence.md "How files are read").

Ordinary documents are built straight from libyaml's events (the compiled
``_yamlread``); every other document goes to PyYAML's C loader, whose value
or error message is the one reported.  Mapping keys are stripped and
lower-cased (a completions file's entry names excepted), and a document
nested past :data:`MAX_DEPTH` or larger than :data:`MAX_VALUES` once its
aliases are expanded is refused.  Whatever goes wrong in one file becomes its
Problem: nothing in a file stops a sync.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import yaml

from chronoledger.sequence.records import Problem, rel_path

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
    #: Mapping keys (lower-cased) whose values are not built at all: a legacy Chronos
    #: schedule's ``parent:`` refers back to the block that holds it.
    drop_keys: frozenset[str] = frozenset()

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


#: What a Chronos schedule's blocks hold that the mirrors leave out: the legacy
#: scheduler writes each block's ``parent`` (the block that holds it, dumped as a
#: recursive alias) and ``original_item_data`` (the whole item again), and Chronos's
#: own mirror drops ``parent`` too.
SCHEDULE_DROP_KEYS = frozenset({"parent", "original_item_data"})


class ScheduleLoader(Loader):
    """As Loader, never building the values of :data:`SCHEDULE_DROP_KEYS`, so a
    legacy schedule's recursive ``parent:`` aliases do not refuse the day."""
    drop_keys = SCHEDULE_DROP_KEYS


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
            drop = loader.drop_keys
            for key_node, value_node in node.value:
                k, _ = self._build(key_node, depth + 1)
                if isinstance(k, str):
                    if lower:
                        k = k.strip().lower()
                    if k in drop:
                        continue                     # not built: it may refer back to this very mapping
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


#: Whether a schedule's bytes may hold one of SCHEDULE_DROP_KEYS (keys are matched in any case).
_MAY_DROP = re.compile(rb"(?i)parent|original_item_data")


def drop_keys_in(value: Any, keys: frozenset[str]) -> Any:
    """``value`` with every mapping's ``keys`` removed, at any depth (in place)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k in keys & v.keys():
                del v[k]
            stack.extend(x for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            stack.extend(x for x in v if isinstance(x, (dict, list)))
    return value


def load_yaml(root: str, path: str, expect: str | None = None, keep_case: bool = False,
              drop_keys: frozenset[str] = frozenset()) -> tuple[Any, Problem | None]:
    """One file's data with keys lower-cased (``keep_case``: as written), or
    (None, the Problem).  ``expect`` is "dict", "list" or None.  The values of
    ``drop_keys`` (only :data:`SCHEDULE_DROP_KEYS` so far) are left out
    wherever they are, before they are built.  Whatever goes wrong in one
    file becomes its Problem: nothing in a file stops a sync."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        return None, Problem(rel_path(root, path), None, f"cannot be read: {exc.strerror or exc}")
    if not raw or raw.isspace():
        return None, Problem(rel_path(root, path), None, "the file is empty")
    data = _read_direct(raw, keep_case)
    if data.__class__ is _TooDeep:
        return None, _too_deep(root, path, data.line)
    if data is _MISSING:
        data, problem = _load_with_pyyaml(root, path, raw, keep_case, drop_keys)
        if problem is not None:
            return None, problem
    if drop_keys and _MAY_DROP.search(raw):
        data = drop_keys_in(data, drop_keys)
    if expect is not None and not isinstance(data, dict if expect == "dict" else list):
        return None, Problem(rel_path(root, path), 1, f"expected {'a mapping' if expect == 'dict' else 'a list'}, "
                                                  f"found {type(data).__name__}")
    return data, None


def _too_deep(root: str, path: str, line: int) -> Problem:
    return Problem(rel_path(root, path), line, f"nested more than {MAX_DEPTH} levels deep")


def _load_with_pyyaml(root: str, path: str, raw: bytes, keep_case: bool,
                      drop_keys: frozenset[str] = frozenset()) -> tuple[Any, Problem | None]:
    if drop_keys:
        if keep_case or drop_keys != SCHEDULE_DROP_KEYS:
            raise ValueError("only a schedule's keys can be dropped, and only with every key lower-cased")
        loader: Loader = ScheduleLoader(raw)
    else:
        loader = (CaseLoader if keep_case else Loader)(raw)
    try:
        line = too_deep_line(raw, MAX_DEPTH)
        if line is not None:
            return None, _too_deep(root, path, line)
        data = loader.get_single_data()
    except _ValueProblem as exc:
        mark = exc.problem_mark
        return None, Problem(rel_path(root, path), mark.line + 1 if mark is not None else None,
                             f"a value cannot be read: {exc.problem}")
    except yaml.reader.ReaderError as exc:     # bytes that are not text: no YAML is involved yet
        return None, _text_problem(rel_path(root, path), raw, exc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        return None, Problem(rel_path(root, path), mark.line + 1 if mark is not None else None, f"malformed YAML: {what}")
    except yaml.YAMLError as exc:
        return None, Problem(rel_path(root, path), None, f"malformed YAML: {exc}")
    except UnicodeDecodeError as exc:
        return None, Problem(rel_path(root, path), None, f"not UTF-8 text: {exc}")
    except RecursionError:
        return None, Problem(rel_path(root, path), None, "nested too deeply to read")
    except (ValueError, OverflowError) as exc:     # e.g. a date that does not exist (2025-02-30), a giant int
        return None, Problem(rel_path(root, path), None, f"a value cannot be read: {exc}")
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


def reads_as(text: str, value: Any) -> bool:
    """Whether ``text`` read as YAML on its own gives ``value`` (how a name
    that is not text was spelled in its file)."""
    try:
        again = yaml.load(text, Loader=_BaseLoader)
    except yaml.YAMLError:
        return False
    if isinstance(again, float) and isinstance(value, float) and math.isnan(again) and math.isnan(value):
        return True
    return type(again) is type(value) and again == value
