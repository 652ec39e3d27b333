"""What governs a proposal's status: the promotion policy (data, a
version per risk level), the evidence a move needs (read for the rules of
:mod:`chronoledger.runtime.promotion`), and the decisions recorded
(migration 0004's audit table).  docs/runtime.md, "Promotion"."""

from __future__ import annotations

import json
from collections.abc import Iterable

from chronoledger.errors import CorruptDataError, ValidationError
from chronoledger.runtime import promotion
from chronoledger.runtime import values as v
from chronoledger.runtime.core import StoreCore, _each
from chronoledger.runtime.vocab import ENUMS


class Governance(StoreCore):
    """The policy, the evidence and the decisions of proposals."""

    def _lacking(self, proposal: dict, status: str) -> list[str]:
        """What moving ``proposal`` to ``status`` lacks (call with the lock held)."""
        pol = promotion.policy_for(self._policies(), proposal["risk_level"])
        return promotion.missing(proposal["status"], status, self._evidence(proposal["id"]), pol)

    def promotion_check(self, proposal_id: str, status: str) -> list[str]:
        """What the proposal lacks to move to ``status`` now (empty: the move is backed)."""
        pid = v.check_ref(proposal_id, "proposal_id")
        status = v.check_enum(status, "skill_to_logic_proposals", "status")
        with self._locked():
            return self._lacking(self._get("skill_to_logic_proposals", pid, "proposal_id"), status)

    def _evidence(self, pid: str) -> promotion.Evidence:
        def rows(table: str, time_column: str) -> list[dict]:
            return self._rows(f"SELECT rowid AS _seq, julianday({time_column}) AS _jd, * FROM {table} "
                              f"WHERE proposal_id = ? ORDER BY rowid", (pid,))
        return promotion.Evidence(rows("validation_results", "validated_at"), rows("approvals", "decided_at"),
                                  rows("deploy_outcomes", "deployed_at"))

    def _has_table(self, name: str) -> bool:
        return bool(self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchall())

    def _policies(self) -> dict[str, promotion.Policy]:
        """The policy in force per risk level: the database's (migration 0004),
        or the defaults where it has none (a file read as it is, older)."""
        if not self._has_table("_runtime_promotion_policy"):
            return promotion.default_policies()
        out = {}
        for r in self._rows("SELECT * FROM _runtime_current_policy"):
            where = f"{self.path}: _runtime_promotion_policy ({r['risk_level']!r} version {r['version']})"
            try:
                validators, types = json.loads(r["validators_json"]), json.loads(r["approval_types_json"])
            except (TypeError, ValueError):
                raise CorruptDataError(f"{where}: validators_json or approval_types_json is not JSON") from None
            out[r["risk_level"]] = promotion.Policy(
                r["risk_level"], r["version"], tuple(map(str, validators)), tuple(map(str, types)),
                int(r["min_approvals"]), bool(r["distinct_approvers"]), r["set_at"], r["set_by"], r["rationale"])
        return out

    def promotion_policy(self) -> dict[str, dict]:
        """The promotion policy in force, by risk level (``validators``,
        ``approval_types``, ``min_approvals``, ``distinct_approvers``,
        ``version``, ``set_at``, ``set_by``, ``rationale``)."""
        with self._locked():
            return {risk: p.as_dict() for risk, p in self._policies().items()}

    def set_promotion_policy(self, risk_level: str, *, set_by: str, validators: Iterable[str] = (),
                             approval_types: Iterable[str] = (), min_approvals: int = 1,
                             distinct_approvers: bool = False, rationale: str | None = None) -> dict:
        """A new version of what ``risk_level``'s proposals need (the old
        versions stay: decisions name the version they were made under)."""
        risk = v.check_enum(risk_level, "skill_to_logic_proposals", "risk_level")
        vals = _names(validators, "validators", ENUMS[("validation_results", "validator")])
        types = _names(approval_types, "approval_types", ENUMS[("approvals", "approval_type")])
        least = v.check_int(min_approvals, "min_approvals", minimum=0)
        flag = v.check_flag(distinct_approvers, "distinct_approvers")
        who = v.check_text(set_by, "set_by")
        why = v.check_text(rationale, "rationale", nullable=True, empty=True)
        with self._locked(), self._write("set_promotion_policy"):
            version = self._conn.execute("SELECT coalesce(max(version), 0) + 1 FROM _runtime_promotion_policy "
                                         "WHERE risk_level = ?", (risk,)).fetchall()[0][0]
            self._insert("_runtime_promotion_policy",
                         {"risk_level": risk, "version": version, "validators_json": json.dumps(vals),
                          "approval_types_json": json.dumps(types), "min_approvals": least,
                          "distinct_approvers": flag, "set_at": self._stamp(), "set_by": who, "rationale": why},
                         "set_promotion_policy")
            return self._policies()[risk].as_dict()

    def proposal_decisions(self, proposal_id: str) -> list[dict]:
        """Every status the proposal took, in order, with the evidence behind
        it (``evidence``: the latest validation's id, the standing approvals'
        and rejections' ids, the latest deploy outcome's id) and the policy
        version it was decided under."""
        pid = v.check_ref(proposal_id, "proposal_id")
        with self._locked():
            real = self._get("skill_to_logic_proposals", pid, "proposal_id")["id"]
            return self._decisions(real)

    def _decisions(self, pid: str) -> list[dict]:
        if not self._has_table("_runtime_proposal_decisions"):
            return []
        out = self._rows("SELECT * FROM _runtime_proposal_decisions WHERE proposal_id = ? ORDER BY seq", (pid,))
        for d in out:
            try:
                d["evidence"] = json.loads(d.pop("evidence_json"))
            except (TypeError, ValueError):
                raise CorruptDataError(f"{self.path}: _runtime_proposal_decisions row {d['seq']}: evidence_json is "
                                       f"not JSON") from None
        return out

    def _status_lacks(self, proposal: dict) -> list[str]:
        """What the proposal's status lacks by the evidence it has now: empty
        when it is backed (or drafted); a status another tool set without
        evidence, or evidence that changed after it (a later failed
        validation), shows here."""
        before = _REACHED_FROM.get(proposal["status"])
        if before is None:
            return [] if proposal["status"] == "drafted" else \
                [f"a status the state machine knows ({proposal['status']!r} is not one)"]
        pol = promotion.policy_for(self._policies(), proposal["risk_level"])
        return promotion.missing(before, proposal["status"], self._evidence(proposal["id"]), pol)



#: The move whose evidence a status stands on (the lineage checks a status against the evidence it has now).
_REACHED_FROM = {"validated": "drafted", "approved": "validated", "promoted": "approved", "rejected": "drafted"}


def _names(items: Iterable[str], field: str, allowed: tuple[str, ...]) -> list[str]:
    """A policy's list of validator kinds or approval types: each allowed, each once, in the order given."""
    out: list[str] = []
    for i, x in enumerate(_each(items, field, "names")):
        if x not in allowed:
            raise ValidationError(f"{field}[{i}]: {x!r} is not allowed; use one of: {', '.join(allowed)}")
        if x not in out:
            out.append(x)
    return out
