"""A real Chronos user folder read exactly as Chronos writes it (issue 16,
points 1-6 and 10): which folders hold items and which do not, sibling
folders in two cases, schedules, status history and current status,
completions keyed as Chronos's commands key them, habit history and the
commitments judged by Chronos's rules, reward redemptions, reviews, goal
links and day windows, secrets in settings; the sample generator in
Chronos's formats; and a differential test of a generated folder against
the counts Chronos's rules give, computed from the generator's own plan.

The YAML in these tests is written as Chronos's own commands write it (see
docs/sequence.md, "What is read"): ``yaml.dump`` with sorted keys unless the
command passes ``sort_keys=False``, datetimes unquoted, ``HH:MM`` strings
unquoted below 10:00.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import apsw
import pytest
import yaml

from chronoledger.sequence import sample
from chronoledger.sequence.derived import Derived
from chronoledger.sequence.reader import read_user_folder, singular
from chronoledger.sequence.records import Item
from chronoledger.sequence.slugs import item_slugs
from chronoledger.sequence.sync import sync


def q(path: Path, sql: str, *args):
    conn = apsw.Connection(str(path))
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def write(user: Path, rel: str, text: str) -> Path:
    path = user / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def notes(report) -> dict[str, str]:
    return {p.path: p.reason for p in report.problems if p.note}


def variables(report) -> dict:
    return {k: json.loads(v) for k, v in q(report.data / "chronos_core.db", "SELECT key, value FROM variables")}


@pytest.fixture(params=["direct", "pyyaml"])
def reader(request, monkeypatch):
    """Both ways a file is read: libyaml's events straight to values, and PyYAML's loader."""
    from chronoledger.sequence import yamlfile

    if request.param == "pyyaml":
        monkeypatch.setattr(yamlfile, "_yamlread", None)
    return request.param


def case_sensitive(tmp_path: Path) -> bool:
    (tmp_path / "probe").mkdir()
    try:
        (tmp_path / "PROBE").mkdir()
    except FileExistsError:
        return False
    return True


# --- 1. folders that hold no items ------------------------------------------------------

def test_chronos_non_item_folders_are_reported_never_read_as_items(tmp_path):
    user = tmp_path / "user"
    write(user, "habits/walk.yml", "name: Morning Walk\ntype: habit\n")
    # scripts: macro settings with no name (Chronos's examples hold these)
    write(user, "scripts/macros_example.yml", "enable_macros: false\ndefault_timeout_ms: 15000\n")
    write(user, "scripts/Macros/macros.yml", "enable_macros: true\nbefore_command: {}\n")
    write(user, "scripts/Macros/startup_sequence.chs", "today\n")
    write(user, "archive/schedules/schedule_2026-03-18_20260318_063000.yml", "- name: Old plan\n")
    write(user, "archive/habits/retired.yml", "name: Retired Habit\ntype: habit\n")
    write(user, "examples/Habits/morning_walk_example.yml", "name: Morning Walk (Example)\ntype: habit\n")
    write(user, "exports/reports/2026-W49.md", "# Week 49\n")
    for folder in ("backups", "media", "temp", "ideas", "plugins", "data_cards/run", "themes", "docs", "debug"):
        write(user, f"{folder}/thing.yml", "value: 1\n")
    report = sync(tmp_path)
    assert report.skipped == 0 and report.items == 1
    got = notes(report)
    assert got["scripts"] == "not mirrored: Chronos's scripts and macros (3 files)"
    assert got["archive"].startswith("not mirrored: Chronos's archive") and got["archive"].endswith("(2 files)")
    assert "example items" in got["examples"]
    for folder in ("backups", "exports", "media", "temp", "ideas", "plugins", "data_cards", "themes", "docs", "debug"):
        assert got[folder].startswith("not mirrored: "), folder
    assert all(not p.skipped for p in report.problems)
    assert q(report.data / "chronos_core.db", "SELECT name FROM items") == [("Morning Walk",)]


def test_timers_and_the_points_ledger_are_read_as_what_they_are(tmp_path):
    user = tmp_path / "user"
    write(user, "rewards/espresso.yml", "name: Espresso Treat\ntype: reward\ncost:\n  points: 10\n")
    # utilities/points.py: user/Rewards/points.yml (capital R), dumped with sorted keys
    write(user, "Rewards/points.yml", """
        balance: 5
        ledger:
        - date: '2026-12-06 04:03:40'
          delta: 5
          reason: complete:habit
          source: Chronos Check in
        """)
    # modules/timer/main.py: user/Timers/state.yml (no name), its lock, the day plan and sessions
    write(user, "Timers/state.yml", """
        auto_advance: true
        bound_item:
          name: Focus Sprint
          type: task
        current_phase: null
        mode: profile
        profile_name: deep_work_50_10
        remaining_seconds: 0
        status: idle
        """)
    write(user, "Timers/state.lock", "")
    write(user, "Timers/start_day_plan.yml", "blocks:\n- minutes: 50\n  name: Deep Work\n")
    write(user, "Timers/sessions/2026-12-06.yml", """
        entries:
        - bound_item:
            name: Focus Sprint
            type: task
          end: '2026-12-06 04:53:58.933474'
          phase: focus
          profile: deep_work_50_10
          seconds: 3000
          start: '2026-12-06 04:03:57.729435'
        - bound_item: null
          end: '2026-12-06 05:03:58.000000'
          phase: short_break
          profile: deep_work_50_10
          seconds: 59
          start: '2026-12-06 04:54:00.000000'
        """)
    report = sync(tmp_path)
    assert report.skipped == 0 and report.items == 1            # the reward only: not state, not points
    core = report.data / "chronos_core.db"
    assert q(core, "SELECT ts, delta, reason, source FROM points_ledger") == \
        [("2026-12-06T04:03:40", 5.0, "complete:habit", "Chronos Check in")]
    v = variables(report)
    assert v["points.balance"] == 5
    assert v["timer.state"]["profile_name"] == "deep_work_50_10" and v["timer.state"]["status"] == "idle"
    assert v["timer.start_day_plan"] == {"blocks": [{"minutes": 50, "name": "Deep Work"}]}
    sessions = Derived(read_user_folder(tmp_path)).timer_sessions()
    assert [(s["phase"], s["minutes"], s["bound_name"], s["start"], s["source"]) for s in sessions] == [
        ("focus", 50.0, "Focus Sprint", "2026-12-06T04:03:57", "Timers/sessions/2026-12-06.yml"),
        ("short_break", 1.0, None, "2026-12-06T04:54:00", "Timers/sessions/2026-12-06.yml")]
    assert not any("state.lock" in p.path for p in report.problems)


# --- 10. sibling folders in two cases --------------------------------------------------

def test_sibling_folders_in_two_cases_are_all_read(tmp_path):
    if not case_sensitive(tmp_path):
        pytest.skip("this file system does not keep Rewards and rewards apart")
    user = tmp_path / "user"
    write(user, "rewards/espresso.yml", "name: Espresso Treat\ntype: reward\n")
    write(user, "Rewards/points.yml", "balance: 3\nledger:\n- {date: '2026-12-01 08:00:00', delta: 3, reason: x}\n")
    write(user, "reviews/weekly/2026-48.yml", "period: {end: '2026-11-29', start: '2026-11-23', type: weekly}\n")
    write(user, "Reviews/weekly/2026-49.yml", "period: {end: '2026-12-06', start: '2026-11-30', type: weekly}\n")
    write(user, "timers/sessions/2026-12-01.yml", "entries:\n- {phase: focus, seconds: 600}\n")
    write(user, "Timers/sessions/2026-12-02.yml", "entries:\n- {phase: focus, seconds: 1200}\n")
    write(user, "Timers/sessions/2026-12-01.yml", "entries:\n- {phase: focus, seconds: 60}\n")   # same day again
    walk = "entries:\n  Walk@unscheduled: {name: Walk, status: completed}\n"
    write(user, "schedules/completions/2026-12-01.yml", walk)
    write(user, "Schedules/completions/2026-12-02.yml", walk)
    write(user, "settings/quality_settings.yml", "Quality_Settings:\n  Good: {value: 3}\n")
    write(user, "Settings/energy_settings.yml", "Energy_Settings:\n  High: {value: 1}\n")
    report = sync(tmp_path)
    assert report.skipped == 0 and report.items == 1
    tree = read_user_folder(tmp_path)
    assert tree.points_file == "Rewards/points.yml" and tree.points["balance"] == 3
    assert sorted(path for _, path, _ in tree.reviews) == ["Reviews/weekly/2026-49.yml", "reviews/weekly/2026-48.yml"]
    assert tree.timer_files == {"2026-12-01": "Timers/sessions/2026-12-01.yml",     # Chronos's spelling first
                                "2026-12-02": "Timers/sessions/2026-12-02.yml"}
    assert "timers/sessions/2026-12-01.yml" in notes(report)
    assert sorted(tree.completions) == ["2026-12-01", "2026-12-02"]
    assert set(tree.settings) == {"quality_settings", "energy_settings"}


# --- 2. schedules --------------------------------------------------------------------

KAIROS = """
- actual_end: null
  actual_start: null
  anchored: false
  block_id: anon:habit:chronos_check_in:na:na:10:0@00:28
  children: []
  completed_logged_at: null
  duration: 10
  end_time: 2026-03-19 00:38:00
  importance: 134.0
  name: Chronos Check in
  reschedule: auto
  start_time: 2026-03-19 00:28:00
  status: pending
  type: habit
  window_name: GAP
