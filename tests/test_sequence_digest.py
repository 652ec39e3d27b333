"""The digest agents read first (tendencies.md / tendencies.json) and the
listener's consistency with sync (issue 16, points 7 and 8)."""

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import apsw
import pytest

from chronoledger.cli.sequence_cmds import sequence_group
from chronoledger.errors import ConfigError
from chronoledger.sequence import digest, listener, metastudy, trends_builder
from chronoledger.sequence.sync import sync
from chronoledger.sequence.trends_builder import Fact

from _cli import invoke


def run(*args):
    return invoke(sequence_group, [str(a) for a in args])


def write(folder: Path, rel: str, text: str) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def chronos_folder(root: Path, name: str = "user") -> Path:
    """A small folder in Chronos's shape: habits (one to avoid), tasks,
    commitments, goals with milestones linked by ``goal:``; no logs."""
    user = root / name
    for i in range(4):
        write(user, f"habits/habit_{i}.yml", f"name: Habit {i}\ntype: habit\nstatus: active\npolarity: good\n"
                                             f"completion_dates: []\n")
    write(user, "habits/no_sugar.yml", "name: No Sugar\ntype: habit\npolarity: bad\nincident_dates: []\n")
    for i in range(3):
        write(user, f"tasks/task_{i}.yml", f"name: Task {i}\ntype: task\nstatus: pending\n")
    write(user, "commitments/walk.yml", "name: Walk 3x Weekly\ntype: commitment\nstatus: active\n"
                                        "rule: {kind: frequency, times: 3, period: week}\n"
                                        "targets: [{type: habit, name: Habit 0}]\n")
    write(user, "commitments/sugar.yml", "name: Never Sugar\ntype: commitment\nstatus: active\n"
                                         "rule: {kind: never, period: day}\ntargets: [{type: habit, name: No Sugar}]\n"
                                         "last_met: '2026-02-15'\n")
    write(user, "commitments/old.yml", "name: Old Promise\ntype: commitment\nstatus: paused\n")
    write(user, "goals/guitar.yml", "name: Learn Guitar\ntype: goal\nstatus: active\n")
    write(user, "goals/loop.yml", "name: Learning Loop\ntype: goal\nstatus: active\nmilestones: [Ship Tutorials]\n")
    write(user, "milestones/chords.yml", "name: Chords\ntype: milestone\ngoal: Learn Guitar\nweight: 1\n"
                                         "progress: {current: 1, target: 2, percent: 50.0}\nstatus: in_progress\n")
    write(user, "milestones/song.yml", "name: First Song\ntype: milestone\ngoal: learn guitar\nweight: 2\n"
                                       "status: completed\ncompleted: '2026-03-01 10:00:00'\n")
    return user


def digest_files(user: Path) -> tuple[str, dict]:
    md = next(user.rglob("tendencies.md"))
    return md.read_text(), json.loads((md.parent / "tendencies.json").read_text())


def assert_no_empty_heading(md: str) -> None:
    blocks = re.split(r"^## ", md, flags=re.M)[1:]
    for b in blocks:
        title, _, body = b.partition("\n")
        assert body.strip().startswith("- "), f"heading {title!r} has no lines under it"


# --- point 7: a folder with items and no logs ------------------------------------------

