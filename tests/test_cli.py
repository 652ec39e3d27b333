"""The chronoledger command: version, core commands, the demo."""

import json
import os
import subprocess
import sys

import fastcrc

from chronoledger import __version__, core
from chronoledger.cli import cli

from _cli import invoke


def test_version():
    result = invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "chronoledger.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert __version__ in out.stdout


def test_core_info():
    result = invoke(cli, ["core", "info"])
    assert result.exit_code == 0
    assert core.crc64_impl() in result.output


def test_core_crc64_of_files(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(os.urandom(70_000))
    b = tmp_path / "b.bin"
    b.write_bytes(b"123456789")
    result = invoke(cli, ["core", "crc64", str(a), str(b)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[0] == f"{fastcrc.crc64.xz(a.read_bytes()):016x}"
    assert lines[1].split()[0] == "995dc9bbdf1939fa"


def test_core_crc64_missing_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.bin"
    result = invoke(cli, ["core", "crc64", str(missing)])
    assert result.exit_code == 2                          # bad usage, refused before anything is read
    assert str(missing) in result.stderr and result.stdout == ""


def test_demo_writes_verifiable_files(tmp_path):
    out = tmp_path / "demo"
    result = invoke(cli, ["demo", "--out", str(out), "--records", "20000", "--cycles", "800"])
    assert result.exit_code == 0, result.output
    assert "CRC-64 verified, integers identical" in result.output
    assert "in timestamp order: True" in result.output
    assert "verify: OK" in result.output and "cycles regenerated with identical hashes" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == 20000
    for meta in manifest["columns"].values():
        data = (out / meta["file"]).read_bytes()
        assert f"{core.crc64(data):016x}" == meta["crc64"]
        assert core.decode_column(data).shape == (20000,)
    # nothing absolute is written into the manifest
    assert str(tmp_path) not in (out / "manifest.json").read_text()


def test_examples_run(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "core_quickstart.py"
    if not example.exists():
        import pytest
        pytest.skip("examples/ is not beside the tests")
    out = subprocess.run([sys.executable, str(example), str(tmp_path / "qs")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("verified") == 4


def test_output_cut_by_its_reader_ends_quietly_in_every_group(tmp_path):
    import numpy as np

    from chronoledger.chronicle import Chronicle

    log = tmp_path / "big.cmeta"
    n = 200_000                                          # far more than a pipe holds
    with Chronicle.open(log, "w", schema="event") as ch:
        ch.extend({"timestamp": np.arange(n, dtype=np.uint64), "event_type": np.zeros(n, dtype=np.int64)},
                  labels={"event_type": ["tick"]})
    proc = subprocess.Popen([sys.executable, "-m", "chronoledger.cli", "chronicle", "query", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"timestamp")
    proc.stdout.close()                                  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err              # click alone would exit 1
    assert err == ""


def test_a_command_loads_only_its_own_subsystem():
    code = ("import sys; from chronoledger.cli import main; sys.argv = ['chronoledger', 'core', 'info'];\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('chronoledger.world', 'chronoledger.tables', 'chronoledger.sequence.sync',"
            " 'chronoledger.runtime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
