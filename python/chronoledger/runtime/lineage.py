"""Skills, skill-to-logic proposals and their audit trail (validations,
approvals, deploy outcomes), and query 5: a proposal's full lineage."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TypedDict

from chronoledger.errors import CorruptDataError, NotFoundError, ValidationError
from chronoledger.runtime import promotion
from chronoledger.runtime import values as v
from chronoledger.runtime.core import QUERIES, _decode_cursor
from chronoledger.runtime.governance import Governance
from chronoledger.runtime.vocab import MOVES, PROPOSAL_TRANSITIONS, ROLLBACK, SKILL_STATES


class _SkillRow(TypedDict):
    id: str
    skill_key: str
    description: str
    source_type: str
    source_ref: str | None
    confidence: float
    learned_at: str
    state: str
    metadata_json: str


class _ProposalRow(TypedDict):
    id: str
    skill_id: str
    proposed_by: str
    proposal_type: str
    proposal_json: str
    determinism_score: float | None
    risk_level: str
    status: str
    created_at: str
    updated_at: str


class _AuditRow(TypedDict):
    """What the rows of a proposal's audit trail (validations, approvals, deploy outcomes) share."""
    id: str
    proposal_id: str


class _ValidationRow(_AuditRow):
    validator: str
    build_pass: int
    lint_pass: int
    test_pass: int
    policy_pass: int
    details_json: str
    validated_at: str


class _ApprovalRow(_AuditRow):
    approver: str
    approval_type: str
    decision: str
    notes: str | None
    decided_at: str


class _DeployOutcomeRow(_AuditRow):
    deployment_target: str
    deployment_id: str | None
    status: str
    summary: str | None
    metrics_json: str
    deployed_at: str