def test_a_folder_without_logs_says_what_it_holds_and_why_the_rest_is_missing(tmp_path):
    user = chronos_folder(tmp_path)
    sync(user, as_of=date(2026, 3, 2))
    md, js = digest_files(user)
    assert "n/a (0/0)" not in md and "## Timing" not in md and "## Completion" not in md
    assert_no_empty_heading(md)
    # what is there
    assert "- 15 items: habit 5, commitment 3, task 3, goal 2, milestone 2." in md
    assert "- 3 commitments (2 active); 2 goals with 2 milestones linked." in md
    assert "- Logs: none." in md
    assert js["folder"]["types"] == {"habit": 5, "commitment": 3, "task": 3, "goal": 2, "milestone": 2}
    # what is missing, and why
    assert js["missing"][0].startswith("no completion logs found (schedules/completions/YYYY-MM-DD.yml)")
    assert "- No completion logs found (schedules/completions/YYYY-MM-DD.yml) and no schedules: completion rates, " \
           "streaks from logs, timing and days of the week cannot be computed." in md
    assert "- None of the 5 habits has completion_dates, incident_dates or a recorded streak: habit streaks " \
           "cannot be computed." in md
    assert "- None of the 2 active commitments was judged in the 30 days ending 2026-03-02: judging needs " \
           "logged days of their targets." in md
    assert "focus time not available" in md
    # goal progress from milestones: (50 x 1 + 100 x 2) / 3; a goal naming no milestone item says so
    assert "- Progress from milestones: Learn Guitar 83% (1 of 2 done); mean 83% over 1 goal." in md
    assert "- No milestone linked: Learning Loop." in md
    assert js["goals"]["progress"] == [{"name": "Learn Guitar", "status": "active", "progress": 83.3,
                                        "milestones": 2, "milestones_completed": 1}]
    assert js["goals"]["milestones_completed_week"] == 1          # completed 2026-03-01, within 7 days of as_of
    # commitments say their rule and what Chronos recorded
    assert "- Never Sugar (never, per day: No Sugar): not judged in these 30 days; Chronos recorded it last " \
           "met 2026-02-15." in md
    assert "- 1 more commitment: 1 paused." in md
    # the JSON holds the same facts: every missing sentence is a line of the Markdown
    for sentence in js["missing"]:
        assert f"- {sentence[0].upper()}{sentence[1:]}." in md
    assert js["as_of"] == "2026-03-02" and js["as_of_basis"] == "given"


def test_with_no_logs_and_no_date_the_digest_says_it_is_as_of_today(tmp_path):
    user = chronos_folder(tmp_path)
    sync(user)
    md, js = digest_files(user)
    assert js["as_of"] == date.today().isoformat() and js["as_of_basis"] == "today (no logs)"
    assert "(today: there are no logs)" in md.splitlines()[2]


# --- point 7: never contradicting itself -------------------------------------------------

def facts_for(rates: dict[str, tuple[int, int]], as_of: date) -> list[Fact]:
    """Facts giving each item ``done`` completed of ``scheduled``, one a day ending on as_of."""
    out = []
    for name, (done, scheduled) in rates.items():
        for i in range(scheduled):
            day = as_of - timedelta(days=i)
            out.append(Fact(day.isoformat(), day.weekday(), name, "habit", "completed" if i < done else "missed",
                            None, None, None, None))
    return out


def ranked(rates, as_of=date(2026, 3, 31)):
    d = digest.tendencies(trends_builder.compute(facts_for(rates, as_of), [], [], as_of))
    return d, digest.render_markdown(d)


def test_one_item_is_not_both_strongest_and_weakest(tmp_path):
    d, md = ranked({"Chronos Check in": (4, 5)})
    assert d["strongest"] == [] and d["weakest"] == []
    assert "Strongest" not in md and "Weakest" not in md
    assert "- Too few items to rank: 1 item with at least 4 scheduled in the last 30 days (2 needed)." in md


def test_strongest_rates_are_all_above_the_weakest(tmp_path):
    d, md = ranked({"A": (10, 10), "B": (8, 10), "C": (8, 10), "D": (5, 10)})
    strong = {x["item"]: x["completion_rate"] for x in d["strongest"]}
    weak = {x["item"]: x["completion_rate"] for x in d["weakest"]}
    assert not strong.keys() & weak.keys()
    assert min(strong.values()) > max(weak.values())
    assert strong == {"A": 1.0} and weak == {"D": 0.5}             # B and C tie at 80%: neither side
    d, md = ranked({"A": (8, 10), "B": (8, 10), "C": (8, 10)})
    assert d["strongest"] == d["weakest"] == []
    assert "- All 3 items with at least 4 scheduled are at 80%: none is stronger or weaker." in md
    d, md = ranked({"A": (10, 10), "B": (10, 10), "C": (10, 10), "D": (9, 10), "E": (5, 10), "F": (5, 10)})
    assert [x["item"] for x in d["strongest"]] == ["A", "B", "C"] and d["ranking"]["strongest_more"] == 0
    assert [x["item"] for x in d["weakest"]] == ["E", "F", "D"]      # the two lowest rates, whole
    d, md = ranked({n: (10, 10) for n in "ABCDEFG"} | {"H": (2, 10)})
    assert "- Strongest: A 100% (10/10); B 100% (10/10); C 100% (10/10); D 100% (10/10); and 3 more at 100%." in md
    assert "- Weakest: H 20% (2/10)." in md


