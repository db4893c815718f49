package worker_test

import (
	"context"
	"flag"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

var pruneRows = flag.Int("prune-rows", 200000, "finished rows TestRetentionClaimLatency prunes (try 1000000)")

// seedFinished inserts n jobs in state, finished age ago, with one
// statement.
func (b *bundle) seedFinished(t *testing.T, n int, state string, age time.Duration) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), schema.Rewrite(b.db.Schema, `
		INSERT INTO pgq.jobs (task, queue, state, attempt, created_at, run_at, started_at, finished_at, result)
		SELECT 'old.task', 'default', $2, 1, now() - $3::interval, now() - $3::interval, now() - $3::interval, now() - $3::interval, '{"ok": true}'
		  FROM generate_series(1, $1::integer)`), n, state, age.String())
	require.NoError(t, err)
}

func (b *bundle) countWhere(t *testing.T, where string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		schema.Rewrite(b.db.Schema, "SELECT count(*) FROM pgq.jobs WHERE "+where), args...).Scan(&n))
	return n
}

// TestRetention: finished jobs older than their state's retention are
// deleted, recent ones and those of a state kept for ever stay, and
// waiting or running jobs are never touched, however old.
func TestRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.seedFinished(t, 2500, queue.StateSucceeded, 2*time.Hour)
	b.seedFinished(t, 10, queue.StateSucceeded, 30*time.Minute)
	b.seedFinished(t, 1200, queue.StateFailed, 3*time.Hour)
	b.seedFinished(t, 10, queue.StateFailed, 90*time.Minute)
	b.seedFinished(t, 10, queue.StateCancelled, 1000*time.Hour)
	// Old jobs that have not finished: a waiting one and one running under
	// a live worker (started long ago).
	_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, `
		INSERT INTO pgq.jobs (task, queue, state, created_at, run_at, started_at, finished_at, worker_id)
		VALUES ('old.task', 'elsewhere', 'available', now() - interval '30 days', now() + interval '1 day', NULL, now() - interval '30 days', NULL),
		       ('old.task', 'elsewhere', 'running', now() - interval '30 days', now() - interval '30 days', now() - interval '30 days', now() - interval '30 days', 'someone')`))
	require.NoError(t, err)

	b.start(t, b.config(func(c *worker.Config) {
		c.MaintenanceInterval = 20 * time.Millisecond
		c.RetentionSucceeded = time.Hour
		c.RetentionFailed = 2 * time.Hour
		c.RetentionCancelled = -1 // for ever
		c.RescueAfter = time.Hour // keep the fake running job where it is
	}))
	require.Eventually(t, func() bool {
		return b.countWhere(t, "finished_at < now() - interval '1 hour' AND state IN ('succeeded', 'failed')") == 10
	}, waitTimeout, 10*time.Millisecond, "old succeeded and failed jobs are deleted (the 90-minute-old failed ones stay)")
	require.Equal(t, 10, b.countWhere(t, "state = 'succeeded'"))
	require.Equal(t, 10, b.countWhere(t, "state = 'failed'"))
	require.Equal(t, 10, b.countWhere(t, "state = 'cancelled'"), "kept for ever")
	require.Equal(t, 2, b.countWhere(t, "queue = 'elsewhere'"), "waiting and running jobs are never pruned")
}

// TestRetentionClaimLatency prunes -prune-rows (200,000 by default) old
// finished jobs while jobs are enqueued one by one every 2ms, and
// reports the worst and 99th-percentile pickup latency (enqueue to
// claim, database clock) during the pruning, and how long pruning took.
// Every job enqueued during the pruning must succeed: retention never
// touches an active job.
func TestRetentionClaimLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds and prunes a large table")
	}
	b := setup(t)
	ctx := context.Background()
	seedStart := time.Now()
	b.seedFinished(t, *pruneRows, queue.StateSucceeded, 48*time.Hour)
	_, err := b.db.Pool.Exec(ctx, "ANALYZE "+b.db.Schema+".jobs")
	require.NoError(t, err)
	t.Logf("seeded %d finished jobs in %s", *pruneRows, time.Since(seedStart))

	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) { return nil, nil }, nil)
	var (
		mu  sync.Mutex
		ids []int64
	)
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			e, err := b.client.Enqueue(ctx, addArgs{}, nil)
			if err != nil {
				t.Errorf("enqueue: %v", err)
				return
			}
			mu.Lock()
			ids = append(ids, e.ID)
			mu.Unlock()
		}
	}()
	pruneStart := time.Now()
	b.start(t, b.config(func(c *worker.Config) { c.MaintenanceInterval = 100 * time.Millisecond }))
	require.Eventually(t, func() bool { return b.countWhere(t, "task = 'old.task'") == 0 }, 5*time.Minute, 20*time.Millisecond)
	took := time.Since(pruneStart)
	close(stop)
	<-produced
	mu.Lock()
	all := append([]int64(nil), ids...)
	mu.Unlock()
	for _, id := range all {
		b.waitState(t, id, queue.StateSucceeded)
	}
	var worst, p99, p50 float64
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, `
		SELECT max(ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)
		  FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM pgq.jobs WHERE id = ANY($1)) AS l`), all).
		Scan(&worst, &p99, &p50))
	t.Logf("pruned %d finished jobs in %s (%.0f rows/s) while %d jobs were enqueued one by one; pickup latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		*pruneRows, took.Round(time.Millisecond), float64(*pruneRows)/took.Seconds(), len(all), p50, p99, worst)
	require.Equal(t, len(all), b.countWhere(t, "task = 'test.add' AND state = 'succeeded'"), "no active job lost")
	require.Less(t, worst, 2000.0, "claims are not held up by pruning")
}
