"""Promotion backed by evidence (issue 19, part 1): every move of a
skill-to-logic proposal needs what it claims, under a policy that is data,
in Python (a message naming what is missing) and in the database (triggers
any writer meets), with every decision in the audit trail."""

from __future__ import annotations

import random
import sqlite3

import apsw
import pytest

from chronoledger.errors import ValidationError
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.runtime.vocab import DEFAULT_POLICY


def at(minute: int, second: str = "00.000000Z") -> str:
    return f"2026-03-01T10:{minute:02d}:{second}"


@pytest.fixture
def store(tmp_path):
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        yield s


def proposal(s, risk="critical", key="retry.locked_file"):
    skill = s.record_skill(key, "retry", "conversation", 0.9, learned_at=at(0))
    return s.create_proposal(skill["id"], "oxide", "code_patch", {"retry": 3}, risk, created_at=at(1))["id"]


def passing(s, pid, validator="ci", when=None):
    return s.record_validation(pid, validator, build_pass=True, lint_pass=True, test_pass=True, policy_pass=True,
                               validated_at=when)


def raw_update(path, pid, status):
    """The move as another program makes it: plain SQL on a connection of its own (apsw's SQLite: a second
    copy of SQLite in one process does not see the store's writes; docs/runtime.md)."""
    con = apsw.Connection(str(path))
    try:
        con.execute("UPDATE skill_to_logic_proposals SET status = ? WHERE id = ?", (status, pid))
    finally:
        con.close()


def status_of(s, pid):
    return s.proposal_lineage(pid)["proposal"]["status"]


def test_the_issues_three_illegal_promotions_are_refused_in_python_and_in_sql(store):
    pid = proposal(store)
    # a validation with build, lint, test and policy all failed
    store.record_validation(pid, "ci", build_pass=False, lint_pass=False, test_pass=False, policy_pass=False,
                            validated_at=at(2))
    with pytest.raises(ValidationError, match=r"drafted -> validated needs a passing latest validation \(validation "
                                              r"\S+ by ci at \S+ failed build, lint, test, policy\)"):
        store.set_proposal_status(pid, "validated")
    with pytest.raises(apsw.ConstraintError, match="needs a passing validation"):
        raw_update(store.path, pid, "validated")
    assert status_of(store, pid) == "drafted"

    passing(store, pid, when=at(3))
    store.set_proposal_status(pid, "validated")
    # an approval with decision rejected
    store.record_approval(pid, "alice", "human", "rejected", decided_at=at(4))
    with pytest.raises(ValidationError, match=r"no standing rejection \(human approval \S+ by alice: rejected\)"):
        store.set_proposal_status(pid, "approved")
    # several rules fail here (no approval stands either); SQLite names the first trigger that fires
    with pytest.raises(apsw.ConstraintError, match="a rejection stands|fewer approvals given|an approval type"):
        raw_update(store.path, pid, "approved")
    assert status_of(store, pid) == "validated"

    # alice changes her mind; security approves: a critical proposal's two approvals from two people
    store.record_approval(pid, "alice", "human", "approved", decided_at=at(5))
    store.record_approval(pid, "sam", "security", "approved", decided_at=at(6))
    store.set_proposal_status(pid, "approved")
    # a deploy outcome failed
    store.record_deploy_outcome(pid, "prod", "failed", deployed_at=at(7))
    with pytest.raises(ValidationError, match=r"approved -> promoted needs a succeeded deployment as its latest deploy "
                                              r"outcome \(the latest, \S+ to prod, failed\)"):
        store.set_proposal_status(pid, "promoted")
    with pytest.raises(apsw.ConstraintError, match="promoted needs a succeeded deployment"):
        raw_update(store.path, pid, "promoted")
    assert status_of(store, pid) == "approved"


def test_a_proposal_with_no_evidence_cannot_be_promoted_or_created_promoted(store):
    pid = proposal(store)
    with pytest.raises(ValidationError, match=r"drafted -> validated needs a passing validation \(it has none\); "
                                              r"a passing validation by ci \(it has none\) \(risk critical"):
        store.set_proposal_status(pid, "validated")
    with pytest.raises(ValidationError, match="drafted -> promoted is not allowed"):
        store.set_proposal_status(pid, "promoted")
    con = apsw.Connection(str(store.path))
    with pytest.raises(apsw.ConstraintError, match="a proposal starts drafted"):
        con.execute("INSERT INTO skill_to_logic_proposals (id, skill_id, proposed_by, proposal_type, proposal_json, "
                    "risk_level, status, created_at, updated_at) SELECT 'p2', skill_id, 'oxide', 'code_patch', '{}', "
                    "'low', 'promoted', 'x', 'x' FROM skill_to_logic_proposals")
    con.close()


