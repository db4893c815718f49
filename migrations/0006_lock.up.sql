-- pgq schema, step 6: distributed locks.
--
-- Every object is written as pgq.<name>; see 0001 for why. (0003 is left
-- unused.) The design is in docs/locks.md.

-- The advisory-lock key of a named lock, as package lock computes it in Go
-- (lock.Key) and any other client must: the first 8 bytes of
-- SHA-256('<schema>.' || name), name encoded as UTF-8, read as a big-endian
-- two's-complement bigint. The schema is part of the input (the literal
-- below is rewritten with the rest of this file), so two copies of pgq in
-- one database never share a lock. sha256(bytea) is built into
-- PostgreSQL 11 and later; no extension is needed.
CREATE FUNCTION pgq.lock_key(name text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT ('x' || encode(substring(sha256(convert_to('pgq.' || name, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint
$$;

COMMENT ON FUNCTION pgq.lock_key(text) IS 'Advisory-lock key of a pgq named lock: first 8 bytes of sha256(''<schema>.'' || name) as a signed bigint.';
