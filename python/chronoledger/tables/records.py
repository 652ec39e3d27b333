"""Records read from the files people have: CSV, JSON, JSON lines, YAML and
Parquet, each record a mapping with the place it came from (``line 12`` of a
CSV or JSON-lines file, ``item 3`` of a JSON or YAML list, ``row 7`` of a
Parquet file), so that inference and ingest can name it.

A file that cannot be read as its kind is a CorruptDataError naming the file
and the line (or item) where reading stopped; a missing file is a
NotFoundError.  Nothing here writes.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chronoledger._arrow import parquet_modules
from chronoledger.errors import CorruptDataError, NotFoundError, StorageError

#: File suffix -> kind.
KINDS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".yaml": "yaml",
         ".yml": "yaml", ".parquet": "parquet"}

_Loader: type[yaml.SafeLoader | yaml.CSafeLoader]
try:
    from yaml import CSafeLoader as _Loader      # the C parser
except ImportError:                              # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader


@dataclass(frozen=True)
class Record:
    """One record of a file: where it is, and its values by the file's own keys.
    ``text``: the values are text as the file spelled them (CSV, TSV), to be
    read as the field's type; else they are the file's own JSON/YAML/Arrow values."""
    where: str
    values: dict[str, Any]
    text: bool = False
    #: the file's columns in order where it has a header (CSV, TSV): what names the fields, even where
    #: a record leaves a column empty
    columns: tuple[str, ...] = ()


def kind_of(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    kind = KINDS.get(p.suffix.lower())
    if kind is None:
        raise CorruptDataError(f"{p}: cannot tell what kind of file this is from its name (known: "
                               f"{', '.join(sorted(KINDS))})")
    return kind


def read_records(path: str | os.PathLike[str]) -> Iterator[Record]:
    """The records of ``path``, in order."""
    p = Path(path)
    kind = kind_of(p)
    if not p.is_file():
        raise NotFoundError(f"{p}: no such file")
    try:
        if kind in ("csv", "tsv"):
            yield from _delimited(p, "\t" if kind == "tsv" else ",")
        elif kind == "jsonl":
            yield from _json_lines(p)
        elif kind == "json":
            yield from _listed(p, _load_json(p))
        elif kind == "yaml":
            yield from _listed(p, _load_yaml(p))
        else:
            yield from _parquet(p)
    except OSError as exc:
        raise StorageError(f"{p}: cannot be read: {exc.strerror or exc}") from None


def _delimited(p: Path, delimiter: str) -> Iterator[Record]:
    with open(p, newline="", encoding="utf-8-sig") as f:
        # strict: a quote left open or text after a closing quote is an error, not a cell swallowing lines
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        start = 0                                    # the line the last record ended on
        try:
            header = next(reader, None)
            if header is None:
                return
            if len(set(header)) != len(header):
                dup = sorted({h for h in header if header.count(h) > 1})
                raise CorruptDataError(f"{p}: line 1: the header names {', '.join(map(repr, dup))} more than once")
            columns = tuple(header)
            start = reader.line_num
            for cells in reader:
                where = f"line {start + 1}" if start + 1 == reader.line_num else f"lines {start + 1}-{reader.line_num}"
                start = reader.line_num
                if not cells:
                    continue                         # a blank line
                if len(cells) != len(header):
                    raise CorruptDataError(f"{p}: {where}: {len(cells)} values for {len(header)} columns")
                # an empty cell is no value (CSV cannot tell an empty text from a missing one)
                yield Record(where, {h: c for h, c in zip(header, cells) if c != ""}, text=True, columns=columns)
        except csv.Error as exc:
            first = start + 1
            at = f"line {reader.line_num}" if first >= reader.line_num else f"lines {first}-{reader.line_num}"
            raise CorruptDataError(f"{p}: {at}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise CorruptDataError(f"{p}: not UTF-8 text (byte {exc.start} of a read block)") from None


def _json_lines(p: Path) -> Iterator[Record]:
    with open(p, encoding="utf-8-sig") as f:
        try:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CorruptDataError(f"{p}: line {n}, column {exc.colno}: not JSON: {exc.msg}") from None
                if not isinstance(value, dict):
                    raise CorruptDataError(f"{p}: line {n}: a record is a JSON object, found {_kind(value)}")
                yield Record(f"line {n}", value)
        except UnicodeDecodeError as exc:
            raise CorruptDataError(f"{p}: not UTF-8 text (byte {exc.start} of a read block)") from None


def _load_json(p: Path) -> Any:
    try:
        data = p.read_bytes()
        return json.loads(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    except json.JSONDecodeError as exc:
        raise CorruptDataError(f"{p}: line {exc.lineno}, column {exc.colno}: not JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise CorruptDataError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise CorruptDataError(f"{p}: nested too deeply to read") from None


def _load_yaml(p: Path) -> Any:
    try:
        return yaml.load(p.read_bytes(), Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise CorruptDataError(f"{p}: {at}not YAML: {exc.problem}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise CorruptDataError(f"{p}: not YAML: {exc}") from None


def _listed(p: Path, doc: Any) -> Iterator[Record]:
    """A list of objects, or an object holding exactly one such list (``{"rows": [...]}``)."""
    if isinstance(doc, dict):
        lists = [k for k, v in doc.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise CorruptDataError(f"{p}: expected a list of records, or an object with one list of them; found "
                                   f"an object with {len(lists)} lists")
        doc = doc[lists[0]]
    if not isinstance(doc, list):
        raise CorruptDataError(f"{p}: expected a list of records, found {_kind(doc)}")
    for i, value in enumerate(doc, start=1):
        if not isinstance(value, dict):
            raise CorruptDataError(f"{p}: item {i}: a record is a mapping, found {_kind(value)}")
        yield Record(f"item {i}", {str(k): v for k, v in value.items()})


def _parquet(p: Path) -> Iterator[Record]:
    pa, pq = parquet_modules("reading Parquet")
    try:
        f = pq.ParquetFile(p)
        names = list(f.schema_arrow.names)
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise CorruptDataError(f"{p}: the columns {', '.join(map(repr, dup))} are named more than once")
        n = 0
        for batch in f.iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                n += 1
                yield Record(f"row {n}", row)
    except CorruptDataError:
        raise
    # pyarrow's errors for a file it cannot read (the file itself was found above: its OSError is the content)
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise CorruptDataError(f"{p}: not a Parquet file pyarrow can read: {exc}") from None


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true or false", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__)
