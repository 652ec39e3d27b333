"""Agents that remember: the memory table (chronoledger.world.memory), what
a run makes of what was said and done (chronoledger.world.recall), and what
each model request carries -- retrieved memories, relationships, family and
the clock -- asserted on the stored rows and on the requests a model gets."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from _world_data import ONE_PLACE_CONFIG, rows, run_world, seed_family, write
from hypothesis import given, settings
from hypothesis import strategies as st
from chronoledger.errors import ConfigError
from chronoledger.world import config as wconfig
from chronoledger.world import actions, models, recall, replay, scheduler, store
from chronoledger.world.memory import (
    MemorySettings,
    MemoryStream,
    excerpt,
    importance,
    minute_of,
    norm_hash,
    signature,
)


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


# --- the table ------------------------------------------------------------------------------------------

def test_a_memory_is_kept_once_per_agent():
    m = MemoryStream(2, MemorySettings(slots=4))
    kept = m.add([0, 0, 1], ["Ben said hi.", "Ben said hi.", "Ben said hi."], [3, 3, 3], 100,
                 [sha("a"), sha("a"), sha("a")])
    assert kept == [True, False, True]
    assert m.add([0], ["again"], [3], 200, [sha("a")]) == [False]
    assert m.filled.tolist() == [1, 1]


def test_the_least_important_then_oldest_memory_gives_way():
    m = MemoryStream(1, MemorySettings(slots=3, retrieve=3))
    m.add([0, 0, 0], ["first", "second", "third"], [5, 2, 2], [10, 20, 30], [sha("1"), sha("2"), sha("3")])
    m.add([0], ["fourth"], [9], 40, [sha("4")])
    held = sorted(m.texts[t] for t in m.text_id[0])
    assert held == ["first", "fourth", "third"]          # "second": importance 2, older than "third"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 10), st.integers(0, 5)), min_size=1, max_size=40),
       st.integers(1, 5))
def test_a_table_depends_on_the_order_of_memories_never_on_batches(memories, cut):
    """Added all at once or a few at a time, the same memories fill the same slots (a resumed run
    rebuilds its table from the database in one batch)."""
    texts = [f"memory {k} of agent {a}" for k, (a, _, _) in enumerate(memories)]
    agents = [a for a, _, _ in memories]
    imps = [i for _, i, _ in memories]
    minutes = [100 + k * 7 + d for k, (_, _, d) in enumerate(memories)]
    hashes = [sha(t) for t in texts]
    whole = MemoryStream(4, MemorySettings(slots=3, retrieve=3))
    whole.add(agents, texts, imps, minutes, hashes)
    parts = MemoryStream(4, MemorySettings(slots=3, retrieve=3))
    for start in range(0, len(texts), cut):
        sl = slice(start, start + cut)
        parts.add(agents[sl], texts[sl], imps[sl], minutes[sl], hashes[sl])
    for name in ("text_id", "minute", "imp", "sig", "filled", "pending"):
        assert np.array_equal(getattr(whole, name), getattr(parts, name)), name


def test_retrieval_weighs_recency_importance_and_relevance():
    st_ = MemorySettings(slots=8, retrieve=2)
    m = MemoryStream(3, st_)
    # agent 0: two alike memories, one an hour old, one two days old: the recent one first
    m.add([0, 0], ["Walked in the park.", "Walked by the river."], [3, 3], [60 * 47, 0], [sha("p"), sha("r")])
    # agent 1: the same age, importance 9 before importance 2
    m.add([1, 1], ["A quiet lunch.", "Ben told me he is moving to Lisbon."], [2, 9], [0, 0], [sha("l"), sha("m")])
    # agent 2: the memory about chess answers a question about chess
    m.add([2, 2], ["Cy told me about chess openings.", "Cy told me about gardening."], [3, 3], [0, 0],
          [sha("c"), sha("g")])
    now = 60 * 48
    got = m.retrieve(np.array([0, 1, 2]), np.array([0, 0, signature("chess with Cy")], dtype=np.uint64), now)
    assert got[0] == ["Walked in the park.", "Walked by the river."]
    assert got[1] == ["Ben told me he is moving to Lisbon.", "A quiet lunch."]
    assert got[2] == ["Cy told me about chess openings.", "Cy told me about gardening."]
    # k, and an agent with nothing to remember
    assert m.retrieve(np.array([2]), np.array([signature("gardening")], dtype=np.uint64), now, k=1) == \
        [["Cy told me about gardening."]]
    empty = MemoryStream(2, st_)
    assert empty.retrieve(np.array([0, 1]), np.zeros(2, dtype=np.uint64), now) == [[], []]


def test_memories_stored_before_load_in_order_with_their_times():
    m = MemoryStream(2, MemorySettings(slots=4))
    kept = m.load([(0, "Ava spent time reflecting", 0.6, "2025-11-18 11:29:38.824966", "reflection_0_2"),
                   (0, "Ava spent time reflecting", 5, "2025-11-18T11:30:00Z", "reflection_0_2"),
                   (1, "Ben met Ava.", None, "not a time", sha("x"))])
    assert kept == 2                                    # the sandbox's own hash form keeps a memory once too
    assert m.minute[0, 0] == minute_of("2025-11-18T11:29:00Z")
    assert m.imp[0, 0] == 1 and m.imp[1, 0] == 3        # a stored 0.6 is at least 1; none is an everyday 3
    assert m.minute[1, 0] == 0
    assert not m.pending.any()                          # what was before the run makes no one reflect


def test_importance_by_rules():
    assert importance("conversation", "We talked about chess.") == 3
    assert importance("conversation", "We talked about chess.", family=True, first_meeting=True) == 6
    assert importance("conversation", "Ben said he lost his job.", disagreement=True) == 6
    assert importance("refused", "The Cafe was full and turned me away.") == 1
    assert importance("scripted", "I love it", family=True, first_meeting=True, disagreement=True) == 10


def test_excerpts_and_hashes():
    assert excerpt("Ah, Ben! I was hoping to see you at the cafe. More.") == "Ah, Ben! I was hoping to see you at the cafe."
    assert excerpt("One sentence that is long enough to stand on its own. Two.") == \
        "One sentence that is long enough to stand on its own."
    long = "word " * 60
    cut = excerpt(long, 50)
    assert len(cut) <= 50 and cut.endswith("...")
    assert norm_hash("Hello,   World!") == norm_hash("hello world") != norm_hash("hello, world!!x")
    assert len({norm_hash(t) for t in ["Zoë said — yes", "Zoé said — yes", "カフェで話した"]}) == 3


def test_family_forms():
    assert recall.family_pairs('{"spouse": "Ben", "children": ["Cy", "Di"]}') == \
        [("spouse", "Ben"), ("child", "Cy"), ("child", "Di")]          # "Cy is your child", not "children"
    assert recall.family_pairs('[{"name": "Ben", "relation": "brother"}]') == [("brother", "Ben")]
    assert recall.family_pairs("not json") == recall.family_pairs(None) == recall.family_pairs("{}") == []


def test_memory_settings_are_checked_all_at_once(tmp_path):
    cfg = wconfig.load_config(write(tmp_path / "c.yaml", "memory: {retrieve: 5, weights: {relevance: 2}}\n"))
    assert cfg.memory.retrieve == 5 and cfg.memory.weight_relevance == 2.0
    assert cfg.memory.slots == 32 and cfg.memory.weight_recency == 1.0        # the rest from the defaults
    bad = write(tmp_path / "bad.yaml", "memory: {retrieve: 50, colour: red}\nguardrails: {max_actions_per_agent_per_day: -1}\n")
    with pytest.raises(ConfigError) as err:
        wconfig.load_config(bad)
    assert "memory.colour: unknown key" in str(err.value) and "guardrails.max_actions_per_agent_per_day" in str(err.value)
    with pytest.raises(ConfigError, match=r"memory.retrieve: 9 must not exceed memory.slots \(4\)"):
        wconfig.load_config(write(tmp_path / "b2.yaml", "memory: {retrieve: 9, slots: 4}\n"))


# --- a run ----------------------------------------------------------------------------------------------

class Recording(models.OfflineModel):
    """The offline model, keeping every request it was asked."""

    def __init__(self):
        self.requests: list[models.ChatRequest] = []

    def complete(self, requests):
        self.requests += requests
        return super().complete(requests)


@pytest.fixture
def family_world(tmp_path):
    cfg = wconfig.load_config(write(tmp_path / "one.yaml", ONE_PLACE_CONFIG))
    db = tmp_path / "world.db"
    seed_family(db, "chess:0.9,film:0.5")
    return cfg, db


def test_family_is_a_relationship_and_every_request_says_who_and_when(family_world):
    cfg, db = family_world
    model = Recording()
    scheduler.run(db, cfg, model, scheduler.RunOptions(days=2, seed=1, report_format="none"))
    assert rows(db, "SELECT from_agent_id, to_agent_id, kind FROM relationships ORDER BY 1") == \
        [(1, 2, "spouse"), (2, 1, "family")]
    chats = [r for r in model.requests if r.kind == "duo_chat"]
    ava = [r for r in chats if r.speaker == "Ava"]
    assert ava and all(r.family == ("spouse: Ben",) for r in ava)
    assert all(r.relations[0].startswith("Ben is your spouse (close") for r in ava)
    ben = [r for r in chats if r.speaker == "Ben"]
    # Ben has Ava as family too (the relationship her family_json made the other way round)
    assert all(r.relations[0].startswith("Ava is your family (close") and r.family == ("family: Ava",) for r in ben)
    # the clock of each tick, in words, and in the messages a server gets
    first = chats[0]
    assert first.clock == "Monday 5 January 2026, 08:00"
    user = first.messages()[1]["content"]
    assert "It is Monday 5 January 2026, 08:00." in user and "How you stand with them: Ben is your spouse" in user
    assert "Your family: spouse: Ben." in first.messages()[0]["content"]


def test_requests_recall_what_was_said_before(family_world):
    cfg, db = family_world
    model = Recording()
    scheduler.run(db, cfg, model, scheduler.RunOptions(days=2, seed=1, report_format="none"))
    stored = {t for (t,) in rows(db, "SELECT text FROM memories")}
    first_chat = next(r for r in model.requests if r.kind == "duo_chat")
    assert first_chat.memories == ()                    # nothing to remember yet
    later = [r for r in model.requests if r.kind == "duo_chat" and r.clock.startswith("Tuesday")]
    assert later and all(1 <= len(r.memories) <= cfg.memory.retrieve for r in later)
    assert all(set(r.memories) <= stored for r in later)
    # what Ava recalls on day two is what Ben said to her (her memories), never Ben's own
    ava_memories = {t for (t,) in rows(db, "SELECT text FROM memories WHERE agent_id = 1")}
    assert all(set(r.memories) <= ava_memories for r in later if r.speaker == "Ava")
    # the offline model brings some of it up: a dry run shows memory working
    turns = [t for (t,) in rows(db, "SELECT content FROM conversation_turns")]
    assert any(m in t for t in turns for m in ava_memories)
    assert "What you remember (most relevant first):\n- " in later[0].messages()[1]["content"]


def test_no_one_says_the_same_line_twice_in_a_conversation(tmp_path):
    result = run_world(tmp_path / "w.db", wconfig.load_config(), agents=60, days=2, seed=4, invent_agents=True)
    assert result.conversations > 50
    for conv, in rows(tmp_path / "w.db", "SELECT id FROM conversations"):
        said = [t for (t,) in rows(tmp_path / "w.db", "SELECT content FROM conversation_turns WHERE "
                                                       "conversation_id = ?", (conv,))]
        assert len(said) == len(set(said)), said


def test_insights_at_the_end_of_a_day_from_the_most_important_memories(tmp_path, family_world):
    _cfg, db = family_world
    cfg = wconfig.load_config(write(tmp_path / "low.yaml", ONE_PLACE_CONFIG + "memory: {reflect_threshold: 4}\n"))
    model = Recording()
    scheduler.run(db, cfg, model, scheduler.RunOptions(days=1, seed=1, report_format="json",
                                                       reports_dir=tmp_path / "r"))
    asked = [r for r in model.requests if r.kind == "insight"]
    assert {r.speaker for r in asked} == {"Ava", "Ben"}
    assert all(r.clock.endswith(f"{cfg.end_hour - 1:02d}:00") for r in asked)     # the day's last tick
    assert all(1 <= len(r.memories) <= cfg.memory.reflect_memories for r in asked)
    insights = rows(db, "SELECT agent_id, text, importance FROM memories WHERE kind = 'insight'")
    assert len(insights) == 2 and all(imp >= 5 for _, _, imp in insights)
    # an insight is made of what it drew on
    for r in asked:
        text = next(t for a, t, _ in insights if a == (1 if r.speaker == "Ava" else 2))
        assert excerpt(r.memories[0], 40)[:30] in text
    report = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    assert report["new_memories_by_kind"]["insight"] == 2


def test_memories_from_before_the_run_are_recalled_and_replayed(family_world):
    cfg, db = family_world
    conn = store.connect(db)
    conn.execute("INSERT INTO memories (agent_id, kind, text, confidence, norm_hash, created_at, importance) "
                 "VALUES (1, 'fact', 'Ben proposed to me in Lisbon.', 1.0, 'lisbon', '2025-06-01T10:00:00Z', 9)")
    conn.close()
    model = Recording()
    result = scheduler.run(db, cfg, model, scheduler.RunOptions(days=1, seed=2, report_format="none"))
    ava = [r for r in model.requests if r.speaker == "Ava"]
    assert ava[0].memories[0] == "Ben proposed to me in Lisbon."
    assert replay.replay(result.chronicle).matches             # the log carries it: no database needed
    # a replay whose log lost that memory is told so
    roster = [json.loads(p) for e, p in zip(*_log(result.chronicle)) if e == "agent"]
    assert roster[0]["memories"][0][1] == "Ben proposed to me in Lisbon."


def _log(path):
    from chronoledger.chronicle import Chronicle
    with Chronicle.open(path) as ch:
        cols = ch.to_numpy(["event_type", "payload"])
    return cols["event_type"], cols["payload"]


def test_stored_memories_carry_importance(tmp_path):
    run_world(tmp_path / "w.db", wconfig.load_config(), agents=40, seed=3, invent_agents=True)
    got = rows(tmp_path / "w.db", "SELECT kind, min(importance), max(importance), count(*) FROM memories GROUP BY kind")
    kinds = {k: (lo, hi, n) for k, lo, hi, n in got}
    assert {"conversation", "reflection"} <= set(kinds)
    assert all(1 <= lo <= hi <= 10 for lo, hi, _ in kinds.values())
    assert kinds["conversation"][1] > kinds["reflection"][0]
    quoted = rows(tmp_path / "w.db", "SELECT text FROM memories WHERE kind = 'conversation' LIMIT 20")
    assert quoted and all(re.fullmatch(r'Agent \d+ told me at the \w+ about [\w ]+: ".+"', t) for (t,) in quoted)


def test_relevance_by_embedding_ranks_replays_and_resumes(tmp_path, family_world):
    """With memory.relevance: embedding, relevance is the cosine of the model's vectors (the offline
    model's hashed words here), every vector asked is logged, and a replay ranks as the run did."""
    _cfg, db = family_world
    cfg = wconfig.load_config(write(tmp_path / "emb.yaml", ONE_PLACE_CONFIG + "memory: {relevance: embedding}\n"))
    asked: list[list[str]] = []

    class Embedding(Recording):
        def embed(self, texts):
            asked.append(list(texts))
            return super().embed(texts)
    model = Embedding()
    result = scheduler.run(db, cfg, model, scheduler.RunOptions(days=2, seed=3, report_format="none"))
    flat = [t for batch in asked for t in batch]
    assert flat and len(flat) == len(set(flat))                      # each text embedded once in a run
    later = [r for r in model.requests if r.kind == "duo_chat" and r.clock.startswith("Tuesday")]
    assert later and all(r.memories for r in later)
    assert replay.replay(result.chronicle).matches
    # a model without embeddings cannot run such a world: said before anything is written
    class NoVectors(models.LanguageModel):
        name = "plain"

        def complete(self, requests):
            return ["hi"] * len(requests)
    with pytest.raises(ConfigError, match="memory.relevance is embedding, and the plain model makes no embeddings"):
        scheduler.run(tmp_path / "other.db", cfg, NoVectors(), scheduler.RunOptions(agents=2, invent_agents=True))
    assert not (tmp_path / "other.db").exists() or rows(tmp_path / "other.db", "SELECT count(*) FROM runs") == [(0,)]


