-- Least privilege: three kinds of database users, granted by one function.
--
--   producer  enqueues jobs and reads results, states and statistics; it
--             cannot change or delete a job once it exists.
--   worker    runs jobs: claims, completes, retries, rescues, prunes
--             (SELECT, INSERT, UPDATE, DELETE on pgq's tables).
--   admin     everything the dashboard and the operator commands do
--             (all privileges on pgq's tables, sequences and functions).
--
-- Roles are cluster-wide and creating them needs CREATEROLE, so pgq does
-- not create them: an administrator creates the login roles and hands each
-- to pgq.grant_access. Schema changes (pgq migrate) still run as the owner
-- of the schema. Every grant is recorded in pgq.access_grants, and a later
-- migration that adds tables calls pgq.regrant_access() so that existing
-- roles keep the access they were given.

CREATE TABLE pgq.access_grants (
    role_name  text        NOT NULL PRIMARY KEY,
    access     text        NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT access_grants_access_known CHECK (access IN ('producer', 'worker', 'admin'))
);

COMMENT ON TABLE pgq.access_grants IS 'Roles given access to this schema by pgq.grant_access, re-applied by pgq.regrant_access after migrations.';

CREATE FUNCTION pgq.grant_access(role_name text, access text) RETURNS void
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

COMMENT ON FUNCTION pgq.grant_access(text, text) IS 'Give an existing role producer, worker or admin access to this pgq schema (docs/roles.md).';

CREATE FUNCTION pgq.revoke_access(role_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    s text := rtrim('pgq.', '.');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = revoke_access.role_name) THEN
        DELETE FROM pgq.access_grants AS g WHERE g.role_name = revoke_access.role_name;
        RETURN false;
    END IF;
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', s, revoke_access.role_name);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', s, revoke_access.role_name);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM %I', s, revoke_access.role_name);
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', s, revoke_access.role_name);
    DELETE FROM pgq.access_grants AS g WHERE g.role_name = revoke_access.role_name;
    RETURN true;
END
$$;

COMMENT ON FUNCTION pgq.revoke_access(text) IS 'Take away the access pgq.grant_access gave a role; false when the role no longer exists.';

CREATE FUNCTION pgq.regrant_access() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    g record;
    n integer := 0;
BEGIN
    FOR g IN SELECT a.role_name, a.access FROM pgq.access_grants AS a
              WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = a.role_name)
              ORDER BY a.role_name
    LOOP
        PERFORM pgq.grant_access(g.role_name, g.access);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

COMMENT ON FUNCTION pgq.regrant_access() IS 'Re-apply every recorded grant (after a migration added tables); returns how many roles it covered.';
