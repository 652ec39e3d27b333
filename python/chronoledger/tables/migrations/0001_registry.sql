-- The registry's own tables, beside the declared ones.  Names starting with
-- _registry are reserved: no schema may declare one.

-- The schema applied to each table now (what every write is checked against).
CREATE TABLE _registry_tables (
  table_name  TEXT PRIMARY KEY NOT NULL,
  version     TEXT,
  schema_hash TEXT NOT NULL,
  schema_json TEXT NOT NULL,
  source      TEXT,
  applied_at  TEXT NOT NULL
);

-- Every schema ever applied, in order: a table's history.
CREATE TABLE _registry_history (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  table_name  TEXT NOT NULL,
  version     TEXT,
  schema_hash TEXT NOT NULL,
  schema_json TEXT NOT NULL,
  change      TEXT NOT NULL,          -- create | alter | rebuild
  proposal_id TEXT,
  applied_at  TEXT NOT NULL
);
CREATE INDEX ix_registry_history_table ON _registry_history (table_name, seq);

-- Proposed tables and schema changes, and what became of them.
CREATE TABLE _registry_proposals (
  id              TEXT PRIMARY KEY NOT NULL,
  table_name      TEXT NOT NULL,
  kind            TEXT NOT NULL CHECK (kind IN ('create', 'change')),
  risk            TEXT NOT NULL CHECK (risk IN ('low', 'medium', 'high')),
  status          TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'rejected', 'superseded')),
  base_hash       TEXT,               -- the applied schema it changes (NULL: a new table)
  schema_hash     TEXT NOT NULL,
  schema_json     TEXT NOT NULL,
  changes_json    TEXT NOT NULL,
  proposed_by     TEXT NOT NULL,
  reason          TEXT,
  source          TEXT,
  created_at      TEXT NOT NULL,
  decided_by      TEXT,
  decided_at      TEXT,
  decision_reason TEXT
);
CREATE INDEX ix_registry_proposals_table ON _registry_proposals (table_name, status);

-- Values of fields an approved change dropped or could not keep, so that
-- nothing stored is lost by a schema change.
CREATE TABLE _registry_archive (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  proposal_id TEXT NOT NULL,
  table_name  TEXT NOT NULL,
  row_key     TEXT NOT NULL,
  field       TEXT NOT NULL,
  value_json  TEXT,
  archived_at TEXT NOT NULL
);

-- Writes not yet published to the event log: filled in the write's own
-- transaction, emptied once the events are in the log.
CREATE TABLE _registry_outbox (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  ts         TEXT NOT NULL,
  table_name TEXT NOT NULL,
  operation  TEXT NOT NULL,
  row_ids    TEXT NOT NULL          -- a JSON list
);

-- The last number given to each table with a generated integer key: a
-- deleted row's number is never given again.
CREATE TABLE _registry_sequences (
  table_name TEXT PRIMARY KEY NOT NULL,
  last       INTEGER NOT NULL
);