def test_embedding_relevance_prefers_the_memory_about_the_question():
    m = MemoryStream(1, MemorySettings(slots=4, retrieve=1, weight_recency=0, weight_importance=0))
    texts = ["Cy told me about chess openings.", "Cy told me about growing tomatoes."]
    vecs = models.OfflineModel().embed(texts + ["chess"])
    m.add([0, 0], texts, [3, 3], 0, [sha(t) for t in texts], vectors=dict(zip(texts, vecs[:2])))
    got = m.retrieve(np.array([0]), np.zeros(1, dtype=np.uint64), 60, query_vecs=vecs[2:])
    assert got == [["Cy told me about chess openings."]]


# --- an action of one's own -----------------------------------------------------------------------------

class Nap(actions.Action):
    """Anywhere but at the office; remembered; its events say how long."""
    name = "nap"
    default_weight = 0.0

    def allowed(self, view, agents):
        return np.array([view.place_names[p] != "office" for p in view.loc[agents].tolist()], dtype=bool)

    def event_meta(self, view, agents):
        return ['{"minutes": 20}' for _ in agents]

    def remember(self, view, agents):
        return ["I had a short nap." for _ in agents]


@pytest.fixture
def napping():
    actions.register_action(Nap())
    try:
        yield
    finally:
        actions.unregister_action("nap")


