"""A row's trust score from five factors, as Grace's trust_scoring.py names
and weighs them (completeness 0.30, source 0.25, freshness 0.15, usage 0.20,
consistency 0.10), each factor here a pure function of the row, the table's
open contradictions and a time ``as_of``: the same inputs give the same
score, unlike Grace's, which reads the clock per row and detects every
contradiction of the table again for each row.  docs/tables.md, "Trust
scores"."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chronoledger._isotime import iso_text
from chronoledger.errors import SchemaError
from chronoledger.tables.schema import TRUST_FACTORS, TableSchema

#: Grace's scores of a row's creator (trust_scoring.py, _score_source).
GRACE_SOURCES = {"grace": 0.85, "self_healing_subsystem": 0.80, "coding_agent": 0.75, "sub_agents": 0.70,
                 "schema_proposal_engine": 0.75, "user": 0.60, "external": 0.50}
#: What an open contradiction of each severity takes from consistency (Grace's penalties).
PENALTY = {"low": 0.05, "medium": 0.15, "high": 0.30, "critical": 0.50}
#: Freshness by age in days: (under this many days, score); older than the last: 0.3 (Grace's steps).
_FRESH = ((1, 1.0), (7, 0.95), (30, 0.85), (90, 0.70), (180, 0.50))
_TIME_FIELDS = ("updated_at", "last_used_at", "last_active_at", "created_at")
#: Outcome counts the usage factor reads: (successes, attempts or failures, rate field it also sets).
_OUTCOMES = (("successful_runs", "total_runs", "success_rate"), ("successful_uses", "total_uses", None),
             ("successful_triggers", "total_triggers", None), ("tasks_completed", "tasks_failed", "success_rate"))


def laplace(successes: int, total: int) -> float:
    # Laplace's rule of succession: an unused row starts at 0.5 and each
    # outcome moves it less as evidence accumulates.
    return round((successes + 1) / (total + 2), 6)


@dataclass(frozen=True)
class TrustModel:
    """How one table's rows are scored."""
    weights: dict[str, float]                  # normalised to sum to 1
    source_field: str | None
    sources: dict[str, float]
    default_source: float
    freshness_fields: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...]
    usage: Callable[[dict], tuple[float, dict]] | None

    @property
    def inputs(self) -> list[str]:
        """The fields a score reads."""
        out = [*self.required, *self.optional, *self.freshness_fields]
        if self.source_field:
            out.append(self.source_field)
        return list(dict.fromkeys(out))

    def score(self, row: dict, penalty: float, as_of: datetime) -> tuple[float, dict[str, float], dict]:
        """(trust score, each factor's value, other fields the usage factor sets) for ``row``
        (stored values), whose open contradictions take ``penalty`` from consistency."""
        usage, extra = self.usage(row) if self.usage else (0.5, {})
        factors = {"completeness": self._completeness(row), "source": self._source(row),
                   "freshness": self._freshness(row, as_of), "usage": usage,
                   "consistency": max(0.0, round(1.0 - penalty, 6))}
        total = sum(self.weights[k] * v for k, v in factors.items())
        return round(min(max(total, 0.0), 1.0), 6), factors, extra

    def _completeness(self, row: dict) -> float:
        # Grace's split: required fields 60 %, the others 40 % (none required: 1.0; none optional: 0.5)
        req = sum(1 for f in self.required if _filled(row.get(f))) / len(self.required) if self.required else 1.0
        opt = sum(1 for f in self.optional if _filled(row.get(f))) / len(self.optional) if self.optional else 0.5
        return round(0.6 * req + 0.4 * opt, 6)

    def _source(self, row: dict) -> float:
        stamp = row.get("governance_stamp")
        if _filled(stamp):                   # first, as Grace's _score_source looks at it
            stamp = _json(stamp)
            if isinstance(stamp, dict) and stamp.get("approved"):
                return 0.9
            if isinstance(stamp, dict) and stamp.get("verified"):
                return 0.85
            return 0.7
        value = row.get(self.source_field) if self.source_field else None
        if value is None:
            return self.default_source
        return self.sources.get(str(value), self.default_source)

    def _freshness(self, row: dict, as_of: datetime) -> float:
        times = [t for t in (_when(row.get(f)) for f in self.freshness_fields) if t is not None]
        if not times:
            return 0.5
        days = (as_of - max(times)).total_seconds() / 86400
        return next((score for limit, score in _FRESH if days < limit), 0.3)


def model(schema: TableSchema) -> TrustModel:
    """The trust model of ``schema``: its ``trust:`` block over the defaults."""
    if "trust_score" not in schema.by_name:
        raise SchemaError(f"{schema.name} declares no trust_score field")
    declared = schema.trust or {}
    weights = {**TRUST_FACTORS, **declared.get("weights", {})}
    total = sum(weights.values())
    weights = {k: v / total for k, v in weights.items()}
    have = schema.by_name
    source_field = declared.get("source_field") or ("created_by" if "created_by" in have else None)
    sources = {**GRACE_SOURCES, **declared.get("sources", {})}
    fresh = (declared["freshness_field"],) if "freshness_field" in declared else \
        tuple(f for f in _TIME_FIELDS if f in have and have[f].type in ("datetime", "date"))
    scored = [f for f in schema.fields if not f.primary_key and f.name != "trust_score"]
    required = tuple(f.name for f in scored if f.required)
    optional = tuple(f.name for f in scored if not f.required)
    return TrustModel(weights, source_field, sources, float(declared.get("default_source", 0.5)), fresh, required,
                      optional, _usage(schema))


def _usage(schema: TableSchema) -> Callable[[dict], tuple[float, dict]] | None:
    have = schema.by_name
    for ok, other, rate in _OUTCOMES:
        if ok in have and other in have:
            failures = other == "tasks_failed"

            def usage(r: dict, ok: str = ok, other: str = other, rate: str | None = rate,
                      failures: bool = failures) -> tuple[float, dict]:
                s = max(r.get(ok) or 0, 0)
                n = s + max(r.get(other) or 0, 0) if failures else max(r.get(other) or 0, 0)
                s = min(s, n)
                extra = {rate: round(s / n, 6)} if rate in have and n else {}
                return laplace(s, n), extra
            return usage
    return None


def usage_inputs(schema: TableSchema) -> list[str]:
    have = schema.by_name
    return next(([ok, other] for ok, other, _ in _OUTCOMES if ok in have and other in have), [])


def _filled(v: Any) -> bool:
    return v is not None and v != "" and v != "[]" and v != "{}" and v != [] and v != {}


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _when(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(iso_text(v.replace(" ", "T", 1)))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)   # a naive time (Grace's) is UTC
