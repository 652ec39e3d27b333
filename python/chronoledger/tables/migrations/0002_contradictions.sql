-- Contradictions found by the rules a table declares (or Grace's defaults):
-- kept as rows, never by deleting data.  A pair found again stays as it is;
-- a pair no longer found is marked resolved; a person may dismiss one.
CREATE TABLE _registry_contradictions (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  table_name  TEXT NOT NULL,
  rule        TEXT NOT NULL,
  kind        TEXT NOT NULL,
  severity    TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  row1        TEXT NOT NULL,          -- the primary keys of the two rows, as text, row1 < row2
  row2        TEXT NOT NULL,
  score       REAL,                   -- the similarity of a near_duplicate
  detail      TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'dismissed')),
  found_at    TEXT NOT NULL,
  seen_at     TEXT NOT NULL,          -- the last run that found it
  closed_at   TEXT,
  closed_by   TEXT,
  UNIQUE (table_name, rule, row1, row2)
);
CREATE INDEX ix_registry_contradictions_open ON _registry_contradictions (table_name, status);
