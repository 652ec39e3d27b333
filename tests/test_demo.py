"""chronoledger.demo: the demo's work, as a library function with a structured result."""

import json

from chronoledger import __version__, core, demo
from chronoledger.cli import cli

from _cli import invoke

NAMES = ["start", "core", "codec", "append", "chronicle", "runtime", "sequence", "tables", "world", "done"]


def test_run_returns_every_part_with_its_figures_and_prints_nothing(tmp_path, capsys):
    report = demo.run(tmp_path / "d", records=3000, cycles=300)
    assert capsys.readouterr() == ("", "")                 # the library says what it did by returning it
    assert report.ok and [s.name for s in report.sections] == NAMES
    assert report.out_dir == (tmp_path / "d").resolve()
    codec = report.section("codec").facts
    assert codec["records"] == 3000 and codec["bytes"] == sum(codec["columns"].values())
    assert report.section("append").facts["in_order"] is True
    ch = report.section("chronicle").facts
    assert ch["verified"] and ch["replay_ok"] and ch["replayed"] == ch["records"] == 300
    assert report.section("world").facts["replay_matches"] is True
    assert all(p.exists() for s in report.sections for p in s.files)
    manifest = json.loads((report.out_dir / "manifest.json").read_text())
    for meta in manifest["columns"].values():
        data = (report.out_dir / meta["file"]).read_bytes()
        assert f"{core.crc64(data):016x}" == meta["crc64"]
    text = report.text()
    assert text.startswith(f"chronoledger {report.version} demo -> {report.out_dir}\n\n[core] ")
    assert text.rstrip().splitlines()[-2].startswith("Done. Files: ")
    serve = text.rstrip().splitlines()[-1]
    assert serve.startswith("See it in a browser: chronoledger serve --user ")
    assert f"--world {report.out_dir / 'world' / 'world.db'}" in serve and f"--runs {report.out_dir} " in serve


def test_steps_yield_each_part_as_it_is_done(tmp_path):
    seen = []
    for section in demo.steps(tmp_path, records=1000, cycles=100):
        seen.append(section.name)
        if section.name == "codec":
            assert (tmp_path / "manifest.json").exists()       # written before the later parts run
            assert not (tmp_path / "learner.cmeta").exists()
    assert seen == NAMES


def test_a_failed_check_ends_the_demo_with_its_problem_and_the_command_exits_1(tmp_path, monkeypatch):
    real_verify = demo.verify

    def failing(path, **kw):
        report = real_verify(path, **kw)
        report.checks[0].ok = False
        return report

    monkeypatch.setattr(demo, "verify", failing)
    report = demo.run(tmp_path / "a", records=1000, cycles=100)
    assert not report.ok and report.sections[-1].name == "chronicle"
    assert report.sections[-1].problem == "the recorded run did not verify or replay"
    assert not (tmp_path / "a" / "runtime.sqlite").exists()             # nothing after the failed part ran
    result = invoke(cli, ["demo", "--out", str(tmp_path / "b"), "--records", "1000", "--cycles", "100"])
    assert result.exit_code == 1
    assert "[chronicle] verify: FAILED" in result.stdout
    assert "error: the recorded run did not verify or replay" in result.stderr


def test_the_command_prints_what_the_library_returns(tmp_path):
    out = tmp_path / "demo"
    result = invoke(cli, ["demo", "--out", str(out), "--records", "2000", "--cycles", "200"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"chronoledger {__version__} demo -> {out.resolve()}"
    assert lines[1] == "" and lines[2].startswith("[core] CRC-64/XZ path on this CPU")
    assert sum(1 for ln in lines if ln == "") == len(NAMES) - 1           # a blank line between parts
    assert lines[-2].startswith("Done. Files: ") and lines[-1].startswith("See it in a browser: chronoledger serve")
