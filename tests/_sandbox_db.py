"""A database in the world sandbox's form (CalfCrusher/AI_Agents_Communication):
its tables as its SQLAlchemy models (python/db/models.py) create them on
SQLite, and rows as its seeding (seed_agents.py, `world-init`) and its world
loop write them -- memories hashed ``reflection_<tick>_<agent>``, events with
the action inside their metadata, open hours as {"start", "end"}."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE agents (
    id INTEGER NOT NULL, name VARCHAR(120) NOT NULL, bio TEXT, job VARCHAR(120), family_json TEXT,
    traits_json TEXT, created_at DATETIME, updated_at DATETIME, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE conversations (
    id INTEGER NOT NULL, scenario TEXT, initial_prompt TEXT, started_at DATETIME, PRIMARY KEY (id));
CREATE TABLE embeddings (
    id INTEGER NOT NULL, doc_type VARCHAR(32) NOT NULL, doc_id INTEGER NOT NULL, model VARCHAR(120) NOT NULL,
    dim INTEGER NOT NULL, vector BLOB NOT NULL, created_at DATETIME, PRIMARY KEY (id),
    CONSTRAINT uq_embedding_doc UNIQUE (doc_type, doc_id, model));
CREATE TABLE locations (
    id INTEGER NOT NULL, name VARCHAR(120) NOT NULL, kind VARCHAR(64) NOT NULL, capacity INTEGER,
    open_hours_json TEXT, created_at DATETIME, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE activities (
    id INTEGER NOT NULL, name VARCHAR(120) NOT NULL, category VARCHAR(64) NOT NULL, default_duration_min INTEGER,
    prompt_template TEXT, created_at DATETIME, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE daily_reports (
    id INTEGER NOT NULL, day_label VARCHAR(64) NOT NULL, summary_text TEXT, metrics_json TEXT,
    created_at DATETIME, PRIMARY KEY (id), UNIQUE (day_label));
CREATE TABLE interests (
    id INTEGER NOT NULL, agent_id INTEGER NOT NULL, tag VARCHAR(120) NOT NULL, score FLOAT, created_at DATETIME,
    PRIMARY KEY (id), CONSTRAINT uq_interest_agent_tag UNIQUE (agent_id, tag),
    FOREIGN KEY(agent_id) REFERENCES agents (id) ON DELETE CASCADE);
CREATE TABLE relationships (
    id INTEGER NOT NULL, from_agent_id INTEGER NOT NULL, to_agent_id INTEGER, type VARCHAR(64), strength FLOAT,
    since_date DATE, updated_at DATETIME, PRIMARY KEY (id),
    CONSTRAINT uq_relationship_pair UNIQUE (from_agent_id, to_agent_id),
    FOREIGN KEY(from_agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    FOREIGN KEY(to_agent_id) REFERENCES agents (id) ON DELETE CASCADE);
CREATE TABLE turns (
    id INTEGER NOT NULL, conversation_id INTEGER NOT NULL, round INTEGER NOT NULL, interaction INTEGER NOT NULL,
    turn INTEGER NOT NULL, agent_id INTEGER, model VARCHAR(120) NOT NULL, role VARCHAR(32) NOT NULL,
    content TEXT NOT NULL, created_at DATETIME, PRIMARY KEY (id),
    FOREIGN KEY(conversation_id) REFERENCES conversations (id) ON DELETE CASCADE,
    FOREIGN KEY(agent_id) REFERENCES agents (id));
CREATE TABLE agent_locations (
    id INTEGER NOT NULL, agent_id INTEGER NOT NULL, location_id INTEGER NOT NULL, since_ts DATETIME NOT NULL,
    until_ts DATETIME, created_at DATETIME, PRIMARY KEY (id),
    FOREIGN KEY(agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    FOREIGN KEY(location_id) REFERENCES locations (id) ON DELETE CASCADE);
CREATE TABLE agent_schedules (
    id INTEGER NOT NULL, agent_id INTEGER NOT NULL, day_label VARCHAR(64) NOT NULL, slot_hour INTEGER NOT NULL,
    planned_activity_id INTEGER, partner_agent_id INTEGER, created_at DATETIME, PRIMARY KEY (id),
    FOREIGN KEY(agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    FOREIGN KEY(planned_activity_id) REFERENCES activities (id) ON DELETE SET NULL,
    FOREIGN KEY(partner_agent_id) REFERENCES agents (id) ON DELETE SET NULL);
CREATE TABLE world_events (
    id INTEGER NOT NULL, agent_id INTEGER NOT NULL, tick_index INTEGER NOT NULL, activity_id INTEGER,
    location_id INTEGER, metadata_json TEXT, created_at DATETIME, PRIMARY KEY (id),
    FOREIGN KEY(agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    FOREIGN KEY(activity_id) REFERENCES activities (id) ON DELETE SET NULL,
    FOREIGN KEY(location_id) REFERENCES locations (id) ON DELETE SET NULL);
CREATE TABLE memories (
    id INTEGER NOT NULL, agent_id INTEGER NOT NULL, kind VARCHAR(64) NOT NULL, text TEXT NOT NULL,
    confidence FLOAT, source_turn_id INTEGER, normalized_hash VARCHAR(64) NOT NULL, metadata_json TEXT,
    created_at DATETIME, updated_at DATETIME, PRIMARY KEY (id), CONSTRAINT uq_memory_hash UNIQUE (normalized_hash),
    FOREIGN KEY(agent_id) REFERENCES agents (id) ON DELETE CASCADE,
    FOREIGN KEY(source_turn_id) REFERENCES turns (id) ON DELETE SET NULL);
"""

