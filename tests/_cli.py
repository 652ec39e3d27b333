"""Running the command line in the tests alike on every click the package supports.

click >= 8.2 keeps stderr apart in every result (``.stdout``, ``.stderr``) and
gives both streams in ``.output``; click 8.1 does that only with
``CliRunner(mix_stderr=False)`` (an argument 8.2 removed), and then its
``.output`` is stdout alone.  ``invoke`` gives the 8.2 shape on both.
"""

from __future__ import annotations

from click.testing import CliRunner


class _BothStreams:
    """A click 8.1 result read as click 8.2 reads it: ``.output`` holds both
    streams (stdout, then stderr: 8.1 keeps no interleaved copy)."""

    def __init__(self, result):
        self._result = result

    def __getattr__(self, name):
        return getattr(self._result, name)

    @property
    def output(self) -> str:
        return self._result.stdout + self._result.stderr


def invoke(cli, args, **kw):
    """``CliRunner().invoke(cli, args, **kw)`` with ``.stdout``, ``.stderr``
    and ``.output`` (both) whatever the click."""
    try:
        runner = CliRunner(mix_stderr=False)            # click 8.1
    except TypeError:                                    # click >= 8.2: always apart
        return CliRunner().invoke(cli, args, **kw)
    return _BothStreams(runner.invoke(cli, args, **kw))


def parse_rows(text: str, fmt: str) -> list[dict]:
    """Rows printed with ``--json``, ``--nl``, ``--csv`` or ``--tsv``, read back."""
    import csv
    import io
    import json

    if fmt == "json":
        return json.loads(text)
    if fmt == "nl":
        return [json.loads(line) for line in text.splitlines()]
    return list(csv.DictReader(io.StringIO(text), dialect="excel-tab" if fmt == "tsv" else "excel"))


def as_cells(row: dict) -> dict:
    """A row as ``--csv``/``--tsv`` write its values: text, JSON for lists,
    objects and booleans, an empty cell for None."""
    import json

    def cell(v):
        if v is None:
            return ""
        if isinstance(v, (dict, list, bool)):
            return json.dumps(v, ensure_ascii=False)
        return str(v)
    return {k: cell(v) for k, v in row.items()}
