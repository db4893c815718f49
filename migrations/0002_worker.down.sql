DROP VIEW IF EXISTS pgq.worker_overview;
DROP INDEX IF EXISTS pgq.jobs_running_idx;
DROP TABLE IF EXISTS pgq.workers;
