"""What every command shares (chronoledger.cli.output): the output options,
help on every option and an example on every command, the one exit-code
table, and -v/-q."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from chronoledger import __version__, errors
from chronoledger.cli import cli, output
from chronoledger.cli.docs import help_text, walk
from chronoledger.cli.sequence_cmds import sequence_group
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.sequence import sample

from _cli import as_cells, invoke, parse_rows
from _tables_data import GOOD, PLAYBOOKS

COMMANDS = dict(walk(cli, ("chronoledger",)))

# the commands that print rows take every output option; those that print one object take --json
ROWS = ["core crc64", "chronicle query", "runtime sessions", "runtime replay", "sequence status", "sequence data",
        "tables list", "tables insert", "tables query", "tables proposals", "tables history"]
OBJECTS = ["core info", "chronicle inspect", "chronicle verify", "chronicle audit", "chronicle replay",
           "chronicle recover", "chronicle stats", "chronicle plot", "chronicle tensorboard export",
           "chronicle tensorboard import", "runtime init", "runtime workflow", "runtime lineage",
           "runtime profile", "sequence sync", "sequence plan", "sequence memory", "tables create", "tables show",
           "tables validate", "tables propose", "tables approve", "tables reject", "world seed-agent",
           "world world-init", "world run", "world replay", "world report"]
KNOWN_WITHOUT_EXAMPLE: set[tuple[str, ...]] = set()


def command(name: str) -> click.Command:
    return COMMANDS[("chronoledger", *name.split())]


def options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params if isinstance(p, click.Option) and not p.hidden for o in p.opts}


def run(*args, **kw):
    return invoke(cli, [str(a) for a in args], **kw)


def same_rows(*args, key=None, **kw) -> list[dict]:
    """Run a command with --json, --nl, --csv and --tsv: each must parse, and
    give the same rows (``key``: where --json keeps them in its object)."""
    got = {}
    for fmt in ("json", "nl", "csv", "tsv"):
        r = run(*args, f"--{fmt}", **kw)
        assert r.exit_code == 0, (fmt, r.output)
        got[fmt] = parse_rows(r.stdout, fmt)
    rows = got["json"][key] if key else got["json"]
    assert rows, args
    assert got["nl"] == rows
    columns = list(dict.fromkeys(k for r in rows for k in r))          # a key some rows lack: an empty cell
    assert got["csv"] == got["tsv"] == [as_cells({c: r.get(c) for c in columns}) for r in rows]
    return rows


# --- the output options ------------------------------------------------------------------------

def test_json_is_never_an_input():
    for path, cmd in COMMANDS.items():
        for p in cmd.params:
            if "--json" in getattr(p, "opts", ()):
                assert p.is_flag and p.name == "out_json", f"{' '.join(path)}: --json takes a value"


@pytest.mark.parametrize("name", ROWS)
def test_commands_that_print_rows_take_every_output_option(name):
    assert {f"--{f}" for f in output.FORMATS} <= options(command(name))


@pytest.mark.parametrize("name", OBJECTS)
def test_commands_that_print_one_object_take_json(name):
    assert "--json" in options(command(name))


def test_two_formats_at_once_are_bad_usage(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"123456789")
    r = run("core", "crc64", f, "--csv", "--nl")
    assert r.exit_code == 2 and "choose one output format, not --nl and --csv" in r.stderr


def test_core_crc64_rows(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"123456789")
    b.write_bytes(b"")
    rows = same_rows("core", "crc64", a, b)
    assert rows == [{"crc64": "995dc9bbdf1939fa", "file": str(a)}, {"crc64": "0000000000000000", "file": str(b)}]
    assert run("core", "crc64", a).stdout == f"995dc9bbdf1939fa  {a}\n"          # the default: as sha256sum
    info = json.loads(run("core", "info", "--json").stdout)
    assert info["crc64_path"] in info["crc64_paths_available"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("reg")
    (d / "mine").mkdir()
    (d / "mine" / "notes.yaml").write_text(GOOD)
    db = d / "grace.db"
    r = run("tables", "--db", db, "--schemas", d / "mine", "--catalogue", "create", "--json")
    assert r.exit_code == 0, r.output
    assert "my_notes" in json.loads(r.stdout)["created"]
    rows = [{"playbook_name": "a", "trigger_conditions": {"error_type": "Timeout"}, "total_runs": 3},
            {"playbook_name": "b, with a comma\tand a tab", "summary": 'a "quoted"\nline'}]
    r = run("tables", "--db", db, "insert", PLAYBOOKS, json.dumps(rows), "--json")
    assert r.exit_code == 0, r.output
    dropped = d / "dropped.yaml"
    dropped.write_text(GOOD.replace("  - {name: body, type: text}\n", ""))
    assert run("tables", "--db", db, "--schemas", d / "mine", "--catalogue", "propose", dropped).exit_code == 0
    return db


def test_tables_commands_print_the_same_rows_in_every_format(registry):
    listed = same_rows("tables", "--db", registry, "list")
    assert {t["table"] for t in listed} >= {PLAYBOOKS, "my_notes"}
    found = same_rows("tables", "--db", registry, "query", PLAYBOOKS, "--order-by", "playbook_name")
    assert [r["playbook_name"] for r in found] == ["a", "b, with a comma\tand a tab"]
    assert found[0]["trigger_conditions"] == {"error_type": "Timeout"} and found[1]["summary"] == 'a "quoted"\nline'
    history = same_rows("tables", "--db", registry, "history", "my_notes")
    assert history[0]["event"].startswith("proposed (create")
    proposals = same_rows("tables", "--db", registry, "proposals", "my_notes")
    assert [p["status"] for p in proposals] == ["applied", "pending"]
    assert same_rows("tables", "--db", registry, "proposals", "--status", "pending") == proposals[1:]


def test_tables_insert_takes_the_row_as_an_argument_and_prints_any_format(registry, tmp_path):
    db = tmp_path / "copy.db"
    db.write_bytes(registry.read_bytes())
    r = run("tables", "--db", db, "insert", PLAYBOOKS, '{"playbook_name": "c"}')
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()                              # a table of the stored row, by default
    assert lines[0].split()[:2] == ["id", "playbook_name"] and lines[2].split()[1] == "c"
    for fmt in ("nl", "csv", "tsv"):
        r = run("tables", "--db", db, "insert", PLAYBOOKS, f'{{"playbook_name": "{fmt}"}}', f"--{fmt}")
        assert r.exit_code == 0, r.output
        assert [row["playbook_name"] for row in parse_rows(r.stdout, fmt)] == [fmt]
    r = run("tables", "--db", db, "insert", PLAYBOOKS, "--json")     # --json is the output flag: ROW is missing
    assert r.exit_code == 2 and "Missing argument 'ROW'" in r.stderr
    r = run("tables", "--db", db, "insert", PLAYBOOKS, "--row", "{}")
    assert r.exit_code == 2


def test_runtime_rows_in_every_format(tmp_path):
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as s:
        for actor in ("tom", "ann", "joe"):
            sess = s.start_session(actor, "sdk")
            s.append_turns(sess["id"], [{"role": "user", "content": f"hi, I am {actor}"},
                                        {"role": "assistant", "content": "hello"}])
    sessions = same_rows("runtime", "sessions", p, "--limit", 2, key="sessions")
    assert len(sessions) == 2 and all(s["turn_count"] == 2 for s in sessions)
    page = json.loads(run("runtime", "sessions", p, "--limit", 2, "--json").stdout)
    r = run("runtime", "sessions", p, "--limit", 2, "--csv")
    assert r.stderr.strip() == f"more: --cursor {page['next_cursor']}"          # the next page, on stderr
    turns = same_rows("runtime", "replay", p, sessions[0]["id"], key="turns")
    assert [t["turn_index"] for t in turns] == [0, 1]
    init = json.loads(run("runtime", "init", p, "--json").stdout)
    assert init["schema_version"] >= 1 and init["migrations_applied"] == []


def test_sequence_rows_in_every_format(tmp_path):
    folder = sample.write_user_folder(tmp_path, items=40, days=10, seed=2)
    assert invoke(sequence_group, ["sync", "--user", str(folder)]).exit_code == 0
    got = {}
    for fmt in ("json", "nl", "csv", "tsv"):
        r = run("sequence", "status", "--user", folder, f"--{fmt}")
        assert r.exit_code == 0, r.output
        got[fmt] = parse_rows(r.stdout, fmt)
    status = got["json"]["databases"]                           # --json: the status object, as before
    assert [row["database"] for row in got["nl"]] == list(status)
    assert [row["database"] for row in got["csv"]] == [row["database"] for row in got["tsv"]] == list(status)
    rows = same_rows("sequence", "data", "SELECT type, COUNT(*) AS n FROM items GROUP BY type ORDER BY type",
                     "--user", folder)
    assert sum(r["n"] for r in rows) >= 40 and all(isinstance(r["n"], int) for r in rows)
    counts = json.loads(run("sequence", "memory", "--metastudy", "--user", folder, "--json").stdout)["counts"]
    assert counts


# --- help --------------------------------------------------------------------------------------

def _ends_with_an_example(help_: str) -> bool:
    paras = re.split(r"\n\s*\n", help_.strip())
    return (len(paras) >= 2 and paras[-1].splitlines()[0].strip() == "\b" and len(paras[-1].splitlines()) > 1
            and paras[-2].strip() in ("Example:", "Examples:"))


def test_every_option_and_argument_has_help_and_every_command_ends_with_an_example():
    no_help, no_example = [], []
    for path, cmd in COMMANDS.items():
        for p in cmd.params:
            if not help_text(p).strip():
                no_help.append(f"{' '.join(path)} {p.name}")
        if not _ends_with_an_example(help_text(cmd)) and path not in KNOWN_WITHOUT_EXAMPLE:
            no_example.append(" ".join(path))
    assert no_help == [] and no_example == []


@pytest.mark.parametrize("path", [p for p in COMMANDS if p not in KNOWN_WITHOUT_EXAMPLE], ids=" ".join)
def test_help_shows_the_arguments_and_the_example(path):
    r = run(*path[1:], "-h")
    assert r.exit_code == 0, r.output
    assert "Example:" in r.stdout
    for p in COMMANDS[path].params:
        if isinstance(p, click.Argument):
            assert help_text(p).split()[0] in r.stdout, p.name          # under "Positional arguments"


def test_the_sequence_script_takes_h_and_version():
    r = invoke(sequence_group, ["-h"])
    assert r.exit_code == 0 and "Usage: sequence" in r.stdout and "Example:" in r.stdout
    r = invoke(sequence_group, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"sequence, version {__version__}"
    r = invoke(sequence_group, ["data", "-h"])
    assert r.exit_code == 0 and "--csv" in r.stdout
    for args in (["-V"], ["--version"], ["-h"]):
        out = subprocess.run([sys.executable, "-c", "from chronoledger.cli.sequence_cmds import main; main()", *args],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert (__version__ in out.stdout) if args != ["-h"] else out.stdout.startswith("Usage: sequence")


# --- exit codes ----------------------------------------------------------------------------------

def test_one_exit_code_table():
    assert sorted(output.EXIT_CODES) == [0, 1, 2, 3, 4, 5, 130]
    cases = {errors.NotFoundError("x"): 5, errors.ValidationError("x"): 2, errors.ConfigError("x"): 2,
             errors.QueryError("x"): 2, errors.MissingDependencyError("x"): 2, errors.CorruptDataError("x"): 3,
             errors.ChecksumError("x"): 3, errors.SchemaError("x"): 3, errors.ChronoledgerError("x"): 3,
             FileNotFoundError("x"): 3, KeyboardInterrupt(): 130, BrokenPipeError(): None, RuntimeError("x"): None}
    assert {type(e).__name__: output.exit_code_for(e) for e in cases} == \
        {type(e).__name__: code for e, code in cases.items()}
    for name in errors.__all__:                       # every public error has its code
        kind = getattr(errors, name)
        if isinstance(kind, type) and issubclass(kind, BaseException):
            assert output.exit_code_for_class(kind) in output.EXIT_CODES, name


def test_no_command_module_keeps_exit_codes_of_its_own():
    folder = Path(output.__file__).parent
    for f in folder.glob("*.py"):
        if f.name in ("output.py", "demo.py"):
            continue
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"^EXIT_\w+\s*=\s*\d", text, re.M), f"{f.name} defines an exit code"
        assert not re.search(r"sys\.exit\(\s*[1-9]", text), f"{f.name} exits with a number of its own"


def test_an_error_a_command_lets_through_exits_with_its_code():
    @click.command("boom")
    @click.argument("kind")
    def boom(kind):
        raise getattr(errors, kind)(f"{kind} raised")

    cli.add_command(boom)
    try:
        for kind, code in (("NotFoundError", 5), ("ConfigError", 2), ("CorruptDataError", 3)):
            r = run("boom", kind)
            assert r.exit_code == code and r.stderr == f"error: {kind} raised\n", r.output
    finally:
        cli.commands.pop("boom")


# --- -v and -q -----------------------------------------------------------------------------------

@pytest.fixture
def probe():
    levels = []

    @click.command("probe")
    def probe_cmd():
        """Log one line at each level."""
        levels.append(logging.getLogger("chronoledger").level)
        log = logging.getLogger("chronoledger.probe")
        log.debug("a debug note")
        log.info("an info note")
        log.warning("a warning")
        log.error("an error")

    cli.add_command(probe_cmd)
    sequence_group.add_command(probe_cmd)
    yield levels
    cli.commands.pop("probe")
    sequence_group.commands.pop("probe")


@pytest.mark.parametrize("args, level, shown", [
    ([], logging.WARNING, ["warning: a warning", "error: an error"]),
    (["-v"], logging.INFO, ["info: an info note", "warning: a warning", "error: an error"]),
    (["-vv"], logging.DEBUG, ["debug: chronoledger.probe: a debug note", "info: chronoledger.probe: an info note",
                              "warning: chronoledger.probe: a warning", "error: chronoledger.probe: an error"]),
    (["-q"], logging.ERROR, ["error: an error"]),
    (["-qq"], logging.CRITICAL, []),
])
def test_v_and_q_set_the_level_of_the_chronoledger_logger(probe, args, level, shown):
    logger = logging.getLogger("chronoledger")
    before = logger.level, list(logger.handlers)
    for group, argv in ((cli, [*args, "probe"]), (sequence_group, [*args, "probe"]),
                        (cli, [*args, "sequence", "probe"])):
        r = invoke(group, argv)
        assert r.exit_code == 0, r.output
        assert probe[-1] == level
        assert r.stderr.splitlines() == shown and r.stdout == ""
        assert (logger.level, logger.handlers) == before           # put back when the command is done


def test_a_nested_sequence_group_can_change_the_level(probe):
    assert invoke(cli, ["-v", "sequence", "-q", "probe"]).stderr.splitlines() == ["error: an error"]
    assert probe == [logging.ERROR]
