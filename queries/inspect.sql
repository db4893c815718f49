-- name: GetJob :one
SELECT * FROM pgq.jobs WHERE id = @id;

-- name: ListJobs :many
-- Newest first, keyset-paginated by id; every filter is optional.
SELECT id, task, queue, state, priority, attempt, max_retries, run_at, created_at, finished_at,
       coalesce(errors -> -1 ->> 'error', '')::text AS last_error
  FROM pgq.jobs
 WHERE (sqlc.narg(state)::text IS NULL OR state = sqlc.narg(state)::text)
   AND (sqlc.narg(queue)::text IS NULL OR queue = sqlc.narg(queue)::text)
   AND (sqlc.narg(task)::text IS NULL OR task = sqlc.narg(task)::text)
   AND (sqlc.narg(before_id)::bigint IS NULL OR id < sqlc.narg(before_id)::bigint)
 ORDER BY id DESC
 LIMIT @max_rows;

-- name: QueueStats :many
SELECT queue, state, count FROM pgq.queue_stats ORDER BY queue, state;

-- name: SchemaInstalled :one
-- Whether the jobs table exists in the configured schema.
SELECT (to_regclass('pgq.jobs') IS NOT NULL)::boolean AS installed;

-- name: SchemaExists :one
SELECT (to_regnamespace(@name::text) IS NOT NULL)::boolean AS present;