def test_critical_needs_a_human_and_a_security_approval_from_two_people(store):
    pid = proposal(store)
    passing(store, pid)
    store.set_proposal_status(pid, "validated")
    store.record_approval(pid, "alice", "human", "approved")
    with pytest.raises(ValidationError, match=r"needs a security approval; 2 approvals from different people "
                                              r"\(it has 1: human by alice\) \(risk critical: policy version 1 asks "
                                              r"for a passing validation by ci; a human approval and a security "
                                              r"approval; at least 2 approvals from different people\)"):
        store.set_proposal_status(pid, "approved")
    store.record_approval(pid, "alice", "security", "approved")        # the same person twice is one
    with pytest.raises(ValidationError, match=r"needs 2 approvals from different people \(it has 1"):
        store.set_proposal_status(pid, "approved")
    with pytest.raises(apsw.ConstraintError, match="fewer approvals given"):
        raw_update(store.path, pid, "approved")
    store.record_approval(pid, "sam", "security", "approved")
    assert store.set_proposal_status(pid, "approved")["status"] == "approved"


def test_a_validator_the_policy_names_must_pass_too(store):
    pid = proposal(store, "high")
    passing(store, pid, "human")                   # high risk: ci must have validated it
    with pytest.raises(ValidationError, match=r"a passing validation by ci \(it has none\)"):
        store.set_proposal_status(pid, "validated")
    with pytest.raises(apsw.ConstraintError, match="by each validator the policy"):
        raw_update(store.path, pid, "validated")
    passing(store, pid, "ci")
    store.set_proposal_status(pid, "validated")


def test_the_policy_is_data_versioned_and_named_by_each_decision(store):
    assert {r: {k: p[k] for k in DEFAULT_POLICY[r]} for r, p in store.promotion_policy().items()} == DEFAULT_POLICY
    pid = proposal(store, "low")
    passing(store, pid)
    store.set_proposal_status(pid, "validated")
    new = store.set_promotion_policy("low", set_by="ops", approval_types=["ops"], min_approvals=1,
                                     rationale="low-risk patches still need ops")
    assert new["version"] == 2 and new["approval_types"] == ["ops"] and new["set_by"] == "ops"
    store.record_approval(pid, "oxide", "policy", "approved")
    with pytest.raises(ValidationError, match=r"needs a ops approval \(risk low: policy version 2"):
        store.set_proposal_status(pid, "approved")
    with pytest.raises(apsw.ConstraintError, match="an approval type the policy"):
        raw_update(store.path, pid, "approved")
    store.record_approval(pid, "olga", "ops", "approved")
    store.set_proposal_status(pid, "approved")
    decisions = store.proposal_decisions(pid)
    assert [(d["from_status"], d["to_status"], d["policy_version"]) for d in decisions] == [
        (None, "drafted", 1), ("drafted", "validated", 1), ("validated", "approved", 2)]
    assert len(decisions[-1]["evidence"]["approvals"]) == 2 and decisions[-1]["evidence"]["validation"]
    # a policy is never changed in place, by anyone
    con = apsw.Connection(str(store.path))
    for sql in ("UPDATE _runtime_promotion_policy SET min_approvals = 0", "DELETE FROM _runtime_promotion_policy",
                "UPDATE _runtime_proposal_decisions SET to_status = 'promoted'",
                "DELETE FROM _runtime_proposal_decisions"):
        with pytest.raises(apsw.ConstraintError, match="never in place|append-only"):
            con.execute(sql)
    con.close()
    with pytest.raises(ValidationError, match=r"approval_types\[0\]: 'boss' is not allowed"):
        store.set_promotion_policy("low", set_by="ops", approval_types=["boss"])
    assert store.promotion_policy()["low"]["version"] == 2


