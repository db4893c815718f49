-- pgq schema, step 8: workflows (chain, group, chord, map, links).
--
-- Every object is written as pgq.<name>; see 0001 for why. The design,
-- with its failure cases, is in docs/workflow.md.
--
-- A workflow is a tree. Its leaves are jobs; its inner nodes are chains
-- (children run one after another, each receiving the previous one's
-- result), groups (children run side by side; the group's result is the
-- list of theirs, in member order) and chords (a chain whose first step is
-- a group). Any node may carry callbacks: "link" nodes run with its result
-- when it succeeds, "link_error" nodes with a description of the failure
-- when it fails.
--
-- Every job of a workflow is inserted when the workflow is enqueued, in the
-- caller's transaction. Jobs that must wait for an earlier step are in the
-- new state 'pending', which no claim looks at (jobs_fetch_idx does not
-- even index it). Every further step is taken by a trigger on pgq.jobs, in
-- the transaction that finishes the job causing it, whoever writes that:
-- a worker's batched completion, CompleteTx, a rescue, a revoke, an expiry
-- or plain SQL from another language.

-- 'pending': a job of a workflow that waits for an earlier step. It is
-- made available (or scheduled, with a countdown) when that step succeeds,
-- and cancelled when the workflow fails before it could run.
ALTER TABLE pgq.jobs DROP CONSTRAINT jobs_state_known;
ALTER TABLE pgq.jobs ADD CONSTRAINT jobs_state_known
    CHECK (state IN ('pending', 'scheduled', 'available', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')) NOT VALID;
ALTER TABLE pgq.jobs VALIDATE CONSTRAINT jobs_state_known;

COMMENT ON TABLE pgq.jobs IS 'One row per job. States: pending (a workflow step waiting for an earlier one), scheduled, available, running, retrying (waiting), succeeded, failed, cancelled (finished).';

-- One row per node of a workflow. Ids come from the jobs' sequence, so a
-- task node's id is its job's id and no node id is ever a different job's.
CREATE TABLE pgq.workflow_nodes (
    id           bigint      PRIMARY KEY,
    root_id      bigint      NOT NULL,
    parent_id    bigint,
    -- step: a child of a chain, group or chord (or the root);
    -- link / link_error: a callback of the parent node.
    role         text        COLLATE "C" NOT NULL DEFAULT 'step',
    position     integer     NOT NULL DEFAULT 0,
    kind         text        COLLATE "C" NOT NULL,
    -- task: the task name (kept when a skipped callback's job is deleted).
    task         text        COLLATE "C",
    -- pending: not started; active: started, not finished; succeeded,
    -- failed, cancelled: finished; skipped: a callback that was not needed
    -- (its job row is deleted).
    state        text        COLLATE "C" NOT NULL DEFAULT 'pending',
    immutable    boolean     NOT NULL DEFAULT false,
    -- group: members that have not succeeded yet (the chord counter).
    remaining    integer,
    -- task: delay between being started and running (Options.Countdown).
    countdown_ms integer,
    -- What the node was started with: the previous step's result, a
    -- chord's member results, or a failure for a link_error callback.
    -- NULL for a first step and for immutable nodes.
    input        jsonb,
    -- A chain's, group's or chord's result (a task's is its job's).
    result       jsonb,
    -- Why the node failed: {job_id, task, state, error} of the job that
    -- failed first.
    failure      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,

    CONSTRAINT workflow_nodes_role_known CHECK (role IN ('step', 'link', 'link_error')),
    CONSTRAINT workflow_nodes_kind_known CHECK (kind IN ('task', 'chain', 'group', 'chord')),
    CONSTRAINT workflow_nodes_state_known CHECK (state IN ('pending', 'active', 'succeeded', 'failed', 'cancelled', 'skipped'))
);

COMMENT ON TABLE pgq.workflow_nodes IS 'Workflow trees: chains, groups and chords (with their counters), their tasks and callbacks. See pgq.workflow_steps.';

CREATE INDEX workflow_nodes_parent_idx ON pgq.workflow_nodes (parent_id, role, position);
CREATE INDEX workflow_nodes_root_idx ON pgq.workflow_nodes (root_id);

-- Start a node with an input (NULL for none): a task's job becomes
-- available (or scheduled after its countdown) and its queue is woken at
-- commit; a chain starts its first step; a group starts every member and
-- sets its counter. Starting an already started node does nothing.
CREATE FUNCTION pgq.workflow_start(node_id bigint, input jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n     record;
    eff   jsonb;
    child  bigint;
    q      text;
    queues text[];
BEGIN
    UPDATE pgq.workflow_nodes AS w
       SET state = 'active',
           input = CASE WHEN w.immutable THEN NULL ELSE workflow_start.input END,
           remaining = CASE WHEN w.kind = 'group'
                            THEN (SELECT count(*) FROM pgq.workflow_nodes AS c
                                   WHERE c.parent_id = w.id AND c.role = 'step')::integer END
     WHERE w.id = node_id AND w.state = 'pending'
    RETURNING w.kind, w.immutable, w.remaining INTO n;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    eff := CASE WHEN n.immutable THEN NULL ELSE workflow_start.input END;

    IF n.kind = 'task' THEN
        UPDATE pgq.jobs AS j
           SET run_at = greatest(j.run_at, now() + make_interval(secs => coalesce(w.countdown_ms, 0) / 1000.0)),
               state = CASE WHEN greatest(j.run_at, now() + make_interval(secs => coalesce(w.countdown_ms, 0) / 1000.0)) > now()
                            THEN 'scheduled' ELSE 'available' END
          FROM pgq.workflow_nodes AS w
         WHERE j.id = node_id AND w.id = node_id AND j.state = 'pending'
        RETURNING j.queue INTO q;
        IF q IS NOT NULL THEN
            PERFORM pg_notify('pgq.jobs', q);
        END IF;
    ELSIF n.kind IN ('chain', 'chord') THEN
        SELECT c.id INTO child FROM pgq.workflow_nodes AS c
         WHERE c.parent_id = node_id AND c.role = 'step'
         ORDER BY c.position LIMIT 1;
        IF child IS NULL THEN
            PERFORM pgq.workflow_succeed(node_id, eff);
        ELSE
            PERFORM pgq.workflow_start(child, eff);
        END IF;
    ELSE -- group: the task members in one statement, the others one by one
        UPDATE pgq.workflow_nodes AS c
           SET state = 'active', input = CASE WHEN c.immutable THEN NULL ELSE eff END
         WHERE c.parent_id = node_id AND c.role = 'step' AND c.kind = 'task' AND c.state = 'pending';
        WITH woken AS (
            UPDATE pgq.jobs AS j
               SET run_at = greatest(j.run_at, now() + make_interval(secs => coalesce(c.countdown_ms, 0) / 1000.0)),
                   state = CASE WHEN greatest(j.run_at, now() + make_interval(secs => coalesce(c.countdown_ms, 0) / 1000.0)) > now()
                                THEN 'scheduled' ELSE 'available' END
              FROM pgq.workflow_nodes AS c
             WHERE c.parent_id = node_id AND c.role = 'step' AND c.kind = 'task'
               AND j.id = c.id AND j.state = 'pending'
            RETURNING j.queue
        )
        SELECT array_agg(DISTINCT woken.queue) INTO queues FROM woken;
        PERFORM pg_notify('pgq.jobs', x) FROM unnest(queues) AS x;
        FOR child IN SELECT c.id FROM pgq.workflow_nodes AS c
                      WHERE c.parent_id = node_id AND c.role = 'step' AND c.kind <> 'task'
                      ORDER BY c.position LOOP
            PERFORM pgq.workflow_start(child, eff);
        END LOOP;
        IF n.remaining = 0 THEN
            PERFORM pgq.workflow_succeed(node_id, '[]'::jsonb);
        END IF;
    END IF;
END
$$;

-- Callbacks of a node that finished: the wanted role's callbacks start
-- with the given input; the other role's are skipped (their jobs, still
-- pending, are deleted).
CREATE FUNCTION pgq.workflow_callbacks(node_id bigint, wanted text, input jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cb bigint;
BEGIN
    FOR cb IN SELECT c.id FROM pgq.workflow_nodes AS c
               WHERE c.parent_id = node_id AND c.role = wanted
               ORDER BY c.position LOOP
        PERFORM pgq.workflow_start(cb, input);
    END LOOP;
    WITH RECURSIVE sub AS (
        SELECT c.id FROM pgq.workflow_nodes AS c
         WHERE c.parent_id = node_id AND c.role IN ('link', 'link_error') AND c.role <> wanted
        UNION ALL
        SELECT c.id FROM pgq.workflow_nodes AS c JOIN sub ON c.parent_id = sub.id
    ), skipped AS (
        UPDATE pgq.workflow_nodes AS w SET state = 'skipped', finished_at = now()
          FROM sub WHERE w.id = sub.id AND w.state = 'pending'
        RETURNING w.id
    )
    DELETE FROM pgq.jobs AS j USING skipped WHERE j.id = skipped.id AND j.state = 'pending';
END
$$;

-- A node succeeded with a result: its link callbacks start, and its parent
-- moves on (a chain starts its next step or succeeds; a group counts the
-- member down and, at zero, succeeds with every member's result in member
-- order). Succeeding a node twice does nothing the second time.
CREATE FUNCTION pgq.workflow_succeed(node_id bigint, result jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n    record;
    p    record;
    nxt  bigint;
    todo integer;
    agg  jsonb;
BEGIN
    UPDATE pgq.workflow_nodes AS w
       SET state = 'succeeded', finished_at = now(),
           result = CASE WHEN w.kind = 'task' THEN NULL ELSE workflow_succeed.result END
     WHERE w.id = node_id AND w.state IN ('pending', 'active')
    RETURNING w.parent_id, w.role, w.position INTO n;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM pgq.workflow_callbacks(node_id, 'link', workflow_succeed.result);
    IF n.parent_id IS NULL OR n.role <> 'step' THEN
        RETURN; -- the root, or a callback: nothing waits for it
    END IF;

    SELECT w.kind, w.state INTO p FROM pgq.workflow_nodes AS w WHERE w.id = n.parent_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p.kind = 'group' THEN
        -- The chord counter. The row lock makes concurrent completions
        -- take turns, and the state test (re-checked after the wait) makes
        -- a failed group ignore late members: exactly one completion sees
        -- zero.
        UPDATE pgq.workflow_nodes AS w SET remaining = w.remaining - 1
         WHERE w.id = n.parent_id AND w.state = 'active'
        RETURNING w.remaining INTO todo;
        IF todo = 0 THEN
            SELECT coalesce(jsonb_agg(CASE WHEN c.kind = 'task' THEN j.result ELSE c.result END ORDER BY c.position), '[]'::jsonb)
              INTO agg
              FROM pgq.workflow_nodes AS c
              LEFT JOIN pgq.jobs AS j ON j.id = c.id
             WHERE c.parent_id = n.parent_id AND c.role = 'step';
            PERFORM pgq.workflow_succeed(n.parent_id, agg);
        END IF;
    ELSIF p.state = 'active' THEN -- chain or chord
        SELECT c.id INTO nxt FROM pgq.workflow_nodes AS c
         WHERE c.parent_id = n.parent_id AND c.role = 'step' AND c.position > n.position
         ORDER BY c.position LIMIT 1;
        IF nxt IS NULL THEN
            PERFORM pgq.workflow_succeed(n.parent_id, workflow_succeed.result);
        ELSE
            PERFORM pgq.workflow_start(nxt, workflow_succeed.result);
        END IF;
    END IF;
END
$$;

-- A node failed (or was cancelled): its link_error callbacks start with
-- the failure, every step below it that has not started is cancelled, and
-- the failure goes up to its parent, which fails too. Failing a node twice
-- does nothing the second time, so error callbacks run once.
CREATE FUNCTION pgq.workflow_fail(node_id bigint, final_state text, failure jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n   record;
    why text;
    ids bigint[];
BEGIN
    UPDATE pgq.workflow_nodes AS w
       SET state = CASE WHEN w.kind = 'task' THEN final_state ELSE 'failed' END,
           failure = workflow_fail.failure, finished_at = now()
     WHERE w.id = node_id AND w.state IN ('pending', 'active')
    RETURNING w.parent_id, w.role INTO n;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM pgq.workflow_callbacks(node_id, 'link_error', workflow_fail.failure);

    -- Steps below this node that never started will never run. Their
    -- nodes are marked first, so the trigger that fires for their jobs
    -- finds nothing left to do.
    why := format('not run: job %s (%s) %s: %s', failure ->> 'job_id', failure ->> 'task',
                  failure ->> 'state', failure ->> 'error');
    WITH RECURSIVE sub AS (
        SELECT c.id FROM pgq.workflow_nodes AS c WHERE c.parent_id = node_id AND c.role = 'step'
        UNION ALL
        SELECT c.id FROM pgq.workflow_nodes AS c JOIN sub ON c.parent_id = sub.id
    ), marked AS (
        UPDATE pgq.workflow_nodes AS w
           SET state = 'cancelled', finished_at = now(), failure = workflow_fail.failure
          FROM sub WHERE w.id = sub.id AND w.state = 'pending'
        RETURNING w.id
    ), cancelled AS (
        UPDATE pgq.jobs AS j
           SET state = 'cancelled', finished_at = now(),
               errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'at', now(), 'error', why))
          FROM marked WHERE j.id = marked.id AND j.state = 'pending'
        RETURNING j.id
    )
    SELECT array_agg(cancelled.id) INTO ids FROM cancelled;
    -- Waiting AsyncResults of the cancelled jobs are woken, 300 ids per
    -- notification as for completions.
    PERFORM pg_notify('pgq.results', string_agg(c.id::text, ','))
       FROM (SELECT x AS id, (row_number() OVER ()) / 300 AS chunk FROM unnest(ids) AS x) AS c
      GROUP BY c.chunk;

    IF n.parent_id IS NOT NULL AND n.role = 'step' THEN
        PERFORM pgq.workflow_fail(n.parent_id, 'failed', workflow_fail.failure);
    END IF;
END
$$;

-- The trigger function: a job of a workflow finished.
CREATE FUNCTION pgq.workflow_job_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'succeeded' THEN
        PERFORM pgq.workflow_succeed(NEW.id, NEW.result);
    ELSE
        PERFORM pgq.workflow_fail(NEW.id, NEW.state, jsonb_build_object(
            'job_id', NEW.id, 'task', NEW.task, 'state', NEW.state,
            'error', coalesce(NEW.errors -> -1 ->> 'error', NEW.state)));
    END IF;
    RETURN NULL;
END
$$;

-- Fires only for jobs of a workflow (root_id set) entering a final state,
-- so other jobs pay for the WHEN test alone. Row-level and AFTER: it runs
-- inside the statement's transaction, once per finished row, and sees
-- every row the statement changed (a whole completion batch).
CREATE TRIGGER jobs_workflow_finished
    AFTER UPDATE OF state ON pgq.jobs
    FOR EACH ROW
    WHEN (NEW.root_id IS NOT NULL
          AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state IN ('succeeded', 'failed', 'cancelled'))
    EXECUTE FUNCTION pgq.workflow_job_finished();

-- What a step was started with (the previous step's result, a chord's
-- member results, or a failure for an error callback); NULL when nothing.
-- For handlers in any language: SELECT pgq.workflow_input(<job id>).
CREATE FUNCTION pgq.workflow_input(job_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT w.input FROM pgq.workflow_nodes AS w WHERE w.id = job_id;
$$;

-- Every node of every workflow with its job's state, for humans and SQL.
CREATE VIEW pgq.workflow_steps AS
SELECT w.root_id AS workflow_id, w.id, w.parent_id, w.role, w.position, w.kind,
       coalesce(j.task, w.task, '') AS task,
       (CASE WHEN w.kind = 'task' AND j.id IS NOT NULL THEN j.state ELSE w.state END)::text AS state,
       w.state AS node_state,
       w.remaining, j.attempt, j.queue, w.created_at, coalesce(j.finished_at, w.finished_at) AS finished_at,
       (w.failure ->> 'error')::text AS error, (w.failure ->> 'job_id')::bigint AS failed_job_id
  FROM pgq.workflow_nodes AS w
  LEFT JOIN pgq.jobs AS j ON j.id = w.id AND w.kind = 'task';

COMMENT ON VIEW pgq.workflow_steps IS 'One row per workflow node (chain, group, chord, task, callback) with its current state.';
