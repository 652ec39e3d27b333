"""Chronos and chronoledger side by side in one user folder, and Chronos's
own readers' SQL run on our mirrors.

Chronos (Jeetski/Chronos_Engine) writes ``user/data`` itself: every item save
upserts into its chronos_core.db and rewrites its databases.yml, and its
``sequence sync`` rebuilds its mirrors there under the same file names as
ours.  Our mirrors live in ``user/data/chronoledger/`` (docs/sequence.md,
"Chronos and chronoledger in one folder").  The SQL below is Chronos's,
quoted from upstream as test data (the path of each statement is given),
and run as Chronos runs it, with Python's sqlite3.
"""

import json
import os
import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pytest
import yaml

from chronoledger.sequence import metastudy, schema
from chronoledger.sequence.reader import child
from chronoledger.sequence.recorder import record_command
from chronoledger.sequence.registry import REGISTRY, chronos_data_folder, mirror_folder
from chronoledger.sequence.sync import status, sync

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "User"
#: Where every statement below was read.
UPSTREAM = "Jeetski/Chronos_Engine@9d815f562f369b9d44fcdc34a6063d91bd41786a"

# --- Chronos's SQL, quoted from upstream ---------------------------------------------------

# commands/today.py, _kairos_blocks_to_legacy_schedule: Kairos blocks' item ids to slugs
TODAY_IDS = "SELECT id, slug FROM items WHERE id IN ({placeholders})"
# commands/today.py, _kairos_blocks_to_legacy_schedule: the walk up the relations, frontier by frontier
TODAY_PARENTS = """
                            SELECT parent_slug, child_slug
                            FROM relations
                            WHERE child_slug IN ({placeholders})
                            """
# commands/today.py, _kairos_blocks_to_legacy_schedule: container ancestors missing from the run
TODAY_ANCESTORS = """
                                SELECT slug, name, type, status, raw_json
                                FROM items
                                WHERE slug IN ({placeholders})
                                """
# modules/scheduler/kairos.py, the backlog Kairos gathers (chronos_core.db)
KAIROS_BACKLOG = """
                SELECT * FROM items
                WHERE type IN ('subroutine','microroutine','task','habit')
                AND (status IS NULL OR lower(status) NOT IN ('completed','done','archived','cancelled','skipped'))
                """
# modules/scheduler/kairos.py, the commitments Kairos gathers (chronos_core.db)
KAIROS_COMMITMENTS = "SELECT * FROM items WHERE type = 'commitment'"
# modules/scheduler/kairos.py, trend inputs (chronos_behavior.db)
KAIROS_TRENDS = """
                SELECT item_slug, item_type, name, status, variance_minutes
                FROM activity_facts
                """
# modules/sequence/trends_builder.py, what Chronos's trends build reads from chronos_behavior.db
TRENDS_TOTAL = "SELECT COUNT(*) FROM activity_facts"
TRENDS_COMPLETED = "SELECT COUNT(*) FROM activity_facts WHERE LOWER(status) = 'completed'"
TRENDS_IN_PROGRESS = "SELECT COUNT(*) FROM activity_facts WHERE LOWER(status) = 'in_progress'"
TRENDS_AVG_VARIANCE = "SELECT COALESCE(AVG(variance_minutes), 0) FROM activity_facts"
TRENDS_QUALITY = """
            SELECT completion_quality, completion_json
            FROM activity_facts
            WHERE completion_quality IS NOT NULL OR completion_json IS NOT NULL
            """
TRENDS_VARIANCE = """
            SELECT variance_minutes
            FROM activity_facts
            WHERE variance_minutes IS NOT NULL
            """
# modules/sequence/trends_builder.py, _behavior_has_completion_columns
TRENDS_COLUMNS = "PRAGMA table_info(activity_facts)"
# utilities/dashboard/server.py, GET /api/trends/metrics (chronos_trends.db)
DASHBOARD_METRICS = """
                    SELECT metric, value, unit, extra_json
                    FROM metrics
                    ORDER BY generated_at DESC
                    LIMIT 100
                """
# utilities/dashboard_matrix.py, _db_metadata (chronos_matrix.db)
MATRIX_DIMENSIONS = "SELECT DISTINCT dimension, kind FROM dimension_entries"
MATRIX_PROPERTY_VALUES = """
                SELECT value
                FROM dimension_entries
                WHERE dimension = ?
                GROUP BY value
                ORDER BY value
                LIMIT ?
                """
MATRIX_TYPES = "SELECT DISTINCT type FROM items WHERE type IS NOT NULL ORDER BY type"
MATRIX_TEMPLATE_TYPES = """
                SELECT value
                FROM dimension_entries
                WHERE dimension = 'template_type'
                GROUP BY value
                ORDER BY value
                """
# utilities/dashboard_matrix.py, _compute_matrix_from_db: the SQL it generates for rows [item_type],
# columns [item_status] and the filter {dataset: item} (its select list, joins and GROUP BY, as assembled)
MATRIX_PIVOT = f"""
        SELECT rd0.value AS rd0_value, rd0.display AS rd0_display, cd1.value AS cd1_value, cd1.display AS cd1_display, \
GROUP_CONCAT(DISTINCT items.name, '\x1f') AS item_names, COUNT(DISTINCT items.id) AS metric_count, \
COALESCE(SUM(items.duration_minutes), 0) AS metric_duration, COALESCE(SUM(items.points_value), 0) AS metric_points
        FROM items
        {'''
                JOIN dimension_entries rd0
                  ON rd0.item_id = items.id AND rd0.dimension = ?
                '''} {'''
                JOIN dimension_entries cd1
                  ON cd1.item_id = items.id AND cd1.dimension = ?
                '''} {'''
                JOIN dimension_entries flt2
                  ON flt2.item_id = items.id AND flt2.dimension = ? AND flt2.value = ?
                '''}
        \n        GROUP BY rd0.value, rd0.display, cd1.value, cd1.display
    """
