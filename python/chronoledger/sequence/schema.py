"""The tables of the mirrors (docs/sequence.md describes every column).

The mirrors are rebuilt from the YAML on every sync, so a schema change only
bumps the version here; the one thing carried from one build to the next is
``command_runs`` (and the command events) of chronos_events.db, copied by
column name.

Where Chronos (Jeetski/Chronos_Engine) reads a database of the same name
with SQL of its own, the tables here also answer to Chronos's column names
(docs/sequence.md, "Chronos's readers on our mirrors"): computed columns
where the value is one we already hold under another name, stored ones where
it is new (an item's ``type::name`` slug), and two databases in Chronos's
own shape (chronos_behavior.db, chronos_matrix.db).
"""

from __future__ import annotations

#: Bumped when a table changes; recorded as PRAGMA user_version and in databases.yml.
VERSIONS = {"core": 3, "events": 1, "memory": 1, "behavior": 1, "matrix": 1, "trends": 2}
FILES = {"core": "chronos_core.db", "events": "chronos_events.db", "memory": "chronos_memory.db",
         "behavior": "chronos_behavior.db", "matrix": "chronos_matrix.db", "trends": "chronos_trends.db"}
#: The mirrors, in the order a sync builds them (trends is built from memory).
DATABASES = ("core", "events", "memory", "behavior", "matrix", "trends")
#: The status dimensions chronos_memory.db holds as columns of its own, and
#: ``status.dimensions`` when Settings/status_settings.yml names none.
STATUS_DIMENSIONS = ("health", "place", "energy", "mind_state", "focus", "emotion", "vibe")

CORE = """
CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  slug TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  category TEXT,
  status TEXT,
  priority TEXT,
  due_date TEXT,
  duration_minutes REAL,
  points REAL,
  tags TEXT NOT NULL DEFAULT '[]',
  path TEXT NOT NULL,
  created TEXT,
  updated TEXT,
  raw_json TEXT NOT NULL,
  points_value REAL GENERATED ALWAYS AS (COALESCE(points, 0)) VIRTUAL,
  relative_path TEXT GENERATED ALWAYS AS (path) VIRTUAL,
  created_at TEXT GENERATED ALWAYS AS (created) VIRTUAL,
  updated_at TEXT GENERATED ALWAYS AS (updated) VIRTUAL
);
CREATE INDEX idx_items_name ON items(name COLLATE NOCASE, type);
CREATE INDEX idx_items_type_status ON items(type, status);
CREATE TABLE relations (
  id INTEGER PRIMARY KEY,
  parent_id INTEGER NOT NULL REFERENCES items(id),
  child_id INTEGER REFERENCES items(id),
  child_name TEXT NOT NULL,
  child_type TEXT,
  kind TEXT NOT NULL,
  ord INTEGER NOT NULL,
  resolved INTEGER NOT NULL,
  detail_json TEXT,
  parent_slug TEXT NOT NULL,
  child_slug TEXT,
  relation_type TEXT GENERATED ALWAYS AS (kind) VIRTUAL,
  order_index INTEGER GENERATED ALWAYS AS (ord) VIRTUAL
);
CREATE INDEX idx_relations_parent ON relations(parent_id, kind, ord);
CREATE INDEX idx_relations_child ON relations(child_id);
CREATE INDEX idx_rel_parent ON relations(parent_slug);
CREATE INDEX idx_rel_child ON relations(child_slug);
CREATE TABLE completions (
  id INTEGER PRIMARY KEY,
  date TEXT NOT NULL,
  item_name TEXT NOT NULL,
  item_type TEXT,
  item_id INTEGER REFERENCES items(id),
  scheduled_start TEXT,
  scheduled_end TEXT,
  actual_start TEXT,
  actual_end TEXT,
  status TEXT NOT NULL,
  quality REAL,
  logged_at TEXT,
  note TEXT,
  source TEXT NOT NULL,
  quality_label TEXT,
  block_key TEXT NOT NULL,
  origin TEXT,
  auto TEXT,
  extra_json TEXT
);
CREATE INDEX idx_completions_date ON completions(date);
CREATE INDEX idx_completions_item ON completions(item_name, date);
CREATE TABLE habit_history (
  id INTEGER PRIMARY KEY,
  item_id INTEGER NOT NULL REFERENCES items(id),
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  date TEXT NOT NULL,
  kind TEXT NOT NULL,
  polarity TEXT NOT NULL
);
CREATE INDEX idx_habit_history ON habit_history(item_id, date);
CREATE TABLE schedules (
  id INTEGER PRIMARY KEY,
  date TEXT NOT NULL,
  block TEXT NOT NULL,
  parent_block TEXT,
  depth INTEGER NOT NULL,
  name TEXT NOT NULL,
  type TEXT,
  item_id INTEGER REFERENCES items(id),
  start_time TEXT,
  end_time TEXT,
  planned_minutes REAL,
  status TEXT,
  actual_start TEXT,
  actual_end TEXT,
  actual_minutes REAL,
  completion_status TEXT
);
CREATE INDEX idx_schedules_date ON schedules(date, block);
CREATE TABLE points_ledger (
  id INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  delta REAL NOT NULL,
  reason TEXT,
  source TEXT,
  tags TEXT NOT NULL DEFAULT '[]',
  balance REAL NOT NULL
);
CREATE INDEX idx_points_ts ON points_ledger(ts);
CREATE TABLE status_log (
  id INTEGER PRIMARY KEY,
  date TEXT NOT NULL,
  time TEXT,
  dimension TEXT NOT NULL,
  value TEXT
);
CREATE INDEX idx_status_log ON status_log(dimension, date);
CREATE TABLE variables (
  key TEXT PRIMARY KEY,
  value TEXT
);
CREATE TABLE timer_sessions (
  id INTEGER PRIMARY KEY,
  date TEXT NOT NULL,
  started TEXT,
  ended TEXT,
  phase TEXT,
  profile TEXT,
  seconds REAL,
  minutes REAL,
  bound_type TEXT,
  bound_name TEXT,
  item_id INTEGER REFERENCES items(id),
  source TEXT NOT NULL
);
CREATE INDEX idx_timer_sessions_date ON timer_sessions(date);
"""

