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
    -- (its job row is deleted); deleted: a task whose job was deleted
    -- (retention, Delete) before its workflow ended, its result kept in
    -- result for its chord. A task that succeeded stays active here:
    -- its job's state says it succeeded (pgq.workflow_steps shows it).
    state        text        COLLATE "C" NOT NULL DEFAULT 'pending',
    immutable    boolean     NOT NULL DEFAULT false,
    -- Whether the node has link or link_error callbacks, and its parent's
    -- kind: kept here so that a member's completion costs two statements.
    callbacks    boolean     NOT NULL DEFAULT false,
    parent_kind  text        COLLATE "C",
    -- group: members that have not succeeded yet (the chord counter).
    remaining    integer,
    -- task: delay between being started and running (Options.Countdown).
    countdown_ms integer,
    -- What the node was started with: the previous step's result, a
    -- chord's member results, or a failure for a link_error callback.
    -- NULL for a first step and for immutable nodes.
    input        jsonb,
    -- A chain's, group's or chord's result (a task's is its job's, copied
    -- here only if retention deletes the job before its workflow ends).
    result       jsonb,
    -- Why the node failed: {job_id, task, state, error} of the job that
    -- failed first.
    failure      jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,

    CONSTRAINT workflow_nodes_role_known CHECK (role IN ('step', 'link', 'link_error')),
    CONSTRAINT workflow_nodes_kind_known CHECK (kind IN ('task', 'chain', 'group', 'chord')),
    CONSTRAINT workflow_nodes_state_known CHECK (state IN ('pending', 'active', 'succeeded', 'failed', 'cancelled', 'skipped', 'deleted'))
) WITH (fillfactor = 70); -- room for the start of each node as a HOT update

COMMENT ON TABLE pgq.workflow_nodes IS 'Workflow trees: chains, groups and chords (with their counters), their tasks and callbacks. See pgq.workflow_steps.';

