-- Statements of revoke, retry, delete, purge, queue pause/resume and
-- remote control (queue.Client and the worker). Design: docs/control.md.

-- name: LockJob :one
-- The job an operation on one job acts on, locked until the caller's
-- transaction ends, so that its state cannot change under the decision.
SELECT id, state, queue, coalesce(worker_id, '')::text AS worker_id
  FROM pgq.jobs
 WHERE id = @id
   FOR UPDATE;

-- name: CancelWaitingJob :exec
-- Revoke of a job that has not started (or waits for its next attempt):
-- it ends cancelled at once, with the reason in its error history, and is
-- announced on pgq.results for AsyncResult.Get.
WITH cancelled AS (
    UPDATE pgq.jobs
       SET state = 'cancelled', finished_at = now(), revoked_at = now(),
           errors = errors || jsonb_build_array(jsonb_build_object(
                        'attempt', attempt, 'at', now(), 'error', @reason::text))
     WHERE id = @id
       AND state IN ('scheduled', 'available', 'retrying')
    RETURNING id
)
SELECT pg_notify('pgq.results', cancelled.id::text) FROM cancelled;

-- name: MarkRevoked :exec
-- Revoke of a running job: it is never run again, and with terminate its
-- worker cancels the handler (told on pgq.control; its heartbeat finds
-- the mark if the notification is lost).
UPDATE pgq.jobs
   SET revoked_at = coalesce(revoked_at, now()),
       revoke_terminate = revoke_terminate OR @terminate::boolean
 WHERE id = @id
   AND state = 'running';

-- name: NotifyControl :exec
-- A control message to the workers of the schema (JSON, see docs/control.md).
SELECT pg_notify('pgq.control', @payload::text);

-- name: NotifyControlReply :exec
-- A worker's reply to a control message; the payload carries the
-- message's id, and every waiting client filters by it.
SELECT pg_notify('pgq.control_reply', @payload::text);

-- name: ListenControl :exec
LISTEN "pgq.control";

-- name: ListenControlReplies :exec
LISTEN "pgq.control_reply";

-- name: RetryJob :exec
-- A failed or cancelled job goes back to its queue, as if new: attempt 0,
-- no result, not revoked. The error history is kept. Its queue is woken.
WITH retried AS (
    UPDATE pgq.jobs
       SET state = 'available', attempt = 0, run_at = now(), started_at = NULL,
           finished_at = NULL, worker_id = NULL, result = NULL,
           revoked_at = NULL, revoke_terminate = false
     WHERE id = @id
       AND state IN ('failed', 'cancelled')
    RETURNING queue
)
SELECT pg_notify('pgq.jobs', retried.queue) FROM retried;

-- name: DeleteJob :execrows
DELETE FROM pgq.jobs WHERE id = @id AND state <> 'running';

-- name: CountWaitingJobs :one
SELECT count(*)::bigint AS count
  FROM pgq.jobs
 WHERE queue = @queue
   AND state IN ('scheduled', 'available', 'retrying');

-- name: PurgeQueue :execrows
-- Every job of the queue that waits (scheduled, available, retrying);
-- running and finished jobs stay.
DELETE FROM pgq.jobs
 WHERE queue = @queue
   AND state IN ('scheduled', 'available', 'retrying');

-- name: PauseQueue :exec
INSERT INTO pgq.queues AS q (name, paused, paused_at, updated_at)
VALUES (@name, true, now(), now())
ON CONFLICT (name) DO UPDATE
   SET paused = true, paused_at = coalesce(q.paused_at, now()), updated_at = now();

-- name: ResumeQueue :exec
-- Resume, and wake the queue's workers (they claim at once).
WITH resumed AS (
    INSERT INTO pgq.queues AS q (name, paused, paused_at, updated_at)
    VALUES (@name, false, NULL, now())
    ON CONFLICT (name) DO UPDATE SET paused = false, paused_at = NULL, updated_at = now()
    RETURNING name
)
SELECT pg_notify('pgq.jobs', resumed.name) FROM resumed;

-- name: ListQueues :many
-- Every queue that has a settings row or jobs, with its counts.
SELECT n.name::text AS name,
       coalesce(q.paused, false)::boolean AS paused,
       q.paused_at,
       q.priority, q.max_retries, q.retry_delay_ms, q.time_limit_ms, q.soft_time_limit_ms,
       coalesce(s.waiting, 0)::bigint AS waiting,
       coalesce(s.running, 0)::bigint AS running,
       coalesce(s.finished, 0)::bigint AS finished
  FROM (SELECT name FROM pgq.queues UNION SELECT DISTINCT queue FROM pgq.queue_stats) AS n
  LEFT JOIN pgq.queues AS q ON q.name = n.name
  LEFT JOIN (SELECT queue,
                    sum(count) FILTER (WHERE state IN ('scheduled', 'available', 'retrying')) AS waiting,
                    sum(count) FILTER (WHERE state = 'running') AS running,
                    sum(count) FILTER (WHERE state IN ('succeeded', 'failed', 'cancelled')) AS finished
               FROM pgq.queue_stats GROUP BY queue) AS s ON s.queue = n.name
 ORDER BY n.name;

-- name: PausedQueues :many
SELECT name FROM pgq.queues WHERE paused ORDER BY name;

-- name: ListWorkers :many
SELECT id, host, pid, queues, concurrency, started_at, heartbeat_at,
       heartbeat_age_seconds::float8 AS heartbeat_age_seconds, running
  FROM pgq.worker_overview
 ORDER BY id;

-- name: ActiveJobs :many
-- Running jobs, by worker (sqlc.narg: one worker, or all).
SELECT id, task, queue, attempt, coalesce(worker_id, '')::text AS worker_id, started_at
  FROM pgq.jobs
 WHERE state = 'running'
   AND (sqlc.narg(worker_id)::text IS NULL OR worker_id = sqlc.narg(worker_id)::text)
 ORDER BY worker_id, started_at, id
 LIMIT @max_rows;

-- name: ScheduledJobs :many
-- Jobs waiting for a later run time (countdown, ETA, retry backoff),
-- soonest first.
SELECT id, task, queue, state, attempt, run_at
  FROM pgq.jobs
 WHERE state IN ('scheduled', 'retrying')
   AND run_at > now()
 ORDER BY run_at, id
 LIMIT @max_rows;
