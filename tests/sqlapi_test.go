package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

// The SQL API of migration 0009 (docs/sql.md) is the way in for workers
// and clients written in other languages. These tests hold each function
// to the Go code path it stands for: a job moved by SQL must look to Go
// exactly as if Go had moved it, and the other way round.

type sqlAPI struct {
	db     *pgtest.DB
	client *queue.Client
}

func setupSQLAPI(t *testing.T) *sqlAPI {
	t.Helper()
	d := pgtest.New(t)
	c, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(t, err)
	return &sqlAPI{db: d, client: c}
}

// q runs a statement written with the pgq. prefix in the test's schema.
func (s *sqlAPI) q(t *testing.T, sql string, args ...any) pgx.Rows {
	t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), schema.Rewrite(s.db.Schema, sql), args...)
	require.NoError(t, err)
	return rows
}

// scalar runs a one-value query.
func scalar[T any](t *testing.T, s *sqlAPI, sql string, args ...any) T {
	t.Helper()
	var v T
	require.NoError(t, s.db.Pool.QueryRow(context.Background(), schema.Rewrite(s.db.Schema, sql), args...).Scan(&v))
	return v
}

// sqlErr runs a statement that must fail and returns its PostgreSQL error.
func (s *sqlAPI) sqlErr(t *testing.T, sql string, args ...any) *pgconn.PgError {
	t.Helper()
	_, err := s.db.Pool.Exec(context.Background(), schema.Rewrite(s.db.Schema, sql), args...)
	require.Error(t, err)
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	require.True(t, ok, "want a PostgreSQL error, got %v", err)
	return pgErr
}

type claimedRow struct {
	ID      int64
	Task    string
	Queue   string
	Args    json.RawMessage
	Attempt int32
}

func (s *sqlAPI) claim(t *testing.T, workerID string, queues []string, n int) []claimedRow {
	t.Helper()
	rows := s.q(t, `SELECT id, task, queue, args, attempt FROM pgq.claim($1, $2, $3)`, workerID, queues, n)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[claimedRow])
	require.NoError(t, err)
	return out
}

func (s *sqlAPI) register(t *testing.T, workerID string, queues ...string) {
	t.Helper()
	_, err := s.db.Pool.Exec(context.Background(), schema.Rewrite(s.db.Schema,
		`SELECT pgq.register_worker($1, $2, 4, 'sqlhost', 4242, '{"language":"sql"}')`), workerID, queues)
	require.NoError(t, err)
}

// runGoWorker runs an in-process Go worker with the built-in tasks until
// the test ends.
func (s *sqlAPI) runGoWorker(t *testing.T, cfg worker.Config) *worker.Worker {
	t.Helper()
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	cfg.Schema = s.db.Schema
	w, err := worker.New(s.db.Pool, reg, &cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return w
}

func waitJob(t *testing.T, c *queue.Client, id int64) *queue.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := c.AsyncResult(id).Wait(ctx)
	require.NoError(t, err, "job %d did not finish", id)
	return j
}

// A job enqueued by Go, claimed by pgq.claim and completed by
// pgq.complete is what Go's AsyncResult sees, woken by the completion's
// notification; pgq.result reads the same.
func TestSQLClaimAndCompleteSeenByAsyncResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	e, err := s.client.Enqueue(ctx, queue.Raw{Task: "reports.build", Args: json.RawMessage(`{"month":"2026-11"}`)}, &queue.Options{Queue: "python"})
	require.NoError(t, err)

	s.register(t, "sql-1", "python")
	require.Empty(t, s.claim(t, "sql-1", []string{"other"}, 10), "another queue's jobs are not claimed")
	got := s.claim(t, "sql-1", []string{"python"}, 10)
	require.Len(t, got, 1)
	require.Equal(t, claimedRow{ID: e.ID, Task: "reports.build", Queue: "python", Args: json.RawMessage(`{"month": "2026-11"}`), Attempt: 1}, got[0])
	j, err := s.client.Job(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, queue.StateRunning, j.State)
	require.Equal(t, "sql-1", j.WorkerID)

	type report struct {
		Rows int    `json:"rows"`
		File string `json:"file"`
	}
	waited := make(chan error, 1)
	var out report
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r := s.client.AsyncResult(e.ID)
		r.PollInterval = time.Hour // only the notification can wake it
		waited <- r.Get(wctx, &out)
	}()
	require.False(t, scalar[bool](t, s, `SELECT pgq.complete('sql-2', $1, 1, '{"rows":3}')`, e.ID), "another worker cannot complete it")
	require.False(t, scalar[bool](t, s, `SELECT pgq.complete('sql-1', $1, 2, '{"rows":3}')`, e.ID), "nor another attempt")
	require.True(t, scalar[bool](t, s, `SELECT pgq.complete('sql-1', $1, 1, '{"rows":3,"file":"r.csv"}')`, e.ID))
	require.NoError(t, <-waited)
	require.Equal(t, report{Rows: 3, File: "r.csv"}, out)
	require.True(t, scalar[bool](t, s, `SELECT pgq.complete('sql-1', $1, 1, '{"rows":99}')`, e.ID),
		"a repeated completion of the same attempt counts as written")

	var state, celery string
	var result json.RawMessage
	var lastErr *string
	require.NoError(t, s.db.Pool.QueryRow(ctx, schema.Rewrite(s.db.Schema, `SELECT state, celery_state, result, error FROM pgq.result($1)`), e.ID).
		Scan(&state, &celery, &result, &lastErr))
	require.Equal(t, queue.StateSucceeded, state)
	require.Equal(t, queue.CelerySuccess, celery)
	require.JSONEq(t, `{"rows":3,"file":"r.csv"}`, string(result), "the first write stands")
	require.Nil(t, lastErr)
	require.Zero(t, scalar[int](t, s, `SELECT count(*) FROM pgq.result(123456789)`), "an unknown id gives no row")
}

