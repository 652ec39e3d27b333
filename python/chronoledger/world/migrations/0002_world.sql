-- The world: places, activities, runs, where agents are, what they planned,
-- what they did (world_events), and each day's report.

CREATE TABLE locations (
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  kind            TEXT NOT NULL,
  capacity        INTEGER NOT NULL CHECK (capacity > 0),
  open_hours_json TEXT NOT NULL CHECK (json_valid(open_hours_json))
);

CREATE TABLE activities (
  id                   INTEGER PRIMARY KEY,
  name                 TEXT NOT NULL UNIQUE,
  category             TEXT NOT NULL,
  default_duration_min INTEGER NOT NULL,
  location_id          INTEGER REFERENCES locations (id),
  prompt_template      TEXT NOT NULL
);

CREATE TABLE runs (
  id              INTEGER PRIMARY KEY,
  seed            INTEGER NOT NULL,
  days            INTEGER NOT NULL,
  agents          INTEGER NOT NULL,
  model           TEXT NOT NULL,
  config_json     TEXT NOT NULL,
  scenario_json   TEXT,
  status          TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'finished')),
  chronicle       TEXT,                     -- the run's event log, relative to the database
  checkpoint_json TEXT,                     -- the state after the last whole tick (see --resume)
  checkpoint_state BLOB,                    -- its arrays: zstd-compressed .npz
  started_at      TEXT NOT NULL,
  finished_at     TEXT
);

CREATE TABLE agent_locations (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs (id),
  agent_id    INTEGER NOT NULL REFERENCES agents (id),
  location_id INTEGER NOT NULL REFERENCES locations (id),
  since_ts    TEXT NOT NULL,
  until_ts    TEXT
);
CREATE INDEX ix_agent_locations ON agent_locations (run_id, agent_id, since_ts);

CREATE TABLE agent_schedules (
  id                  INTEGER PRIMARY KEY,
  run_id              INTEGER NOT NULL REFERENCES runs (id),
  agent_id            INTEGER NOT NULL REFERENCES agents (id),
  day_label           TEXT NOT NULL,
  slot_hour           INTEGER NOT NULL,
  planned_activity_id INTEGER NOT NULL REFERENCES activities (id),
  location_id         INTEGER REFERENCES locations (id),
  partner_agent_id    INTEGER REFERENCES agents (id),
  source              TEXT NOT NULL DEFAULT 'generated'   -- generated | scenario
);
CREATE INDEX ix_agent_schedules ON agent_schedules (run_id, day_label, agent_id, slot_hour);

CREATE TABLE world_events (
  id            INTEGER PRIMARY KEY,
  run_id        INTEGER NOT NULL REFERENCES runs (id),
  agent_id      INTEGER NOT NULL REFERENCES agents (id),
  day_label     TEXT NOT NULL,
  tick_index    INTEGER NOT NULL,
  action        TEXT NOT NULL,
  activity_id   INTEGER REFERENCES activities (id),
  location_id   INTEGER REFERENCES locations (id),
  metadata_json TEXT NOT NULL DEFAULT '{}',
  created_at    TEXT NOT NULL
);
-- Events arrive in (run, day, tick) order, so this index only ever appends.  An index by
-- agent would take an insert at a random place for every event (a fifth of a large run's
-- time); CREATE INDEX ... ON world_events (agent_id, day_label) if you query by agent often.
CREATE INDEX ix_world_events_day ON world_events (run_id, day_label, tick_index);

CREATE TABLE daily_reports (
  id           INTEGER PRIMARY KEY,
  run_id       INTEGER NOT NULL REFERENCES runs (id),
  day_label    TEXT NOT NULL,
  summary_text TEXT NOT NULL,
  metrics_json TEXT NOT NULL CHECK (json_valid(metrics_json)),
  created_at   TEXT NOT NULL,
  UNIQUE (run_id, day_label)
);
