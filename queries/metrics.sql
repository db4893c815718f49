-- Statements of the Prometheus collector (package metrics), run at scrape
-- time. Like every query, they name objects as pgq.<name> and are
-- rewritten to the configured schema.

-- name: MetricsUnfinishedJobs :many
-- Jobs not finished yet, by queue, task and state, with the age of the
-- oldest runnable one (run_at passed, not claimed). The two branches match
-- the predicates of jobs_fetch_idx and jobs_running_idx, both partial over
-- these states, so the planner can read only the backlog and the running
-- jobs, whatever the number of finished rows (one "state IN (all four)"
-- matches neither index and scans the table).
SELECT queue, task, state, count(*)::bigint AS jobs,
       coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0)::float8 AS oldest_runnable_seconds
  FROM pgq.jobs
 WHERE state IN ('scheduled', 'available', 'retrying')
 GROUP BY queue, task, state
UNION ALL
SELECT queue, task, 'running', count(*)::bigint, 0::float8
  FROM pgq.jobs
 WHERE state = 'running'
 GROUP BY queue, task;

-- name: MetricsFinishedJobs :many
-- Finished jobs still stored (retention has not deleted them yet), by
-- queue, task and state. It reads every finished row: its cost follows
-- the retention settings, so it runs only with CollectorConfig.CountFinished.
SELECT queue, task, state, count(*)::bigint AS jobs
  FROM pgq.jobs
 WHERE state IN ('succeeded', 'failed', 'cancelled')
 GROUP BY queue, task, state;

-- name: MetricsWorkers :one
-- Registered workers: alive (heartbeat younger than stale_seconds) and
-- not, and the job slots of the live ones.
SELECT count(*) FILTER (WHERE heartbeat_at >= now() - make_interval(secs => @stale_seconds::float8))::bigint AS alive,
       count(*) FILTER (WHERE heartbeat_at < now() - make_interval(secs => @stale_seconds::float8))::bigint AS stale,
       coalesce(sum(concurrency) FILTER (WHERE heartbeat_at >= now() - make_interval(secs => @stale_seconds::float8)), 0)::bigint AS slots
  FROM pgq.workers;

-- name: MetricsPausedQueues :many
-- Queues with a settings row, and whether they are paused.
SELECT name, paused FROM pgq.queues ORDER BY name;
