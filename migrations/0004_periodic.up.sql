-- pgq schema, step 4: periodic tasks (beat).
--
-- Every object is written as pgq.<name>; see 0001 for why. The design and
-- the exactly-once argument are in docs/periodic.md.

-- One row per periodic task. Beat's leader reads the enabled rows, works out
-- which tick of each schedule is due and enqueues one job for it. The row
-- is the place to edit a schedule while beat runs: changes reach the leader
-- at once through the NOTIFY below, and on its next re-read at the latest.
CREATE TABLE pgq.periodic_tasks (
    name        text        COLLATE "C" PRIMARY KEY,
    -- A cron spec (5 fields, or 6 with seconds first), a descriptor
    -- (@hourly, @daily, @weekly, @monthly, @yearly) or "@every 30s".
    -- Checked by beat, not here: a bad spec is logged, shown in the error
    -- column and skipped, and every other task keeps firing.
    spec        text        NOT NULL,
    -- IANA zone the cron fields are read in (intervals ignore it).
    time_zone   text        NOT NULL DEFAULT 'UTC',
    task        text        COLLATE "C" NOT NULL,
    args        jsonb       NOT NULL DEFAULT '{}',
    -- Job options; NULL leaves them to the task's route and pgq's defaults.
    queue       text        COLLATE "C",
    priority    smallint,
    max_retries integer,
    -- How long a job may wait before it is discarded unstarted. NULL: until
    -- the next tick, so a backlog of one task never piles up.
    expires     interval,
    -- What a tick that was missed (beat was down) becomes: 'run-once', one
    -- job for the latest missed tick; 'skip', none.
    missed      text        NOT NULL DEFAULT 'run-once',
    enabled     boolean     NOT NULL DEFAULT true,
    -- Who defined it: 'code' (a program's periodic.Config.Entries, synced by
    -- the leader), 'cli' (pgq periodic add, periodic.Client.Add) or 'sql'
    -- (a row inserted by hand).
    source      text        NOT NULL DEFAULT 'sql',
    -- Set when a 'code' task is no longer defined by the leader's program;
    -- such a task is disabled, not deleted.
    removed_at  timestamptz,
    -- Ticks at or before this time never run. Moved to now() when the task
    -- is created, enabled, or its spec or zone change, so that a task never
    -- "catches up" on ticks from before it was meant to fire.
    start_after timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Beat's bookkeeping: the latest tick handled (enqueued or skipped);
    -- it only moves forward. last_run_at and last_job_id describe the last
    -- job enqueued, by a tick or by run-now.
    last_tick   timestamptz,
    last_run_at timestamptz,
    last_job_id bigint,
    -- Written by the leader: the next tick, and why the row cannot be
    -- scheduled (a bad spec or zone), for people reading the table.
    next_tick   timestamptz,
    error       text,

    CONSTRAINT periodic_tasks_name_length CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT periodic_tasks_task_length CHECK (length(task) BETWEEN 1 AND 200),
    CONSTRAINT periodic_tasks_queue_length CHECK (length(queue) BETWEEN 1 AND 100),
    CONSTRAINT periodic_tasks_priority_range CHECK (priority BETWEEN 0 AND 9),
    CONSTRAINT periodic_tasks_max_retries_positive CHECK (max_retries >= 0),
    CONSTRAINT periodic_tasks_expires_positive CHECK (expires > interval '0'),
    CONSTRAINT periodic_tasks_missed_known CHECK (missed IN ('run-once', 'skip')),
    CONSTRAINT periodic_tasks_source_known CHECK (source IN ('code', 'cli', 'sql'))
);

COMMENT ON TABLE pgq.periodic_tasks IS 'Periodic tasks run by beat; edit rows while beat runs (enabled, spec, args, ...).';

-- One row per tick that got its job. The primary key is the exactly-once
-- guarantee: a tick is inserted in the same transaction as its job, with
-- ON CONFLICT DO NOTHING, and the job is enqueued only when the insert
-- happened. Two processes that both believe they lead cannot both commit a
-- job for the same tick.
CREATE TABLE pgq.periodic_runs (
    name        text        COLLATE "C" NOT NULL REFERENCES pgq.periodic_tasks (name) ON DELETE CASCADE ON UPDATE CASCADE,
    tick        timestamptz NOT NULL,
    job_id      bigint,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    beat_id     text        NOT NULL,
    PRIMARY KEY (name, tick)
);

COMMENT ON TABLE pgq.periodic_runs IS 'The tick each periodic job was enqueued for; (name, tick) is unique, so a tick gets at most one job.';

CREATE INDEX periodic_runs_tick_idx ON pgq.periodic_runs (tick);

-- Edits of a definition: bump updated_at, and move start_after when the
-- task is (re-)enabled or its schedule changes.
CREATE FUNCTION pgq.periodic_tasks_edited() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF ROW(NEW.spec, NEW.time_zone, NEW.task, NEW.args, NEW.queue, NEW.priority, NEW.max_retries,
           NEW.expires, NEW.missed, NEW.enabled)
       IS DISTINCT FROM
       ROW(OLD.spec, OLD.time_zone, OLD.task, OLD.args, OLD.queue, OLD.priority, OLD.max_retries,
           OLD.expires, OLD.missed, OLD.enabled) THEN
        NEW.updated_at := now();
    END IF;
    IF (NEW.enabled AND NOT OLD.enabled)
       OR NEW.spec IS DISTINCT FROM OLD.spec
       OR NEW.time_zone IS DISTINCT FROM OLD.time_zone THEN
        NEW.start_after := greatest(NEW.start_after, now());
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER periodic_tasks_edited
    BEFORE UPDATE OF spec, time_zone, task, args, queue, priority, max_retries, expires, missed, enabled
    ON pgq.periodic_tasks
    FOR EACH ROW EXECUTE FUNCTION pgq.periodic_tasks_edited();

-- Wake the leader when a definition changes. Beat's own bookkeeping
-- (last_tick, next_tick, ...) is not in the column list, so it wakes nobody.
CREATE FUNCTION pgq.periodic_tasks_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgq.periodic', TG_OP);
    RETURN NULL;
END
$$;

CREATE TRIGGER periodic_tasks_notify
    AFTER INSERT OR DELETE OR UPDATE OF spec, time_zone, task, args, queue, priority, max_retries, expires, missed, enabled
    ON pgq.periodic_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION pgq.periodic_tasks_notify();

-- Periodic tasks with their last and next run and the state of the last
-- job, for humans at a psql prompt.
CREATE VIEW pgq.periodic_overview AS
SELECT t.name, t.spec, t.time_zone, t.task, t.enabled, t.source, t.missed,
       t.last_run_at AS last_run,
       t.last_tick,
       t.next_tick   AS next_run,
       t.last_job_id,
       j.state       AS last_job_state,
       t.error
  FROM pgq.periodic_tasks t
  LEFT JOIN pgq.jobs j ON j.id = t.last_job_id;
