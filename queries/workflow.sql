-- Statements of workflows (package workflow, and the worker's access to a
-- step's input). The workflow logic itself runs in the database, in the
-- trigger and functions of migration 0008; see docs/workflow.md.

-- name: InsertWorkflowJobs :exec
-- Every job of a workflow, in one statement. The jobs that start at once
-- (ready: the first steps) are available, or scheduled after their
-- countdown, and their queues are woken at commit; the others are pending
-- until the trigger of migration 0008 starts them. The ids were reserved
-- with ReserveJobIDs. Options left NULL take the queue's defaults, as in
-- InsertJob.
WITH ins AS (
INSERT INTO pgq.jobs (
    id, task, queue, state, priority, args, meta, max_retries,
    retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
    run_at, expires_at, parent_id, root_id
)
SELECT r.id, r.task, r.queue,
       CASE WHEN NOT r.ready THEN 'pending'
            WHEN coalesce(r.eta, now() + make_interval(secs => coalesce(r.countdown_ms, 0) / 1000.0)) > now() THEN 'scheduled'
            ELSE 'available' END,
       coalesce(r.priority, d.priority, 0), r.args, r.meta,
       coalesce(r.max_retries, d.max_retries, 3),
       coalesce(r.retry_delay_ms, d.retry_delay_ms),
       coalesce(r.time_limit_ms, d.time_limit_ms),
       coalesce(r.soft_time_limit_ms, d.soft_time_limit_ms),
       r.ignore_result,
       CASE WHEN r.ready THEN coalesce(r.eta, now() + make_interval(secs => coalesce(r.countdown_ms, 0) / 1000.0))
            ELSE coalesce(r.eta, now()) END,
       coalesce(r.expires_at, now() + make_interval(secs => r.expires_in_ms / 1000.0)),
       r.parent_id, r.root_id
  FROM jsonb_to_recordset(@jobs::jsonb) AS r (
         id bigint, task text, queue text, priority smallint, args jsonb, meta jsonb,
         max_retries integer, retry_delay_ms integer, time_limit_ms integer,
         soft_time_limit_ms integer, ignore_result boolean, eta timestamptz,
         countdown_ms bigint, expires_at timestamptz, expires_in_ms bigint,
         parent_id bigint, root_id bigint, ready boolean)
  LEFT JOIN pgq.queues AS d ON d.name = r.queue
RETURNING queue, state
)
SELECT pg_notify('pgq.jobs', q.queue)
  FROM (SELECT DISTINCT ins.queue FROM ins WHERE ins.state <> 'pending') AS q;

-- name: InsertWorkflowNodes :exec
-- Every node of a workflow (tasks, chains, groups, chords, callbacks).
-- Nodes that start at once are inserted active (a group with its counter
-- set), so that starting them costs no second write.
INSERT INTO pgq.workflow_nodes (id, root_id, parent_id, role, position, kind, task, state, immutable,
                                callbacks, parent_kind, remaining, countdown_ms)
SELECT r.id, r.root_id, r.parent_id, r.role, r.position, r.kind, r.task, r.state, r.immutable,
       r.callbacks, r.parent_kind, r.remaining, r.countdown_ms
  FROM jsonb_to_recordset(@nodes::jsonb) AS r (
         id bigint, root_id bigint, parent_id bigint, role text, position integer,
         kind text, task text, state text, immutable boolean, callbacks boolean, parent_kind text,
         remaining integer, countdown_ms integer);

-- name: StartWorkflow :exec
-- Start a workflow's root when it was inserted pending (a workflow with an
-- empty group to start: that group succeeds at once, which the database
-- does); a root inserted active is left as it is.
SELECT pgq.workflow_run(@id::bigint);

-- name: WorkflowInput :one
-- What a step was started with (Job.ParentResult); NULL when nothing.
SELECT w.input FROM pgq.workflow_nodes AS w WHERE w.id = @id;

-- name: WorkflowRootOf :one
-- The workflow a node (or a job of a workflow) belongs to.
SELECT w.root_id FROM pgq.workflow_nodes AS w WHERE w.id = @id;

-- name: WorkflowNodes :many
-- Every node of a workflow with its job's state, parents before children.
SELECT w.id, w.parent_id, w.role, w.position, w.kind,
       coalesce(j.task, w.task, '')::text AS task,
       w.state AS node_state,
       coalesce(j.state, '')::text AS job_state,
       coalesce(j.attempt, 0)::integer AS attempt,
       w.remaining, w.failure, w.result, j.result AS job_result,
       w.created_at, coalesce(j.finished_at, w.finished_at) AS finished_at
  FROM pgq.workflow_nodes AS w
  LEFT JOIN pgq.jobs AS j ON j.id = w.id AND w.kind = 'task'
 WHERE w.root_id = @root_id
 ORDER BY w.id;