def test_days_of_the_week_tie_instead_of_best_and_worst():
    as_of = date(2026, 3, 29)                                       # a Sunday: 28 days cover each day 4 times
    d, md = ranked({"Walk": (28, 28)}, as_of)
    assert d["weekdays"]["best"] == d["weekdays"]["worst"] == [] and d["weekdays"]["tie"] == 1.0
    line = next(x for x in md.splitlines() if x.startswith("- Every day"))
    assert line.startswith("- Every day with at least 3 scheduled at 100%: ")
    assert "Best" not in md and "worst" not in md
    facts = facts_for({"Walk": (28, 28)}, as_of)
    for f in facts:                                                 # Wednesdays and Thursdays missed
        if f.weekday in (2, 3):
            f.status = "missed"
    d = digest.tendencies(trends_builder.compute(facts, [], [], as_of))
    assert (d["weekdays"]["best"], d["weekdays"]["worst"]) == (["Fri", "Mon", "Sat", "Sun", "Tue"], ["Thu", "Wed"])
    assert "- Best Fri, Mon, Sat, Sun, Tue 100%; worst Thu, Wed 0%: " in digest.render_markdown(d)


# --- point 7: the metrics Chronos computes -----------------------------------------------

def test_habit_streaks_from_completion_and_incident_dates(tmp_path):
    user = chronos_folder(tmp_path)
    days = ["2026-02-20", "2026-02-21", "2026-02-22", "2026-02-23", "2026-02-27", "2026-02-28", "2026-03-01"]
    write(user, "habits/habit_0.yml", f"name: Habit 0\ntype: habit\ncompletion_dates: {days}\n")
    write(user, "habits/habit_1.yml", "name: Habit 1\ntype: habit\ncompletion_dates: ['2026-02-01', '2026-02-02']\n")
    write(user, "habits/habit_2.yml", "name: Habit 2\ntype: habit\ncurrent_streak: 9\nlongest_streak: 12\n"
                                      "last_completed: '2026-03-01'\n")
    write(user, "habits/no_sugar.yml", "name: No Sugar\ntype: habit\npolarity: bad\n"
                                       "incident_dates: ['2026-02-10', '2026-02-20']\ncreation_date: '2026-01-01'\n")
    sync(user, as_of=date(2026, 3, 1))
    md, js = digest_files(user)
    h = js["habits"]
    assert [(x["name"], x["current_streak"], x["longest_streak"], x["source"]) for x in h["current_streaks"]] == [
        ("Habit 2", 9, 12, "recorded"), ("Habit 0", 3, 4, "completion_dates")]
    assert [(x["name"], x["longest_streak"]) for x in h["ended_streaks"]] == [("Habit 1", 2)]
    assert h["habits_with_streak"] == 2 and h["habits_avg_streak"] == 6.0 and h["habits_longest_streak"] == 12
    assert h["habits_done_on_as_of"] == 1 and h["habits_completion_today"] == 20.0
    # clean for the days since the last incident; longest: 40 days from creation to the first incident
    assert [(x["name"], x["current_streak"], x["longest_streak"], x["in_window"]) for x in h["avoiding"]] == [
        ("No Sugar", 9, 40, 2)]
    assert "- Current streaks (days in a row): Habit 2 9 (longest 12); Habit 0 3 (longest 4); 2 in all, mean 6.0 " \
           "days." in md
    assert "- Habits to avoid, clean for: No Sugar 9 days (longest 40, 2 incidents in 30 days)." in md
    assert "habit streaks cannot be computed" not in md
    assert js["as_of_basis"] == "given"
    sync(user)                                  # no date given: the habits' dates are logs too
    assert digest_files(user)[1]["as_of"] == "2026-03-01"


