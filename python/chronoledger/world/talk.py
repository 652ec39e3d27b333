"""What the agents say in a tick, through the language model: every turn of
the tick's conversations (two rounds for a duo chat, one for a meeting), the
reflections, and at the day's end the insights; each request carrying what
the speaker recalls (retrieved from its memories), how it stands with the
others, its family and the clock."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from chronoledger.errors import ModelError
from chronoledger.world import actions as act
from chronoledger.world import recall
from chronoledger.world.memory import embedding_key, signature
from chronoledger.world.models import ChatRequest, LanguageModel
from chronoledger.world.policy import Decision
from chronoledger.world.results import INSIGHT, REFLECTION, Chat, Owner
from chronoledger.world.state import WorldState


class Talk:
    """The model's side of a run's ticks."""

    def __init__(self, state: WorldState, model: LanguageModel, known: dict[str, np.ndarray] | None = None):
        self.s, self.model = state, model
        #: with embedding relevance: vectors by text's key (embedding_key; each asked once a run: ``known``,
        #: a resumed run's, are those its log holds), and those asked since the log's last tick
        self.embedding = state.cfg.memory.relevance == "embedding"
        self._vectors: dict[str, np.ndarray] = dict(known or {})
        self.embedded: list[tuple[str, np.ndarray]] = []
        self._chats: list[Chat] = []
        self._topics: list[str] = []
        if self.embedding:
            state.memory.set_vectors(self.embed(state.memory.texts_held()))

    def talk(self, d: Decision) -> tuple[list[ChatRequest], list[Owner], list[str]]:
        return self._talk(d.day, d.tick, d.chats, d.reflect, d.activity, d.prompts, d.conv_of, d.partner, d.topics)

    def _talk(self, day: int, tick: int, chats: list[Chat], reflect: np.ndarray, activity: np.ndarray,
              prompts: dict[int, str], conv_of: np.ndarray, partner: np.ndarray, topics: list[str]
              ) -> tuple[list[ChatRequest], list[Owner], list[str]]:
        """Every turn of the tick's conversations, reflections and (at the
        day's last tick) insights, from the model: round 0 of every chat with
        the reflections and insights in one batch, then round 1 of the duo
        chats, which see round 0 (``history``).  Returns (requests, owners,
        texts) in conversation order, reflections then insights last; owners
        are (conversation index, or REFLECTION or INSIGHT; round; agent)."""
        s = self.s
        self._topics = topics
        last = tick == s.cfg.ticks_per_day - 1
        insight = np.flatnonzero(s.memory.pending >= s.cfg.memory.reflect_threshold) if last else reflect[:0]
        first, owners0 = self._requests(day, tick, chats, reflect, insight, activity, prompts, conv_of, partner, 0,
                                        None)
        texts0 = self._complete(first)
        history: dict[int, list[str]] = {}
        for (c, _r, i), text in zip(owners0, texts0):
            if c >= 0:
                history.setdefault(c, []).append(f"{s.agents.names[i]}: {text}")
        second, owners1 = self._requests(day, tick, chats, reflect, insight, activity, prompts, conv_of, partner, 1,
                                         history)
        texts1 = self._complete(second)
        turns: dict[int, list[tuple[ChatRequest, Owner, str]]] = {}
        for req, owner, text in zip(first + second, owners0 + owners1, texts0 + texts1):
            turns.setdefault(owner[0], []).append((req, owner, text))
        ordered = [t for c in sorted(k for k in turns if k >= 0) for t in turns[c]] + turns.get(REFLECTION, []) + \
            turns.get(INSIGHT, [])
        return [t[0] for t in ordered], [t[1] for t in ordered], [t[2] for t in ordered]

    def _complete(self, requests: list[ChatRequest]) -> list[str]:
        texts = self.model.complete(requests) if requests else []
        if len(texts) != len(requests) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ModelError(f"model {self.model.name}: returned {len(texts)} texts for {len(requests)} requests, "
                             f"or an empty one")
        return texts

    def _recall(self, micros: int, chats: list[Chat], reflect: np.ndarray, insight: np.ndarray, place: list[str],
                doing: list[str]) -> dict[tuple[int, int], tuple[str, ...]]:
        """What each speaker of the tick recalls, by (conversation index, or
        REFLECTION or INSIGHT; agent): the memories that best fit who they
        are with, where, doing what, about what; for an insight, the most
        important and recent ones."""
        mem, ag = self.s.memory, self.s.agents
        now = micros // 60_000_000
        who: list[int] = []
        query: list[int] = []
        keys: list[tuple[int, int]] = []
        name_sig = self.s.name_sig
        for c, (group, _kind, _prompt) in enumerate(chats):
            members = group.tolist()
            about = signature(self._topics[c])
            for i in members:
                q = about | signature(place[i]) | signature(doing[i])
                for j in members:
                    if j != i:
                        q |= name_sig[j]
                who.append(i)
                query.append(q)
                keys.append((c, i))
        for i in reflect.tolist():
            interests = ag.interests[i]
            who.append(i)
            query.append(signature(interests[0] if interests else doing[i]) | signature(place[i]) |
                         signature(doing[i]))
            keys.append((REFLECTION, i))
        query_vecs = None
        if self.embedding and who:
            # what the speaker is about to do, in words, against each memory's words
            asks = [self._query_text(c, i, place, doing) for c, i in keys]
            vecs = self.embed(asks)
            query_vecs = np.stack([vecs[a] for a in asks])
        found = mem.retrieve(np.array(who, dtype=np.int64), np.array(query, dtype=np.uint64), now,
                             query_vecs=query_vecs)
        out = {key: tuple(texts) for key, texts in zip(keys, found)}
        if len(insight):
            deep = mem.retrieve(insight, np.zeros(len(insight), dtype=np.uint64), now,
                                k=self.s.cfg.memory.reflect_memories, relevance=False)
            out.update({(INSIGHT, i): tuple(texts) for i, texts in zip(insight.tolist(), deep)})
        return out

    def _query_text(self, c: int, i: int, place: list[str], doing: list[str]) -> str:
        ag = self.s.agents
        if c == REFLECTION:
            return f"{ag.interests[i][0] if ag.interests[i] else doing[i]}; {doing[i]} at {place[i]}"
        others = ", ".join(ag.names[j] for j in self._chats[c][0].tolist() if j != i)
        return f"{self._topics[c]}; with {others}; {doing[i]} at {place[i]}"

    def embed(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The unit vectors of ``texts`` from the model, each text asked once
        in a run; what is asked is logged with the tick (a replay serves it)."""
        vectors = self._vectors
        keys = {t: embedding_key(t) for t in texts}
        new = [t for t, k in keys.items() if k not in vectors]
        if new:
            got = np.asarray(self.model.embed(new), dtype=np.float32)
            if got.ndim != 2 or got.shape[0] != len(new):
                raise ModelError(f"model {self.model.name}: returned {got.shape[0] if got.ndim else 0} vectors for "
                                 f"{len(new)} texts")
            for text, vec in zip(new, got):
                vectors[keys[text]] = vec
                self.embedded.append((text, vec))
        return {t: vectors[k] for t, k in keys.items()}

    def _relations(self, i: int, members: list[int]) -> tuple[str, ...]:
        names, rels = self.s.agents.names, self.s.rels
        return tuple(recall.relation_line(names[j], *(rels.get((i, j)) or (None, None))) for j in members if j != i)

    def _requests(self, day: int, tick: int, chats: list[Chat], reflect: np.ndarray, insight: np.ndarray,
                  activity: np.ndarray, prompts: dict[int, str], conv_of: np.ndarray, partner: np.ndarray, rnd: int,
                  history: dict[int, list[str]] | None) -> tuple[list[ChatRequest], list[Owner]]:
        s = self.s
        ag, env = s.agents, s.env
        requests: list[ChatRequest] = []
        owners: list[Owner] = []
        base = (s.opt.seed * 1_000_003 + day * 10_007 + tick) * 1_000_003
        # plain lists: indexing numpy arrays one element at a time costs more than the rest of a request
        place = [env.names[x] for x in s.loc.tolist()]
        doing = [s.act_names[x] for x in activity.tolist()]
        stamp, micros = s.stamp(day, tick)
        clock = recall.clock_text(datetime.fromisoformat(stamp[:19]))
        if rnd == 0:                # a duo chat's second round recalls what its first did, standing as it did
            self._chats = chats
            self._recalled = self._recall(micros, chats, reflect, insight, place, doing)
            self._stands: dict[tuple[int, int], tuple[str, ...]] = {}
        recalled, stands = self._recalled, self._stands
        family = s.family_lines
        for c, (group, kind, prompt) in enumerate(chats):
            if rnd == 1 and kind != act.DUO:      # groups speak once; duo chats answer each other
                continue
            conv = s.next_conv + c
            members = group.tolist()
            names = [ag.names[i] for i in members]
            topic = self._topics[c]
            if rnd == 0:
                for i in members:
                    conv_of[i] = conv
                if kind == act.DUO:
                    partner[members[0]], partner[members[1]] = members[1], members[0]
            seen = tuple(history.get(c, ())) if history else ()
            for k, i in enumerate(members):
                if rnd == 0:
                    stands[(c, i)] = relations = self._relations(i, members)
                else:
                    relations = stands[(c, i)]
                req = ChatRequest(s.action_names[kind] if prompt is None else "scripted", names[k], ag.bios[i],
                                  ag.jobs[i], ag.interests[i], tuple(n for n in names if n != names[k]),
                                  place[i], doing[i], topic, prompt, rnd,
                                  (base + conv * 131 + rnd * 17 + k) & 0xFFFFFFFFFFFFFFFF, seen,
                                  recalled[(c, i)], relations, family[i], clock)
                requests.append(req)
                owners.append((c, rnd, i))
        if rnd == 0:
            for i in reflect.tolist():
                req = ChatRequest("solo_reflection", ag.names[i], ag.bios[i], ag.jobs[i], ag.interests[i], (),
                                  place[i], doing[i], ag.interests[i][0] if ag.interests[i] else doing[i],
                                  prompts.get(i), 0, (base * 7 + i * 2_654_435_761) & 0xFFFFFFFFFFFFFFFF, (),
                                  recalled[(REFLECTION, i)], (), family[i], clock)
                requests.append(req)
                owners.append((REFLECTION, 0, i))
            for i in insight.tolist():
                req = ChatRequest("insight", ag.names[i], ag.bios[i], ag.jobs[i], ag.interests[i], (),
                                  place[i], doing[i], ag.interests[i][0] if ag.interests[i] else "the people around me",
                                  None, 0, (base * 11 + i * 2_654_435_761 + 1) & 0xFFFFFFFFFFFFFFFF, (),
                                  recalled[(INSIGHT, i)], (), family[i], clock)
                requests.append(req)
                owners.append((INSIGHT, 0, i))
        return requests, owners

    def take_embedded(self) -> list[tuple[str, np.ndarray]]:
        """The vectors asked since the last call (for the tick's log)."""
        out, self.embedded = self.embedded, []
        return out