def test_a_registered_action_is_chosen_written_remembered_reported_and_replayed(tmp_path, napping):
    cfg = wconfig.load_config(write(tmp_path / "nap.yaml", "action_weights: {nap: 5.0}\n"))
    result = run_world(tmp_path / "w.db", cfg, agents=30, days=1, seed=2, invent_agents=True,
                       report_format="json", reports_dir=tmp_path / "r")
    naps = rows(tmp_path / "w.db", "SELECT e.agent_id, l.name, e.metadata_json FROM world_events e "
                                   "JOIN locations l ON l.id = e.location_id WHERE action = 'nap'")
    assert len(naps) > 10 and "office" not in {where for _, where, _ in naps}     # only where it is allowed
    assert {m for _, _, m in naps} == {'{"minutes": 20}'}
    kept = rows(tmp_path / "w.db", "SELECT DISTINCT agent_id FROM memories WHERE kind = 'nap'")
    assert {a for (a,) in kept} == {a for a, _, _ in naps}              # each napper remembers it, once
    report = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    assert report["actions"]["nap"] == len(naps)
    assert replay.replay(result.chronicle).matches


def test_a_registered_action_is_needed_to_replay_and_names_are_checked(tmp_path, napping):
    cfg = wconfig.load_config(write(tmp_path / "nap.yaml", "action_weights: {nap: 5.0}\n"))
    result = run_world(tmp_path / "w.db", cfg, agents=10, seed=2, invent_agents=True)
    actions.unregister_action("nap")
    with pytest.raises(ConfigError, match=r"action_weights.nap: not an action type .*register_action"):
        replay.replay(result.chronicle)
    actions.register_action(Nap())
    with pytest.raises(ConfigError, match="already an action named 'nap'"):
        actions.register_action(Nap())

    class Bad(actions.Action):
        name = "2 words"
    with pytest.raises(ConfigError, match="not an Action with a name"):
        actions.register_action(Bad())