- anchored: false
  block_id: routine::morning routine@hierarchy
  children:
  - anchored: false
    block_id: window::workout_window
    children:
    - block_id: id:39@00:43
      duration: 5
      end_time: 2026-03-19 00:48:00
      name: Dumbell Curls
      start_time: &id002 2026-03-19 00:43:00
      status: active
      type: habit
      window_name: GAP
    duration: 20
    name: Workout Window
    start_time: *id002
    type: window
  duration: 45
  name: Morning Routine
  start_time: 2026-03-19 00:40:00
  status: pending
  type: routine
- buffer_type: dynamic
  duration: 15
  end_time: 2026-03-19 01:40:00
  is_buffer: true
  name: Dynamic Buffer
  start_time: 2026-03-19 01:25:00
- duration: 480
  end_time: 2026-03-20 07:00:00
  name: Sleep
  start_time: 2026-03-19 23:00:00
  type: habit
"""

LEGACY = """
- &id001
  children:
  - children: []
    duration: 5
    end_time: 2026-03-19 07:05:00
    name: Brush
    original_item_data:
      duration: 5
      name: Brush
    parent: *id001
    start_time: 2026-03-19 07:00:00
    type: habit
  - &id003
    children:
    - children: []
      duration: 2
      name: Floss
      parent: *id003
      start_time: 2026-03-19 07:05:00
      type: microroutine
    duration: 10
    name: Evening Care
    parent: *id001
    start_time: 2026-03-19 07:05:00
    type: subroutine
  duration: 30
  end_time: 2026-03-19 07:30:00
  ideal_start_time: 2026-03-19 07:00:00
  is_parallel_item: false
  name: Morning Routine
  original_item_data:
    children:
    - name: Brush
    name: Morning Routine
  parent: null
  start_time: 2026-03-19 07:00:00
  status: pending
  type: routine
- duration: 15
  end_time: 2026-03-19 07:45:00
  is_buffer: true
  buffer_type: template
  name: Buffer
  parent: null
  start_time: 2026-03-19 07:30:00
