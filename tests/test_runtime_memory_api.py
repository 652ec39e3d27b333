"""What agent builders use every day (issue 19): full-text search over
turns, the last turns or a token budget of them for a prompt, replay a page
at a time, proposals by status and risk, skill states, profile versions; and
the batch append's column-at-a-time check, which must store exactly what
the turn-by-turn check stores."""

from __future__ import annotations

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronoledger.errors import QueryError, ValidationError
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.runtime import sessions as sessions_mod


@pytest.fixture
def store(tmp_path):
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        yield s


def chat(s, lines, actor="tom"):
    sid = s.start_session(actor)["id"]
    s.append_turns(sid, [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(lines)])
    return sid


# --- search -------------------------------------------------------------------------------------------

def test_search_finds_every_word_in_any_case_and_accent_best_first(store):
    a = chat(store, ["The nightly sync failed on the Café server", "Retry it after the lock clears",
                     "sync sync sync: the sync is back"])
    b = chat(store, ["Nothing about that here", "the café opens at nine"])
    hits = store.search_turns("sync")
    assert [h["content"] for h in hits] == ["sync sync sync: the sync is back",
                                            "The nightly sync failed on the Café server"]
    assert hits[0]["rank"] < hits[1]["rank"] and "[sync]" in hits[0]["snippet"]
    assert {h["session_id"] for h in store.search_turns("cafe")} == {a, b}          # accents and case ignored
    assert [h["session_id"] for h in store.search_turns("CAFE", session_id=b)] == [b]
    assert store.search_turns("sync café") and store.search_turns("sync opens") == []  # every word must occur
    # punctuation and FTS5's operators are plain text in a words query
    assert [h["content"] for h in store.search_turns('lock "clears" OR')] == []
    assert [h["content"] for h in store.search_turns('lock "clears"')] == ["Retry it after the lock clears"]


def test_fts5_syntax_and_its_errors(store):
    chat(store, ["resume the sync", "retry the sync", "syncing again"])
    assert len(store.search_turns("resume OR retry", syntax="fts5")) == 2
    assert len(store.search_turns("sync*", syntax="fts5")) == 3
    assert [h["content"] for h in store.search_turns('"the sync"', syntax="fts5")] == ["resume the sync",
                                                                                       "retry the sync"]
    with pytest.raises(QueryError, match=r"query: 'sync AND' is not an FTS5 query"):
        store.search_turns("sync AND", syntax="fts5")
    with pytest.raises(ValidationError, match="has no word to search for"):
        store.search_turns("?!")
    with pytest.raises(ValidationError, match="syntax: 'regex' is not one of words, fts5"):
        store.search_turns("x", syntax="regex")


def test_the_index_follows_appends_edits_deletes_and_a_vacuum(tmp_path):
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as s:
        sid = chat(s, ["alpha one", "beta two"])
        assert s.index_turns() == 2 and s.index_turns() == 0
        doomed = chat(s, ["alpha doomed", "gamma"])
        s.append_turn(sid, "user", "alpha three")
        conn = s._conn
        conn.execute("UPDATE conversation_turns SET content = 'delta one' WHERE content = 'alpha one'")
        assert sorted(h["content"] for h in s.search_turns("alpha")) == ["alpha doomed", "alpha three"]
        conn.execute("DELETE FROM sessions WHERE id = ?", (doomed,))          # its turns go with it
        assert [h["content"] for h in s.search_turns("alpha")] == ["alpha three"]
        conn.execute("VACUUM")                  # may renumber the turns: the index is rebuilt if it did
        s.append_turn(sid, "assistant", "alpha four")
        assert sorted(h["content"] for h in s.search_turns("alpha")) == ["alpha four", "alpha three"]
        assert [h["content"] for h in s.search_turns("delta")] == ["delta one"]