// pgq.claim takes jobs in the order Go's ClaimJobs does (priority, run_at,
// id, over several queues), skips paused queues and respects n. Both
// claim inside a transaction that is rolled back, so they see the same
// jobs.
func TestSQLClaimOrderMatchesGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	var reqs []queue.Request
	for i := range 30 {
		reqs = append(reqs, queue.Request{
			Args: queue.Raw{Task: "t.x", Args: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))},
			Options: &queue.Options{
				Queue:    []string{"a", "b", "paused"}[i%3],
				Priority: queue.Ptr(i % 4),
				ETA:      time.Now().Add(-time.Duration(i%5) * time.Minute),
			},
		})
	}
	_, err := s.client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)
	// One for later: not runnable yet.
	_, err = s.client.Enqueue(ctx, queue.Raw{Task: "t.later"}, &queue.Options{Queue: "a", Priority: queue.Ptr(9), Countdown: time.Hour})
	require.NoError(t, err)
	require.NoError(t, s.client.PauseQueue(ctx, "paused"))

	queues := []string{"a", "b", "paused"}
	for _, n := range []int{1, 7, 100} {
		var viaSQL, viaGo []int64
		require.ErrorIs(t, pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, schema.Rewrite(s.db.Schema, `SELECT id FROM pgq.claim('sql', $1, $2)`), queues, n)
			if err != nil {
				return err
			}
			viaSQL, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			return errRollback
		}), errRollback)
		require.ErrorIs(t, pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
			got, err := db.New(schema.Wrap(s.db.Schema, tx)).ClaimJobs(ctx, db.ClaimJobsParams{WorkerID: "go", Queues: queues, ExcludedTasks: []string{}, MaxJobs: int32(n)})
			if err != nil {
				return err
			}
			for _, r := range got {
				viaGo = append(viaGo, r.ID)
			}
			return errRollback
		}), errRollback)
		// ClaimJobs returns its rows in no particular order; pgq.claim in
		// claim order. Sort Go's the same way to compare the sets and
		// check pgq.claim's order against the table.
		require.Len(t, viaSQL, min(n, 20), "n=%d: the paused queue's 10 jobs and the later one are left", n)
		require.ElementsMatch(t, viaGo, viaSQL, "n=%d", n)
		var want []int64
		rows := s.q(t, `SELECT id FROM pgq.jobs WHERE id = ANY($1) ORDER BY priority DESC, run_at, id`, viaSQL)
		want, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		require.Equal(t, want, viaSQL, "n=%d: highest priority first, then oldest run_at, then id", n)
	}
}

var errRollback = errors.New("roll back")