def test_a_resumed_run_with_embedding_relevance_logs_what_an_unstopped_one_does(tmp_path):
    """The vectors a stopped run asked for are read back from its log, not asked (and logged) again."""
    cfg = wconfig.load_config(write(tmp_path / "e.yaml", "memory: {relevance: embedding, slots: 6, "
                                                           "reflect_threshold: 3}\n"))
    logs = {}
    for name, stop in (("whole", None), ("stopped", (2, 3))):
        d = tmp_path / name
        d.mkdir()
        original = scheduler.WorldRun.tick

        def tick(self, day, t, stop=stop):
            if (day, t) == stop:
                raise KeyboardInterrupt
            return original(self, day, t)
        scheduler.WorldRun.tick = tick
        try:
            try:
                run_world(d / "w.db", cfg, agents=12, days=3, seed=5, invent_agents=True)
            except KeyboardInterrupt:
                scheduler.WorldRun.tick = original
                scheduler.resume(d / "w.db", models.make_model("offline"), report_format="none")
        finally:
            scheduler.WorldRun.tick = original
        logs[name] = d / "w-run-1.cmeta"
    from chronoledger.chronicle import Chronicle
    with Chronicle.open(logs["whole"]) as a, Chronicle.open(logs["stopped"]) as b:
        whole, stopped = a.to_numpy(["event_type", "payload"]), b.to_numpy(["event_type", "payload"])
    assert list(whole["event_type"]) == list(stopped["event_type"])
    assert list(whole["payload"]) == list(stopped["payload"])         # the same vectors, logged once
    assert any('"embeddings"' in p for p in whole["payload"] if isinstance(p, str))
    assert replay.replay(logs["stopped"]).matches