"""


def test_schedules_as_chronos_names_and_writes_them(tmp_path, reader):
    user = tmp_path / "user"
    write(user, "habits/curls.yml", "name: Dumbell Curls\ntype: habit\n")
    write(user, "schedules/schedule_2026-03-19.yml", KAIROS)
    # the Kairos shadow files are mappings (the whole gathered world), not the day's schedule
    write(user, "schedules/schedule_2026-03-19_kairos_v2_shadow.yml", "engine: kairos_v2\ntarget_date: '2026-03-19'\n")
    write(user, "schedules/schedule_2026-03-19_kairos_shadow.yml", "engine: kairos\n")
    write(user, "schedules/manual_modifications_2026-03-19.yml", "- action: trim\n  item_name: Sleep\n")
    write(user, "schedules/2026-03-20.yml", "- name: Not Chronos's name\n")
    write(user, "schedules/completions/2026-03-19.yml", """
        entries:
          Dumbell Curls@00:43:
            actual_end: 00:48
            actual_start: 00:44
            logged_at: '2026-03-19T00:50:00'
            name: Dumbell Curls
            scheduled_end: 00:48
            scheduled_start: 00:43
            status: completed
        """)
    report = sync(tmp_path)
    assert report.skipped == 0
    core = report.data / "chronos_core.db"
    rows = q(core, "SELECT date, block, depth, name, type, start_time, end_time, planned_minutes, completion_status "
                   "FROM schedules ORDER BY block")
    assert rows == [("2026-03-19", "0", 0, "Chronos Check in", "habit", "00:28", "00:38", 10.0, None),
                    ("2026-03-19", "1", 0, "Morning Routine", "routine", "00:40", None, 45.0, None),
                    ("2026-03-19", "1.0", 1, "Workout Window", "window", "00:43", None, 20.0, None),
                    ("2026-03-19", "1.0.0", 2, "Dumbell Curls", "habit", "00:43", "00:48", 5.0, "completed"),
                    ("2026-03-19", "3", 0, "Sleep", "habit", "23:00", "07:00", 480.0, None)]   # no buffer (2)
    facts = q(report.data / "chronos_memory.db", "SELECT name FROM activity_facts ORDER BY id")
    assert ("Dynamic Buffer",) not in facts and len(facts) == 5
    got = notes(report)
    assert got["schedules"].startswith("2 files not mirrored (schedules/schedule_2026-03-19_kairos_shadow.yml, ...): "
                                       "a trace of Chronos's Kairos scheduler")              # one note per reason
    assert "hand edits" in got["schedules/manual_modifications_2026-03-19.yml"]
    assert "schedule_<date>.yml" in got["schedules/2026-03-20.yml"]


def test_a_legacy_schedule_with_parent_aliases_is_read_not_refused(tmp_path, reader):
    user = tmp_path / "user"
    write(user, "schedules/schedule_2026-03-19.yml", LEGACY)
    report = sync(tmp_path, ("core",))
    assert report.problems == []
    rows = q(report.data / "chronos_core.db", "SELECT block, parent_block, depth, name FROM schedules ORDER BY block")
    assert rows == [("0", None, 0, "Morning Routine"), ("0.0", "0", 1, "Brush"), ("0.1", "0", 1, "Evening Care"),
                    ("0.1.0", "0.1", 2, "Floss")]
    blocks = read_user_folder(tmp_path).schedules["2026-03-19"]
    assert "parent" not in blocks[0] and "original_item_data" not in blocks[0]["children"][0]


# --- 2. status --------------------------------------------------------------------------

def test_status_history_and_current_status_as_chronos_writes_them(tmp_path):
    user = tmp_path / "user"
    # commands/status.py: each change appends the whole status; `at` is quoted from 10:00 on
    write(user, "logs/status_2026-12-06.yml", """
        date: '2026-12-06'
        entries:
        - at: 04:03:41
          status:
            energy: High
        - at: '13:05:10'
          status:
            energy: High
            focus: Laser
            mind state: Clear
        """)
    # Chronos's second place, read only for a day logs/ has no file for
    write(user, "profile/Status/status_2026-12-05.yml", "date: '2026-12-05'\nentries:\n- at: '21:00:00'\n"
                                                        "  status:\n    energy: Low\n")
    write(user, "profile/Status/status_2026-12-06.yml", "date: '2026-12-06'\nentries:\n- at: '22:00:00'\n"
                                                        "  status:\n    energy: Exhausted\n")
    # status_current_path(): user/current_status.yml first, then profile/current_status.yml
    write(user, "current_status.yml", "energy: High\nfocus: Laser\n")
    write(user, "profile/current_status.yml", "energy: Medium\n")
    write(user, "profile/profile.yml", "nickname: Sam\n")
    report = sync(tmp_path)
    assert report.skipped == 0
    mem = report.data / "chronos_memory.db"
    assert q(mem, "SELECT date, time, energy, focus, mind_state FROM status_snapshots ORDER BY date, time") == [
        ("2026-12-05", "21:00", "Low", None, None),
        ("2026-12-06", "04:03", "High", None, None),
        ("2026-12-06", "13:05", "High", "Laser", "Clear")]
    assert q(report.data / "chronos_core.db", "SELECT COUNT(*) FROM status_log") == [(5,)]
    assert variables(report)["status.current"] == {"energy": "High", "focus": "Laser"}
    got = notes(report)
    assert "logs/status_2026-12-06.yml" in got["profile/Status/status_2026-12-06.yml"]
    assert "current_status.yml" in got["profile/current_status.yml"]
    assert "personal" in got["profile/profile.yml"]


def test_status_dimensions_and_levels_come_from_chronos_settings(tmp_path):
    user = tmp_path / "user"
    write(user, "settings/status_settings.yml", """
        Status_Settings:
        - Description: Physical and mental energy levels.
          Name: Energy
          Rank: 3
        - Name: Health
          Rank: 1
        - Name: Mind State
          Rank: 2
        - Name: Mood Ring
          Rank: 4
        """)
    write(user, "settings/energy_settings.yml", """
        Energy_Settings:
          Exhausted:
            description: Severely drained, needs rest.
            value: 4
          High:
            value: 1
          Low:
            value: 3
          Medium:
            value: 2
        """)
    write(user, "settings/quality_settings.yml", "Quality_Settings:\n  Excellent: {value: 4}\n  Meh: {value: 1}\n")
    report = sync(tmp_path, ("core",))
    v = variables(report)
    assert v["status.dimensions"] == ["health", "mind_state", "energy", "mood_ring"]
    assert v["status.levels"] == {"energy": ["exhausted", "low", "medium", "high"]}      # worst to best
    assert v["quality.levels"] == {"excellent": 4.0, "meh": 1.0}


# --- completions ---------------------------------------------------------------------

def test_completions_as_chronos_commands_key_and_write_them(tmp_path):
    user = tmp_path / "user"
    write(user, "habits/curls.yml", "name: Dumbell Curls\ntype: habit\n")
    write(user, "habits/walk.yml", "name: Morning Walk\ntype: habit\n")
    write(user, "schedules/schedule_2026-12-06.yml", """
        - duration: 5
          end_time: 2026-12-06 00:48:00
          name: Dumbell Curls
          start_time: 2026-12-06 00:43:00
          type: habit
        """)
    # did (sorted keys; keyed by its last property), complete (sort_keys=False, @unscheduled),
    # mark (status as typed), the Kairos cut and the dashboard's auto-miss
    write(user, "schedules/completions/2026-12-06.yml", """
        entries:
          note:
            actual_end: 00:48
            actual_start: 00:43
            logged_at: '2026-12-06T04:03:40'
            name: Dumbell Curls
            note: stopped early
            quality: Good
            scheduled_end: 00:48
            scheduled_start: 00:43
            status: partial
          Morning Walk@unscheduled:
            name: Morning Walk
            status: completed
            scheduled_start: null
            scheduled_end: null
            logged_at: '2026-12-06T04:03:40'
            quality: Excellent
          quality:
            logged_at: '2026-12-06T05:00:00'
            name: Drink Water
            quality: '3'
            scheduled_end: 09:15
            scheduled_start: 09:00
            status: completed
          Eyesight Exercises@00:48:
            name: Eyesight Exercises
            status: Skipped
            scheduled_start: 00:48
            scheduled_end: 00:53
            logged_at: '2026-12-06T04:03:41'
          Stretch@07:00:
            name: Stretch
            status: skipped
            scheduled_start: 07:00
            scheduled_end: 07:10
            logged_at: '2026-12-06T06:00:00'
            source: kairos_cut
            auto_skipped: true
            reason: over capacity
            block_id: habit::stretch@07:00
          Yoga@06:00:
            auto_missed: true
            logged_at: '2026-12-07T09:00:00'
            name: Yoga
            scheduled_end: 06:30
            scheduled_start: 06:00
            source: auto_miss_yesterday
            status: missed
        """)
    tree = read_user_folder(tmp_path)
    got = {c["name"]: c for c in Derived(tree).completions}
    assert set(got) == {"Dumbell Curls", "Morning Walk", "Drink Water", "Eyesight Exercises", "Stretch", "Yoga"}
    curls = got["Dumbell Curls"]
    assert (curls["key"], curls["status"], curls["scheduled_start"], curls["actual_start"], curls["note"]) == \
        ("note", "partial", "00:43", "00:43", "stopped early")
    assert (curls["quality"], curls["quality_label"]) == (3.0, "Good")          # Chronos's own labels, 4 the best
    assert (got["Morning Walk"]["quality"], got["Morning Walk"]["quality_label"]) == (4.0, "Excellent")
    assert got["Morning Walk"]["scheduled_start"] is None
    assert got["Drink Water"]["quality"] == 3.0 and got["Drink Water"]["scheduled_start"] == "09:00"
    assert got["Eyesight Exercises"]["status"] == "skipped"
    assert (got["Stretch"]["origin"], got["Stretch"]["auto"]) == ("kairos_cut", "skipped")
    assert json.loads(got["Stretch"]["extra_json"]) == {"block_id": "habit::stretch@07:00", "reason": "over capacity"}
    assert (got["Yoga"]["origin"], got["Yoga"]["auto"]) == ("auto_miss_yesterday", "missed")
    assert {c["source"] for c in got.values()} == {"schedules/completions/2026-12-06.yml"}
    report = sync(tmp_path)
    core = report.data / "chronos_core.db"
    assert q(core, "SELECT item_name, quality, source FROM completions WHERE item_name = 'Dumbell Curls'") == \
        [("Dumbell Curls", 3.0, "schedules/completions/2026-12-06.yml")]
    assert q(core, "SELECT completion_status, actual_start FROM schedules") == [("partial", "00:43")]
    assert q(report.data / "chronos_memory.db", "SELECT quality FROM activity_facts WHERE name = 'Dumbell Curls'") \
        == [(3.0,)]


def test_core_mirror_keeps_what_completions_and_habit_history_say(tmp_path):
    """chronos_core.db holds every field the reader takes from a completions
    entry (the label, the key as written, its own source, auto-missed or
    skipped, its other fields) and the items' own habit history."""
    user = tmp_path / "user"
    write(user, "habits/walk.yml", """
        completion_dates:
        - '2026-12-04'
        - '2026-12-02'
        name: Morning Walk
        type: habit
        """)
    write(user, "habits/sugar.yml", """
        completion_dates:
        - '2026-12-03'
        incident_dates:
        - '2026-12-03'
        name: No Sugar After 8pm
        polarity: bad
        type: habit
        """)
    write(user, "schedules/completions/2026-12-06.yml", """
        entries:
          note:
            name: Dumbell Curls
            note: stopped early
            quality: Good
            scheduled_start: 00:43
            status: partial
          Stretch@07:00:
            name: Stretch
            status: skipped
            scheduled_start: 07:00
            source: kairos_cut
            auto_skipped: true
            reason: over capacity
          Yoga@06:00:
            auto_missed: true
            name: Yoga
            source: auto_miss_yesterday
            status: missed
        """)
    report = sync(tmp_path, ("core",))
    core = report.data / "chronos_core.db"
    assert q(core, "PRAGMA user_version") == [(3,)]
    rows = q(core, "SELECT item_name, quality, quality_label, block_key, origin, auto, extra_json FROM completions "
                   "ORDER BY item_name")
    assert rows == [("Dumbell Curls", 3.0, "Good", "note", None, None, None),
                    ("Stretch", None, None, "Stretch@07:00", "kairos_cut", "skipped", '{"reason":"over capacity"}'),
                    ("Yoga", None, None, "Yoga@06:00", "auto_miss_yesterday", "missed", None)]
    ids = dict(q(core, "SELECT name, id FROM items"))
    assert q(core, "SELECT item_id, name, type, date, kind, polarity FROM habit_history ORDER BY id") == [
        (ids["No Sugar After 8pm"], "No Sugar After 8pm", "habit", "2026-12-03", "completion", "bad"),
        (ids["No Sugar After 8pm"], "No Sugar After 8pm", "habit", "2026-12-03", "incident", "bad"),
        (ids["Morning Walk"], "Morning Walk", "habit", "2026-12-02", "completion", "good"),
        (ids["Morning Walk"], "Morning Walk", "habit", "2026-12-04", "completion", "good")]
    assert report.built["core"]["counts"]["habit_history"] == 4


