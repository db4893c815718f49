package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestLoopsStartStop checks the Start/Stop contract of every loop: stop
// before start, start then stop, double stop, start after stop; and that
// none leaves a goroutine behind. Not parallel: goleak sees every
// goroutine of the process.
func TestLoopsStartStop(t *testing.T) {
	d := pgtest.New(t)
	require.NoError(t, d.Pool.Ping(context.Background()))
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	type loop struct {
		start func(context.Context)
		stop  func()
	}
	loops := map[string]func(w *Worker) loop{
		"notifier":   func(w *Worker) loop { return loop{w.notifier.Start, w.notifier.Stop} },
		"fetcher":    func(w *Worker) loop { return loop{w.fetcher.Start, w.fetcher.Stop} },
		"completer":  func(w *Worker) loop { return loop{w.completer.Start, w.completer.Stop} },
		"heartbeat":  func(w *Worker) loop { return loop{w.heartbeat.Start, w.heartbeat.Stop} },
		"maintainer": func(w *Worker) loop { return loop{w.maintainer.Start, w.maintainer.Stop} },
	}
	for name, get := range loops {
		t.Run(name, func(t *testing.T) {
			newLoop := func() loop {
				w, err := New(d.Pool, NewRegistry(), &Config{Schema: d.Schema, Logger: discardLogger()})
				require.NoError(t, err)
				return get(w)
			}
			ctx := context.Background()

			l := newLoop() // stop before start: start is then a no-op
			l.stop()
			l.start(ctx)
			l.stop()

			l = newLoop() // start, stop, stop again, start again
			l.start(ctx)
			l.stop()
			l.stop()
			l.start(ctx)
			l.stop()

			l = newLoop() // the loop ignores the parent context; only Stop ends it
			cctx, cancel := context.WithCancel(ctx)
			l.start(cctx)
			cancel()
			l.stop()
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	o, err := (&TaskOptions{RetryDelay: time.Second, MaxRetryDelay: 10 * time.Second, RetryJitter: 0.5}).normalize()
	require.NoError(t, err)
	for _, tc := range []struct {
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{1, 0.5, time.Second}, // no jitter at the midpoint
		{2, 0.5, 2 * time.Second},
		{3, 0.5, 4 * time.Second},
		{3, 0, 2 * time.Second}, // -50%
		{3, 1, 6 * time.Second}, // +50%
		{10, 0.5, 10 * time.Second},
		{100, 1, 10 * time.Second}, // capped, even with jitter
	} {
		require.Equal(t, tc.want, o.backoff(tc.attempt, func() float64 { return tc.rnd }), "attempt %d rnd %v", tc.attempt, tc.rnd)
	}
	custom := TaskOptions{Backoff: func(a int) time.Duration { return time.Duration(a) * time.Minute }}
	require.Equal(t, 3*time.Minute, custom.backoff(3, nil))

	_, err = (&TaskOptions{RetryJitter: 2}).normalize()
	require.ErrorContains(t, err, "RetryJitter")
	_, err = (&TaskOptions{MaxRetries: queue.Ptr(-1)}).normalize()
	require.ErrorContains(t, err, "MaxRetries cannot be negative")
}

// recorder captures the statement a db.Queries method sends.
type recorder struct {
	schema.DBTX
	sql  string
	args []any
}

var errRecorded = errors.New("recorded")

func (r *recorder) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	r.sql, r.args = sql, args
	return nil, errRecorded
}

func (r *recorder) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	r.sql, r.args = sql, args
	return pgconn.CommandTag{}, errRecorded
}

// TestClaimUsesFetchIndex checks the claim's plan on a backlog: an
// ordered walk of jobs_fetch_idx per queue, rows updated by primary key,
// no sort of the backlog and no sequential scan.
func TestClaimUsesFetchIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := pgtest.New(t)
	client, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(t, err)
	reqs := make([]queue.Request, 5000)
	for i := range reqs {
		reqs[i] = queue.Request{Args: queue.Raw{Task: "t"}, Options: &queue.Options{Queue: []string{"a", "b", "c"}[i%3]}}
	}
	_, err = client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)
	_, err = d.Pool.Exec(ctx, "ANALYZE "+d.Schema+".jobs")
	require.NoError(t, err)

	for _, queues := range [][]string{{"a"}, {"a", "b"}} {
		rec := &recorder{}
		_, err := db.New(schema.Wrap(d.Schema, rec)).ClaimJobs(ctx, db.ClaimJobsParams{WorkerID: "w", Queues: queues, MaxJobs: 100})
		require.ErrorIs(t, err, errRecorded)
		rows, err := d.Pool.Query(ctx, "EXPLAIN "+rec.sql, rec.args...)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		plan := strings.Join(lines, "\n")
		require.Contains(t, plan, "Index Scan using jobs_fetch_idx", plan)
		require.Contains(t, plan, "jobs_pkey", plan)
		require.NotContains(t, plan, "Seq Scan", plan)
	}
}

// TestReconcileReleasesUnheldJobs: a job the database shows running under
// this worker but that the worker does not hold (a claim whose answer
// was lost) goes back to its queue, attempt refunded; a held job stays.
func TestReconcileReleasesUnheldJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := pgtest.New(t)
	client, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(t, err)
	w, err := New(d.Pool, NewRegistry(), &Config{Schema: d.Schema, Logger: discardLogger()})
	require.NoError(t, err)
	for range 3 {
		_, err := client.Enqueue(ctx, queue.Raw{Task: "t"}, nil)
		require.NoError(t, err)
	}
	rows, err := w.q.ClaimJobs(ctx, db.ClaimJobsParams{WorkerID: w.ID(), Queues: []string{"default"}, MaxJobs: 3})
	require.NoError(t, err)
	require.Len(t, rows, 3)
	w.hold([]*execution{w.newExecution(rows[0])}) // the answer for the other two was "lost"

	require.NoError(t, w.reconcile(ctx))
	for i, r := range rows {
		j, err := client.Job(ctx, r.ID)
		require.NoError(t, err)
		if i == 0 {
			require.Equal(t, queue.StateRunning, j.State, "a held job is left alone")
			continue
		}
		require.Equal(t, queue.StateAvailable, j.State, "an unheld job is handed back")
		require.Equal(t, 0, j.Attempt, "without using up an attempt")
	}
}

func TestIsOutage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{io.ErrUnexpectedEOF, true},
		{&pgconn.PgError{Code: "57P01"}, true}, // admin_shutdown
		{&pgconn.PgError{Code: "08006"}, true}, // connection_failure
		{&pgconn.PgError{Code: "57P03"}, true}, // cannot_connect_now (starting up)
		{&pgconn.PgError{Code: "42P01"}, false},
		{&pgconn.PgError{Code: "23505"}, false},
	} {
		require.Equal(t, tc.want, isOutage(tc.err), "%v", tc.err)
	}
}

func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	prevMax := time.Duration(0)
	for n := 1; n <= 20; n++ {
		d := retryBackoff(n)
		nominal := min(retryBackoffMin<<min(n-1, 10), retryBackoffMax)
		require.GreaterOrEqual(t, d, nominal*8/10, "try %d", n)
		require.LessOrEqual(t, d, nominal*12/10, "try %d", n)
		require.GreaterOrEqual(t, nominal, prevMax, "never shrinks")
		prevMax = nominal
	}
}