class Careless(actions.Action):
    """An action whose answers are wrong in the way ``mode`` says."""
    name = "careless"
    mode = ""

    def allowed(self, view, agents):
        if self.mode == "allowed_short":
            return np.ones(max(0, len(agents) - 1), dtype=bool)
        if self.mode == "allowed_str":
            return "yes"
        return np.ones(len(agents), dtype=bool)

    def event_meta(self, view, agents):
        return {"meta_short": ['{"a": 1}'] * (len(agents) - 1), "meta_str": '{"a": 1}',
                "meta_nan": ['{"a": NaN}'] * len(agents)}.get(self.mode)

    def remember(self, view, agents):
        return {"rem_str": "I napped.", "rem_int": [42] * len(agents), "rem_long": ["x"] * (len(agents) + 1),
                "rem_huge": ["x" * 5000] * len(agents), "rem_surrogate": ["nap \ud800"] * len(agents),
                "rem_nul": ["nap\x00nap"] * len(agents)}.get(self.mode)


@pytest.mark.parametrize("mode, message", [
    ("allowed_short", r"action careless: allowed\(\) gave shape \(\d+,\), dtype bool, not one bool per agent"),
    ("allowed_str", r"action careless: allowed\(\) gave str, not one bool per agent"),
    ("meta_short", r"action careless: event_meta\(\) gave a list of \d+, not a list of one JSON object per agent"),
    ("meta_str", r"action careless: event_meta\(\) gave a str, not a list"),
    ("meta_nan", r"action careless: event_meta\(\) gave '\{\"a\": NaN\}', not a JSON object"),
    ("rem_str", r"action careless: remember\(\) gave a str, not a list of one text"),
    ("rem_int", r"action careless: remember\(\) gave a int, not a text"),
    ("rem_long", r"action careless: remember\(\) gave a list of \d+, not a list"),
    ("rem_huge", r"action careless: remember\(\) gave a text of 5,000 characters \(at most 2,000\)"),
    ("rem_surrogate", r"action careless: remember\(\) gave a text that is not UTF-8"),
    ("rem_nul", r"action careless: remember\(\) gave a text with a NUL character"),
])
def test_a_registered_actions_wrong_answers_are_named_and_the_run_resumes(tmp_path, mode, message):
    careless = Careless()
    careless.mode = mode
    actions.register_action(careless)
    try:
        cfg = wconfig.load_config(write(tmp_path / "c.yaml", "action_weights: {careless: 50.0}\n"))
        with pytest.raises(ConfigError, match=message):
            run_world(tmp_path / "w.db", cfg, agents=8, seed=1, invent_agents=True)
        careless.mode = ""                       # fixed: the stopped run goes on
        scheduler.resume(tmp_path / "w.db", models.make_model("offline"), report_format="none")
    finally:
        actions.unregister_action("careless")


