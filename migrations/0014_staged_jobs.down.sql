-- Staged jobs not moved yet are moved before the table goes, so that
-- rolling back loses no job.
INSERT INTO pgq.jobs (id, task, queue, state, priority, args, meta, max_retries,
                      retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result,
                      run_at, expires_at, mutex_key, created_at)
SELECT s.id, s.task, s.queue, s.state, coalesce(s.priority, d.priority, 0), s.args, s.meta,
       coalesce(s.max_retries, d.max_retries, 3), coalesce(s.retry_delay_ms, d.retry_delay_ms),
       coalesce(s.time_limit_ms, d.time_limit_ms), coalesce(s.soft_time_limit_ms, d.soft_time_limit_ms),
       s.ignore_result, s.run_at, s.expires_at, s.mutex_key, s.created_at
  FROM pgq.staged_jobs AS s
  LEFT JOIN pgq.queues AS d ON d.name = s.queue;
DROP TABLE pgq.staged_jobs;

-- pgq.grant_access as 0012 made it.
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
        -- Inserting jobs: pgq.enqueue, EnqueueTx and COPY (EnqueueMany
        -- reserves ids from the sequence first), and workflows (their
        -- nodes are inserted with their jobs).
        FOR t IN SELECT c.relname FROM pg_catalog.pg_class AS c
                  WHERE c.relnamespace = s::regnamespace AND c.relkind = 'r'
                    AND c.relname IN ('jobs', 'workflow_nodes')
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
