-- pgq schema, step 1: the jobs table, its wake-up trigger, the SQL enqueue
-- function and the inspection views.
--
-- Every object is written as pgq.<name>. The migration runner replaces the
-- schema name when pgq is installed under another one, so keep the prefix
-- on every reference (and nowhere else).

CREATE TABLE pgq.jobs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task               text        NOT NULL,
    queue              text        NOT NULL DEFAULT 'default',
    state              text        NOT NULL DEFAULT 'available',
    priority           smallint    NOT NULL DEFAULT 0,
    args               jsonb       NOT NULL DEFAULT '{}',
    meta               jsonb       NOT NULL DEFAULT '{}',
    attempt            integer     NOT NULL DEFAULT 0,
    max_retries        integer     NOT NULL DEFAULT 3,
    retry_delay_ms     integer,
    time_limit_ms      integer,
    soft_time_limit_ms integer,
    ignore_result      boolean     NOT NULL DEFAULT false,
    unique_key         text,
    run_at             timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    finished_at        timestamptz,
    worker_id          text,
    result             jsonb,
    errors             jsonb       NOT NULL DEFAULT '[]',
    parent_id          bigint,
    root_id            bigint,

    -- These rules are repeated in Go (queue/validate.go) to give friendly
    -- errors before a statement is sent; a test keeps the two in step.
    CONSTRAINT jobs_task_format CHECK (task ~ '^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,199}$'),
    CONSTRAINT jobs_queue_format CHECK (queue ~ '^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$'),
    CONSTRAINT jobs_state_known CHECK (state IN ('scheduled', 'available', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT jobs_priority_range CHECK (priority BETWEEN 0 AND 9),
    CONSTRAINT jobs_meta_object CHECK (jsonb_typeof(meta) = 'object'),
    CONSTRAINT jobs_errors_array CHECK (jsonb_typeof(errors) = 'array'),
    CONSTRAINT jobs_max_retries_positive CHECK (max_retries >= 0),
    CONSTRAINT jobs_retry_delay_positive CHECK (retry_delay_ms > 0),
    CONSTRAINT jobs_time_limit_positive CHECK (time_limit_ms > 0),
    CONSTRAINT jobs_soft_time_limit_positive CHECK (soft_time_limit_ms > 0),
    CONSTRAINT jobs_unique_key_length CHECK (length(unique_key) BETWEEN 1 AND 255)
);

COMMENT ON TABLE pgq.jobs IS 'One row per job. States: scheduled, available, running, retrying (waiting), succeeded, failed, cancelled (finished).';

-- The claim index covers waiting jobs only, so a finished row leaves it at
-- once and the index stays as small as the backlog.
CREATE INDEX jobs_fetch_idx ON pgq.jobs (queue, priority DESC, run_at, id)
    WHERE state IN ('scheduled', 'available', 'retrying');

-- A unique key holds while its job has not finished.
CREATE UNIQUE INDEX jobs_unique_key_idx ON pgq.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retrying');

-- Wake-ups: one NOTIFY per queue per INSERT or COPY statement, payload the
-- queue name. PostgreSQL folds identical notifications of one transaction
-- into one and delivers them only at commit, so a rolled-back enqueue wakes
-- nobody and a transaction that enqueues a thousand jobs wakes each queue once.
CREATE FUNCTION pgq.notify_jobs_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgq.jobs', q.queue)
       FROM (SELECT DISTINCT queue FROM inserted) AS q;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_inserted
    AFTER INSERT ON pgq.jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION pgq.notify_jobs_inserted();

-- pgq.enqueue: the SQL way in, for psql, Django and any other language.
-- It checks the same rules as the Go client and raises errors with the same
-- wording (SQLSTATE 22023, invalid_parameter_value). A duplicate unique_key
-- returns the id of the job that already holds the key.
CREATE FUNCTION pgq.enqueue(
    task            text,
    args            jsonb       DEFAULT '{}',
    queue           text        DEFAULT 'default',
    priority        integer     DEFAULT 0,
    run_at          timestamptz DEFAULT NULL,
    countdown       interval    DEFAULT NULL,
    expires_at      timestamptz DEFAULT NULL,
    max_retries     integer     DEFAULT 3,
    retry_delay     interval    DEFAULT NULL,
    time_limit      interval    DEFAULT NULL,
    soft_time_limit interval    DEFAULT NULL,
    ignore_result   boolean     DEFAULT false,
    unique_key      text        DEFAULT NULL,
    meta            jsonb       DEFAULT '{}'
) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    limit_bytes bigint := coalesce(nullif(current_setting('pgq.max_payload_bytes', true), '')::bigint, 1048576);
    due         timestamptz;
    new_id      bigint;
BEGIN
    IF enqueue.task IS NULL OR enqueue.task = '' THEN
        RAISE EXCEPTION 'pgq: task name is empty' USING ERRCODE = '22023';
    END IF;
    IF enqueue.task !~ '^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,199}$' THEN
        RAISE EXCEPTION 'pgq: invalid task name %: use up to 200 letters, digits and _ . : / -, not starting with a symbol', quote_literal(enqueue.task) USING ERRCODE = '22023';
    END IF;
    IF enqueue.queue IS NULL OR enqueue.queue = '' THEN
        RAISE EXCEPTION 'pgq: queue name is empty' USING ERRCODE = '22023';
    END IF;
    IF enqueue.queue !~ '^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$' THEN
        RAISE EXCEPTION 'pgq: invalid queue name %: use up to 100 letters, digits and _ . : -, not starting with a symbol', quote_literal(enqueue.queue) USING ERRCODE = '22023';
    END IF;
    IF enqueue.priority IS NULL OR enqueue.priority NOT BETWEEN 0 AND 9 THEN
        RAISE EXCEPTION 'pgq: priority % is out of range: use 0 (lowest, the default) to 9 (highest)', coalesce(enqueue.priority::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF enqueue.max_retries IS NULL OR enqueue.max_retries < 0 THEN
        RAISE EXCEPTION 'pgq: max_retries cannot be negative' USING ERRCODE = '22023';
    END IF;
    IF enqueue.countdown < interval '0' THEN
        RAISE EXCEPTION 'pgq: countdown cannot be negative' USING ERRCODE = '22023';
    END IF;
    IF enqueue.run_at IS NOT NULL AND enqueue.countdown IS NOT NULL THEN
        RAISE EXCEPTION 'pgq: set run_at or countdown, not both' USING ERRCODE = '22023';
    END IF;
    IF enqueue.retry_delay <= interval '0' OR enqueue.time_limit <= interval '0' OR enqueue.soft_time_limit <= interval '0' THEN
        RAISE EXCEPTION 'pgq: retry_delay, time_limit and soft_time_limit must be positive' USING ERRCODE = '22023';
    END IF;
    IF enqueue.unique_key = '' OR length(enqueue.unique_key) > 255 THEN
        RAISE EXCEPTION 'pgq: unique_key must be 1 to 255 characters' USING ERRCODE = '22023';
    END IF;
    IF enqueue.args IS NULL THEN
        RAISE EXCEPTION 'pgq: args cannot be NULL: pass ''{}'' for no arguments' USING ERRCODE = '22023';
    END IF;
    IF enqueue.meta IS NULL OR jsonb_typeof(enqueue.meta) <> 'object' THEN
        RAISE EXCEPTION 'pgq: meta must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF octet_length(enqueue.args::text) + octet_length(enqueue.meta::text) > limit_bytes THEN
        RAISE EXCEPTION 'pgq: payload of % bytes is larger than the limit of % bytes', octet_length(enqueue.args::text) + octet_length(enqueue.meta::text), limit_bytes USING ERRCODE = '22023';
    END IF;

    due := coalesce(enqueue.run_at, now() + coalesce(enqueue.countdown, interval '0'));

    LOOP
        INSERT INTO pgq.jobs AS j (task, queue, state, priority, args, meta, max_retries,
                                   retry_delay_ms, time_limit_ms, soft_time_limit_ms,
                                   ignore_result, unique_key, run_at, expires_at)
        VALUES (enqueue.task, enqueue.queue,
                CASE WHEN due > now() THEN 'scheduled' ELSE 'available' END,
                enqueue.priority, enqueue.args, enqueue.meta, enqueue.max_retries,
                (extract(epoch FROM enqueue.retry_delay) * 1000)::integer,
                (extract(epoch FROM enqueue.time_limit) * 1000)::integer,
                (extract(epoch FROM enqueue.soft_time_limit) * 1000)::integer,
                enqueue.ignore_result, enqueue.unique_key, due, enqueue.expires_at)
        ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retrying')
        DO NOTHING
        RETURNING j.id INTO new_id;

        IF new_id IS NOT NULL THEN
            RETURN new_id;
        END IF;

        SELECT j.id INTO new_id FROM pgq.jobs AS j
         WHERE j.unique_key = enqueue.unique_key
           AND j.state IN ('scheduled', 'available', 'running', 'retrying');
        IF new_id IS NOT NULL THEN
            RETURN new_id;
        END IF;
        -- The job holding the key finished between the two statements: try again.
    END LOOP;
END
$$;

COMMENT ON FUNCTION pgq.enqueue IS 'Enqueue a job from SQL; returns its id (the existing job''s id for a duplicate unique_key).';

-- Counts per queue and state (one row per pair that has jobs).
CREATE VIEW pgq.queue_stats AS
SELECT queue, state, count(*)::bigint AS count
  FROM pgq.jobs
 GROUP BY queue, state;

-- Jobs with their latest error, for humans at a psql prompt.
CREATE VIEW pgq.job_overview AS
SELECT id, task, queue, state, priority, attempt, max_retries,
       run_at, expires_at, created_at, started_at, finished_at, worker_id, unique_key,
       errors -> -1 ->> 'error'             AS last_error,
       (errors -> -1 ->> 'at')::timestamptz AS last_error_at
  FROM pgq.jobs;
