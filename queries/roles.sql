-- Statements of `pgq roles`: least-privilege access (migrations/0012_roles.up.sql).

-- name: GrantAccess :exec
SELECT pgq.grant_access(@role_name::text, @access::text);

-- name: RevokeAccess :one
SELECT pgq.revoke_access(@role_name::text)::boolean AS revoked;

-- name: ListAccessGrants :many
-- Recorded grants, with whether the role still exists and can log in.
SELECT g.role_name, g.access, g.granted_at,
       (r.rolname IS NOT NULL)::boolean AS role_exists,
       coalesce(r.rolcanlogin, false)::boolean AS can_login
  FROM pgq.access_grants AS g
  LEFT JOIN pg_catalog.pg_roles AS r ON r.rolname = g.role_name
 ORDER BY g.role_name;