MATRIX_PIVOT_PARAMS = ("item_type", "item_status", "dataset", "item")

# modules/sequence/core_builder.py, _create_schema: the core mirror Chronos builds on its first item save
CHRONOS_CORE_SCHEMA = """
        DROP TABLE IF EXISTS items;
        DROP TABLE IF EXISTS relations;
        DROP TABLE IF EXISTS completions;
        DROP TABLE IF EXISTS schedules;

        CREATE TABLE items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            slug TEXT UNIQUE,
            name TEXT,
            type TEXT,
            category TEXT,
            status TEXT,
            priority TEXT,
            due_date TEXT,
            duration_minutes INTEGER,
            points_value REAL,
            tags TEXT,
            path TEXT,
            relative_path TEXT,
            created_at TEXT,
            updated_at TEXT,
            raw_json TEXT
        );
        CREATE INDEX idx_items_type ON items(type);
        CREATE INDEX idx_items_status ON items(status);

        CREATE TABLE relations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            parent_id INTEGER,
            child_id INTEGER,
            parent_slug TEXT,
            child_slug TEXT,
            child_name TEXT,
            child_type TEXT,
            relation_type TEXT,
            order_index INTEGER,
            FOREIGN KEY(parent_id) REFERENCES items(id) ON DELETE CASCADE,
            FOREIGN KEY(child_id) REFERENCES items(id) ON DELETE SET NULL
        );
        CREATE INDEX idx_rel_parent ON relations(parent_slug);

        CREATE TABLE completions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            block_key TEXT,
            source_date TEXT,
            name TEXT,
            item_slug TEXT,
            item_type TEXT,
            status TEXT,
            quality TEXT,
            scheduled_start TEXT,
            scheduled_end TEXT,
            actual_start TEXT,
            actual_end TEXT,
            logged_at TEXT,
            note TEXT,
            raw_json TEXT
        );
        CREATE INDEX idx_completions_date ON completions(source_date);
        CREATE INDEX idx_completions_slug ON completions(item_slug);

        CREATE TABLE schedules (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            schedule_date TEXT,
            name TEXT,
            type TEXT,
            item_slug TEXT,
            item_type TEXT,
            parent_slug TEXT,
            block_key TEXT,
            start_time TEXT,
            end_time TEXT,
            duration_minutes INTEGER,
            status TEXT,
            importance_score REAL,
            is_parallel INTEGER,
            depth INTEGER,
            order_index INTEGER,
            raw_json TEXT
        );
        CREATE INDEX idx_schedules_date ON schedules(schedule_date);
        CREATE INDEX idx_schedules_slug ON schedules(item_slug);
        """
# modules/sequence/core_builder.py, _ensure_incremental_schema: run by upsert_item_in_core_db on every item save
CHRONOS_INCREMENTAL_SCHEMA = CHRONOS_CORE_SCHEMA.split("CREATE TABLE items", 1)[1]
CHRONOS_INCREMENTAL_SCHEMA = ("CREATE TABLE IF NOT EXISTS items" + CHRONOS_INCREMENTAL_SCHEMA) \
    .replace("CREATE TABLE relations", "CREATE TABLE IF NOT EXISTS relations") \
    .replace("CREATE TABLE completions", "CREATE TABLE IF NOT EXISTS completions") \
    .replace("CREATE TABLE schedules", "CREATE TABLE IF NOT EXISTS schedules") \
    .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ")
