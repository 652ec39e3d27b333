"""The names Chronos (Jeetski/Chronos_Engine) gives things in its own
mirrors, so that Chronos's readers find them in ours: an item's slug
``type::name`` and a schedule block's key ``name@HH:MM``.

Pure functions of the records; the builders of chronos_core.db,
chronos_behavior.db and chronos_matrix.db share them.
"""

from __future__ import annotations

from collections.abc import Sequence

from chronoledger.sequence.records import Item


def item_slug(itype: object, name: object) -> str | None:
    """``type::name``, both stripped and lower-cased, as Chronos's core
    mirror writes it (None when either is missing)."""
    t, n = str(itype or "").strip().lower(), str(name or "").strip().lower()
    return f"{t}::{n}" if t and n else None


def item_slugs(items: Sequence[Item]) -> list[str]:
    """The slug of each item, in the order given: ``type::name``, and
    ``type::name#2``, ``#3``... for the second and later items of the same
    type and name (Chronos's rule; the order is the reader's, which is
    sorted, where Chronos's is the file system's)."""
    seen: dict[str, int] = {}
    out = []
    for it in items:
        slug = item_slug(it.type, it.name) or f"{it.type}::"
        n = seen.get(slug, 0) + 1
        seen[slug] = n
        out.append(slug if n == 1 else f"{slug}#{n}")
    return out


def block_key(name: str, start: str | None) -> str:
    """The key Chronos files a block's completion under: ``Name@HH:MM``
    (``Name@unscheduled`` for a block with no start)."""
    return f"{name.strip()}@{start or 'unscheduled'}"
