"""The agents of a run: read from the database as arrays (position = order
by id), and made up, seeded, when a run asks for more than it holds."""

from __future__ import annotations

import apsw
import numpy as np

from chronoledger import sqlite as db
from chronoledger.errors import ConfigError
from chronoledger.world import recall, store
from chronoledger.world.config import Scenario

class Agents:
    """The agents of a run, as arrays (index = position, by id)."""

    def __init__(self, conn: apsw.Connection, n: int | None):
        rows = conn.execute("SELECT id, name, bio, job, family_json FROM agents ORDER BY id" +
                            (f" LIMIT {int(n)}" if n else "")).fetchall()
        self.ids = np.array([r[0] for r in rows], dtype=np.int64)
        self.names = [store.as_text(r[1], "agents.name") for r in rows]
        self.index = {name: k for k, name in enumerate(self.names)}       # position by name
        self.bios = [store.as_text(r[2], "agents.bio") for r in rows]
        self.jobs = [store.as_text(r[3], "agents.job") for r in rows]
        self.family = [recall.family_pairs(r[4]) if r[4] not in (None, "{}", "[]") else [] for r in rows]
        self.pos = {int(i): k for k, i in enumerate(self.ids)}
        tags: dict[int, list[str]] = {}
        for aid, tag, score in conn.execute("SELECT agent_id, tag, score FROM interests ORDER BY agent_id, score DESC, tag"):
            tags.setdefault(aid, []).append(tag)
        self.interests = [tuple(tags.get(int(i), ())) for i in self.ids]
        self.interest_sets = [frozenset(t) for t in self.interests]      # topics and shared interests, per chat

    def __len__(self) -> int:
        return len(self.ids)

    def family_ties(self) -> list[tuple[int, int, str]]:
        """(from id, to id, role) for each family member an agent's family_json names who is in the run."""
        ids = self.ids.tolist()
        return [(ids[i], ids[j], role) for i, fam in enumerate(self.family) for role, name in fam
                if (j := self.index.get(name)) is not None and j != i]


def ensure_agents(conn: apsw.Connection, n: int, seed: int) -> None:
    """Make up agents (seeded personas, interests, a few relationships) until
    the database holds ``n``: large runs need not be seeded by hand.  They
    are marked ``{"invented": true}`` in their traits, and their relationships
    are with one another only, never with the agents a user seeded."""
    have = store.as_int(conn.execute("SELECT count(*) FROM agents").fetchall()[0][0], "count(agents)")
    if have >= n:
        return
    rng = np.random.default_rng([seed, 7919])
    jobs = np.array(["designer", "developer", "nurse", "teacher", "chef", "analyst", "writer", "mechanic", "student",
                     "lawyer"], dtype=object)
    tags = np.array(["coffee", "cycling", "books", "music", "running", "cooking", "chess", "gardening", "film",
                     "travel", "photography", "climbing", "history", "painting", "yoga", "startups"], dtype=object)
    # columns, not rows of tuples: a million made-up agents are written in seconds, in little memory
    with db.write_transaction(conn, "making up agents"):
        start = store.as_int(conn.execute("SELECT coalesce(max(id), 0) FROM agents").fetchall()[0][0], "agents.id")
        made = np.arange(start + 1, start + 1 + n - have, dtype=np.int64)
        job = jobs[rng.integers(0, len(jobs), len(made))]
        liked = tags[made % len(tags)]
        db.insert_columns(conn, "INSERT INTO agents (id, name, bio, job, family_json, traits_json, created_at) "
                                "VALUES (?, ?, ?, ?, '{}', '{\"invented\": true}', ?)",
                          [made, [f"Agent {i:05d}" for i in made.tolist()],
                           [f"A {j} who likes {t}." for j, t in zip(job.tolist(), liked.tolist())], job.tolist(),
                           store.SEED_TIME])
        picks = rng.integers(0, len(tags), (len(made), 3))
        scores = np.round(rng.uniform(0.3, 1.0, (len(made), 3)), 2)
        db.insert_columns(conn, "INSERT OR IGNORE INTO interests (agent_id, tag, score) VALUES (?, ?, ?)",
                          [np.repeat(made, 3), tags[picks.ravel()].tolist(), scores.ravel()])
        # friends among themselves: the user's agents are left alone
        a = np.repeat(made, 2)
        b = made[rng.integers(0, len(made), (len(made), 2)).ravel()]
        strength = np.round(rng.uniform(0.1, 0.6, len(a)), 2)
        keep = a != b
        a, b, strength = a[keep], b[keep], strength[keep]
        for x, y in ((a, b), (b, a)):
            db.insert_columns(conn, "INSERT OR IGNORE INTO relationships (from_agent_id, to_agent_id, kind, strength, "
                                    "updated_at) VALUES (?, ?, 'friend', ?, ?)", [x, y, strength, store.SEED_TIME])


def topic(agents: Agents, members: list[int]) -> str:
    """What a conversation is about: an interest the members share, else the first one's."""
    sets = agents.interest_sets
    common = sets[members[0]].intersection(*[sets[i] for i in members[1:]])
    if common:
        return min(common)
    first = agents.interests[members[0]]
    return first[0] if first else "the day"


def names_of_run(conn: apsw.Connection, n: int | None) -> list[str]:
    """The names of the agents a run of ``n`` agents will take (the first n
    by id, with those ensure_agents would make up), read without writing."""
    rows = conn.execute("SELECT id, name FROM agents ORDER BY id").fetchall()
    names = [store.as_text(name, "agents.name") for _, name in rows]
    if n and len(names) < n:
        top = store.as_int(rows[-1][0], "agents.id") if rows else 0
        names += [f"Agent {i:05d}" for i in range(top + 1, top + 1 + n - len(names))]
    return names[:n] if n else names


def check_scenario_agents(scenario: Scenario, names: list[str]) -> None:
    known = set(names)
    for e in scenario.events:
        missing = [a for a in e.agents if a not in known]
        if missing:
            raise ConfigError(f"{scenario.source}: scripted_events: no agent named {missing[0]!r} in this run")
    for name in scenario.schedules:
        if name not in known:
            raise ConfigError(f"{scenario.source}: schedules: no agent named {name!r} in this run")
