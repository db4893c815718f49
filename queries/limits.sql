-- Statements of global limits, task mutexes and their administration
-- (package worker and queue.Client). Design: docs/limits.md.

-- name: ClaimLimitedJobs :many
-- The claim of limited jobs (rate, concurrency, mutex), one at a time per
-- schema; see pgq.claim_limited in migrations/0010_limits.up.sql. The
-- columns are ClaimJobs's (started_at's coalesce included: see there).
SELECT j.id, j.task, j.queue, j.priority, j.args, j.meta, j.attempt, j.max_retries,
       j.retry_delay_ms, j.time_limit_ms, j.soft_time_limit_ms, j.ignore_result,
       j.run_at, j.expires_at, j.created_at, coalesce(j.started_at, j.created_at) AS started_at, j.parent_id, j.root_id,
       (j.expires_at IS NOT NULL AND j.expires_at < now())::boolean AS expired
  FROM pgq.claim_limited(@worker_id::text, @queues::text[], @max_jobs::integer, @mutex_tasks::jsonb, @scan_max::integer,
                         sqlc.narg(known_tasks)::text[]) AS j;

-- name: LimitedWait :one
-- Milliseconds until a limited job of the queues may be claimable
-- (+Infinity: none waits); recheck_ms when one waits on a running job.
SELECT pgq.limited_wait_ms(@queues::text[], @mutex_tasks::jsonb, @recheck_ms::float8, sqlc.narg(known_tasks)::text[])::float8 AS wait_ms;

-- name: LimitsSummary :many
-- What a worker caches: every limited task, the limited queues among its
-- own, and (as a row with scope 'mutex') whether jobs with a mutex key
-- wait in its queues, a probe of the small jobs_mutex_wait_idx.
SELECT l.scope, l.name
  FROM pgq.limits AS l
 WHERE l.scope = 'task' OR (l.scope = 'queue' AND l.name = ANY (@queues::text[]))
UNION ALL
SELECT 'mutex'::text, ''::text
 WHERE EXISTS (SELECT 1 FROM unnest(@queues::text[]) AS q CROSS JOIN LATERAL (
                SELECT 1 FROM pgq.jobs AS w
                 WHERE w.queue = q AND w.mutex_key IS NOT NULL
                   AND w.state IN ('scheduled', 'available', 'retrying') LIMIT 1) AS x);

-- name: ListLimits :many
-- Every limit, with the tokens its bucket holds now (-1 without a rate
-- limit) and the jobs running under it.
SELECT l.scope, l.name, l.rate, l.per_second, l.burst, l.concurrency,
       CASE WHEN l.per_second IS NULL THEN -1
            ELSE least(pgq.limit_burst(l.per_second, l.burst),
                       l.tokens + greatest(0, extract(epoch FROM clock_timestamp() - l.refilled_at)) * l.per_second)
       END::float8 AS tokens,
       (SELECT count(*) FROM pgq.jobs AS r
         WHERE r.state = 'running'
           AND CASE WHEN l.scope = 'task' THEN r.task = l.name ELSE r.queue = l.name END)::bigint AS running,
       l.updated_at
  FROM pgq.limits AS l
 ORDER BY l.scope, l.name;

-- name: SetLimit :exec
-- Create or replace a limit. A new bucket starts full; a changed one keeps
-- the tokens it has (at most the new size), so a change neither grants a
-- burst nor takes back what is due.
INSERT INTO pgq.limits AS l (scope, name, rate, per_second, burst, concurrency, tokens, refilled_at, updated_at)
VALUES (@scope::text, @name::text, sqlc.narg(rate)::text, sqlc.narg(per_second)::float8, sqlc.narg(burst)::float8,
        sqlc.narg(concurrency)::integer,
        coalesce(pgq.limit_burst(sqlc.narg(per_second)::float8, sqlc.narg(burst)::float8), 0), clock_timestamp(), now())
ON CONFLICT (scope, name) DO UPDATE
   SET rate = excluded.rate, per_second = excluded.per_second, burst = excluded.burst,
       concurrency = excluded.concurrency,
       tokens = CASE WHEN excluded.per_second IS NULL THEN 0
                     WHEN l.per_second IS NULL THEN excluded.tokens
                     ELSE least(pgq.limit_burst(excluded.per_second, excluded.burst),
                                l.tokens + greatest(0, extract(epoch FROM clock_timestamp() - l.refilled_at)) * l.per_second)
                END,
       refilled_at = clock_timestamp(), updated_at = now();

-- name: DeleteLimit :execrows
DELETE FROM pgq.limits WHERE scope = @scope::text AND name = @name::text;

-- name: WakeQueues :exec
-- Wake the workers of some queues (a limit was raised or removed).
SELECT pg_notify('pgq.jobs', queue) FROM unnest(@queues::text[]) AS queue;
