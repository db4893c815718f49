-- name: InsertJob :one
-- One job, and its queue's wake-up (delivered at commit). Options the
-- client leaves NULL take the queue's defaults (pgq.queues), then pgq's.
WITH job AS (
INSERT INTO pgq.jobs (
    task, queue, state, priority, args, meta, max_retries,
    retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
    run_at, expires_at
)
SELECT @task::text, @queue::text, @state::text,
       coalesce(sqlc.narg(priority)::smallint, d.priority, 0), @args::jsonb, @meta::jsonb,
       coalesce(sqlc.narg(max_retries)::integer, d.max_retries, 3),
       coalesce(sqlc.narg(retry_delay_ms)::integer, d.retry_delay_ms),
       coalesce(sqlc.narg(time_limit_ms)::integer, d.time_limit_ms),
       coalesce(sqlc.narg(soft_time_limit_ms)::integer, d.soft_time_limit_ms),
       @ignore_result::boolean,
       coalesce(sqlc.narg(run_at)::timestamptz, now() + make_interval(secs => @countdown_seconds::float8)),
       coalesce(sqlc.narg(expires_at)::timestamptz, now() + make_interval(secs => sqlc.narg(expires_in_seconds)::float8))
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN pgq.queues AS d ON d.name = @queue::text
RETURNING id, state, run_at, queue
)
SELECT job.id, job.state, job.run_at
  FROM job CROSS JOIN LATERAL pg_notify('pgq.jobs', job.queue) AS wake;

-- name: InsertUniqueJob :one
-- One job with a unique key. If a job that has not finished holds the key,
-- nothing is inserted and that job is returned with duplicate = true. When
-- no row comes back, the holder finished in between: the caller tries again.
WITH inserted AS (
    INSERT INTO pgq.jobs (
        task, queue, state, priority, args, meta, max_retries,
        retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
        run_at, expires_at, unique_key
    )
    SELECT @task::text, @queue::text, @state::text,
           coalesce(sqlc.narg(priority)::smallint, d.priority, 0), @args::jsonb, @meta::jsonb,
           coalesce(sqlc.narg(max_retries)::integer, d.max_retries, 3),
           coalesce(sqlc.narg(retry_delay_ms)::integer, d.retry_delay_ms),
           coalesce(sqlc.narg(time_limit_ms)::integer, d.time_limit_ms),
           coalesce(sqlc.narg(soft_time_limit_ms)::integer, d.soft_time_limit_ms),
           @ignore_result::boolean,
           coalesce(sqlc.narg(run_at)::timestamptz, now() + make_interval(secs => @countdown_seconds::float8)),
           coalesce(sqlc.narg(expires_at)::timestamptz, now() + make_interval(secs => sqlc.narg(expires_in_seconds)::float8)),
           @unique_key::text
      FROM (VALUES (1)) AS one (x)
      LEFT JOIN pgq.queues AS d ON d.name = @queue::text
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retrying')
    DO NOTHING
    RETURNING id, state, run_at, queue
)
SELECT inserted.id, inserted.state, inserted.run_at, false AS duplicate
  FROM inserted CROSS JOIN LATERAL pg_notify('pgq.jobs', inserted.queue) AS wake
UNION ALL
SELECT j.id, j.state, j.run_at, true AS duplicate
  FROM pgq.jobs j
 WHERE j.unique_key = @unique_key
   AND j.state IN ('scheduled', 'available', 'running', 'retrying')
   AND NOT EXISTS (SELECT 1 FROM inserted);

-- name: CopyJobs :copyfrom
-- Many jobs in one COPY; NotifyQueues sends their wake-ups.
INSERT INTO pgq.jobs (
    id, task, queue, state, priority, args, meta, max_retries,
    retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
    run_at, expires_at
) VALUES (
    @id, @task, @queue, @state, @priority, @args, @meta, @max_retries,
    @retry_delay_ms, @time_limit_ms, @soft_time_limit_ms, @ignore_result,
    @run_at, @expires_at
);

-- name: ReserveJobIDs :many
-- Ids for a COPY, which cannot return them; one statement for any count.
-- (The sequence is named literally so that the planner resolves it once;
-- pg_get_serial_sequence() here would be evaluated for every row.)
SELECT nextval('pgq.jobs_id_seq'::regclass)::bigint AS id
  FROM generate_series(1, @count::integer);

-- name: NotifyQueues :exec
-- Wake-ups for the queues a COPY filled (COPY cannot call functions).
SELECT pg_notify('pgq.jobs', queue) FROM unnest(@queues::text[]) AS queue;

-- name: QueueDefaults :many
-- Every queue that has default options, for a COPY (which cannot join
-- pgq.queues as InsertJob does). The table holds a row only for queues
-- someone configured, so this is small.
SELECT name, priority, max_retries, retry_delay_ms, time_limit_ms, soft_time_limit_ms
  FROM pgq.queues
 WHERE priority IS NOT NULL OR max_retries IS NOT NULL OR retry_delay_ms IS NOT NULL
    OR time_limit_ms IS NOT NULL OR soft_time_limit_ms IS NOT NULL;

-- name: SetQueueDefaults :exec
-- Replace a queue's default options (NULL: none; pgq's own apply).
INSERT INTO pgq.queues AS q (name, priority, max_retries, retry_delay_ms, time_limit_ms, soft_time_limit_ms, updated_at)
VALUES (@name, sqlc.narg(priority), sqlc.narg(max_retries), sqlc.narg(retry_delay_ms),
        sqlc.narg(time_limit_ms), sqlc.narg(soft_time_limit_ms), now())
ON CONFLICT (name) DO UPDATE
   SET priority = excluded.priority, max_retries = excluded.max_retries,
       retry_delay_ms = excluded.retry_delay_ms, time_limit_ms = excluded.time_limit_ms,
       soft_time_limit_ms = excluded.soft_time_limit_ms, updated_at = now();
