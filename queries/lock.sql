-- Statements of package lock: named advisory locks. The key is computed
-- by the caller (lock.Key, or pgq.lock_key in SQL), so these need no pgq
-- object; they run on the lock's own connection or the caller's
-- transaction.

-- name: TryAdvisoryLock :one
SELECT pg_try_advisory_lock(@key::bigint)::boolean AS acquired;

-- name: AdvisoryLock :exec
-- Waits until the lock is free; cancelled with the statement.
SELECT pg_advisory_lock(@key::bigint);

-- name: AdvisoryUnlock :one
SELECT pg_advisory_unlock(@key::bigint)::boolean AS released;

-- name: TryAdvisoryXactLock :one
SELECT pg_try_advisory_xact_lock(@key::bigint)::boolean AS acquired;

-- name: AdvisoryXactLock :exec
SELECT pg_advisory_xact_lock(@key::bigint);

-- name: InternalLockKeys :many
-- The keys of pgq's own advisory locks (beat leader, maintenance), which
-- hash their names with hashtext, so that a listing can name them.
SELECT n.name::text AS name, hashtext(n.name)::bigint AS key
  FROM unnest(@names::text[]) AS n(name);

-- name: ListAdvisoryLocks :many
-- Advisory locks of the current database, held or awaited, with the
-- session behind each. A one-bigint key is stored as (classid, objid) =
-- (high, low 32 bits), objsubid 1; a two-int4 key has objsubid 2.
SELECT l.pid::integer AS pid,
       l.granted::boolean AS granted,
       l.mode::text AS mode,
       (l.objsubid = 1)::boolean AS bigint_key,
       coalesce(CASE WHEN l.objsubid = 1
                     THEN (l.classid::bigint << 32) | l.objid::bigint
                END, 0)::bigint AS key,
       l.classid::bigint AS key1,
       l.objid::bigint AS key2,
       l.waitstart AS wait_start,
       coalesce(a.application_name, '')::text AS application_name,
       coalesce(host(a.client_addr), '')::text AS client_addr,
       a.client_port AS client_port,
       coalesce(a.usename::text, '')::text AS usename,
       a.backend_start AS backend_start,
       a.xact_start AS xact_start,
       coalesce(a.state, '')::text AS state
  FROM pg_catalog.pg_locks l
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory'
   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
 ORDER BY l.classid, l.objid, l.granted DESC, l.pid;
