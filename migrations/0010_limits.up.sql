-- pgq schema, step 10: task mutexes, unique-key scopes and replace modes,
-- global rate and concurrency limits.
--
-- Every object is written as pgq.<name>; see 0001 for why. The design, with
-- its failure cases, is in docs/limits.md.

-- Unique keys get a scope (NULL means 'active', what 0001 did):
--   pending  the key is held while the job waits (scheduled, available,
--            retrying); once it runs, a new job with the key may be enqueued
--   active   held while the job waits or runs
--   window   held for a time bucket, whatever the state: the client appends
--            the bucket's start to the key ("key@1700000000"), and finished
--            jobs keep holding it until the bucket is over
-- A job may also carry a mutex key: at most one job with a given mutex key
-- runs at a time. Both columns are added without a table rewrite.
ALTER TABLE pgq.jobs
    ADD COLUMN unique_scope text COLLATE "C",
    ADD COLUMN mutex_key    text COLLATE "C";

-- The columns are new and NULL everywhere, so skipping validation skips
-- only a scan of the table; new rows are checked.
ALTER TABLE pgq.jobs
    ADD CONSTRAINT jobs_unique_scope_known CHECK (unique_scope IN ('pending', 'active', 'window')) NOT VALID,
    ADD CONSTRAINT jobs_mutex_key_length CHECK (length(mutex_key) BETWEEN 1 AND 300) NOT VALID;

COMMENT ON COLUMN pgq.jobs.unique_scope IS 'How long unique_key is held: pending (while waiting), active (waiting or running; NULL means this), window (the key carries a time bucket).';
COMMENT ON COLUMN pgq.jobs.mutex_key IS 'At most one job with this key runs at a time (task mutex); set by the producer, or by the claim for tasks registered with a mutex.';

