"""The LangGraph checkpointer on the runtime database (issue 19):
LangGraph's own conformance suite, graphs driven in one process and in
four at once on one file, threads as sessions, and the docs' example."""

from __future__ import annotations

import asyncio
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from chronoledger.errors import ValidationError
from chronoledger.runtime import RuntimeMemoryStore

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from chronoledger.runtime.langgraph import ChronoledgerSaver

ROOT = Path(__file__).resolve().parent.parent


def test_langgraphs_conformance_suite_passes_every_capability(tmp_path):
    made = []

    @checkpointer_test(name="ChronoledgerSaver")
    async def saver():
        s = ChronoledgerSaver(tmp_path / f"rt{len(made)}.sqlite")
        made.append(s)
        yield s
        s.close()

    report = asyncio.run(validate(saver))
    failed = {cap: [r for r in res.results if not r.passed] for cap, res in report.results.items()
              if res is not None and not res.passed}
    assert not failed, failed
    assert report.passed_all_base() and report.passed_all()
    assert {str(c.value) for c in ALL_CAPABILITIES} == {str(getattr(c, "value", c)) for c in report.results}
    assert made, "the suite made no saver"


def test_a_graph_resumes_from_the_file_and_its_thread_is_a_session(tmp_path):
    db = tmp_path / "rt.sqlite"
    example = runpy.run_path(str(ROOT / "examples" / "langgraph_agent.py"))
    first = example["main"](str(db))
    second = example["main"](str(db))                    # a new process would do the same: state from the file
    assert first == {"count": 1, "log": ["step 1"]}
    assert second == {"count": 2, "log": ["step 1", "step 2"]}
    with RuntimeMemoryStore(db, readonly=True) as store:
        sessions = store.list_sessions()["sessions"]
    assert [(s["actor"], s["channel"], s["metadata_json"]) for s in sessions] == [
        ("langgraph", "sdk", {"langgraph_thread_id": "counter"})]
    with ChronoledgerSaver(db) as saver:
        assert saver.session_id("counter") == sessions[0]["id"]
        saver.delete_thread("counter")
        assert saver.session_id("counter") is None
        assert saver.get_tuple({"configurable": {"thread_id": "counter"}}) is None
    with RuntimeMemoryStore(db, readonly=True) as store:
        assert store.list_sessions()["sessions"] == []


def test_four_processes_driving_graphs_on_one_file_lose_nothing(tmp_path):
    db = tmp_path / "rt.sqlite"
    RuntimeMemoryStore(db).close()                        # made once, so that every worker opens a migrated file
    runs = 24
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "_langgraph_worker.py"), str(db), str(w),
                               str(runs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        assert "locked" not in err
    with ChronoledgerSaver(db) as saver:
        for w in range(4):
            own = saver.get_tuple({"configurable": {"thread_id": f"own-{w}"}})
            assert own.checkpoint["channel_values"]["count"] == runs
            log = own.checkpoint["channel_values"]["log"]
            assert log == [x for r in range(runs) for x in (f"{w}:a{r}", f"{w}:b{r + 1}")]
            # every step of every run: input, a, b (three checkpoints and one more for each run's input)
            assert len(list(saver.list({"configurable": {"thread_id": f"own-{w}"}}))) == runs * 4
            for t in range(3):
                turn = saver.get_tuple({"configurable": {"thread_id": f"turn-{w}-{t}"}})
                assert turn.checkpoint["channel_values"]["count"] == runs // 3
    with RuntimeMemoryStore(db, readonly=True) as store:
        assert len(store.list_sessions(limit=100)["sessions"]) == 16


def test_the_saver_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(ValidationError, match="give a database path or an open store"):
        ChronoledgerSaver()
    db = tmp_path / "rt.sqlite"
    RuntimeMemoryStore(db).close()
    with RuntimeMemoryStore(db, readonly=True) as ro:
        with pytest.raises(ValidationError, match="the store was opened read-only"):
            ChronoledgerSaver(store=ro)
    with ChronoledgerSaver(db) as saver:
        with pytest.raises(ValidationError, match="strategy: 'oldest' is not one of keep_latest, delete"):
            saver.prune(["t"], strategy="oldest")


def test_a_saver_on_an_open_store_shares_it_and_leaves_it_open(tmp_path):
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as store:
        with ChronoledgerSaver(store=store) as saver:
            from langgraph.graph import END, START, StateGraph
            g = StateGraph(dict)
            g.add_node("n", lambda s: {"x": s.get("x", 0) + 1})
            g.add_edge(START, "n")
            g.add_edge("n", END)
            graph = g.compile(checkpointer=saver)
            graph.invoke({"x": 1}, {"configurable": {"thread_id": "t"}})
        assert store.list_sessions()["sessions"][0]["metadata_json"] == {"langgraph_thread_id": "t"}


def test_a_damaged_checkpoint_is_named_not_a_serializer_traceback(tmp_path):
    import apsw
    from chronoledger.errors import CorruptDataError
    db = tmp_path / "rt.sqlite"
    with ChronoledgerSaver(db) as saver:
        from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata
        saver.put(generate_config("t1"), generate_checkpoint(), generate_metadata(), {})
    con = apsw.Connection(str(db))
    con.execute("UPDATE _langgraph_checkpoints SET checkpoint = x'c1c2c3'")
    con.close()
    with ChronoledgerSaver(db) as saver:
        with pytest.raises(CorruptDataError, match=r"the checkpoint of thread 't1' checkpoint \S+ cannot be read"):
            saver.get_tuple({"configurable": {"thread_id": "t1"}})


def test_listing_every_thread_pages_by_the_whole_key(tmp_path):
    """copy_thread makes the same checkpoint id in two threads: a page boundary must not drop either."""
    from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata
    with ChronoledgerSaver(tmp_path / "rt.sqlite") as saver:
        parent = None
        for i in range(300):
            cfg = generate_config("t1")
            if parent:
                cfg["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
            parent = saver.put(cfg, generate_checkpoint(), generate_metadata(step=i), {})
        saver.copy_thread("t1", "t2")
        saver.copy_thread("t1", "t3")
        listed = [(t.config["configurable"]["thread_id"], t.config["configurable"]["checkpoint_id"])
                  for t in saver.list(None)]
        assert len(listed) == len(set(listed)) == 900
        assert len(list(saver.list(None, limit=257))) == 257
