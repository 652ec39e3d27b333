"""Runtime memory for agents: the SQLite system of record of the Runtime
Memory DB v1 specification (conversations, workflows, skills, governance
decisions, behaviour and personality profiles).  See docs/runtime.md."""

from chronoledger.runtime.core import QUERIES
from chronoledger.runtime.store import RuntimeMemoryStore

__all__ = ["QUERIES", "RuntimeMemoryStore"]
