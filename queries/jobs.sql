-- name: InsertJob :one
-- One job, and with wake its queue's wake-up (delivered at commit). Options
-- the client leaves NULL take the queue's defaults (pgq.queues), then pgq's.
-- Without wake the client sends the wake-up itself once the transaction
-- has committed (queue/wake.go): a transaction that notifies holds
-- PostgreSQL's notification lock until its commit is flushed, so
-- concurrent enqueuing transactions could not share a WAL flush.
WITH job AS (
INSERT INTO pgq.jobs (
    task, queue, state, priority, args, meta, max_retries,
    retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
    run_at, expires_at, mutex_key
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
       sqlc.narg(mutex_key)::text
  FROM (VALUES (1)) AS one (x)
  LEFT JOIN pgq.queues AS d ON d.name = @queue::text
RETURNING id, state, run_at, queue
)
SELECT job.id, job.state, job.run_at
  FROM job LEFT JOIN LATERAL (SELECT pg_notify('pgq.jobs', job.queue) WHERE @wake::boolean) AS wake ON true;

-- name: InsertUniqueJob :one
-- One job with a unique key: the key given, or "<task>:<md5 of the args as
-- jsonb prints them>", with the time bucket appended for the 'window'
-- scope. If a job holds the key (pgq.unique_holds: by scope), nothing is
-- inserted and that job is returned with duplicate = true. When no row
-- comes back, the holder let go of the key in between: the caller tries
-- again.
WITH key AS (
    SELECT coalesce(sqlc.narg(unique_key)::text, @task::text || ':' || md5(CAST(@args::jsonb AS text)))
           || CASE WHEN @unique_scope::text = 'window'
                   THEN '@' || (floor(extract(epoch FROM now()) / @window_seconds::float8) * @window_seconds::float8)::bigint::text
                   ELSE '' END AS k
), inserted AS (
    INSERT INTO pgq.jobs AS j (
        task, queue, state, priority, args, meta, max_retries,
        retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
        run_at, expires_at, unique_key, unique_scope, mutex_key
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
           key.k, nullif(@unique_scope::text, 'active'), sqlc.narg(mutex_key)::text
      FROM key
      LEFT JOIN pgq.queues AS d ON d.name = @queue::text
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND pgq.unique_holds(unique_scope, state)
    DO NOTHING
    RETURNING id, state, run_at, queue
)
SELECT inserted.id, inserted.state, inserted.run_at, false AS duplicate, false AS replaced
  FROM inserted LEFT JOIN LATERAL (SELECT pg_notify('pgq.jobs', inserted.queue) WHERE @wake::boolean) AS wake ON true
UNION ALL
SELECT j.id, j.state, j.run_at, true AS duplicate, false AS replaced
  FROM pgq.jobs AS j, key
 WHERE j.unique_key = key.k
   AND pgq.unique_holds(j.unique_scope, j.state)
   AND NOT EXISTS (SELECT 1 FROM inserted);

-- name: ReplaceUniqueJob :one
-- InsertUniqueJob's replace mode (Graphile Worker's job_key "replace" and
-- "preserve_run_at"): when the job holding the key still waits, it takes
-- the new args, headers, priority, expiry and mutex key, and with
-- replace_run_at the new run time too (a debounce); it is returned with
-- replaced = true. A holder that is running is left alone and returned
-- as a duplicate. The conflicting row is locked until the caller's
-- transaction ends, as any update is.
WITH key AS (
    SELECT coalesce(sqlc.narg(unique_key)::text, @task::text || ':' || md5(CAST(@args::jsonb AS text)))
           || CASE WHEN @unique_scope::text = 'window'
                   THEN '@' || (floor(extract(epoch FROM now()) / @window_seconds::float8) * @window_seconds::float8)::bigint::text
                   ELSE '' END AS k
), inserted AS (
    INSERT INTO pgq.jobs AS j (
        task, queue, state, priority, args, meta, max_retries,
        retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
        run_at, expires_at, unique_key, unique_scope, mutex_key
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
           key.k, nullif(@unique_scope::text, 'active'), sqlc.narg(mutex_key)::text
      FROM key
      LEFT JOIN pgq.queues AS d ON d.name = @queue::text
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND pgq.unique_holds(unique_scope, state)
    DO UPDATE
       SET args = excluded.args, meta = excluded.meta, priority = excluded.priority,
           expires_at = excluded.expires_at, mutex_key = excluded.mutex_key,
           run_at = CASE WHEN @replace_run_at::boolean THEN excluded.run_at ELSE j.run_at END,
           state = CASE WHEN @replace_run_at::boolean AND j.state <> 'retrying' THEN excluded.state ELSE j.state END
     WHERE j.state IN ('scheduled', 'available', 'retrying')
    RETURNING j.id, j.state, j.run_at, j.queue, (j.xmax::text <> '0') AS replaced
)
SELECT inserted.id, inserted.state, inserted.run_at, inserted.replaced AS duplicate, inserted.replaced
  FROM inserted LEFT JOIN LATERAL (SELECT pg_notify('pgq.jobs', inserted.queue) WHERE @wake::boolean) AS wake ON true
UNION ALL
SELECT j.id, j.state, j.run_at, true AS duplicate, false AS replaced
  FROM pgq.jobs AS j, key
 WHERE j.unique_key = key.k
   AND pgq.unique_holds(j.unique_scope, j.state)
   AND NOT EXISTS (SELECT 1 FROM inserted);

-- name: CopyJobs :copyfrom
-- Many jobs in one COPY; NotifyQueues sends their wake-ups.
INSERT INTO pgq.jobs (
    id, task, queue, state, priority, args, meta, max_retries,
    retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
    run_at, expires_at, mutex_key
) VALUES (
    @id, @task, @queue, @state, @priority, @args, @meta, @max_retries,
    @retry_delay_ms, @time_limit_ms, @soft_time_limit_ms, @ignore_result,
    @run_at, @expires_at, @mutex_key
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
