"""chronoledger.sequence.dashboard: Chronos's /api/trends/metrics shape
(utilities/dashboard/server.py of Jeetski/Chronos_Engine), and the series
the digest page charts."""

from __future__ import annotations

import apsw

from chronoledger.sequence import dashboard, schema


def _db(path, ddl: str, rows_sql: str, rows: list[tuple]) -> None:
    conn = apsw.Connection(str(path))
    conn.execute(ddl)
    conn.executemany(rows_sql, rows)
    conn.close()


def test_before_any_metastudy_the_metrics_are_empty_as_chronos_answers(tmp_path):
    assert dashboard.trends_metrics(tmp_path) == {"ok": True, "metrics": {}}
    assert dashboard.completion_series(tmp_path) == {"dates": [], "statuses": {}}
    assert dashboard.habit_streaks(tmp_path) == {"dates": [], "habits": []}


def test_metrics_grouped_and_renamed_as_chronos_does_and_what_it_drops_kept(tmp_path):
    rows = [("blocks_total", 10.0, None), ("blocks_completed", 7.0, None), ("blocks_completion_rate", 70.0, None),
            ("completion_quality_counts", 3.0, '{"Good": 2, "Poor": 1}'),
            ("habits_total", 4.0, None), ("habits_with_streak", 2.0, None), ("habits_avg_streak", 1.5, None),
            ("habits_longest_streak", 6.0, None), ("habits_completion_today", 50.0, None),
            ("goals_total", 2.0, None), ("goals_in_progress", 1.0, None), ("goals_avg_progress", 45.0, None),
            ("milestones_completed_week", 3.0, None), ("timer_sessions_total", 5.0, None),
            ("timer_focus_minutes", 125.0, None), ("timer_profile_usage", 1.0, '{"pomodoro": 5}'),
            ("adherence_on_time", 8.0, None), ("adherence_late", 2.0, None), ("adherence_percentage", 80.0, None),
            ("adherence_avg_delay", 4.5, None)]
    _db(tmp_path / schema.FILES["trends"], "CREATE TABLE metrics (id INTEGER PRIMARY KEY, metric TEXT, value REAL, "
        "unit TEXT, extra_json TEXT, generated_at TEXT)",
        "INSERT INTO metrics (metric, value, extra_json) VALUES (?, ?, ?)", rows)
    m = dashboard.trends_metrics(tmp_path)["metrics"]
    assert m["blocks_total"] == 10 and isinstance(m["blocks_total"], int) and m["blocks_completed"] == 7
    assert m["quality_counts"] == {"Good": 2, "Poor": 1}
    assert m["habit_stats"] == {"total_habits": 4.0, "habits_with_current_streak": 2.0, "avg_streak": 1.5,
                                "longest_streak_overall": 6.0, "completion_rate_today": 50.0}
    # Chronos sends the sum of progress (its widget divides by total_goals), and never the week's milestones
    assert m["goal_stats"] == {"total_goals": 2.0, "goals_in_progress": 1.0, "total_progress": 90.0,
                               "milestones_completed_this_week": 3.0}
    assert m["timer_stats"] == {"sessions_total": 5.0, "focus_minutes": 125.0, "profile_usage": 1.0,
                                "profile_usage_by_profile": {"pomodoro": 5}}
    assert m["adherence_stats"] == {"on_time_count": 8.0, "late_count": 2.0, "adherence_percentage": 80.0,
                                    "avg_delay": 4.5}
    assert m["blocks_completion_rate"] == 70.0          # dropped by Chronos's grouping, kept here


def test_completions_per_day_with_empty_days_and_streaks_of_days_done(tmp_path):
    core = tmp_path / schema.FILES["core"]
    _db(core, "CREATE TABLE completions (id INTEGER PRIMARY KEY, date TEXT, status TEXT)",
        "INSERT INTO completions (date, status) VALUES (?, ?)",
        [("2025-01-01", "completed"), ("2025-01-01", "missed"), ("2025-01-03", "completed"), ("bad", "completed")])
    conn = apsw.Connection(str(core))
    conn.execute("CREATE TABLE habit_history (id INTEGER PRIMARY KEY, item_id INTEGER, name TEXT, type TEXT, "
                 "date TEXT, kind TEXT, polarity TEXT)")
    conn.executemany("INSERT INTO habit_history (item_id, name, type, date, kind, polarity) VALUES "
                     "(1, ?, 'habit', ?, ?, ?)",
                     [("Run", "2025-01-01", "completion", "good"), ("Run", "2025-01-02", "completion", "good"),
                      ("Run", "2025-01-04", "completion", "good"), ("Read", "2025-01-04", "completion", "good"),
                      ("Smoke", "2025-01-02", "incident", "bad")])
    conn.close()
    c = dashboard.completion_series(tmp_path)
    assert c == {"dates": ["2025-01-01", "2025-01-02", "2025-01-03"],
                 "statuses": {"completed": [1, 0, 1], "missed": [1, 0, 0]}}
    s = dashboard.habit_streaks(tmp_path)
    assert s["dates"] == ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"]
    assert s["habits"] == [{"name": "Run", "current": 1, "longest": 2, "streak": [1, 2, 0, 1]},
                           {"name": "Read", "current": 1, "longest": 1, "streak": [0, 0, 0, 1]}]
