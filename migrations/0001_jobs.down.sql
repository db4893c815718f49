DROP VIEW IF EXISTS pgq.job_overview;
DROP VIEW IF EXISTS pgq.queue_stats;
DROP FUNCTION IF EXISTS pgq.enqueue(text, jsonb, text, integer, timestamptz, interval, timestamptz, integer, interval, interval, interval, boolean, text, jsonb);
DROP TABLE IF EXISTS pgq.jobs;
