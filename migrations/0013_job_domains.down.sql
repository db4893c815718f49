-- Back to 0012: the rules of pgq.jobs's columns as CHECK constraints of
-- the table (as 0001, 0008 and 0010 made them), the columns of plain
-- types, and no domains. Every object is written as pgq.<name>; see 0001.
--
-- The columns change back without a rewrite of the table (a domain and
-- its base type are stored alike); the constraints are checked by one
-- scan of it, and its partial indexes are rebuilt.

LOCK TABLE pgq.jobs IN ACCESS EXCLUSIVE MODE;

-- The views and the triggers that read these columns go and come back
-- unchanged, with every grant on the views (see 0013's up migration).
CREATE TEMPORARY TABLE job_view_grants (view_name name, grantee oid, privilege text, grantable boolean);
INSERT INTO job_view_grants
SELECT c.relname, a.grantee, a.privilege_type, a.is_grantable
  FROM pg_catalog.pg_class AS c, aclexplode(c.relacl) AS a
 WHERE c.relnamespace = rtrim('pgq.', '.')::regnamespace
   AND c.relname IN ('queue_stats', 'job_overview', 'worker_overview', 'periodic_overview', 'workflow_steps')
   AND a.grantee <> c.relowner;

DROP VIEW pgq.queue_stats;
DROP VIEW pgq.job_overview;
DROP VIEW pgq.worker_overview;
DROP VIEW pgq.periodic_overview;
DROP VIEW pgq.workflow_steps;
DROP TRIGGER jobs_workflow_finished ON pgq.jobs;
DROP TRIGGER jobs_workflow_counted ON pgq.jobs;

ALTER TABLE pgq.jobs
    ALTER COLUMN task               TYPE text COLLATE "C",
    ALTER COLUMN queue              TYPE text COLLATE "C",
    ALTER COLUMN state              TYPE text COLLATE "C",
    ALTER COLUMN unique_key         TYPE text COLLATE "C",
    ALTER COLUMN unique_scope       TYPE text COLLATE "C",
    ALTER COLUMN mutex_key          TYPE text COLLATE "C",
    ALTER COLUMN priority           TYPE smallint,
    ALTER COLUMN meta               TYPE jsonb,
    ALTER COLUMN errors             TYPE jsonb,
    ALTER COLUMN max_retries        TYPE integer,
    ALTER COLUMN retry_delay_ms     TYPE integer,
    ALTER COLUMN time_limit_ms      TYPE integer,
    ALTER COLUMN soft_time_limit_ms TYPE integer,
    ADD CONSTRAINT jobs_task_length CHECK (length(task) BETWEEN 1 AND 200),
    ADD CONSTRAINT jobs_queue_length CHECK (length(queue) BETWEEN 1 AND 100),
    ADD CONSTRAINT jobs_state_known
        CHECK (state IN ('pending', 'scheduled', 'available', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
    ADD CONSTRAINT jobs_priority_range CHECK (priority BETWEEN 0 AND 9),
    ADD CONSTRAINT jobs_meta_object CHECK (jsonb_typeof(meta) = 'object'),
    ADD CONSTRAINT jobs_errors_array CHECK (jsonb_typeof(errors) = 'array'),
    ADD CONSTRAINT jobs_max_retries_positive CHECK (max_retries >= 0),
    ADD CONSTRAINT jobs_retry_delay_positive CHECK (retry_delay_ms > 0),
    ADD CONSTRAINT jobs_time_limit_positive CHECK (time_limit_ms > 0),
    ADD CONSTRAINT jobs_soft_time_limit_positive CHECK (soft_time_limit_ms > 0),
    ADD CONSTRAINT jobs_unique_key_length CHECK (length(unique_key) BETWEEN 1 AND 255),
    ADD CONSTRAINT jobs_unique_scope_known CHECK (unique_scope IN ('pending', 'active', 'window')) NOT VALID,
    ADD CONSTRAINT jobs_mutex_key_length CHECK (length(mutex_key) BETWEEN 1 AND 300) NOT VALID;

DROP DOMAIN pgq.task_name;
DROP DOMAIN pgq.queue_name;
DROP DOMAIN pgq.job_state;
DROP DOMAIN pgq.unique_key;
DROP DOMAIN pgq.unique_scope;
DROP DOMAIN pgq.mutex_key;
DROP DOMAIN pgq.job_priority;
DROP DOMAIN pgq.json_object;
DROP DOMAIN pgq.json_array;
DROP DOMAIN pgq.non_negative_int;
DROP DOMAIN pgq.positive_int;

CREATE TRIGGER jobs_workflow_finished
    AFTER UPDATE OF state ON pgq.jobs
    FOR EACH ROW
    WHEN (NEW.root_id IS NOT NULL
          AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state IN ('succeeded', 'failed', 'cancelled'))
    EXECUTE FUNCTION pgq.workflow_job_finished();

CREATE CONSTRAINT TRIGGER jobs_workflow_counted
    AFTER UPDATE OF state ON pgq.jobs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.root_id IS NOT NULL
          AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state = 'succeeded')
    EXECUTE FUNCTION pgq.workflow_jobs_counted();

-- Counts per queue and state (one row per pair that has jobs).
CREATE VIEW pgq.queue_stats AS
SELECT queue, state, count(*)::bigint AS count
  FROM pgq.jobs
 GROUP BY queue, state;

-- Jobs with their latest error, for humans at a psql prompt.
CREATE VIEW pgq.job_overview AS
SELECT id, task, queue, state, priority, attempt, max_retries,
       run_at, expires_at, created_at, started_at, finished_at, worker_id, unique_key,
       errors -> -1 ->> 'error'             AS last_error,
       (errors -> -1 ->> 'at')::timestamptz AS last_error_at
  FROM pgq.jobs;

-- Workers with their number of running jobs, for humans at a psql prompt.
CREATE VIEW pgq.worker_overview AS
SELECT w.id, w.host, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
       extract(epoch FROM now() - w.heartbeat_at)::float8 AS heartbeat_age_seconds,
       (SELECT count(*) FROM pgq.jobs j WHERE j.state = 'running' AND j.worker_id = w.id)::bigint AS running
  FROM pgq.workers w;

-- Periodic tasks with their last and next run and the state of the last
-- job, for humans at a psql prompt.
CREATE VIEW pgq.periodic_overview AS
SELECT t.name, t.spec, t.time_zone, t.task, t.enabled, t.source, t.missed,
       t.last_run_at AS last_run,
       t.last_tick,
       t.next_tick   AS next_run,
       t.last_job_id,
       j.state       AS last_job_state,
       t.error
  FROM pgq.periodic_tasks t
  LEFT JOIN pgq.jobs j ON j.id = t.last_job_id;

-- Every node of every workflow with its job's state, for humans and SQL.
CREATE VIEW pgq.workflow_steps AS
SELECT w.root_id AS workflow_id, w.id, w.parent_id, w.role, w.position, w.kind,
       coalesce(j.task, w.task, '') AS task,
       (CASE WHEN w.kind = 'task' AND j.id IS NOT NULL THEN j.state ELSE w.state END)::text AS state,
       w.remaining, j.attempt, j.queue, w.created_at, coalesce(j.finished_at, w.finished_at) AS finished_at,
       (w.failure ->> 'error')::text AS error, (w.failure ->> 'job_id')::bigint AS failed_job_id
  FROM pgq.workflow_nodes AS w
  LEFT JOIN pgq.jobs AS j ON j.id = w.id AND w.kind = 'task';

COMMENT ON VIEW pgq.workflow_steps IS 'One row per workflow node (chain, group, chord, task, callback) with its current state.';

DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM job_view_grants LOOP
        EXECUTE format('GRANT %s ON TABLE %I.%I TO %s%s', g.privilege, rtrim('pgq.', '.'), g.view_name,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                       CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;
DROP TABLE job_view_grants;

-- pgq.claim as 0009 made it, without 0013's casts.
CREATE OR REPLACE FUNCTION pgq.claim(worker_id text, queues text[], n integer)
RETURNS TABLE (id bigint, task text, queue text, priority integer, args jsonb, meta jsonb,
               attempt integer, max_retries integer, retry_delay_ms integer,
               time_limit_ms integer, soft_time_limit_ms integer, ignore_result boolean,
               run_at timestamptz, expires_at timestamptz, created_at timestamptz,
               started_at timestamptz, parent_id bigint, root_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    free       text[] := claim.queues;
    excluded   text[] := '{}';
    has_limits boolean;
    limited    boolean := false;
    ids      bigint[] := '{}';
    more     bigint[];
    gone     bigint[];
BEGIN
    IF claim.worker_id IS NULL OR claim.worker_id = '' THEN
        RAISE EXCEPTION 'pgq: worker_id is empty' USING ERRCODE = '22023';
    END IF;
    IF claim.n IS NULL OR claim.n < 1 OR claim.queues IS NULL THEN
        RETURN;
    END IF;
    -- The statements that name 0010's objects (pgq.limits, mutex_key) are
    -- static, so PL/pgSQL plans them once per session, but only ever
    -- reached once 0010 is applied: PL/pgSQL resolves names when a
    -- statement first runs, not when the function is created.
    has_limits := to_regclass('pgq.limits') IS NOT NULL;
    IF has_limits THEN
        -- LimitsSummary: the tasks with a limit and the given queues with
        -- one; and whether the limited claim has anything to look at.
        SELECT ARRAY(SELECT l.name FROM pgq.limits AS l WHERE l.scope = 'task'),
               ARRAY(SELECT q FROM unnest(claim.queues) AS q
                      WHERE NOT EXISTS (SELECT 1 FROM pgq.limits AS l WHERE l.scope = 'queue' AND l.name = q)),
               EXISTS (SELECT 1 FROM pgq.limits AS l WHERE l.scope = 'task' OR (l.scope = 'queue' AND l.name = ANY (claim.queues)))
               OR EXISTS (SELECT 1 FROM unnest(claim.queues) AS q CROSS JOIN LATERAL (
                           SELECT 1 FROM pgq.jobs AS w
                            WHERE w.queue = q AND w.mutex_key IS NOT NULL
                              AND w.state IN ('scheduled', 'available', 'retrying') LIMIT 1) AS x)
          INTO excluded, free, limited;
    END IF;

    IF cardinality(free) > 0 THEN
        IF has_limits THEN
            -- ClaimJobs since 0010: limited jobs are left to the limited claim.
            WITH claimed AS (
            UPDATE pgq.jobs AS j
               SET state = 'running', attempt = j.attempt + 1, started_at = now(), worker_id = claim.worker_id
             WHERE j.id = ANY (ARRAY(
                    SELECT c.id
                      FROM unnest(free) AS q
                     CROSS JOIN LATERAL (
                           SELECT w.id, w.priority, w.run_at
                             FROM pgq.jobs AS w
                            WHERE w.queue = q
                              AND w.state IN ('scheduled', 'available', 'retrying')
                              AND w.run_at <= now()
                              AND w.mutex_key IS NULL
                              AND w.task <> ALL (excluded)
                            ORDER BY w.priority DESC, w.run_at, w.id
                            LIMIT claim.n
                              FOR UPDATE SKIP LOCKED
                           ) AS c
                     WHERE NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = q AND p.paused)
                     ORDER BY c.priority DESC, c.run_at, c.id
                     LIMIT claim.n
                   ))
            RETURNING j.id
            )
            SELECT coalesce(array_agg(claimed.id), '{}') INTO ids FROM claimed;
        ELSE
            WITH claimed AS (
            UPDATE pgq.jobs AS j
               SET state = 'running', attempt = j.attempt + 1, started_at = now(), worker_id = claim.worker_id
             WHERE j.id = ANY (ARRAY(
                    SELECT c.id
                      FROM unnest(free) AS q
                     CROSS JOIN LATERAL (
                           SELECT w.id, w.priority, w.run_at
                             FROM pgq.jobs AS w
                            WHERE w.queue = q
                              AND w.state IN ('scheduled', 'available', 'retrying')
                              AND w.run_at <= now()
                            ORDER BY w.priority DESC, w.run_at, w.id
                            LIMIT claim.n
                              FOR UPDATE SKIP LOCKED
                           ) AS c
                     WHERE NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = q AND p.paused)
                     ORDER BY c.priority DESC, c.run_at, c.id
                     LIMIT claim.n
                   ))
            RETURNING j.id
            )
            SELECT coalesce(array_agg(claimed.id), '{}') INTO ids FROM claimed;
        END IF;
    END IF;

    IF limited AND cardinality(ids) < claim.n THEN
        -- No mutex tasks (an SQL worker registers none); scan_max as the Go
        -- fetcher sets it; known_tasks, where the function takes them,
        -- NULL: any task.
        EXECUTE format($q$SELECT coalesce(array_agg(l.id), '{}') FROM pgq.claim_limited($1, $2, $3, '{}'::jsonb, $4%s) AS l$q$,
                       CASE WHEN to_regprocedure('pgq.claim_limited(text, text[], integer, jsonb, integer, text[])') IS NOT NULL
                            THEN ', NULL::text[]' ELSE '' END)
           INTO more USING claim.worker_id, claim.queues, claim.n - cardinality(ids), greatest(100, 4 * (claim.n - cardinality(ids)));
        ids := ids || more;
    END IF;
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;

    -- Expired before a worker could start them: ended as a Go worker ends
    -- them after its claim (FinishJobs, cancelled, the attempt refunded).
    WITH expired AS (
        UPDATE pgq.jobs AS j
           SET state = 'cancelled', attempt = j.attempt - 1, finished_at = now(),
               errors = j.errors || jsonb_build_array(jsonb_build_object(
                            'attempt', j.attempt, 'at', now(),
                            'error', 'expired at '
                                     || rtrim(rtrim(to_char(j.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.')
                                     || 'Z before a worker could start it'))
         WHERE j.id = ANY (ids)
           AND j.expires_at < now()
        RETURNING j.id
    )
    SELECT coalesce(array_agg(expired.id), '{}') INTO gone FROM expired;
    IF cardinality(gone) > 0 THEN
        PERFORM pg_notify('pgq.results', string_agg(x.id::text, ','))
           FROM (SELECT e.id, (row_number() OVER ()) / 300 AS chunk FROM unnest(gone) AS e (id)) AS x
          GROUP BY x.chunk;
    END IF;

    RETURN QUERY
    SELECT c.id, c.task, c.queue, c.priority::integer, c.args, c.meta, c.attempt, c.max_retries,
           c.retry_delay_ms, c.time_limit_ms, c.soft_time_limit_ms, c.ignore_result,
           c.run_at, c.expires_at, c.created_at, c.started_at, c.parent_id, c.root_id
      FROM pgq.jobs AS c
     WHERE c.id = ANY (ids)
       AND c.state = 'running'
     ORDER BY c.priority DESC, c.run_at, c.id;
END
$$;

-- Changing a column's type throws away its statistics; without them the
-- planner would guess at the claim's selectivity until autovacuum's next
-- ANALYZE. (A sample of at most 30,000 rows, whatever the table's size.)
ANALYZE pgq.jobs;
