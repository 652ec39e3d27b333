"""`sequence ...` (and `chronoledger sequence ...`) from the command line."""

import json

import apsw
import pytest

from chronoledger.cli import cli
from chronoledger.cli.sequence_cmds import sequence_group
from chronoledger.sequence import sample
from chronoledger.sequence.registry import mirror_folder

from _cli import invoke


def run(*args):
    return invoke(sequence_group, [str(a) for a in args])


@pytest.fixture
def folder(tmp_path):
    return sample.write_user_folder(tmp_path, items=80, days=30, seed=5)


def runs(folder):
    conn = apsw.Connection(str(mirror_folder(folder) / "chronos_events.db"))
    try:
        return conn.execute("SELECT command, result FROM command_runs ORDER BY id").fetchall()
    finally:
        conn.close()


def test_sync_status_plan_and_every_command_is_recorded(folder):
    r = run("sync", "--user", folder.parent)
    assert r.exit_code == 0, r.output
    assert "synced" in r.output and "chronos_core.db: items" in r.output
    r = run("status", "--user", folder)
    assert r.exit_code == 0 and "up to date" in r.output
    r = run("plan", "--user", folder, "--json")
    assert json.loads(r.output)["types"] == {}
    r = run("sync", "--db", "core", "--user", folder, "--json")
    assert json.loads(r.output)["databases"]["core"]["counts"]["items"] > 70
    assert runs(folder) == [("sync", "ok"), ("status", "ok"), ("plan", "ok"), ("sync", "ok")]


def test_skipped_files_exit_1_and_are_listed(folder):
    (folder / "Tasks" / "bad.yml").write_text("name: [unclosed\n")
    r = run("sync", "--user", folder)
    assert r.exit_code == 1
    assert "skipped 1 file(s)" in r.output and "Tasks/bad.yml:2: malformed YAML" in r.output
    assert runs(folder)[-1] == ("sync", "skipped files")


def test_data_formats_and_refusals(folder):
    run("sync", "--user", folder)
    query = "SELECT type, COUNT(*) AS n FROM items GROUP BY type ORDER BY type"
    r = run("data", query, "--user", folder, "--json")
    assert r.exit_code == 0 and {row["type"] for row in json.loads(r.output)} >= {"habit", "task"}
    rows = json.loads(r.stdout)
    r = run("data", query, "--user", folder, "--nl")
    assert [json.loads(line) for line in r.stdout.splitlines()] == rows
    for flag, sep in (("--csv", ","), ("--tsv", "\t")):
        r = run("data", query, "--user", folder, flag)
        lines = r.stdout.splitlines()
        assert lines[0] == f"type{sep}n" and lines[1:] == [f"{x['type']}{sep}{x['n']}" for x in rows]
    r = run("data", "SELECT name FROM items ORDER BY name LIMIT 2", "--user", folder, "--csv")
    assert r.output.splitlines()[0] == "name" and len(r.output.splitlines()) == 3
    r = run("data", "SELECT name FROM items ORDER BY name LIMIT 2", "--user", folder, "--format", "csv")
    assert r.stdout.splitlines()[0] == "name" and len(r.stdout.splitlines()) == 3      # the older spelling
    r = run("data", "SELECT COUNT(*) AS n FROM activity_facts", "--db", "memory", "--user", folder)
    assert r.exit_code == 0 and "n" in r.output.splitlines()[0]
    r = run("data", "DELETE FROM items", "--user", folder)
    assert r.exit_code == 2 and "refused" in r.output
    assert runs(folder)[-1] == ("data", "refused")


def test_metastudy_review_listen_once(folder):
    run("sync", "--user", folder)
    r = run("memory", "--metastudy", "--as-of", "2025-01-20", "--user", folder)
    assert r.exit_code == 0, r.output
    assert "Tendencies as of 2025-01-20" in (mirror_folder(folder) / "tendencies.md").read_text()
    r = run("review", "weekly", "--as-of", "2025-01-26", "--user", folder)
    assert r.exit_code == 0 and "weekly review recorded for 2025-01-26" in r.output
    conn = apsw.Connection(str(mirror_folder(folder) / "chronos_events.db"))
    kinds = conn.execute("SELECT payload_json FROM events WHERE event_type = 'review' AND payload_json LIKE "
                         "'%sequence review%'").fetchall()
    conn.close()
    assert len(kinds) == 1 and json.loads(kinds[0][0])["date"] == "2025-01-26"
    r = run("listen", "--once", "--user", folder)
    assert r.exit_code == 0 and "tendencies.md updated" in r.output


