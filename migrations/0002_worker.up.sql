-- pgq schema, step 2: what the worker runtime needs.
--
-- Every object is written as pgq.<name>; see 0001 for why.

-- One row per running worker process. A worker inserts its row before it
-- claims its first job and refreshes heartbeat_at every few seconds; a
-- clean stop deletes it. A row whose heartbeat is older than the rescue
-- timeout belongs to a dead worker: the maintenance leader hands its
-- running jobs back to their queues and deletes the row.
CREATE TABLE pgq.workers (
    id           text        PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    queues       text[]      NOT NULL,
    concurrency  integer     NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    meta         jsonb       NOT NULL DEFAULT '{}',

    CONSTRAINT workers_id_length CHECK (length(id) BETWEEN 1 AND 200),
    CONSTRAINT workers_concurrency_positive CHECK (concurrency > 0),
    CONSTRAINT workers_meta_object CHECK (jsonb_typeof(meta) = 'object')
);

COMMENT ON TABLE pgq.workers IS 'Running workers and their heartbeats; a row with an old heartbeat_at is a dead worker whose jobs get rescued.';

-- Running jobs by holder: rescue, shutdown hand-back and "what is worker X
-- doing" all look running jobs up by worker. Partial, so it holds only the
-- jobs in flight (at most the sum of the workers' concurrency).
CREATE INDEX jobs_running_idx ON pgq.jobs (worker_id, started_at)
    WHERE state = 'running';

-- Workers with their number of running jobs, for humans at a psql prompt.
CREATE VIEW pgq.worker_overview AS
SELECT w.id, w.host, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
       extract(epoch FROM now() - w.heartbeat_at)::float8 AS heartbeat_age_seconds,
       (SELECT count(*) FROM pgq.jobs j WHERE j.state = 'running' AND j.worker_id = w.id)::bigint AS running
  FROM pgq.workers w;
