"""Replaying a finished run from its event log: the world is rebuilt from
the log's metadata and agent roster, every language-model response is taken
from the log (no model is called), and the new log must match the old one
block by block."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np

from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.chronicle.audit import verify
from chronoledger.errors import CorruptDataError, ReplayMismatch   # ReplayMismatch: re-exported here
from chronoledger.world import store
from chronoledger.world.config import parse_config, parse_scenario
from chronoledger.world.memory import embedding_key, vectors_of
from chronoledger.world.models import ChatRequest, LanguageModel
from chronoledger.world.scheduler import RunOptions, run


class RecordedModel(LanguageModel):
    """Serves the recorded responses by the seed of the request each one
    answered, checking it is for the same speaker, and each only once."""

    def __init__(self, name: str, responses: list[tuple[int, str, int, int]], ids_by_name: dict[str, int],
                 embeddings: dict[str, np.ndarray] | None = None, embedding_model: str | None = None):
        self.name = name
        self.embedding_model = embedding_model
        self._vectors = embeddings or {}
        self._by_seed = {seed: (agent, text, digest) for agent, text, seed, digest in responses}
        self._total = len(responses)
        self._next = 0                 # responses served
        self._ids = ids_by_name

    def complete(self, requests: list[ChatRequest]) -> list[str]:
        out = []
        for req in requests:
            found = self._by_seed.pop(req.seed, None)
            if found is None:
                raise ReplayMismatch(f"the replay asked {req.speaker} for a turn (request seed {req.seed}) that "
                                     f"the log does not hold ({self._next} of {self._total} served)")
            agent, text, digest = found
            if self._ids.get(req.speaker) != agent:
                raise ReplayMismatch(f"request seed {req.seed}: recorded for agent {agent}, asked for "
                                     f"{req.speaker} (agent {self._ids.get(req.speaker)})")
            if req.digest() != digest:
                raise ReplayMismatch(f"request seed {req.seed}: {req.speaker} was asked something else than in the "
                                     f"recorded run (topic, place, activity, prompt, persona or what was said "
                                     f"before differ)")
            out.append(text)
            self._next += 1
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        """The vectors the run logged, by text."""
        out = []
        for text in texts:
            vec = self._vectors.get(embedding_key(text))
            if vec is None:
                raise ReplayMismatch(f"the replay asked for the embedding of {text[:60]!r}, which the log does not "
                                     f"hold")
            out.append(vec)
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)

    def close(self) -> None:
        pass


@dataclass
class ReplayReport:
    path: Path
    blocks: int
    records: int
    responses: int
    matches: bool
    detail: str

    def __str__(self) -> str:
        state = "matches" if self.matches else "DOES NOT MATCH"
        return (f"{self.path}: replayed {self.records:,} records in {self.blocks} blocks with {self.responses:,} "
                f"recorded model responses: {state}" + (f" ({self.detail})" if self.detail else ""))


def replay(path: str | Path) -> ReplayReport:
    """Re-run the run logged in ``path`` and compare the logs block by block."""
    path = Path(path)
    checked = verify(path)                      # damage is named as such, never replayed as if it were the run
    if not checked.ok:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in checked.checks if not c.ok)
        raise CorruptDataError(f"{path}: the event log is damaged ({failed}); `chronoledger chronicle verify` "
                               f"shows where")
    with Chronicle.open(path) as ch:
        meta = ch.metadata.get("user") or {}          # what the run wrote (beside the format's own keys)
        if meta.get("source") != "chronoledger world":
            raise CorruptDataError(f"{path}: not the event log of a world run")
        cols = ch.to_numpy(["event_type", "payload"])
        original = [(b.records, b.first_ts, b.last_ts, b.payload_crc) for b in ch.reader().blocks]
    if not len(cols["event_type"]) or cols["event_type"][-1] != "run_finished":
        raise CorruptDataError(f"{path}: the run did not finish (no run_finished event at the end of its log); "
                               f"finish it with `chronoledger world run --resume`, then replay it")
    roster, responses = [], []
    vectors: dict[str, np.ndarray] = {}
    embedding_model = None
    for etype, payload in zip(cols["event_type"], cols["payload"]):
        if etype == "agent":
            roster.append(json.loads(payload))
        elif etype == "lm_response":
            p = json.loads(payload)
            responses += [(a, text, seed, digest) for a, _r, text, seed, digest in p.get("turns", [])]
            responses += [(a, text, seed, digest) for a, text, seed, digest in p.get("reflections", [])]
            responses += [(a, text, seed, digest) for a, text, seed, digest in p.get("insights", [])]
            if "embeddings" in p:
                try:
                    vectors.update(vectors_of(p["embeddings"]))
                except ValueError as exc:
                    raise CorruptDataError(f"{path}: {exc}") from None
                embedding_model = p["embeddings"].get("model")
    config = parse_config(meta["config"], f"{path} (recorded config)")
    scenario = parse_scenario(meta["scenario"], f"{path} (recorded scenario)", config) if meta.get("scenario") else None
    with tempfile.TemporaryDirectory(prefix="world-replay-") as tmp:
        db_file = Path(tmp) / "replay.db"
        conn = store.connect(db_file)
        try:
            _rebuild(conn, meta, roster)
        finally:
            conn.close()
        model = RecordedModel(meta["model"], responses, {a["name"]: a["id"] for a in roster}, vectors,
                              embedding_model or meta.get("embedding_model"))
        out = Path(tmp) / "replay.cmeta"
        try:
            run(db_file, config, model, RunOptions(days=meta["days"], agents=None, seed=meta["seed"], chronicle=out,
                                                   report_format="none",
                                                   first_conversation=meta["first_conversation"]), scenario)
        except ReplayMismatch as exc:
            return ReplayReport(path, len(original), sum(b[0] for b in original), len(responses), False, str(exc))
        with Chronicle.open(out) as again:
            replayed = [(b.records, b.first_ts, b.last_ts, b.payload_crc) for b in again.reader().blocks]
    detail = ""
    for i, (a, b) in enumerate(zip(original, replayed)):
        if a != b:
            detail = f"block {i} differs: {a[0]} records t={a[1]}..{a[2]} crc {a[3]:016x} recorded, " \
                     f"{b[0]} records t={b[1]}..{b[2]} crc {b[3]:016x} replayed"
            break
    else:
        if len(original) != len(replayed):
            detail = f"{len(original)} blocks recorded, {len(replayed)} replayed"
    if not detail and model._by_seed:
        detail = f"{len(model._by_seed)} recorded responses were never asked for"
    return ReplayReport(path, len(original), sum(b[0] for b in original), len(responses), not detail, detail)


def _rebuild(conn: apsw.Connection, meta: dict, roster: list[dict]) -> None:
    """The recorded run's agents, places and activities, with their ids."""
    with db.sqlite_errors(None, "rebuilding a recorded run"), db.write_transaction(conn, "rebuilding a recorded run"):
        config = meta["config"]
        for name, lid in meta["locations"].items():
            loc = config["locations"][name]
            conn.execute("INSERT INTO locations (id, name, kind, capacity, open_hours_json) VALUES (?, ?, ?, ?, ?)",
                         (lid, name, loc.get("kind", name), loc["capacity"], json.dumps(loc.get("open_hours", [0, 24]))))
        for name, aid in meta["activities"].items():
            a = config["activities"][name]
            conn.execute("INSERT INTO activities (id, name, category, default_duration_min, location_id, "
                         "prompt_template) VALUES (?, ?, ?, ?, ?, ?)",
                         (aid, name, a.get("category", "other"), a.get("duration_minutes", 60),
                          meta["locations"][a["location"]], a.get("prompt_template", "")))
        conn.executemany("INSERT INTO agents (id, name, bio, job, family_json, traits_json, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(a["id"], a["name"], a["bio"], a["job"], json.dumps(a["family"], sort_keys=True),
                           json.dumps(a["traits"], sort_keys=True), store.SEED_TIME) for a in roster])
        for a in roster:
            conn.executemany("INSERT INTO interests (agent_id, tag, score) VALUES (?, ?, ?)",
                             [(a["id"], t, s) for t, s in a["interests"]])
            conn.executemany("INSERT INTO relationships (from_agent_id, to_agent_id, kind, strength, updated_at) "
                             "VALUES (?, ?, ?, ?, ?)", [(a["id"], b, k, s, store.SEED_TIME)
                                                        for b, k, s in a["relationships"]])
            # what the agents remembered from before the run, each agent's in the order it was made
            conn.executemany("INSERT INTO memories (agent_id, kind, text, confidence, norm_hash, created_at, importance) "
                             "VALUES (?, ?, ?, 0.5, ?, ?, ?)", [(a["id"], k, text, h, made, imp)
                                                                for k, text, imp, made, h in a.get("memories", [])])
