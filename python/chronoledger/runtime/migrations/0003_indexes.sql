-- 0003: indexes for the v1 query set and the listings (replay, lineage,
-- workflow events, run paging); the specification's own are in 0001.

CREATE INDEX IF NOT EXISTS idx_sessions_started ON sessions(started_at, id);
CREATE INDEX IF NOT EXISTS idx_task_events_run ON task_events(workflow_run_id, created_at);
CREATE INDEX IF NOT EXISTS idx_task_events_step ON task_events(step_id);
CREATE INDEX IF NOT EXISTS idx_workflow_runs_started ON workflow_runs(started_at, id);
CREATE INDEX IF NOT EXISTS idx_workflow_runs_trigger ON workflow_runs(trigger_source, started_at);
CREATE INDEX IF NOT EXISTS idx_proposals_skill ON skill_to_logic_proposals(skill_id);
CREATE INDEX IF NOT EXISTS idx_proposals_created ON skill_to_logic_proposals(created_at, id);
CREATE INDEX IF NOT EXISTS idx_validation_proposal ON validation_results(proposal_id, validated_at);
CREATE INDEX IF NOT EXISTS idx_approvals_proposal ON approvals(proposal_id, decided_at);
CREATE INDEX IF NOT EXISTS idx_deploy_proposal ON deploy_outcomes(proposal_id, deployed_at);