# modules/sequence/core_builder.py, _insert_items and upsert_item_in_core_db (an item not mirrored yet)
CHRONOS_INSERT_ITEM = """
                INSERT INTO items (
                    slug, name, type, category, status, priority, due_date,
                    duration_minutes, points_value, tags, path, relative_path,
                    created_at, updated_at, raw_json
                )
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
# modules/sequence/core_builder.py, upsert_item_in_core_db and _refresh_relations_for_record, in order
CHRONOS_FIND_ITEM = "SELECT id, created_at FROM items WHERE slug = ?"
CHRONOS_UPDATE_ITEM = """
                UPDATE items
                SET name = ?, type = ?, category = ?, status = ?, priority = ?,
                    due_date = ?, duration_minutes = ?, points_value = ?, tags = ?,
                    path = ?, relative_path = ?, created_at = ?, updated_at = ?, raw_json = ?
                WHERE slug = ?
                """
CHRONOS_DELETE_RELATIONS = "DELETE FROM relations WHERE parent_slug = ?"
CHRONOS_CHILD_ID = "SELECT id FROM items WHERE slug = ?"
CHRONOS_INSERT_RELATION = """
            INSERT INTO relations (
                parent_id, child_id, parent_slug, child_slug,
                child_name, child_type, relation_type, order_index
            )
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """
CHRONOS_COUNT_ITEMS = "SELECT COUNT(*) AS c FROM items"

# --- a Chronos user folder: the shipped example, with a day in Chronos's own formats -------

DAY = "2026-01-05"          # a Monday
COMPAT_ITEMS = {
    ("routines", "compat_morning"): {"name": "Compat Morning", "type": "routine", "status": "active",
                                     "children": [{"name": "Compat Wake Up", "type": "subroutine"},
                                                  {"name": "Compat Journal", "type": "task"}]},
    ("subroutines", "compat_wake_up"): {"name": "Compat Wake Up", "type": "subroutine",
                                        "children": [{"name": "Compat Stretch", "type": "habit"}]},
    ("habits", "compat_stretch"): {"name": "Compat Stretch", "type": "habit", "polarity": "good",
                                   "current_streak": 4, "longest_streak": 9},
    ("tasks", "compat_journal"): {"name": "Compat Journal", "type": "task", "status": "pending", "duration": 30},
    ("tasks", "compat_late_night"): {"name": "Compat Late Night", "type": "task", "status": "pending"},
}
#: schedules/schedule_DAY.yml as Chronos's scheduler writes it (times as datetimes, children nested)
SCHEDULE = f"""\
- name: Compat Morning
  type: routine
  start_time: {DAY} 07:00:00
  end_time: {DAY} 08:00:00
  duration: 60
  status: pending
  children:
  - name: Compat Wake Up
    type: subroutine
    start_time: {DAY} 07:00:00
    end_time: {DAY} 07:30:00
    duration: 30
    children:
    - name: Compat Stretch
      type: habit
      start_time: {DAY} 07:00:00
      end_time: {DAY} 07:10:00
      duration: 10
  - name: Compat Journal
    type: task
    start_time: {DAY} 07:30:00
    end_time: {DAY} 08:00:00
    duration: 30
- name: Compat Late Night
  type: task
  start_time: {DAY} 23:30:00
  end_time: 2026-01-06 00:30:00
  duration: 60
"""
#: schedules/completions/DAY.yml as Chronos's did / complete write it (the second entry keyed
#: "note": `did` files an entry under its last property's name)
COMPLETIONS = """\
entries:
  Compat Stretch@07:00:
    actual_end: 07:20
    actual_start: 07:12
    logged_at: '2026-01-05T07:20:00'
    name: Compat Stretch
    quality: Good
    scheduled_end: 07:10
    scheduled_start: 07:00
    status: completed
  note:
    actual_end: 07:50
    actual_start: 07:31
    logged_at: '2026-01-05T07:50:00'
    name: Compat Journal
    note: stopped early
    scheduled_end: 08:00
    scheduled_start: 07:30
    status: partial
  Compat Late Night@23:30:
    name: Compat Late Night
    status: completed
    scheduled_start: '23:30'
    scheduled_end: 00:30
    actual_start: 00:10
    actual_end: 01:00
    logged_at: '2026-01-06T01:00:00'