// Jobs enqueued by pgq.enqueue_many run on a Go worker; their options
// reach the rows as pgq.enqueue would put them; bad elements are refused
// by index and nothing is written.
func TestSQLEnqueueManyRunsOnGoWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	require.NoError(t, s.client.SetQueueDefaults(ctx, "slow", queue.QueueDefaults{TimeLimit: 10 * time.Minute}))

	var ids []int64
	require.NoError(t, s.db.Pool.QueryRow(ctx, schema.Rewrite(s.db.Schema, `SELECT pgq.enqueue_many($1)`), `[
		{"task": "pgq.echo", "args": {"n": 1}},
		{"task": "pgq.echo", "args": [2, "two"], "priority": 5, "max_retries": 0, "meta": {"trace": "t"}},
		{"task": "pgq.echo", "args": null, "queue": "slow", "countdown": 3600, "retry_delay": "90 seconds", "unique_key": "k1"},
		{"task": "pgq.echo", "queue": "slow", "unique_key": "k1"},
		{"task": "pgq.noop", "ignore_result": true, "expires_at": "2999-01-01T00:00:00Z", "time_limit": 2.5}
	]`).Scan(&ids))
	require.Len(t, ids, 5)
	require.Equal(t, ids[2], ids[3], "a duplicate unique_key gives the holder's id, as pgq.enqueue does")

	j, err := s.client.Job(ctx, ids[1])
	require.NoError(t, err)
	require.Equal(t, 5, j.Priority)
	require.Equal(t, 0, j.MaxRetries)
	require.JSONEq(t, `{"trace":"t"}`, string(j.Headers))
	j, err = s.client.Job(ctx, ids[2])
	require.NoError(t, err)
	require.Equal(t, queue.StateScheduled, j.State)
	require.Equal(t, 90*time.Second, j.RetryDelay)
	require.Equal(t, 10*time.Minute, j.TimeLimit, "the queue's default, applied by pgq.enqueue")
	require.JSONEq(t, `{}`, string(j.Args))
	j, err = s.client.Job(ctx, ids[4])
	require.NoError(t, err)
	require.True(t, j.IgnoreResult)
	require.Equal(t, 2500*time.Millisecond, j.TimeLimit)
	require.NotNil(t, j.ExpiresAt)

	s.runGoWorker(t, worker.Config{Queues: []string{"default"}})
	var echoed []any
	r := s.client.AsyncResult(ids[1])
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, r.Get(wctx, &echoed))
	require.Equal(t, []any{float64(2), "two"}, echoed)
	require.Equal(t, queue.StateSucceeded, waitJob(t, s.client, ids[0]).State)
	require.Equal(t, queue.StateSucceeded, waitJob(t, s.client, ids[4]).State)

	before := scalar[int](t, s, `SELECT count(*) FROM pgq.jobs`)
	for _, c := range []struct{ in, msg string }{
		{`{"task": "a"}`, "pgq: enqueue_many takes a JSON array of job objects, not object"},
		{`[{"task": "a"}, 3]`, "pgq: jobs[1] must be a JSON object, not number"},
		{`[{"task": "a", "countdwn": 3}]`, "pgq: jobs[0] has an unknown key 'countdwn'; known keys: task, args, queue, priority, run_at, countdown, expires_at, max_retries, retry_delay, time_limit, soft_time_limit, ignore_result, unique_key, meta"},
		{`[{"task": "a"}, {"task": "a", "priority": 1.5}]`, "pgq: jobs[1].priority must be an integer, not 1.5"},
		{`[{"task": "a", "priority": "5"}]`, `pgq: jobs[0].priority must be an integer, not "5"`},
		{`[{"task": "a", "countdown": true}]`, "pgq: jobs[0].countdown must be a number of seconds or an interval string, not true"},
		{`[{"task": "a", "meta": [1]}]`, "pgq: jobs[0].meta must be a JSON object, not [1]"},
		{`[{"task": "a", "ignore_result": "yes"}]`, `pgq: jobs[0].ignore_result must be a boolean, not "yes"`},
		{`[{"task": "a"}, {"task": "send email"}]`, "pgq: invalid task name 'send email': use up to 200 letters, digits and _ . : / -, not starting with a symbol"},
		{`[{"args": {}}]`, "pgq: task name is empty"},
		{`[{"task": "a", "priority": 10}]`, "pgq: priority 10 is out of range: use 0 (lowest, the default) to 9 (highest)"},
		{`[{"task": "a", "countdown": -1}]`, "pgq: countdown cannot be negative"},
	} {
		e := s.sqlErr(t, `SELECT pgq.enqueue_many($1)`, c.in)
		require.Equal(t, "22023", e.Code, c.in)
		require.Equal(t, c.msg, e.Message, c.in)
	}
	require.Equal(t, before, scalar[int](t, s, `SELECT count(*) FROM pgq.jobs`), "a refused array writes nothing")
	require.Empty(t, scalar[[]int64](t, s, `SELECT pgq.enqueue_many('[]')`))
}

// pgq.revoke does what Client.Revoke does: a waiting job ends cancelled
// as Go's would (compared row to row); a running job on a Go worker,
// revoked with terminate, is cancelled by its worker, told by the
// notification pgq.revoke sends.
func TestSQLRevokeMatchesGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)

	byGo, err := s.client.Enqueue(ctx, queue.Raw{Task: "t.wait"}, &queue.Options{Countdown: time.Hour})
	require.NoError(t, err)
	bySQL, err := s.client.Enqueue(ctx, queue.Raw{Task: "t.wait"}, &queue.Options{Countdown: time.Hour})
	require.NoError(t, err)
	_, err = s.client.Revoke(ctx, byGo.ID, false)
	require.NoError(t, err)
	var state string
	var holder *string
	var terminating bool
	require.NoError(t, s.db.Pool.QueryRow(ctx, schema.Rewrite(s.db.Schema, `SELECT * FROM pgq.revoke($1)`), bySQL.ID).Scan(&state, &holder, &terminating))
	require.Equal(t, queue.StateCancelled, state)
	require.Nil(t, holder)
	require.False(t, terminating)
	goJob, sqlJob := waitJob(t, s.client, byGo.ID), waitJob(t, s.client, bySQL.ID)
	require.Equal(t, goJob.State, sqlJob.State)
	require.Equal(t, goJob.Attempt, sqlJob.Attempt)
	require.Len(t, sqlJob.Errors, 1)
	require.Equal(t, goJob.Errors[0].Error, sqlJob.Errors[0].Error)
	require.Equal(t, goJob.Errors[0].Attempt, sqlJob.Errors[0].Attempt)
	require.Equal(t, queue.CeleryRevoked, scalar[string](t, s, `SELECT celery_state FROM pgq.result($1)`, bySQL.ID))

	// Finished: left as it is (Go says ErrJobFinished); unknown: P0002.
	require.Equal(t, queue.StateCancelled, scalar[string](t, s, `SELECT state FROM pgq.revoke($1, true)`, bySQL.ID))
	_, err = s.client.Revoke(ctx, bySQL.ID, true)
	require.ErrorIs(t, err, queue.ErrJobFinished)
	require.Equal(t, "P0002", s.sqlErr(t, `SELECT * FROM pgq.revoke(987654321)`).Code)

	// Running on a Go worker, revoked with terminate from SQL.
	w := s.runGoWorker(t, worker.Config{Queues: []string{"default"}, Concurrency: 2})
	e, err := s.client.Enqueue(ctx, worker.SleepArgs{Seconds: 600}, &queue.Options{MaxRetries: queue.Ptr(5)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := s.client.Job(ctx, e.ID)
		return err == nil && j.State == queue.StateRunning
	}, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, s.db.Pool.QueryRow(ctx, schema.Rewrite(s.db.Schema, `SELECT * FROM pgq.revoke($1, terminate => true)`), e.ID).Scan(&state, &holder, &terminating))
	require.Equal(t, queue.StateRunning, state)
	require.NotNil(t, holder)
	require.Equal(t, w.ID(), *holder)
	require.True(t, terminating)
	j := waitJob(t, s.client, e.ID)
	require.Equal(t, queue.StateCancelled, j.State)
	require.Equal(t, 1, j.Attempt, "not retried")
	require.Contains(t, j.Errors[len(j.Errors)-1].Error, "revoked: terminated while running")
}

