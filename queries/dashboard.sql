-- Statements of the web dashboard (package dashboard) that the queue and
-- periodic packages do not already have. Design and timings:
-- docs/dashboard.md.

-- name: DashboardMaxJobID :one
SELECT coalesce(max(id), 0)::bigint AS max_id FROM pgq.jobs;

-- name: DashboardJobs :many
-- The jobs page: newest first, keyset-paginated by id, every filter
-- optional. The search looks for a case-insensitive substring of the
-- args and of the error history (messages and stacks); strpos needs no
-- escaping of LIKE's wildcards. The primary key is walked backwards from
-- before_id, and never below min_id: the caller bounds each request to a
-- range of ids, so a filter that matches few rows cannot make one request
-- read the whole table (docs/dashboard.md).
SELECT id, task, queue, state, priority, attempt, max_retries, run_at, created_at, started_at, finished_at,
       coalesce(worker_id, '')::text AS worker_id,
       coalesce(errors -> -1 ->> 'error', '')::text AS last_error,
       left(args::text, 200)::text AS args_preview
  FROM pgq.jobs
 WHERE (sqlc.narg(state)::text IS NULL OR state = sqlc.narg(state)::text)
   AND (sqlc.narg(queue)::text IS NULL OR queue = sqlc.narg(queue)::text)
   AND (sqlc.narg(task)::text IS NULL OR task = sqlc.narg(task)::text)
   AND (sqlc.narg(created_from)::timestamptz IS NULL OR created_at >= sqlc.narg(created_from)::timestamptz)
   AND (sqlc.narg(created_to)::timestamptz IS NULL OR created_at < sqlc.narg(created_to)::timestamptz)
   AND (sqlc.narg(search)::text IS NULL
        OR strpos(lower(args::text), lower(sqlc.narg(search)::text)) > 0
        OR strpos(lower(errors::text), lower(sqlc.narg(search)::text)) > 0)
   AND id < @before_id::bigint
   AND id >= @min_id::bigint
 ORDER BY id DESC
 LIMIT @max_rows;

-- name: DashboardQueueCounts :many
-- The overview's counts, cheap enough to run every few seconds on a large
-- table: waiting and running jobs through the partial indexes that hold
-- only them (jobs_fetch_idx, jobs_running_idx), finished jobs only since
-- a time through jobs_finished_idx. (Counting every finished row reads
-- the whole table: about half a second per million rows.)
SELECT queue, state, count(*)::bigint AS count
  FROM pgq.jobs
 WHERE state IN ('scheduled', 'available', 'retrying')
 GROUP BY queue, state
UNION ALL
SELECT queue, state, count(*)::bigint
  FROM pgq.jobs
 WHERE state = 'running'
 GROUP BY queue, state
UNION ALL
SELECT queue, state, count(*)::bigint
  FROM pgq.jobs
 WHERE state IN ('succeeded', 'failed', 'cancelled')
   AND finished_at >= @finished_since::timestamptz
 GROUP BY queue, state;

-- name: DashboardQueueSettings :many
-- Every queue with a settings row: its paused flag.
SELECT name, paused FROM pgq.queues ORDER BY name;

-- name: DashboardOldestWaiting :many
-- Per queue, the job that has waited longest among those whose run time
-- has come. jobs_fetch_idx is ordered (queue, priority DESC, run_at, id):
-- one probe per queue and priority reads the earliest run time of each,
-- instead of reading every waiting job.
SELECT DISTINCT ON (o.queue) o.queue::text AS queue, o.id, o.run_at,
       greatest(extract(epoch FROM now() - o.run_at), 0)::float8 AS age_seconds
  FROM unnest(@queues::text[]) AS q (name)
 CROSS JOIN generate_series(0, 9) AS p (priority)
 CROSS JOIN LATERAL (
        SELECT j.queue, j.id, j.run_at
          FROM pgq.jobs AS j
         WHERE j.queue = q.name
           AND j.priority = p.priority
           AND j.state IN ('scheduled', 'available', 'retrying')
         ORDER BY j.run_at, j.id
         LIMIT 1) AS o
 WHERE o.run_at <= now()
 ORDER BY o.queue, o.run_at, o.id;

-- name: DashboardSeries :many
-- Throughput and latency of finished jobs, in buckets of bucket_seconds
-- since a time, found through jobs_finished_idx (state, finished_at).
-- Wait is from the run time of the last attempt to its start; run is from
-- its start to its end.
SELECT date_bin(make_interval(secs => @bucket_seconds::float8), finished_at, '2000-01-01 00:00:00+00'::timestamptz)::timestamptz AS bucket,
       count(*) FILTER (WHERE state = 'succeeded')::bigint AS succeeded,
       count(*) FILTER (WHERE state = 'failed')::bigint AS failed,
       coalesce(avg(greatest(extract(epoch FROM started_at - run_at), 0)), 0)::float8 AS wait_avg_seconds,
       coalesce(max(greatest(extract(epoch FROM started_at - run_at), 0)), 0)::float8 AS wait_max_seconds,
       coalesce(avg(greatest(extract(epoch FROM finished_at - started_at), 0)), 0)::float8 AS run_avg_seconds,
       coalesce(max(greatest(extract(epoch FROM finished_at - started_at), 0)), 0)::float8 AS run_max_seconds
  FROM pgq.jobs
 WHERE state IN ('succeeded', 'failed')
   AND finished_at >= @since::timestamptz
   AND (sqlc.narg(queue)::text IS NULL OR queue = sqlc.narg(queue)::text)
 GROUP BY 1
 ORDER BY 1;

-- name: DashboardGoneWorkers :many
-- Workers no longer registered (stopped, or removed after they died) that
-- finished jobs since a time: the "recently dead" of the workers page.
-- Only jobs from min_id up are read (the newest ones): jobs_finished_idx
-- holds no worker_id, and the planner scanned the whole table for ten
-- minutes of a busy queue.
SELECT j.worker_id::text AS worker_id, max(j.finished_at)::timestamptz AS last_finished_at, count(*)::bigint AS finished
  FROM pgq.jobs AS j
 WHERE j.state IN ('succeeded', 'failed', 'cancelled')
   AND j.finished_at >= @since::timestamptz
   AND j.worker_id IS NOT NULL
   AND j.id >= @min_id::bigint
   AND NOT EXISTS (SELECT 1 FROM pgq.workers AS w WHERE w.id = j.worker_id)
 GROUP BY j.worker_id
 ORDER BY 2 DESC
 LIMIT @max_rows;
