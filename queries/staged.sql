-- name: StageJob :one
-- One job into pgq.staged_jobs (Options.Staged): the columns of InsertJob,
-- without the queue's defaults, which the move applies. With wake the
-- statement also sends the staged jobs' wake-up (delivered at commit);
-- without it the client sends it after the commit (queue/wake.go).
WITH job AS (
INSERT INTO pgq.staged_jobs (
    task, queue, state, priority, args, meta, max_retries,
    retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
    run_at, expires_at, mutex_key
) VALUES (
    @task::text, @queue::text, @state::text, sqlc.narg(priority)::smallint, @args::jsonb, @meta::jsonb,
    sqlc.narg(max_retries)::integer, sqlc.narg(retry_delay_ms)::integer,
    sqlc.narg(time_limit_ms)::integer, sqlc.narg(soft_time_limit_ms)::integer, @ignore_result::boolean,
    coalesce(sqlc.narg(run_at)::timestamptz, now() + make_interval(secs => @countdown_seconds::float8)),
    coalesce(sqlc.narg(expires_at)::timestamptz, now() + make_interval(secs => sqlc.narg(expires_in_seconds)::float8)),
    sqlc.narg(mutex_key)::text
)
RETURNING id, state, run_at
)
SELECT job.id, job.state, job.run_at
  FROM job LEFT JOIN LATERAL (SELECT pg_notify('pgq.jobs', '+staged') WHERE @wake::boolean) AS wake ON true;

-- name: MoveStagedJobs :many
-- Moves up to max_jobs staged jobs (only the one with id only_id, when
-- given) into pgq.jobs, in one statement: each job is either still staged
-- or in pgq.jobs, never both or neither. The queue's defaults fill the
-- options the producer left unset, as InsertJob does. SKIP LOCKED lets
-- several workers move side by side; each moved queue is woken (delivered
-- at commit), and the answer is the number of jobs moved per queue.
WITH staged AS (
    DELETE FROM pgq.staged_jobs AS s
     WHERE s.ctid = ANY (ARRAY(
            SELECT i.ctid FROM pgq.staged_jobs AS i
             WHERE sqlc.narg(only_id)::bigint IS NULL OR i.id = sqlc.narg(only_id)::bigint
             LIMIT @max_jobs::integer
               FOR UPDATE SKIP LOCKED))
    RETURNING s.id, s.task, s.queue, s.state, s.priority, s.args, s.meta, s.max_retries,
              s.retry_delay_ms, s.time_limit_ms, s.soft_time_limit_ms, s.ignore_result,
              s.run_at, s.expires_at, s.mutex_key, s.created_at
), moved AS (
    INSERT INTO pgq.jobs (
        id, task, queue, state, priority, args, meta, max_retries,
        retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
        run_at, expires_at, mutex_key, created_at
    )
    SELECT s.id, s.task, s.queue, s.state, coalesce(s.priority, d.priority, 0), s.args, s.meta,
           coalesce(s.max_retries, d.max_retries, 3), coalesce(s.retry_delay_ms, d.retry_delay_ms),
           coalesce(s.time_limit_ms, d.time_limit_ms), coalesce(s.soft_time_limit_ms, d.soft_time_limit_ms),
           s.ignore_result, s.run_at, s.expires_at, s.mutex_key, s.created_at
      FROM staged AS s
      LEFT JOIN pgq.queues AS d ON d.name = s.queue
    RETURNING queue
), per_queue AS (
    SELECT m.queue::text AS queue, count(*)::integer AS moved FROM moved AS m GROUP BY m.queue
)
SELECT p.queue, p.moved
  FROM per_queue AS p
  LEFT JOIN LATERAL (SELECT pg_notify('pgq.jobs', p.queue)) AS wake ON true;

-- name: StagedJobIDs :many
-- The oldest staged jobs, for moving them one at a time after a batch
-- failed (a row that breaks a rule of pgq.jobs must not hold up the rest).
SELECT id FROM pgq.staged_jobs ORDER BY id LIMIT @max_jobs::integer;

-- name: GetStagedJob :one
-- A staged job not moved yet, for Client.Job (no index: the table holds
-- only jobs that wait to be moved).
SELECT * FROM pgq.staged_jobs WHERE id = @id;
