-- Statements of beat and the periodic admin API (package periodic). Like
-- every query, they name objects as pgq.<name> and are rewritten to the
-- configured schema.

-- name: ListPeriodicTasks :many
-- Every periodic task with the state of its last job, by name.
SELECT t.name, t.spec, t.time_zone, t.task, t.args, t.queue, t.priority, t.max_retries,
       t.expires, t.missed, t.enabled, t.source, t.removed_at, t.start_after,
       t.created_at, t.updated_at, t.last_tick, t.last_run_at, t.last_job_id,
       t.next_tick, t.error, j.state AS last_job_state
  FROM pgq.periodic_tasks t
  LEFT JOIN pgq.jobs j ON j.id = t.last_job_id
 ORDER BY t.name;

-- name: GetPeriodicTask :one
SELECT t.name, t.spec, t.time_zone, t.task, t.args, t.queue, t.priority, t.max_retries,
       t.expires, t.missed, t.enabled, t.source, t.removed_at, t.start_after,
       t.created_at, t.updated_at, t.last_tick, t.last_run_at, t.last_job_id,
       t.next_tick, t.error, j.state AS last_job_state
  FROM pgq.periodic_tasks t
  LEFT JOIN pgq.jobs j ON j.id = t.last_job_id
 WHERE t.name = @name;

-- name: UpsertCodePeriodicTask :exec
-- A task defined in a program's code. An existing row takes the code's
-- definition but keeps its enabled flag (an operator may have disabled
-- it), unless it was disabled because the code had dropped it.
INSERT INTO pgq.periodic_tasks AS t (name, spec, time_zone, task, args, queue, priority, max_retries, expires, missed, source)
VALUES (@name, @spec, @time_zone, @task, @args, sqlc.narg(queue), sqlc.narg(priority), sqlc.narg(max_retries),
        make_interval(secs => sqlc.narg(expires_seconds)::float8), @missed, 'code')
ON CONFLICT (name) DO UPDATE
   SET spec = excluded.spec, time_zone = excluded.time_zone, task = excluded.task, args = excluded.args,
       queue = excluded.queue, priority = excluded.priority, max_retries = excluded.max_retries,
       expires = excluded.expires, missed = excluded.missed, source = 'code',
       enabled = CASE WHEN t.removed_at IS NOT NULL THEN true ELSE t.enabled END,
       removed_at = NULL;

-- name: RetireCodePeriodicTasks :many
-- Tasks that came from code and are no longer defined there: disabled,
-- not deleted, so their history stays and an operator sees what happened.
UPDATE pgq.periodic_tasks AS t
   SET enabled = false, removed_at = now()
 WHERE t.source = 'code'
   AND t.removed_at IS NULL
   AND NOT (t.name = ANY (@names::text[]))
RETURNING t.name;

-- name: InsertPeriodicTask :execrows
-- A task added at run time; zero rows means the name is taken.
INSERT INTO pgq.periodic_tasks (name, spec, time_zone, task, args, queue, priority, max_retries, expires, missed, enabled, source)
VALUES (@name, @spec, @time_zone, @task, @args, sqlc.narg(queue), sqlc.narg(priority), sqlc.narg(max_retries),
        make_interval(secs => sqlc.narg(expires_seconds)::float8), @missed, @enabled, @source)
ON CONFLICT (name) DO NOTHING;

-- name: DeletePeriodicTask :execrows
DELETE FROM pgq.periodic_tasks WHERE name = @name;

-- name: SetPeriodicTaskEnabled :execrows
UPDATE pgq.periodic_tasks SET enabled = @enabled WHERE name = @name;