def test_timer_sessions_as_chronos_counts_them():
    as_of = date(2026, 12, 6)
    folder = trends_builder.Folder(timer_sessions=[
        {"date": "2026-12-06", "phase": "focus", "profile": "deep_work", "seconds": 3000},
        {"date": "2026-12-06", "phase": "short_break", "profile": "deep_work", "seconds": 600},
        {"date": "2026-12-05", "phase": "focus", "profile": "pomodoro", "seconds": 20},      # counts 1 minute
        {"date": "2026-10-01", "phase": "focus", "profile": "pomodoro", "seconds": 1500}])   # outside 30 days
    tm = trends_builder.timer_stats(folder, as_of)
    assert (tm["source"], tm["sessions_total"], tm["sessions_all"]) == ("timer sessions", 3, 4)
    assert (tm["focus_minutes"], tm["break_minutes"]) == (51, 10)
    assert tm["profile_usage"] == {"deep_work": 2, "pomodoro": 1}
    d = digest.tendencies(trends_builder.compute([], [], [], as_of, folder))
    assert "- 3 timer sessions in the last 30 days: 51 focus minutes, 10 break minutes; profiles: deep_work 2, " \
           "pomodoro 1." in digest.render_markdown(d)
    # without session logs: the focus sessions the timer wrote into the items it was bound to
    items = [("task", "Focus Sprint", "active", {"sessions": [
        {"date": "2026-12-06 04:03:58.9", "minutes": 50, "source": "timer"},
        {"date": "2026-12-01", "minutes": 20}]})]                    # not the timer's: left out
    tm = trends_builder.timer_stats(trends_builder.Folder(items=items), as_of)
    assert (tm["source"], tm["sessions_total"], tm["focus_minutes"], tm["break_minutes"]) == ("items", 1, 50, None)
    assert trends_builder.timer_stats(trends_builder.Folder(), as_of)["source"] is None


def test_timer_session_logs_reach_the_digest_through_the_core_mirror(tmp_path):
    user = chronos_folder(tmp_path)
    write(user, "Timers/sessions/2026-03-01.yml", "entries:\n"
          "- {phase: focus, profile: deep_work_50_10, seconds: 3000, start: '2026-03-01 09:00:00'}\n"
          "- {phase: short_break, profile: deep_work_50_10, seconds: 600, start: '2026-03-01 09:50:00'}\n")
    sync(user)
    md, js = digest_files(user)
    assert js["as_of"] == "2026-03-01" and js["as_of_basis"] == "last log"     # the sessions are logs too
    assert "- 2 timer sessions in the last 30 days: 50 focus minutes, 10 break minutes; profiles: " \
           "deep_work_50_10 2." in md
    assert "timer sessions 2 on 1 day (on 2026-03-01)" in md
    assert not any("timer" in m for m in js["missing"])


def test_the_metastudy_reads_timer_sessions_from_the_core_mirror_when_it_holds_them(tmp_path):
    core = tmp_path / "chronos_core.db"
    conn = apsw.Connection(str(core))
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, type TEXT, name TEXT, status TEXT, raw_json TEXT);"
                 "INSERT INTO items (type, name, status, raw_json) VALUES ('habit', 'Walk', 'active', "
                 "'{\"completion_dates\": [\"2026-12-05\"]}');"
                 "CREATE TABLE timer_sessions (id INTEGER PRIMARY KEY, date TEXT, start TEXT, phase TEXT, "
                 "profile TEXT, seconds REAL);"
                 "INSERT INTO timer_sessions (date, start, phase, profile, seconds) VALUES "
                 "('2026-12-06', '2026-12-06T09:00:00', 'focus', 'deep_work', 3000)")
    conn.close()
    folder = metastudy.load_folder(core)
    assert folder.core and folder.logs == {}                        # no completions etc. tables: none of them
    assert folder.items == [("habit", "Walk", "active", {"completion_dates": ["2026-12-05"]})]
    assert folder.timer_sessions == [{"date": "2026-12-06", "phase": "focus", "profile": "deep_work",
                                      "seconds": 3000.0}]
    assert trends_builder.latest_log_date([], [], folder) == date(2026, 12, 6)
    assert metastudy.load_folder(tmp_path / "missing.db").core is False


def test_json_and_markdown_say_the_same_with_logs(tmp_path):
    user = chronos_folder(tmp_path, "User")
    for i in range(1, 11):
        status = "completed" if i % 3 else "skipped"
        write(user, f"Schedules/completions/2026-03-{i:02d}.yml",
              f"entries:\n  Habit 0@07:00: {{status: {status}, actual_start: '07:{i:02d}'}}\n"
              f"  Habit 1@08:00: {{status: completed, actual_start: '08:00'}}\n")
    sync(user)
    md, js = digest_files(user)
    assert js["as_of"] == "2026-03-10" and js["as_of_basis"] == "last log"
    assert_no_empty_heading(md)
    c = js["completion"]["30"]
    assert f"- Overall: {round(100 * c['rate'])}% ({c['completed']}/{c['scheduled']})" in md
    assert [x["item"] for x in js["strongest"]] == ["Habit 1"] and [x["item"] for x in js["weakest"]] == ["Habit 0"]
    assert "- Strongest: Habit 1 100% (10/10)." in md and "- Weakest: Habit 0 70% (7/10)." in md
    logs = js["folder"]["logs"]["completions"]
    assert (logs["entries"], logs["days"], logs["first"], logs["last"]) == (20, 10, "2026-03-01", "2026-03-10")
    assert "- Logs: completions 20 on 10 days (2026-03-01 to 2026-03-10). None: schedule blocks, status " \
           "snapshots, narratives, points ledger entries, timer sessions." in md
    assert not any("no completion logs" in m for m in js["missing"])
    for sentence in js["missing"]:
        assert f"- {sentence[0].upper()}{sentence[1:]}." in md