def test_a_reader_searches_without_writing_and_a_plain_v1_file_too(tmp_path):
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as s:
        chat(s, ["indexed alpha"])
        s.index_turns()
        chat(s, ["not yet indexed alpha", "other"])
    with RuntimeMemoryStore(p, readonly=True) as r:
        assert sorted(h["content"] for h in r.search_turns("alpha")) == ["indexed alpha", "not yet indexed alpha"]
        with pytest.raises(QueryError, match="the search index is not up to date and the store is read-only") as e:
            r.search_turns("alpha*", syntax="fts5")
        assert f"chronoledger runtime index {p}" in str(e.value)
    with RuntimeMemoryStore(p) as s:
        assert len(s.search_turns("alpha*", syntax="fts5")) == 2


# --- turns for a prompt, replay pages -----------------------------------------------------------------

def test_recent_turns_by_count_and_by_token_budget(store):
    sid = store.start_session("tom")["id"]
    store.append_turns(sid, [{"role": "user", "content": "x" * 40, "token_count": 10},
                             {"role": "assistant", "content": "y" * 40},             # estimated: 10
                             {"role": "user", "content": "z" * 9, "token_count": 3},
                             {"role": "assistant", "content": "w" * 8}])            # estimated: 2
    assert [t["turn_index"] for t in store.recent_turns(sid, last=2)] == [2, 3]
    assert [t["turn_index"] for t in store.recent_turns(sid, token_budget=15)] == [1, 2, 3]
    assert [t["turn_index"] for t in store.recent_turns(sid, token_budget=14)] == [2, 3]
    assert [t["turn_index"] for t in store.recent_turns(sid, token_budget=100, last=3)] == [1, 2, 3]
    assert [t["turn_index"] for t in store.recent_turns(sid, token_budget=11, count_tokens=len)] == [2, 3]
    assert store.recent_turns(sid, token_budget=7, count_tokens=len) == []      # the newest alone is 8
    assert store.recent_turns(sid, token_budget=1) == []
    with pytest.raises(ValidationError, match="give last, token_budget or both"):
        store.recent_turns(sid)
    with pytest.raises(ValidationError, match="count_tokens: returned 'many' for turn 3"):
        store.recent_turns(sid, token_budget=5, count_tokens=lambda text: "many")


def test_recent_turns_reads_past_a_page(store):
    sid = store.start_session("tom")["id"]
    store.append_turns(sid, [{"role": "user", "content": "t", "token_count": 1} for _ in range(600)])
    got = store.recent_turns(sid, token_budget=550)
    assert [t["turn_index"] for t in got] == list(range(50, 600))


def test_session_replay_a_page_at_a_time(store):
    sid = chat(store, [f"turn {i}" for i in range(7)])
    pages, after = [], None
    while True:
        page = store.session_replay(sid, after=after, limit=3)
        pages.append([t["turn_index"] for t in page["turns"]])
        after = page["next_after"]
        if after is None:
            break
    assert pages == [[0, 1, 2], [3, 4, 5], [6]]
    whole = store.session_replay(sid)
    assert len(whole["turns"]) == 7 and whole["next_after"] is None


# --- proposals, skills, profiles ----------------------------------------------------------------------

def test_proposals_by_status_and_risk_paged(store):
    skill = store.record_skill("k", "d", "doc", 0.5)
    made = [store.create_proposal(skill["id"], "oxide", "code_patch", {"n": i}, risk,
                                  created_at=f"2026-01-01T00:00:{i:02d}Z")["id"]
            for i, risk in enumerate(["low", "high", "low", "critical", "low"])]
    store.record_approval(made[2], "bo", "human", "rejected")
    store.set_proposal_status(made[2], "rejected")
    assert [p["id"] for p in store.list_proposals(risk_level="low")["proposals"]] == [made[4], made[2], made[0]]
    assert [p["id"] for p in store.list_proposals(status="rejected")["proposals"]] == [made[2]]
    assert [p["id"] for p in store.list_proposals(status="drafted", risk_level="low")["proposals"]] == [made[4],
                                                                                                      made[0]]
    first = store.list_proposals(limit=2)
    second = store.list_proposals(limit=2, cursor=first["next_cursor"])
    assert [p["id"] for p in first["proposals"] + second["proposals"]] == made[::-1][:4]
    assert first["proposals"][0]["skill_key"] == "k"
    with pytest.raises(ValidationError, match="risk_level: 'urgent' is not allowed"):
        store.list_proposals(risk_level="urgent")