# --- 3, 4. habit history and commitments -----------------------------------------------

def _week_of_logs(user: Path, first: str, days: int) -> None:
    """Empty completions files over the days: the span the logs cover."""
    d0 = date.fromisoformat(first)
    for i in range(days):
        write(user, f"schedules/completions/{(d0 + timedelta(days=i)).isoformat()}.yml", "entries: {}\n")


def test_habit_history_and_commitments_judged_by_chronos_rules(tmp_path):
    user = tmp_path / "user"
    # Chronos's own example commitments (user/examples/Commitments/)
    write(user, "commitments/fitness.yml", """
        name: Fitness 3x Weekly
        type: commitment
        status: active
        rule:
          kind: frequency
          times: 3
          period: week
        targets:
          - type: habit
            name: Morning Walk
        triggers:
          on_met:
            - type: reward
              name: Espresso Treat
        """)
    write(user, "commitments/scrolling.yml", """
        name: No Midnight Scrolling
        rule:
          kind: never
          period: day
        status: active
        targets:
        - name: No Sugar After 8pm
          type: habit
        triggers:
          on_violation:
          - name: Night Owl Recovery
            type: achievement
        type: commitment
        """)
    # complete habit Morning Walk, three times in the week of 2026-11-30 (no completions log entry
    # for one of them: ticked on the dashboard)
    write(user, "habits/walk.yml", """
        completion_dates:
        - '2026-11-30'
        - '2026-12-02'
        - '2026-12-04'
        current_streak: 1
        name: Morning Walk
        polarity: good
        type: habit
        """)
    # a habit to avoid: an incident is written to both lists
    write(user, "habits/sugar.yml", """
        completion_dates:
        - '2026-12-03'
        incident_dates:
        - '2026-12-03'
        name: No Sugar After 8pm
        polarity: bad
        type: habit
        """)
    _week_of_logs(user, "2026-11-30", 7)
    write(user, "schedules/completions/2026-12-02.yml", """
        entries:
          Morning Walk@07:00:
            name: Morning Walk
            status: completed
            scheduled_start: 07:00
            scheduled_end: 07:30
            logged_at: '2026-12-02T07:35:00'
        """)
    report = sync(tmp_path, ("core", "events"))
    log = q(report.data / "chronos_events.db", "SELECT source_name, period, outcome, detail_json FROM trigger_log "
                                               "ORDER BY source_name, period")
    fitness = [(p, o, json.loads(d)["count"]) for n, p, o, d in log if n == "Fitness 3x Weekly"]
    assert fitness == [("2026-W49", "met", 3)]                     # 30 Nov, 2 Dec (logged twice: once), 4 Dec
    never = {p: o for n, p, o, _ in log if n == "No Midnight Scrolling"}
    assert len(never) == 7 and never["2026-12-03"] == "violated"
    assert [p for p, o in never.items() if o == "violated"] == ["2026-12-03"]   # met unless an incident
    history = Derived(read_user_folder(tmp_path)).habit_history()
    assert [(h["name"], h["date"], h["kind"]) for h in history] == [
        ("No Sugar After 8pm", "2026-12-03", "completion"), ("No Sugar After 8pm", "2026-12-03", "incident"),
        ("Morning Walk", "2026-11-30", "completion"), ("Morning Walk", "2026-12-02", "completion"),
        ("Morning Walk", "2026-12-04", "completion")]