def test_status_levels_come_from_chronos_settings_for_mean_level_and_drift(tmp_path):
    """Chronos writes status values in Title Case (High, Exhausted) and orders
    them in settings/<dimension>_settings.yml (1 the best): the trends place
    them on those levels, and the digest's State says more than the mode."""
    user = chronos_folder(tmp_path)
    write(user, "settings/energy_settings.yml", "Energy_Settings:\n  Exhausted: {value: 4}\n  High: {value: 1}\n"
                                                "  Low: {value: 3}\n  Medium: {value: 2}\n")
    # focus has no settings file: Chronos's values (Laser) are on no known scale, and are only counted
    values = ["Exhausted", "Low", "Low", "Medium", "Medium", "High", "High", "High", "High"]
    for i, v in enumerate(values, 1):
        write(user, f"logs/status_2026-03-{i:02d}.yml", f"date: '2026-03-{i:02d}'\nentries:\n- at: '08:00:00'\n"
                                                        f"  status:\n    Energy: {v}\n    Focus: Laser\n")
    sync(user, as_of=date(2026, 3, 9))
    data = next(user.rglob("chronos_trends.db"))
    conn = apsw.Connection(str(data))
    rows = {d: r for d, *r in conn.execute("SELECT dimension, samples, most_common, mean_level, drift "
                                           "FROM status_trends WHERE window_days = 30")}
    conn.close()
    nums = [{"exhausted": 0, "low": 1 / 3, "medium": 2 / 3, "high": 1}[v.lower()] for v in values]
    samples, common, mean, drift = rows["energy"]
    assert (samples, common) == (9, "High")
    assert mean == pytest.approx(sum(nums) / 9)
    assert drift == pytest.approx(sum(nums[-3:]) / 3 - sum(nums[:3]) / 3)
    assert rows["focus"] == [9, "Laser", None, None]
    md, js = digest_files(user)
    energy = next(x for x in js["status"] if x["dimension"] == "energy")
    assert energy["scale"] == ["exhausted", "high"] and energy["mean_level"] == round(sum(nums) / 9, 3)
    assert f"- energy: mostly High; level {sum(nums) / 9:.2f} (exhausted→high), up {drift:+.2f}." in md
    assert "- focus: mostly Laser." in md
    # without settings, the known lower-case levels still order a dimension, in any case
    t = trends_builder.compute([], [("2026-03-01", "08:00", None, None, "HIGH", None, None, None, None)], [],
                               date(2026, 3, 1))
    assert t["status"]["energy"][7]["mean_level"] == 1.0


# --- point 8: the listener ends as sync does, and sees a changed sync time --------------

def test_listen_once_exits_1_when_a_file_was_skipped_as_sync_does(tmp_path):
    user = chronos_folder(tmp_path)
    write(user, "tasks/bad.yml", "name: [unclosed\n")
    r = run("sync", "--user", user)
    assert r.exit_code == 1 and "tasks/bad.yml:2: malformed YAML" in r.output
    r = run("listen", "--once", "--user", user)
    assert r.exit_code == 1, r.output
    assert "skipped 1 files" in r.output and "tasks/bad.yml:2: malformed YAML" in r.output


def test_review_exits_1_when_its_sync_skipped_a_file_as_sync_does(tmp_path):
    user = chronos_folder(tmp_path)
    r = run("review", "weekly", "--user", user, "--as-of", "2026-03-02")
    assert r.exit_code == 0, r.output
    write(user, "tasks/bad.yml", "name: [unclosed\n")
    r = run("review", "weekly", "--user", user, "--as-of", "2026-03-02")
    assert r.exit_code == 1, r.output
    assert "skipped 1 file(s)" in r.output and "tasks/bad.yml:2: malformed YAML" in r.output
    assert "weekly review recorded for 2026-03-02" in r.output          # the review is recorded all the same
    conn = apsw.Connection(str(next(user.rglob("chronos_events.db"))))
    try:
        runs = conn.execute("SELECT command, result FROM command_runs ORDER BY id").fetchall()
        reviews = conn.execute("SELECT COUNT(*) FROM events WHERE event_type = 'review'").fetchone()[0]
    finally:
        conn.close()
    assert runs[-2:] == [("review weekly", "ok"), ("review weekly", "skipped files")] and reviews == 2