// pgq.retry does what Client.Retry does (compared row to row), and
// refuses what it refuses.
func TestSQLRetryMatchesGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	s.runGoWorker(t, worker.Config{Queues: []string{"default"}})
	var ids [2]int64
	for i := range ids {
		e, err := s.client.Enqueue(ctx, worker.FailArgs{Message: "boom", Permanent: true}, nil)
		require.NoError(t, err)
		ids[i] = e.ID
		require.Equal(t, queue.StateFailed, waitJob(t, s.client, e.ID).State)
	}
	// Pause the queue so that both stay available to compare.
	require.NoError(t, s.client.PauseQueue(ctx, queue.QueueDefault))
	require.NoError(t, s.client.Retry(ctx, ids[0]))
	_, err := s.db.Pool.Exec(ctx, schema.Rewrite(s.db.Schema, `SELECT pgq.retry($1)`), ids[1])
	require.NoError(t, err)
	goJob, err := s.client.Job(ctx, ids[0])
	require.NoError(t, err)
	sqlJob, err := s.client.Job(ctx, ids[1])
	require.NoError(t, err)
	for _, j := range []*queue.Job{goJob, sqlJob} {
		require.Equal(t, queue.StateAvailable, j.State)
		require.Zero(t, j.Attempt)
		require.Nil(t, j.FinishedAt)
		require.Nil(t, j.StartedAt)
		require.Empty(t, j.WorkerID)
		require.Len(t, j.Errors, 1, "the error history is kept")
		require.Equal(t, "boom", j.Errors[0].Error)
	}
	e := s.sqlErr(t, `SELECT pgq.retry($1)`, ids[1])
	require.Equal(t, "55000", e.Code)
	require.Equal(t, fmt.Sprintf("pgq: only failed or cancelled jobs can be retried; job %d is available", ids[1]), e.Message)
	require.ErrorIs(t, s.client.Retry(ctx, ids[1]), queue.ErrJobNotRetryable)
	require.Equal(t, "P0002", s.sqlErr(t, `SELECT pgq.retry(987654321)`).Code)
	require.NoError(t, s.client.ResumeQueue(ctx, queue.QueueDefault))
	require.Equal(t, queue.StateFailed, waitJob(t, s.client, ids[1]).State, "it ran again on the Go worker")
}

