-- The base the world builds on: agents with personas, their interests and
-- relationships, conversations with their turns, and memories.

CREATE TABLE agents (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  bio         TEXT NOT NULL DEFAULT '',
  job         TEXT NOT NULL DEFAULT '',
  family_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(family_json)),
  traits_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(traits_json)),
  created_at  TEXT NOT NULL
);

CREATE TABLE interests (
  agent_id INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  tag      TEXT NOT NULL,
  score    REAL NOT NULL CHECK (score >= 0 AND score <= 1),
  PRIMARY KEY (agent_id, tag)
);

CREATE TABLE relationships (
  from_agent_id INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  to_agent_id   INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  kind          TEXT NOT NULL DEFAULT 'acquaintance',
  strength      REAL NOT NULL DEFAULT 0 CHECK (strength >= -1 AND strength <= 1),
  updated_at    TEXT NOT NULL,
  PRIMARY KEY (from_agent_id, to_agent_id),
  CHECK (from_agent_id <> to_agent_id)
);

CREATE TABLE conversations (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER,
  day_label   TEXT,
  tick_index  INTEGER,
  kind        TEXT NOT NULL CHECK (kind IN ('duo_chat', 'group_meeting', 'solo_reflection', 'scripted')),
  topic       TEXT NOT NULL DEFAULT '',
  location_id INTEGER,
  model       TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
CREATE INDEX ix_conversations_run_day ON conversations (run_id, day_label, tick_index);

CREATE TABLE conversation_turns (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  round           INTEGER NOT NULL,
  agent_id        INTEGER REFERENCES agents (id),
  role            TEXT NOT NULL,
  content         TEXT NOT NULL CHECK (length(content) > 0),
  model           TEXT NOT NULL
);
CREATE INDEX ix_turns_conversation ON conversation_turns (conversation_id, round);

CREATE TABLE memories (
  id            INTEGER PRIMARY KEY,
  agent_id      INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  kind          TEXT NOT NULL,
  text          TEXT NOT NULL,
  confidence    REAL NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
  norm_hash     TEXT NOT NULL,              -- of the normalized text: the same memory is kept once
  metadata_json TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata_json)),
  created_at    TEXT NOT NULL,
  UNIQUE (agent_id, norm_hash)
);
CREATE INDEX ix_memories_agent_kind ON memories (agent_id, kind);
