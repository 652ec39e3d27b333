-- 0004: promotion backed by evidence, for every writer (this package, the
-- sqlite3 shell, other tools).  A proposal starts drafted; it is validated
-- only when its latest validation (and the latest by each validator its risk
-- level's policy names) passed build, lint, test and policy; approved only
-- with the approvals its policy requires given since that validation and no
-- rejection standing (an approver's standing decision of a type is their
-- latest); promoted only after all that still holds and its latest deployment,
-- made since those approvals, succeeded; rejected (from any status but
-- rejected) only on a standing rejection, a failed latest validation or a
-- failed or rolled-back latest deployment.  Recording a rolled-back deployment
-- takes a promoted proposal back to approved.  Evidence is dated: an ISO-8601
-- time, not in the future (5 minutes of clock skew allowed), not before the
-- proposal was created; a status's time never goes back; what a proposal
-- proposes is fixed once it leaves drafted, and its id always.  The policy is data (versions per risk
-- level, never changed in place) and every status a proposal takes is written
-- to _runtime_proposal_decisions with the evidence behind it.
-- docs/runtime.md, "Promotion".

CREATE TABLE IF NOT EXISTS _runtime_promotion_policy (
  risk_level TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 1),
  validators_json TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(validators_json) AND json_type(validators_json) = 'array'),
  approval_types_json TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(approval_types_json) AND json_type(approval_types_json) = 'array'),
  min_approvals INTEGER NOT NULL CHECK (typeof(min_approvals) = 'integer' AND min_approvals >= 0),
  distinct_approvers INTEGER NOT NULL CHECK (distinct_approvers IN (0, 1)),
  set_at TEXT NOT NULL,
  set_by TEXT NOT NULL,
  rationale TEXT,
  PRIMARY KEY (risk_level, version)
);