// pgq.fail applies Go's retry policy and records errors in the shape Go
// does; snooze and hand_back give the attempt back; a revoked job never
// goes back to a queue.
func TestSQLFailSnoozeHandBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	s.register(t, "sql-w", "sq")
	enqueue := func(opts *queue.Options) int64 {
		t.Helper()
		if opts == nil {
			opts = &queue.Options{}
		}
		opts.Queue = "sq"
		e, err := s.client.Enqueue(ctx, queue.Raw{Task: "t.fail"}, opts)
		require.NoError(t, err)
		return e.ID
	}
	claimOne := func(id int64) int32 {
		t.Helper()
		got := s.claim(t, "sql-w", []string{"sq"}, 1)
		require.Len(t, got, 1)
		require.Equal(t, id, got[0].ID)
		return got[0].Attempt
	}
	// runAt: seconds from now to the job's run_at.
	runAt := func(id int64) float64 {
		return scalar[float64](t, s, `SELECT extract(epoch FROM run_at - now())::float8 FROM pgq.jobs WHERE id = $1`, id)
	}

	// Default backoff: 1 s doubled per attempt, +-25%; then exhausted.
	id := enqueue(&queue.Options{MaxRetries: queue.Ptr(2)})
	for attempt := int32(1); attempt <= 3; attempt++ {
		_, err := s.db.Pool.Exec(ctx, schema.Rewrite(s.db.Schema, `UPDATE pgq.jobs SET run_at = now() WHERE id = $1`), id)
		require.NoError(t, err)
		require.Equal(t, attempt, claimOne(id))
		require.Nil(t, scalarPtr(t, s, `SELECT pgq.fail('other', $1, $2, 'nope')`, id, attempt), "not held by that worker")
		state := scalar[string](t, s, `SELECT pgq.fail('sql-w', $1, $2, $3, stack => 'Traceback: ...')`, id, attempt, fmt.Sprintf("ValueError: try %d", attempt))
		if attempt == 3 {
			require.Equal(t, queue.StateFailed, state)
			break
		}
		require.Equal(t, queue.StateRetrying, state)
		want := float64(int(1) << (attempt - 1))
		require.InDelta(t, want, runAt(id), want*0.25+0.05, "attempt %d", attempt)
	}
	j, err := s.client.Job(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 3, j.Attempt)
	require.NotNil(t, j.FinishedAt)
	require.Len(t, j.Errors, 3)
	for i, e := range j.Errors {
		require.Equal(t, i+1, e.Attempt)
		require.Equal(t, fmt.Sprintf("ValueError: try %d", i+1), e.Error)
		require.Equal(t, "Traceback: ...", e.Stack)
		require.WithinDuration(t, time.Now(), e.At, time.Minute)
	}
	// The entries have the keys a Go worker writes.
	goKeys := errorKeysOfGoFailure(t, s)
	sqlKeys := scalar[[]string](t, s, `SELECT array_agg(k ORDER BY k) FROM pgq.jobs, jsonb_object_keys(errors -> 0) AS k WHERE id = $1`, id)
	require.Equal(t, goKeys, sqlKeys)

	// The job's own retry delay, exactly; retry_in wins over it; max_retries overrides.
	id = enqueue(&queue.Options{RetryDelay: 40 * time.Second, MaxRetries: queue.Ptr(5)})
	require.Equal(t, queue.StateRetrying, scalar[string](t, s, `SELECT pgq.fail('sql-w', $1, $2, 'x')`, id, claimOne(id)))
	require.InDelta(t, 40, runAt(id), 0.5)
	_, err = s.db.Pool.Exec(ctx, schema.Rewrite(s.db.Schema, `UPDATE pgq.jobs SET run_at = now() WHERE id = $1`), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateRetrying, scalar[string](t, s, `SELECT pgq.fail('sql-w', $1, $2, 'x', retry_in => '7 seconds')`, id, claimOne(id)))
	require.InDelta(t, 7, runAt(id), 0.5)
	_, err = s.db.Pool.Exec(ctx, schema.Rewrite(s.db.Schema, `UPDATE pgq.jobs SET run_at = now() WHERE id = $1`), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateFailed, scalar[string](t, s, `SELECT pgq.fail('sql-w', $1, $2, 'x', max_retries => 2)`, id, claimOne(id)))

	// Permanent: failed at once.
	id = enqueue(nil)
	require.Equal(t, queue.StateFailed, scalar[string](t, s, `SELECT pgq.fail('sql-w', $1, $2, 'bad args', permanent => true)`, id, claimOne(id)))

	// Snooze: scheduled later, attempt refunded, no error.
	id = enqueue(nil)
	require.Equal(t, queue.StateScheduled, scalar[string](t, s, `SELECT pgq.snooze('sql-w', $1, $2, '30 seconds')`, id, claimOne(id)))
	j, err = s.client.Job(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 0, j.Attempt)
	require.Empty(t, j.Errors)
	require.InDelta(t, 30, runAt(id), 0.5)
	require.InDelta(t, 30, scalar[float64](t, s, `SELECT pgq.next_run_in(ARRAY['sq'])`), 0.5, "the snoozed job is the next due")
	require.Nil(t, scalar[*float64](t, s, `SELECT pgq.next_run_in(ARRAY['empty'])`), "none waits")

	// Hand back: available now, refunded, unheld.
	id = enqueue(nil)
	require.Equal(t, queue.StateAvailable, scalar[string](t, s, `SELECT pgq.hand_back('sql-w', $1, $2)`, id, claimOne(id)))
	j, err = s.client.Job(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 0, j.Attempt)
	require.Empty(t, j.WorkerID)
	require.Nil(t, j.StartedAt)

	// Revoked while running: a retry or hand-back ends it cancelled.
	require.Equal(t, int32(1), claimOne(id))
	_, err = s.client.Revoke(ctx, id, false)
	require.NoError(t, err)
	require.Equal(t, queue.StateCancelled, scalar[string](t, s, `SELECT pgq.fail('sql-w', $1, 1, 'flaky')`, id))
	j, err = s.client.Job(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "revoked: not run again (this attempt: flaky)", j.Errors[len(j.Errors)-1].Error)

	require.Equal(t, "22023", s.sqlErr(t, `SELECT pgq.finish('sql-w', 1, 1, 'succeeded')`).Code)
}

func scalarPtr(t *testing.T, s *sqlAPI, sql string, args ...any) *string {
	t.Helper()
	return scalar[*string](t, s, sql, args...)
}

// errorKeysOfGoFailure runs a failing job on a Go worker and returns the
// keys of its error entry.
func errorKeysOfGoFailure(t *testing.T, s *sqlAPI) []string {
	t.Helper()
	reg := worker.NewRegistry()
	reg.HandleFunc("t.gofail", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		panic("boom") // a panic records a stack, as a Python traceback does
	}, nil)
	w, err := worker.New(s.db.Pool, reg, &worker.Config{Schema: s.db.Schema, Queues: []string{"gofail"}, Burst: true})
	require.NoError(t, err)
	e, err := s.client.Enqueue(context.Background(), queue.Raw{Task: "t.gofail"}, &queue.Options{Queue: "gofail", MaxRetries: queue.Ptr(0)})
	require.NoError(t, err)
	require.NoError(t, w.Run(context.Background()))
	require.Equal(t, queue.StateFailed, waitJob(t, s.client, e.ID).State)
	return scalar[[]string](t, s, `SELECT array_agg(k ORDER BY k) FROM pgq.jobs, jsonb_object_keys(errors -> 0) AS k WHERE id = $1`, e.ID)
}