def test_a_rolled_back_deployment_takes_a_promoted_proposal_back_to_approved(store):
    pid = proposal(store, "medium")
    passing(store, pid, when=at(3))
    store.set_proposal_status(pid, "validated")
    store.record_approval(pid, "alice", "human", "approved", decided_at=at(5))
    store.set_proposal_status(pid, "approved")
    store.record_deploy_outcome(pid, "prod", "succeeded", deployment_id="d1", deployed_at=at(10))
    store.set_proposal_status(pid, "promoted")
    # a rollback recorded with an earlier time is not the latest outcome: it changes nothing
    store.record_deploy_outcome(pid, "prod", "rolled_back", deployed_at=at(9))
    assert status_of(store, pid) == "promoted"
    back = store.record_deploy_outcome(pid, "prod", "rolled_back", deployment_id="d1", deployed_at=at(11))
    assert status_of(store, pid) == "approved"
    last = store.proposal_decisions(pid)[-1]
    assert (last["from_status"], last["to_status"], last["evidence"]["deploy"]) == ("promoted", "approved", back["id"])
    with pytest.raises(ValidationError, match=r"approved -> promoted needs a succeeded deployment .*rolled_back"):
        store.set_proposal_status(pid, "promoted")
    store.record_deploy_outcome(pid, "prod", "succeeded", deployment_id="d2", deployed_at=at(12))
    store.set_proposal_status(pid, "promoted")
    # promoted -> approved by hand needs the rollback
    with pytest.raises(ValidationError, match="needs a rolled-back deployment as its latest deploy outcome"):
        store.set_proposal_status(pid, "approved")
    with pytest.raises(apsw.ConstraintError, match="only when its latest deployment is rolled back"):
        raw_update(store.path, pid, "approved")


def test_rejection_needs_evidence_and_the_lineage_says_what_a_status_lacks(tmp_path, store):
    pid = proposal(store, "low")
    with pytest.raises(ValidationError, match="drafted -> rejected needs evidence of a rejection"):
        store.set_proposal_status(pid, "rejected")
    store.record_validation(pid, "ci", build_pass=True, lint_pass=False, test_pass=True, policy_pass=True)
    store.set_proposal_status(pid, "rejected")
    assert store.proposal_lineage(pid)["status_lacks"] == []
    # a status set without evidence by a program that wrote the plain v1 schema (as ToM's store does)
    p = tmp_path / "tom.sqlite"
    con = sqlite3.connect(p)
    from chronoledger.runtime.enforcement import spec_ddl
    con.executescript(spec_ddl())
    con.executescript("""
        INSERT INTO skills_learned VALUES ('s1', 'k', 'd', 'doc', NULL, 0.5, '2026-02-18T14:52:59.123Z', 'active', '{}');
        INSERT INTO skill_to_logic_proposals VALUES ('p1', 's1', 'oxide', 'code_patch', '{}', NULL, 'critical',
            'promoted', '2026-02-18T14:53:00.000Z', '2026-02-18T14:53:00.000Z');""")
    con.commit()
    con.close()
    with RuntimeMemoryStore(p, readonly=True) as s:
        lin = s.proposal_lineage("p1")
    assert lin["decisions"] == [] and lin["status_lacks"][0].startswith("a passing validation (it has none)")
    assert any("succeeded deployment" in x for x in lin["status_lacks"])


def _dated_ok(when: str) -> bool:
    """Whether migration 0004 takes ``when`` as evidence's time (an ISO time, not before the proposals' creation)."""
    return when[:4].isdigit() and at(1) <= when < "2100"