EVENTS = """
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_events_ts ON events(ts);
CREATE INDEX idx_events_type ON events(event_type, ts);
CREATE TABLE command_runs (
  id INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  command TEXT NOT NULL,
  args_json TEXT NOT NULL DEFAULT '[]',
  duration_s REAL NOT NULL,
  result TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX idx_command_runs_ts ON command_runs(ts);
CREATE TABLE trigger_log (
  id INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  source_type TEXT NOT NULL,
  source_name TEXT NOT NULL,
  trigger TEXT NOT NULL,
  period TEXT,
  outcome TEXT NOT NULL,
  actions_json TEXT NOT NULL DEFAULT '[]',
  detail_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_trigger_log ON trigger_log(source_name, ts);
"""

MEMORY = """
CREATE TABLE activity_facts (
  id INTEGER PRIMARY KEY,
  date TEXT NOT NULL,
  weekday INTEGER NOT NULL,
  name TEXT NOT NULL,
  type TEXT,
  block TEXT,
  depth INTEGER,
  scheduled_start TEXT,
  scheduled_end TEXT,
  actual_start TEXT,
  actual_end TEXT,
  planned_minutes REAL,
  actual_minutes REAL,
  start_delay_minutes REAL,
  status TEXT NOT NULL,
  quality REAL
);
CREATE INDEX idx_facts_name ON activity_facts(name, date);
CREATE INDEX idx_facts_date ON activity_facts(date);
CREATE TABLE status_snapshots (
  id INTEGER PRIMARY KEY,
  date TEXT NOT NULL,
  time TEXT,
  health TEXT,
  place TEXT,
  energy TEXT,
  mind_state TEXT,
  focus TEXT,
  emotion TEXT,
  vibe TEXT,
  extra_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX idx_snapshots_date ON status_snapshots(date, time);
CREATE TABLE narratives (
  date TEXT PRIMARY KEY,
  text TEXT NOT NULL
);
CREATE TABLE reinforcements (
  id INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  kind TEXT NOT NULL,
  source_name TEXT NOT NULL,
  outcome TEXT NOT NULL,
  points REAL,
  detail_json TEXT NOT NULL DEFAULT '{}'
);
"""

#: chronos_behavior.db, in the shape Chronos's own behaviour build gives it
#: (Kairos and Chronos's trends build read it): one row per schedule block.
BEHAVIOR = """
CREATE TABLE activity_facts (
  id INTEGER PRIMARY KEY,
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
CREATE INDEX idx_activity_slug ON activity_facts(item_slug);
"""

