-- pgq schema, step 5: revoke, queue pause/resume and retention.
--
-- Every object is written as pgq.<name>; see 0001 for why. (0004 is beat's.)
-- The design is in docs/control.md.

-- Revoke of a running job. Revoke marks the row (revoked_at) and, with
-- terminate, asks its worker to cancel the handler: at once by a NOTIFY on
-- pgq.control, and by the worker's heartbeat, which looks for marked rows
-- among its running jobs, when that notification is lost. A marked job
-- never runs again: whatever would send it back to a queue (a retry, a
-- snooze, a shutdown hand-back, a rescue) ends it cancelled instead.
-- Both columns are added without a table rewrite (constant defaults).
ALTER TABLE pgq.jobs
    ADD COLUMN revoked_at       timestamptz,
    ADD COLUMN revoke_terminate boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN pgq.jobs.revoked_at IS 'When the job was revoked; a revoked job is never run again.';
COMMENT ON COLUMN pgq.jobs.revoke_terminate IS 'Revoked with terminate: the worker running it cancels the handler.';

-- Per-queue settings. A queue needs no row: a missing row means "not
-- paused, defaults". Workers skip paused queues in the claim statement
-- (one primary-key probe per queue per claim); resuming sends the usual
-- wake-up on pgq.jobs, so workers claim at once. Room for per-queue
-- defaults (rate limits, concurrency caps) later, as columns or in meta.
CREATE TABLE pgq.queues (
    name       text        COLLATE "C" PRIMARY KEY,
    paused     boolean     NOT NULL DEFAULT false,
    paused_at  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    meta       jsonb       NOT NULL DEFAULT '{}',

    CONSTRAINT queues_name_length CHECK (length(name) BETWEEN 1 AND 100),
    CONSTRAINT queues_meta_object CHECK (jsonb_typeof(meta) = 'object')
);

COMMENT ON TABLE pgq.queues IS 'Queue settings: paused queues are not claimed from. A queue without a row has the defaults.';

-- Retention: the maintenance leader deletes finished jobs older than a
-- configured age per final state, oldest first, 1,000 rows per statement.
-- This index lets each statement find its rows without scanning the
-- table. On a large existing table, build it first by hand with
--   CREATE INDEX CONCURRENTLY jobs_finished_idx ON pgq.jobs (state, finished_at)
--     WHERE state IN ('succeeded', 'failed', 'cancelled');
-- so that this migration finds it and does not block writes while building.
CREATE INDEX IF NOT EXISTS jobs_finished_idx ON pgq.jobs (state, finished_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');

-- SQL API for psql and Django: pause and resume a queue.
CREATE FUNCTION pgq.pause_queue(queue text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO pgq.queues AS q (name, paused, paused_at, updated_at)
    VALUES (pause_queue.queue, true, now(), now())
    ON CONFLICT (name) DO UPDATE
       SET paused = true, paused_at = coalesce(q.paused_at, now()), updated_at = now();
$$;

CREATE FUNCTION pgq.resume_queue(queue text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO pgq.queues AS q (name, paused, paused_at, updated_at)
    VALUES (resume_queue.queue, false, NULL, now())
    ON CONFLICT (name) DO UPDATE SET paused = false, paused_at = NULL, updated_at = now();
    SELECT pg_notify('pgq.jobs', resume_queue.queue);
$$;

COMMENT ON FUNCTION pgq.pause_queue IS 'Stop workers from claiming jobs of a queue; running jobs finish.';
COMMENT ON FUNCTION pgq.resume_queue IS 'Let workers claim jobs of a queue again, and wake them.';