-- Whether a job in a state holds its unique key, by scope. The partial
-- unique index below and every ON CONFLICT that infers it use this
-- expression, so it must not change without a new index.
CREATE FUNCTION pgq.unique_holds(scope text, state text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE scope
           WHEN 'pending' THEN state IN ('scheduled', 'available', 'retrying')
           WHEN 'window'  THEN true
           ELSE state IN ('scheduled', 'available', 'running', 'retrying')
           END
$$;

-- Build the new unique index before dropping the old one, so that a
-- duplicate cannot slip in between. (On a large table, build
-- jobs_unique_idx by hand with CREATE INDEX CONCURRENTLY first; this
-- migration then finds it.)
CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique_idx ON pgq.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND pgq.unique_holds(unique_scope, state);
DROP INDEX pgq.jobs_unique_key_idx;

-- Waiting jobs with a mutex key, in claim order: the limited claim reads
-- them without walking the queue's other jobs. Holds only such jobs.
CREATE INDEX jobs_mutex_wait_idx ON pgq.jobs (queue, priority DESC, run_at, id)
    WHERE mutex_key IS NOT NULL AND state IN ('scheduled', 'available', 'retrying');

-- The mutex itself, enforced by the database: two running jobs with one
-- key cannot exist. The claim takes care never to try (see
-- pgq.claim_limited); this index makes a mistake an error, not an overlap.
CREATE UNIQUE INDEX jobs_mutex_running_idx ON pgq.jobs (mutex_key)
    WHERE mutex_key IS NOT NULL AND state = 'running';

-- The mutex key of a job of a task registered with a mutex on some of its
-- args: "task(field=value,...)" with each value as jsonb prints it (so Go,
-- Python and SQL agree), or "task" for the whole task. A key longer than
-- 300 characters is shortened to the task and an md5 of the rest.
CREATE FUNCTION pgq.mutex_key(task text, args jsonb, fields text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN length(k) <= 300 THEN k ELSE left(task, 200) || '#' || md5(k) END
      FROM (SELECT CASE WHEN coalesce(cardinality(fields), 0) = 0 THEN task
                        ELSE task || '(' || (SELECT string_agg(f || '=' || coalesce((args -> f)::text, 'null'), ',' ORDER BY o)
                                               FROM unnest(fields) WITH ORDINALITY AS u (f, o)) || ')'
                   END AS k) AS key
$$;

-- Limits, per task or per queue, enforced across every worker of the
-- schema. A rate limit is a token bucket: per_second tokens are added
-- continuously up to burst, and claiming a job takes one. A concurrency
-- limit caps the jobs running at once. A row may have both. The bucket's
-- level is stored as (tokens, refilled_at) and brought up to date by
-- whoever reads it, so nothing ticks in the background.
CREATE TABLE pgq.limits (
    scope       text        COLLATE "C" NOT NULL,
    name        text        COLLATE "C" NOT NULL,
    rate        text,                   -- as given, "10/s"; NULL: no rate limit
    per_second  float8,                 -- the same rate in jobs per second
    burst       float8,                 -- bucket size; NULL: pgq.limit_burst's default
    concurrency integer,                -- most running at once; NULL: no limit
    tokens      float8      NOT NULL DEFAULT 0,
    refilled_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),

    PRIMARY KEY (scope, name),
    CONSTRAINT limits_scope_known CHECK (scope IN ('task', 'queue')),
    CONSTRAINT limits_name_length CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT limits_rate_pair CHECK ((rate IS NULL) = (per_second IS NULL)),
    CONSTRAINT limits_per_second_positive CHECK (per_second > 0),
    CONSTRAINT limits_burst_positive CHECK (burst >= 1),
    CONSTRAINT limits_concurrency_positive CHECK (concurrency > 0),
    CONSTRAINT limits_something CHECK (per_second IS NOT NULL OR concurrency IS NOT NULL)
);

COMMENT ON TABLE pgq.limits IS 'Global rate (token bucket) and concurrency limits per task or queue; workers claim limited jobs through pgq.claim_limited.';

-- The bucket size of a rate limit: as set, else two tokens or 100 ms worth
-- of tokens, whichever is more. Two, not one: a worker that wakes a few
-- milliseconds after a token is due must not lose the time it was late.
CREATE FUNCTION pgq.limit_burst(per_second float8, burst float8) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(burst, greatest(2, per_second / 10))
$$;

-- The claim of limited jobs: jobs of tasks or queues with a row in
-- pgq.limits, and jobs with a mutex key (set on the row, or derived for
-- the tasks given in mutex_tasks, an object {"task": ["arg", ...]}).
-- Workers claim every other job with the ordinary claim (ClaimJobs), which
-- leaves these out. known_tasks are the tasks the worker has handlers
-- for (NULL: any): jobs of other limited tasks are left to workers that
-- know them, and their queues are not walked for them.
--
-- Correctness rests on one transaction-scoped advisory lock: limited
-- claims of a schema run one at a time, and every statement below runs
-- after the lock is taken, so it sees every job an earlier limited claim
-- set running (READ COMMITTED takes a snapshot per statement). The
-- budget of each limit is then exact: tokens, and the concurrency limit
-- minus the jobs running now. The lock is held for the length of one
-- claim, about a millisecond.
CREATE FUNCTION pgq.claim_limited(worker_id text, queues text[], max_jobs integer, mutex_tasks jsonb, scan_max integer, known_tasks text[])
RETURNS SETOF pgq.jobs
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    ts          timestamptz;
    l           record;
    c           record;
    lim_scope   text[] := '{}';
    lim_name    text[] := '{}';
    lim_left    integer[] := '{}';  -- jobs the limit still allows in this claim
    lim_tokens  float8[] := '{}';   -- tokens after refill; NULL: no rate limit
    lim_used    integer[] := '{}';
    shut_tasks  text[] := '{}';     -- limited tasks with no room now
    open_tasks  text[] := '{}';     -- limited tasks with room
    lim_queues  text[] := '{}';     -- the given queues that have a limit
    open_queues text[] := '{}';
    open_room   integer[] := '{}';  -- room of each open queue
    free_queues text[];
    mtasks      text[];
    room        integer;
    running     integer;
    i           integer;
    k           integer;
    mkey        text;
    ids         bigint[] := '{}';
    keys        text[] := '{}';
    n           integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(pgq.lock_key('pgq:claim-limited'));
    ts := clock_timestamp();
    -- Paused queues are left out, as by the ordinary claim.
    queues := ARRAY(SELECT q FROM unnest(claim_limited.queues) AS q
                     WHERE NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = q AND p.paused));

    FOR l IN
        SELECT lm.scope, lm.name, lm.concurrency,
               CASE WHEN lm.per_second IS NOT NULL THEN
                    least(pgq.limit_burst(lm.per_second, lm.burst),
                          lm.tokens + greatest(0, extract(epoch FROM ts - lm.refilled_at)) * lm.per_second)
               END AS tokens
          FROM pgq.limits AS lm
         WHERE lm.scope = 'task' OR (lm.scope = 'queue' AND lm.name = ANY (claim_limited.queues))
    LOOP
        room := claim_limited.max_jobs;
        IF l.tokens IS NOT NULL THEN
            room := least(room, floor(l.tokens)::integer);
        END IF;
        IF l.concurrency IS NOT NULL AND room > 0 THEN
            IF l.scope = 'task' THEN
                SELECT count(*) INTO running FROM pgq.jobs AS r WHERE r.state = 'running' AND r.task = l.name;
            ELSE
                SELECT count(*) INTO running FROM pgq.jobs AS r WHERE r.state = 'running' AND r.queue = l.name;
            END IF;
            room := least(room, l.concurrency - running);
        END IF;
        room := greatest(room, 0);
        lim_scope := lim_scope || l.scope;
        lim_name := lim_name || l.name;
        lim_left := lim_left || room;
        lim_tokens := lim_tokens || l.tokens;
        lim_used := lim_used || 0;
        IF l.scope = 'task' THEN
            IF room > 0 THEN open_tasks := open_tasks || l.name; ELSE shut_tasks := shut_tasks || l.name; END IF;
        ELSE
            lim_queues := lim_queues || l.name;
            IF room > 0 THEN open_queues := open_queues || l.name; open_room := open_room || room; END IF;
        END IF;
    END LOOP;

    free_queues := ARRAY(SELECT q FROM unnest(claim_limited.queues) AS q WHERE q <> ALL (lim_queues));
    IF claim_limited.known_tasks IS NOT NULL THEN
        open_tasks := ARRAY(SELECT t FROM unnest(open_tasks) AS t WHERE t = ANY (claim_limited.known_tasks));
    END IF;
    mtasks := ARRAY(SELECT t FROM jsonb_object_keys(coalesce(claim_limited.mutex_tasks, '{}')) AS t
                     WHERE t <> ALL (shut_tasks) AND t <> ALL (open_tasks));

    FOR c IN
        SELECT DISTINCT ON (x.priority, x.run_at, x.id) x.id, x.task, x.queue, x.args, x.mutex_key, x.priority, x.run_at
          FROM (
                -- limited queues with room: all their jobs but those of shut tasks
                SELECT w.* FROM unnest(open_queues, open_room) AS oq (q, room) CROSS JOIN LATERAL (
                       SELECT w.id, w.task, w.queue, w.args, w.mutex_key, w.priority, w.run_at
                         FROM pgq.jobs AS w
                        WHERE w.queue = oq.q AND w.state IN ('scheduled', 'available', 'retrying') AND w.run_at <= now()
                          AND w.task <> ALL (shut_tasks)
                        ORDER BY w.priority DESC, w.run_at, w.id
                        LIMIT least(claim_limited.scan_max, oq.room)
                          FOR UPDATE SKIP LOCKED) AS w
                UNION ALL
                -- limited tasks with room, and mutex tasks, in the other queues
                SELECT w.* FROM unnest(free_queues) AS q CROSS JOIN unnest(open_tasks || mtasks) AS t CROSS JOIN LATERAL (
                       SELECT w.id, w.task, w.queue, w.args, w.mutex_key, w.priority, w.run_at
                         FROM pgq.jobs AS w
                        WHERE w.queue = q AND w.task = t AND w.state IN ('scheduled', 'available', 'retrying') AND w.run_at <= now()
                        ORDER BY w.priority DESC, w.run_at, w.id
                        LIMIT claim_limited.scan_max
                          FOR UPDATE SKIP LOCKED) AS w
                UNION ALL
                -- jobs with a mutex key of their own in the other queues
                SELECT w.* FROM unnest(free_queues) AS q CROSS JOIN LATERAL (
                       SELECT w.id, w.task, w.queue, w.args, w.mutex_key, w.priority, w.run_at
                         FROM pgq.jobs AS w
                        WHERE w.queue = q AND w.mutex_key IS NOT NULL AND w.state IN ('scheduled', 'available', 'retrying')
                          AND w.run_at <= now() AND w.task <> ALL (shut_tasks)
                        ORDER BY w.priority DESC, w.run_at, w.id
                        LIMIT claim_limited.scan_max
                          FOR UPDATE SKIP LOCKED) AS w
               ) AS x
         ORDER BY x.priority DESC, x.run_at, x.id
    LOOP
        EXIT WHEN n >= claim_limited.max_jobs;
        i := NULL;
        k := NULL;
        FOR j IN 1 .. coalesce(array_length(lim_name, 1), 0) LOOP
            IF (lim_scope[j] = 'task' AND lim_name[j] = c.task) THEN i := j; END IF;
            IF (lim_scope[j] = 'queue' AND lim_name[j] = c.queue) THEN k := j; END IF;
        END LOOP;
        CONTINUE WHEN i IS NOT NULL AND lim_left[i] <= 0;
        CONTINUE WHEN k IS NOT NULL AND lim_left[k] <= 0;
        mkey := c.mutex_key;
        IF mkey IS NULL AND claim_limited.mutex_tasks ? c.task THEN
            mkey := pgq.mutex_key(c.task, c.args, ARRAY(SELECT jsonb_array_elements_text(claim_limited.mutex_tasks -> c.task)));
        END IF;
        IF mkey IS NOT NULL THEN
            CONTINUE WHEN mkey = ANY (keys);
            CONTINUE WHEN EXISTS (SELECT 1 FROM pgq.jobs AS r WHERE r.mutex_key = mkey AND r.state = 'running');
        END IF;
        ids := ids || c.id;
        keys := keys || mkey;
        IF i IS NOT NULL THEN lim_left[i] := lim_left[i] - 1; lim_used[i] := lim_used[i] + 1; END IF;
        IF k IS NOT NULL THEN lim_left[k] := lim_left[k] - 1; lim_used[k] := lim_used[k] + 1; END IF;
        n := n + 1;
    END LOOP;

    IF n = 0 THEN
        RETURN;
    END IF;

    -- Spend the tokens. A bucket is written only when tokens were taken.
    -- (The jobs' started_at below is taken after the running jobs were
    -- counted, so a job's start is never before the end of the job whose
    -- place it took; it is a few milliseconds after the bucket's ts.)
    UPDATE pgq.limits AS lm
       SET tokens = u.tokens - u.used, refilled_at = ts
      FROM unnest(lim_scope, lim_name, lim_tokens, lim_used) AS u (scope, name, tokens, used)
     WHERE lm.scope = u.scope AND lm.name = u.name AND u.used > 0 AND u.tokens IS NOT NULL;

    RETURN QUERY
    UPDATE pgq.jobs AS j
       SET state = 'running', attempt = j.attempt + 1, started_at = clock_timestamp(),
           worker_id = claim_limited.worker_id, mutex_key = u.key
      FROM unnest(ids, keys) AS u (id, key)
     WHERE j.id = u.id
    RETURNING j.*;
END
$$;

COMMENT ON FUNCTION pgq.claim_limited IS 'Claim jobs under rate, concurrency and mutex limits, one claim at a time per schema (see docs/limits.md).';

-- How long until a limited job of the queues may be claimable, in
-- milliseconds: 0 when a limit with jobs waiting has room now, the next
-- token of a rate limit that has jobs waiting, the run time of a limited
-- job that is not due yet, or recheck_ms when runnable jobs wait on a
-- concurrency limit or a mutex (freed by a job finishing, which no clock
-- predicts). +Infinity: no limited job waits. Read-only and lock-free; an
-- answer that comes out early only costs one claim that finds nothing
-- (and the worker waits recheck_ms after a claim that found nothing
-- although 0 was the answer).
CREATE FUNCTION pgq.limited_wait_ms(queues text[], mutex_tasks jsonb, recheck_ms float8, known_tasks text[])
RETURNS float8
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    ts         timestamptz := clock_timestamp();
    l          record;
    wait       float8 := 'Infinity';
    lim_tasks  text[] := '{}';
    lim_queues text[] := '{}';
    mtasks     text[] := ARRAY(SELECT jsonb_object_keys(coalesce(limited_wait_ms.mutex_tasks, '{}')));
    running    integer;
    full_      boolean;
BEGIN
    -- Jobs of paused queues are not runnable.
    queues := ARRAY(SELECT q FROM unnest(limited_wait_ms.queues) AS q
                     WHERE NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = q AND p.paused));
    FOR l IN
        SELECT lm.scope, lm.name, lm.concurrency, lm.per_second,
               CASE WHEN lm.per_second IS NOT NULL THEN
                    least(pgq.limit_burst(lm.per_second, lm.burst),
                          lm.tokens + greatest(0, extract(epoch FROM ts - lm.refilled_at)) * lm.per_second)
               END AS tokens
          FROM pgq.limits AS lm
         WHERE (lm.scope = 'task' AND (limited_wait_ms.known_tasks IS NULL OR lm.name = ANY (limited_wait_ms.known_tasks)))
            OR (lm.scope = 'queue' AND lm.name = ANY (limited_wait_ms.queues))
    LOOP
        IF l.scope = 'task' THEN lim_tasks := lim_tasks || l.name; ELSE lim_queues := lim_queues || l.name; END IF;
        full_ := false;
        IF l.concurrency IS NOT NULL THEN
            IF l.scope = 'task' THEN
                SELECT count(*) INTO running FROM pgq.jobs AS r WHERE r.state = 'running' AND r.task = l.name;
            ELSE
                SELECT count(*) INTO running FROM pgq.jobs AS r WHERE r.state = 'running' AND r.queue = l.name;
            END IF;
            full_ := running >= l.concurrency;
        END IF;
        -- Does anything wait on it?
        IF l.scope = 'task' THEN
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM unnest(limited_wait_ms.queues) AS q CROSS JOIN LATERAL (
                SELECT 1 FROM pgq.jobs AS w WHERE w.queue = q AND w.task = l.name
                   AND w.state IN ('scheduled', 'available', 'retrying') AND w.run_at <= now() LIMIT 1) AS x);
        ELSE
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pgq.jobs AS w WHERE w.queue = l.name
                   AND w.state IN ('scheduled', 'available', 'retrying') AND w.run_at <= now());
        END IF;
        IF full_ THEN
            wait := least(wait, limited_wait_ms.recheck_ms);
        ELSIF l.tokens < 1 THEN
            wait := least(wait, (1 - l.tokens) / l.per_second * 1000);
        ELSE
            wait := 0; -- room now (a token came since the claim)
        END IF;
    END LOOP;

    -- Runnable jobs behind a mutex: they wait for a running job to finish.
    IF EXISTS (SELECT 1 FROM unnest(limited_wait_ms.queues) AS q CROSS JOIN LATERAL (
                SELECT 1 FROM pgq.jobs AS w WHERE w.queue = q AND w.mutex_key IS NOT NULL
                   AND w.state IN ('scheduled', 'available', 'retrying') AND w.run_at <= now() LIMIT 1) AS x)
       OR EXISTS (SELECT 1 FROM unnest(limited_wait_ms.queues) AS q CROSS JOIN unnest(mtasks) AS t CROSS JOIN LATERAL (
                SELECT 1 FROM pgq.jobs AS w WHERE w.queue = q AND w.task = t
                   AND w.state IN ('scheduled', 'available', 'retrying') AND w.run_at <= now() LIMIT 1) AS x) THEN
        wait := least(wait, limited_wait_ms.recheck_ms);
    END IF;

    -- Limited jobs that are not due yet.
    wait := least(wait, (SELECT extract(epoch FROM min(w.run_at) - now()) * 1000
                           FROM pgq.jobs AS w
                          WHERE w.queue = ANY (limited_wait_ms.queues)
                            AND w.state IN ('scheduled', 'available', 'retrying') AND w.run_at > now()
                            AND (w.mutex_key IS NOT NULL OR w.task = ANY (lim_tasks || mtasks) OR w.queue = ANY (lim_queues))));
    RETURN wait;