"""


def _sub(user: Path, name: str) -> Path:
    return child(user, name) or user / name


@pytest.fixture
def home(tmp_path) -> Path:
    """A Chronos home (the folder holding ``user/``): the shipped example
    folder as ``user/``, lower-case as Chronos has it, plus one day logged in
    Chronos's own formats."""
    user = tmp_path / "Chronos" / "user"
    shutil.copytree(EXAMPLES, user, ignore=shutil.ignore_patterns("Data", "data"))
    for (folder, stem), data in COMPAT_ITEMS.items():
        d = _sub(user, folder)
        d.mkdir(exist_ok=True)
        (d / f"{stem}.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    sched = _sub(user, "schedules")
    (sched / "completions").mkdir(parents=True, exist_ok=True)
    (sched / f"schedule_{DAY}.yml").write_text(SCHEDULE)
    (_sub(sched, "completions") / f"{DAY}.yml").write_text(COMPLETIONS)
    return tmp_path / "Chronos"


def _ro(path: Path) -> sqlite3.Connection:
    """The database as Chronos opens it (Python's sqlite3), read-only so the test cannot change it."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _completion_properties(user: Path, upto: str) -> tuple[dict[str, int], dict[str, int]]:
    """Chronos's trends rule on every completions entry logged up to ``upto``
    (modules/sequence/trends_builder.py, ``_collect_completion_property_stats``):
    the entries per quality as written, and per field outside its nine own."""
    own = {"name", "status", "scheduled_start", "scheduled_end", "actual_start", "actual_end", "logged_at", "note",
           "quality"}
    labels: dict[str, int] = {}
    custom: dict[str, int] = {}
    for f in sorted((_sub(_sub(user, "schedules"), "completions")).glob("*.yml")):
        if f.stem > upto:
            continue
        for entry in (yaml.safe_load(f.read_text()) or {}).get("entries", {}).values():
            if not isinstance(entry, dict):
                continue
            if entry.get("quality"):
                labels[str(entry["quality"])] = labels.get(str(entry["quality"]), 0) + 1
            for key in entry.keys() - own:
                custom[key] = custom.get(key, 0) + 1
    return labels, custom


def _item_files(user: Path) -> list[dict]:
    """Every item of the folder as Chronos's core build reads it: the YAML
    mappings with a name in the folders that hold items (its type from
    ``type:``, else from the folder)."""
    not_items = {"archive", "backups", "data", "examples", "exports", "logs", "media", "profile", "reviews",
                 "schedules", "scripts", "settings", "ideas", "temp", "timers", "docs", "plugins"}
    out = []
    for folder in sorted(p for p in user.iterdir() if p.is_dir() and p.name.lower() not in not_items):
        for f in sorted(folder.glob("*.yml")):
            if folder.name.lower() == "rewards" and f.stem.lower() == "points":
                continue
            data = yaml.safe_load(f.read_text())
            if isinstance(data, dict):
                data = {str(k).lower(): v for k, v in data.items()}
                if isinstance(data.get("name"), str) and data["name"].strip():
                    t = data.get("type") or folder.name.lower().rstrip("s")
                    out.append({**data, "type": str(t).strip().lower()})
    return out


# --- where each tool writes ---------------------------------------------------------------

def test_our_mirrors_live_in_data_chronoledger_and_a_lowercase_user_gets_lowercase_data(tmp_path):
    lower = tmp_path / "a" / "user"
    (lower / "tasks").mkdir(parents=True)
    (lower / "tasks" / "t.yml").write_text("name: T\ntype: task\n")
    report = sync(lower)
    assert report.data == lower / "data" / "chronoledger" == mirror_folder(lower)
    assert sorted(p.name for p in (lower / "data").iterdir()) == ["chronoledger"]   # nothing of ours beside Chronos's
    assert {p.name for p in report.data.iterdir()} >= {*schema.FILES.values(), REGISTRY, "tendencies.md"}
    upper = tmp_path / "b" / "User"
    (upper / "Tasks").mkdir(parents=True)
    (upper / "Tasks" / "t.yml").write_text("name: T\ntype: task\n")
    assert sync(upper).data == upper / "Data" / "chronoledger"
    odd = tmp_path / "c" / "User"
    (odd / "DATA").mkdir(parents=True)                      # an existing data folder, in any case, is the one
    assert chronos_data_folder(odd) == odd / "DATA" and mirror_folder(odd) == odd / "DATA" / "chronoledger"


def _chronos_item_row(user: Path, it: dict) -> tuple:
    """The values Chronos's core build binds to CHRONOS_INSERT_ITEM for an item (the few it needs here)."""
    slug = f"{it['type']}::{str(it['name']).strip().lower()}"
    path = str(user / f"{slug}.yml")
    points = it.get("points")
    return (slug, it["name"], it["type"], str(it.get("category")), str(it.get("status")), str(it.get("priority")),
            str(it.get("due_date")), 0, float(points) if isinstance(points, (int, float)) else 0.0,
            json.dumps(it.get("tags") or [], default=str), path,
            os.path.relpath(path, user.parent), "2026-01-01T00:00:00", "2026-01-01T00:00:00",
            json.dumps(it, default=str))


def _chronos_saves_an_item(user: Path, item: dict) -> None:
    """What Chronos does on ``write_item_data`` (modules/item_manager.py): with no
    core mirror yet, the full build (its schema and an INSERT per item), then the
    upsert of the item and its relations; and its registry rewritten whole
    (modules/sequence/registry.py: yaml.safe_dump, keys sorted, absolute paths)."""
    data = user / "data"
    data.mkdir(exist_ok=True)
    core = data / "chronos_core.db"
    conn = sqlite3.connect(core)
    conn.row_factory = sqlite3.Row
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'items'").fetchall():
        conn.executescript(CHRONOS_CORE_SCHEMA)
        for it in _item_files(user):
            try:
                conn.execute(CHRONOS_INSERT_ITEM, _chronos_item_row(user, it))
            except sqlite3.IntegrityError:       # Chronos's #2 for a repeated slug; not needed here
                pass
    conn.executescript(CHRONOS_INCREMENTAL_SCHEMA)
    row = _chronos_item_row(user, item)
    slug = row[0]
    existing = conn.execute(CHRONOS_FIND_ITEM, (slug,)).fetchone()
    if existing:
        conn.execute(CHRONOS_UPDATE_ITEM, (*row[1:], slug))
        parent_id = existing["id"]
    else:
        parent_id = conn.execute(CHRONOS_INSERT_ITEM, row).lastrowid
    conn.execute(CHRONOS_DELETE_RELATIONS, (slug,))
    for i, c in enumerate(item.get("children") or []):
        child_slug = f"{c['type']}::{c['name'].lower()}"
        found = conn.execute(CHRONOS_CHILD_ID, (child_slug,)).fetchone()
        conn.execute(CHRONOS_INSERT_RELATION, (parent_id, found["id"] if found else None, slug, child_slug,
                                               c["name"], c["type"], "children", i))
    count = conn.execute(CHRONOS_COUNT_ITEMS).fetchone()["c"]
    conn.commit()
    conn.close()
    reg = {"databases": {key: {"description": f"{key} mirror", "filename": f"chronos_{key}.db", "key": key,
                               "last_attempt": None, "last_sync": "2026-01-05T08:00:00", "name": key.title(),
                               "notes": "", "path": str(data / f"chronos_{key}.db"),
                               "records": count if key == "core" else 0,
                               "status": "ready" if key == "core" else "pending", "type": "sqlite", "version": 1}
                         for key in ("matrix", "core", "events", "behavior", "journal", "trends")},
           "generated_at": "2026-01-05T08:00:00", "version": 1}
    (data / REGISTRY).write_text(yaml.safe_dump(reg, sort_keys=True))


def test_chronos_item_saves_and_our_syncs_leave_each_other_alone(home):
    user = home / "user"
    first = sync(home)
    ours = first.data
    before_items = _ro(ours / "chronos_core.db").execute("SELECT COUNT(*) FROM items").fetchone()[0]
    assert before_items == first.items > 200

    journal = COMPAT_ITEMS[("tasks", "compat_journal")]
    _chronos_saves_an_item(user, {**journal, "status": "completed"})      # Chronos's first save: its full build
    _chronos_saves_an_item(user, COMPAT_ITEMS[("routines", "compat_morning")])
    theirs = {name: (user / "data" / name).read_bytes() for name in ("chronos_core.db", REGISTRY)}
    chronos_core = _ro(user / "data" / "chronos_core.db")
    assert chronos_core.execute("SELECT status FROM items WHERE slug = 'task::compat journal'").fetchone()[0] \
        == "completed"
    assert chronos_core.execute("SELECT COUNT(*) FROM relations WHERE parent_slug = 'routine::compat morning'") \
        .fetchone()[0] == 2
    chronos_core.close()

    second = sync(home)                                 # ours again: Chronos's files untouched
    assert second.data == ours
    for name, content in theirs.items():
        assert (user / "data" / name).read_bytes() == content, name
    assert _ro(ours / "chronos_core.db").execute("SELECT COUNT(*) FROM items").fetchone()[0] == before_items
    assert {p.name for p in (user / "data").iterdir()} == {"chronoledger", "chronos_core.db", REGISTRY}

    _chronos_saves_an_item(user, {**journal, "status": "pending"})       # and Chronos's next save still works
    assert _ro(user / "data" / "chronos_core.db").execute(
        "SELECT status FROM items WHERE slug = 'task::compat journal'").fetchone()[0] == "pending"

    # each tool's databases.yml holds its own keys, and neither an anchor
    our_text = (ours / REGISTRY).read_text()
    their_text = (user / "data" / REGISTRY).read_text()
    for text in (our_text, their_text):
        assert "&id" not in text and "*id" not in text
    our_reg, their_reg = yaml.safe_load(our_text), yaml.safe_load(their_text)
    assert set(our_reg["databases"]) == set(schema.DATABASES)
    for entry in our_reg["databases"].values():
        assert entry["status"] == "ok" and not {"filename", "path", "records", "type"} & set(entry)
    assert set(their_reg["databases"]) == {"matrix", "core", "events", "behavior", "journal", "trends"}
    for entry in their_reg["databases"].values():
        assert not {"file", "schema_version", "counts", "source"} & set(entry)
    assert all(e["yaml_changed_since"] is False for e in status(home)["databases"].values())


#: What an older chronoledger wrote into data/ itself.
OLDER = ("chronos_core.db", "chronos_events.db", "chronos_events.cmeta", "chronos_memory.db", "chronos_trends.db",
         "tendencies.md", "tendencies.json", REGISTRY)
#: modules/sequence/behavior_builder.py, _create_schema; modules/sequence/events_builder.py: Chronos's own tables
CHRONOS_BEHAVIOR_SCHEMA = """
        DROP TABLE IF EXISTS activity_facts;

        CREATE TABLE activity_facts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            schedule_date TEXT,
            block_key TEXT,
            name TEXT,
            item_slug TEXT,
            item_type TEXT,
            planned_start TEXT,
            planned_end TEXT,
            actual_start TEXT,
            actual_end TEXT,
            planned_minutes INTEGER,
            importance_score REAL,
            status TEXT,
            depth INTEGER,
            order_index INTEGER,
            variance_minutes INTEGER,
            completion_quality TEXT,
            completion_json TEXT
        );
        CREATE INDEX idx_activity_date ON activity_facts(schedule_date);
        """
CHRONOS_EVENTS_TABLE = """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT,
            event_type TEXT,
            message TEXT,
            payload_json TEXT
        );
"""


def _older_layout(user: Path) -> Path:
    """The folder as an older chronoledger left it after a sync: its files in
    data/ itself, its registry merged into Chronos's, beside Chronos's own
    behaviour mirror and Chronos's events database it set aside as unreadable."""
    new = mirror_folder(user)
    data = new.parent
    our_reg = yaml.safe_load((new / REGISTRY).read_text())
    for name in OLDER:
        os.replace(new / name, data / name)
    shutil.rmtree(new)                   # what this version adds (behaviour, matrix, the lock) was not there
    (data / ".sequence.lock").write_bytes(b"")
    merged = {"databases": {k: {**e, "filename": f"chronos_{k}.db", "path": str(data / f"chronos_{k}.db"),
                                "type": "sqlite", "version": 1, "records": 3, "notes": "no such column: parent_slug"}
                            for k, e in our_reg["databases"].items() if k in ("core", "events", "trends")},
              "generated_at": "2026-01-05T08:00:00", "version": 1, "skipped_files": [], "warnings": [],
              "user_folder": "."}
    merged["databases"]["memory"] = our_reg["databases"]["memory"]          # an entry only chronoledger made
    merged["databases"]["journal"] = {"filename": "chronos_journal.db", "type": "sqlite", "status": "ready"}
    (data / REGISTRY).write_text(yaml.safe_dump(merged))
    behavior = sqlite3.connect(data / "chronos_behavior.db")
    behavior.executescript(CHRONOS_BEHAVIOR_SCHEMA)
    behavior.close()
    events = sqlite3.connect(data / "chronos_events.db.unreadable-20260101T000000")
    events.executescript(CHRONOS_EVENTS_TABLE)
    events.execute("INSERT INTO events (timestamp, event_type, message) VALUES ('2026-01-01T00:00:00', 'x', 'y')")
    events.commit()
    events.close()
    return data


def test_what_an_older_chronoledger_wrote_into_data_moves_and_chronos_files_stay(home):
    user = home / "user"
    sync(home)
    record_command(user, "status", ["status"], 0.01, "ok")          # history only the events database holds
    data = _older_layout(user)
    aside = data / "chronos_events.db.unreadable-20260101T000000"
    kept = {"behavior": (data / "chronos_behavior.db").read_bytes(), "events": aside.read_bytes()}

    report = sync(home)
    new = report.data
    assert new == mirror_folder(user) and set(OLDER) <= {p.name for p in new.iterdir()}
    assert (data / "chronos_behavior.db").read_bytes() == kept["behavior"]              # Chronos's: left alone
    assert (data / "chronos_events.db").read_bytes() == kept["events"] and not aside.exists()   # put back
    assert sorted(p.name for p in data.iterdir()) == ["chronoledger", "chronos_behavior.db", "chronos_events.db",
                                                      REGISTRY]
    runs = _ro(new / "chronos_events.db").execute("SELECT command FROM command_runs ORDER BY id").fetchall()
    assert [r[0] for r in runs] == ["status"]                          # the history came along
    cleaned = yaml.safe_load((data / REGISTRY).read_text())
    assert set(cleaned) == {"databases", "generated_at", "version"}
    assert set(cleaned["databases"]) == {"core", "events", "trends", "journal"}
    for entry in cleaned["databases"].values():
        assert not {"file", "schema_version", "counts", "source", "error"} & set(entry)
    assert cleaned["databases"]["core"]["notes"] == "no such column: parent_slug"      # Chronos's keys kept
    assert yaml.safe_load((new / REGISTRY).read_text())["databases"]["core"]["status"] == "ok"


def test_an_older_chronoledgers_data_beside_chronos_data_is_emptied_into_ours(tmp_path):
    user = tmp_path / "user"
    (user / "tasks").mkdir(parents=True)
    (user / "tasks" / "t.yml").write_text("name: T\ntype: task\n")
    sync(user)
    new = mirror_folder(user)
    old = user / "Data"
    if old.exists():
        pytest.skip("a file system that does not tell Data from data")
    old.mkdir()                         # an older chronoledger made Data/ where Chronos makes data/
    for name in OLDER:
        os.replace(new / name, old / name)
    report = sync(user)
    assert report.data == new and not old.exists()
    assert (new / "chronos_core.db").exists() and (new / "tendencies.md").exists()


# --- Chronos's readers on our mirrors -------------------------------------------------------

def _walk_up(conn: sqlite3.Connection, start: list[str]) -> list[tuple[str, str]]:
    """The relation edges ``today`` collects walking up from ``start``, frontier by frontier."""
    edges, seen, frontier = [], set(), set(start)
    while frontier:
        current = sorted(frontier - seen)
        if not current:
            break
        seen.update(current)
        rows = conn.execute(TODAY_PARENTS.format(placeholders=",".join("?" * len(current))), current).fetchall()
        frontier = set()
        for parent, kid in rows:
            if parent and kid:
                edges.append((parent, kid))
                if parent not in seen:
                    frontier.add(parent)
    return edges


def test_todays_relation_walk_and_type_name_slugs_run_on_our_core(home):
    report = sync(home)
    conn = _ro(report.data / "chronos_core.db")
    items = _item_files(home / "user")
    # every children reference in the folder, as Chronos names both ends
    containers = ("routine", "subroutine", "microroutine")
    expected = {(f"{it['type']}::{it['name'].strip().lower()}", f"{c['type']}::{c['name'].strip().lower()}")
                for it in items if it["type"] in containers
                for c in it.get("children") or [] if isinstance(c, dict) and c.get("type")}
    got = {(p.split("#")[0], c.split("#")[0]) for p, c in conn.execute(
        "SELECT r.parent_slug, r.child_slug FROM relations r JOIN items i ON i.id = r.parent_id "
        "WHERE r.relation_type = 'children' AND r.child_type IS NOT NULL AND i.type IN (?, ?, ?)", containers)}
    assert got == expected and len(expected) > 10
    edges = _walk_up(conn, ["habit::compat stretch"])
    assert set(edges) == {("subroutine::compat wake up", "habit::compat stretch"),
                          ("routine::compat morning", "subroutine::compat wake up")}
    rows = conn.execute(TODAY_ANCESTORS.format(placeholders="?,?"),
                        ["routine::compat morning", "subroutine::compat wake up"]).fetchall()
    assert sorted((r["slug"], r["name"], r["type"], r["status"]) for r in rows) == [
        ("routine::compat morning", "Compat Morning", "routine", "active"),
        ("subroutine::compat wake up", "Compat Wake Up", "subroutine", None)]
    assert json.loads(rows[0]["raw_json"])["name"] in ("Compat Morning", "Compat Wake Up")
    # every item answers to its type::name slug, and an id to the same slug
    kinds = ("habit", "goal", "task", "routine", "subroutine", "microroutine", "commitment", "milestone")
    slugs = {f"{it['type']}::{it['name'].strip().lower()}" for it in items if it["type"] in kinds}
    assert {s.split("#")[0] for (s,) in conn.execute(
        f"SELECT slug FROM items WHERE type IN ({','.join('?' * len(kinds))})", kinds)} == slugs
    ids = [r[0] for r in conn.execute("SELECT id FROM items WHERE type = 'habit' ORDER BY id LIMIT 5")]
    got_ids = dict(conn.execute(TODAY_IDS.format(placeholders=",".join("?" * len(ids))), ids).fetchall())
    assert set(got_ids) == set(ids) and all(s.startswith("habit::") for s in got_ids.values())
    # Chronos's other column names answer too
    row = conn.execute("SELECT points_value, relative_path, created_at, updated_at, path, updated FROM items "
                       "WHERE slug = 'task::compat journal'").fetchone()
    assert row["points_value"] == 0.0 and row["relative_path"] == row["path"] and row["updated_at"] == row["updated"]
    conn.close()


def test_kairos_reads_our_core_and_behaviour_mirrors(home):
    report = sync(home)
    items = _item_files(home / "user")
    done = ("completed", "done", "archived", "cancelled", "skipped")
    core = _ro(report.data / "chronos_core.db")
    backlog = [dict(r) for r in core.execute(KAIROS_BACKLOG)]
    assert len(backlog) == sum(it["type"] in ("subroutine", "microroutine", "task", "habit")
                               and (it.get("status") is None or str(it["status"]).lower() not in done)
                               for it in items)
    assert {"id", "slug", "name", "type", "raw_json", "points_value", "duration_minutes"} <= set(backlog[0])
    commitments = core.execute(KAIROS_COMMITMENTS).fetchall()
    assert len(commitments) == sum(it["type"] == "commitment" for it in items)
    # the blocks Kairos scores items by: every named block of every schedule, nested ones too
    behavior = _ro(report.data / "chronos_behavior.db")
    facts = behavior.execute(KAIROS_TRENDS).fetchall()
    blocks = core.execute("SELECT COUNT(*) FROM schedules").fetchone()[0]
    assert len(facts) == blocks and blocks >= 5
    day = {r["name"]: dict(r) for r in behavior.execute("SELECT * FROM activity_facts WHERE schedule_date = ?",
                                                         (DAY,))}
    assert {n: (d["item_slug"], d["item_type"], d["status"], d["variance_minutes"], d["depth"], d["order_index"])
            for n, d in day.items()} == {
        "Compat Morning": ("routine::compat morning", "routine", "pending", None, 0, 0),
        "Compat Wake Up": ("subroutine::compat wake up", "subroutine", "pending", None, 1, 0),
        "Compat Stretch": ("habit::compat stretch", "habit", "completed", 12, 2, 0),
        "Compat Journal": ("task::compat journal", "task", "partial", 1, 1, 1),      # keyed "note" by `did`
        "Compat Late Night": ("task::compat late night", "task", "completed", 40, 0, 1)}   # after midnight
    late = day["Compat Late Night"]
    assert (late["planned_start"], late["planned_end"], late["block_key"]) == (
        f"{DAY}T23:30:00", "2026-01-06T00:30:00", "Compat Late Night@23:30")
    assert day["Compat Journal"]["planned_minutes"] == 30
    assert day["Compat Stretch"]["completion_quality"] == "Good"            # Chronos's label, as written
    assert json.loads(day["Compat Journal"]["completion_json"])["note"] == "stopped early"
    # what Chronos's trends build reads from it
    assert {"completion_quality", "completion_json"} <= {r[1] for r in behavior.execute(TRENDS_COLUMNS)}
    total = behavior.execute(TRENDS_TOTAL).fetchone()[0]
    completed = behavior.execute(TRENDS_COMPLETED).fetchone()[0]
    assert total == blocks
    assert completed == core.execute("SELECT COUNT(*) FROM schedules WHERE "
                                     "LOWER(COALESCE(completion_status, status, 'pending')) = 'completed'") \
        .fetchone()[0] >= 2
    assert behavior.execute(TRENDS_IN_PROGRESS).fetchone()[0] == 0
    variances = [r[0] for r in behavior.execute(TRENDS_VARIANCE)]
    assert {12, 1, 40} <= set(variances)
    assert behavior.execute(TRENDS_AVG_VARIANCE).fetchone()[0] == pytest.approx(sum(variances) / len(variances))
    quality = behavior.execute(TRENDS_QUALITY).fetchall()
    assert len(quality) == core.execute("SELECT COUNT(*) FROM schedules WHERE completion_status IS NOT NULL") \
        .fetchone()[0]
    core.close()
    behavior.close()


def test_the_dashboards_trends_api_reads_our_metrics(home):
    report = sync(home, as_of=date(2026, 1, 5))
    items = _item_files(home / "user")
    conn = _ro(report.data / "chronos_trends.db")
    rows = conn.execute(DASHBOARD_METRICS).fetchall()
    got = {r["metric"]: (r["value"], r["unit"]) for r in rows}
    order = [m for (m,) in conn.execute("SELECT metric FROM metrics ORDER BY id") if m in got]
    assert [m for m in order if m != "timer_profile_usage"] == [  # Chronos's rows, in its order
        "blocks_total", "blocks_completed", "blocks_completion_rate", "blocks_avg_variance_minutes",
        "completion_quality_counts", "completion_custom_property_counts",
        "habits_total", "habits_with_streak", "habits_avg_streak", "habits_longest_streak", "habits_completion_today",
        "bad_habits_avg_clean_days", "goals_total", "goals_in_progress", "goals_avg_progress",
        "milestones_completed_week", "milestones_pending", "timer_sessions_total", "timer_focus_minutes",
        "timer_break_minutes", "adherence_on_time", "adherence_late", "adherence_percentage", "adherence_avg_delay"]
    assert got["habits_total"] == (sum(it["type"] == "habit" for it in items), "count")
    assert got["goals_total"] == (sum(it["type"] == "goal" for it in items), "count")
    # the activities the trends count, up to as_of
    memory = _ro(report.data / "chronos_memory.db")
    total, done = memory.execute(
        "SELECT COUNT(*), SUM(status = 'completed') FROM activity_facts WHERE (depth IS NULL OR depth = 0 OR "
        "status <> 'unlogged') AND date <= ?", (DAY,)).fetchone()
    delays = [d for (d,) in memory.execute("SELECT start_delay_minutes FROM activity_facts WHERE (depth IS NULL OR "
                                           "depth = 0 OR status <> 'unlogged') AND date <= ? AND start_delay_minutes "
                                           "IS NOT NULL", (DAY,))]
    assert got["blocks_total"] == (total, "count") and got["blocks_completed"] == (done, "count")
    assert got["blocks_completion_rate"][0] == (round(100 * done / total, 1) if total else 0.0)
    on_time = sum(abs(d) <= 5 for d in delays)
    assert got["adherence_on_time"][0] == on_time and got["adherence_late"][0] == len(delays) - on_time
    assert all(r["extra_json"] is None or isinstance(json.loads(r["extra_json"]), dict) for r in rows)
    # the completions' quality labels and the fields beside Chronos's own, counted from the YAML itself
    labels, custom = _completion_properties(home / "user", DAY)
    extra = {r["metric"]: json.loads(r["extra_json"]) for r in rows if r["metric"].startswith("completion_")}
    assert labels and extra["completion_quality_counts"] == labels
    assert got["completion_quality_counts"] == (sum(labels.values()), "count")
    assert custom and extra["completion_custom_property_counts"] == custom
    assert got["completion_custom_property_counts"] == (len(custom), "count")
    assert {"reason", "block_id", "source", "type", "auto_missed", "auto_skipped"} <= set(custom)
    # the API groups rows by prefix (utilities/dashboard/server.py): each group is there
    groups = {p: {m[len(p):]: v for m, (v, _) in got.items() if m.startswith(p)}
              for p in ("habits_", "goals_", "timer_", "adherence_")}
    assert groups["habits_"]["total"] == got["habits_total"][0] and "percentage" in groups["adherence_"]
    memory.close()
    conn.close()


def test_the_dashboards_matrix_reads_our_matrix_cache(home):
    report = sync(home)
    items = [it for it in _item_files(home / "user") if it["type"] in (
        "achievement", "appointment", "canvas_board", "commitment", "goal", "habit", "milestone", "note", "project",
        "reminder", "reward", "routine", "subroutine", "microroutine", "task")]
    conn = _ro(report.data / "chronos_matrix.db")
    dims = set(conn.execute(MATRIX_DIMENSIONS).fetchall())
    assert {("dataset", "dimension"), ("item_type", "dimension"), ("item_status", "dimension"),
            ("tag", "dimension"), ("schedule_date", "dimension"), ("name", "property")} <= {tuple(d) for d in dims}
    names = [r["value"] for r in conn.execute(MATRIX_PROPERTY_VALUES, ("name", 1000))]
    assert set(names) >= {str(it["name"]).strip().lower() for it in items}
    types = [r["type"] for r in conn.execute(MATRIX_TYPES)]
    assert types == sorted(types) and {it["type"] for it in items} <= set(types) and "habit" in types
    conn.execute(MATRIX_TEMPLATE_TYPES).fetchall()
    # the pivot as the dashboard generates it fails on every SQLite, on Chronos's own cache too
    # (GROUP_CONCAT(DISTINCT x, sep)): the dashboard then computes it from the YAML itself
    with pytest.raises(sqlite3.OperationalError, match="DISTINCT aggregates must have exactly one argument"):
        conn.execute(MATRIX_PIVOT, MATRIX_PIVOT_PARAMS)
    pivot = conn.execute(MATRIX_PIVOT.replace("GROUP_CONCAT(DISTINCT items.name,", "GROUP_CONCAT(items.name,"),
                         MATRIX_PIVOT_PARAMS).fetchall()
    cells = {(r["rd0_value"], r["cd1_value"]): r["metric_count"] for r in pivot}
    expected: dict[tuple[str, str], int] = {}
    for it in items:
        if it.get("status") and str(it["status"]).strip():
            key = (it["type"], str(it["status"]).strip().lower())
            expected[key] = expected.get(key, 0) + 1
    assert cells == expected
    day = conn.execute("SELECT items.name, d.value FROM items JOIN dimension_entries d ON d.item_id = items.id "
                       "AND d.dimension = 'actual_start_time' WHERE items.slug LIKE ?", (f"schedule:{DAY}:%",))
    assert dict(day.fetchall()) == {"Compat Stretch": "07:12", "Compat Journal": "07:31", "Compat Late Night": "00:10"}
    conn.close()


def test_the_metastudy_alone_keeps_chronos_metrics(home):
    report = sync(home)
    metastudy.build_trends(report.data, as_of=date(2026, 1, 5))
    conn = _ro(report.data / "chronos_trends.db")
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] >= 22
    assert {r[0] for r in conn.execute("SELECT DISTINCT generated_at FROM metrics")} == {"2026-01-05"}
    conn.close()