class Lineage(Governance):
    # --- skills and proposals -------------------------------------------------
    def record_skill(self, skill_key: str, description: str, source_type: str, confidence: float, *,
                     source_ref: str | None = None, learned_at=None, state: str = "active",
                     metadata: dict | None = None, id: str | None = None) -> dict:
        row: _SkillRow = {
            "id": v.check_id(id, "id") if id is not None else v.new_id(),
            "skill_key": v.check_text(skill_key, "skills_learned.skill_key"),
            "description": v.check_text(description, "skills_learned.description"),
            "source_type": v.check_enum(source_type, "skills_learned", "source_type"),
            "source_ref": v.check_text(source_ref, "skills_learned.source_ref", nullable=True),
            "confidence": v.check_unit(confidence, "skills_learned.confidence"),
            "learned_at": v.check_time(learned_at, "skills_learned.learned_at"),
            "state": v.check_enum(state, "skills_learned", "state", SKILL_STATES),
            "metadata_json": v.check_json_object(metadata, "skills_learned.metadata_json")}
        with self._locked(), self._write("record_skill"):
            self._insert("skills_learned", row, "record_skill")
        return self._get("skills_learned", row["id"], "id")

    def create_proposal(self, skill_id: str, proposed_by: str, proposal_type: str, proposal: dict,
                        risk_level: str, *, determinism_score: float | None = None, created_at=None,
                        id: str | None = None) -> dict:
        """A skill-to-logic proposal, status ``drafted``."""
        stamp = v.check_time(created_at, "skill_to_logic_proposals.created_at")
        row: _ProposalRow = {
            "id": v.check_id(id, "id") if id is not None else v.new_id(),
            "skill_id": v.check_ref(skill_id, "skill_id"),
            "proposed_by": v.check_enum(proposed_by, "skill_to_logic_proposals", "proposed_by"),
            "proposal_type": v.check_enum(proposal_type, "skill_to_logic_proposals", "proposal_type"),
            "proposal_json": v.check_json_object(proposal, "skill_to_logic_proposals.proposal_json", default=None),
            "determinism_score": v.check_unit(determinism_score, "skill_to_logic_proposals.determinism_score",
                                              nullable=True),
            "risk_level": v.check_enum(risk_level, "skill_to_logic_proposals", "risk_level"),
            "status": "drafted", "created_at": stamp, "updated_at": stamp}
        with self._locked(), self._write("create_proposal"):
            skill = self._get("skills_learned", row["skill_id"], "skill_id")
            if skill["state"] in ("deprecated", "retired"):
                raise ValidationError(f"skill {row['skill_id']} is {skill['state']}; proposals are drafted for active "
                                      f"skills only")
            row["skill_id"] = skill["id"]
            self._insert("skill_to_logic_proposals", row, "create_proposal")
        return self._get("skill_to_logic_proposals", row["id"], "id")

    def set_proposal_status(self, proposal_id: str, status: str, *, updated_at=None) -> dict:
        """Move a proposal along drafted -> validated -> approved -> promoted,
        or to rejected, each move backed by its evidence under the policy for
        the proposal's risk level (docs/runtime.md, "Promotion"):

        - validated: its latest validation (and the latest by each validator
          the policy names) passed build, lint, test and policy;
        - approved: that still holds, the approvals the policy requires stand
          (an approver's standing decision of a type is their latest) and no
          rejection stands;
        - promoted: all that still holds and its latest deployment succeeded;
        - rejected: a rejection stands, its latest validation failed, or its
          latest deployment failed or was rolled back.

        A move that lacks anything raises ValidationError naming all it lacks;
        the database's triggers refuse the same moves from any other writer.
        A promoted proposal goes back to approved by itself when a rolled-back
        deployment is recorded.  Every status taken is in :meth:`proposal_decisions`."""
        pid = v.check_ref(proposal_id, "proposal_id")
        status = v.check_enum(status, "skill_to_logic_proposals", "status")
        stamp = v.check_time(updated_at, "skill_to_logic_proposals.updated_at", default_now=False)
        with self._locked(), self._write("set_proposal_status"):
            cur = self._get("skill_to_logic_proposals", pid, "proposal_id")
            if cur["status"] not in PROPOSAL_TRANSITIONS:
                raise ValidationError(f"proposal {pid} has the status {cur['status']!r} (written by another tool), "
                                      f"which the state machine does not know; allowed: "
                                      f"{', '.join(PROPOSAL_TRANSITIONS)}")
            move = (cur["status"], status)
            allowed = MOVES[cur["status"]]
            if status not in allowed:
                raise ValidationError(
                    f"proposal {pid}: {cur['status']} -> {status} is not allowed; from {cur['status']} "
                    + (f"it can go to {', '.join(allowed)}" if allowed else "it cannot change any more"))
            lacking = self._lacking(cur, status)
            if lacking:
                pol = promotion.policy_for(self._policies(), cur["risk_level"])
                rule = "" if status == "rejected" or move == ROLLBACK else \
                    f" (risk {cur['risk_level']}: policy version {pol.version} asks for {pol.describe()})"
                raise ValidationError(f"proposal {pid}: {cur['status']} -> {status} needs " + "; ".join(lacking)
                                      + rule)
            before = v.parse_time(cur["updated_at"])
            if stamp is None:
                stamp = self._stamp()
                given = v.parse_time(stamp)
                if before is not None and given is not None and given < before:   # its last change is ahead of us
                    stamp = cur["updated_at"]
            else:
                _dated(stamp, "skill_to_logic_proposals.updated_at")
                given = v.parse_time(stamp)
                if before is not None and given is not None and given < before:
                    raise ValidationError(f"skill_to_logic_proposals.updated_at: {stamp} is before the proposal's "
                                          f"last change ({cur['updated_at']}); a status's time never goes back")
            self._conn.execute("UPDATE skill_to_logic_proposals SET status = ?, updated_at = ? WHERE id = ?",
                               (status, stamp, cur["id"]))
        return self._get("skill_to_logic_proposals", cur["id"], "proposal_id")

    def _audit_row(self, table: str, row: _AuditRow, what: str, time_column: str) -> dict:
        """Store a row of a proposal's audit trail: dated (``time_column``)
        not in the future and not before the proposal was created."""
        when = str(row[time_column])            # type: ignore[literal-required]
        _dated(when, f"{table}.{time_column}")
        with self._locked(), self._write(what):
            prop = self._get("skill_to_logic_proposals", row["proposal_id"], "proposal_id")
            created, at = v.parse_time(prop["created_at"]), v.parse_time(when)
            if created is not None and at is not None and at < created:
                raise ValidationError(f"{table}.{time_column}: {when} is before proposal {prop['id']} was created "
                                      f"({prop['created_at']})")
            row["proposal_id"] = prop["id"]
            self._insert(table, row, what)
        return self._get(table, row["id"], "id")

    def record_validation(self, proposal_id: str, validator: str, *, build_pass: bool, lint_pass: bool,
                          test_pass: bool, policy_pass: bool, details: dict | None = None, validated_at=None) -> dict:
        row: _ValidationRow = {
            "id": v.new_id(), "proposal_id": v.check_ref(proposal_id, "proposal_id"),
            "validator": v.check_enum(validator, "validation_results", "validator"),
            "build_pass": v.check_flag(build_pass, "validation_results.build_pass"),
            "lint_pass": v.check_flag(lint_pass, "validation_results.lint_pass"),
            "test_pass": v.check_flag(test_pass, "validation_results.test_pass"),
            "policy_pass": v.check_flag(policy_pass, "validation_results.policy_pass"),
            "details_json": v.check_json_object(details, "validation_results.details_json"),
            "validated_at": v.check_time(validated_at, "validation_results.validated_at")}
        return self._audit_row("validation_results", row, "record_validation", "validated_at")

    def record_approval(self, proposal_id: str, approver: str, approval_type: str, decision: str, *,
                        notes: str | None = None, decided_at=None) -> dict:
        row: _ApprovalRow = {
            "id": v.new_id(), "proposal_id": v.check_ref(proposal_id, "proposal_id"),
            "approver": v.check_text(approver, "approvals.approver"),
            "approval_type": v.check_enum(approval_type, "approvals", "approval_type"),
            "decision": v.check_enum(decision, "approvals", "decision"),
            "notes": v.check_text(notes, "approvals.notes", nullable=True, empty=True),
            "decided_at": v.check_time(decided_at, "approvals.decided_at")}
        return self._audit_row("approvals", row, "record_approval", "decided_at")

    def record_deploy_outcome(self, proposal_id: str, deployment_target: str, status: str, *,
                              deployment_id: str | None = None, summary: str | None = None,
                              metrics: dict | None = None, deployed_at=None) -> dict:
        row: _DeployOutcomeRow = {
            "id": v.new_id(), "proposal_id": v.check_ref(proposal_id, "proposal_id"),
            "deployment_target": v.check_text(deployment_target, "deploy_outcomes.deployment_target"),
            "deployment_id": v.check_text(deployment_id, "deploy_outcomes.deployment_id", nullable=True),
            "status": v.check_enum(status, "deploy_outcomes", "status"),
            "summary": v.check_text(summary, "deploy_outcomes.summary", nullable=True, empty=True),
            "metrics_json": v.check_json_object(metrics, "deploy_outcomes.metrics_json"),
            "deployed_at": v.check_time(deployed_at, "deploy_outcomes.deployed_at")}
        return self._audit_row("deploy_outcomes", row, "record_deploy_outcome", "deployed_at")

    def proposal_lineage(self, proposal_id: str) -> dict:
        """Query 5: skill -> proposal -> validations -> approvals -> deploy outcomes."""
        pid = v.check_ref(proposal_id, "proposal_id")
        with self._locked():
            p = {"proposal_id": self._get("skill_to_logic_proposals", pid, "proposal_id")["id"]}
            proposal = self._one(QUERIES["proposal_lineage_proposal"], p)
            if proposal is None:
                raise NotFoundError(f"proposal_id: proposal {pid} refers to a skill that does not exist")
            skill = {"id": proposal["skill_id"], "skill_key": proposal.pop("skill_key"),
                     "description": proposal.pop("skill_description"),
                     "source_type": proposal.pop("skill_source_type"),
                     "confidence": proposal.pop("skill_confidence"), "learned_at": proposal.pop("skill_learned_at")}
            return {"skill": skill, "proposal": proposal,
                    "validations": self._rows(QUERIES["proposal_lineage_validations"], p),
                    "approvals": self._rows(QUERIES["proposal_lineage_approvals"], p),
                    "deploy_outcomes": self._rows(QUERIES["proposal_lineage_deploys"], p),
                    "decisions": self._decisions(proposal["id"]),
                    "status_lacks": self._status_lacks(proposal)}

    def list_proposals(self, *, status: str | None = None, risk_level: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> dict:
        """Proposals, newest first, by ``status`` and ``risk_level`` (the
        specification's index), each with its skill's key; paged like
        list_workflow_runs.  Returns ``{"proposals", "next_cursor"}``."""
        where: list[str] = []
        params: dict[str, str | int] = {}
        if status is not None:
            where.append("p.status = :status")
            params["status"] = v.check_enum(status, "skill_to_logic_proposals", "status")
        if risk_level is not None:
            where.append("p.risk_level = :risk")
            params["risk"] = v.check_enum(risk_level, "skill_to_logic_proposals", "risk_level")
        limit = v.check_int(limit, "limit", minimum=1)
        if cursor is not None:
            after_t, after_id = _decode_cursor(cursor)
            where.append("(p.created_at < :after_t OR (p.created_at = :after_t AND p.id < :after_id))")
            params.update(after_t=after_t, after_id=after_id)
        params["limit"] = limit + 1
        sql = ("SELECT p.*, s.skill_key FROM skill_to_logic_proposals p LEFT JOIN skills_learned s ON s.id = p.skill_id"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY p.created_at DESC, p.id DESC LIMIT :limit")
        rows, nxt = self._page(sql, params, limit, "created_at")
        return {"proposals": rows, "next_cursor": nxt}

    def set_skill_state(self, skill_id: str, state: str) -> dict:
        """Change a skill's state (active, deprecated, retired); a retired
        skill is not brought back, and no new proposal may be drafted for a
        skill that is not active."""
        sid = v.check_ref(skill_id, "skill_id")
        state = v.check_enum(state, "skills_learned", "state", SKILL_STATES)
        with self._locked(), self._write("set_skill_state"):
            cur = self._get("skills_learned", sid, "skill_id")
            if cur["state"] == "retired" and state != "retired":
                raise ValidationError(f"skill {sid} is retired; a retired skill stays retired (record it again)")
            self._conn.execute("UPDATE skills_learned SET state = ? WHERE id = ?", (state, cur["id"]))
        return self._get("skills_learned", cur["id"], "skill_id")

    def latest_proposal_id(self) -> str | None:
        with self._locked():
            rows = self._conn.execute("SELECT id FROM skill_to_logic_proposals ORDER BY created_at DESC, id DESC "
                                      "LIMIT 1").fetchall()
        found = rows[0][0] if rows else None
        if found is None or isinstance(found, str):
            return found
        raise CorruptDataError(f"{self.path}: skill_to_logic_proposals.id {found!r} is not text")


#: How far ahead of this machine's clock a time given for evidence may be (another machine's clock).
SKEW = timedelta(minutes=5)


def _dated(when: str, field: str) -> None:
    """Refuse a time in the future (beyond SKEW): evidence is of what happened."""
    t = v.parse_time(when)
    if t is not None and t > datetime.now(timezone.utc) + SKEW:
        raise ValidationError(f"{field}: {when} is in the future; evidence is dated when it happened")
