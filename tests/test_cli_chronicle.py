"""`chronoledger chronicle ...` from the command line, with its exit codes."""

import io
import json
import sys

import pytest

from chronoledger.chronicle import ChronicleReader
from chronoledger.cli import cli
from chronoledger.examples.recording import STEP, record_learner

from _chronicle_util import write_cycles
from _cli import invoke, parse_rows


@pytest.fixture(scope="module")
def learner_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "learner.cmeta"
    record_learner(p, 400)
    return p


def run(*args):
    return invoke(cli, [str(a) for a in args])


def test_inspect(learner_file):
    r = run("chronicle", "inspect", learner_file)
    assert r.exit_code == 0, r.output
    assert "400 records" in r.output and "closed cleanly: yes" in r.output and "metrics.lr" in r.output
    info = json.loads(run("chronicle", "inspect", learner_file, "--json").output)
    assert info["records"] == 400 and info["schema"] == "cycle" and info["metadata"]["initial_seed"] == 2026


def test_verify_and_audit_exit_codes(learner_file, tmp_path):
    assert run("chronicle", "verify", learner_file).exit_code == 0
    r = run("chronicle", "audit", learner_file, "--step", STEP, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["replay"]["matched"] == 400
    bad = tmp_path / "bad.cmeta"
    data = bytearray(learner_file.read_bytes())
    data[len(data) // 3] ^= 4
    bad.write_bytes(bytes(data))
    r = run("chronicle", "verify", bad)
    assert r.exit_code == 1 and "FAIL" in r.output
    junk = tmp_path / "junk.cmeta"
    junk.write_bytes(b"not a chronicle at all")
    r = run("chronicle", "verify", junk)
    assert r.exit_code == 1 and "not a chronicle" in r.output
    r = run("chronicle", "inspect", junk)
    assert r.exit_code == 3 and "not a chronicle" in r.output


@pytest.mark.parametrize("out_format", ["json", "nl", "csv", "tsv"])
def test_query_output_options_give_the_same_rows(learner_file, out_format):
    args = ("chronicle", "query", learner_file, "--start", 10, "--end", 15, "--columns", "timestamp,phase,action_code")
    r = run(*args, f"--{out_format}")
    assert r.exit_code == 0, r.output
    rows = parse_rows(r.stdout, out_format)
    with ChronicleReader(learner_file) as reader:
        cols = reader.query(10, 15, ["timestamp", "phase", "action_code"])
    expected = [{"timestamp": int(t), "phase": str(p), "action_code": None if a < 0 else int(a)}
                for t, p, a in zip(cols["timestamp"], cols["phase"], cols["action_code"])]
    if out_format in ("csv", "tsv"):          # text cells: an absent value is an empty cell
        expected = [{k: "" if v is None else str(v) for k, v in row.items()} for row in expected]
    assert rows == expected
    assert [row["timestamp"] for row in rows] in ([10, 11, 12, 13, 14], ["10", "11", "12", "13", "14"])


def test_query_prints_a_table_by_default_and_takes_one_format(learner_file):
    r = run("chronicle", "query", learner_file, "--start", 10, "--end", 15, "--columns", "timestamp,phase,action_code")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["timestamp", "phase", "action_code"] and set(lines[1]) == {"-", " "}
    assert len(lines) == 7 and lines[2].split()[0] == "10"
    assert run("chronicle", "query", learner_file, "--end", 15, "--table").stdout == \
        run("chronicle", "query", learner_file, "--end", 15).stdout
    r = run("chronicle", "query", learner_file, "--json", "--csv")
    assert r.exit_code == 2 and "choose one output format" in r.stderr
    # the older --format NAME still works (hidden from --help)
    r = run("chronicle", "query", learner_file, "--start", 10, "--end", 15, "--format", "jsonl")
    assert r.exit_code == 0 and [json.loads(x)["timestamp"] for x in r.stdout.splitlines()] == [10, 11, 12, 13, 14]
    bad = run("chronicle", "query", learner_file, "--columns", "nope")
    assert bad.exit_code == 2 and "unknown column" in bad.output


def test_replay_reports_divergence(learner_file, tmp_path):
    r = run("chronicle", "replay", learner_file, "--step", STEP)
    assert r.exit_code == 0 and "all 400 records" in r.output
    drift = tmp_path / "drift.py"
    drift.write_text(
        "from chronoledger.examples import learner\n"
        "def make_step(config, seed):\n"
        "    step = learner.make_step(config, seed)\n"
        "    def run(ts, phase, s):\n"
        "        out = step(ts, phase, s)\n"
        "        return dict(out, coherence=out['coherence'] * (1.01 if ts == 123 else 1.0))\n"
        "    return run\n")
    r = run("chronicle", "replay", learner_file, "--step", f"{drift}:make_step")
    assert r.exit_code == 1
    assert "first divergence at record 123 (timestamp 123): coherence" in r.output
    r = run("chronicle", "replay", learner_file, "--step", "no.such.module:make_step")
    assert r.exit_code == 2 and "cannot import" in r.output          # a bad --step is bad usage


RAISING_STEP = (
    "from chronoledger.examples import learner\n"
    "import helper\n"
    "def make_step(config, seed):\n"
    "    step = learner.make_step(config, seed)\n"
    "    def run(ts, phase, s):\n"
    "        if ts == 17:\n"
    "            helper.fail(ts)\n"
    "        return step(ts, phase, s)\n"
    "    return run\n")


def test_a_step_that_raises_is_an_error_of_the_step_not_a_divergence(learner_file, tmp_path, monkeypatch):
    (tmp_path / "mystep.py").write_text(RAISING_STEP)
    (tmp_path / "helper.py").write_text("def fail(ts):\n    raise ValueError(f'no batch for cycle {ts}')\n")
    monkeypatch.chdir(tmp_path)
    want = "error: replay: the step raised at record 17 (timestamp 17): ValueError: no batch for cycle 17"
    for command in ("replay", "audit"):
        r = run("chronicle", command, learner_file, "--step", "mystep:make_step")
        assert r.exit_code == 2, r.output                 # the step failed: not "the log does not match"
        assert want in r.stderr and "-v shows the step's traceback" in r.stderr, r.stderr
        assert "Traceback" not in r.output and "divergence" not in r.output
    r = run("-v", "chronicle", "replay", learner_file, "--step", "mystep:make_step")
    assert r.exit_code == 2 and want in r.stderr
    assert "Traceback (most recent call last)" in r.stderr and 'helper.py", line 2, in fail' in r.stderr
    assert "replay.py" not in r.stderr                    # the step's frames, not chronoledger's
    (tmp_path / "short.py").write_text("def make_step(config, seed):\n    return lambda ts, phase, s: {'loss_value': 1.0}\n")
    r = run("chronicle", "replay", learner_file, "--step", "short:make_step")
    assert r.exit_code == 2 and "at record 0 (timestamp 0) lacks coherence" in r.stderr, r.output


def test_a_step_module_is_found_in_the_current_folder_as_python_m_finds_it(learner_file, tmp_path, monkeypatch):
    folder = tmp_path / "steps"
    folder.mkdir()
    (folder / "goodstep.py").write_text("from chronoledger.examples.learner import make_step\n")
    monkeypatch.chdir(folder)
    r = run("chronicle", "replay", learner_file, "--step", "goodstep:make_step")
    assert r.exit_code == 0 and "all 400 records" in r.output, r.output
    assert str(folder) not in sys.path                    # only while the step is imported
    monkeypatch.chdir(tmp_path)                           # a path keeps working, relative or not
    for spec in ("steps/goodstep.py:make_step", f"{folder / 'goodstep.py'}:make_step"):
        r = run("chronicle", "audit", learner_file, "--step", spec)
        assert r.exit_code == 0, r.output
    (folder / "broken.py").write_text("x = (\n")
    r = run("chronicle", "replay", learner_file, "--step", "steps/broken.py:make_step")
    assert r.exit_code == 2 and "raised SyntaxError" in r.output


def test_recover_modes(tmp_path):
    p = tmp_path / "r.cmeta"
    write_cycles(p, 100, block_records=30)
    data = p.read_bytes()
    with ChronicleReader(p) as reader:
        last = reader.blocks[-1]
    p.write_bytes(data[:last.end - 7])
    assert run("chronicle", "recover", p, "--mode", "strict").exit_code == 4
    r = run("chronicle", "recover", p)
    assert r.exit_code == 0 and "records dropped 10" in r.output and "torn tail" in r.output
    assert run("chronicle", "verify", p).exit_code == 0
    r = run("chronicle", "recover", p, "--json")
    assert json.loads(r.output)["changed"] is False


def test_export_and_stats(learner_file, tmp_path):
    for fmt_, check in [("csv", lambda t: t.splitlines()[0].startswith("timestamp,phase")),
                        ("jsonl", lambda t: json.loads(t.splitlines()[0])["timestamp"] == 0)]:
        out = tmp_path / f"x.{fmt_}"
        r = run("chronicle", "export", learner_file, "--format", fmt_, "-o", out)
        assert r.exit_code == 0, r.output
        assert check(out.read_text()) and len(out.read_text().strip().splitlines()) >= 400
    out = tmp_path / "x.parquet"
    assert run("chronicle", "export", learner_file, "--format", "parquet", "-o", out).exit_code == 0
    import pyarrow.parquet as pq
    assert pq.read_table(out).num_rows == 400
    r = run("chronicle", "stats", learner_file, "--json")
    assert r.exit_code == 0
    stats = json.loads(r.output)
    assert stats["records"] == 400 and stats["columns"]["phase"]["distinct"] == 3


def test_export_parquet_without_pyarrow_says_which_extra(learner_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)             # as if not installed
    out = tmp_path / "x.parquet"
    r = run("chronicle", "export", learner_file, "--format", "parquet", "-o", out)
    assert r.exit_code == 2
    assert "parquet export needs pyarrow, which is not installed: pip install 'chronoledger[arrow]'" in r.stderr
    assert not out.exists()


def test_export_refuses_an_existing_file_without_force(learner_file, tmp_path):
    out = tmp_path / "x.csv"
    out.write_text("keep me")
    r = run("chronicle", "export", learner_file, "--format", "csv", "-o", out)
    assert r.exit_code == 2 and "exists; --force replaces it" in r.output
    assert out.read_text() == "keep me"
    r = run("chronicle", "export", learner_file, "--format", "csv", "-o", out, "--force")
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("timestamp,phase") and len(out.read_text().splitlines()) == 401
    assert [f.name for f in tmp_path.iterdir()] == ["x.csv"]          # no temporary file left beside it


def test_export_to_standard_output(learner_file, tmp_path):
    out = tmp_path / "x.jsonl"
    assert run("chronicle", "export", learner_file, "--format", "jsonl", "-o", out).exit_code == 0
    r = run("chronicle", "export", learner_file, "--format", "jsonl", "-o", "-")
    assert r.exit_code == 0, r.output
    assert r.stdout == out.read_text()                    # the rows only: no "exported ..." line
    assert not (learner_file.parent / "-").exists() and sorted(f.name for f in tmp_path.iterdir()) == ["x.jsonl"]
    r = run("chronicle", "export", learner_file, "--format", "parquet", "-o", "-")
    assert r.exit_code == 0
    import pyarrow.parquet as pq
    assert pq.read_table(io.BytesIO(r.stdout_bytes)).num_rows == 400


def test_export_parquet_keeps_the_runs_config_and_seed(learner_file, tmp_path):
    import pyarrow.parquet as pq
    out = tmp_path / "x.parquet"
    assert run("chronicle", "export", learner_file, "--format", "parquet", "-o", out).exit_code == 0
    kv = pq.read_schema(out).metadata
    with ChronicleReader(learner_file) as r:
        meta = r.metadata
    assert json.loads(kv[b"chronoledger.config"]) == meta["config"] and meta["config"]
    assert json.loads(kv[b"chronoledger.initial_seed"]) == 2026
    assert json.loads(kv[b"chronoledger.schema"]) == "cycle"
    assert json.loads(kv[b"chronoledger.created_by"]).startswith("chronoledger ")


def test_recover_skip_reports_the_records_of_a_block_with_a_damaged_header(tmp_path):
    p = tmp_path / "ten.cmeta"
    write_cycles(p, 1000, block_records=100)
    with ChronicleReader(p) as reader:
        victim = reader.blocks[4]
    data = bytearray(p.read_bytes())
    data[victim.offset + 20] ^= 1
    p.write_bytes(bytes(data))
    r = run("chronicle", "recover", p, "--mode", "skip")
    assert r.exit_code == 0, r.output
    assert "records kept 900; records dropped 100;" in r.output


def test_a_damaged_footer_is_named_and_readers_warn(tmp_path):
    p = tmp_path / "foot.cmeta"
    write_cycles(p, 1000, block_records=100)
    data = bytearray(p.read_bytes())
    data[len(data) - 30] ^= 1
    p.write_bytes(bytes(data))
    r = run("chronicle", "verify", p)
    assert r.exit_code == 1
    assert "footer (block index)" in r.output and "10 data blocks before it are intact" in r.output
    assert "torn" not in r.output and "not closed cleanly" not in r.output
    assert "the footer at the end is damaged" in run("chronicle", "inspect", p).output
    for args in (["query", "--end", "3", "--csv"], ["stats"],
                 ["export", "--format", "jsonl", "-o", tmp_path / "out.jsonl"]):
        r = run("chronicle", *args, p)
        assert r.exit_code == 0, r.output
        assert "footer (block index)" in r.stderr and "data blocks before it are intact" in r.stderr, args
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1000
    r = run("chronicle", "recover", p)
    assert r.exit_code == 0 and "replaced a damaged footer" in r.output and "records dropped 0;" in r.output
    assert run("chronicle", "verify", p).exit_code == 0


def test_float32_columns_print_in_their_shortest_form(tmp_path):
    p = tmp_path / "f32.cmeta"
    from chronoledger.chronicle import Chronicle
    with Chronicle.open(p, "w") as ch:
        for i in range(3):
            ch.append(timestamp=i, phase="train", loss_value=0.1, coherence=0.3, tensor_signature=(0.7, -0.2, 1.1),
                      seed_state=i, metrics={"lr": 0.1})
    widened = "0.10000000149"
    for fmt_ in ("csv", "jsonl"):
        out = tmp_path / f"x.{fmt_}"
        assert run("chronicle", "export", p, "--format", fmt_, "-o", out).exit_code == 0
        text = out.read_text()
        assert widened not in text and "0.30000001" not in text and "0.699999" not in text, text
    row = json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])
    assert row["loss_value"] == 0.1 and row["coherence"] == 0.3 and row["tensor_signature.0"] == 0.7
    assert row["metrics.lr"] == 0.1                                   # float64 metrics as they were
    r = run("chronicle", "query", p, "--json")
    assert widened not in r.output and json.loads(r.output)[0]["loss_value"] == 0.1
    r = run("chronicle", "stats", p)
    assert r.exit_code == 0 and widened not in r.output and "min 0.1, max 0.1, mean 0.1" in r.output
    stats = json.loads(run("chronicle", "stats", p, "--json").output)["columns"]["coherence"]
    assert stats["min"] == stats["max"] == stats["mean"] == 0.3


def test_inspect_describes_an_event_log_as_one(tmp_path):
    from chronoledger.chronicle import Chronicle
    p = tmp_path / "events.cmeta"
    with Chronicle.open(p, "w", schema="event") as ch:
        ch.append(timestamp=1, event_type="hello", payload={"a": 1})
    r = run("chronicle", "inspect", p)
    assert r.exit_code == 0 and "event chronicle" in r.output
    assert "cycle" not in r.output, r.output
    c = tmp_path / "cycles.cmeta"
    write_cycles(c, 10)
    assert "raw cycle record 38 B" in run("chronicle", "inspect", c).output
