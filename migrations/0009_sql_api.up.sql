-- pgq schema, step 9: the SQL API for clients and workers written in
-- other languages (the Python client and worker use nothing else).
--
-- Every object is written as pgq.<name>; see 0001 for why. Each function
-- does what a Go code path does, statement for statement where it can,
-- and tests/sqlapi_test.go holds each one to its Go counterpart. The
-- reference is docs/sql.md.

-- enqueue_many: several jobs from one JSON array, each element an object
-- with pgq.enqueue's argument names as keys. Each element goes through
-- pgq.enqueue itself, so the rules, the queue defaults, unique keys and
-- the wake-up (one per queue per transaction) are the same. The checks
-- that only this function makes (the element is an object, the keys are
-- known, each value has the right JSON type) name the element by its
-- 0-based index. There is no exception block, hence no subtransaction:
-- pgq.enqueue's own errors come through as they are.
CREATE FUNCTION pgq.enqueue_many(jobs jsonb) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    ids   bigint[] := '{}';
    job   jsonb;
    idx   bigint;
    k     text;
    v     jsonb;
    want  text;
BEGIN
    IF jobs IS NULL OR jsonb_typeof(jobs) <> 'array' THEN
        RAISE EXCEPTION 'pgq: enqueue_many takes a JSON array of job objects, not %', coalesce(jsonb_typeof(jobs), 'NULL')
            USING ERRCODE = '22023';
    END IF;
    FOR job, idx IN SELECT e.value, e.ord - 1 FROM jsonb_array_elements(jobs) WITH ORDINALITY AS e(value, ord) ORDER BY e.ord LOOP
        IF jsonb_typeof(job) <> 'object' THEN
            RAISE EXCEPTION 'pgq: jobs[%] must be a JSON object, not %', idx, jsonb_typeof(job) USING ERRCODE = '22023';
        END IF;
        FOR k, v IN SELECT e.key, e.value FROM jsonb_each(job) AS e LOOP
            want := CASE k
                WHEN 'task' THEN 'string' WHEN 'queue' THEN 'string' WHEN 'unique_key' THEN 'string'
                WHEN 'run_at' THEN 'string' WHEN 'expires_at' THEN 'string'
                WHEN 'priority' THEN 'integer' WHEN 'max_retries' THEN 'integer'
                WHEN 'countdown' THEN 'duration' WHEN 'retry_delay' THEN 'duration'
                WHEN 'time_limit' THEN 'duration' WHEN 'soft_time_limit' THEN 'duration'
                WHEN 'ignore_result' THEN 'boolean' WHEN 'meta' THEN 'object' WHEN 'args' THEN 'any'
            END;
            IF want IS NULL THEN
                RAISE EXCEPTION 'pgq: jobs[%] has an unknown key %; known keys: task, args, queue, priority, run_at, countdown, expires_at, max_retries, retry_delay, time_limit, soft_time_limit, ignore_result, unique_key, meta',
                    idx, quote_literal(k) USING ERRCODE = '22023';
            END IF;
            IF jsonb_typeof(v) = 'null' OR want = 'any' THEN
                CONTINUE; -- null means "not set"
            END IF;
            IF (CASE want
                    WHEN 'integer' THEN jsonb_typeof(v) <> 'number' OR (v::text)::numeric <> trunc((v::text)::numeric)
                    WHEN 'duration' THEN jsonb_typeof(v) NOT IN ('number', 'string')
                    ELSE jsonb_typeof(v) <> want
                END) THEN
                RAISE EXCEPTION 'pgq: jobs[%].% must be %, not %', idx, k,
                    (CASE want WHEN 'integer' THEN 'an integer' WHEN 'duration' THEN 'a number of seconds or an interval string'
                               WHEN 'object' THEN 'a JSON object' ELSE 'a ' || want END),
                    v::text USING ERRCODE = '22023';
            END IF;
        END LOOP;
        ids := ids || pgq.enqueue(
            task            => job ->> 'task',
            args            => coalesce(nullif(job -> 'args', 'null'), '{}'),
            queue           => coalesce(job ->> 'queue', 'default'),
            priority        => (job ->> 'priority')::integer,
            run_at          => (job ->> 'run_at')::timestamptz,
            countdown       => pgq.json_interval(job -> 'countdown'),
            expires_at      => (job ->> 'expires_at')::timestamptz,
            max_retries     => (job ->> 'max_retries')::integer,
            retry_delay     => pgq.json_interval(job -> 'retry_delay'),
            time_limit      => pgq.json_interval(job -> 'time_limit'),
            soft_time_limit => pgq.json_interval(job -> 'soft_time_limit'),
            ignore_result   => coalesce((job ->> 'ignore_result')::boolean, false),
            unique_key      => job ->> 'unique_key',
            meta            => coalesce(nullif(job -> 'meta', 'null'), '{}'));
    END LOOP;
    RETURN ids;