#: chronos_matrix.db, in the shape of Chronos's dashboard matrix cache: an
#: index of items and past schedule blocks by dimension, for pivot tables.
MATRIX = """
CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  slug TEXT,
  name TEXT,
  type TEXT,
  source_type TEXT,
  status TEXT,
  priority TEXT,
  category TEXT,
  project TEXT,
  template_type TEXT,
  duration_minutes INTEGER,
  points_value REAL,
  raw_json TEXT
);
CREATE TABLE dimension_entries (
  item_id INTEGER NOT NULL REFERENCES items(id),
  dimension TEXT NOT NULL,
  value TEXT NOT NULL,
  display TEXT,
  kind TEXT NOT NULL DEFAULT 'dimension'
);
"""
#: The matrix cache's indexes, made once its rows are in (faster than keeping them up to date row by row).
MATRIX_INDEXES = """
CREATE INDEX idx_items_type ON items(type);
CREATE INDEX idx_dim_dimension_value ON dimension_entries(dimension, value);
CREATE INDEX idx_dim_kind ON dimension_entries(kind);
"""

TRENDS = """
CREATE TABLE item_trends (
  item_name TEXT NOT NULL,
  item_type TEXT,
  window_days INTEGER NOT NULL,
  as_of TEXT NOT NULL,
  scheduled INTEGER NOT NULL,
  completed INTEGER NOT NULL,
  completion_rate REAL,
  current_streak INTEGER NOT NULL,
  best_streak INTEGER NOT NULL,
  avg_start_minute REAL,
  start_stddev_minutes REAL,
  start_drift_minutes REAL,
  avg_delay_minutes REAL,
  planned_minutes REAL,
  actual_minutes REAL,
  PRIMARY KEY (item_name, window_days)
);
CREATE TABLE type_trends (
  item_type TEXT NOT NULL,
  window_days INTEGER NOT NULL,
  as_of TEXT NOT NULL,
  scheduled INTEGER NOT NULL,
  completed INTEGER NOT NULL,
  completion_rate REAL,
  planned_minutes REAL,
  actual_minutes REAL,
  PRIMARY KEY (item_type, window_days)
);
CREATE TABLE weekday_trends (
  weekday INTEGER NOT NULL,
  window_days INTEGER NOT NULL,
  as_of TEXT NOT NULL,
  scheduled INTEGER NOT NULL,
  completed INTEGER NOT NULL,
  completion_rate REAL,
  PRIMARY KEY (weekday, window_days)
);
CREATE TABLE status_trends (
  dimension TEXT NOT NULL,
  window_days INTEGER NOT NULL,
  as_of TEXT NOT NULL,
  samples INTEGER NOT NULL,
  most_common TEXT,
  mean_level REAL,
  drift REAL,
  PRIMARY KEY (dimension, window_days)
);
CREATE TABLE reinforcement_trends (
  source_name TEXT NOT NULL,
  window_days INTEGER NOT NULL,
  as_of TEXT NOT NULL,
  fired INTEGER NOT NULL,
  met INTEGER NOT NULL,
  violated INTEGER NOT NULL,
  PRIMARY KEY (source_name, window_days)
);
CREATE TABLE metrics (
  id INTEGER PRIMARY KEY,
  metric TEXT NOT NULL,
  value REAL,
  unit TEXT,
  extra_json TEXT,
  generated_at TEXT
);
"""

DDL = {"core": CORE, "events": EVENTS, "memory": MEMORY, "behavior": BEHAVIOR, "matrix": MATRIX + MATRIX_INDEXES,
       "trends": TRENDS}


def tables(ddl: str) -> str:
    """``ddl`` without its CREATE INDEX statements: a builder creates the
    tables, inserts every row, then runs :func:`indexes` (SQLite builds an
    index over loaded rows by sorting them, faster than updating it row by row)."""
    return ";\n".join(st for st in _statements(ddl) if not _is_index(st)) + ";\n"


def indexes(ddl: str) -> str:
    """The CREATE INDEX statements of ``ddl`` ("" when it has none)."""
    found = [st for st in _statements(ddl) if _is_index(st)]
    return ";\n".join(found) + ";\n" if found else ""


def _statements(ddl: str) -> list[str]:
    # the DDL here holds no ';' inside literals or triggers' bodies (checked by the tests)
    return [st.strip() for st in ddl.split(";") if st.strip()]


def _is_index(statement: str) -> bool:
    return statement.upper().startswith(("CREATE INDEX", "CREATE UNIQUE INDEX"))