END
$$;

COMMENT ON FUNCTION pgq.limited_wait_ms IS 'When a limited job of the queues may next be claimable, in ms (+Infinity: none waits).';

-- SQL API: set or clear a limit. rate is Celery's syntax ("10/s", "100/m",
-- "1000/h", or a bare number per second); NULL leaves that part unset.
-- Workers pick a change up at their next limits refresh, or at once when
-- told on the control channel (pgq limit set does both).
CREATE FUNCTION pgq.parse_rate(rate text) RETURNS float8
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[] := regexp_match(rate, '^\s*([0-9]+(\.[0-9]+)?)\s*(/\s*([smh]))?\s*$');
    n float8;
BEGIN
    IF m IS NULL THEN
        RAISE EXCEPTION 'pgq: invalid rate %: use a number of jobs per second, minute or hour, such as "10/s", "100/m" or "1000/h"', quote_literal(rate) USING ERRCODE = '22023';
    END IF;
    n := m[1]::float8;
    IF n <= 0 THEN
        RAISE EXCEPTION 'pgq: invalid rate %: the number of jobs must be more than 0', quote_literal(rate) USING ERRCODE = '22023';
    END IF;
    RETURN n / CASE coalesce(m[4], 's') WHEN 's' THEN 1 WHEN 'm' THEN 60 ELSE 3600 END;