def test_usage_errors(folder, tmp_path):
    r = run("sync", "--user", tmp_path / "missing")
    assert r.exit_code == 2 and "no such folder" in r.output             # a path that is not there: usage
    r = run("data", "SELECT 1", "--user", folder)
    assert r.exit_code == 2 and "run `sequence sync` first" in r.output
    r = run("memory", "--metastudy", "--user", folder)
    assert r.exit_code == 2 and "sequence sync --db memory" in r.output
    assert invoke(cli, ["sequence", "status", "--user", str(folder)]).exit_code == 0


def test_a_file_name_that_is_not_utf8_exits_1_and_status_works(folder):
    import os

    try:
        with open(os.path.join(os.fsencode(folder / "Tasks"), b"caf\xe9.yml"), "wb") as fh:
            fh.write(b"name: Cafe\n")
    except OSError as exc:
        pytest.skip(f"this file system refuses names that are not UTF-8: {exc}")
    r = run("sync", "--user", folder)
    assert r.exit_code == 1, r.output
    assert "Tasks/caf\\xe9.yml: the file name is not UTF-8" in r.output
    assert runs(folder)[-1] == ("sync", "skipped files")
    r = run("status", "--user", folder)
    assert r.exit_code == 0 and "up to date" in r.output, r.output


FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "


def test_data_has_a_row_limit_and_a_time_limit(folder):
    run("sync", "--db", "core", "--user", folder)
    r = invoke(sequence_group, ["data", FOREVER + "SELECT x FROM c", "--user", str(folder),
                                            "--csv", "--limit", "5"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["x", "1", "2", "3", "4", "5"]
    assert "the first 5 rows; the query has more" in r.stderr
    r = invoke(sequence_group, ["data", "SELECT name FROM items LIMIT 3", "--user", str(folder),
                                            "--limit", "3"])
    assert r.exit_code == 0 and "(3 rows)" in r.stderr and "has more" not in r.stderr
    r = run("data", FOREVER + "SELECT x FROM c", "--user", folder)                 # the default: 10,000 rows
    assert r.exit_code == 0 and "the first 10,000 rows" in r.output
    r = run("data", FOREVER + "SELECT COUNT(*) FROM c", "--user", folder, "--timeout", "0.3")
    assert r.exit_code == 2 and "ran longer than its time limit of 0.3 s" in r.output
    assert runs(folder)[-1] == ("data", "refused")
    r = run("data", "SELECT 1", "--user", folder, "--limit", "-1")
    assert r.exit_code == 2


def test_commands_that_read_create_nothing_in_a_folder_never_synced(tmp_path):
    user = tmp_path / "User"
    (user / "Tasks").mkdir(parents=True)
    (user / "Tasks" / "a.yml").write_text("name: A\n")
    r = run("data", "SELECT 1", "--user", tmp_path)
    assert r.exit_code == 2 and "run `sequence sync` first" in r.output
    assert run("status", "--user", tmp_path).exit_code == 0
    assert run("plan", "--user", tmp_path).exit_code == 0
    assert sorted(p.name for p in user.iterdir()) == ["Tasks"]
    assert run("sync", "--user", tmp_path).exit_code == 0                  # from here on, every run is recorded
    run("data", "SELECT 1", "--user", tmp_path)
    assert runs(user) == [("sync", "ok"), ("data", "ok")]


@pytest.mark.parametrize("entry", ["from chronoledger.cli.sequence_cmds import main; main()",
                                   "import sys; sys.argv[1:1] = ['sequence']; from chronoledger.cli import main; main()"])
def test_output_cut_by_its_reader_ends_quietly_and_is_recorded_ok(folder, entry):
    import subprocess
    import sys

    run("sync", "--db", "core", "--user", folder)
    proc = subprocess.Popen([sys.executable, "-c", entry, "data", FOREVER + "SELECT x, 'padding' AS pad FROM c",
                             "--user", str(folder), "--limit", "200000", "--csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().rstrip() == b"x,pad"      # the header: the names the query gave
    proc.stdout.close()                                  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""
    assert runs(folder)[-1] == ("data", "ok")


def test_a_user_folder_whose_path_is_not_utf8_is_refused_clearly(folder, tmp_path):
    import os
    import shutil

    odd = os.path.join(os.fsencode(tmp_path), b"p\xe9")
    try:
        os.mkdir(odd)
    except OSError as exc:
        pytest.skip(f"this file system refuses names that are not UTF-8: {exc}")
    shutil.copytree(os.fsencode(folder), os.path.join(odd, b"User"))
    for args in (("sync",), ("status",), ("data", "SELECT 1")):
        r = run(*args, "--user", os.fsdecode(odd))
        assert r.exit_code == 2, (args, r.output)                       # a ConfigError: the folder given
        assert "p\\xe9/User: the folder's path is not UTF-8" in r.output
    assert not os.path.exists(os.path.join(odd, b"User", b"Data"))