def test_older_commitment_shapes_per_target_counts_and_manual_verdicts(tmp_path):
    user = tmp_path / "user"
    for name in ("Run", "Swim", "Read"):
        write(user, f"habits/{name.lower()}.yml", f"name: {name}\ntype: habit\ncompletion_dates: []\n")
    write(user, "habits/smoke.yml", "name: Smoke\ntype: habit\npolarity: bad\nincident_dates: ['2026-12-01']\n")
    write(user, "commitments/a.yml", "name: Old Frequency\nfrequency: {times: 2, period: week, of: {type: habit, "
                                     "name: Run}}\n")
    write(user, "commitments/b.yml", "name: Old Never\nnever: true\nforbidden_items: [{type: habit, name: Smoke}]\n")
    write(user, "commitments/c.yml", "name: Linked\nrule: {kind: frequency, times: 1, period: week}\n"
                                     "linked_habit: Read\n")
    write(user, "commitments/d.yml", "name: Each Their Own\nrule: {kind: frequency, times: 1, period: week}\n"
                                     "targets: [{type: habit, name: Run, count: 2}, "
                                     "{type: habit, name: Swim, count: 1}]\n")
    write(user, "commitments/e.yml", "name: Forgiven\nrule: {kind: never, period: day}\n"
                                     "targets: [{type: habit, name: Smoke}]\n"
                                     "manual_status_by_date: {'2026-12-01': met}\n")
    write(user, "commitments/f.yml", "name: Odd Kind\nrule: {kind: sometimes, period: week}\n")
    _week_of_logs(user, "2026-11-30", 7)
    done = {"Run": ["2026-11-30", "2026-12-03"], "Swim": ["2026-12-05"]}
    for name, days in done.items():
        for d in days:
            write(user, f"schedules/completions/{d}.yml",
                  f"entries:\n  {name}@unscheduled: {{name: {name}, status: completed}}\n")
    report = sync(tmp_path, ("core", "events"))
    log = q(report.data / "chronos_events.db", "SELECT source_name, period, outcome FROM trigger_log")
    by = Counter((n, o) for n, _, o in log)
    assert by[("Old Frequency", "met")] == 1 and by[("Linked", "violated")] == 1
    assert by[("Each Their Own", "met")] == 1
    assert by[("Old Never", "violated")] == 1 and by[("Old Never", "met")] == 6          # a never rule: per day
    assert by[("Forgiven", "met")] == 7                      # the manual verdict for 1 December
    assert not [n for n, _, _ in log if n == "Odd Kind"]
    assert any("rule kind 'sometimes'" in p.reason for p in report.warnings)


