-- Statements of the worker runtime (package worker). Like every query,
-- they name objects as pgq.<name> and are rewritten to the configured schema.

-- name: ClaimJobs :many
-- The hot path: one statement claims up to max_jobs runnable jobs of the
-- given queues, highest priority first, then oldest run_at. SKIP LOCKED lets
-- any number of workers claim side by side without waiting on each other.
--
-- Each queue is read by its own ordered walk of jobs_fetch_idx (queue,
-- priority DESC, run_at, id), and the per-queue candidates are merged: a
-- plain "queue = ANY(...)" cannot use the index order and sorts every
-- waiting job instead. With several queues this locks up to max_jobs rows
-- per queue for the length of the statement and updates max_jobs of them.
-- The ARRAY(...) makes the update find its rows by primary key.
--
-- Paused queues (pgq.queues.paused) are left out: one primary-key probe
-- per queue per claim, so a pause takes effect at the next claim.
--
-- Limited jobs are left out too: jobs with a mutex key, and jobs of the
-- tasks in excluded_tasks (the worker's cached list of tasks with a row in
-- pgq.limits or a registered mutex). Queues with a limit are not passed
-- at all. ClaimLimitedJobs (queries/limits.sql) claims those. Both tests
-- are filters on rows the walk reads anyway, so a schema without limits
-- pays nothing measurable (docs/performance.md).
--
-- Unless durable is set, the claim commits without waiting for its WAL
-- flush (synchronous_commit off for this transaction only): the flush
-- was a third of the pickup latency on a durable server. A claim lost in
-- a server crash makes its job claimable again, which at-least-once
-- delivery allows (worker/doc.go, "Claims and crashes").
--
-- started_at is never null in the answer (the claim sets it); the
-- coalesce only tells sqlc so. A time.Time scans without the reflection
-- and the allocation of a *time.Time (docs/performance.md).
UPDATE pgq.jobs AS j
   SET state = 'running', attempt = j.attempt + 1, started_at = now(), worker_id = @worker_id::text
 WHERE j.id = ANY (ARRAY(
        SELECT c.id
          FROM unnest(@queues::text[]) AS q
         CROSS JOIN LATERAL (
               SELECT w.id, w.priority, w.run_at
                 FROM pgq.jobs AS w
                WHERE w.queue = q
                  AND w.state IN ('scheduled', 'available', 'retrying')
                  AND w.run_at <= now()
                  AND w.mutex_key IS NULL
                  AND w.task <> ALL (coalesce(sqlc.narg(excluded_tasks)::text[], '{}'))
                ORDER BY w.priority DESC, w.run_at, w.id
                LIMIT @max_jobs::integer
                  FOR UPDATE SKIP LOCKED
               ) AS c
         WHERE NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = q AND p.paused)
         ORDER BY c.priority DESC, c.run_at, c.id
         LIMIT @max_jobs::integer
       ))
   AND (SELECT @durable::boolean OR set_config('synchronous_commit', 'off', true) IS NOT NULL)
RETURNING j.id, j.task, j.queue, j.priority, j.args, j.meta, j.attempt, j.max_retries,
          j.retry_delay_ms, j.time_limit_ms, j.soft_time_limit_ms, j.ignore_result,
          j.run_at, j.expires_at, j.created_at, coalesce(j.started_at, j.created_at) AS started_at, j.parent_id, j.root_id,
          (j.expires_at IS NOT NULL AND j.expires_at < now())::boolean AS expired;

