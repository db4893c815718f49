DROP FUNCTION IF EXISTS pgq.lock_key(text);