def test_reward_redemptions_in_chronos_ledger_format(tmp_path):
    user = tmp_path / "user"
    write(user, "rewards/espresso.yml", """
        name: Espresso Treat
        type: reward
        cost:
          points: 10
        target:
          type: note
          name: Espresso
          mode: instantiate
        """)
    # modules/reward/main.py _redeem_reward: reason redeem:<name>, no source
    write(user, "Rewards/points.yml", """
        balance: 5
        ledger:
        - date: '2026-12-06 04:03:40'
          delta: 15
          reason: complete:task
          source: Drink Water
        - date: '2026-12-06 09:00:00'
          delta: -10
          reason: redeem:Espresso Treat
        - date: '2026-12-06 10:00:00'
          delta: 10
          reason: timer:focus:deep_work_50_10
        - date: '2026-12-06 11:00:00'
          delta: -10
          reason: redeem:Gone Reward
        """)
    report = sync(tmp_path, ("core", "events", "memory"))
    log = q(report.data / "chronos_events.db", "SELECT ts, source_name, outcome, actions_json, detail_json "
                                               "FROM trigger_log ORDER BY ts")
    assert [(ts, n, o) for ts, n, o, _, _ in log] == [("2026-12-06T09:00:00", "Espresso Treat", "redeemed"),
                                                      ("2026-12-06T11:00:00", "Gone Reward", "redeemed")]
    assert json.loads(log[0][3]) == [{"mode": "instantiate", "name": "Espresso", "type": "note"}]
    assert json.loads(log[0][4]) == {"cost": 10.0, "points": -10.0, "reward_found": True}
    assert q(report.data / "chronos_memory.db", "SELECT source_name, points FROM reinforcements ORDER BY ts") == \
        [("Espresso Treat", -10.0), ("Gone Reward", -10.0)]


# --- 5. reviews, goal links, day windows ------------------------------------------------

def test_reviews_as_chronos_names_them(tmp_path):
    user = tmp_path / "user"
    # commands/review.py: Reviews/weekly/<isoyear>-<isoweek>.yml, no W
    write(user, "Reviews/weekly/2026-49.yml", """
        generated_at: '2026-12-06 04:03:41'
        period:
          end: '2026-12-06'
          start: '2026-11-30'
          type: weekly
        sections:
          points: {earned: 30, net: 30, spent: 0}
        """)
    write(user, "Reviews/monthly/2026-11.yml", "period: {end: '2026-11-30', start: '2026-11-01', type: monthly}\n")
    # Chronos's example review, at the top of Reviews/
    write(user, "Reviews/2026-W01_example.yml", """
        name: Weekly Review 2026-W01
        type: review
        week: 2026-W01
        highlights:
          - Shipped the first tutorial
        """)
    write(user, "Reviews/notes.txt", "scratch\n")
    report = sync(tmp_path, ("core", "events"))
    rows = q(report.data / "chronos_events.db", "SELECT ts, payload_json FROM events WHERE event_type = 'review' "
                                                "ORDER BY ts")
    got = [(ts[:10], json.loads(p)["kind"], json.loads(p)["label"], json.loads(p)["path"]) for ts, p in rows]
    assert got == [("2026-01-04", "weekly", "2026-W01", "Reviews/2026-W01_example.yml"),
                   ("2026-11-30", "monthly", "2026-11", "Reviews/monthly/2026-11.yml"),
                   ("2026-12-06", "weekly", "2026-W49", "Reviews/weekly/2026-49.yml")]
    payloads = [json.loads(p) for _, p in rows]
    # what Chronos's review command writes is all in its sections: kept
    assert payloads[2]["sections"] == {"points": {"earned": 30, "net": 30, "spent": 0}}
    assert payloads[0]["highlights"] == ["Shipped the first tutorial"] and "sections" not in payloads[0]
    assert "not a review" in notes(report)["Reviews/notes.txt"]


def test_goal_links_and_day_windows_are_relations(tmp_path):
    user = tmp_path / "user"
    write(user, "Goals/guitar.yml", "name: Learn Guitar (Example)\ntype: goal\n")
    write(user, "Milestones/chords.yml", "name: First Chords\ntype: milestone\ngoal: learn guitar (example)\n")
    write(user, "Milestones/lost.yml", "name: Lost Milestone\ntype: milestone\ngoal: A Goal Nobody Wrote\n")
    write(user, "Microroutines/study.yml", "name: Study Window AM (Example)\ntype: microroutine\nwindow: true\n")
    write(user, "Days/weekday.yml", """
        name: Collaboration and Admin Day (Example)
        type: day
        duration: 24h
        sequence:
          - name: Study Window AM (Example)
            type: microroutine
            window: true
            start: "09:00"
            end: "12:00"
            filters:
              tags:
                - learning
          - name: Admin Window
            type: microroutine
            window: true
            start: "14:00"
            end: "15:00"
          - Tidy Desk
        """)
    report = sync(tmp_path, ("core",))
    rows = q(report.data / "chronos_core.db",
             "SELECT p.name, r.kind, r.child_name, c.name, r.resolved, r.detail_json FROM relations r "
             "JOIN items p ON p.id = r.parent_id LEFT JOIN items c ON c.id = r.child_id "
             "WHERE r.kind IN ('goal', 'sequence') ORDER BY p.name, r.ord")
    day = "Collaboration and Admin Day (Example)"
    assert [r[:5] for r in rows] == [
        (day, "sequence", "Study Window AM (Example)", "Study Window AM (Example)", 1),
        (day, "sequence", "Admin Window", None, 0),
        (day, "sequence", "Tidy Desk", None, 0),
        ("First Chords", "goal", "learn guitar (example)", "Learn Guitar (Example)", 1),
        ("Lost Milestone", "goal", "A Goal Nobody Wrote", None, 0)]
    assert json.loads(rows[1][5]) == {"end": "15:00", "start": "14:00", "window": True}
    # an inline window is a definition, not a reference: only the goal and the bare name are unresolved
    assert sorted((u["kind"], u["name"]) for u in report.unresolved) == [("goal", "A Goal Nobody Wrote"),
                                                                         ("sequence", "Tidy Desk")]


# --- 6. secrets in settings ----------------------------------------------------------------