def test_an_action_may_not_share_an_activitys_name_nor_be_spelt_otherwise(tmp_path):
    class Reading(actions.Action):
        name = "reading"                          # an activity of the packaged config
    cfg = wconfig.load_config()
    actions.register_action(Reading())
    try:
        with pytest.raises(ConfigError, match="'reading' is both an activity and a registered action type"):
            run_world(tmp_path / "w.db", cfg, agents=2, invent_agents=True)
    finally:
        actions.unregister_action("reading")

    class Shouty(actions.Action):
        name = "Nap"
    with pytest.raises(ConfigError, match="lower-case ASCII letters"):
        actions.register_action(Shouty())


def test_memory_weights_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="memory.weights: must be a mapping, found int"):
        wconfig.load_config(write(tmp_path / "w.yaml", "memory: {weights: 0}\n"))


def test_a_speaker_brings_a_memory_up_once_in_a_conversation():
    memories = ('Ben told me at the Cafe about film: "I saw it twice."',)
    model = models.OfflineModel()
    for seed in range(200):
        first = model.complete([models.ChatRequest("duo_chat", "Ava", "", "", ("film",), ("Ben",), "cafe", None,
                                                   "film", None, 0, seed, (), memories)])[0]
        again = model.complete([models.ChatRequest("duo_chat", "Ava", "", "", ("film",), ("Ben",), "cafe", None,
                                                   "film", None, 1, seed + 1, (f"Ava: {first}", "Ben: Sure."),
                                                   memories)])[0]
        assert not (memories[0] in first and memories[0] in again)
    assert excerpt('She said "wait, I') == 'She said "wait, I"'             # a quotation left open is closed


@pytest.mark.parametrize("when", ["1969-12-31", "6054-01-01"])
def test_a_start_date_the_times_cannot_hold_is_refused(tmp_path, when):
    with pytest.raises(ConfigError, match=f"start_date: {when} is outside 1970-01-01..5999-12-31"):
        wconfig.load_config(write(tmp_path / "d.yaml", f"start_date: {when}\n"))
