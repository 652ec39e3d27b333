"""What a skill-to-logic proposal needs before it may take a status: the
evidence rules of migration 0004, written once more in Python so that a
refusal says exactly what is missing (the database's triggers, which every
writer meets, can only say which rule failed).

Pure functions over rows already read: the store reads the proposal's
validations, approvals, deploy outcomes and the policy for its risk level in
the transaction that changes the status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from chronoledger.runtime.vocab import DEFAULT_POLICY, MOVES, ROLLBACK, STRICTEST_RISK


@dataclass(frozen=True)
class Policy:
    """What a risk level requires (one version of it)."""
    risk_level: str
    version: int
    validators: tuple[str, ...]         # each needs its latest validation passing
    approval_types: tuple[str, ...]     # each needs an approval standing
    min_approvals: int
    distinct_approvers: bool            # the approvals counted are of different people
    set_at: str = ""
    set_by: str = "chronoledger"
    rationale: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"risk_level": self.risk_level, "version": self.version, "validators": list(self.validators),
                "approval_types": list(self.approval_types), "min_approvals": self.min_approvals,
                "distinct_approvers": self.distinct_approvers, "set_at": self.set_at, "set_by": self.set_by,
                "rationale": self.rationale}

    def describe(self) -> str:
        parts = []
        if self.validators:
            parts.append("a passing validation by " + " and by ".join(self.validators))
        if self.approval_types:
            parts.append(" and ".join(f"a {t} approval" for t in self.approval_types))
        n = self.min_approvals
        if n:
            parts.append(f"at least {n} approval{'s' if n != 1 else ''}"
                         + (" from different people" if self.distinct_approvers and n > 1 else ""))
        return "; ".join(parts) or "nothing beyond a passing validation"


def default_policies() -> dict[str, Policy]:
    return {risk: Policy(risk, 1, tuple(p["validators"]), tuple(p["approval_types"]), p["min_approvals"],
                         p["distinct_approvers"], "1970-01-01T00:00:00.000000Z", "chronoledger", "default policy")
            for risk, p in DEFAULT_POLICY.items()}


def policy_for(policies: dict[str, Policy], risk_level: Any) -> Policy:
    """The policy a proposal of ``risk_level`` is held to: its own, or, for a
    risk level no policy names (another tool wrote it), the strictest."""
    got = policies.get(risk_level) if isinstance(risk_level, str) else None
    if got is not None:
        return got
    return policies.get(STRICTEST_RISK) or default_policies()[STRICTEST_RISK]


def _order(row: dict) -> tuple:
    """Rows in the order the triggers take them: by instant as SQLite reads
    it (``_jd``, julianday() of the row's time: milliseconds, any ISO form,
    NULL for what is not a time, which comes first), then by rowid (``_seq``)."""
    jd = row["_jd"]
    return (jd is not None, jd if jd is not None else 0.0, row["_seq"])


def latest(rows: Sequence[dict]) -> dict | None:
    """The latest of ``rows`` (read with ``_jd`` and ``_seq``)."""
    return max(rows, key=_order, default=None)


def passed(validation: dict | None) -> bool:
    return validation is not None and all(validation[k] == 1 for k in ("build_pass", "lint_pass", "test_pass",
                                                                       "policy_pass"))


def standing(approvals: Sequence[dict]) -> list[dict]:
    """Each approver's latest decision of each approval type, in the order they were recorded."""
    best: dict[tuple, dict] = {}
    for a in approvals:
        key = (a["approver"], a["approval_type"])
        if key not in best or _order(a) > _order(best[key]):
            best[key] = a
    return sorted(best.values(), key=lambda a: a["_seq"])


@dataclass
class Evidence:
    """What a proposal has, as its status rules read it."""
    validations: list[dict]
    approvals: list[dict]
    deploys: list[dict]

    def latest_validation(self, validator: str | None = None) -> dict | None:
        rows = self.validations if validator is None else [r for r in self.validations if r["validator"] == validator]
        return latest(rows)

    def latest_deploy(self) -> dict | None:
        return latest(self.deploys)


def _failing(row: dict) -> str:
    failed = [k[:-5] for k in ("build_pass", "lint_pass", "test_pass", "policy_pass") if row[k] != 1]
    return f"validation {row['id']} by {row['validator']} at {row['validated_at']} failed {', '.join(failed)}"