def test_settings_secrets_never_enter_a_mirror(tmp_path):
    user = tmp_path / "user"
    token = "Zm9vYmFyLXNlY3JldC10b2tlbi0xMjM0NQ"
    # utilities/dashboard/server.py _load_link_settings: the dashboard Link's bearer token
    write(user, "settings/link_settings.yml", f"link_id: link-1a2b\ntoken: {token}\n")
    write(user, "settings/sync_settings.yml", f"""
        server: https://example.org
        accounts:
        - user: sam
          password: {token}-pw
        api:
          apiKey: {token}-key
          client_secret: {token}-cs
          Access-Token: {token}-at
          author: Sam
          tokenizer: words
        auth: {{user: sam, pass: {token}-auth}}
        """)
    report = sync(tmp_path)
    v = variables(report)
    assert v["settings.link_settings"] == {"link_id": "link-1a2b"}
    assert v["settings.sync_settings"] == {"server": "https://example.org", "accounts": [{"user": "sam"}],
                                           "api": {"author": "Sam", "tokenizer": "words"}}
    got = notes(report)
    assert got["settings/link_settings.yml"] == ("token left out of the mirror: a secret (the file's other values "
                                                 "are kept)")
    assert got["settings/sync_settings.yml"].startswith("accounts[0].password, api.apikey, api.client_secret, "
                                                        "api.access-token, auth left out")
    assert report.skipped == 0
    for f in report.data.rglob("*"):                          # nowhere in any mirror, registry or digest
        if f.is_file():
            assert token.encode() not in f.read_bytes(), f.name
    assert all(token not in p.reason for p in report.problems)


# --- item types, slugs, subfolders, odd files ---------------------------------------------

def test_people_are_persons_and_items_carry_chronos_slugs(tmp_path):
    user = tmp_path / "user"
    write(user, "people/ann.yml", "name: Ann Lee\nrelationship: friend\n")
    write(user, "journal_entries/first.yml", "name: First Entry\ndate: 2026-12-01\ncontent: Hello\n")
    write(user, "habits/walk.yml", "name: Morning Walk\n")
    write(user, "habits/walk_again.yml", "name: morning walk \n")       # Chronos adds #2 to a repeat
    tree = read_user_folder(tmp_path)
    slugs = item_slugs(tree.items)
    assert sorted(zip((it.type for it in tree.items), slugs)) == [
        ("habit", "habit::morning walk"), ("habit", "habit::morning walk#2"),
        ("journal_entry", "journal_entry::first entry"), ("person", "person::ann lee")]
    # one way to name an item as Chronos does, the one that knows the other items: nothing on Item itself
    assert not hasattr(Item, "chronos_slug")
    report = sync(tmp_path, ("core", "behavior"))
    assert q(report.data / "chronos_core.db", "SELECT slug FROM items ORDER BY id") == [(s,) for s in slugs]
    assert singular("People") == "person" and singular("Journal Entries") == "journal_entry"


def test_items_in_subfolders_are_read_and_other_files_reported(tmp_path):
    user = tmp_path / "user"
    write(user, "tasks/home/fix_sink.yml", "name: Fix Sink\ntype: task\n")
    write(user, "tasks/fix_sink.yml", "name: Fix Sink Too\ntype: task\n")
    write(user, "tasks/notes.md", "# a note\n")
    write(user, "tasks/.gitkeep", "")
    write(user, "README.md", "my folder\n")
    report = sync(tmp_path, ("core",))
    assert report.skipped == 0
    assert sorted(q(report.data / "chronos_core.db", "SELECT name, path FROM items")) == [
        ("Fix Sink", "tasks/home/fix_sink.yml"), ("Fix Sink Too", "tasks/fix_sink.yml")]
    got = notes(report)
    assert "not YAML" in got["tasks/notes.md"] and "top of the user folder" in got["README.md"]
    assert not any(".gitkeep" in p.path for p in report.problems)


# --- the generator ----------------------------------------------------------------------

def test_the_generator_writes_chronos_formats_the_same_each_time(tmp_path):
    a = sample.write_user_folder(tmp_path / "a", items=60, days=20, seed=5)
    b = sample.write_user_folder(tmp_path / "b", items=60, days=20, seed=5)
    files_a = {p.relative_to(a).as_posix(): p.read_bytes() for p in sorted(a.rglob("*")) if p.is_file()}
    files_b = {p.relative_to(b).as_posix(): p.read_bytes() for p in sorted(b.rglob("*")) if p.is_file()}
    assert files_a == files_b
    names = set(files_a)
    for want in ("schedules/schedule_2025-01-01.yml", "schedules/completions/2025-01-01.yml",
                 "logs/status_2025-01-01.yml", "Rewards/points.yml", "Timers/state.yml", "current_status.yml",
                 "scripts/Macros/macros.yml", "Settings/link_settings.yml", "Settings/status_settings.yml",
                 "Settings/quality_settings.yml"):
        assert want in names, want
    assert not [n for n in names if n.startswith(("Schedules/", "Logs/status/"))]   # chronoledger's old layout
    assert any(n.startswith("Reviews/weekly/") and "W" not in n.rsplit("/", 1)[1] for n in names)
    assert any(n.endswith("_kairos_v2_shadow.yml") for n in names)
    assert b"token: " + sample.LINK_TOKEN.encode() in files_a["Settings/link_settings.yml"]
    legacy = next(v for n, v in files_a.items() if n.startswith("schedules/schedule_") and b"parent: *id" in v)
    assert b"original_item_data" in legacy
    comp = b"".join(v for n, v in files_a.items() if n.startswith("schedules/completions/"))
    assert b"\n  note:\n" in comp or b"\n  quality:\n" in comp                # did's keys
    assert b"@unscheduled:" in comp and b"auto_missed: true" in comp and b"source: kairos_cut" in comp
    status = yaml.safe_load(files_a["logs/status_2025-01-02.yml"])
    assert set(status) == {"date", "entries"} and set(status["entries"][0]) == {"at", "status"}
    ledger = yaml.safe_load(files_a["Rewards/points.yml"])["ledger"]
    assert any(e["reason"].startswith("redeem:") and "source" not in e for e in ledger)


# --- the differential test -----------------------------------------------------------------

def _blocks(blocks) -> int:
    """Schedule blocks that are activities (not buffers), at any depth, as written."""
    return sum(1 + _blocks(b.get("children") or []) for b in blocks or [] if not b.get("is_buffer"))