def test_python_and_the_triggers_agree_on_every_move(store):
    """Random evidence in random order (times in several ISO forms, ties,
    milliseconds that only SQLite's rounding tells apart), random moves:
    whenever Python allows a move the database does, and whenever Python
    refuses one the database refuses it too."""
    rng = random.Random(19)
    times = [at(2), at(2, "00.000400Z"), at(2, "00.001Z"), "2026-03-01T11:02:00.000+01:00", at(3), at(3, "00.5Z"),
             at(4), "not a time", at(0), "2999-01-01T00:00:00Z"]
    statuses = ["validated", "approved", "promoted", "rejected"]
    moves = {"allowed": 0, "refused": 0}
    for case in range(60):
        risk = rng.choice(["low", "medium", "high", "critical"])
        pid = proposal(store, risk, f"skill {case}")
        for _ in range(14):
            op = rng.random()
            when = rng.choice(times)
            if op < 0.6 and not _dated_ok(when):
                with pytest.raises(apsw.ConstraintError, match="must be an ISO-8601 time"):
                    store._conn.execute("INSERT INTO approvals (id, proposal_id, approver, approval_type, decision, "
                                        "decided_at) VALUES (?, ?, 'ann', 'human', 'approved', ?)",
                                        (f"x{case}-{_}", pid, when))
                continue
            if op < 0.25:
                flags = [rng.random() < 0.8 for _ in range(4)]
                store._conn.execute(
                    "INSERT INTO validation_results (id, proposal_id, validator, build_pass, lint_pass, test_pass, "
                    "policy_pass, validated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (f"v{case}-{_}", pid, rng.choice(["ci", "human", "oxide"]), *map(int, flags), when))
            elif op < 0.5:
                store._conn.execute(
                    "INSERT INTO approvals (id, proposal_id, approver, approval_type, decision, decided_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (f"a{case}-{_}", pid, rng.choice(["ann", "bo"]), rng.choice(["human", "security", "ops", "policy"]),
                     rng.choice(["approved", "approved", "rejected"]), when))
            elif op < 0.6:
                store._conn.execute(
                    "INSERT INTO deploy_outcomes (id, proposal_id, deployment_target, status, deployed_at) "
                    "VALUES (?, ?, 'prod', ?, ?)",
                    (f"d{case}-{_}", pid, rng.choice(["succeeded", "succeeded", "failed", "rolled_back"]), when))
            else:
                target = rng.choice(statuses)
                lacks = store.promotion_check(pid, target)
                before = status_of(store, pid)
                if before == target:
                    continue
                if not lacks:
                    assert store.set_proposal_status(pid, target)["status"] == target
                    moves["allowed"] += 1
                else:
                    with pytest.raises(apsw.ConstraintError):
                        store._conn.execute("UPDATE skill_to_logic_proposals SET status = ? WHERE id = ?",
                                            (target, pid))
                    assert status_of(store, pid) == before
                    moves["refused"] += 1
    assert moves["allowed"] > 30 and moves["refused"] > 100, moves


def test_what_a_proposal_proposes_is_fixed_once_it_leaves_drafted_and_its_id_always(store):
    pid = proposal(store)
    con = apsw.Connection(str(store.path))
    con.execute("UPDATE skill_to_logic_proposals SET risk_level = 'low' WHERE id = ?", (pid,))   # drafted: may change
    passing(store, pid)
    store.set_proposal_status(pid, "validated")
    for sql in ("UPDATE skill_to_logic_proposals SET risk_level = 'critical'",
                "UPDATE skill_to_logic_proposals SET proposal_json = '{\"retry\": 99}'",
                "UPDATE skill_to_logic_proposals SET id = 'fresh'"):
        with pytest.raises(apsw.ConstraintError, match="fixed once it leaves drafted"):
            con.execute(sql)
    con.close()
    assert store.proposal_lineage(pid)["proposal"]["risk_level"] == "low"


def test_evidence_is_dated_not_in_the_future_nor_before_the_proposal(store):
    pid = proposal(store)                      # created at 10:01
    with pytest.raises(ValidationError, match=r"validation_results.validated_at: 9999-01-01T00:00:00.000000Z is in the future"):
        store.record_validation(pid, "ci", build_pass=True, lint_pass=True, test_pass=True, policy_pass=True,
                                validated_at="9999-01-01T00:00:00Z")
    with pytest.raises(ValidationError, match=r"approvals.decided_at: \S+ is before proposal \S+ was created"):
        store.record_approval(pid, "alice", "human", "approved", decided_at=at(0))
    con = apsw.Connection(str(store.path))
    for sql, when in [("INSERT INTO deploy_outcomes (id, proposal_id, deployment_target, status, deployed_at) "
                       "VALUES ('d', ?, 'prod', 'succeeded', ?)", w) for w in ("9999-01-01T00:00:00Z", "now",
                                                                               "garbage", 2460000.5, at(0))]:
        with pytest.raises(apsw.ConstraintError, match="must be an ISO-8601 time, not in the future"):
            con.execute(sql, (pid, when))
    con.close()


