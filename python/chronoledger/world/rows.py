"""What a tick leaves behind: its rows for the database (world events,
conversations and their turns, memories, relationship changes, stays), as
columns for one transaction, and its records in the run's event log --
written to the log first (it may run ahead of the database, which a resume
cuts back, never behind)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, TypedDict

import apsw
import numpy as np

from chronoledger.chronicle import Chronicle
from chronoledger.world import actions as act
from chronoledger.world import recall
from chronoledger.world.memory import embedding_key, excerpt, importance, norm_hash
from chronoledger.world.models import ChatRequest
from chronoledger.world.policy import Decision
from chronoledger.world.reporting import MAX_TRANSCRIPTS, DayTally, TallyState
from chronoledger.world.results import REFLECTION, InsertJob, Owner, TickResult
from chronoledger.world.state import WorldState
from chronoledger.world.talk import Talk


class TickRows:
    """Rows and log records of one run's ticks."""

    def __init__(self, state: WorldState, talk: Talk):
        self.s, self.talk = state, talk
        self.model_name = talk.model.name
        self.names = np.array(state.action_names, dtype=object)
        #: the day's agent_schedules columns (WorldState.plan_day), stored with its first tick
        self.pending_schedules: list[Any] = []
        #: an event's metadata without a conversation, by (refusing place, travel ticks or -1)
        self._plain_meta: dict[tuple[int, int], str] = {}

    def write(self, d: Decision, requests: list[ChatRequest], owners: list[Owner], texts: list[str],
              chronicle: Chronicle, tally: DayTally | None) -> tuple[list[InsertJob], TickResult]:
        """The tick's rows (for one transaction) and what it did (for the day's report); its records go
        to ``chronicle`` now."""
        s = self.s
        day, tick, label, stamp = d.day, d.tick, d.label, d.stamp
        action, activity, move_to, partner, conv_of = d.action, d.activity, d.move_to, d.partner, d.conv_of
        chats, stays = d.chats, d.stays
        ag, env = s.agents, s.env
        run, model = s.run_id, self.model_name
        acted = np.flatnonzero(action != act.NONE)
        # conversations, their turns, memories and relationship changes, as columns for
        # db.insert_columns; numpy arrays are read as lists once, since one element at a time
        # they cost more than the work done with them
        conv_rows: list[tuple[int, int, str, int, str, str, int, str, str]] = []
        rel_changes: dict[tuple[int, int], float] = {}
        turn_conv, turn_round, turn_agent, turn_text = [], [], [], []
        transcripts: dict[int, list[str]] = {}
        room = reporting_room(tally)              # the report keeps the day's first few transcripts only
        ids, names_of, loc_now = ag.ids.tolist(), ag.names, s.loc.tolist()
        loc_ids, place_names = s.loc_ids.tolist(), env.names
        made = recall.TickMemories()                   # the tick's memories, in the order they are made
        thoughts: list[tuple[int, str]] = []
        insights: list[tuple[int, str]] = []
        said: dict[int, list[tuple[str, str]]] = {}    # conversation index -> (name, text) of its turns
        first_conv = s.next_conv
        for (c, r, i), text in zip(owners, texts):
            if c < 0:
                (thoughts if c == REFLECTION else insights).append((i, text))
                continue
            turn_conv.append(first_conv + c)
            turn_round.append(r)
            turn_agent.append(ids[i])
            turn_text.append(text)
            said.setdefault(c, []).append((names_of[i], text))
            if c < room:
                transcripts.setdefault(c, []).append(f"{names_of[i]}: {text}")
        n_pairs = sum(len(m) * (len(m) - 1) // 2 for m, _, _ in chats)
        disagree = (s.rng.random(n_pairs) < 0.15).tolist()       # one draw per pair, in chat order
        k_pair = 0
        rels = s.rels
        activity_of = activity.tolist()
        for c, (group, kind, prompt) in enumerate(chats):
            conv = first_conv + c
            members = group.tolist()
            topic = d.topics[c]
            kind_name = "scripted" if prompt is not None else s.action_names[kind]
            where = loc_now[members[0]]
            conv_rows.append((conv, run, label, tick, kind_name, topic, loc_ids[where], model, stamp))
            names = [names_of[i] for i in members]
            shared = [ag.interest_sets[i] for i in members]
            step = 0.04 if kind == act.DUO else 0.02
            crossed: set[int] = set()                                    # members who disagreed with someone
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    delta = step * (1 + len(shared[x] & shared[y]))
                    if disagree[k_pair]:                                # a disagreement
                        delta = -delta
                        crossed.update((members[x], members[y]))
                    k_pair += 1
                    key = (members[x], members[y])
                    rel_changes[key] = rel_changes.get(key, 0.0) + delta
            # what each member remembers of it: what another said, with whom it was (as they stood before it)
            place = place_names[where]
            meta = f'{{"conversation":{conv},"day":"{label}","tick":{tick}}}'
            turns = said.get(c, [])
            for i in members:
                others = [n for n in names if n != names_of[i]]
                text = recall.chat_memory(kind_name, names_of[i], others, turns, place,
                                          s.act_names[activity_of[i]], topic, prompt)
                was = [rels.get((i, j)) or (None, None) for j in members if j != i]
                mkind, imp = recall.chat_importance(
                    kind_name, text, family=any(k is not None and k not in recall.NOT_FAMILY for k, _ in was),
                    close=any(s is not None and s >= 0.6 for _, s in was),
                    first_meeting=any(s is None for _, s in was), disagreement=i in crossed,
                    scripted=prompt is not None)
                made.add(i, mkind, text, imp, meta)
        rel_from, rel_to, rel_kind, rel_strength = [], [], [], []
        deltas = []
        for (a, b), change in rel_changes.items():                # made in chat order: deterministic
            for x, y in ((a, b), (b, a)):
                known, old = rels.get((x, y)) or (None, 0.0)
                v = min(1.0, max(-1.0, old + change))
                rel_from.append(ids[x])
                rel_to.append(ids[y])
                known = known or "acquaintance"        # a first meeting: as the database will have it
                rels.set((x, y), known, v)
                rel_kind.append(known)
                rel_strength.append(v)
            deltas.append((a, b, change))
        # world events: one per agent that acted, built column by column (most carry no metadata)
        act_col = activity[acted]
        loc_col = np.where(move_to[acted] >= 0, move_to[acted], s.loc[acted])
        meta_col = ["{}"] * len(acted)
        refused = d.refused_at
        special = np.flatnonzero((conv_of[acted] >= 0) | (action[acted] == act.MOVE) | (refused[acted] >= 0))
        who = acted[special]
        plain = self._plain_meta
        for k, i, ref, cv, pt, a, tl in zip(special.tolist(), who.tolist(), refused[who].tolist(), conv_of[who].tolist(),
                                            partner[who].tolist(), action[who].tolist(), s.travel_left[who].tolist()):
            if cv < 0:                           # a move or a refusal: few texts, made once
                key = (ref, tl if a == act.MOVE else -1)
                meta_text = plain.get(key)
                if meta_text is None:
                    parts = [f'"refused_by":{loc_ids[ref]}'] if ref >= 0 else []
                    if a == act.MOVE:
                        parts.append(f'"travel_ticks":{tl}')
                    plain[key] = meta_text = "{" + ",".join(parts) + "}"
                meta_col[k] = meta_text
                continue
            parts = []
            if ref >= 0:
                parts.append(f'"refused_by":{loc_ids[ref]}')
            if cv >= 0:
                parts.append(f'"conversation":{cv}')
            if pt >= 0:
                parts.append(f'"partner":{ids[pt]}')
            if a == act.MOVE:
                parts.append(f'"travel_ticks":{tl}')
            meta_col[k] = "{" + ",".join(parts) + "}"
        for custom, who in d.custom:             # a registered action's own metadata for its events
            metas = act.checked_meta(custom, custom.event_meta(d.view, who), len(who)) if len(who) else None
            if metas is not None:
                for k, meta in zip(np.searchsorted(acted, who).tolist(), metas):
                    meta_col[k] = meta
        n_ev = len(acted)
        stamps = s.minute_stamp
        jobs: list[InsertJob] = []                  # for db.insert_many, in order
        if self.pending_schedules:                   # a new day's plan commits with its first tick, or not at all
            jobs.append((_SQL_SCHEDULES, self.pending_schedules, None))
            self.pending_schedules = []
        jobs += [
            (_SQL_EVENTS, [run, ag.ids[acted], label, tick, self.names[action[acted]].tolist(),
                           s.act_ids[act_col], s.loc_ids[loc_col], meta_col, stamp], n_ev),
            (_SQL_CONVERSATIONS, [list(c) for c in zip(*conv_rows)] if conv_rows else [None] * 9, len(conv_rows)),
            (_SQL_TURNS, [turn_conv, turn_round, turn_agent, "agent", turn_text, model], len(turn_conv))]
        jobs += [
            self.remember(d, made, thoughts, insights),
            (_SQL_RELATIONSHIPS, [rel_from, rel_to, rel_kind, rel_strength, stamp], len(rel_from)),
            (SQL_STAYS, [run, [ids[a] for a, _, _ in stays], [loc_ids[o] for _, o, _ in stays],
                          [stamps(s) for _, _, s in stays], stamp], len(stays))]
        # the log first: it may run ahead of the database (resume cuts it back), never behind
        self.log_tick(chronicle, d, acted, loc_col, owners, requests, texts)
        result: TickResult = {"acted": acted, "action": action, "activity": activity, "loc": loc_col, "chats": chats,
                              "deltas": deltas, "transcripts": transcripts, "conv_base": s.next_conv,
                              "refused": d.refused_at, "scripted": d.outcomes, "clock": s.clock_of(day, tick),
                              "action_names": s.action_names}
        s.next_conv += len(chats)
        s.totals["events"] += n_ev
        s.totals["conversations"] += len(chats)
        return jobs, result

    def remember(self, d: Decision, made: recall.TickMemories, thoughts: list[tuple[int, str]],
                 insights: list[tuple[int, str]]) -> InsertJob:
        """The tick's memories into the agents' tables, after those of its
        conversations (``made``): the private thoughts, being turned away by
        a full place, and the day's insights.  A memory the agent already
        holds is left out.  Returns the insert for those kept."""
        s = self.s
        label, tick, stamp, micros = d.label, d.tick, d.stamp, d.micros
        meta = f'{{"day":"{label}","tick":{tick}}}'
        # a thought, or an insight, is remembered by its first sentences: what the model said of its own, not
        # the memories it was reminded of (which would nest, memory within memory, without end)
        for i, text in thoughts:
            text = excerpt(text, 160)
            made.add(i, "reflection", text, importance("reflection", text), meta)
        # what a registered action leaves in its agents' memories
        for action, who in d.custom:
            said = act.checked_memories(action, action.remember(d.view, who), len(who))
            for i, kept_text in zip(who.tolist(), said):
                if kept_text:
                    made.add(i, action.name, kept_text, importance(action.name, kept_text), meta)
        refused = d.refused_at
        turned = np.flatnonzero(refused >= 0)
        if len(turned):
            # one memory per place that turned the agent away, made once: most refusals are of agents
            # turned away before, so those are left out before any text is made
            places = refused[turned]
            for place in np.unique(places).tolist():
                text, h, imp, where = s.refusals[place]
                who = turned[places == place].tolist()
                for i, held in zip(who, s.memory.holding(h, who)):
                    if not held:
                        made.add(i, "refused", text, imp, f'{{"day":"{label}","tick":{tick},"location":{where}}}')
        for i, text in insights:
            text = excerpt(text, 200)
            made.add(i, "insight", text, importance("insight", text), meta)
        hashes = [norm_hash(t) for t in made.text]
        vectors = self.talk.embed(made.text) if self.talk.embedding and made.text else None
        kept = s.memory.add(made.agent, made.text, made.importance, micros // 60_000_000, hashes, vectors=vectors)
        if insights:                              # a reflection starts the count again
            s.memory.pending[[i for i, _ in insights]] = 0
        if tick == 0:
            s.day_memories = Counter()
        ids = s.agents.ids
        rows = [k for k, ok in enumerate(kept) if ok]
        kinds = [made.kind[k] for k in rows]
        s.day_memories.update(kinds)
        s.memories_total += len(rows)
        s.totals["memories"] = s.memories_total
        confidence = recall.CONFIDENCE
        return (_SQL_MEMORIES, [ids[[made.agent[k] for k in rows]] if rows else [], kinds,
                                [made.text[k] for k in rows], [confidence.get(k, 0.8) for k in kinds],
                                [hashes[k] for k in rows], [made.meta[k] for k in rows], stamp,
                                [made.importance[k] for k in rows]], len(rows))

    # --- the log ------------------------------------------------------------
    def log_finished(self, chronicle: Chronicle) -> None:
        """The log's last event: the run went through every tick (what replay checks for first)."""
        s = self.s
        micros = s.stamp(s.opt.days, s.cfg.ticks_per_day - 1)[1]
        chronicle.extend({"timestamp": np.full(1, micros, dtype=np.uint64),
                          "event_type": np.array(["run_finished"], dtype=object),
                          "payload": np.array([{"days": s.opt.days, "ticks_per_day": s.cfg.ticks_per_day}],
                                              dtype=object)})
        chronicle.flush()

    def log_roster(self, conn: apsw.Connection, chronicle: Chronicle) -> None:
        """The agents as the run starts (persona, interests, relationships),
        first in the log: what a replay rebuilds the run from."""
        ids = self.s.agents.ids
        top = int(ids[-1])
        # a run's agents are the first by id: the rows of agents past the last are not its
        interests: dict[int, list] = {}
        for aid, tag, score in conn.execute("SELECT agent_id, tag, score FROM interests WHERE agent_id <= ? "
                                            "ORDER BY agent_id, tag", (top,)):
            interests.setdefault(aid, []).append([tag, score])
        # the relationships as the run has them (read as it started, with its family ties), in pair order
        rels: dict[int, list] = {}
        id_of = ids.tolist()
        for a, b, kind, strength in self.s.rels.rows():
            rels.setdefault(id_of[a], []).append([id_of[b], kind, strength])
        memories: dict[int, list] = {}            # from before the run: what its agents can recall from the start
        for aid, kind, text, imp, made, h in conn.execute(
                "SELECT agent_id, kind, text, importance, created_at, norm_hash FROM memories WHERE agent_id <= ? "
                "ORDER BY id", (top,)):
            memories.setdefault(aid, []).append([kind, text, imp, made, h])
        payloads = []
        empty: dict = {}
        none: list = []
        for aid, name, bio, job, family, traits in conn.execute(
                "SELECT id, name, bio, job, family_json, traits_json FROM agents WHERE id <= ? ORDER BY id", (top,)):
            payloads.append({"id": aid, "name": name, "bio": bio, "job": job,
                             "family": empty if family == "{}" else json.loads(family),
                             "traits": json.loads(traits), "interests": interests.get(aid, none),
                             "relationships": rels.get(aid, none), "memories": memories.get(aid, none)})
        micros = self.s.stamp(1, 0)[1]
        chronicle.extend({"timestamp": np.full(len(payloads), micros, dtype=np.uint64),
                          "event_type": np.array(["agent"] * len(payloads), dtype=object),
                          "payload": np.array(payloads, dtype=object)})
        chronicle.flush()

    def log_tick(self, ch: Chronicle, d: Decision, acted: np.ndarray, loc_col: np.ndarray, owners: list[Owner],
                 requests: list[ChatRequest], texts: list[str]) -> None:
        s = self.s
        micros, day, tick, action, activity, conv_of = d.micros, d.day, d.tick, d.action, d.activity, d.conv_of
        n = len(acted)
        if n:
            ch.extend({"timestamp": np.full(n, micros, dtype=np.uint64),
                       "event_type": action[acted],            # codes into ACTIONS: no string per event
                       "values.agent": s.agents.ids[acted].astype(np.float64),
                       "values.day": np.full(n, day, dtype=np.float64),
                       "values.tick": np.full(n, tick, dtype=np.float64),
                       "values.activity": s.act_ids[activity[acted]].astype(np.float64),
                       "values.location": s.loc_ids[loc_col].astype(np.float64),
                       "values.conversation": np.where(conv_of[acted] >= 0, conv_of[acted], np.nan).astype(np.float64)},
                      labels={"event_type": s.action_names})
        by_conv: dict[int, list] = {}
        reflections: list[list[Any]] = []
        insights: list[list[Any]] = []
        ids = s.agents.ids.tolist()
        for (c, r, i), req, text in zip(owners, requests, texts):     # the seed names the request it answers
            if c >= 0:
                by_conv.setdefault(c, []).append([ids[i], r, text, req.seed, req.digest()])
            else:
                (reflections if c == REFLECTION else insights).append([ids[i], text, req.seed, req.digest()])
        model = self.model_name
        payloads = [{"conversation": s.next_conv + c, "model": model, "turns": turns}
                    for c, turns in sorted(by_conv.items())]
        if reflections:
            payloads.append({"conversation": None, "model": model, "reflections": reflections})
        if insights:
            payloads.append({"conversation": None, "model": model, "insights": insights})
        embedded = self.talk.take_embedded()
        if embedded:                             # what a replay needs to rank memories as this run did
            vecs = np.stack([v for _, v in embedded]).astype("<f4")
            payloads.append({"conversation": None, "model": model,
                             "embeddings": {"model": self.talk.model.embedding_model, "dim": int(vecs.shape[1]),
                                            "texts": [embedding_key(t) for t, _ in embedded],
                                            "vectors": base64.b64encode(vecs.tobytes()).decode("ascii")}})
        if payloads:
            m = len(payloads)
            ch.extend({"timestamp": np.full(m, micros, dtype=np.uint64),
                       "event_type": np.array(["lm_response"] * m, dtype=object),
                       "payload": np.array(payloads, dtype=object),
                       "values.day": np.full(m, day, dtype=np.float64),
                       "values.tick": np.full(m, tick, dtype=np.float64)})
        ch.flush()                               # a tick is whole in the log before its rows commit


class Checkpoint(TypedDict):
    """A run's state after a whole tick (runs.checkpoint_json; the arrays are in checkpoint_state)."""
    day: int
    tick: int
    rng: Mapping[str, Any]          # the generator's bit_generator.state
    next_conv: int
    slots_done: list[int]           # the day each scenario slot's action was last done (WorldState.slot_done)
    records: int                    # records in the event log
    totals: dict[str, int]          # events, conversations, memories
    tally: TallyState


@dataclass
class TickJob:
    """What the writer commits for one tick (see WorldRun.commit_tick)."""
    day: int
    tick: int
    label: str
    jobs: list[InsertJob]          # (sql, columns, rows) for db.insert_many
    state: Checkpoint
    arrays: bytes


_SQL_SCHEDULES = ("INSERT INTO agent_schedules (run_id, agent_id, day_label, slot_hour, planned_activity_id, "
                  "location_id, partner_agent_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_SQL_EVENTS = ("INSERT INTO world_events (run_id, agent_id, day_label, tick_index, action, activity_id, location_id, "
               "metadata_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SQL_CONVERSATIONS = ("INSERT INTO conversations (id, run_id, day_label, tick_index, kind, topic, location_id, model, "
                      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SQL_TURNS = ("INSERT INTO conversation_turns (conversation_id, round, agent_id, role, content, model) "
              "VALUES (?, ?, ?, ?, ?, ?)")
_SQL_MEMORIES = ("INSERT OR IGNORE INTO memories (agent_id, kind, text, confidence, norm_hash, metadata_json, "
                 "created_at, importance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_SQL_RELATIONSHIPS = ("INSERT INTO relationships (from_agent_id, to_agent_id, kind, strength, updated_at) "
                      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (from_agent_id, to_agent_id) DO UPDATE SET "
                      "strength = excluded.strength, updated_at = excluded.updated_at")
SQL_STAYS = "INSERT INTO agent_locations (run_id, agent_id, location_id, since_ts, until_ts) VALUES (?, ?, ?, ?, ?)"


def reporting_room(tally: DayTally | None) -> int:
    """How many of this tick's conversations the day's report can still show."""
    return max(0, MAX_TRANSCRIPTS - len(tally.transcripts)) if tally is not None else 0