CREATE TABLE IF NOT EXISTS _runtime_proposal_decisions (
  seq INTEGER PRIMARY KEY,
  proposal_id TEXT NOT NULL,
  from_status TEXT,
  to_status TEXT NOT NULL,
  risk_level TEXT,
  policy_version INTEGER,
  evidence_json TEXT NOT NULL,
  decided_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_decisions_proposal ON _runtime_proposal_decisions(proposal_id, seq);

INSERT OR IGNORE INTO _runtime_promotion_policy (risk_level, version, validators_json, approval_types_json, min_approvals, distinct_approvers, set_at, set_by, rationale) VALUES
  ('low', 1, '[]', '[]', 1, 0, '1970-01-01T00:00:00.000000Z', 'chronoledger', 'default policy'),
  ('medium', 1, '[]', '["human"]', 1, 0, '1970-01-01T00:00:00.000000Z', 'chronoledger', 'default policy'),
  ('high', 1, '["ci"]', '["human"]', 1, 0, '1970-01-01T00:00:00.000000Z', 'chronoledger', 'default policy'),
  ('critical', 1, '["ci"]', '["human","security"]', 2, 1, '1970-01-01T00:00:00.000000Z', 'chronoledger', 'default policy');

-- the policy in force for each risk level: its latest version
CREATE VIEW IF NOT EXISTS _runtime_current_policy AS
SELECT p.* FROM _runtime_promotion_policy p
WHERE p.version = (SELECT max(q.version) FROM _runtime_promotion_policy q WHERE q.risk_level = p.risk_level);

-- each approver's latest decision of each type on each proposal
CREATE VIEW IF NOT EXISTS _runtime_standing_approvals AS
SELECT a.rowid AS seq, a.* FROM approvals a
WHERE NOT EXISTS (SELECT 1 FROM approvals b WHERE b.proposal_id = a.proposal_id AND b.approver = a.approver
                  AND b.approval_type = a.approval_type
                  AND (coalesce(julianday(b.decided_at), -1) > coalesce(julianday(a.decided_at), -1)
                       OR (coalesce(julianday(b.decided_at), -1) = coalesce(julianday(a.decided_at), -1)
                           AND b.rowid > a.rowid)));

-- the approvals that count: standing, approved, and given at or after the proposal's latest validation
CREATE VIEW IF NOT EXISTS _runtime_counted_approvals AS
SELECT s.* FROM _runtime_standing_approvals s
WHERE s.decision = 'approved'
  AND coalesce(julianday(s.decided_at), -1) >= coalesce(
        (SELECT julianday(v.validated_at) FROM validation_results v WHERE v.proposal_id = s.proposal_id
         ORDER BY julianday(v.validated_at) DESC, v.rowid DESC LIMIT 1), -1);

-- evidence is dated: an ISO-8601 time, not in the future, not before the proposal was created
CREATE TRIGGER IF NOT EXISTS chk_validation_time BEFORE INSERT ON validation_results
WHEN typeof(NEW.validated_at) IS NOT 'text' OR NEW.validated_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'
  OR julianday(NEW.validated_at) IS NULL OR julianday(NEW.validated_at) > julianday('now') + 5.0 / 1440
  OR julianday(NEW.validated_at) < (SELECT julianday(created_at) FROM skill_to_logic_proposals WHERE id = NEW.proposal_id)
BEGIN SELECT RAISE(ABORT, 'validation_results.validated_at: must be an ISO-8601 time, not in the future and not before the proposal was created'); END;
CREATE TRIGGER IF NOT EXISTS chk_approval_time BEFORE INSERT ON approvals
WHEN typeof(NEW.decided_at) IS NOT 'text' OR NEW.decided_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'
  OR julianday(NEW.decided_at) IS NULL OR julianday(NEW.decided_at) > julianday('now') + 5.0 / 1440
  OR julianday(NEW.decided_at) < (SELECT julianday(created_at) FROM skill_to_logic_proposals WHERE id = NEW.proposal_id)
BEGIN SELECT RAISE(ABORT, 'approvals.decided_at: must be an ISO-8601 time, not in the future and not before the proposal was created'); END;
CREATE TRIGGER IF NOT EXISTS chk_deploy_time BEFORE INSERT ON deploy_outcomes
WHEN typeof(NEW.deployed_at) IS NOT 'text' OR NEW.deployed_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'
  OR julianday(NEW.deployed_at) IS NULL OR julianday(NEW.deployed_at) > julianday('now') + 5.0 / 1440
  OR julianday(NEW.deployed_at) < (SELECT julianday(created_at) FROM skill_to_logic_proposals WHERE id = NEW.proposal_id)
BEGIN SELECT RAISE(ABORT, 'deploy_outcomes.deployed_at: must be an ISO-8601 time, not in the future and not before the proposal was created'); END;

-- a status's time never goes back, nor into the future
CREATE TRIGGER IF NOT EXISTS chk_proposal_status_time BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN NEW.status <> OLD.status AND NEW.updated_at IS NOT OLD.updated_at
 AND (julianday(NEW.updated_at) IS NULL OR julianday(NEW.updated_at) < julianday(OLD.updated_at)
      OR julianday(NEW.updated_at) > julianday('now') + 5.0 / 1440)
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.updated_at: a status change is dated at or after the one before it, and not in the future'); END;

-- the id never changes; what a proposal proposes is fixed once it leaves drafted
CREATE TRIGGER IF NOT EXISTS chk_proposal_fixed BEFORE UPDATE OF id, skill_id, risk_level, proposal_json, proposal_type, proposed_by, created_at ON skill_to_logic_proposals
WHEN NEW.id IS NOT OLD.id
  OR (OLD.status <> 'drafted' AND (NEW.skill_id IS NOT OLD.skill_id OR NEW.risk_level IS NOT OLD.risk_level
      OR NEW.proposal_json IS NOT OLD.proposal_json OR NEW.proposal_type IS NOT OLD.proposal_type
      OR NEW.proposed_by IS NOT OLD.proposed_by OR NEW.created_at IS NOT OLD.created_at))
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals: a proposal''s id never changes, and what it proposes (skill, type, payload, risk, author, creation time) is fixed once it leaves drafted; draft a new proposal'); END;

CREATE TRIGGER IF NOT EXISTS policy_no_update BEFORE UPDATE ON _runtime_promotion_policy
BEGIN SELECT RAISE(ABORT, '_runtime_promotion_policy: a policy is changed by adding a version, never in place'); END;
CREATE TRIGGER IF NOT EXISTS policy_no_delete BEFORE DELETE ON _runtime_promotion_policy
BEGIN SELECT RAISE(ABORT, '_runtime_promotion_policy: a policy is changed by adding a version, never in place'); END;
CREATE TRIGGER IF NOT EXISTS policy_next_version BEFORE INSERT ON _runtime_promotion_policy
WHEN NEW.version <> coalesce((SELECT max(version) FROM _runtime_promotion_policy WHERE risk_level = NEW.risk_level), 0) + 1
BEGIN SELECT RAISE(ABORT, '_runtime_promotion_policy: a new version of a risk level''s policy is the one after its latest'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON _runtime_proposal_decisions
BEGIN SELECT RAISE(ABORT, '_runtime_proposal_decisions is an append-only audit table: rows cannot be updated'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON _runtime_proposal_decisions
BEGIN SELECT RAISE(ABORT, '_runtime_proposal_decisions is an append-only audit table: rows cannot be deleted'); END;

DROP TRIGGER IF EXISTS chk_proposal_transition;
CREATE TRIGGER IF NOT EXISTS chk_proposal_move BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN NEW.status <> OLD.status AND NOT ((OLD.status = 'drafted' AND NEW.status IN ('validated', 'rejected')) OR (OLD.status = 'validated' AND NEW.status IN ('approved', 'rejected')) OR (OLD.status = 'approved' AND NEW.status IN ('promoted', 'rejected')) OR (OLD.status = 'promoted' AND NEW.status IN ('approved', 'rejected')))
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: illegal transition; allowed: drafted -> validated, rejected; validated -> approved, rejected; approved -> promoted, rejected; promoted -> approved (a rolled-back deployment), rejected'); END;

CREATE TRIGGER IF NOT EXISTS chk_proposal_starts_drafted BEFORE INSERT ON skill_to_logic_proposals
WHEN NEW.status IN ('validated', 'rejected', 'approved', 'promoted')
 AND NOT EXISTS (SELECT 1 FROM skill_to_logic_proposals WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: a proposal starts drafted; validated, approved and promoted are reached with evidence'); END;

-- each rule applies to the legal moves it backs (chk_proposal_move refuses the rest)

-- validated, approved, promoted: the latest validation passed
CREATE TRIGGER IF NOT EXISTS chk_proposal_validation BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN ((NEW.status = 'validated' AND OLD.status = 'drafted') OR (NEW.status = 'approved' AND OLD.status = 'validated') OR (NEW.status = 'promoted' AND OLD.status = 'approved'))
 AND coalesce((SELECT build_pass = 1 AND lint_pass = 1 AND test_pass = 1 AND policy_pass = 1 FROM validation_results
               WHERE proposal_id = NEW.id ORDER BY julianday(validated_at) DESC, rowid DESC LIMIT 1), 0) = 0
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: needs a passing validation: the latest validation of the proposal must pass build, lint, test and policy'); END;

-- ... and the latest by each validator the policy names
CREATE TRIGGER IF NOT EXISTS chk_proposal_validators BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN ((NEW.status = 'validated' AND OLD.status = 'drafted') OR (NEW.status = 'approved' AND OLD.status = 'validated') OR (NEW.status = 'promoted' AND OLD.status = 'approved'))
 AND EXISTS (SELECT 1 FROM json_each(coalesce(
        (SELECT validators_json FROM _runtime_current_policy WHERE risk_level = NEW.risk_level),
        (SELECT validators_json FROM _runtime_current_policy WHERE risk_level = 'critical'), '[]')) k
     WHERE coalesce((SELECT build_pass = 1 AND lint_pass = 1 AND test_pass = 1 AND policy_pass = 1 FROM validation_results
                     WHERE proposal_id = NEW.id AND validator = k.value
                     ORDER BY julianday(validated_at) DESC, rowid DESC LIMIT 1), 0) = 0)
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: needs a passing validation by each validator the policy for its risk level names (_runtime_promotion_policy.validators_json)'); END;

-- approved, promoted: no rejection stands
CREATE TRIGGER IF NOT EXISTS chk_proposal_no_rejection BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN ((NEW.status = 'approved' AND OLD.status = 'validated') OR (NEW.status = 'promoted' AND OLD.status = 'approved'))
 AND EXISTS (SELECT 1 FROM _runtime_standing_approvals WHERE proposal_id = NEW.id AND decision = 'rejected')
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: a rejection stands (an approver''s latest decision is rejected); it can be rejected, or the approver can approve'); END;

-- ... each approval type the policy names has an approval standing
CREATE TRIGGER IF NOT EXISTS chk_proposal_approval_types BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN ((NEW.status = 'approved' AND OLD.status = 'validated') OR (NEW.status = 'promoted' AND OLD.status = 'approved'))
 AND EXISTS (SELECT 1 FROM json_each(coalesce(
        (SELECT approval_types_json FROM _runtime_current_policy WHERE risk_level = NEW.risk_level),
        (SELECT approval_types_json FROM _runtime_current_policy WHERE risk_level = 'critical'), '[]')) k
     WHERE NOT EXISTS (SELECT 1 FROM _runtime_counted_approvals WHERE proposal_id = NEW.id AND approval_type = k.value))
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: an approval type the policy for its risk level requires has no approval given since the latest validation (_runtime_promotion_policy.approval_types_json)'); END;

-- ... and enough of them (from different people where the policy says so)
CREATE TRIGGER IF NOT EXISTS chk_proposal_approval_count BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN ((NEW.status = 'approved' AND OLD.status = 'validated') OR (NEW.status = 'promoted' AND OLD.status = 'approved'))
 AND (SELECT CASE WHEN coalesce(p.distinct_approvers, 1) = 1
                  THEN (SELECT count(DISTINCT lower(trim(approver))) FROM _runtime_counted_approvals WHERE proposal_id = NEW.id)
                  ELSE (SELECT count(*) FROM _runtime_counted_approvals WHERE proposal_id = NEW.id) END
             < coalesce(p.min_approvals, 1)
      FROM (SELECT NULL AS none) LEFT JOIN _runtime_current_policy p
        ON p.risk_level = coalesce((SELECT risk_level FROM _runtime_current_policy WHERE risk_level = NEW.risk_level), 'critical'))
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: fewer approvals given since the latest validation than the policy for its risk level requires (_runtime_promotion_policy.min_approvals, distinct_approvers)'); END;

-- promoted: the latest deployment succeeded
CREATE TRIGGER IF NOT EXISTS chk_proposal_deployed BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN NEW.status = 'promoted' AND OLD.status = 'approved'
 AND (SELECT status FROM deploy_outcomes WHERE proposal_id = NEW.id ORDER BY julianday(deployed_at) DESC, rowid DESC LIMIT 1) IS NOT 'succeeded'
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: promoted needs a succeeded deployment as the proposal''s latest deploy outcome'); END;

-- ... made at or after the approvals that count
CREATE TRIGGER IF NOT EXISTS chk_proposal_deployed_after BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN NEW.status = 'promoted' AND OLD.status = 'approved'
 AND coalesce((SELECT julianday(deployed_at) FROM deploy_outcomes WHERE proposal_id = NEW.id ORDER BY julianday(deployed_at) DESC, rowid DESC LIMIT 1), -1)
     < coalesce((SELECT max(julianday(decided_at)) FROM _runtime_counted_approvals WHERE proposal_id = NEW.id), -1)
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: promoted needs its deployment made at or after the approvals that count'); END;

-- promoted -> approved: only by a rolled-back latest deployment
CREATE TRIGGER IF NOT EXISTS chk_proposal_rollback BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN OLD.status = 'promoted' AND NEW.status = 'approved'
 AND (SELECT status FROM deploy_outcomes WHERE proposal_id = NEW.id ORDER BY julianday(deployed_at) DESC, rowid DESC LIMIT 1) IS NOT 'rolled_back'
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: a promoted proposal goes back to approved only when its latest deployment is rolled back'); END;

-- rejected: on evidence of a rejection
CREATE TRIGGER IF NOT EXISTS chk_proposal_rejected BEFORE UPDATE OF status ON skill_to_logic_proposals
WHEN NEW.status = 'rejected' AND OLD.status IN ('drafted', 'validated', 'approved', 'promoted')
 AND NOT EXISTS (SELECT 1 FROM _runtime_standing_approvals WHERE proposal_id = NEW.id AND decision = 'rejected')
 AND coalesce((SELECT build_pass = 1 AND lint_pass = 1 AND test_pass = 1 AND policy_pass = 1 FROM validation_results
               WHERE proposal_id = NEW.id ORDER BY julianday(validated_at) DESC, rowid DESC LIMIT 1), 1) = 1
 AND coalesce((SELECT status FROM deploy_outcomes WHERE proposal_id = NEW.id ORDER BY julianday(deployed_at) DESC, rowid DESC LIMIT 1), '') NOT IN ('failed', 'rolled_back')
BEGIN SELECT RAISE(ABORT, 'skill_to_logic_proposals.status: rejected needs a standing rejection, a failed latest validation or a failed or rolled-back latest deployment'); END;

-- a rolled-back deployment (the latest) takes a promoted proposal back to approved
CREATE TRIGGER IF NOT EXISTS deploy_rollback AFTER INSERT ON deploy_outcomes
WHEN NEW.status = 'rolled_back'
BEGIN
  UPDATE skill_to_logic_proposals SET status = 'approved',
    updated_at = CASE WHEN julianday(NEW.deployed_at) >= julianday(updated_at) THEN NEW.deployed_at ELSE updated_at END
  WHERE id = NEW.proposal_id AND status = 'promoted'
    AND NEW.id = (SELECT id FROM deploy_outcomes WHERE proposal_id = NEW.proposal_id
                  ORDER BY julianday(deployed_at) DESC, rowid DESC LIMIT 1);
END;

-- every status a proposal takes, with what backs it
CREATE TRIGGER IF NOT EXISTS decision_on_create AFTER INSERT ON skill_to_logic_proposals
BEGIN
  INSERT INTO _runtime_proposal_decisions (proposal_id, from_status, to_status, risk_level, policy_version, evidence_json, decided_at)
  VALUES (NEW.id, NULL, NEW.status, NEW.risk_level,
          (SELECT version FROM _runtime_current_policy WHERE risk_level = coalesce(
             (SELECT risk_level FROM _runtime_current_policy WHERE risk_level = NEW.risk_level), 'critical')),
          '{}', NEW.created_at);
END;
CREATE TRIGGER IF NOT EXISTS decision_on_status AFTER UPDATE OF status ON skill_to_logic_proposals
WHEN NEW.status <> OLD.status
BEGIN
  INSERT INTO _runtime_proposal_decisions (proposal_id, from_status, to_status, risk_level, policy_version, evidence_json, decided_at)
  VALUES (NEW.id, OLD.status, NEW.status, NEW.risk_level,
          (SELECT version FROM _runtime_current_policy WHERE risk_level = coalesce(
             (SELECT risk_level FROM _runtime_current_policy WHERE risk_level = NEW.risk_level), 'critical')),
          json_object(
            'validation', (SELECT id FROM validation_results WHERE proposal_id = NEW.id ORDER BY julianday(validated_at) DESC, rowid DESC LIMIT 1),
            'approvals', json((SELECT json_group_array(id) FROM (SELECT id FROM _runtime_counted_approvals WHERE proposal_id = NEW.id ORDER BY seq))),
            'rejections', json((SELECT json_group_array(id) FROM (SELECT id FROM _runtime_standing_approvals WHERE proposal_id = NEW.id AND decision = 'rejected' ORDER BY seq))),
            'deploy', (SELECT id FROM deploy_outcomes WHERE proposal_id = NEW.id ORDER BY julianday(deployed_at) DESC, rowid DESC LIMIT 1)),
          CASE WHEN NEW.updated_at IS NOT OLD.updated_at THEN NEW.updated_at ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END);
END;