-- name: ClaimJobsAfter :many
-- ClaimJobs for a worker working through a backlog: each queue's walk
-- resumes after the last job this worker claimed from it (after_priorities,
-- after_run_ats and after_ids, in step with queues; a priority of -1 means
-- "no position": walk the whole queue) instead of starting at the front.
--
-- The front of jobs_fetch_idx is where the entries of the jobs claimed
-- since the last VACUUM lie: a claim moves a job out of the index's
-- predicate, but its old entry stays until VACUUM removes it, and every
-- walk from the front steps over all of them (in a drain of 200,000 jobs,
-- hundreds of index pages per claim by the end). Resuming skips them.
--
-- Per queue the walk is three ordered index scans, concatenated in the
-- index's own order and cut at max_jobs (the later ones are not run once
-- the earlier ones filled it): higher priorities than the position (so a
-- more urgent job still goes first), the position's priority after the
-- position, then lower priorities. What this skips is jobs of the
-- position's priority that sort before it: entries of claimed jobs, and
-- the rare job that arrives there (committed by a transaction that began
-- before the position's job, run_at set in the past, handed back). The
-- worker walks the whole queue again as soon as this comes up short, and
-- at least once a second (worker/fetcher.go).
UPDATE pgq.jobs AS j
   SET state = 'running', attempt = j.attempt + 1, started_at = now(), worker_id = @worker_id::text
 WHERE j.id = ANY (ARRAY(
        SELECT c.id
          FROM (SELECT unnest(@queues::text[]) AS q, unnest(@after_priorities::smallint[]) AS priority,
                       unnest(@after_run_ats::timestamptz[]) AS run_at, unnest(@after_ids::bigint[]) AS id) AS k
         CROSS JOIN LATERAL (
               SELECT * FROM (
                   SELECT w.id, w.priority, w.run_at
                     FROM pgq.jobs AS w
                    WHERE w.queue = k.q AND w.priority > k.priority
                      AND w.state IN ('scheduled', 'available', 'retrying')
                      AND w.run_at <= now()
                      AND w.mutex_key IS NULL
                      AND w.task <> ALL (coalesce(sqlc.narg(excluded_tasks)::text[], '{}'))
                    ORDER BY w.priority DESC, w.run_at, w.id
                    LIMIT @max_jobs::integer
                      FOR UPDATE SKIP LOCKED) AS before
               UNION ALL
               SELECT * FROM (
                   SELECT w.id, w.priority, w.run_at
                     FROM pgq.jobs AS w
                    WHERE w.queue = k.q AND w.priority = k.priority AND (w.run_at, w.id) > (k.run_at, k.id)
                      AND w.state IN ('scheduled', 'available', 'retrying')
                      AND w.run_at <= now()
                      AND w.mutex_key IS NULL
                      AND w.task <> ALL (coalesce(sqlc.narg(excluded_tasks)::text[], '{}'))
                    ORDER BY w.run_at, w.id
                    LIMIT @max_jobs::integer
                      FOR UPDATE SKIP LOCKED) AS resumed
               UNION ALL
               SELECT * FROM (
                   SELECT w.id, w.priority, w.run_at
                     FROM pgq.jobs AS w
                    WHERE w.queue = k.q AND w.priority < k.priority
                      AND w.state IN ('scheduled', 'available', 'retrying')
                      AND w.run_at <= now()
                      AND w.mutex_key IS NULL
                      AND w.task <> ALL (coalesce(sqlc.narg(excluded_tasks)::text[], '{}'))
                    ORDER BY w.priority DESC, w.run_at, w.id
                    LIMIT @max_jobs::integer
                      FOR UPDATE SKIP LOCKED) AS after
               LIMIT @max_jobs::integer
               ) AS c
         WHERE NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = k.q AND p.paused)
         ORDER BY c.priority DESC, c.run_at, c.id
         LIMIT @max_jobs::integer
       ))
   AND (SELECT @durable::boolean OR set_config('synchronous_commit', 'off', true) IS NOT NULL)
RETURNING j.id, j.task, j.queue, j.priority, j.args, j.meta, j.attempt, j.max_retries,
          j.retry_delay_ms, j.time_limit_ms, j.soft_time_limit_ms, j.ignore_result,
          j.run_at, j.expires_at, j.created_at, coalesce(j.started_at, j.created_at) AS started_at, j.parent_id, j.root_id,
          (j.expires_at IS NOT NULL AND j.expires_at < now())::boolean AS expired;

-- name: NextRunIn :one
-- How long until the earliest waiting job of the queues becomes runnable,
-- in milliseconds of database time (negative: runnable now; +Infinity: none).
-- Paused queues do not count: their jobs are not runnable. Neither do
-- limited jobs (see ClaimJobs): LimitedWait answers for them.
SELECT coalesce(extract(epoch FROM min(run_at) - now()) * 1000, 'Infinity')::float8 AS wait_ms
  FROM pgq.jobs
 WHERE state IN ('scheduled', 'available', 'retrying')
   AND queue = ANY (@queues::text[])
   AND mutex_key IS NULL
   AND task <> ALL (coalesce(sqlc.narg(excluded_tasks)::text[], '{}'))
   AND NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = pgq.jobs.queue AND p.paused);

