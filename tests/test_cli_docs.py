"""docs/cli.md is generated from the commands (chronoledger.cli.docs) and must be current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chronoledger.cli import cli
from chronoledger.cli.docs import REGENERATE, render
from chronoledger.cli.output import exit_code_table
from chronoledger.cli.sequence_cmds import sequence_group

from _cli import invoke

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


@pytest.fixture
def committed():
    if not DOC.exists():
        pytest.skip("docs/ is not beside the tests (installed without the source tree)")
    return DOC.read_text(encoding="utf-8")


def test_docs_cli_md_is_current(committed):
    assert committed == render(), f"docs/cli.md is out of date with the commands: run `{REGENERATE}`"


def test_the_exit_code_table_of_the_docs_is_the_codes_table(committed):
    section = committed.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    documented = [(int(r[0].strip("| ")), re.findall(r"`([^`]+)`", r[2])) for r in rows]
    assert documented == [(code, errors) for code, _, errors in exit_code_table()]


def test_every_command_is_documented(committed):
    from chronoledger.cli.docs import walk

    for path, _ in walk(cli, ("chronoledger",)):
        assert f"### `{' '.join(path)}`" in committed


@pytest.mark.parametrize("group, prog", [(cli, "chronoledger"), (sequence_group, "sequence")])
def test_shell_completion_as_documented(committed, group, prog):
    var = f"_{prog.upper()}_COMPLETE"
    assert f'eval "$({var}=bash_source {prog})"' in committed
    r = invoke(group, [], env={var: "zsh_source"}, prog_name=prog)
    assert r.exit_code == 0 and f"#compdef {prog}" in r.stdout
    words = f"{prog} chronicle q" if prog == "chronoledger" else f"{prog} da"
    r = invoke(group, [], env={var: "zsh_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)},
               prog_name=prog)
    assert r.exit_code == 0 and ("query" if prog == "chronoledger" else "data") in r.stdout.split()