def test_approvals_count_from_the_latest_validation_and_the_deployment_after_them(store):
    pid = proposal(store, "medium")
    store.record_approval(pid, "alice", "human", "approved", decided_at=at(2))     # before any validation
    passing(store, pid, when=at(3))
    store.set_proposal_status(pid, "validated")
    with pytest.raises(ValidationError, match=r"needs a human approval; 1 approval \(it has 0\); approvals given "
                                              r"before the latest validation do not count \(human by alice"):
        store.set_proposal_status(pid, "approved")
    with pytest.raises(apsw.ConstraintError, match="given since the latest validation"):
        raw_update(store.path, pid, "approved")
    store.record_approval(pid, "alice", "human", "approved", decided_at=at(5))
    store.set_proposal_status(pid, "approved")
    store.record_deploy_outcome(pid, "prod", "succeeded", deployed_at=at(4))       # deployed before it was approved
    with pytest.raises(ValidationError, match="needs a deployment made at or after the approvals that count"):
        store.set_proposal_status(pid, "promoted")
    with pytest.raises(apsw.ConstraintError, match="deployment made at or after the approvals"):
        raw_update(store.path, pid, "promoted")
    store.record_deploy_outcome(pid, "prod", "succeeded", deployed_at=at(6))
    store.set_proposal_status(pid, "promoted")


def test_a_promoted_proposal_found_wanting_can_be_rejected(store):
    pid = proposal(store, "low")
    passing(store, pid, when=at(2))
    store.set_proposal_status(pid, "validated")
    store.record_approval(pid, "olga", "ops", "approved", decided_at=at(3))
    store.set_proposal_status(pid, "approved")
    store.record_deploy_outcome(pid, "prod", "succeeded", deployed_at=at(4))
    store.set_proposal_status(pid, "promoted")
    with pytest.raises(ValidationError, match="promoted -> rejected needs evidence of a rejection"):
        store.set_proposal_status(pid, "rejected")
    store.record_deploy_outcome(pid, "prod", "failed", deployed_at=at(5))
    assert store.proposal_lineage(pid)["status_lacks"]          # promoted, but its latest deployment failed
    assert store.set_proposal_status(pid, "rejected")["status"] == "rejected"
    assert [d["to_status"] for d in store.proposal_decisions(pid)][-2:] == ["promoted", "rejected"]


def test_a_status_time_never_goes_back(store):
    pid = proposal(store, "low")
    passing(store, pid, when=at(2))
    store.set_proposal_status(pid, "validated", updated_at=at(3))
    store.record_approval(pid, "olga", "ops", "approved", decided_at=at(4))
    with pytest.raises(ValidationError, match=r"updated_at: \S+ is before the proposal's last change"):
        store.set_proposal_status(pid, "approved", updated_at=at(2))
    con = apsw.Connection(str(store.path))
    with pytest.raises(apsw.ConstraintError, match="a status change is dated at or after the one before it"):
        con.execute("UPDATE skill_to_logic_proposals SET status = 'approved', updated_at = ? WHERE id = ?",
                    (at(2), pid))
    con.close()
    store.set_proposal_status(pid, "approved", updated_at=at(4))


def test_two_spellings_of_one_approver_are_one_person(store):
    pid = proposal(store)                         # critical: two approvals from different people
    passing(store, pid, when=at(2))
    store.set_proposal_status(pid, "validated")
    store.record_approval(pid, "alice", "human", "approved", decided_at=at(3))
    store.record_approval(pid, "Alice ", "security", "approved", decided_at=at(4))
    with pytest.raises(ValidationError, match=r"2 approvals from different people \(it has 1"):
        store.set_proposal_status(pid, "approved")
    with pytest.raises(apsw.ConstraintError, match="fewer approvals given"):
        raw_update(store.path, pid, "approved")


def test_a_decision_under_the_strictest_policy_names_its_version(tmp_path):
    from chronoledger.runtime.enforcement import spec_ddl
    p = tmp_path / "v1.sqlite"
    con = sqlite3.connect(p)
    con.executescript(spec_ddl())
    con.execute("INSERT INTO skills_learned VALUES ('s1', 'k', 'd', 'doc', NULL, 0.5, '2026-01-01T00:00:00Z', "
                "'active', '{}')")
    con.execute("INSERT INTO skill_to_logic_proposals VALUES ('p1', 's1', 'oxide', 'code_patch', '{}', NULL, 'urgent', "
                "'drafted', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
    con.commit()
    con.close()
    with RuntimeMemoryStore(p) as s:             # adopted; the proposal's risk is none the policy knows
        s.record_validation("p1", "ci", build_pass=True, lint_pass=True, test_pass=True, policy_pass=True)
        s.set_proposal_status("p1", "validated")
        d = s.proposal_decisions("p1")[-1]
        assert (d["risk_level"], d["policy_version"]) == ("urgent", 1)