def test_listen_once_exits_with_the_code_of_a_failed_sync(tmp_path, monkeypatch):
    user = chronos_folder(tmp_path)

    def failing(u):
        raise ConfigError(f"{u}: cannot be used")

    monkeypatch.setattr(listener, "sync", failing)
    r = run("listen", "--once", "--user", user)
    assert r.exit_code == 2 and "cannot be used" in r.output
    with pytest.raises(ConfigError):
        listener.listen(user, once=True, log=lambda m: None)


def test_a_changed_sync_time_is_seen_while_the_listener_waits(tmp_path, monkeypatch):
    user = chronos_folder(tmp_path)
    settings = user / "settings" / "Sequence.yml"
    write(user, "settings/Sequence.yml", "listener:\n  sync_time: '03:00'\n")
    clock = [datetime(2026, 1, 1, 23, 50)]
    synced_at = []

    def sleep(s):
        clock[0] += timedelta(seconds=s)
        if clock[0] == datetime(2026, 1, 1, 23, 52):           # the user edits the setting while it waits
            settings.write_text("listener:\n  sync_time: '00:00'\n")

    def fake_sync(u):
        synced_at.append(clock[0])
        return SimpleNamespace(items=1, files=1, seconds=0.0, skipped=0)

    monkeypatch.setattr(listener, "sync", fake_sync)
    logs = []
    listener.listen(user, log=logs.append, sleep=sleep, now=lambda: clock[0], cycles=1)
    assert logs[0] == "next sync at 2026-01-02T03:00"
    assert "sync time is now 00:00; next sync at 2026-01-02T00:00" in logs
    assert synced_at == [datetime(2026, 1, 2, 0, 0)]


def test_a_setting_that_turns_bad_while_waiting_is_said_once(tmp_path, monkeypatch):
    user = chronos_folder(tmp_path)
    write(user, "settings/Sequence.yml", "sync_time: '00:30'\n")
    clock = [datetime(2026, 1, 1, 23, 50)]

    def sleep(s):
        clock[0] += timedelta(seconds=s)
        (user / "settings" / "Sequence.yml").write_text("sync_time: 'teatime'\n")

    monkeypatch.setattr(listener, "sync", lambda u: SimpleNamespace(items=1, files=1, seconds=0.0, skipped=0))
    logs = []
    listener.listen(user, log=logs.append, sleep=sleep, now=lambda: clock[0], cycles=1)
    assert sum("syncing at 00:00 until it is fixed" in m for m in logs) == 1
    assert "sync time is now 00:00; next sync at 2026-01-02T00:00" in logs


# --- point 8: which folder is the user folder ---------------------------------------------

def test_a_user_folder_holding_a_user_folder_takes_the_one_with_items_and_says_so(tmp_path):
    outer = tmp_path / "user"
    inner = chronos_folder(outer, "User")
    r = run("sync", "--user", outer)
    assert r.exit_code == 0, r.output
    assert f"note: {outer}: {outer} and {inner} could each be the user folder; took {inner}: it holds items and " \
           f"{outer} does not" in r.stderr
    assert "synced 15 items" in r.stdout
    report = sync(outer)
    assert report.user == inner and report.items == 15 and report.notes


def test_two_user_folders_with_items_are_an_error_naming_both(tmp_path):
    chronos_folder(tmp_path, "User")
    chronos_folder(tmp_path, "user")
    r = run("sync", "--user", tmp_path)
    assert r.exit_code == 2
    assert f"{tmp_path / 'User'} and {tmp_path / 'user'} are both user folders with items" in r.output


def test_a_lowercase_user_folder_gets_a_lowercase_data_folder_and_a_plain_registry(tmp_path):
    user = chronos_folder(tmp_path)
    report = sync(user)
    assert report.data.relative_to(user).parts[0] == "data"
    assert not (user / "Data").exists()
    registry = (report.data / "databases.yml").read_text()
    assert "&id" not in registry and "*id" not in registry        # no YAML anchors or aliases
