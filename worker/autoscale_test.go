package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// TestAutoscaleGrowsUnderBacklogAndShrinksWhenIdle: a worker with
// Autoscale{Min: 2, Max: 8} and a backlog of blocked jobs grows to 8
// slots and runs exactly 8 jobs at once; once the backlog is done and the
// worker idles, it goes back to 2.
func TestAutoscaleGrowsUnderBacklogAndShrinksWhenIdle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan int64, 100)
	release := make(chan struct{})
	b.reg.HandleFunc("test.block", func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		started <- job.ID
		select {
		case <-release:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil)
	const total = 20
	for range total {
		b.enqueue(t, queue.Raw{Task: "test.block"}, nil)
	}
	r := b.start(t, b.config(func(c *worker.Config) {
		c.Autoscale = &worker.Autoscale{Min: 2, Max: 8, IdleAfter: 100 * time.Millisecond}
		c.PollInterval = 20 * time.Millisecond
	}))

	// Every slot busy with jobs waiting: it grows to Max and no further.
	for range 8 {
		select {
		case <-started:
		case <-time.After(waitTimeout):
			t.Fatalf("only some jobs started; concurrency %d", r.w.Concurrency())
		}
	}
	require.Equal(t, 8, r.w.Concurrency())
	var running int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM "+b.db.Schema+".jobs WHERE state = 'running'").Scan(&running))
	require.Equal(t, 8, running, "exactly Max jobs are claimed while all are blocked")

	// Let the backlog finish; idle, it goes back to Min.
	close(release)
	succeeded := 0
	b.events.wait(t, func(e worker.Event) bool {
		if e.State == queue.StateSucceeded {
			succeeded++
		}
		return succeeded == total
	})
	require.Eventually(t, func() bool { return r.w.Concurrency() == 2 }, waitTimeout, 5*time.Millisecond,
		"an idle worker shrinks to Min")
	require.Len(t, b.events.all(), total, "every job ran once")
}