// A job handed back or snoozed by an SQL worker runs on a Go worker, and
// a job a Go worker handed back at shutdown is claimable by SQL.
func TestSQLAndGoWorkersShareJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	s.register(t, "sql-w", "default")
	e, err := s.client.Enqueue(ctx, queue.Raw{Task: worker.TaskEcho, Args: json.RawMessage(`{"v":1}`)}, nil)
	require.NoError(t, err)
	got := s.claim(t, "sql-w", []string{"default"}, 5)
	require.Len(t, got, 1)
	require.Equal(t, queue.StateAvailable, scalar[string](t, s, `SELECT pgq.hand_back('sql-w', $1, 1)`, e.ID))

	// A Go worker with a long job, stopped with a short shutdown timeout, hands it back.
	long, err := s.client.Enqueue(ctx, worker.SleepArgs{Seconds: 600}, &queue.Options{Queue: "long"})
	require.NoError(t, err)
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	w, err := worker.New(s.db.Pool, reg, &worker.Config{Schema: s.db.Schema, Queues: []string{"default", "long"}, ShutdownTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	j := waitJob(t, s.client, e.ID)
	require.Equal(t, queue.StateSucceeded, j.State)
	require.Equal(t, 1, j.Attempt, "the hand-back did not use up an attempt")
	require.JSONEq(t, `{"v":1}`, string(j.Result))
	require.Eventually(t, func() bool {
		j, err := s.client.Job(ctx, long.ID)
		return err == nil && j.State == queue.StateRunning
	}, 30*time.Second, 5*time.Millisecond)
	stop()
	require.NoError(t, <-done)
	got = s.claim(t, "sql-w", []string{"long"}, 5)
	require.Len(t, got, 1, "the Go worker's handed-back job is claimable by SQL")
	require.Equal(t, long.ID, got[0].ID)
	require.Equal(t, int32(1), got[0].Attempt)
	require.True(t, scalar[bool](t, s, `SELECT pgq.complete('sql-w', $1, 1, '"done"')`, long.ID))

	// Snoozed by SQL, then run by Go once due.
	e, err = s.client.Enqueue(ctx, queue.Raw{Task: worker.TaskNoop}, &queue.Options{Queue: "snz"})
	require.NoError(t, err)
	require.Len(t, s.claim(t, "sql-w", []string{"snz"}, 1), 1)
	require.Equal(t, queue.StateScheduled, scalar[string](t, s, `SELECT pgq.snooze('sql-w', $1, 1, '100 milliseconds')`, e.ID))
	s.runGoWorker(t, worker.Config{Queues: []string{"snz"}, PollInterval: 50 * time.Millisecond})
	j = waitJob(t, s.client, e.ID)
	require.Equal(t, queue.StateSucceeded, j.State)
	require.Equal(t, 1, j.Attempt)

	// Expired before the claim: ended as a Go worker ends it.
	e, err = s.client.Enqueue(ctx, queue.Raw{Task: worker.TaskNoop}, &queue.Options{Queue: "exp", ExpiresAt: time.Now().Add(-time.Second)})
	require.NoError(t, err)
	require.Empty(t, s.claim(t, "sql-w", []string{"exp"}, 5), "an expired job is not handed out")
	j = waitJob(t, s.client, e.ID)
	require.Equal(t, queue.StateCancelled, j.State)
	require.Zero(t, j.Attempt, "the attempt is not counted")
	require.Regexp(t, `^expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z before a worker could start it$`, j.Errors[0].Error)
	require.Equal(t, 1, j.Errors[0].Attempt)
}

// A worker registered by SQL that stops sending heartbeats has its jobs
// rescued by the Go maintenance leader, which then runs them; a live one
// that keeps beating keeps its job. pgq.heartbeat then reports the dead
// worker's row gone, pgq.revoked_jobs lists terminate-revoked jobs and
// pgq.unregister_worker hands back what is held.
func TestSQLWorkerRescuedByGoLeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	dead, err := s.client.Enqueue(ctx, queue.Raw{Task: worker.TaskEcho, Args: json.RawMessage(`{"rescued":true}`)}, &queue.Options{Queue: "rq"})
	require.NoError(t, err)
	alive, err := s.client.Enqueue(ctx, queue.Raw{Task: worker.TaskEcho}, &queue.Options{Queue: "rq2"})
	require.NoError(t, err)
	s.register(t, "sql-dead", "rq")
	s.register(t, "sql-alive", "rq2")
	require.Len(t, s.claim(t, "sql-dead", []string{"rq"}, 1), 1)
	require.Len(t, s.claim(t, "sql-alive", []string{"rq2"}, 1), 1)
	require.Equal(t, 2, scalar[int](t, s, `SELECT count(*) FROM pgq.worker_overview WHERE id LIKE 'sql-%' AND running = 1`))

	// The live one beats every 100 ms until the test ends.
	beatCtx, stopBeat := context.WithCancel(ctx)
	beats := make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-beatCtx.Done():
				beats <- nil
				return
			case <-tick.C:
				var ok bool
				if err := s.db.Pool.QueryRow(beatCtx, schema.Rewrite(s.db.Schema, `SELECT pgq.heartbeat('sql-alive')`)).Scan(&ok); err != nil || !ok {
					if beatCtx.Err() != nil {
						beats <- nil
					} else {
						beats <- fmt.Errorf("heartbeat: ok=%v err=%v", ok, err)
					}
					return
				}
			}
		}
	}()

	s.runGoWorker(t, worker.Config{Queues: []string{"rq"}, RescueAfter: time.Second, HeartbeatInterval: 200 * time.Millisecond, MaintenanceInterval: 100 * time.Millisecond})
	j := waitJob(t, s.client, dead.ID)
	require.Equal(t, queue.StateSucceeded, j.State, "rescued and run by the Go worker")
	require.Equal(t, 2, j.Attempt)
	require.JSONEq(t, `{"rescued":true}`, string(j.Result))
	require.Contains(t, j.Errors[0].Error, "worker sql-dead stopped sending heartbeats while running this job (attempt 1)")
	require.Eventually(t, func() bool {
		return scalar[int](t, s, `SELECT count(*) FROM pgq.workers WHERE id = 'sql-dead'`) == 0
	}, 10*time.Second, 20*time.Millisecond, "the dead worker's row is removed")
	require.False(t, scalar[bool](t, s, `SELECT pgq.heartbeat('sql-dead')`), "a heartbeat tells the dead worker to register again")

	stopBeat()
	require.NoError(t, <-beats)
	j, err = s.client.Job(ctx, alive.ID)
	require.NoError(t, err)
	require.Equal(t, queue.StateRunning, j.State, "the live SQL worker keeps its job")
	require.Equal(t, "sql-alive", j.WorkerID)

	_, err = s.client.Revoke(ctx, alive.ID, true)
	require.NoError(t, err)
	require.Equal(t, []int64{alive.ID}, scalar[[]int64](t, s, `SELECT coalesce(array_agg(id), '{}') FROM pgq.revoked_jobs('sql-alive') AS id`))
	require.Equal(t, int64(1), scalar[int64](t, s, `SELECT pgq.unregister_worker('sql-alive')`))
	j, err = s.client.Job(ctx, alive.ID)
	require.NoError(t, err)
	require.Equal(t, queue.StateCancelled, j.State, "a revoked job handed back ends cancelled")
	require.Zero(t, scalar[int](t, s, `SELECT count(*) FROM pgq.workers WHERE id LIKE 'sql-%'`))

	// A process restarting under the same id rescues what its dead
	// predecessor left running, as a Go worker does at start.
	again, err := s.client.Enqueue(ctx, queue.Raw{Task: worker.TaskEcho}, &queue.Options{Queue: "rq3"})
	require.NoError(t, err)
	s.register(t, "sql-same", "rq3")
	require.Len(t, s.claim(t, "sql-same", []string{"rq3"}, 1), 1)
	s.register(t, "sql-same", "rq3") // the new process
	require.Equal(t, int64(1), scalar[int64](t, s, `SELECT pgq.rescue_previous_jobs('sql-same')`))
	j, err = s.client.Job(ctx, again.ID)
	require.NoError(t, err)
	require.Equal(t, queue.StateAvailable, j.State)
	require.Equal(t, 1, j.Attempt, "the attempt counts, as in a rescue")
	require.Equal(t, "worker sql-same stopped sending heartbeats while running this job (attempt 1); rescued when a new process started with its id", j.Errors[0].Error)
	require.Zero(t, scalar[int64](t, s, `SELECT pgq.unregister_worker('sql-same')`))

	e := s.sqlErr(t, `SELECT pgq.register_worker('w', ARRAY['bad queue'], 1, 'h', 1)`)
	require.Equal(t, "22023", e.Code)
	require.Contains(t, e.Message, "invalid queue name 'bad queue'")
	require.Equal(t, "22023", s.sqlErr(t, `SELECT pgq.register_worker('w', '{}', 1, 'h', 1)`).Code)
	require.Equal(t, "22023", s.sqlErr(t, `SELECT pgq.register_worker('w', ARRAY['q'], 0, 'h', 1)`).Code)
	require.Equal(t, "22023", s.sqlErr(t, `SELECT * FROM pgq.claim('', ARRAY['q'], 1)`).Code)
}