def test_skill_states(store):
    skill = store.record_skill("k", "d", "doc", 0.5)
    assert store.set_skill_state(skill["id"], "deprecated")["state"] == "deprecated"
    with pytest.raises(ValidationError, match="is deprecated; proposals are drafted for active skills only"):
        store.create_proposal(skill["id"], "oxide", "code_patch", {}, "low")
    assert store.set_skill_state(skill["id"], "active")["state"] == "active"
    store.set_skill_state(skill["id"], "retired")
    with pytest.raises(ValidationError, match="a retired skill stays retired"):
        store.set_skill_state(skill["id"], "active")
    with pytest.raises(ValidationError, match="'gone' is not allowed"):
        store.set_skill_state(skill["id"], "gone")


def test_profile_versions(store):
    for i in range(3):
        store.publish_behavior_profile("tom", {"v": i}, "ops", effective_from=f"2026-01-0{i + 1}T00:00:00Z")
    vs = store.profile_versions("tom")
    assert [(p["version"], p["behavior_json"], p["effective_to"]) for p in vs] == [
        (1, {"v": 0}, "2026-01-02T00:00:00.000000Z"), (2, {"v": 1}, "2026-01-03T00:00:00.000000Z"), (3, {"v": 2}, None)]
    assert store.profile_versions("tom", "personality") == []


# --- the batch append's two checks store the same ------------------------------------------------------

_turn = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool", "system", "agent"]),
     "content": st.text(max_size=40)},
    optional={"token_count": st.one_of(st.none(), st.integers(0, 2 ** 63 - 1))})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(_turn, max_size=12))
def test_the_column_check_stores_what_the_turn_check_stores(tmp_path_factory, batch):
    def stored(path, plain):
        original = sessions_mod._plain_turns
        if not plain:
            sessions_mod._plain_turns = lambda b: None
        try:
            with RuntimeMemoryStore(path) as s:
                sid = s.start_session("tom", id="01a2b3c4-0000-7000-8000-000000000001")["id"]
                s.append_turns(sid, batch)
                return [tuple(r) for r in s._conn.execute(
                    "SELECT session_id, turn_index, role, content, typeof(content), token_count, metadata_json "
                    "FROM conversation_turns ORDER BY turn_index")]
        finally:
            sessions_mod._plain_turns = original
    d = tmp_path_factory.mktemp("cols")
    assert stored(d / "a.sqlite", True) == stored(d / "b.sqlite", False)


def test_a_bad_turn_in_a_batch_is_named_and_nothing_is_written(store):
    sid = store.start_session("tom")["id"]
    good = {"role": "user", "content": "fine"}
    for bad, msg in [({"role": "narrator", "content": "x"}, "conversation_turns.role: 'narrator' is not allowed"),
                     ({"role": "user", "content": 5}, r"turns\[1\].content: expected a string"),
                     ({"role": "user", "content": "x", "token_count": -1}, r"turns\[1\].token_count"),
                     ({"role": "user", "content": "x", "colour": 1}, r"turns\[1\]: unknown field\(s\) colour"),
                     ({"role": "user", "content": "\ud800"}, r"turns\[1\].content: not valid text")]:
        with pytest.raises(ValidationError, match=msg):
            store.append_turns(sid, [good, bad])
    assert store.session_replay(sid)["turns"] == []
    assert isinstance(store._conn, apsw.Connection)


def test_a_search_without_the_index_finds_what_the_index_finds(tmp_path):
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as s:
        chat(s, ["Le CAFÉ est fermé", "cafes everywhere", "no match"])
        indexed = sorted(h["content"] for h in s.search_turns("cafe ferme"))
    with RuntimeMemoryStore(p) as s:                  # as if none were indexed: a reader's search then scans
        s._conn.execute("UPDATE _turns_fts_state SET indexed_rowid = 0, indexed_id = NULL")
    with RuntimeMemoryStore(p, readonly=True) as r:
        assert sorted(h["content"] for h in r.search_turns("cafe ferme")) == indexed == ["Le CAFÉ est fermé"]
