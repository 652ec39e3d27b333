"""Sequence: a Chronos user folder (YAML, the source of truth) mirrored into SQLite,
the behaviour metastudy agents read, read-only data queries, and the nightly
sync.  See docs/sequence.md.

The functions people call load on first use::

    import chronoledger as cl
    cl.sequence.sync("~/Chronos")            # sync.sync: rebuild the mirrors
    cl.sequence.status("~/Chronos"), cl.sequence.plan("~/Chronos")
    cl.sequence.build_trends(data), cl.sequence.run_query(data, sql), cl.sequence.listen(user)

``chronoledger.sequence.sync`` is the submodule (``sync.SyncReport``,
``sync.hhmm``...), and calling it runs its ``sync`` function: a package
attribute cannot be the function and the submodule at once, and Python sets
it to the submodule whenever that is imported.
"""

from __future__ import annotations

import importlib

#: name -> (submodule, attribute; None for the submodule itself)
_EXPORTS = {
    "sync": ("sync", None),
    "status": ("sync", "status"),
    "plan": ("sync", "plan"),
    "build_trends": ("metastudy", "build_trends"),
    "run_query": ("query", "run_query"),
    "listen": ("listener", "listen"),
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    where = _EXPORTS.get(name)
    if where is None:       # also how `from chronoledger.sequence import layout` finds a submodule to import
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{where[0]}")
    if where[1] is None:
        return module
    value = getattr(module, where[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
