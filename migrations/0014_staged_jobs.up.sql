-- pgq schema, step 14: staged jobs.
--
-- Every object is written as pgq.<name>; see 0001 for why.
--
-- A job row in pgq.jobs is wide, its columns are checked by domains and
-- it enters several indexes: inserting one costs the server several times
-- what a business transaction's own single-row INSERT costs, which is what
-- a transactional enqueue adds to the caller's transaction
-- (docs/performance.md, "Staged enqueue"). A staged enqueue
-- (queue.Options.Staged) writes its job here instead: plain columns, no
-- checks beyond NOT NULL, no index at all. Workers move staged jobs into
-- pgq.jobs in batches (queries/staged.sql), with the job's id taken from
-- pgq.jobs's own sequence at staging, so the id the producer got stays
-- the job's id. The Go client checks every value before staging, as it
-- does before an INSERT into pgq.jobs; the domains check them again when
-- the job is moved.
CREATE TABLE pgq.staged_jobs (
    id                 bigint      NOT NULL DEFAULT nextval('pgq.jobs_id_seq'),
    task               text        NOT NULL,
    queue              text        NOT NULL,
    state              text        NOT NULL,
    priority           smallint,
    args               jsonb       NOT NULL,
    meta               jsonb       NOT NULL,
    max_retries        integer,
    retry_delay_ms     integer,
    time_limit_ms      integer,
    soft_time_limit_ms integer,
    ignore_result      boolean     NOT NULL,
    run_at             timestamptz NOT NULL,
    expires_at         timestamptz,
    mutex_key          text,
    created_at         timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE pgq.staged_jobs IS 'Jobs enqueued with Options.Staged, waiting for a worker to move them into pgq.jobs (they keep their id). Written by the Go client only.';

-- Producers may stage jobs: pgq.grant_access as 0012 made it, with
-- staged_jobs among the tables a producer inserts into.
CREATE OR REPLACE FUNCTION pgq.grant_access(role_name text, access text) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    -- The schema this copy of pgq lives in ('pgq.' follows the schema).
    s text := rtrim('pgq.', '.');
    t name;
BEGIN
    IF grant_access.access IS NULL OR grant_access.access NOT IN ('producer', 'worker', 'admin') THEN
        RAISE EXCEPTION 'pgq: unknown access %: use producer, worker or admin', quote_nullable(grant_access.access)
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = grant_access.role_name) THEN
        RAISE EXCEPTION 'pgq: role % does not exist: create it first (CREATE ROLE % LOGIN PASSWORD ...)',
            quote_nullable(grant_access.role_name), quote_ident(coalesce(grant_access.role_name, '?'))
            USING ERRCODE = '42704';
    END IF;

    -- Start from nothing, so that a role moved from worker to producer
    -- loses what it no longer needs.
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', s, grant_access.role_name);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', s, grant_access.role_name);

    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, grant_access.role_name);
    -- Functions run with the caller's rights (none is SECURITY DEFINER), so
    -- EXECUTE gives nothing the table privileges do not.
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', s, grant_access.role_name);
    CASE grant_access.access
    WHEN 'producer' THEN
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', s, grant_access.role_name);
        -- Inserting jobs: pgq.enqueue, EnqueueTx, staging and COPY (EnqueueMany
        -- reserves ids from the sequence first), and workflows (their
        -- nodes are inserted with their jobs).
        FOR t IN SELECT c.relname FROM pg_catalog.pg_class AS c
                  WHERE c.relnamespace = s::regnamespace AND c.relkind = 'r'
                    AND c.relname IN ('jobs', 'workflow_nodes', 'staged_jobs')
        LOOP
            EXECUTE format('GRANT INSERT ON TABLE %I.%I TO %I', s, t, grant_access.role_name);
        END LOOP;
        EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', s, grant_access.role_name);
    WHEN 'worker' THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', s, grant_access.role_name);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', s, grant_access.role_name);
    WHEN 'admin' THEN
        EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO %I', s, grant_access.role_name);
        EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO %I', s, grant_access.role_name);
    END CASE;
    -- Only the owner may read or change who has access.
    IF grant_access.access <> 'admin' THEN
        EXECUTE format('REVOKE ALL ON TABLE %I.access_grants FROM %I', s, grant_access.role_name);
    END IF;

    INSERT INTO pgq.access_grants AS g (role_name, access)
    VALUES (grant_access.role_name, grant_access.access)
    ON CONFLICT ON CONSTRAINT access_grants_pkey DO UPDATE SET access = excluded.access, granted_at = now();
END
$$;

SELECT pgq.regrant_access();
