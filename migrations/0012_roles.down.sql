-- Revoke what was granted, then forget the functions and the record.
SELECT pgq.revoke_access(g.role_name) FROM pgq.access_grants AS g;
DROP FUNCTION pgq.regrant_access();
DROP FUNCTION pgq.revoke_access(text);
DROP FUNCTION pgq.grant_access(text, text);
DROP TABLE pgq.access_grants;
