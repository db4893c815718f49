-- Undo step 8. Jobs still pending in a workflow are deleted: without the
-- workflow tables nothing would ever start them.
DROP VIEW pgq.workflow_steps;
DROP TRIGGER jobs_workflow_finished ON pgq.jobs;
DROP TRIGGER jobs_workflow_counted ON pgq.jobs;
DROP TRIGGER jobs_workflow_deleted ON pgq.jobs;
DROP FUNCTION pgq.workflow_job_deleted();
DROP FUNCTION pgq.workflow_job_finished();
DROP FUNCTION pgq.workflow_jobs_counted();
DROP FUNCTION pgq.workflow_run(bigint);
DROP FUNCTION pgq.workflow_flush();
DROP FUNCTION pgq.workflow_count(bigint);
DROP FUNCTION pgq.workflow_continue(bigint, bigint, text, text, integer, boolean, jsonb);
DROP FUNCTION pgq.workflow_input(bigint);
DROP FUNCTION pgq.workflow_fail(bigint, text, jsonb);
DROP FUNCTION pgq.workflow_succeed(bigint, jsonb);
DROP FUNCTION pgq.workflow_callbacks(bigint, text, jsonb);
DROP FUNCTION pgq.workflow_start(bigint, jsonb);
DROP TABLE pgq.workflow_nodes;
DELETE FROM pgq.jobs WHERE state = 'pending';
ALTER TABLE pgq.jobs DROP CONSTRAINT jobs_state_known;
ALTER TABLE pgq.jobs ADD CONSTRAINT jobs_state_known
    CHECK (state IN ('scheduled', 'available', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'));
COMMENT ON TABLE pgq.jobs IS 'One row per job. States: scheduled, available, running, retrying (waiting), succeeded, failed, cancelled (finished).';
