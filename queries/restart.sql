-- name: RescuePreviousProcessJobs :many
-- At a worker's start: jobs still running under its id were held by an
-- earlier process with the same id (ids are unique among live workers, so
-- a process just starting holds nothing), which died without handing them
-- back. Left alone they would never be rescued: the new process's
-- heartbeats keep the id alive. They are rescued as the maintenance leader
-- would rescue them: the attempt counts, a job out of attempts fails, a
-- revoked one ends cancelled, and their queues' workers are woken.
WITH rescued AS (
UPDATE pgq.jobs AS j
   SET state = CASE WHEN j.revoked_at IS NOT NULL THEN 'cancelled'
                    WHEN j.attempt > j.max_retries THEN 'failed' ELSE 'available' END,
       run_at = now(),
       finished_at = CASE WHEN j.revoked_at IS NOT NULL OR j.attempt > j.max_retries THEN now() END,
       errors = j.errors || jsonb_build_array(jsonb_build_object(
                    'attempt', j.attempt, 'at', now(),
                    'error', format('worker %s stopped sending heartbeats while running this job (attempt %s); rescued when a new process started with its id',
                                    j.worker_id, j.attempt)))
 WHERE j.state = 'running'
   AND j.worker_id = @worker_id::text
RETURNING j.id, j.queue, j.state
)
SELECT rescued.id, rescued.state
  FROM rescued CROSS JOIN LATERAL pg_notify('pgq.jobs', rescued.queue) AS wake;