END
$$;

COMMENT ON FUNCTION pgq.enqueue_many(jsonb) IS 'Enqueue the jobs of a JSON array of objects (pgq.enqueue''s argument names as keys); returns their ids in array order.';

-- A JSON duration: a number of seconds, or an interval string ('90 s',
-- '00:01:30'); null or missing is NULL.
CREATE FUNCTION pgq.json_interval(v jsonb) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(v)
               WHEN 'number' THEN make_interval(secs => (v::text)::float8)
               WHEN 'string' THEN (v #>> '{}')::interval
           END
$$;

-- result: a job's outcome, what AsyncResult reads: the state (pgq's word
-- and Celery's), the result, and the latest recorded error with its
-- stack. An unknown id gives no row.
CREATE FUNCTION pgq.result(job_id bigint)
RETURNS TABLE (task text, state text, celery_state text, result jsonb, error text, traceback text,
               attempt integer, finished_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT j.task, j.state,
           CASE j.state WHEN 'running' THEN 'STARTED' WHEN 'retrying' THEN 'RETRY'
                        WHEN 'succeeded' THEN 'SUCCESS' WHEN 'failed' THEN 'FAILURE'
                        WHEN 'cancelled' THEN 'REVOKED' ELSE 'PENDING' END,
           j.result, j.errors -> -1 ->> 'error', j.errors -> -1 ->> 'stack', j.attempt, j.finished_at
      FROM pgq.jobs AS j
     WHERE j.id = $1
$$;

COMMENT ON FUNCTION pgq.result(bigint) IS 'A job''s state (pgq''s and Celery''s word), result and latest error; no row for an unknown id.';

-- revoke: Client.Revoke (queue/control.go). A waiting job ends cancelled
-- at once; a running one is marked (revoked_at), and with terminate its
-- worker is told on pgq.control, in the message Go sends, and finds the
-- mark at its next heartbeat if the notification is lost. Where Go returns
-- ErrJobFinished this returns the finished state, so that a revoke racing
-- a completion does not abort the caller's transaction; an unknown id
-- raises no_data_found (P0002).
CREATE FUNCTION pgq.revoke(job_id bigint, terminate boolean DEFAULT false)
RETURNS TABLE (state text, worker_id text, terminating boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    cur   text;
    holder text;
BEGIN
    SELECT j.state, j.worker_id INTO cur, holder FROM pgq.jobs AS j WHERE j.id = revoke.job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgq: job % not found', revoke.job_id USING ERRCODE = 'P0002';
    END IF;
    IF cur IN ('succeeded', 'failed', 'cancelled') THEN
        RETURN QUERY SELECT cur, NULL::text, false;
        RETURN;
    END IF;
    IF cur = 'running' THEN
        UPDATE pgq.jobs AS j
           SET revoked_at = coalesce(j.revoked_at, now()),
               revoke_terminate = j.revoke_terminate OR coalesce(revoke.terminate, false)
         WHERE j.id = revoke.job_id;
        IF coalesce(revoke.terminate, false) THEN
            -- Sent at commit, after the mark is visible.
            PERFORM pg_notify('pgq.control', jsonb_build_object(
                'id', left(replace(gen_random_uuid()::text, '-', ''), 16),
                'command', 'revoke',
                'args', jsonb_build_object('job_ids', jsonb_build_array(revoke.job_id)),
                'workers', jsonb_build_array(holder))::text);
        END IF;
        RETURN QUERY SELECT cur, holder, coalesce(revoke.terminate, false);
        RETURN;
    END IF;
    UPDATE pgq.jobs AS j
       SET state = 'cancelled', finished_at = now(), revoked_at = now(),
           errors = j.errors || jsonb_build_array(jsonb_build_object(
                        'attempt', j.attempt, 'at', now(), 'error', 'revoked before it ran'))
     WHERE j.id = revoke.job_id;
    PERFORM pg_notify('pgq.results', revoke.job_id::text);
    RETURN QUERY SELECT 'cancelled'::text, NULL::text, false;
END
$$;

COMMENT ON FUNCTION pgq.revoke(bigint, boolean) IS 'Revoke a job as Go''s Client.Revoke does; returns its state afterwards (a finished job is left as it is).';

-- retry: Client.Retry. A failed or cancelled job goes back to its queue
-- as if new (attempt 0, no result, no revoke mark), its error history
-- kept, and its queue is woken.
CREATE FUNCTION pgq.retry(job_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    cur  text;
    qname text;
    ukey text;
BEGIN
    SELECT j.state, j.queue, j.unique_key INTO cur, qname, ukey FROM pgq.jobs AS j WHERE j.id = retry.job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgq: job % not found', retry.job_id USING ERRCODE = 'P0002';
    END IF;
    IF cur NOT IN ('failed', 'cancelled') THEN
        RAISE EXCEPTION 'pgq: only failed or cancelled jobs can be retried; job % is %', retry.job_id, cur USING ERRCODE = '55000';
    END IF;
    IF ukey IS NOT NULL AND EXISTS (
        SELECT 1 FROM pgq.jobs AS o
         WHERE o.unique_key = ukey AND o.id <> retry.job_id
           AND o.state IN ('scheduled', 'available', 'running', 'retrying')) THEN
        RAISE EXCEPTION 'pgq: job % cannot be retried: another unfinished job holds its unique key; wait for it to finish or delete it', retry.job_id
            USING ERRCODE = '23505';
    END IF;
    UPDATE pgq.jobs AS j
       SET state = 'available', attempt = 0, run_at = now(), started_at = NULL,
           finished_at = NULL, worker_id = NULL, result = NULL,
           revoked_at = NULL, revoke_terminate = false
     WHERE j.id = retry.job_id;
    PERFORM pg_notify('pgq.jobs', qname);
END
$$;

COMMENT ON FUNCTION pgq.retry(bigint) IS 'Send a failed or cancelled job back to its queue as if new (Go''s Client.Retry).';

------------------------------------------------------------------------
-- The worker protocol, for workers written in other languages. A worker:
--   1. registers (pgq.register_worker) before its first claim;
--   2. calls pgq.heartbeat every few seconds (Go's default: 5 s; the
--      maintenance leader rescues the jobs of a worker whose heartbeat is
--      older than its RescueAfter, 30 s by default) and cancels the jobs
--      pgq.revoked_jobs lists;
--   3. claims with pgq.claim, and ends every attempt with pgq.complete,
--      pgq.fail, pgq.snooze or pgq.hand_back, quoting the attempt number
--      the claim returned;
--   4. on shutdown calls pgq.unregister_worker, which hands back whatever
--      it still holds.
-- A worker that dies is handled by the Go workers' maintenance leader,
-- exactly as a Go worker is.
------------------------------------------------------------------------

-- RegisterWorker (queries/worker.sql), with the checks Go's worker.Config makes.
CREATE FUNCTION pgq.register_worker(worker_id text, queues text[], concurrency integer,
                                    host text, pid integer, meta jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q text;
BEGIN
    IF worker_id IS NULL OR worker_id = '' OR length(worker_id) > 200 THEN
        RAISE EXCEPTION 'pgq: worker_id must be 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    IF queues IS NULL OR cardinality(queues) = 0 THEN
        RAISE EXCEPTION 'pgq: a worker needs at least one queue' USING ERRCODE = '22023';
    END IF;
    FOREACH q IN ARRAY queues LOOP
        IF q IS NULL OR q !~ '^[A-Za-z0-9_][A-Za-z0-9_.:-]*$' OR length(q) > 100 THEN
            RAISE EXCEPTION 'pgq: invalid queue name %: use up to 100 letters, digits and _ . : -, not starting with a symbol', coalesce(quote_literal(q), 'NULL') USING ERRCODE = '22023';
        END IF;
    END LOOP;
    IF concurrency IS NULL OR concurrency < 1 THEN
        RAISE EXCEPTION 'pgq: concurrency must be at least 1' USING ERRCODE = '22023';
    END IF;
    INSERT INTO pgq.workers AS w (id, host, pid, queues, concurrency, meta)
    VALUES (register_worker.worker_id, coalesce(register_worker.host, ''), coalesce(register_worker.pid, 0),
            register_worker.queues, register_worker.concurrency, coalesce(register_worker.meta, '{}'))
    ON CONFLICT (id) DO UPDATE
       SET host = excluded.host, pid = excluded.pid, queues = excluded.queues,
           concurrency = excluded.concurrency, meta = excluded.meta, heartbeat_at = now();
END
$$;

COMMENT ON FUNCTION pgq.register_worker(text, text[], integer, text, integer, jsonb) IS 'Register (or re-register) a worker in pgq.workers, as Go workers do.';

-- RescuePreviousProcessJobs (queries/restart.sql), for a worker process
-- starting under a fixed id: jobs still running under that id were held
-- by an earlier process that died without handing them back, and the new
-- process's heartbeats would keep them from ever being rescued. Call it
-- once at start, after register_worker (never when re-registering after
-- pgq.heartbeat returned false: the process holds those jobs). They are
-- rescued as the maintenance leader rescues them: the attempt counts, a
-- job out of attempts fails, a revoked one ends cancelled, and their
-- queues are woken. Returns how many.
CREATE FUNCTION pgq.rescue_previous_jobs(worker_id text) RETURNS bigint
LANGUAGE sql AS $$
    WITH rescued AS (
    UPDATE pgq.jobs AS j
       SET state = CASE WHEN j.revoked_at IS NOT NULL THEN 'cancelled'
                        WHEN j.attempt > j.max_retries THEN 'failed' ELSE 'available' END,
           run_at = now(),
           finished_at = CASE WHEN j.revoked_at IS NOT NULL OR j.attempt > j.max_retries THEN now() END,
           errors = j.errors || jsonb_build_array(jsonb_build_object(
                        'attempt', j.attempt, 'at', now(),
                        'error', format('worker %s stopped sending heartbeats while running this job (attempt %s); rescued when a new process started with its id',
                                        j.worker_id, j.attempt)))
     WHERE j.state = 'running'
       AND j.worker_id = $1
    RETURNING j.id, j.queue
    )
    SELECT count(*) FROM rescued CROSS JOIN LATERAL pg_notify('pgq.jobs', rescued.queue) AS wake
$$;

COMMENT ON FUNCTION pgq.rescue_previous_jobs(text) IS 'At a worker''s start: rescue the jobs an earlier process with the same id left running.';

-- Heartbeat (queries/worker.sql). false: the row is gone, because the
-- worker was presumed dead and its jobs were rescued; register again
-- (and know that those jobs may run twice).
CREATE FUNCTION pgq.heartbeat(worker_id text) RETURNS boolean
LANGUAGE sql AS $$
    WITH beat AS (UPDATE pgq.workers AS w SET heartbeat_at = now() WHERE w.id = $1 RETURNING 1)
    SELECT count(*) > 0 FROM beat
$$;

COMMENT ON FUNCTION pgq.heartbeat(text) IS 'Refresh a worker''s heartbeat; false when its row is gone (register again).';

-- RevokedRunningJobs: the heartbeat's fallback for a lost revoke
-- notification.
CREATE FUNCTION pgq.revoked_jobs(worker_id text) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
    SELECT j.id FROM pgq.jobs AS j
     WHERE j.state = 'running' AND j.worker_id = $1 AND j.revoke_terminate
     ORDER BY j.id
$$;

COMMENT ON FUNCTION pgq.revoked_jobs(text) IS 'Running jobs of a worker revoked with terminate: cancel them.';

-- Shutdown: ReleaseWorkerJobs then DeleteWorker. Returns how many jobs
-- went back to their queues (or ended cancelled, when revoked).
CREATE FUNCTION pgq.unregister_worker(worker_id text) RETURNS bigint
LANGUAGE sql AS $$
    WITH released AS (
        UPDATE pgq.jobs AS j
           SET state = CASE WHEN j.revoked_at IS NULL THEN 'available' ELSE 'cancelled' END,
               attempt = j.attempt - 1,
               finished_at = CASE WHEN j.revoked_at IS NULL THEN NULL ELSE now() END,
               started_at = CASE WHEN j.revoked_at IS NULL THEN NULL ELSE j.started_at END,
               worker_id = CASE WHEN j.revoked_at IS NULL THEN NULL ELSE j.worker_id END
         WHERE j.state = 'running'
           AND j.worker_id = $1
        RETURNING j.id, j.queue
    ), woken AS (
        SELECT pg_notify('pgq.jobs', r.queue) FROM (SELECT DISTINCT queue FROM released) AS r
    ), gone AS (
        DELETE FROM pgq.workers AS w WHERE w.id = $1 RETURNING 1
    )
    SELECT count(*) FROM released
     WHERE (SELECT count(*) FROM woken) >= 0 AND (SELECT count(*) FROM gone) >= 0
$$;

COMMENT ON FUNCTION pgq.unregister_worker(text) IS 'A worker''s clean stop: hand back the jobs it still holds and delete its row.';

-- claim: what a Go worker's fetcher does in one claim (worker/fetcher.go).
-- First the ordinary claim, ClaimJobs (queries/worker.sql): per-queue
-- ordered walks of jobs_fetch_idx with FOR UPDATE SKIP LOCKED, paused
-- queues left out, highest priority first, then oldest run_at, then id.
-- Then, when slots are left and the schema has limits (pgq.limits, from
-- migration 0010) or jobs with a mutex key wait in the queues, the
-- limited claim, pgq.claim_limited, exactly as a Go worker calls it: the
-- ordinary claim leaves out the queues with a limit, the tasks with one
-- and the jobs with a mutex key, and the limited claim takes them under
-- their limits. (This migration comes before 0010 and works without it:
-- the limits part runs only when to_regclass finds pgq.limits.)
--
-- A claimed job whose expires_at has passed is ended here, as a Go
-- worker ends it right after its claim (cancelled, the attempt not
-- counted, "expired at ... before a worker could start it" in its
-- errors, announced on pgq.results), and is not returned. Every row
-- returned is the caller's to run, attempt being the number to quote
-- when it ends.
CREATE FUNCTION pgq.claim(worker_id text, queues text[], n integer)
RETURNS TABLE (id bigint, task text, queue text, priority integer, args jsonb, meta jsonb,
               attempt integer, max_retries integer, retry_delay_ms integer,
               time_limit_ms integer, soft_time_limit_ms integer, ignore_result boolean,
               run_at timestamptz, expires_at timestamptz, created_at timestamptz,
               started_at timestamptz, parent_id bigint, root_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    free       text[] := claim.queues;
    excluded   text[] := '{}';
    has_limits boolean;
    limited    boolean := false;
    ids      bigint[] := '{}';
    more     bigint[];
    gone     bigint[];
BEGIN
    IF claim.worker_id IS NULL OR claim.worker_id = '' THEN
        RAISE EXCEPTION 'pgq: worker_id is empty' USING ERRCODE = '22023';
    END IF;
    IF claim.n IS NULL OR claim.n < 1 OR claim.queues IS NULL THEN
        RETURN;
    END IF;
    -- The statements that name 0010's objects (pgq.limits, mutex_key) are
    -- static, so PL/pgSQL plans them once per session, but only ever
    -- reached once 0010 is applied: PL/pgSQL resolves names when a
    -- statement first runs, not when the function is created.
    has_limits := to_regclass('pgq.limits') IS NOT NULL;
    IF has_limits THEN
        -- LimitsSummary: the tasks with a limit and the given queues with
        -- one; and whether the limited claim has anything to look at.
        SELECT ARRAY(SELECT l.name FROM pgq.limits AS l WHERE l.scope = 'task'),
               ARRAY(SELECT q FROM unnest(claim.queues) AS q
                      WHERE NOT EXISTS (SELECT 1 FROM pgq.limits AS l WHERE l.scope = 'queue' AND l.name = q)),
               EXISTS (SELECT 1 FROM pgq.limits AS l WHERE l.scope = 'task' OR (l.scope = 'queue' AND l.name = ANY (claim.queues)))
               OR EXISTS (SELECT 1 FROM unnest(claim.queues) AS q CROSS JOIN LATERAL (
                           SELECT 1 FROM pgq.jobs AS w
                            WHERE w.queue = q AND w.mutex_key IS NOT NULL
                              AND w.state IN ('scheduled', 'available', 'retrying') LIMIT 1) AS x)
          INTO excluded, free, limited;
    END IF;

    IF cardinality(free) > 0 THEN
        IF has_limits THEN
            -- ClaimJobs since 0010: limited jobs are left to the limited claim.
            WITH claimed AS (
            UPDATE pgq.jobs AS j
               SET state = 'running', attempt = j.attempt + 1, started_at = now(), worker_id = claim.worker_id
             WHERE j.id = ANY (ARRAY(
                    SELECT c.id
                      FROM unnest(free) AS q
                     CROSS JOIN LATERAL (
                           SELECT w.id, w.priority, w.run_at
                             FROM pgq.jobs AS w
                            WHERE w.queue = q
                              AND w.state IN ('scheduled', 'available', 'retrying')
                              AND w.run_at <= now()
                              AND w.mutex_key IS NULL
                              AND w.task <> ALL (excluded)
                            ORDER BY w.priority DESC, w.run_at, w.id
                            LIMIT claim.n
                              FOR UPDATE SKIP LOCKED
                           ) AS c
                     WHERE NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = q AND p.paused)
                     ORDER BY c.priority DESC, c.run_at, c.id
                     LIMIT claim.n
                   ))
            RETURNING j.id
            )
            SELECT coalesce(array_agg(claimed.id), '{}') INTO ids FROM claimed;
        ELSE
            WITH claimed AS (
            UPDATE pgq.jobs AS j
               SET state = 'running', attempt = j.attempt + 1, started_at = now(), worker_id = claim.worker_id
             WHERE j.id = ANY (ARRAY(
                    SELECT c.id
                      FROM unnest(free) AS q
                     CROSS JOIN LATERAL (
                           SELECT w.id, w.priority, w.run_at
                             FROM pgq.jobs AS w
                            WHERE w.queue = q
                              AND w.state IN ('scheduled', 'available', 'retrying')
                              AND w.run_at <= now()
                            ORDER BY w.priority DESC, w.run_at, w.id
                            LIMIT claim.n
                              FOR UPDATE SKIP LOCKED
                           ) AS c
                     WHERE NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = q AND p.paused)
                     ORDER BY c.priority DESC, c.run_at, c.id
                     LIMIT claim.n
                   ))
            RETURNING j.id
            )
            SELECT coalesce(array_agg(claimed.id), '{}') INTO ids FROM claimed;
        END IF;
    END IF;

    IF limited AND cardinality(ids) < claim.n THEN
        -- No mutex tasks (an SQL worker registers none); scan_max as the Go
        -- fetcher sets it; known_tasks, where the function takes them,
        -- NULL: any task.
        EXECUTE format($q$SELECT coalesce(array_agg(l.id), '{}') FROM pgq.claim_limited($1, $2, $3, '{}'::jsonb, $4%s) AS l$q$,
                       CASE WHEN to_regprocedure('pgq.claim_limited(text, text[], integer, jsonb, integer, text[])') IS NOT NULL
                            THEN ', NULL::text[]' ELSE '' END)
           INTO more USING claim.worker_id, claim.queues, claim.n - cardinality(ids), greatest(100, 4 * (claim.n - cardinality(ids)));
        ids := ids || more;
    END IF;
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;

    -- Expired before a worker could start them: ended as a Go worker ends
    -- them after its claim (FinishJobs, cancelled, the attempt refunded).
    WITH expired AS (
        UPDATE pgq.jobs AS j
           SET state = 'cancelled', attempt = j.attempt - 1, finished_at = now(),
               errors = j.errors || jsonb_build_array(jsonb_build_object(
                            'attempt', j.attempt, 'at', now(),
                            'error', 'expired at '
                                     || rtrim(rtrim(to_char(j.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.')
                                     || 'Z before a worker could start it'))
         WHERE j.id = ANY (ids)
           AND j.expires_at < now()
        RETURNING j.id
    )
    SELECT coalesce(array_agg(expired.id), '{}') INTO gone FROM expired;
    IF cardinality(gone) > 0 THEN
        PERFORM pg_notify('pgq.results', string_agg(x.id::text, ','))
           FROM (SELECT e.id, (row_number() OVER ()) / 300 AS chunk FROM unnest(gone) AS e (id)) AS x
          GROUP BY x.chunk;
    END IF;

    RETURN QUERY
    SELECT c.id, c.task, c.queue, c.priority::integer, c.args, c.meta, c.attempt, c.max_retries,
           c.retry_delay_ms, c.time_limit_ms, c.soft_time_limit_ms, c.ignore_result,
           c.run_at, c.expires_at, c.created_at, c.started_at, c.parent_id, c.root_id
      FROM pgq.jobs AS c
     WHERE c.id = ANY (ids)
       AND c.state = 'running'
     ORDER BY c.priority DESC, c.run_at, c.id;
END
$$;

COMMENT ON FUNCTION pgq.claim(text, text[], integer) IS 'Claim up to n runnable jobs of the queues for a worker, as a Go worker does (ordinary claim, then the limited claim).';

-- next_run_in: NextRunIn (queries/worker.sql). Seconds until the earliest
-- waiting job of the queues becomes runnable (negative: runnable now;
-- NULL: none waits). Paused queues do not count. A worker sleeps this long
-- (capped by its poll interval) when a claim came back short, so a retry
-- due in 50 ms runs in 50 ms without a notification.
CREATE FUNCTION pgq.next_run_in(queues text[]) RETURNS float8
LANGUAGE plpgsql STABLE AS $$
DECLARE
    wait    float8;
    limited float8;
BEGIN
    IF to_regclass('pgq.limits') IS NULL THEN
        SELECT extract(epoch FROM min(j.run_at) - now())::float8 INTO wait
          FROM pgq.jobs AS j
         WHERE j.state IN ('scheduled', 'available', 'retrying')
           AND j.queue = ANY (next_run_in.queues)
           AND NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = j.queue AND p.paused);
        RETURN wait;
    END IF;
    -- With limits (migration 0010): the ordinary jobs as NextRunIn counts
    -- them, and the limited ones as pgq.limited_wait_ms does.
    EXECUTE $q$
        SELECT extract(epoch FROM min(j.run_at) - now())::float8
          FROM pgq.jobs AS j
         WHERE j.state IN ('scheduled', 'available', 'retrying')
           AND j.queue = ANY ($1)
           AND j.mutex_key IS NULL
           AND NOT EXISTS (SELECT 1 FROM pgq.limits AS l
                            WHERE (l.scope = 'task' AND l.name = j.task) OR (l.scope = 'queue' AND l.name = j.queue))
           AND NOT EXISTS (SELECT 1 FROM pgq.queues AS p WHERE p.name = j.queue AND p.paused) $q$
       INTO wait USING next_run_in.queues;
    EXECUTE format($q$SELECT pgq.limited_wait_ms($1, '{}'::jsonb, 100::float8%s)$q$,
                   CASE WHEN to_regprocedure('pgq.limited_wait_ms(text[], jsonb, float8, text[])') IS NOT NULL
                        THEN ', NULL::text[]' ELSE '' END)
       INTO limited USING next_run_in.queues;
    IF limited IS NOT NULL AND limited < 'Infinity'::float8 THEN
        wait := least(coalesce(wait, 'Infinity'::float8), limited / 1000.0);
    END IF;
    RETURN wait;
END
$$;

COMMENT ON FUNCTION pgq.next_run_in(text[]) IS 'Seconds until the earliest waiting job of the queues is runnable; NULL when none waits.';

-- complete: CompleteJobs for one job. The guard (running, held by this
-- worker, this attempt) makes a late write from a worker that lost the
-- job a no-op (false); a row this attempt already completed counts as
-- written (true), so a retry after a lost answer is safe. A job enqueued
-- with ignore_result keeps no result. Announced on pgq.results.
CREATE FUNCTION pgq.complete(worker_id text, job_id bigint, attempt integer, result jsonb DEFAULT NULL)
RETURNS boolean
LANGUAGE sql AS $$
    WITH done AS (
        UPDATE pgq.jobs AS j
           SET state = 'succeeded',
               finished_at = CASE WHEN j.state = 'running' THEN now() ELSE j.finished_at END,
               result = CASE WHEN j.state <> 'running' THEN j.result
                             WHEN j.ignore_result THEN NULL ELSE $4 END
         WHERE j.id = $2
           AND j.state IN ('running', 'succeeded')
           AND j.worker_id = $1
           AND j.attempt = $3
        RETURNING j.id
    )
    SELECT count(*) > 0 FROM done CROSS JOIN LATERAL pg_notify('pgq.results', done.id::text) AS announced
$$;

COMMENT ON FUNCTION pgq.complete(text, bigint, integer, jsonb) IS 'End an attempt in success (Go''s CompleteJobs); false when the job is no longer held by this attempt.';

-- finish: FinishJobs for one job, the building block of fail, snooze and
-- hand_back. new_state is retrying, failed, scheduled (snooze), available
-- (hand-back) or cancelled; refund gives the attempt back. A revoked job
-- never goes back to a queue: it ends cancelled with a note. Returns the
-- state stored, or NULL when the job is no longer held by this attempt.
-- Only hand-backs wake the queue (the others become runnable later, and
-- the workers' polling finds them, as for Go).
CREATE FUNCTION pgq.finish(worker_id text, job_id bigint, attempt integer, new_state text,
                           delay interval DEFAULT '0', error text DEFAULT NULL, stack text DEFAULT NULL,
                           refund boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    stored text;
    qname  text;
    err    text := coalesce(finish.error, '');
BEGIN
    IF finish.new_state IS NULL OR finish.new_state NOT IN ('retrying', 'failed', 'scheduled', 'available', 'cancelled') THEN
        RAISE EXCEPTION 'pgq: cannot finish an attempt as %: use retrying, failed, scheduled, available or cancelled (pgq.complete for success)',
            coalesce(quote_literal(finish.new_state), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF finish.new_state IN ('scheduled', 'available') THEN
        err := ''; -- snoozes and hand-backs are not failures
    END IF;
    UPDATE pgq.jobs AS j
       SET state = CASE WHEN j.revoked_at IS NOT NULL AND finish.new_state IN ('retrying', 'scheduled', 'available')
                        THEN 'cancelled' ELSE finish.new_state END,
           attempt = CASE WHEN coalesce(finish.refund, false) THEN j.attempt - 1 ELSE j.attempt END,
           run_at = CASE WHEN j.revoked_at IS NULL AND finish.new_state IN ('retrying', 'scheduled', 'available')
                         THEN now() + greatest(coalesce(finish.delay, interval '0'), interval '0')
                         ELSE j.run_at END,
           finished_at = CASE WHEN finish.new_state IN ('failed', 'cancelled') OR j.revoked_at IS NOT NULL THEN now() END,
           started_at = CASE WHEN finish.new_state = 'available' AND j.revoked_at IS NULL THEN NULL ELSE j.started_at END,
           worker_id = CASE WHEN finish.new_state = 'available' AND j.revoked_at IS NULL THEN NULL ELSE j.worker_id END,
           errors = CASE WHEN j.revoked_at IS NOT NULL AND finish.new_state IN ('retrying', 'scheduled', 'available')
                         THEN j.errors || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                                  'attempt', j.attempt, 'at', now(),
                                  'error', 'revoked: not run again' || coalesce(' (this attempt: ' || nullif(err, '') || ')', ''),
                                  'stack', nullif(finish.stack, ''))))
                         WHEN err = '' THEN j.errors
                         ELSE j.errors || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                                  'attempt', j.attempt, 'at', now(), 'error', err, 'stack', nullif(finish.stack, ''))))
                    END
     WHERE j.id = finish.job_id
       AND j.state = 'running'
       AND j.worker_id = finish.worker_id
       AND j.attempt = finish.attempt
    RETURNING j.state, j.queue INTO stored, qname;
    IF stored IN ('failed', 'cancelled') THEN
        PERFORM pg_notify('pgq.results', finish.job_id::text);
    ELSIF stored = 'available' THEN
        PERFORM pg_notify('pgq.jobs', qname);
    END IF;
    RETURN stored;
END
$$;

COMMENT ON FUNCTION pgq.finish(text, bigint, integer, text, interval, text, text, boolean) IS 'End an attempt other than in success (Go''s FinishJobs); NULL when the job is no longer held by this attempt.';

-- fail: a failed attempt under Go's retry policy (worker/execute.go,
-- failure): permanent, or out of attempts (attempt > max_retries) ->
-- failed; retry_in given (Go's worker.Retry) -> retrying after it; the
-- job's own retry_delay -> retrying after exactly that; otherwise Go's
-- default backoff: retry_delay (default 1 s) doubled per attempt, +-25%
-- jitter, capped at max_retry_delay (default 10 min). max_retries
-- overrides the job's, as Go's TaskOptions.MaxRetries does. The error is
-- recorded as {attempt, at, error, stack}. Returns the state stored
-- (retrying, failed, or cancelled for a revoked job), or NULL when the job
-- is no longer held by this attempt.
CREATE FUNCTION pgq.fail(worker_id text, job_id bigint, attempt integer, error text,
                         stack text DEFAULT NULL, permanent boolean DEFAULT false,
                         retry_in interval DEFAULT NULL, max_retries integer DEFAULT NULL,
                         retry_delay interval DEFAULT NULL, max_retry_delay interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    job        record;
    base       float8 := extract(epoch FROM coalesce(fail.retry_delay, interval '1 second'));
    cap        float8 := extract(epoch FROM coalesce(fail.max_retry_delay, interval '10 minutes'));
    delay      interval;
BEGIN
    SELECT j.max_retries, j.retry_delay_ms INTO job
      FROM pgq.jobs AS j
     WHERE j.id = fail.job_id AND j.state = 'running' AND j.worker_id = fail.worker_id AND j.attempt = fail.attempt
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF coalesce(fail.permanent, false) OR fail.attempt > coalesce(fail.max_retries, job.max_retries) THEN
        RETURN pgq.finish(fail.worker_id, fail.job_id, fail.attempt, 'failed', interval '0', fail.error, fail.stack, false);
    END IF;
    IF fail.retry_in IS NOT NULL THEN
        delay := greatest(fail.retry_in, interval '0');
    ELSIF job.retry_delay_ms IS NOT NULL THEN
        delay := make_interval(secs => job.retry_delay_ms / 1000.0);
    ELSE
        delay := make_interval(secs => least(base * power(2, greatest(fail.attempt - 1, 0)) * (1 + 0.25 * (2 * random() - 1)), cap));
    END IF;
    RETURN pgq.finish(fail.worker_id, fail.job_id, fail.attempt, 'retrying', delay, fail.error, fail.stack, false);
END
$$;

COMMENT ON FUNCTION pgq.fail(text, bigint, integer, text, text, boolean, interval, integer, interval, interval) IS 'End an attempt in failure under Go''s retry policy; returns retrying, failed or cancelled (NULL: not held).';

-- snooze: Go's worker.Snooze. The job runs again after delay; the attempt
-- is not counted and no error is recorded.
CREATE FUNCTION pgq.snooze(worker_id text, job_id bigint, attempt integer, delay interval)
RETURNS text
LANGUAGE sql AS $$
    SELECT pgq.finish($1, $2, $3, 'scheduled', $4, NULL, NULL, true)
$$;

COMMENT ON FUNCTION pgq.snooze(text, bigint, integer, interval) IS 'Put a running job back to run after a delay, attempt not counted (Go''s Snooze).';

-- hand_back: a job the worker will not run after all (shutdown) goes back
-- to its queue at once, the attempt not counted, and the queue is woken.
CREATE FUNCTION pgq.hand_back(worker_id text, job_id bigint, attempt integer)
RETURNS text
LANGUAGE sql AS $$
    SELECT pgq.finish($1, $2, $3, 'available', interval '0', NULL, NULL, true)
$$;

COMMENT ON FUNCTION pgq.hand_back(text, bigint, integer) IS 'Give a running job back to its queue at once, attempt not counted (a shutdown''s hand-back).';
