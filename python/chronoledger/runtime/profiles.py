"""Behaviour and personality profiles: versions with effective windows
(queries 1 and 2: the version in effect now, or at any time)."""

from __future__ import annotations

from chronoledger.errors import ValidationError
from chronoledger.runtime import values as v
from chronoledger.runtime.core import QUERIES, StoreCore

PROFILE_TABLES = {"behavior": ("behavior_profiles", "behavior_json"),
                  "personality": ("personality_profiles", "personality_json")}



class Profiles(StoreCore):
    # --- profiles -------------------------------------------------------------
    def _publish(self, kind: str, name: str, body: dict, created_by: str, rationale, source_ref,
                 effective_from) -> dict:
        table, column = PROFILE_TABLES[kind]
        row_id = v.new_id()
        row: dict[str, str | int | None] = {
            "id": row_id, "profile_name": v.check_text(name, f"{table}.profile_name"),
            column: v.check_json_object(body, f"{table}.{column}", default=None),
            "rationale": v.check_text(rationale, f"{table}.rationale", nullable=True, empty=True),
            "source_ref": v.check_text(source_ref, f"{table}.source_ref", nullable=True),
            "effective_from": (starts := v.check_time(effective_from, f"{table}.effective_from")),
            "created_at": v.now(), "created_by": v.check_text(created_by, f"{table}.created_by")}
        with self._locked(), self._write(f"publish_{kind}_profile"):
            last = self._one(f"SELECT * FROM {table} WHERE profile_name = ? ORDER BY version DESC LIMIT 1", (name,))
            if last is not None:
                prev, begins = v.parse_time(last["effective_from"]), v.parse_time(starts)
                if prev is not None and begins is not None and begins < prev:
                    raise ValidationError(f"{table}.effective_from: {starts} is before version "
                                          f"{last['version']}'s window starts ({last['effective_from']})")
            row["version"] = 1 if last is None else last["version"] + 1
            # close the windows still open, at the moment the new one opens
            self._conn.execute(f"UPDATE {table} SET effective_to = ? WHERE profile_name = ? AND "
                               f"(effective_to IS NULL OR julianday(effective_to) > julianday(?))",
                               (starts, name, starts))
            self._insert(table, row, f"publish_{kind}_profile")
        return self._get(table, row_id, "id")

    def publish_behavior_profile(self, name: str, behavior: dict, created_by: str, *, rationale: str | None = None,
                                 source_ref: str | None = None, effective_from=None) -> dict:
        """Version n + 1 of a behaviour profile, effective from
        ``effective_from`` (now); the previous version's window is closed at
        that moment in the same transaction."""
        return self._publish("behavior", name, behavior, created_by, rationale, source_ref, effective_from)

    def publish_personality_profile(self, name: str, personality: dict, created_by: str, *,
                                    rationale: str | None = None, source_ref: str | None = None,
                                    effective_from=None) -> dict:
        """As :meth:`publish_behavior_profile`, for personality profiles."""
        return self._publish("personality", name, personality, created_by, rationale, source_ref, effective_from)

    def profile_versions(self, name: str, kind: str = "behavior") -> list[dict]:
        """Every version of profile ``name``, oldest first, each with its window."""
        if kind not in PROFILE_TABLES:
            raise ValidationError(f"kind: {kind!r} is not allowed; use one of: {', '.join(PROFILE_TABLES)}")
        name = v.check_text(name, "name")
        table = PROFILE_TABLES[kind][0]
        with self._locked():
            return self._rows(f"SELECT * FROM {table} WHERE profile_name = ? ORDER BY version", (name,))

    def profile_as_of(self, name: str, at=None, kind: str = "behavior") -> dict | None:
        """The version of profile ``name`` in effect at ``at`` (now), or None."""
        if kind not in PROFILE_TABLES:
            raise ValidationError(f"kind: {kind!r} is not allowed; use one of: {', '.join(PROFILE_TABLES)}")
        name = v.check_text(name, "name")
        at = v.check_time(at, "at")
        with self._locked():
            return self._one(QUERIES[f"latest_{kind}_profile"], {"name": name, "at": at})

    # --- the v1 query set ------------------------------------------------------
    def latest_behavior_profile(self, actor: str = "tom") -> dict | None:
        """Query 1: the behaviour profile in effect now for ``actor``."""
        return self.profile_as_of(actor, None, "behavior")

    def latest_personality_profile(self, actor: str = "tom") -> dict | None:
        """Query 2: the personality profile in effect now for ``actor``."""
        return self.profile_as_of(actor, None, "personality")