def _expected_verdicts(plan: sample.Plan) -> list[tuple[str, str, str]]:
    """Every commitment's verdict per whole period, by Chronos's rules
    (modules/commitment/main.py), from the plan: frequency met when the
    targets were done `times` times in the week (each target its own `count`
    when one gives it), a `never` rule met per day unless an incident; a
    target done on a day when the completions log has it completed or the
    day is in its completion_dates (incident_dates for a never rule on a
    habit to avoid).  Only active commitments, from `created` on, over the
    days the logs cover."""
    items = {(sample.name_of(d).lower(), t): d for t, ds in plan.items.items() for d in ds}
    logged: dict[str, Counter] = {}
    for dp in plan.days:
        for e in dp.entries.values():
            if str(e["status"]).lower() == "completed":
                logged.setdefault(e["name"].lower(), Counter())[dp.day.isoformat()] += 1
    first, last = plan.days[0].day, plan.days[-1].day

    def periods(kind: str):
        if kind == "day":
            d = first
            while d <= last:
                yield d, d + timedelta(days=1), d.isoformat()
                d += timedelta(days=1)
        else:
            d = first - timedelta(days=first.weekday())
            while d + timedelta(days=6) <= last:
                iso = d.isocalendar()
                yield d, d + timedelta(days=7), f"{iso[0]}-W{iso[1]:02d}"
                d += timedelta(days=7)

    out = []
    for c in plan.items["commitment"]:
        if c.get("status") != "active":
            continue
        if "rule" in c:
            kind, times, period = c["rule"]["kind"], c["rule"].get("times", 0), c["rule"]["period"]
            targets = c["targets"]
        elif "frequency" in c:
            kind, times, period = "frequency", c["frequency"]["times"], c["frequency"]["period"]
            targets = [c["frequency"]["of"]]
        else:
            kind, times, period = "never", 0, "day"
            targets = c["forbidden_items"]
        since = c.get("created")
        counted = []
        for t in targets:
            item = items[(t["name"].lower(), t["type"])]
            field = "incident_dates" if kind == "never" and item.get("polarity") == "bad" else "completion_dates"
            per_day = Counter(logged.get(t["name"].lower(), Counter()))
            for d in item.get(field, []):
                per_day[d] = max(per_day[d], 1)
            counted.append((per_day, t.get("count")))
        for start, end, label in periods(period):
            if since and (end - timedelta(days=1)).isoformat() < since:
                continue
            n = [sum(v for d, v in per_day.items() if start.isoformat() <= d < end.isoformat())
                 for per_day, _ in counted]
            if kind == "never":
                met = sum(n) == 0
            elif any(need is not None for _, need in counted):
                met = all(k >= need for k, (_, need) in zip(n, counted))
            else:
                met = sum(n) >= times
            out.append((sample.name_of(c), label, "met" if met else "violated"))
    return sorted(out)


def test_a_generated_chronos_folder_gives_the_counts_chronos_rules_give(tmp_path):
    plan = sample.plan_user_folder(tmp_path, items=200, days=6 * 7 + 3, seed=11, start=date(2026, 3, 2))
    sample.write_plan(plan)
    report = sync(tmp_path)
    assert report.skipped == 0 and not [p for p in report.warnings if not p.note]
    core, mem, ev = (report.data / f"chronos_{n}.db" for n in ("core", "memory", "events"))
    # items: every document the plan wrote to an item folder
    assert report.items == sum(len(ds) for ds in plan.items.values())
    # completions: each entry of each day's file, keyed however Chronos's commands keyed it
    entries = [e for dp in plan.days for e in dp.entries.values()]
    assert q(core, "SELECT COUNT(*) FROM completions") == [(len(entries),)]
    assert q(core, "SELECT COUNT(*), SUM(quality) FROM completions WHERE quality IS NOT NULL") == \
        [(sum("quality" in e for e in entries), float(sum(sample.QUALITY[e["quality"]] for e in entries
                                                          if "quality" in e)))]
    assert q(core, "SELECT status, COUNT(*) FROM completions GROUP BY status ORDER BY status") == \
        sorted(Counter(str(e["status"]).lower() for e in entries).items())
    # schedules: every block but the buffers, nested ones too, legacy days included
    blocks = sum(_blocks(dp.schedule) for dp in plan.days if dp.schedule is not None)
    assert q(core, "SELECT COUNT(*) FROM schedules") == [(blocks,)]
    assert q(core, "SELECT COUNT(DISTINCT date) FROM schedules") == [(sum(dp.schedule is not None
                                                                          for dp in plan.days),)]
    # status: every entry of the history Chronos reads (logs/, else profile/Status/), one snapshot each
    assert q(mem, "SELECT COUNT(*) FROM status_snapshots") == [(sum(len(dp.status) for dp in plan.days),)]
    assert variables(report)["status.current"] == plan.current_status
    # the points ledger and the redemptions in it
    assert q(core, "SELECT COUNT(*), SUM(delta) FROM points_ledger") == \
        [(len(plan.ledger), float(sum(e["delta"] for e in plan.ledger)))]
    redeemed = sum(e["reason"].startswith("redeem:") for e in plan.ledger)
    assert q(ev, "SELECT COUNT(*) FROM trigger_log WHERE outcome = 'redeemed'") == [(redeemed,)] and redeemed
    # the items' own history
    history = sum(len(d.get("completion_dates", [])) + len(d.get("incident_dates", []))
                  for ds in plan.items.values() for d in ds)
    assert len(Derived(read_user_folder(tmp_path)).habit_history()) == history
    # commitments: every verdict, period by period
    got = sorted(q(ev, "SELECT source_name, period, outcome FROM trigger_log WHERE source_type = 'commitment'"))
    want = _expected_verdicts(plan)
    assert got == want
    active = [c for c in plan.items["commitment"] if c["status"] == "active"]
    assert {o for _, _, o in want} == {"met", "violated"} and len({n for n, _, _ in want}) == len(active)
    assert len(active) < len(plan.items["commitment"])                         # a paused one is not judged
    shapes = Counter(next(k for k in ("rule", "frequency", "never") if k in c) for c in plan.items["commitment"])
    assert shapes["frequency"] and shapes["never"] and shapes["rule"] >= 3      # today's shape and the older ones
    # and the notes name what was not mirrored, never as a skipped file
    got_notes = notes(report)
    assert {"scripts", "archive", "examples", "Settings/Timer_Profiles.yml", "profile/current_status.yml"} <= \
        set(got_notes)
    assert "token" in got_notes["Settings/link_settings.yml"]