def _jd(row: dict | None) -> float:
    """A row's instant as the triggers compare it (NULL as the earliest)."""
    jd = None if row is None else row["_jd"]
    return -1.0 if jd is None else jd


def person(approver: Any) -> str:
    """An approver as the distinct-people rule counts them: SQLite's lower(trim()) (ASCII letters, spaces)."""
    text = approver if isinstance(approver, str) else str(approver)
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text.strip(" "))


def counted(ev: Evidence) -> list[dict]:
    """The approvals that count: standing, approved, given at or after the latest validation."""
    since = _jd(ev.latest_validation())
    return [a for a in standing(ev.approvals) if a["decision"] == "approved" and _jd(a) >= since]


def missing(status_from: str, status_to: str, ev: Evidence, policy: Policy) -> list[str]:
    """What the move ``status_from -> status_to`` lacks; empty when it is
    backed.  The same rules as migration 0004's triggers."""
    out: list[str] = []
    if status_from == status_to:
        return out
    allowed = MOVES.get(status_from, ())
    if status_to not in allowed:
        return [f"a legal move: from {status_from} it can go to {', '.join(allowed)}" if allowed else
                f"a legal move: {status_from} is final"]
    if (status_from, status_to) == ROLLBACK:
        dep = ev.latest_deploy()
        if dep is None or dep["status"] != "rolled_back":
            out.append("a rolled-back deployment as its latest deploy outcome"
                       + (f" (the latest, {dep['id']}, {dep['status']})" if dep else " (it has none)"))
        return out
    stand = standing(ev.approvals)
    rejections = [a for a in stand if a["decision"] == "rejected"]
    if status_to == "rejected":
        val, dep = ev.latest_validation(), ev.latest_deploy()
        if not rejections and (val is None or passed(val)) and (dep is None or dep["status"] not in ("failed",
                                                                                                    "rolled_back")):
            out.append("evidence of a rejection: a standing rejected approval, a failed latest validation, or a "
                       "failed or rolled-back latest deployment (record one first)")
        return out
    # validated, approved, promoted: the latest validation passes, and the latest by each named validator
    val = ev.latest_validation()
    if val is None:
        out.append("a passing validation (it has none)")
    elif not passed(val):
        out.append(f"a passing latest validation ({_failing(val)})")
    for who in policy.validators:
        mine = ev.latest_validation(who)
        if mine is None:
            out.append(f"a passing validation by {who} (it has none)")
        elif not passed(mine) and mine is not val:
            out.append(f"a passing latest validation by {who} ({_failing(mine)})")
    if status_to == "validated":
        return out
    if rejections:
        out.append("no standing rejection (" + "; ".join(f"{a['approval_type']} approval {a['id']} by "
                                                         f"{a['approver']}: rejected" for a in rejections)
                   + "); it can be rejected, or the approver can approve")
    approved = counted(ev)
    early = [a for a in stand if a["decision"] == "approved" and a not in approved]
    have = {a["approval_type"] for a in approved}
    short = len(out)
    for kind in policy.approval_types:
        if kind not in have:
            out.append(f"a {kind} approval")
    n = len({person(a["approver"]) for a in approved}) if policy.distinct_approvers else len(approved)
    if n < policy.min_approvals:
        out.append(f"{policy.min_approvals} approval{'s' if policy.min_approvals != 1 else ''}"
                   + (" from different people" if policy.distinct_approvers else "")
                   + f" (it has {n}"
                   + (": " + ", ".join(f"{a['approval_type']} by {a['approver']}" for a in approved) if approved
                      else "") + ")")
    if early and len(out) > short:
        out.append("approvals given before the latest validation do not count ("
                   + ", ".join(f"{a['approval_type']} by {a['approver']} at {a['decided_at']}" for a in early) + ")")
    if status_to == "promoted":
        dep = ev.latest_deploy()
        if dep is None or dep["status"] != "succeeded":
            out.append("a succeeded deployment as its latest deploy outcome"
                       + (f" (the latest, {dep['id']} to {dep['deployment_target']}, {dep['status']})" if dep
                          else " (it has none)"))
        elif approved and _jd(dep) < max(_jd(a) for a in approved):
            out.append(f"a deployment made at or after the approvals that count (the latest, {dep['id']}, was made "
                       f"at {dep['deployed_at']}, before them)")
    return out
