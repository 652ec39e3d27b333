"""Printing for the command line: aligned tables and JSON."""

from __future__ import annotations

import json

import click


def cell(x) -> str:
    if isinstance(x, (dict, list)):
        x = json.dumps(x, ensure_ascii=False)
    s = "" if x is None else str(x)
    s = s.replace("\n", " ")
    return s if len(s) <= 60 else s[:57] + "..."


def table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def print_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))