CREATE INDEX workflow_nodes_parent_idx ON pgq.workflow_nodes (parent_id, role, position);
CREATE INDEX workflow_nodes_root_idx ON pgq.workflow_nodes (root_id);
-- Tasks whose job still exists, by workflow: when retention deletes a
-- finished workflow's last job, its whole tree goes (workflow_job_deleted).
CREATE INDEX workflow_nodes_live_tasks_idx ON pgq.workflow_nodes (root_id)
    WHERE kind = 'task' AND state NOT IN ('skipped', 'deleted');

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
-- moves on: a chain starts its next step or succeeds; a group counts the
-- member (see workflow_count). Only chains, groups and chords are marked
-- succeeded here: a task's state is its job's, so a member's completion
-- costs one primary-key read of its node, not a write.
CREATE FUNCTION pgq.workflow_continue(node_id bigint, parent_id bigint, parent_kind text, role text, pos integer,
                                      callbacks boolean, result jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    st  text;
    nxt bigint;
BEGIN
    IF workflow_continue.callbacks THEN
        PERFORM pgq.workflow_callbacks(node_id, 'link', workflow_continue.result);
    END IF;
    IF workflow_continue.parent_id IS NULL OR workflow_continue.role <> 'step' THEN
        RETURN; -- the root, or a callback: nothing waits for it
    END IF;
    IF workflow_continue.parent_kind = 'group' THEN
        PERFORM pgq.workflow_count(workflow_continue.parent_id);
        RETURN;
    END IF;
    -- A chain or chord: its next step starts, or it succeeds.
    SELECT w.state INTO st FROM pgq.workflow_nodes AS w WHERE w.id = workflow_continue.parent_id;
    IF st IS DISTINCT FROM 'active' THEN
        RETURN;
    END IF;
    SELECT c.id INTO nxt FROM pgq.workflow_nodes AS c
     WHERE c.parent_id = workflow_continue.parent_id AND c.role = 'step' AND c.position > pos
     ORDER BY c.position LIMIT 1;
    IF nxt IS NULL THEN
        PERFORM pgq.workflow_succeed(workflow_continue.parent_id, workflow_continue.result);
    ELSE
        PERFORM pgq.workflow_start(nxt, workflow_continue.result);
    END IF;
END
$$;

-- A chain, group or chord succeeded (once: a second call does nothing).
CREATE FUNCTION pgq.workflow_succeed(node_id bigint, result jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n record;
BEGIN
    UPDATE pgq.workflow_nodes AS w
       SET state = 'succeeded', finished_at = now(), result = workflow_succeed.result
     WHERE w.id = node_id AND w.state IN ('pending', 'active')
    RETURNING w.parent_id, w.parent_kind, w.role, w.position, w.callbacks INTO n;
    IF FOUND THEN
        PERFORM pgq.workflow_continue(node_id, n.parent_id, n.parent_kind, n.role, n.position, n.callbacks, workflow_succeed.result);
    END IF;
END
$$;

-- The chord counter. A group's row holds how many members have not
-- succeeded (remaining). Decrementing it once per member would update one
-- row as many times as a completion batch holds members of the group, and
-- every update of a row inside one transaction leaves a version behind
-- that the next one must step over (measured: ~0.3 ms per member at
-- 1,000). So a member's success is only counted, in transaction-local
-- settings: the group of the current run of members and its count
-- (pgq.workflow_group, pgq.workflow_count), and the runs of other groups
-- met before it ("id:count,id:count" in pgq.workflow_counts). The sums are
-- written when the transaction commits (the deferred trigger
-- jobs_workflow_counted), one UPDATE per group in ascending id order, so
-- that two transactions counting members of the same groups lock their
-- rows in the same order and cannot deadlock. The row lock makes
-- concurrent transactions take turns, and the state test (re-checked
-- after a wait) makes a failed group ignore late members: exactly one
-- transaction sees the counter reach zero, and it aggregates the results
-- and starts what follows, before its commit completes.
CREATE FUNCTION pgq.workflow_count(group_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cur  text := current_setting('pgq.workflow_group', true);
    runs text;
    done text;
BEGIN
    IF cur = group_id::text THEN
        done := set_config('pgq.workflow_count', (current_setting('pgq.workflow_count')::integer + 1)::text, true);
        RETURN;
    END IF;
    IF cur <> '' THEN
        runs := coalesce(current_setting('pgq.workflow_counts', true), '');
        runs := runs || CASE WHEN runs = '' THEN '' ELSE ',' END || cur || ':' || current_setting('pgq.workflow_count');
        done := set_config('pgq.workflow_counts', runs, true);
        IF length(runs) > 2000 THEN
            -- Members of many groups, interleaved: write what there is.
            done := set_config('pgq.workflow_group', '', true);
            PERFORM pgq.workflow_flush();
        END IF;
    END IF;
    done := set_config('pgq.workflow_group', group_id::text, true);
    done := set_config('pgq.workflow_count', '1', true);
END
$$;

-- Write the counted members (see workflow_count). A group that reaches zero
-- succeeds with its members' results in member order, which may count a
-- member of an enclosing group: the loop writes that too.
CREATE FUNCTION pgq.workflow_flush() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    runs text;
    cur  text;
    g    record;
    todo integer;
    agg  jsonb;
    done text;
BEGIN
    LOOP
        runs := coalesce(current_setting('pgq.workflow_counts', true), '');
        cur := coalesce(current_setting('pgq.workflow_group', true), '');
        IF cur <> '' THEN
            runs := runs || CASE WHEN runs = '' THEN '' ELSE ',' END || cur || ':' || current_setting('pgq.workflow_count');
        END IF;
        EXIT WHEN runs = '';
        done := set_config('pgq.workflow_counts', '', true);
        done := set_config('pgq.workflow_group', '', true);
        done := set_config('pgq.workflow_count', '0', true);
        FOR g IN SELECT split_part(r, ':', 1)::bigint AS id, sum(split_part(r, ':', 2)::integer)::integer AS n
                   FROM unnest(string_to_array(runs, ',')) AS r
                  GROUP BY 1 ORDER BY 1 LOOP
            UPDATE pgq.workflow_nodes AS w SET remaining = w.remaining - g.n
             WHERE w.id = g.id AND w.state = 'active'
            RETURNING w.remaining INTO todo;
            IF todo = 0 THEN
                SELECT coalesce(jsonb_agg(CASE WHEN m.kind = 'task' AND j.id IS NOT NULL THEN j.result ELSE m.result END ORDER BY m.position), '[]'::jsonb)
                  INTO agg
                  FROM pgq.workflow_nodes AS m
                  LEFT JOIN pgq.jobs AS j ON j.id = m.id
                 WHERE m.parent_id = g.id AND m.role = 'step';
                PERFORM pgq.workflow_succeed(g.id, agg);
            END IF;
        END LOOP;
    END LOOP;
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
    RETURNING w.parent_id, w.role, w.callbacks INTO n;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF n.callbacks THEN
        PERFORM pgq.workflow_callbacks(node_id, 'link_error', workflow_fail.failure);
    END IF;

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
DECLARE
    n    record;
    done text;
BEGIN
    IF NEW.state = 'succeeded' THEN
        SELECT w.state, w.parent_id, w.parent_kind, w.role, w.position, w.callbacks INTO n
          FROM pgq.workflow_nodes AS w WHERE w.id = NEW.id;
        -- Not active: a step cancelled because its workflow failed, or a
        -- job that failed and was retried by hand (its workflow failed
        -- with it). Either way nothing waits for it any more.
        IF NOT FOUND OR n.state <> 'active' THEN
            RETURN NULL;
        END IF;
        -- The hot path, a chord member, inlined: count it (workflow_count)
        -- with assignments, which PL/pgSQL evaluates without the executor.
        IF n.parent_kind = 'group' AND n.role = 'step' AND NOT n.callbacks
           AND current_setting('pgq.workflow_group', true) = n.parent_id::text THEN
            done := set_config('pgq.workflow_count', (current_setting('pgq.workflow_count')::integer + 1)::text, true);
            RETURN NULL;
        END IF;
        PERFORM pgq.workflow_continue(NEW.id, n.parent_id, n.parent_kind, n.role, n.position, n.callbacks, NEW.result);
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

-- Writes the chord counts (workflow_count) when the transaction commits:
-- a deferred constraint trigger on the same rows as the one above, so
-- other jobs pay nothing more for it. The first to fire writes every
-- count of the transaction; the others find nothing left to write.
CREATE FUNCTION pgq.workflow_jobs_counted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('pgq.workflow_group', true) <> '' THEN
        PERFORM pgq.workflow_flush();
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER jobs_workflow_counted
    AFTER UPDATE OF state ON pgq.jobs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.root_id IS NOT NULL
          AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state = 'succeeded')
    EXECUTE FUNCTION pgq.workflow_jobs_counted();

-- A job of a workflow was deleted. Before it finished (Delete, a purge of
-- its queue), it fails its workflow as if revoked, so that nothing waits
-- for it for ever. After it finished (retention): while its workflow runs,
-- a success's result is kept in its node for the chord that will collect
-- it; once its workflow has ended, its node goes, and the whole tree goes
-- with the workflow's last job.
CREATE FUNCTION pgq.workflow_job_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    root record;
BEGIN
    SELECT w.state, w.kind INTO root FROM pgq.workflow_nodes AS w WHERE w.id = OLD.root_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF OLD.state NOT IN ('succeeded', 'failed', 'cancelled') THEN
        PERFORM pgq.workflow_fail(OLD.id, 'cancelled', jsonb_build_object(
            'job_id', OLD.id, 'task', OLD.task, 'state', 'cancelled', 'error', 'deleted before it finished'));
        UPDATE pgq.workflow_nodes AS w SET state = 'deleted' WHERE w.id = OLD.id AND w.state <> 'skipped';
    ELSIF root.kind = 'task' OR root.state IN ('succeeded', 'failed', 'cancelled', 'deleted') THEN
        DELETE FROM pgq.workflow_nodes AS w WHERE w.id = OLD.id;
        IF NOT EXISTS (SELECT 1 FROM pgq.workflow_nodes AS w
                        WHERE w.root_id = OLD.root_id AND w.kind = 'task' AND w.state NOT IN ('skipped', 'deleted')) THEN
            DELETE FROM pgq.workflow_nodes AS w WHERE w.root_id = OLD.root_id;
        END IF;
    ELSE
        UPDATE pgq.workflow_nodes AS w
           SET state = 'deleted', result = CASE WHEN OLD.state = 'succeeded' THEN OLD.result END
         WHERE w.id = OLD.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_workflow_deleted
    AFTER DELETE ON pgq.jobs
    FOR EACH ROW
    WHEN (OLD.root_id IS NOT NULL)
    EXECUTE FUNCTION pgq.workflow_job_deleted();

-- Start a workflow (what ApplyTx calls after inserting it): its root, and
-- the counts that starting it may leave (an empty group inside a group).
CREATE FUNCTION pgq.workflow_run(root_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pgq.workflow_start(root_id, NULL);
    PERFORM pgq.workflow_flush();
END
$$;

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
       w.remaining, j.attempt, j.queue, w.created_at, coalesce(j.finished_at, w.finished_at) AS finished_at,
       (w.failure ->> 'error')::text AS error, (w.failure ->> 'job_id')::bigint AS failed_job_id
  FROM pgq.workflow_nodes AS w
  LEFT JOIN pgq.jobs AS j ON j.id = w.id AND w.kind = 'task';

COMMENT ON VIEW pgq.workflow_steps IS 'One row per workflow node (chain, group, chord, task, callback) with its current state.';