END
$$;

-- SQL API: set (or, with neither a rate nor a concurrency, remove) the
-- limit of a task or queue, as queue.Client.SetLimit does, and tell the
-- workers at commit. burst NULL: the default.
CREATE FUNCTION pgq.set_limit(scope text, name text, rate text DEFAULT NULL, concurrency integer DEFAULT NULL, burst float8 DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ps float8 := CASE WHEN set_limit.rate IS NOT NULL THEN pgq.parse_rate(set_limit.rate) END;
BEGIN
    IF set_limit.scope IS NULL OR set_limit.scope NOT IN ('task', 'queue') THEN
        RAISE EXCEPTION 'pgq: unknown limit scope %: use task or queue', coalesce(quote_literal(set_limit.scope), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF set_limit.concurrency <= 0 THEN
        RAISE EXCEPTION 'pgq: concurrency limit % is not allowed: use 1 or more (NULL for none)', set_limit.concurrency USING ERRCODE = '22023';
    END IF;
    IF set_limit.burst IS NOT NULL AND (set_limit.burst < 1 OR ps IS NULL) THEN
        RAISE EXCEPTION 'pgq: a burst must be at least 1 and needs a rate' USING ERRCODE = '22023';
    END IF;
    IF ps IS NULL AND set_limit.concurrency IS NULL THEN
        DELETE FROM pgq.limits AS l WHERE l.scope = set_limit.scope AND l.name = set_limit.name;
    ELSE
        INSERT INTO pgq.limits AS l (scope, name, rate, per_second, burst, concurrency, tokens, refilled_at, updated_at)
        VALUES (set_limit.scope, set_limit.name, trim(set_limit.rate), ps, set_limit.burst, set_limit.concurrency,
                coalesce(pgq.limit_burst(ps, set_limit.burst), 0), clock_timestamp(), now())
        ON CONFLICT ON CONSTRAINT limits_pkey DO UPDATE
           SET rate = excluded.rate, per_second = excluded.per_second, burst = excluded.burst,
               concurrency = excluded.concurrency,
               tokens = CASE WHEN excluded.per_second IS NULL THEN 0
                             WHEN l.per_second IS NULL THEN excluded.tokens
                             ELSE least(pgq.limit_burst(excluded.per_second, excluded.burst),
                                        l.tokens + greatest(0, extract(epoch FROM clock_timestamp() - l.refilled_at)) * l.per_second)
                        END,
               refilled_at = clock_timestamp(), updated_at = now();
    END IF;
    PERFORM pg_notify('pgq.control', json_build_object('id', md5(random()::text), 'command', 'limits')::text);
END
$$;

COMMENT ON FUNCTION pgq.set_limit IS 'Set (or remove, with neither rate nor concurrency) the global limit of a task or queue; workers apply it at commit.';

-- pgq.enqueue: the same function; its ON CONFLICT now infers jobs_unique_idx.
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
        ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND pgq.unique_holds(unique_scope, state)
        DO NOTHING
        RETURNING j.id INTO new_id;

        IF new_id IS NOT NULL THEN
            PERFORM pg_notify('pgq.jobs', enqueue.queue);
            RETURN new_id;
        END IF;

        SELECT j.id INTO new_id FROM pgq.jobs AS j
         WHERE j.unique_key = enqueue.unique_key
           AND pgq.unique_holds(j.unique_scope, j.state);
        IF new_id IS NOT NULL THEN
            RETURN new_id;
        END IF;
        -- The job holding the key finished between the two statements: try again.
    END LOOP;
END
$$;

COMMENT ON FUNCTION pgq.enqueue IS 'Enqueue a job from SQL; returns its id (the existing job''s id for a duplicate unique_key).';

