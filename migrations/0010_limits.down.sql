DROP FUNCTION pgq.limited_wait_ms(text[], jsonb, float8, text[]);
DROP FUNCTION pgq.claim_limited(text, text[], integer, jsonb, integer, text[]);
DROP FUNCTION pgq.set_limit(text, text, text, integer, float8);
DROP FUNCTION pgq.parse_rate(text);
DROP FUNCTION pgq.limit_burst(float8, float8);
DROP TABLE pgq.limits;
DROP FUNCTION pgq.mutex_key(text, jsonb, text[]);
DROP INDEX pgq.jobs_mutex_running_idx;
DROP INDEX pgq.jobs_mutex_wait_idx;

-- Back to 0001's unique index. Jobs whose key was held only in the
-- 'pending' or 'window' sense lose it first, so the index can be built.
UPDATE pgq.jobs SET unique_key = NULL
 WHERE unique_key IS NOT NULL AND (unique_scope IN ('pending', 'window'));
CREATE UNIQUE INDEX jobs_unique_key_idx ON pgq.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retrying');

-- 0007's pgq.enqueue.
CREATE OR REPLACE FUNCTION pgq.enqueue(
    task            text,
    args            jsonb       DEFAULT '{}',
    queue           text        DEFAULT 'default',
    priority        integer     DEFAULT NULL,   -- NULL: the queue's default, else 0
    run_at          timestamptz DEFAULT NULL,
    countdown       interval    DEFAULT NULL,
    expires_at      timestamptz DEFAULT NULL,
    max_retries     integer     DEFAULT NULL,   -- NULL: the queue's default, else 3
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
    qd          record;
BEGIN
    IF enqueue.task IS NULL OR enqueue.task = '' THEN
        RAISE EXCEPTION 'pgq: task name is empty' USING ERRCODE = '22023';
    END IF;
    -- Same rules as queue/validate.go. (A bounded repeat such as {0,199}
    -- makes PostgreSQL's regex engine much slower, hence the length test.)
    IF enqueue.task !~ '^[A-Za-z0-9_][A-Za-z0-9_.:/-]*$' OR length(enqueue.task) > 200 THEN
        RAISE EXCEPTION 'pgq: invalid task name %: use up to 200 letters, digits and _ . : / -, not starting with a symbol', quote_literal(enqueue.task) USING ERRCODE = '22023';
    END IF;
    IF enqueue.queue IS NULL OR enqueue.queue = '' THEN
        RAISE EXCEPTION 'pgq: queue name is empty' USING ERRCODE = '22023';
    END IF;
    IF enqueue.queue !~ '^[A-Za-z0-9_][A-Za-z0-9_.:-]*$' OR length(enqueue.queue) > 100 THEN
        RAISE EXCEPTION 'pgq: invalid queue name %: use up to 100 letters, digits and _ . : -, not starting with a symbol', quote_literal(enqueue.queue) USING ERRCODE = '22023';
    END IF;
    IF enqueue.priority NOT BETWEEN 0 AND 9 THEN
        RAISE EXCEPTION 'pgq: priority % is out of range: use 0 (lowest, the default) to 9 (highest)', enqueue.priority USING ERRCODE = '22023';
    END IF;
    IF enqueue.max_retries < 0 THEN
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

    -- Unset options come from the queue's defaults (pgq.queues), then pgq's.
    SELECT q.priority, q.max_retries, q.retry_delay_ms, q.time_limit_ms, q.soft_time_limit_ms
      INTO qd FROM pgq.queues AS q WHERE q.name = enqueue.queue;

    LOOP
        INSERT INTO pgq.jobs AS j (task, queue, state, priority, args, meta, max_retries,
                                   retry_delay_ms, time_limit_ms, soft_time_limit_ms,
                                   ignore_result, unique_key, run_at, expires_at)
        VALUES (enqueue.task, enqueue.queue,
                CASE WHEN due > now() THEN 'scheduled' ELSE 'available' END,
                coalesce(enqueue.priority, qd.priority, 0), enqueue.args, enqueue.meta,
                coalesce(enqueue.max_retries, qd.max_retries, 3),
                coalesce((extract(epoch FROM enqueue.retry_delay) * 1000)::integer, qd.retry_delay_ms),
                coalesce((extract(epoch FROM enqueue.time_limit) * 1000)::integer, qd.time_limit_ms),
                coalesce((extract(epoch FROM enqueue.soft_time_limit) * 1000)::integer, qd.soft_time_limit_ms),
                enqueue.ignore_result, enqueue.unique_key, due, enqueue.expires_at)
        ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retrying')
        DO NOTHING
        RETURNING j.id INTO new_id;

        IF new_id IS NOT NULL THEN
            PERFORM pg_notify('pgq.jobs', enqueue.queue);
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


DROP INDEX pgq.jobs_unique_idx;
DROP FUNCTION pgq.unique_holds(text, text);
ALTER TABLE pgq.jobs DROP COLUMN unique_scope, DROP COLUMN mutex_key;
