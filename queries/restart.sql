-- name: RescuePreviousProcessJobs :one
-- At a worker's start: rescue the jobs an earlier process with the same id
-- left running (pgq.rescue_previous_jobs, migrations/0009_sql_api.up.sql,
-- which workers in other languages call too). Returns how many.
SELECT pgq.rescue_previous_jobs(@worker_id::text)::bigint AS rescued;