-- name: CompleteJobs :many
-- Batched success (arrays of equal length, unnested in step): one statement
-- for every job that finished well since the last batch. The guard (still
-- running, held by this worker, same attempt) makes a late write from a
-- worker that lost the job a no-op; the ids that come back are the jobs
-- actually completed.
--
-- The plan must be "for each id, look the row up by primary key". The
-- batch is therefore a subquery behind an optimisation fence (OFFSET 0)
-- and every guard is a join condition against it: written as filters on
-- pgq.jobs, the planner estimates them from statistics that may say "no
-- job of this worker is running" (they were gathered before it started),
-- drives the join from pgq.jobs and re-reads the whole batch for each of
-- its rows, or walks jobs_running_idx, which is full of dead entries
-- until VACUUM because every job passes through 'running'. (FinishJobs
-- below is written the same way.)
--
-- A row already succeeded by this worker in this attempt counts as
-- written, and is left as it is: that is a retry after a lost
-- acknowledgement (the connection dropped after the commit), and the job
-- must be reported succeeded, not lost. Only a retry can meet such a row.
--
-- The finished ids are announced on pgq.results for AsyncResult.Get: one
-- notification per 300 ids (NOTIFY payloads stop at 8000 bytes), so a
-- batch costs one or a few notifications, never one per job.
WITH done AS (
UPDATE pgq.jobs AS j
   SET state = 'succeeded',
       finished_at = CASE WHEN j.state = u.state THEN now() ELSE j.finished_at END,
       result = CASE WHEN j.state = u.state THEN u.result ELSE j.result END
  FROM (SELECT unnest(@ids::bigint[]) AS id, unnest(@attempts::integer[]) AS attempt,
               unnest(@results::jsonb[]) AS result,
               @worker_id::text AS worker_id, 'running'::text AS state, 'succeeded'::text AS done
        OFFSET 0) AS u
 WHERE j.id = u.id
   AND (j.state = u.state OR j.state = u.done)
   AND j.worker_id = u.worker_id
   AND j.attempt = u.attempt
RETURNING j.id
), announced AS (
    SELECT pg_notify('pgq.results', string_agg(c.id::text, ','))
      FROM (SELECT done.id, (row_number() OVER ()) / 300 AS chunk FROM done) AS c
     GROUP BY c.chunk
)
SELECT done.id FROM done WHERE (SELECT count(*) FROM announced) >= 0;

-- name: FinishJobs :many
-- Batched everything-but-success: retries (state retrying, run_at later),
-- failures, snoozes (scheduled, attempt refunded), expiries (cancelled) and
-- hand-backs (available, attempt refunded). A non-empty error is appended to
-- the job's error history as {attempt, at, error, stack}. Jobs that end
-- here (failed, cancelled) are announced on pgq.results like successes.
--
-- A revoked job (revoked_at set) never goes back to a queue: a retry,
-- snooze or hand-back of one ends it cancelled instead, with a note in
-- its error history (the CASE on revoked_at, repeated in each column
-- because SET cannot name another column's new value).
WITH finished AS (
UPDATE pgq.jobs AS j
   SET state = CASE WHEN j.revoked_at IS NOT NULL AND u.new_state IN ('retrying', 'scheduled', 'available')
                    THEN 'cancelled' ELSE u.new_state END,
       attempt = CASE WHEN u.refund THEN j.attempt - 1 ELSE j.attempt END,
       run_at = CASE WHEN j.revoked_at IS NULL AND u.new_state IN ('retrying', 'scheduled', 'available')
                     THEN now() + make_interval(secs => (u.delay_ms / 1000.0)::float8)
                     ELSE j.run_at END,
       finished_at = CASE WHEN u.new_state IN ('failed', 'cancelled') OR j.revoked_at IS NOT NULL THEN now() END,
       started_at = CASE WHEN u.new_state = 'available' AND j.revoked_at IS NULL THEN NULL ELSE j.started_at END,
       worker_id = CASE WHEN u.new_state = 'available' AND j.revoked_at IS NULL THEN NULL ELSE j.worker_id END,
       errors = CASE WHEN j.revoked_at IS NOT NULL AND u.new_state IN ('retrying', 'scheduled', 'available')
                     THEN j.errors || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                              'attempt', j.attempt, 'at', now(),
                              'error', 'revoked: not run again' || coalesce(' (this attempt: ' || nullif(u.error, '') || ')', ''),
                              'stack', nullif(u.stack, ''))))
                     WHEN u.error = '' THEN j.errors
                     ELSE j.errors || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                              'attempt', j.attempt, 'at', now(), 'error', u.error, 'stack', nullif(u.stack, ''))))
                END
  FROM (SELECT unnest(@ids::bigint[]) AS id, unnest(@attempts::integer[]) AS attempt,
               unnest(@states::text[]) AS new_state, unnest(@delays_ms::bigint[]) AS delay_ms,
               unnest(@errors::text[]) AS error, unnest(@stacks::text[]) AS stack,
               unnest(@refunds::boolean[]) AS refund,
               @worker_id::text AS worker_id, 'running'::text AS state
        OFFSET 0) AS u
 WHERE j.id = u.id
   AND j.state = u.state
   AND j.worker_id = u.worker_id
   AND j.attempt = u.attempt