T = "2025-11-18 11:29:33.387468"


def make_sandbox_db(path: Path) -> Path:
    """Two agents (Ava, Ben), their interests, six reflections, the five places and six activities of
    `world-init`, twenty events and a daily report: a database as the sandbox leaves it after a run."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO agents VALUES (?, ?, ?, ?, NULL, NULL, ?, ?)",
                     [(1, "Ava", "Designer", "UX Designer", T, T), (2, "Ben", "Developer", "Engineer", T, T)])
    conn.executemany("INSERT INTO interests VALUES (?, ?, ?, ?, ?)",
                     [(1, 1, "coffee", 0.8, T), (2, 2, "cycling", 0.9, T)])
    conn.executemany("INSERT INTO locations VALUES (?, ?, ?, ?, ?, ?)",
                     [(1, "Home", "home", 4, '{"start": 0, "end": 24}', T),
                      (2, "Office", "office", 20, '{"start": 8, "end": 18}', T),
                      (3, "Cafe", "cafe", 15, '{"start": 7, "end": 22}', T),
                      (4, "Gym", "gym", 30, '{"start": 6, "end": 23}', T),
                      (5, "Park", "park", 50, '{"start": 6, "end": 21}', T)])
    conn.executemany("INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?)",
                     [(1, "work_task", "work", 120, "Focus on completing work tasks", T),
                      (2, "coffee_chat", "social", 30, "Casual conversation over coffee", T),
                      (3, "lunch_meeting", "social", 60, "Lunch discussion with colleagues", T),
                      (4, "workout", "wellness", 60, "Exercise and physical activity", T),
                      (5, "reflection", "wellness", 30, "Personal reflection and journaling", T),
                      (6, "team_standup", "work", 15, "Quick team status update", T)])
    thoughts = [(0, 2, "think about goals and aspirations"), (2, 1, "review the day's events"),
                (3, 1, "contemplate personal growth"), (4, 2, "contemplate personal growth"),
                (5, 2, "contemplate personal growth"), (11, 2, "contemplate personal growth")]
    conn.executemany("INSERT INTO memories VALUES (?, ?, 'reflection', ?, 0.6, NULL, ?, ?, ?, ?)",
                     [(k + 1, a, f"{'Ava' if a == 1 else 'Ben'} spent time {what}", f"reflection_{tick}_{a}",
                       f'{{"tick": {tick}, "day": "2025-11-18"}}', T, T) for k, (tick, a, what) in enumerate(thoughts)])
    conn.executemany("INSERT INTO world_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [(k + 1, 1 + k % 2, k // 2, 1 + k % 6, None if k % 3 else 2,
                       f'{{"action": "task_update", "hour": {8 + k // 2}, "day_label": "2025-11-18"}}', T)
                      for k in range(20)])
    conn.executemany("INSERT INTO agent_locations VALUES (?, ?, ?, ?, NULL, ?)",
                     [(k + 1, 1 + k % 2, 1 + k % 5, T, T) for k in range(7)])
    conn.execute("INSERT INTO daily_reports VALUES (1, '2025-11-18', 'A quiet day.', '{\"events\": 20}', ?)", (T,))
    conn.commit()
    conn.close()
    return path
