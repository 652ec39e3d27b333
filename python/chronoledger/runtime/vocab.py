"""What the runtime store allows in each column: one definition, used by the
Python validation and (through tools/gen_runtime_enforcement.py) by the
triggers of migration 0002, which a test keeps equal to it."""

from __future__ import annotations

#: (table, column) -> allowed values, as the specification lists them in its
#: DDL comments.  sessions.actor ("e.g. tom, oxide...") is free text.
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("sessions", "channel"): ("cli", "api", "sdk", "cron"),
    ("conversation_turns", "role"): ("system", "user", "assistant", "tool", "agent"),
    ("workflow_runs", "trigger_source"): ("cron", "manual", "api", "agent"),
    ("workflow_runs", "status"): ("queued", "running", "failed", "succeeded", "aborted"),
    ("task_events", "event_type"): ("info", "warn", "error", "policy", "approval"),
    ("task_events", "event_level"): ("low", "medium", "high", "critical"),
    ("skills_learned", "source_type"): ("conversation", "doc", "external"),
    ("skill_to_logic_proposals", "proposed_by"): ("oxide", "human"),
    ("skill_to_logic_proposals", "proposal_type"): ("code_patch", "config_change", "policy_change"),
    ("skill_to_logic_proposals", "risk_level"): ("low", "medium", "high", "critical"),
    ("skill_to_logic_proposals", "status"): ("drafted", "validated", "rejected", "approved", "promoted"),
    ("validation_results", "validator"): ("ci", "oxide", "human"),
    ("approvals", "approval_type"): ("policy", "human", "security", "ops"),
    ("approvals", "decision"): ("approved", "rejected"),
    ("deploy_outcomes", "status"): ("succeeded", "failed", "rolled_back"),
}

#: Our own conventions where the specification lists nothing (checked by the
#: Python API only, so other tools' values are not refused).
#: Sessions: active, then closed as ours (ended, aborted) or ToM's store closes them (completed, failed).
SESSION_STATUSES = ("active", "ended", "aborted", "completed", "failed")
CLOSED_SESSION = frozenset(SESSION_STATUSES[1:])
STEP_STATUSES = ("queued", "running", "succeeded", "failed", "skipped", "aborted")
SKILL_STATES = ("active", "deprecated", "retired")

#: Columns that hold a JSON object.
JSON_OBJECT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sessions", "metadata_json"),
    ("conversation_turns", "metadata_json"),
    ("workflow_runs", "context_json"),
    ("workflow_steps", "details_json"),
    ("task_events", "payload_json"),
    ("skills_learned", "metadata_json"),
    ("behavior_profiles", "behavior_json"),
    ("personality_profiles", "personality_json"),
    ("skill_to_logic_proposals", "proposal_json"),
    ("validation_results", "details_json"),
    ("deploy_outcomes", "metrics_json"),
)

#: 0/1 columns.
FLAG_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    ("validation_results", c) for c in ("build_pass", "lint_pass", "test_pass", "policy_pass"))

#: Append-only audit tables: no UPDATE, no DELETE.
APPEND_ONLY = ("task_events", "validation_results", "approvals", "deploy_outcomes")

#: The proposal state machine: status -> the statuses it may move to.
PROPOSAL_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "drafted": ("validated", "rejected"),
    "validated": ("approved", "rejected"),
    "approved": ("promoted", "rejected"),
    "rejected": (),
    "promoted": (),
}

#: From migration 0004 on: a rolled-back deployment takes a promoted proposal back to approved (a trigger
#: does it when the rollback is recorded).
ROLLBACK = ("promoted", "approved")
#: The moves allowed from migration 0004 on: PROPOSAL_TRANSITIONS' (which migration 0002 was made from), the
#: rollback, and a promoted proposal rejected on evidence of a rejection.
MOVES: dict[str, tuple[str, ...]] = {**PROPOSAL_TRANSITIONS, "promoted": ("approved", "rejected")}

#: The promotion policy a database starts with (migration 0004 inserts these as version 1 of each risk
#: level's policy; a test keeps the two equal): per risk level, the validators whose latest validation
#: must pass, the approval types that must each have an approval standing, how many approvals must
#: stand, and whether they must come from different people.
DEFAULT_POLICY: dict[str, dict] = {
    "low": {"validators": [], "approval_types": [], "min_approvals": 1, "distinct_approvers": False},
    "medium": {"validators": [], "approval_types": ["human"], "min_approvals": 1, "distinct_approvers": False},
    "high": {"validators": ["ci"], "approval_types": ["human"], "min_approvals": 1, "distinct_approvers": False},
    "critical": {"validators": ["ci"], "approval_types": ["human", "security"], "min_approvals": 2,
                 "distinct_approvers": True},
}
#: The policy a proposal of a risk level no policy names (another tool wrote it) is held to.
STRICTEST_RISK = "critical"
