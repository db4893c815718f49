-- pgq schema, step 13: the rules of a job's columns move from CHECK
-- constraints on pgq.jobs into domains.
--
-- Every object is written as pgq.<name>; see 0001 for why.
--
-- Why: PostgreSQL 15 rebuilds a table's CHECK constraints from their
-- stored text (parse, plan, prepare) at every statement that writes the
-- table, so the 13 checks of pgq.jobs were a third of the server's CPU for
-- a single-row INSERT (the transactional enqueue) and taxed every
-- single-row UPDATE. A domain's checks are prepared once per connection
-- and kept in its type cache: the same rules, checked on every value as
-- before, at the cost of no checks at all (docs/performance.md, "Row
-- checks as domains"). The rules are exactly those of the constraints
-- they replace (0001, 0008, 0010).
--
-- How, without rewriting the table: a column changed to a domain that
-- has constraints is copied row by row into a new table (with every
-- index) under an ACCESS EXCLUSIVE lock, and pgq.jobs keeps its finished
-- jobs until retention prunes them. So the domains are created bare, the
-- columns change type (a domain is stored as its base type: no rewrite;
-- only the partial indexes, whose predicates name state, are rebuilt),
-- and the rules are added afterwards as NOT VALID. Every stored row was
-- already held to the same rules by the table's CHECK constraints; NOT
-- VALID only skips checking them again, never the check of new values.
-- (ALTER DOMAIN ... VALIDATE CONSTRAINT would scan pgq.jobs once per
-- domain, blocking writes meanwhile, to prove what is already known.)

-- Names are compared byte by byte, as before (COLLATE "C").
CREATE DOMAIN pgq.task_name    AS text COLLATE "C";
CREATE DOMAIN pgq.queue_name   AS text COLLATE "C";
CREATE DOMAIN pgq.job_state    AS text COLLATE "C";
CREATE DOMAIN pgq.unique_key   AS text COLLATE "C";
CREATE DOMAIN pgq.unique_scope AS text COLLATE "C";
CREATE DOMAIN pgq.mutex_key    AS text COLLATE "C";
CREATE DOMAIN pgq.job_priority AS smallint;
CREATE DOMAIN pgq.json_object  AS jsonb;
CREATE DOMAIN pgq.json_array   AS jsonb;
CREATE DOMAIN pgq.non_negative_int AS integer;
CREATE DOMAIN pgq.positive_int AS integer;

-- Every reader and writer of pgq.jobs waits from here to the end of the
-- migration. Locking the table first, before its views, leaves no order
-- in which a session reading a view could deadlock with us.
LOCK TABLE pgq.jobs IN ACCESS EXCLUSIVE MODE;

-- A column read by a view or named in a trigger's WHEN cannot change
-- type, so these go and come back unchanged below, with their grants.
-- The grants (pgq.grant_access's and any made by hand) are copied from
-- the catalog rather than re-derived, so that none is lost.
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
    DROP CONSTRAINT jobs_task_length,
    DROP CONSTRAINT jobs_queue_length,
    DROP CONSTRAINT jobs_state_known,
    DROP CONSTRAINT jobs_priority_range,
    DROP CONSTRAINT jobs_meta_object,
    DROP CONSTRAINT jobs_errors_array,
    DROP CONSTRAINT jobs_max_retries_positive,
    DROP CONSTRAINT jobs_retry_delay_positive,
    DROP CONSTRAINT jobs_time_limit_positive,
    DROP CONSTRAINT jobs_soft_time_limit_positive,
    DROP CONSTRAINT jobs_unique_key_length,
    DROP CONSTRAINT jobs_unique_scope_known,
    DROP CONSTRAINT jobs_mutex_key_length,
    ALTER COLUMN task               TYPE pgq.task_name    COLLATE "C",
    ALTER COLUMN queue              TYPE pgq.queue_name   COLLATE "C",
    ALTER COLUMN state              TYPE pgq.job_state    COLLATE "C",
    ALTER COLUMN unique_key         TYPE pgq.unique_key   COLLATE "C",
    ALTER COLUMN unique_scope       TYPE pgq.unique_scope COLLATE "C",
    ALTER COLUMN mutex_key          TYPE pgq.mutex_key    COLLATE "C",
    ALTER COLUMN priority           TYPE pgq.job_priority,
    ALTER COLUMN meta               TYPE pgq.json_object,
    ALTER COLUMN errors             TYPE pgq.json_array,
    ALTER COLUMN max_retries        TYPE pgq.non_negative_int,
    ALTER COLUMN retry_delay_ms     TYPE pgq.positive_int,
    ALTER COLUMN time_limit_ms      TYPE pgq.positive_int,
    ALTER COLUMN soft_time_limit_ms TYPE pgq.positive_int;

-- The rules. A violation reads: value for domain pgq.job_state violates
-- check constraint "job_state_known". The name rules beyond length
-- (allowed characters) stay with the two ways in, the Go client and
-- pgq.enqueue (see 0001).
ALTER DOMAIN pgq.task_name    ADD CONSTRAINT task_name_length  CHECK (length(VALUE) BETWEEN 1 AND 200) NOT VALID;
ALTER DOMAIN pgq.queue_name   ADD CONSTRAINT queue_name_length CHECK (length(VALUE) BETWEEN 1 AND 100) NOT VALID;
ALTER DOMAIN pgq.job_state    ADD CONSTRAINT job_state_known
    CHECK (VALUE IN ('pending', 'scheduled', 'available', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')) NOT VALID;
ALTER DOMAIN pgq.unique_key   ADD CONSTRAINT unique_key_length CHECK (length(VALUE) BETWEEN 1 AND 255) NOT VALID;
ALTER DOMAIN pgq.unique_scope ADD CONSTRAINT unique_scope_known CHECK (VALUE IN ('pending', 'active', 'window')) NOT VALID;
ALTER DOMAIN pgq.mutex_key    ADD CONSTRAINT mutex_key_length  CHECK (length(VALUE) BETWEEN 1 AND 300) NOT VALID;
ALTER DOMAIN pgq.job_priority ADD CONSTRAINT job_priority_range CHECK (VALUE BETWEEN 0 AND 9) NOT VALID;
ALTER DOMAIN pgq.json_object  ADD CONSTRAINT json_object_type  CHECK (jsonb_typeof(VALUE) = 'object') NOT VALID;
ALTER DOMAIN pgq.json_array   ADD CONSTRAINT json_array_type   CHECK (jsonb_typeof(VALUE) = 'array') NOT VALID;
ALTER DOMAIN pgq.non_negative_int ADD CONSTRAINT non_negative_int_range CHECK (VALUE >= 0) NOT VALID;
ALTER DOMAIN pgq.positive_int ADD CONSTRAINT positive_int_range CHECK (VALUE > 0) NOT VALID;

COMMENT ON DOMAIN pgq.task_name IS 'A task name: 1 to 200 characters (the Go client and pgq.enqueue also check which characters).';
COMMENT ON DOMAIN pgq.queue_name IS 'A queue name: 1 to 100 characters (the Go client and pgq.enqueue also check which characters).';
COMMENT ON DOMAIN pgq.job_state IS 'A job''s state: pending (a workflow step waiting for an earlier one), scheduled, available, running, retrying (waiting), succeeded, failed, cancelled (finished).';
COMMENT ON DOMAIN pgq.unique_key IS 'A unique key: 1 to 255 characters.';
COMMENT ON DOMAIN pgq.unique_scope IS 'How long a unique key is held: pending, active or window.';
COMMENT ON DOMAIN pgq.mutex_key IS 'A task mutex key: 1 to 300 characters.';
COMMENT ON DOMAIN pgq.job_priority IS 'A priority: 0 (lowest, the default) to 9 (highest).';
COMMENT ON DOMAIN pgq.json_object IS 'A JSON object.';
COMMENT ON DOMAIN pgq.json_array IS 'A JSON array.';
COMMENT ON DOMAIN pgq.non_negative_int IS 'An integer of 0 or more (max_retries).';
COMMENT ON DOMAIN pgq.positive_int IS 'An integer of 1 or more (durations in milliseconds).';

-- The triggers and views as 0008, 0001, 0002 and 0004 made them.
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

-- pgq.claim (0009) as it was, but for the casts in its RETURN QUERY,
-- which fails on a column whose type is a domain of the declared type
-- ("structure of query does not match function result type"). No other
-- function returns the columns by RETURN QUERY: SQL functions and
-- assignments coerce a domain to its base type by themselves.
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

    -- RETURN QUERY wants the declared types exactly: a domain is not its
    -- base type there (0013).
    RETURN QUERY
    SELECT c.id, c.task::text, c.queue::text, c.priority::integer, c.args, c.meta::jsonb, c.attempt, c.max_retries::integer,
           c.retry_delay_ms::integer, c.time_limit_ms::integer, c.soft_time_limit_ms::integer, c.ignore_result,
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
