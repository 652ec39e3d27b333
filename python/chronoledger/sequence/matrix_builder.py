"""chronos_matrix.db: the index Chronos's dashboard builds its pivot tables
("matrix") from, in the shape of Chronos's own matrix cache, from the
records a sync read.

Two kinds of rows in ``items``: the items of the types the dashboard pivots
(``ITEM_TYPES``) and every schedule block that has no children, each with
its completion's status and times when one was logged.  ``dimension_entries``
files each row under the dimensions the dashboard offers (item type, status,
priority, project, category, tag, status tag, schedule date, weekday, start
and end time and hour, actual start and end, parent block, depth, window,
parallel, buffer) and, as ``kind = 'property'``, under every other scalar
field it has; values are lower-cased, ``display`` is how the dashboard shows
them.  Where this differs from Chronos's: every day's schedule is indexed
(Chronos's skips today and later, a function of the clock), and a field whose
value is a mapping, or a list member that is one, is left out (Chronos
indexes its Python text).
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

import apsw

from chronoledger.sequence import schema
from chronoledger.sequence.derived import Derived
from chronoledger.sequence.records import Completion, UserTree
from chronoledger.sequence.values import hhmm, parse_duration, to_json, to_num

#: The item types the dashboard's matrix pivots (Chronos's list, in its order).
ITEM_TYPES = ("achievement", "appointment", "canvas_board", "commitment", "goal", "habit", "milestone", "note",
              "project", "reminder", "reward", "routine", "subroutine", "microroutine", "task")
#: The dashboard's built-in dimensions, in its order, each with how a value is shown.
DIMENSIONS = ("dataset", "item_type", "item_status", "planned_status", "priority", "project", "category",
              "status_tag", "tag", "schedule_date", "schedule_weekday", "schedule_start_time",
              "schedule_start_hour", "schedule_end_time", "schedule_end_hour", "actual_start_time",
              "actual_start_hour", "actual_end_time", "actual_end_hour", "schedule_parent", "schedule_depth",
              "schedule_window", "schedule_is_parallel", "schedule_is_buffer")
#: The dimensions filled from a row's field of the same name, in the order they are filed.
FIELD_DIMENSIONS = ("planned_status", "priority", "project", "category", "template_type", "schedule_date",
                    "schedule_weekday", "schedule_start_time", "schedule_start_hour", "schedule_end_time",
                    "schedule_end_hour", "actual_start_time", "actual_start_hour", "actual_end_time",
                    "actual_end_hour", "schedule_parent")
#: Fields filed as a dimension even when false or 0.
PRESENT_DIMENSIONS = ("schedule_depth",)
FLAG_DIMENSIONS = ("schedule_is_parallel", "schedule_is_buffer")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: The completion fields that say what the block's row already says.
_COMPLETION_SHOWN = {"name", "status", "scheduled_start", "scheduled_end", "actual_start", "actual_end", "logged_at"}


def _key(value: Any) -> str:
    return "" if value is None else str(value).strip().lower()


def _canonical(key: Any) -> str:
    return " ".join(_key(key).replace("_", " ").split())


#: Fields that are not filed again as properties: the built-in dimensions (and template_type, by its own name).
_BUILTIN = {_canonical(d) for d in DIMENSIONS} | {"template_type"}


def _title(value: Any) -> str:
    return ("" if value is None else str(value).strip()).replace("_", " ").title()


def _time(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        return "Unspecified"
    parts = text.split(":")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return f"{parts[0].zfill(2)}:{parts[1].zfill(2)}"
    return text


def _hour(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        return "Unspecified"
    text = text.split(":", 1)[0]
    return f"{text.zfill(2)}:00" if text.isdigit() else text


def _flag(value: Any) -> str:
    text = _key(value)
    if text in ("true", "1", "yes", "y", "on"):
        return "Yes"
    if text in ("false", "0", "no", "n", "off"):
        return "No"
    return _title(text)


def _display(dim: str, raw: Any) -> Any:
    """How the dashboard shows ``raw`` under ``dim``."""
    if dim == "status_tag" and ":" in str(raw):
        left, right = str(raw).split(":", 1)
        return f"{_title(left)}: {_title(right)}"
    if dim in ("schedule_start_time", "schedule_end_time", "actual_start_time", "actual_end_time"):
        return _time(raw)
    if dim.endswith("_hour"):
        return _hour(raw)
    if dim in FLAG_DIMENSIONS:
        return _flag(raw)
    if dim in ("schedule_date", "schedule_depth"):
        return raw
    if dim == "project" and isinstance(raw, str):
        return raw.title()
    return _title(raw)


def _values(value: Any) -> list[str]:
    """A field's values as the index files them: lower-cased text, a list's
    scalar members each (mappings and lists inside it are left out)."""
    if isinstance(value, list):
        return [k for k in (_key(v) for v in value if not isinstance(v, (dict, list))) if k]
    k = _key(value)
    return [k] if k else []


def _tags(data: dict) -> list[str]:
    raw = data.get("tags")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [str(v) for v in raw if v is not None and not isinstance(v, (dict, list))]
    return []


def _status_tags(data: dict, status_keys: list[str]) -> list[str]:
    """``dimension:value`` for each status the row asks for (``status_requirements``)
    or carries (a field named for a status dimension)."""
    tags = []
    req = data.get("status_requirements")
    if isinstance(req, dict):
        for k, vals in req.items():
            for v in vals if isinstance(vals, list) else [vals]:
                if _key(k) and _key(v) and not isinstance(v, (dict, list)):
                    tags.append(f"{_key(k)}:{_key(v)}")
    for k in status_keys:
        if k in data and _key(data[k]) and not isinstance(data[k], (dict, list)):
            tags.append(f"{k}:{_key(data[k])}")
    return tags


@functools.lru_cache(maxsize=1 << 16)
def _shown(dim: str, raw: str | int | float | bool) -> tuple[str, Any]:
    """(value, display) of a scalar filed under ``dim`` (the same few thousand, many times)."""
    return _key(raw), _display(dim, raw)


@functools.lru_cache(maxsize=1 << 12)
def _field(key: str) -> str | None:
    """The dimension a field is filed under as a property, or None for a built-in one."""
    canonical = _canonical(key)
    return canonical if canonical and canonical not in _BUILTIN else None


@functools.lru_cache(maxsize=1 << 16)
def _property(value: str) -> tuple[str, str]:
    return value, _title(value)


def _dimensions(source_type: str, data: dict, status_keys: list[str]) -> list[tuple[str, str, Any, str]]:
    """(dimension, value, display, kind) for one row, in the order Chronos files them."""
    out: list[tuple[str, str, Any, str]] = []

    def add(dim: str, raw: Any) -> None:
        if isinstance(raw, (str, int, float, bool)):
            value, display = _shown(dim, raw)
        else:
            value, display = _key(raw), _display(dim, raw)
        if value:
            out.append((dim, value, display, "dimension"))

    if data.get("dataset"):
        add("dataset", data["dataset"])
    add("item_type", data.get("type") or source_type)
    if data.get("status"):
        add("item_status", data["status"])
    for dim in FIELD_DIMENSIONS:
        if data.get(dim):
            add(dim, data[dim])
    for dim in PRESENT_DIMENSIONS:
        if data.get(dim) is not None:
            add(dim, data[dim])
    if data.get("schedule_window"):
        add("schedule_window", data["schedule_window"])
    for dim in FLAG_DIMENSIONS:
        if data.get(dim) is not None:
            add(dim, data[dim])
    for tag in _tags(data):
        add("tag", tag)
    for status_tag in _status_tags(data, status_keys):
        add("status_tag", status_tag)
    seen = set()
    for k, v in data.items():
        prop = _field(k if isinstance(k, str) else str(k))
        if prop is None or isinstance(v, dict):
            continue
        for value in _values(v):
            if (prop, value) not in seen:
                seen.add((prop, value))
                out.append((prop, *_property(value), "property"))
    return out


def _duration(value: Any) -> int:
    minutes = parse_duration(value)
    return int(minutes) if minutes is not None else 0


def status_keys(tree: UserTree) -> list[str]:
    """The status dimensions Settings/status_settings.yml names (``Status_Settings:
    [{Name: ...}]``), lower-cased, as the dashboard reads them."""
    s = tree.settings.get("status_settings")
    entries = s.get("status_settings") if isinstance(s, dict) else None
    return [_key(e.get("name")) for e in entries or [] if isinstance(e, dict) and _key(e.get("name"))]


def _schedule_rows(records: Derived) -> list[tuple[str, dict]]:
    """(slug, data) for every schedule block without children, days in order."""
    rows = []
    names: dict[tuple[str, str], str] = {}
    for day, path, parent, depth, b, name, btype, start, end, planned, c in records.block_rows():
        names[(day, path)] = name
        kids = b.get("children")
        if isinstance(kids, list) and kids:
            continue
        original = b.get("original_item_data")
        data: dict[str, Any] = dict(original) if isinstance(original, dict) else {}
        data.update(dataset="schedule", name=name)
        if btype and _key(btype):
            data["type"] = _key(btype)
        data.update(schedule_date=day, schedule_weekday=WEEKDAYS[date.fromisoformat(day).weekday()],
                    schedule_start_time=start, schedule_end_time=end,
                    schedule_start_hour=start[:2] if start else None, schedule_end_hour=end[:2] if end else None,
                    schedule_parent=names.get((day, parent)) if parent is not None else None,
                    schedule_depth=depth, schedule_window=b.get("window"),
                    schedule_is_parallel=bool(b.get("is_parallel_item")),
                    schedule_is_buffer=bool(b.get("is_buffer") or b.get("is_buffer_item")),
                    planned_status=b.get("status"),
                    duration=int(planned) if planned is not None else 0)
        if c is not None:
            _with_completion(data, c)
        elif data.get("planned_status"):
            data["status"] = data["planned_status"]
        slug = f"schedule:{day}:{start}:{name}" if start else f"schedule:{day}:{name}"
        rows.append((slug, data))
    return rows


def _with_completion(data: dict, c: Completion) -> None:
    """A block's row with what its completion says: the status, the actual
    times, and the entry's other fields the row does not hold yet."""
    data["status"] = c["status"]
    for which, value in (("start", c["actual_start"]), ("end", c["actual_end"])):
        t = hhmm(value)
        if t:
            data[f"actual_{which}_time"] = t
            data[f"actual_{which}_hour"] = t[:2]
    extra: dict[str, Any] = {"note": c.get("note"), "quality": c.get("quality_label") or c.get("quality"),
                             "source": c.get("origin")}
    for k, v in extra.items():
        if v is not None and k not in _COMPLETION_SHOWN:
            data.setdefault(k, v)