RETURNING j.id, j.state
), announced AS (
    SELECT pg_notify('pgq.results', string_agg(c.id::text, ','))
      FROM (SELECT finished.id, (row_number() OVER ()) / 300 AS chunk
              FROM finished WHERE finished.state IN ('failed', 'cancelled')) AS c
     GROUP BY c.chunk
)
SELECT finished.id, finished.state FROM finished WHERE (SELECT count(*) FROM announced) >= 0;

-- name: CompleteJob :one
-- Success of one job inside the handler's own transaction (CompleteTx),
-- announced on pgq.results when that transaction commits.
WITH done AS (
UPDATE pgq.jobs
   SET state = 'succeeded', finished_at = now(), result = sqlc.narg(result)
 WHERE id = @id
   AND state = 'running'
   AND worker_id = @worker_id::text
   AND attempt = @attempt
RETURNING id
)
SELECT done.id FROM done CROSS JOIN LATERAL pg_notify('pgq.results', done.id::text) AS announced;

-- name: ReleaseWorkerJobs :many
-- Shutdown: every job this worker still holds goes back to its queue
-- without using up an attempt, and the queue's workers are woken. A
-- revoked job ends cancelled instead.
WITH released AS (
    UPDATE pgq.jobs
       SET state = CASE WHEN revoked_at IS NULL THEN 'available' ELSE 'cancelled' END,
           attempt = attempt - 1,
           finished_at = CASE WHEN revoked_at IS NULL THEN NULL ELSE now() END,
           started_at = CASE WHEN revoked_at IS NULL THEN NULL ELSE started_at END,
           worker_id = CASE WHEN revoked_at IS NULL THEN NULL ELSE worker_id END
     WHERE state = 'running'
       AND worker_id = @worker_id::text
    RETURNING id, queue
)
SELECT released.id
  FROM released CROSS JOIN LATERAL pg_notify('pgq.jobs', released.queue) AS wake;

-- name: ReleaseUnheldJobs :many
-- After an outage: jobs the database says this worker runs but that the
-- worker does not hold go back to their queue without using up an
-- attempt, and the queue's workers are woken. They come from a claim
-- that committed although its answer was lost, or from a completion that
-- was acknowledged and then undone by a crash (synchronous_commit = off).
-- Left alone they would stay running for ever: the worker's heartbeat
-- keeps them from being rescued.
WITH released AS (
    UPDATE pgq.jobs
       SET state = 'available', attempt = attempt - 1, started_at = NULL, worker_id = NULL
     WHERE state = 'running'
       AND worker_id = @worker_id::text
       AND NOT (id = ANY (@held::bigint[]))
    RETURNING id, queue
)
SELECT released.id
  FROM released CROSS JOIN LATERAL pg_notify('pgq.jobs', released.queue) AS wake;

-- name: RegisterWorker :exec
INSERT INTO pgq.workers (id, host, pid, queues, concurrency, meta)
VALUES (@id, @host, @pid, @queues::text[], @concurrency, @meta)
ON CONFLICT (id) DO UPDATE
   SET host = excluded.host, pid = excluded.pid, queues = excluded.queues,
       concurrency = excluded.concurrency, meta = excluded.meta, heartbeat_at = now();

-- name: Heartbeat :execrows
-- Zero rows means the row is gone (the worker was presumed dead and its
-- jobs rescued); the worker then registers again.
UPDATE pgq.workers SET heartbeat_at = now() WHERE id = @id;

-- name: DeleteWorker :exec
DELETE FROM pgq.workers WHERE id = @id;

-- name: TryMaintenanceLock :one
-- Leader election for one maintenance round: the transaction-scoped lock
-- is held until the round's transaction ends, so a leader that dies
-- releases it with its connection and no session state is left behind.
SELECT pg_try_advisory_xact_lock(hashtext(@lock_name::text)::bigint)::boolean AS acquired;