// pgq.claim honours what a Go worker's claim honours after migration
// 0010: a task's concurrency limit, a queue's rate limit and task mutexes
// hold across SQL and Go workers, and pgq.next_run_in counts the limited
// jobs as the Go fetcher does.
func TestSQLClaimHonoursLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	require.NoError(t, s.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: "t.limited", Concurrency: 2}))
	require.NoError(t, s.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitQueue, Name: "slowq", Rate: "1/h", Burst: 1}))
	for range 5 {
		_, err := s.client.Enqueue(ctx, queue.Raw{Task: "t.limited"}, nil)
		require.NoError(t, err)
		_, err = s.client.Enqueue(ctx, queue.Raw{Task: "t.free"}, &queue.Options{Queue: "slowq"})
		require.NoError(t, err)
		_, err = s.client.Enqueue(ctx, queue.Raw{Task: "t.mutex"}, &queue.Options{MutexKey: "account-7"})
		require.NoError(t, err)
		_, err = s.client.Enqueue(ctx, queue.Raw{Task: "t.plain"}, nil)
		require.NoError(t, err)
	}
	got := s.claim(t, "sql-a", []string{"default", "slowq"}, 100)
	byTask := map[string]int{}
	for _, r := range got {
		byTask[r.Task]++
	}
	require.Equal(t, map[string]int{"t.plain": 5, "t.limited": 2, "t.free": 1, "t.mutex": 1}, byTask,
		"concurrency 2, one token in the bucket, one holder of the mutex, the rest free")
	require.Empty(t, s.claim(t, "sql-b", []string{"default", "slowq"}, 100), "another worker gets nothing more")

	// A limited job ended by SQL frees its place for the next claim, by
	// SQL or by Go.
	for _, r := range got {
		if r.Task == "t.limited" || r.Task == "t.mutex" {
			require.True(t, scalar[bool](t, s, `SELECT pgq.complete('sql-a', $1, $2)`, r.ID, r.Attempt))
		}
	}
	byTask = map[string]int{}
	for _, r := range s.claim(t, "sql-b", []string{"default", "slowq"}, 100) {
		byTask[r.Task]++
	}
	require.Equal(t, map[string]int{"t.limited": 2, "t.mutex": 1}, byTask)
	// Nothing runnable is left for an unlimited look, but limited jobs
	// wait on running ones: next_run_in says to look again soon.
	due := scalar[*float64](t, s, `SELECT pgq.next_run_in(ARRAY['default'])`)
	require.NotNil(t, due)
	require.LessOrEqual(t, *due, 0.1)
}

