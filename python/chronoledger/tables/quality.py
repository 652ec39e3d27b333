"""The quality of the rows: trust scores from declared factors, and
contradictions found by declared rules and kept as rows.  docs/tables.md,
"Trust scores" and "Contradictions"."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


from chronoledger import sqlite as db
from chronoledger._isotime import iso_text
from chronoledger.errors import NotFoundError, QueryError
from chronoledger.tables import contradictions, trust, values
from chronoledger.tables import query as qb
from chronoledger.tables.core import _cols
from chronoledger.tables.rows import Rows
from chronoledger.tables.schema import TableSchema, q


class Quality(Rows):
    """Trust scores and contradictions of the rows."""

    def recompute_trust(self, table: str, filters: dict | None = None, *, as_of: Any = None) -> int:
        """Recompute ``trust_score`` (and ``success_rate`` where the table has
        one) of the rows matching ``filters`` from the five factors of
        docs/tables.md, "Trust scores", with the table's weights; ``as_of``
        (a datetime or ISO text; default now) is the time freshness is
        measured at, so a run can be repeated exactly.  Returns how many
        rows were updated."""
        when = _as_of(as_of)
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: trust scores of {table}"):
                schema, check = self._current(table)
                scoring = trust.model(schema)
                penalties = self._penalties(table)
                now = values.now()
                changed = []
                for row in self._stored_rows(schema, filters):
                    key = row[schema.primary_key.name]
                    score, _factors, extra = scoring.score(row, penalties.get(str(key), 0.0), when)
                    self._update_stored(schema, check.partial({"trust_score": score, **extra}, now, touch=False), [key])
                    changed.append(key)
                if changed:
                    self._outbox(table, "update", changed, now)
            self._after_write()
            return len(changed)

    def explain_trust(self, table: str, key: Any, *, as_of: Any = None) -> dict:
        """How the trust score of one row is made: each factor's value and
        weight, the open contradictions that lower its consistency, and the
        score :meth:`recompute_trust` would give it ``as_of``."""
        when = _as_of(as_of)
        with self._locked():
            schema, _check = self._current(table)
            scoring = trust.model(schema)
            pk = self.get_row(table, key)[schema.primary_key.name]
            [row] = self._stored_rows(schema, {schema.primary_key.name: pk})
            open_ = [c for c in self.contradictions(table, status="open") if str(pk) in (c["row1"], c["row2"])]
            score, factors, extra = scoring.score(row, sum(trust.PENALTY[c["severity"]] for c in open_), when)
            return {"table": table, "key": pk, "as_of": values.format_datetime(when), "trust_score": score,
                    "factors": {k: {"value": v, "weight": round(scoring.weights[k], 6)} for k, v in factors.items()},
                    "also_set": extra, "contradictions": open_}

    def _stored_rows(self, schema: TableSchema, filters: Any) -> list[dict]:
        where, params = qb.where_clause(schema, filters)
        cols = [f.name for f in schema.fields]
        return [dict(zip(cols, r)) for r in
                self._conn.execute(f"SELECT {_cols(schema)} FROM {q(schema.name)}{where}", params).fetchall()]

    def _penalties(self, table: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for r1, r2, severity in self._conn.execute(
                "SELECT row1, row2, severity FROM _registry_contradictions WHERE table_name = ? AND status = 'open'",
                (table,)).fetchall():
            for k in (r1, r2):
                out[str(k)] = out.get(str(k), 0.0) + trust.PENALTY.get(str(severity), 0.15)
        return out

    def detect_contradictions(self, table: str) -> dict:
        """Run the table's contradiction rules (docs/tables.md,
        "Contradictions") over all its rows and keep what they find as rows:
        a new pair is recorded open, a pair found again is left as it is (a
        resolved one opens again), an open pair no longer found is marked
        resolved; nothing is deleted.  Returns the counts and the open ones."""
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: contradictions of {table}"):
                schema, _check = self._current(table)
                rules = contradictions.rules_for(schema)
                found = contradictions.detect(self._stored_rows(schema, None), schema.primary_key.name, rules)
                now = values.now()
                known = {(r[0], r[1], r[2]): (r[3], r[4]) for r in self._conn.execute(
                    "SELECT rule, row1, row2, status, id FROM _registry_contradictions WHERE table_name = ?",
                    (table,)).fetchall()}
                new = reopened = 0
                seen = set()
                for c in found:
                    k = (c.rule, c.row1, c.row2)
                    seen.add(k)
                    if k not in known:
                        self._conn.execute(
                            "INSERT INTO _registry_contradictions (table_name, rule, kind, severity, row1, row2, "
                            "score, detail, status, found_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                            (table, c.rule, c.kind, c.severity, c.row1, c.row2, c.score, c.detail, now, now))
                        new += 1
                    else:
                        reopen = known[k][0] == "resolved"
                        reopened += reopen
                        self._conn.execute(
                            "UPDATE _registry_contradictions SET seen_at = ?, score = ?, detail = ?, severity = ?, "
                            "status = CASE WHEN status = 'resolved' THEN 'open' ELSE status END, "
                            "closed_at = CASE WHEN status = 'resolved' THEN NULL ELSE closed_at END, "
                            "closed_by = CASE WHEN status = 'resolved' THEN NULL ELSE closed_by END WHERE id = ?",
                            (now, c.score, c.detail, c.severity, known[k][1]))
                gone = [v[1] for k, v in known.items() if k not in seen and v[0] == "open"]
                for cid in gone:
                    self._conn.execute("UPDATE _registry_contradictions SET status = 'resolved', closed_at = ?, "
                                       "closed_by = 'registry (no longer found)' WHERE id = ?", (now, cid))
                if new or gone or reopened:
                    self._outbox(table, "contradictions", [new, len(gone), reopened], now)
            self._after_write()
            return {"table": table, "rules": [r["name"] for r in rules], "found": len(found), "new": new,
                    "reopened": reopened, "resolved": len(gone), "open": self.contradictions(table, status="open")}

    def contradictions(self, table: str | None = None, *, status: str | None = None) -> list[dict]:
        """The contradictions recorded (of ``table``; with ``status`` open, resolved or dismissed)."""
        if status is not None and status not in ("open", "resolved", "dismissed"):
            raise QueryError(f"status must be open, resolved or dismissed, got {status!r}")
        with self._locked():
            if table is not None:
                self._current(table)                 # a table that is not there is said so
            self._check_open()
            rows = self._conn.execute(
                "SELECT id, table_name, rule, kind, severity, row1, row2, score, detail, status, found_at, seen_at, "
                "closed_at, closed_by FROM _registry_contradictions WHERE (?1 IS NULL OR table_name = ?1) AND "
                "(?2 IS NULL OR status = ?2) ORDER BY id", (table, status)).fetchall()
        cols = ["id", "table_name", "rule", "kind", "severity", "row1", "row2", "score", "detail", "status",
                "found_at", "seen_at", "closed_at", "closed_by"]
        return [dict(zip(cols, r)) for r in rows]

    def dismiss_contradiction(self, contradiction_id: int, *, by: str | None = None, reason: str = "") -> dict:
        """Mark a contradiction dismissed (not a contradiction after all):
        kept as a row, no longer lowering trust, and not opened again."""
        if type(contradiction_id) is not int:
            raise QueryError(f"a contradiction id is an integer, got {type(contradiction_id).__name__}")
        who = by or self.actor
        if not isinstance(who, str) or not isinstance(reason, str):
            raise QueryError("by and reason are text")
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: dismissing contradiction {contradiction_id}"):
                row = self._conn.execute("SELECT table_name, status FROM _registry_contradictions WHERE id = ?",
                                         (contradiction_id,)).fetchall()
                if not row:
                    raise NotFoundError(f"{self.path}: no contradiction {contradiction_id}")
                now = values.now()
                self._conn.execute("UPDATE _registry_contradictions SET status = 'dismissed', closed_at = ?, "
                                   "closed_by = ? WHERE id = ?",
                                   (now, who + (f": {reason}" if reason else ""), contradiction_id))
                self._outbox(str(row[0][0]), "contradiction_dismissed", [contradiction_id], now)
            self._after_write()
            return next(c for c in self.contradictions(str(row[0][0])) if c["id"] == contradiction_id)


def _as_of(v: Any) -> datetime:
    """The time trust is measured at: ``v`` (a datetime, naive taken as UTC, or ISO text), or now."""
    if v is None:
        return datetime.now(timezone.utc)
    try:
        when = v if isinstance(v, datetime) else datetime.fromisoformat(iso_text(str(v)))
    except ValueError:
        raise QueryError(f"as_of: {v!r} is not an ISO-8601 date and time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
