-- name: ListenResults :exec
-- Finished jobs are announced on this channel, payload a comma-separated
-- list of job ids, one notification per completion batch.
LISTEN "pgq.results";

-- name: ForgetResult :execrows
UPDATE pgq.jobs SET result = NULL WHERE id = @id;

-- name: JobStates :many
SELECT id, state FROM pgq.jobs WHERE id = ANY (@ids::bigint[]);

-- name: JobResults :many
SELECT id, state, result, coalesce(errors -> -1 ->> 'error', '')::text AS last_error
  FROM pgq.jobs
 WHERE id = ANY (@ids::bigint[]);