// A workflow whose steps are run by an SQL worker advances as if Go ran
// them: pgq.complete fires the same continuation (migration 0008's
// trigger), the next step becomes claimable with the previous result as
// its input (pgq.workflow_input), and the workflow's result is the last
// step's; a step failed for good by pgq.fail fails the workflow.
func TestSQLWorkerRunsWorkflowSteps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	s.register(t, "sql-wf", "wf")
	opts := &queue.Options{Queue: "wf"}
	res, err := workflow.Apply(ctx, s.client, workflow.Chain(
		workflow.Task(queue.Raw{Task: "py.first", Args: json.RawMessage(`{"n": 1}`)}, opts),
		workflow.Task(queue.Raw{Task: "py.second"}, opts),
	))
	require.NoError(t, err)

	got := s.claim(t, "sql-wf", []string{"wf"}, 10)
	require.Len(t, got, 1, "only the first step is runnable")
	require.Equal(t, "py.first", got[0].Task)
	require.True(t, scalar[bool](t, s, `SELECT pgq.complete('sql-wf', $1, $2, '{"n": 2}')`, got[0].ID, got[0].Attempt))

	got = s.claim(t, "sql-wf", []string{"wf"}, 10)
	require.Len(t, got, 1, "the completion started the next step")
	require.Equal(t, "py.second", got[0].Task)
	require.JSONEq(t, `{"n": 2}`, scalar[string](t, s, `SELECT pgq.workflow_input($1)::text`, got[0].ID))
	require.True(t, scalar[bool](t, s, `SELECT pgq.complete('sql-wf', $1, $2, '{"n": 3}')`, got[0].ID, got[0].Attempt))
	var out map[string]int
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, res.Get(wctx, &out))
	require.Equal(t, map[string]int{"n": 3}, out)

	failing, err := workflow.Apply(ctx, s.client, workflow.Chain(
		workflow.Task(queue.Raw{Task: "py.first"}, opts),
		workflow.Task(queue.Raw{Task: "py.second"}, opts),
	))
	require.NoError(t, err)
	got = s.claim(t, "sql-wf", []string{"wf"}, 10)
	require.Len(t, got, 1)
	require.Equal(t, queue.StateFailed, scalar[string](t, s, `SELECT pgq.fail('sql-wf', $1, $2, 'ValueError: bad', permanent => true)`, got[0].ID, got[0].Attempt))
	err = failing.Get(wctx, nil)
	var wfErr *workflow.Error
	require.ErrorAs(t, err, &wfErr)
	require.Contains(t, wfErr.Error(), "ValueError: bad")
	require.Empty(t, s.claim(t, "sql-wf", []string{"wf"}, 10), "the second step was cancelled, not started")
}

// Several SQL claimers and Go's ClaimJobs, side by side on the same
// queues, never claim a job twice and leave none behind (FOR UPDATE SKIP
// LOCKED in both).
func TestSQLClaimConcurrentWithGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSQLAPI(t)
	const total = 300
	reqs := make([]queue.Request, total)
	for i := range reqs {
		reqs[i] = queue.Request{Args: queue.Raw{Task: "t.x"}, Options: &queue.Options{Queue: []string{"c1", "c2"}[i%2], Priority: queue.Ptr(i % 3)}}
	}
	_, err := s.client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)

	queues := []string{"c1", "c2"}
	type claimed struct {
		by  string
		ids []int64
		err error
	}
	results := make(chan claimed)
	claimer := func(name string, goPath bool) {
		var mine []int64
		for {
			var got []int64
			var err error
			if goPath {
				var rows []*db.ClaimJobsRow
				rows, err = db.New(schema.Wrap(s.db.Schema, s.db.Pool)).ClaimJobs(ctx, db.ClaimJobsParams{WorkerID: name, Queues: queues, ExcludedTasks: []string{}, MaxJobs: 7})
				for _, r := range rows {
					got = append(got, r.ID)
				}
			} else {
				var rows pgx.Rows
				rows, err = s.db.Pool.Query(ctx, schema.Rewrite(s.db.Schema, `SELECT id FROM pgq.claim($1, $2, 7)`), name, queues)
				if err == nil {
					got, err = pgx.CollectRows(rows, pgx.RowTo[int64])
				}
			}
			if err != nil || len(got) == 0 {
				results <- claimed{by: name, ids: mine, err: err}
				return
			}
			mine = append(mine, got...)
		}
	}
	names := []string{"sql-1", "sql-2", "sql-3", "go-1", "go-2"}
	for _, n := range names {
		go claimer(n, strings.HasPrefix(n, "go-"))
	}
	seen := map[int64]string{}
	for range names {
		r := <-results
		require.NoError(t, r.err, r.by)
		for _, id := range r.ids {
			prev, dup := seen[id]
			require.False(t, dup, "job %d claimed by %s and %s", id, prev, r.by)
			seen[id] = r.by
		}
	}
	require.Len(t, seen, total, "every job claimed once")
	require.Equal(t, total, scalar[int](t, s, `SELECT count(*) FROM pgq.jobs WHERE state = 'running' AND attempt = 1`))
}