def fill(conn: apsw.Connection, records: Derived) -> dict[str, int]:
    """chronos_matrix.db's tables, from the records."""
    conn.execute(schema.MATRIX)
    keys = status_keys(records.tree)
    dataset: list[tuple[str, str, dict]] = []
    for it in records.tree.items:
        if it.type in ITEM_TYPES:
            data = dict(it.data)
            data.setdefault("dataset", "item")
            dataset.append((it.type, f"{it.type}:{it.name}", data))
    dataset += [("schedule", slug, data) for slug, data in _schedule_rows(records)]
    items, dims = [], []
    for i, (source_type, slug, data) in enumerate(dataset, 1):
        items.append((i, slug, str(data.get("name") or "Unnamed"), _key(data.get("type") or source_type),
                      source_type, _key(data.get("status")), _key(data.get("priority")),
                      _key(data.get("category")), _key(data.get("project")), _key(data.get("template_type")),
                      _duration(data.get("duration")), to_num(data.get("points")) or 0.0, to_json(data)))
        dims += [(i, *entry) for entry in _dimensions(source_type, data, keys)]
    conn.executemany("INSERT INTO items (id, slug, name, type, source_type, status, priority, category, project, "
                     "template_type, duration_minutes, points_value, raw_json) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", items)
    conn.executemany("INSERT INTO dimension_entries (item_id, dimension, value, display, kind) VALUES (?, ?, ?, ?, ?)",
                     dims)
    conn.execute(schema.MATRIX_INDEXES)
    return {"items": len(items), "dimension_entries": len(dims)}
