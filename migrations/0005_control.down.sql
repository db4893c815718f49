DROP FUNCTION IF EXISTS pgq.resume_queue(text);
DROP FUNCTION IF EXISTS pgq.pause_queue(text);
DROP INDEX IF EXISTS pgq.jobs_finished_idx;
DROP TABLE IF EXISTS pgq.queues;
ALTER TABLE pgq.jobs DROP COLUMN IF EXISTS revoke_terminate, DROP COLUMN IF EXISTS revoked_at;