-- name: ClaimPeriodicTick :one
-- The exactly-once step, in the transaction that then enqueues the job.
-- The task must still be enabled with the schedule the caller computed the
-- tick from, and the tick must be later than the last one handled (the
-- row lock serialises two callers; the loser re-reads the row and finds
-- last_tick already there). The run row's primary key (name, tick) holds
-- even if last_tick was edited back by hand. No row back: nothing to do;
-- the caller rolls back.
WITH claimed AS (
    UPDATE pgq.periodic_tasks AS t
       SET last_tick = @tick::timestamptz, next_tick = sqlc.narg(next_tick)
     WHERE t.name = @name::text
       AND t.enabled
       AND t.spec = @spec::text
       AND t.time_zone = @time_zone::text
       AND (t.last_tick IS NULL OR t.last_tick < @tick::timestamptz)
    RETURNING t.name
)
INSERT INTO pgq.periodic_runs (name, tick, beat_id)
SELECT claimed.name, @tick::timestamptz, @beat_id::text FROM claimed
ON CONFLICT (name, tick) DO NOTHING
RETURNING tick;

-- name: RecordPeriodicJob :exec
-- The job a claimed tick (or run-now, with no tick) enqueued.
WITH run AS (
    UPDATE pgq.periodic_runs AS r SET job_id = @job_id::bigint
     WHERE r.name = @name::text AND r.tick = sqlc.narg(tick)::timestamptz
)
UPDATE pgq.periodic_tasks AS t SET last_job_id = @job_id::bigint, last_run_at = now() WHERE t.name = @name::text;

-- name: SkipPeriodicTick :execrows
-- A missed tick the task's policy skips: last_tick moves past it and no
-- job is enqueued.
UPDATE pgq.periodic_tasks AS t
   SET last_tick = @tick::timestamptz, next_tick = sqlc.narg(next_tick)
 WHERE t.name = @name::text
   AND t.enabled
   AND t.spec = @spec::text
   AND t.time_zone = @time_zone::text
   AND (t.last_tick IS NULL OR t.last_tick < @tick::timestamptz);

-- name: SetPeriodicStatus :exec
-- The leader's view of each task, for people reading the table: the next
-- tick and why a row cannot be scheduled. Rows already showing the same
-- are left alone. An empty error means none; has_next false means no
-- next tick (disabled, or no schedule).
UPDATE pgq.periodic_tasks AS t
   SET next_tick = u.next_tick, error = u.error
  FROM (SELECT n.name,
               CASE WHEN n.has_next THEN n.next_tick END AS next_tick,
               nullif(n.error, '') AS error
          FROM (SELECT unnest(@names::text[]) AS name, unnest(@has_next::boolean[]) AS has_next,
                       unnest(@next_ticks::timestamptz[]) AS next_tick, unnest(@errors::text[]) AS error) AS n
       ) AS u
 WHERE t.name = u.name
   AND (t.next_tick IS DISTINCT FROM u.next_tick OR t.error IS DISTINCT FROM u.error);

-- name: PrunePeriodicRuns :execrows
-- Run rows older than the retention. last_tick keeps guarding the ticks
-- they covered.
DELETE FROM pgq.periodic_runs AS r
 USING (SELECT o.name, o.tick FROM pgq.periodic_runs AS o WHERE o.tick < @before::timestamptz ORDER BY o.tick LIMIT @max_rows::integer) AS old
 WHERE r.name = old.name AND r.tick = old.tick;

-- name: TryBeatLock :one
-- Leader election: a session-level advisory lock, held by the leader's
-- dedicated connection for as long as that connection lives.
SELECT pg_try_advisory_lock(hashtext(@lock_name::text)::bigint)::boolean AS acquired;

-- name: ReleaseBeatLock :one
SELECT pg_advisory_unlock(hashtext(@lock_name::text)::bigint)::boolean AS released;

-- name: SetBeatSessionTimeouts :exec
-- The server ends a beat connection that goes quiet (a vanished host, a
-- cut network) after this long, and with it the leader's lock.
SELECT set_config('idle_session_timeout', @timeout::text, false),
       set_config('idle_in_transaction_session_timeout', @timeout::text, false);

-- name: ListenBeat :exec
-- A leader that steps down says so on this channel, so a standby takes
-- over at once instead of at its next try.
LISTEN "pgq.beat";

-- name: ListenPeriodic :exec
-- Edits of periodic_tasks (the trigger of migration 0004).
LISTEN "pgq.periodic";

-- name: NotifyBeatResigned :exec
SELECT pg_notify('pgq.beat', @beat_id::text);
