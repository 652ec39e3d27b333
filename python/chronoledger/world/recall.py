"""What a tick of a run leaves in its agents' memories, and what each model
request carries besides the situation: the memories retrieved for it, how
the speaker stands with the others, the speaker's family and the clock.

The memory table and its scoring are in :mod:`chronoledger.world.memory`;
this module knows the world's words (places, conversations, refusals).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chronoledger.world.memory import excerpt, importance
#: Relationship kinds that are not family (anything else a family_json names is).
NOT_FAMILY = frozenset({"acquaintance", "friend", "colleague", "coworker", "neighbour", "neighbor", ""})
#: Confidence stored with a memory: what another said, or a fact, is heard; a thought is one's own.
CONFIDENCE = {"conversation": 0.8, "meeting": 0.8, "scripted": 0.8, "refused": 1.0, "reflection": 0.6,
              "insight": 0.6}


def family_pairs(raw: Any) -> list[tuple[str, str]]:
    """(role, name) pairs of an agent's ``family_json``: ``{"spouse": "Ben"}``,
    ``{"children": ["Cy", "Di"]}`` or ``[{"name": "Ben", "relation": "spouse"}]``;
    anything else (not JSON, no names) gives none."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    out: list[tuple[str, str]] = []
    if isinstance(raw, dict):
        for role, who in raw.items():
            # {"children": ["Cy", "Di"]}: each of them is a child
            one = _SINGULAR.get(str(role).strip().lower(), str(role).strip()) if isinstance(who, list) else \
                str(role).strip()
            for name in (who if isinstance(who, list) else [who]):
                if isinstance(name, str) and name.strip():
                    out.append((one, name.strip()))
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip():
                role = item.get("relation") or item.get("role") or "family"
                out.append((str(role).strip(), item["name"].strip()))
    return out


_SINGULAR = {"children": "child", "kids": "kid", "parents": "parent", "siblings": "sibling", "brothers": "brother",
             "sisters": "sister", "sons": "son", "daughters": "daughter", "cousins": "cousin",
             "grandchildren": "grandchild", "grandparents": "grandparent", "aunts": "aunt", "uncles": "uncle"}


def closeness(strength: float) -> str:
    if strength >= 0.6:
        return "close"
    if strength >= 0.3:
        return "friendly"
    if strength > -0.1:
        return "not close yet"
    return "strained"


def relation_line(name: str, kind: str | None, strength: float | None) -> str:
    """How a speaker stands with ``name``: ``Ben is your spouse (close, 0.85)``."""
    if kind is None or strength is None:
        return f"you have not met {name} before"
    role = kind.replace("_", " ")
    what = f"a {role} of yours" if role in ("friend", "colleague", "neighbour", "neighbor", "coworker") else \
        ("someone you know" if role == "acquaintance" else f"your {role}")
    return f"{name} is {what} ({closeness(strength)}, {strength:.2f})"


def clock_text(t: datetime) -> str:
    """``Monday 5 January 2026, 08:00``."""
    return f"{t:%A} {t.day} {t:%B %Y, %H:%M}"


def at_place(name: str) -> str:
    """``at home``, ``at Cafe``-style names as given (``at the Cafe``), ``at the cafe``."""
    if name.lower() == "home":
        return "at home"
    return f"at the {name}"


def the_place(name: str) -> str:
    if name.lower() == "home":
        return "Home"
    return f"The {name}"


@dataclass
class TickMemories:
    """The memories one tick makes, in the order they are made (positions, not ids)."""
    agent: list[int] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    importance: list[int] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)

    def add(self, agent: int, kind: str, text: str, imp: int, meta: str) -> None:
        self.agent.append(agent)
        self.kind.append(kind)
        self.text.append(text)
        self.importance.append(imp)
        self.meta.append(meta)


def chat_memory(kind: str, speaker: str, others: list[str], said: list[tuple[str, str]], place: str,
                activity: str, topic: str, prompt: str | None) -> str:
    """What one member of a conversation remembers of it: what another said
    (an excerpt of the first thing they said), where, about what.
    ``said``: (name, text) of every turn, in order."""
    heard = [(n, t) for n, t in said if n != speaker]
    at = at_place(place)
    if prompt is not None:
        if heard:
            n, t = heard[0]
            return f'Asked "{excerpt(prompt, 60)}" {at}, {n} said: "{excerpt(t)}"'
        own = next((t for n, t in said if n == speaker), "")
        return f'Asked "{excerpt(prompt, 60)}" {at}, I said: "{excerpt(own)}"'
    if not heard:
        return f"I was {at} with {', '.join(others)}, talking about {topic}."
    n, t = heard[0]
    if kind == "group_meeting":
        with_whom = ", ".join(others)
        return f'At the {activity.replace("_", " ")} {at} with {with_whom}, {n} said: "{excerpt(t)}"'
    return f'{n} told me {at} about {topic}: "{excerpt(t)}"'


def chat_importance(kind: str, text: str, *, family: bool, close: bool, first_meeting: bool,
                    disagreement: bool, scripted: bool) -> tuple[str, int]:
    """(memory kind, importance) of a conversation's memory."""
    mkind = "scripted" if scripted else ("meeting" if kind == "group_meeting" else "conversation")
    return mkind, importance(mkind, text, family=family, close=close, first_meeting=first_meeting,
                             disagreement=disagreement)
