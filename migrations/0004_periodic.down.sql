DROP VIEW IF EXISTS pgq.periodic_overview;
DROP TABLE IF EXISTS pgq.periodic_runs;
DROP TABLE IF EXISTS pgq.periodic_tasks;
DROP FUNCTION IF EXISTS pgq.periodic_tasks_notify();
DROP FUNCTION IF EXISTS pgq.periodic_tasks_edited();
