"""The world's daily reports (clock times, moves full places turned away,
what became of scripted events), one agent's day read back from the
database, the list of reported days, and the report channel: each day's
JSON report POSTed to a webhook, with retries (a real HTTP server on
127.0.0.1 in each test)."""

from __future__ import annotations

import collections
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from _cli import invoke
from _world_data import CAPACITY_CONFIG, WEEKEND, rows, run_world, seed_friends, write
from chronoledger.cli import cli
from chronoledger.errors import ChronoledgerError, ConfigError, NotFoundError, ReportChannelError
from chronoledger.world import config as wconfig
from chronoledger.world import models, reporting, scheduler, store
from chronoledger.world.channel import ReportChannel, shown_url

DAY1, DAY2 = "2026-01-05", "2026-01-06"


def world(*args):
    return invoke(cli, ["world", *[str(a) for a in args]])


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("CHRONOLEDGER_WORLD_DB", raising=False)
    monkeypatch.chdir(tmp_path)


# --- a webhook to post to ---------------------------------------------------------------------------------------

class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST (headers, JSON
    body) and answers with ``statuses`` in turn (then 200), after ``delay``
    seconds, with ``headers``."""

    def __init__(self, statuses=(), delay: float = 0.0, headers=None):
        self.statuses = list(statuses)
        self.delay = delay
        self.headers = dict(headers or {})
        self.posts: list[tuple[dict, object]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):                        # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.posts.append((dict(self.headers), json.loads(body)))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = b'{"ok": true}' if status < 300 else b"the receiver says no"
                try:
                    self.send_response(status)
                    for k, v in receiver.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:                       # the client gave up waiting (a timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        # a query string, as a webhook's secret often is: messages must not show it
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=s3cret"

    @property
    def bodies(self) -> list:
        return [b for _, b in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(*statuses, delay: float = 0.0, headers=None) -> Receiver:
        r = Receiver(statuses, delay, headers)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REPORT = {"run_id": 7, "day_label": DAY1, "events": 3}


# --- the channel ---------------------------------------------------------------------------------------------

def test_a_report_is_posted_as_json_once(receiver):
    r = receiver()
    with ReportChannel(r.url, backoff=0.01) as ch:
        ch.post(REPORT)
    assert r.bodies == [REPORT]
    headers = {k.lower(): v for k, v in r.posts[0][0].items()}
    assert headers["content-type"] == "application/json"
    assert len(headers["idempotency-key"]) == 32


def test_two_503s_then_a_200_take_three_attempts_with_one_idempotency_key(receiver):
    r = receiver(503, 503)
    with ReportChannel(r.url, attempts=3, backoff=0.01) as ch:
        ch.post(REPORT)
    assert r.bodies == [REPORT] * 3
    assert len({h["Idempotency-Key"] for h, _ in r.posts}) == 1       # one report, sent three times


@pytest.mark.parametrize("after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])        # seconds, or a date (past)
def test_a_429_is_retried_after_the_pause_the_server_asks_for(receiver, after):
    r = receiver(429, headers={"Retry-After": after})
    with ReportChannel(r.url, attempts=2, backoff=5.0) as ch:   # Retry-After: 0 overrides the 2.5-5 s backoff
        started = time.monotonic()
        ch.post(REPORT)
    assert len(r.posts) == 2 and time.monotonic() - started < 2


def test_a_server_that_always_fails_ends_in_an_error_naming_url_day_status_and_attempts(receiver):
    r = receiver(*[500] * 10)
    with ReportChannel(r.url, attempts=3, backoff=0.01) as ch, pytest.raises(ReportChannelError) as got:
        ch.post(REPORT)
    msg = str(got.value)
    assert len(r.posts) == 3
    assert r.url.split("?")[0] in msg and DAY1 in msg and "run 7" in msg
    assert "HTTP 500" in msg and "the receiver says no" in msg and "after 3 attempts" in msg
    assert "s3cret" not in msg                                   # the query string is not shown
    assert isinstance(got.value, ChronoledgerError)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_another_4xx_is_not_retried(receiver, status):
    r = receiver(status)
    with ReportChannel(r.url, attempts=3, backoff=0.01) as ch, pytest.raises(ReportChannelError) as got:
        ch.post(REPORT)
    assert len(r.posts) == 1
    msg = str(got.value)
    assert f"HTTP {status}" in msg and "attempt 1 of 3" in msg and "not retried" in msg and DAY1 in msg


def test_a_timeout_is_named_as_such(receiver):
    r = receiver(delay=1.5)
    with ReportChannel(r.url, timeout=0.2, attempts=2, backoff=0.01) as ch, \
            pytest.raises(ReportChannelError) as got:
        ch.post(REPORT)
    msg = str(got.value)
    assert "timed out after 0.2 s" in msg and "after 2 attempts" in msg and DAY1 in msg
    assert len(r.posts) == 2


def test_a_connection_that_fails_is_retried_and_named():
    with ReportChannel(f"http://127.0.0.1:{free_port()}/hook", attempts=2, backoff=0.01) as ch, \
            pytest.raises(ReportChannelError) as got:
        ch.post(REPORT)
    assert "connection failed" in str(got.value) and "after 2 attempts" in str(got.value)


@pytest.mark.parametrize("bad", ["ftp://example.com/x", "example.com/hook", "http://", "http://h:port/x", "", None])
def test_a_url_that_is_not_http_is_refused(bad):
    with pytest.raises(ConfigError, match="not an http"):
        ReportChannel(bad)


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"attempts": 0}, {"attempts": 1.5}, {"backoff": -1}])
def test_bad_settings_are_refused(kw):
    with pytest.raises(ConfigError, match="report channel http://127.0.0.1/x"):
        ReportChannel("http://127.0.0.1/x", **kw)


def test_a_closed_channel_refuses_to_post(receiver):
    r = receiver()
    ch = ReportChannel(r.url)
    ch.close()
    ch.close()                                                   # twice: harmless
    with pytest.raises(ReportChannelError, match="closed"):
        ch.post(REPORT)
    assert r.posts == []


def test_urls_are_shown_without_their_secrets():
    assert shown_url("https://bot:pw@hooks.example.com:8443/a/b?token=x") == "https://bot@hooks.example.com:8443/a/b?..."
    assert shown_url("http://127.0.0.1/hook") == "http://127.0.0.1/hook"


# --- the channel in a run ----------------------------------------------------------------------------------------

def test_a_two_day_run_posts_each_days_report(receiver, tmp_path):
    r = receiver()
    res = world("run", "--db-url", url(tmp_path / "world.db"), "--agents", 6, "--invent-agents", "--days", 2,
                "--dry-run", "--persist", "--seed", 3, "--report-format", "json", "--report-channel", r.url)
    assert res.exit_code == 0, res.output
    assert [b["day_label"] for b in r.bodies] == [DAY1, DAY2]
    for body in r.bodies:
        day = body["day_label"]
        # the JSON file's report, with the run's id
        assert body == {"run_id": 1, **json.loads((tmp_path / "reports" / f"run-1-{day}.json").read_text())}
        assert body["events"] == rows(tmp_path / "world.db", "SELECT count(*) FROM world_events WHERE day_label = ?",
                                      (day,))[0][0]
        assert body["conversations"] == rows(tmp_path / "world.db", "SELECT count(*) FROM conversations "
                                                                    "WHERE day_label = ?", (day,))[0][0]


def test_a_report_is_posted_without_report_files_too(receiver, tmp_path):
    r = receiver()
    res = world("run", "--db-url", url(tmp_path / "world.db"), "--agents", 3, "--invent-agents", "--dry-run",
                "--persist", "--report-format", "none", "--summary-only", "--report-channel", r.url)
    assert res.exit_code == 0, res.output
    assert [b["day_label"] for b in r.bodies] == [DAY1] and "transcripts" not in r.bodies[0]
    assert not (tmp_path / "reports").exists()


def test_a_report_not_delivered_stops_the_run_resumably(receiver, tmp_path):
    r = receiver(*[500] * 10)
    db = tmp_path / "world.db"
    res = world("run", "--db-url", url(db), "--agents", 4, "--invent-agents", "--days", 2, "--dry-run", "--persist",
                "--report-format", "json", "--report-channel", r.url, "--report-attempts", 2)
    assert res.exit_code == 3, res.output
    assert "HTTP 500" in res.stderr and "after 2 attempts" in res.stderr and DAY1 in res.stderr
    assert r.url.split("?")[0] in res.stderr and "--resume" in res.stderr
    assert len(r.posts) == 2
    # the day's report was written before it was posted; the run stopped after its last tick
    assert rows(db, "SELECT day_label FROM daily_reports") == [(DAY1,)]
    assert (tmp_path / "reports" / f"run-1-{DAY1}.json").exists()
    assert rows(db, "SELECT status FROM runs") == [("stopped",)]
    res = world("run", "--db-url", url(db), "--resume", "--dry-run", "--persist", "--report-format", "json")
    assert res.exit_code == 0, res.output
    assert rows(db, "SELECT day_label FROM daily_reports ORDER BY day_label") == [(DAY1,), (DAY2,)]


def test_a_run_stopped_by_its_channel_resumes_to_the_reports_of_one_never_stopped(receiver, tmp_path):
    cfg = wconfig.load_config()
    whole = run_world(tmp_path / "a" / "w.db", cfg, days=2, agents=8, seed=5, report_format="both",
                      reports_dir=tmp_path / "a" / "reports")
    r = receiver(*[503] * 10)
    with ReportChannel(r.url, attempts=2, backoff=0.01) as ch, pytest.raises(ReportChannelError):
        run_world(tmp_path / "b" / "w.db", cfg, days=2, agents=8, seed=5, report_format="both",
                  reports_dir=tmp_path / "b" / "reports", report_channel=ch)
    scheduler.resume(tmp_path / "b" / "w.db", models.make_model("offline"), reports_dir=tmp_path / "b" / "reports",
                     report_format="both")
    assert sorted(p.name for p in (tmp_path / "b" / "reports").iterdir()) == sorted(p.name for p in whole.reports)
    for p in whole.reports:
        assert (tmp_path / "b" / "reports" / p.name).read_bytes() == p.read_bytes(), p.name


@pytest.mark.parametrize("bad", ["ftp://example.com/hook", "not a url"])
def test_a_report_channel_that_is_not_http_is_a_usage_error_before_the_run(tmp_path, bad):
    res = world("run", "--db-url", url(tmp_path / "world.db"), "--agents", 3, "--invent-agents", "--dry-run",
                "--persist", "--report-channel", bad)
    assert res.exit_code == 2, res.output
    assert "--report-channel" in res.stderr and "not an http(s) URL" in res.stderr
    assert not (tmp_path / "world.db").exists()


def test_a_resumed_run_posts_the_days_it_reports(tmp_path, receiver, monkeypatch):
    """A run stopped on its second day goes on with --resume --report-channel: the day it finishes (the
    one the stop left unreported) reaches the webhook."""
    r = receiver()
    original = scheduler.WorldRun.tick

    def stop(self, day, tick):
        if (day, tick) == (2, 3):
            raise KeyboardInterrupt
        return original(self, day, tick)
    monkeypatch.setattr(scheduler.WorldRun, "tick", stop)
    res = world("run", "--db-url", url(tmp_path / "world.db"), "--agents", 6, "--invent-agents", "--days", 2,
                "--report-channel", r.url, "--report-format", "none")
    assert res.exit_code != 0
    monkeypatch.undo()
    assert [b["day_label"] for b in r.bodies] == [DAY1]
    res = world("run", "--db-url", url(tmp_path / "world.db"), "--resume", "--report-channel", r.url,
                "--report-format", "none")
    assert res.exit_code == 0, res.output
    assert [b["day_label"] for b in r.bodies] == [DAY1, DAY2]


# --- what a day's report says ---------------------------------------------------------------------------------

def clock_of(cfg, tick: int) -> str:
    m = cfg.start_hour * 60 + tick * cfg.tick_minutes
    return f"{m // 60:02d}:{m % 60:02d}"


def test_reports_show_clock_times(tmp_path):
    cfg = wconfig.load_config()
    db = tmp_path / "world.db"
    run_world(db, cfg, agents=12, seed=2, report_format="both", reports_dir=tmp_path / "r")
    md = (tmp_path / "r" / f"run-1-{DAY1}.md").read_text()
    m = json.loads((tmp_path / "r" / f"run-1-{DAY1}.json").read_text())
    ticks = dict(rows(db, "SELECT id, tick_index FROM conversations"))
    assert m["transcripts"]
    for t in m["transcripts"]:
        assert t["tick"] == ticks[t["conversation"]]
        assert t["time"] == clock_of(cfg, t["tick"])
        assert t["title"] == f"{t['time']}, {t['kind']} #{t['conversation']}"
        assert f"### {t['title']}\n" in md
    assert not re.search(r"tick \d", md)                          # no tick numbers shown


@pytest.fixture
def crowded(tmp_path):
    """A cafe that holds one, eight agents, and a scenario whose events do not all come off."""
    db = tmp_path / "world.db"
    seed_friends(db)
    cfg = wconfig.load_config(write(tmp_path / "cap.yaml", CAPACITY_CONFIG))
    scenario = wconfig.load_scenario(write(tmp_path / "s.yaml", """\
        scripted_events:
          - {tick: 0, type: move, agents: [Ava, Ben, Cleo], location: cafe}
          - {tick: 0, type: duo_chat, agents: [Ava, Ben], location: office}
          - {tick: 1, type: duo_chat, agents: [Ben, Cleo], location: home, prompt: "Who got in?"}
        """), cfg)
    result = run_world(db, cfg, agents=8, seed=4, scenario=scenario, report_format="both",
                       reports_dir=tmp_path / "r")
    md = (tmp_path / "r" / f"run-1-{DAY1}.md").read_text()
    m = json.loads((tmp_path / "r" / f"run-1-{DAY1}.json").read_text())
    return cfg, db, result, md, m


def test_moves_turned_away_are_counted_per_place(crowded):
    _cfg, db, _result, md, m = crowded
    loc = dict(rows(db, "SELECT id, name FROM locations"))
    refused = rows(db, "SELECT json_extract(metadata_json, '$.refused_by'), agent_id FROM world_events "
                       "WHERE day_label = ? AND json_extract(metadata_json, '$.refused_by') IS NOT NULL", (DAY1,))
    by_place = collections.Counter(loc[p] for p, _ in refused)
    assert by_place["cafe"] > 0 and set(by_place) == {"cafe"}
    assert m["moves_refused"] == len(refused)
    assert m["agents_turned_away"] == len({a for _, a in refused})
    assert m["refused_by_place"] == [{"location": "cafe", "capacity": 1, "moves": by_place["cafe"]}]
    assert f"; {len(refused):,} moves turned away by full places." in md
    assert f"| cafe | 1 | {by_place['cafe']} |" in md
    assert f"{m['agents_turned_away']} agents were turned away at least once." in md
    # and the daily_reports row holds the same figures
    assert json.loads(rows(db, "SELECT metrics_json FROM daily_reports")[0][0])["refused_by_place"] == \
        m["refused_by_place"]


def test_a_day_without_refusals_says_none(tmp_path):
    run_world(tmp_path / "world.db", wconfig.load_config(), agents=4, report_format="markdown",
              reports_dir=tmp_path / "r")
    md = (tmp_path / "r" / f"run-1-{DAY1}.md").read_text()
    assert "## Moves turned away by full places\n\n(none)\n" in md
    assert "turned away by full places." not in md.splitlines()[2]


def test_what_became_of_scripted_events(crowded):
    cfg, _db, _result, md, m = crowded
    move, chat, talk = m["scripted_events"]
    assert (move["time"], move["type"], move["agents"], move["location"]) == \
        (clock_of(cfg, 0), "move", ["Ava", "Ben", "Cleo"], "cafe")
    # the cafe holds one: the first in goes, the others are turned away
    assert not move["held"] and len(move["turned_away"]) == 2 and set(move["turned_away"]) <= {"Ava", "Ben", "Cleo"}
    went = [n for n in move["took_part"] if n not in move["turned_away"]]
    assert len(went) == 1
    # both were taken by the move when the chat came
    assert not chat["held"] and chat["busy"] == ["Ava", "Ben"] and chat["took_part"] == []
    assert talk["time"] == clock_of(cfg, 1) and talk["prompt"] == "Who got in?"
    assert talk["held"] is (len(talk["took_part"]) == 2)
    lines = md.split("## Scripted events\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert lines[0] == f"- 08:00, move to cafe (Ava, Ben and Cleo): begun by {went[0]}; turned away: " \
                       f"{' and '.join(move['turned_away'])}."
    assert lines[1] == "- 08:00, duo_chat at office (Ava and Ben): not held; busy: Ava and Ben."
    assert lines[2].startswith('- 08:30, duo_chat at home (Ben and Cleo), "Who got in?": ')


def test_scripted_outcomes_of_the_weekend(tmp_path):
    db = tmp_path / "world.db"
    seed_friends(db)
    cfg = wconfig.load_config()
    run_world(db, cfg, days=2, scenario=wconfig.load_scenario(WEEKEND, cfg), report_format="json",
              reports_dir=tmp_path / "r")
    day1 = json.loads((tmp_path / "r" / f"run-1-{DAY1}.json").read_text())["scripted_events"]
    day2 = json.loads((tmp_path / "r" / f"run-1-{DAY2}.json").read_text())["scripted_events"]
    assert [(e["time"], e["type"]) for e in day1] == [("09:00", "move"), ("11:00", "group_meeting"),
                                                      ("14:00", "duo_chat")]
    assert [(e["time"], e["type"]) for e in day2] == [("09:00", "move"), ("14:00", "duo_chat"),
                                                      ("17:00", "solo_reflection")]
    meeting = day1[1]
    assert meeting["prompt"] == "Plan the hike for tomorrow: who brings what?" and meeting["location"] == "park"
    assert meeting["held"] and sorted(meeting["took_part"] + meeting["away"] + meeting["busy"]) == \
        ["Ava", "Ben", "Cleo"]
    assert day2[2]["held"] and day2[2]["took_part"] == ["Ben"]


def test_a_checkpoint_of_an_older_version_still_reports(tmp_path):
    """A day stopped before reports had times, refusals and scripted events
    goes on from its checkpoint: its transcripts as [title, turns] pairs."""
    state = {"actions": {"duo_chat": 2}, "categories": {}, "places": {}, "memories": {}, "conversations": 1,
             "transcripts": [["tick 3, duo_chat #12", ["Ava: hi", "Ben: hello"]]], "more_transcripts": 0}
    arrays = {"tally_per_agent": np.array([1, 1], np.int32), "tally_pairs": np.zeros((0, 2), np.int32),
              "tally_deltas": np.zeros(0)}
    t = reporting.DayTally.from_state(2, state, arrays)
    assert t.transcripts == [{"tick": 3, "time": "", "kind": "duo_chat", "conversation": 12,
                              "turns": ["Ava: hi", "Ben: hello"]}]
    assert not t.refused and t.scripted == [] and t.refused_per_agent.tolist() == [0, 0]
    arrays2, state2 = t.arrays()
    again = reporting.DayTally.from_state(2, json.loads(json.dumps(state2)), arrays2)
    assert again.transcripts == t.transcripts and again.refused_per_agent.tolist() == [0, 0]


def test_a_resumed_day_reports_its_refusals_and_scripted_events_as_one_never_stopped(tmp_path, monkeypatch):
    def setup(d: Path):
        seed_friends(d / "w.db")
        cfg = wconfig.load_config(write(d / "cap.yaml", CAPACITY_CONFIG))
        return cfg, wconfig.load_scenario(write(d / "s.yaml", """\
            scripted_events:
              - {tick: 0, type: move, agents: [Ava, Ben, Cleo], location: cafe}
              - {tick: 9, type: group_meeting, agents: [Ava, Ben], location: office, prompt: "Lunch?"}
            """), cfg)
    opts = {"days": 2, "agents": 8, "seed": 6, "report_format": "both"}
    cfg, scenario = setup(tmp_path / "a")
    whole = run_world(tmp_path / "a" / "w.db", cfg, scenario=scenario, reports_dir=tmp_path / "a" / "r", **opts)
    cfg, scenario = setup(tmp_path / "b")
    original = scheduler.WorldRun.tick

    def stop(self, day, tick):
        if (day, tick) == (1, 14):
            raise KeyboardInterrupt
        return original(self, day, tick)
    monkeypatch.setattr(scheduler.WorldRun, "tick", stop)
    with pytest.raises(KeyboardInterrupt):
        run_world(tmp_path / "b" / "w.db", cfg, scenario=scenario, reports_dir=tmp_path / "b" / "r", **opts)
    monkeypatch.undo()
    scheduler.resume(tmp_path / "b" / "w.db", models.make_model("offline"), reports_dir=tmp_path / "b" / "r")
    first = json.loads((tmp_path / "a" / "r" / f"run-1-{DAY1}.json").read_text())
    assert first["moves_refused"] > 0 and len(first["scripted_events"]) == 2      # the check has something to check
    for p in whole.reports:
        assert (tmp_path / "b" / "r" / p.name).read_bytes() == p.read_bytes(), p.name


# --- one agent's day ---------------------------------------------------------------------------------------------

@pytest.fixture
def weekend(tmp_path):
    db = tmp_path / "world.db"
    seed_friends(db)
    cfg = wconfig.load_config()
    run_world(db, cfg, days=2, scenario=wconfig.load_scenario(WEEKEND, cfg))
    return cfg, db


def test_an_agents_day(weekend):
    cfg, db = weekend
    view = reporting.agent_day(db, DAY1, "Ava")
    ava = rows(db, "SELECT id FROM agents WHERE name = 'Ava'")[0][0]
    assert view["run_id"] == 1 and view["day_label"] == DAY1 and view["agent"] == {"id": ava, "name": "Ava"}
    want = rows(db, "SELECT e.tick_index, e.action, a.name, l.name FROM world_events e JOIN activities a ON "
                    "a.id = e.activity_id JOIN locations l ON l.id = e.location_id WHERE e.agent_id = ? AND "
                    "e.day_label = ? ORDER BY e.tick_index", (ava, DAY1))
    assert [(e["tick"], e["action"], e["activity"], e["location"]) for e in view["events"]] == want
    assert all(e["time"] == clock_of(cfg, e["tick"]) for e in view["events"])
    assert view["actions"] == dict(collections.Counter(w[1] for w in want))
    # her conversations, with every turn of them
    convs = [e["conversation"] for e in view["events"] if e["conversation"] is not None]
    assert [c["id"] for c in view["conversations"]] == convs and convs
    for c in view["conversations"]:
        turns = rows(db, "SELECT content FROM conversation_turns WHERE conversation_id = ? ORDER BY round, id",
                     (c["id"],))
        assert [t["text"] for t in c["turns"]] == [t for t, in turns]
        assert c["time"] == clock_of(cfg, c["tick"]) and "Ava" not in c["others"]
    meeting = next(c for c in view["conversations"] if c["time"] == "11:00")
    assert meeting["location"] == "park" and sorted(meeting["others"]) == ["Ben", "Cleo"]
    # the memories she made that day
    made = rows(db, "SELECT kind, importance, text FROM memories WHERE agent_id = ? AND created_at LIKE ? "
                    "ORDER BY id", (ava, DAY1 + "%"))
    assert [(m["kind"], m["importance"], m["text"]) for m in view["memories"]] == made and made
    # by id, the same
    assert reporting.agent_day(db, DAY1, ava) == view == reporting.agent_day(db, DAY1, str(ava), run_id=1)


def test_an_agents_day_as_markdown(weekend):
    _cfg, db = weekend
    md = reporting.render_agent_day(reporting.agent_day(db, DAY1, "Ava"))
    assert md.startswith(f"# Ava: {DAY1} (run 1)\n")
    assert "## Timeline" in md and "## Conversations" in md and "## New memories" in md
    assert "| 11:00 | group_meeting |" in md
    assert "### 11:00, scripted #" in md and " at park, with " in md


def test_an_agent_or_day_that_does_not_exist_names_those_that_do(weekend):
    _cfg, db = weekend
    with pytest.raises(NotFoundError) as got:
        reporting.agent_day(db, DAY1, "Zed")
    assert "no agent 'Zed'" in str(got.value) and "Ava, Ben and Cleo" in str(got.value)
    with pytest.raises(NotFoundError) as got:
        reporting.agent_day(db, "2026-02-01", "Ava")
    assert "'2026-02-01'" in str(got.value) and f"run 1: {DAY1}, {DAY2}" in str(got.value)
    with pytest.raises(NotFoundError, match="no run 9 \\(runs: 1\\)"):
        reporting.agent_day(db, DAY1, "Ava", run_id=9)
    with pytest.raises(NotFoundError, match="no such world database"):
        reporting.agent_day(db.parent / "typo.db", DAY1, "Ava")


def test_an_agents_day_from_the_command_line(weekend):
    _cfg, db = weekend
    res = world("report", "--db-url", url(db), "--day", DAY1, "--agent", "Ava")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"# Ava: {DAY1} (run 1)\n")
    res = world("report", "--db-url", url(db), "--day", DAY2, "--agent", "Ben", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == json.loads(json.dumps(reporting.agent_day(db, DAY2, "Ben")))
    res = world("report", "--db-url", url(db), "--day", DAY1, "--agent", "Zed")
    assert res.exit_code == 5 and "no agent 'Zed'" in res.stderr
    res = world("report", "--db-url", url(db), "--agent", "Ava")
    assert res.exit_code == 2 and "--agent needs --day" in res.stderr


# --- the days that have a report -----------------------------------------------------------------------------

def test_report_without_a_day_lists_the_days(tmp_path):
    db = tmp_path / "world.db"
    for seed in (1, 2):
        assert world("run", "--db-url", url(db), "--agents", 4, "--invent-agents", "--days", 2, "--dry-run",
                     "--persist", "--seed", seed, "--report-format", "none").exit_code == 0
    res = world("report", "--db-url", url(db), "--json")
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert [(d["run_id"], d["day_label"]) for d in listed] == [(1, DAY1), (1, DAY2), (2, DAY1), (2, DAY2)]
    for d in listed:
        assert d["events"] == rows(db, "SELECT count(*) FROM world_events WHERE run_id = ? AND day_label = ?",
                                   (d["run_id"], d["day_label"]))[0][0]
        assert d["conversations"] == rows(db, "SELECT count(*) FROM conversations WHERE run_id = ? AND "
                                              "day_label = ?", (d["run_id"], d["day_label"]))[0][0]
    res = world("report", "--db-url", url(db))
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert len(lines) == 4 and lines[2].startswith(f"run 2  {DAY1}  ")
    assert lines[2].endswith(f"{listed[2]['conversations']:,} conversations")
    res = world("report", "--db-url", url(db), "--run", 2, "--json")
    assert [d["run_id"] for d in json.loads(res.stdout)] == [2, 2]
    assert store.report_days(db, 1) == listed[:2]
    # a day that has no report names those that do
    res = world("report", "--db-url", url(db), "--day", "2026-03-01")
    assert res.exit_code == 5 and f"run 1: {DAY1}, {DAY2}; run 2: {DAY1}, {DAY2}" in res.stderr


def test_a_database_without_reports_lists_none(tmp_path):
    db = tmp_path / "world.db"
    assert world("init", "--db-url", url(db)).exit_code == 0
    res = world("report", "--db-url", url(db))
    assert res.exit_code == 0 and res.stdout == "" and "no day has a report yet" in res.stderr
    res = world("report", "--db-url", url(db), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == []
    res = world("report", "--db-url", url(tmp_path / "typo.db"))
    assert res.exit_code == 5 and "no such world database" in res.stderr


def test_many_days_are_named_in_short(tmp_path):
    days = [{"run_id": 1, "day_label": f"2026-01-{d:02d}", "events": 1, "conversations": 0} for d in range(5, 25)]
    days += [{"run_id": r, "day_label": DAY1, "events": 1, "conversations": 0} for r in range(2, 8)]
    text = store.days_text(days)
    assert text.startswith("run 3: ") and text.endswith("run 7: 2026-01-05; and 2 earlier runs")
    assert store.days_text(days[:20]) == "run 1: 2026-01-05 .. 2026-01-24 (20 days)"


def test_a_report_channel_url_with_a_space_is_refused():
    with pytest.raises(ConfigError, match="not an http"):
        ReportChannel("http://127.0.0.1:8080/x y")
