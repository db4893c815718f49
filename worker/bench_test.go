package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// BenchmarkDrain measures how fast one worker drains a backlog of b.N noop
// jobs (bulk-enqueued with COPY before the timer starts), from Run to the
// last outcome stored. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench Drain -benchtime 100000x ./worker/
func BenchmarkDrain(b *testing.B) {
	for _, conc := range []int{100, 1000} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			benchDrain(b, conc)
		})
	}
}

func benchDrain(b *testing.B, concurrency int) {
	bu := setupB(b)
	ctx := context.Background()
	reqs := make([]queue.Request, 0, 10000)
	for left := b.N; left > 0; {
		n := min(left, cap(reqs))
		reqs = reqs[:0]
		for range n {
			reqs = append(reqs, queue.Request{Args: queue.Raw{Task: worker.TaskNoop}})
		}
		_, err := bu.client.EnqueueMany(ctx, reqs)
		require.NoError(b, err)
		left -= n
	}
	_, err := bu.db.Pool.Exec(ctx, "ANALYZE "+bu.db.Schema+".jobs")
	require.NoError(b, err)

	w, err := worker.New(bu.db.Pool, bu.reg, &worker.Config{
		Schema: bu.db.Schema, Logger: testLogger(), Burst: true, Concurrency: concurrency, PollInterval: time.Minute,
	})
	require.NoError(b, err)
	b.ResetTimer()
	start := time.Now()
	require.NoError(b, w.Run(ctx))
	elapsed := time.Since(start)
	b.StopTimer()

	var left int
	require.NoError(b, bu.db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+bu.db.Schema+".jobs WHERE state <> 'succeeded'").Scan(&left))
	require.Zero(b, left)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}

func setupB(b *testing.B) *bundle {
	// pgtest.New takes a testing.TB; the bundle is the same as a test's.
	d := newDB(b)
	c, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(b, err)
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	return &bundle{db: d, client: c, reg: reg, events: newEventLog()}
}