-- name: RescueJobs :many
-- Jobs held by workers whose heartbeat expired (or that have no row at
-- all) go back to their queue, or fail when their attempts are used up.
-- started_at is checked too, so a job claimed moments before its worker
-- re-registered is never taken. Every worker of a rescued job's queue is
-- woken. A revoked job ends cancelled instead.
WITH rescued AS (
UPDATE pgq.jobs AS j
   SET state = CASE WHEN j.revoked_at IS NOT NULL THEN 'cancelled'
                    WHEN j.attempt > j.max_retries THEN 'failed' ELSE 'available' END,
       run_at = now(),
       finished_at = CASE WHEN j.revoked_at IS NOT NULL OR j.attempt > j.max_retries THEN now() END,
       errors = j.errors || jsonb_build_array(jsonb_build_object(
                    'attempt', j.attempt, 'at', now(),
                    'error', format('worker %s stopped sending heartbeats while running this job (attempt %s); rescued by %s',
                                    coalesce(j.worker_id, '(unknown)'), j.attempt, @rescuer::text)))
  FROM (
        SELECT s.id
          FROM pgq.jobs AS s
         WHERE s.state = 'running'
           AND s.started_at < now() - make_interval(secs => @stale_seconds::float8)
           AND NOT EXISTS (SELECT 1 FROM pgq.workers AS w
                            WHERE w.id = s.worker_id
                              AND w.heartbeat_at >= now() - make_interval(secs => @stale_seconds::float8))
         ORDER BY s.id
         LIMIT @max_jobs::integer
           FOR UPDATE SKIP LOCKED
       ) AS stale
 WHERE j.id = stale.id
RETURNING j.id, j.task, j.queue, j.state, j.attempt, coalesce(j.worker_id, '')::text AS held_by
)
SELECT rescued.id, rescued.task, rescued.queue, rescued.state, rescued.attempt, rescued.held_by
  FROM rescued CROSS JOIN LATERAL pg_notify('pgq.jobs', rescued.queue) AS wake;

-- name: DeleteDeadWorkers :many
-- Rows of workers whose heartbeat expired and who hold no running job.
DELETE FROM pgq.workers AS w
 WHERE w.heartbeat_at < now() - make_interval(secs => @stale_seconds::float8)
   AND NOT EXISTS (SELECT 1 FROM pgq.jobs AS j WHERE j.state = 'running' AND j.worker_id = w.id)
RETURNING w.id;

-- name: ListenJobs :exec
-- The notifier's subscription; the channel follows the schema name.
LISTEN "pgq.jobs";

-- name: RevokedRunningJobs :many
-- The heartbeat's fallback for a lost revoke notification: this worker's
-- running jobs that were revoked with terminate.
SELECT id FROM pgq.jobs
 WHERE state = 'running'
   AND worker_id = @worker_id::text
   AND revoke_terminate;

-- name: UpdateWorkerSettings :exec
-- The worker's queues and concurrency after a control message changed them.
UPDATE pgq.workers SET queues = @queues::text[], concurrency = @concurrency WHERE id = @id;

-- name: PruneJobs :execrows
-- Retention: delete up to max_rows jobs in one final state that finished
-- more than older_than_seconds ago, oldest first, found through
-- jobs_finished_idx. Small statements, each its own transaction, so no
-- lock is held for long; SKIP LOCKED keeps two pruners (a leader change
-- mid-round) out of each other's way.
DELETE FROM pgq.jobs
 WHERE id = ANY (ARRAY(
        SELECT p.id
          FROM pgq.jobs AS p
         WHERE p.state = @state::text
           AND p.finished_at < now() - make_interval(secs => @older_than_seconds::float8)
         ORDER BY p.finished_at
         LIMIT @max_rows::integer
           FOR UPDATE SKIP LOCKED
       ));

-- name: JobsStatsStale :one
-- Whether pgq.jobs has changed more since its last ANALYZE than it held
-- then (and by at least 1,000 rows): the planner's picture of it is off
-- by a factor of two or more. See worker/maintenance.go, "Fresh statistics".
-- Only a member of the table's owning role (or a superuser) may ANALYZE
-- it; for anyone else the answer is no, and autovacuum keeps the job.
SELECT coalesce(s.n_mod_since_analyze >= greatest(1000, c.reltuples)::bigint
                AND pg_catalog.pg_has_role(c.relowner, 'MEMBER'), false)::boolean AS stale
  FROM pg_catalog.pg_class AS c
  LEFT JOIN pg_catalog.pg_stat_user_tables AS s ON s.relid = c.oid
 WHERE c.oid = 'pgq.jobs'::regclass;

-- name: AnalyzeJobs :exec
-- Fresh statistics for pgq.jobs; skipped when autovacuum holds the table.
ANALYZE (SKIP_LOCKED) pgq.jobs;
