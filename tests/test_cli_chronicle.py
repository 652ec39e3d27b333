"""`chronoledger chronicle ...` from the command line, with its exit codes."""

import json

import pytest
from click.testing import CliRunner

from chronoledger.chronicle import ChronicleReader
from chronoledger.cli import cli
from chronoledger.examples.recording import STEP, record_learner

from _chronicle_util import write_cycles


@pytest.fixture(scope="module")
def learner_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cli") / "learner.cmeta"
    record_learner(p, 400)
    return p


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


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


@pytest.mark.parametrize("out_format", ["table", "csv", "json", "jsonl"])
def test_query_formats(learner_file, out_format):
    r = run("chronicle", "query", learner_file, "--start", 10, "--end", 15, "--format", out_format,
            "--columns", "timestamp,phase,action_code")
    assert r.exit_code == 0, r.output
    if out_format == "json":
        rows = json.loads(r.output)
        assert [row["timestamp"] for row in rows] == [10, 11, 12, 13, 14]
    elif out_format == "jsonl":
        assert len(r.output.strip().splitlines()) == 5
    else:
        assert r.output.splitlines()[0].replace(",", " ").split() == ["timestamp", "phase", "action_code"]
        assert len(r.output.strip().splitlines()) == 6
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
