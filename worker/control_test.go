package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// TestPauseResumeQueue: jobs that arrive while their queue is paused are
// not claimed (a job of another queue, enqueued after them, runs: the
// worker did claim meanwhile); a job running when the pause came
// finishes; after resume every paused job runs.
func TestPauseResumeQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	bl := b.registerBlocker(false)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) { return job.Args.A, nil }, nil)
	b.start(t, b.config(func(c *worker.Config) { c.Queues = []string{"q", "other"}; c.PollInterval = 50 * time.Millisecond }))

	running := b.enqueue(t, blockArgs{}, &queue.Options{Queue: "q"})
	bl.waitStart(t)
	require.NoError(t, b.client.PauseQueue(ctx, "q"))
	var paused []int64
	for i := range 5 {
		paused = append(paused, b.enqueue(t, addArgs{A: i}, &queue.Options{Queue: "q"}))
	}
	// Several claims happen while paused: a job of the other queue, and
	// polls every 50ms.
	for range 3 {
		marker := b.enqueue(t, addArgs{}, &queue.Options{Queue: "other"})
		b.waitState(t, marker, queue.StateSucceeded)
	}
	bl.release <- nil
	b.waitState(t, running, queue.StateSucceeded)
	for _, id := range paused {
		require.Equal(t, queue.StateAvailable, b.job(t, id).State, "not claimed while paused")
	}

	require.NoError(t, b.client.ResumeQueue(ctx, "q"))
	for _, id := range paused {
		b.waitState(t, id, queue.StateSucceeded)
	}
}

// TestRemoteControl: ping, pool-size, add-queue and drop-queue reach the
// worker and are answered; a malformed message is ignored; a worker that
// is not there is reported as missing.
func TestRemoteControl(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) { return nil, nil }, nil)
	r := b.start(t, b.config(func(c *worker.Config) { c.WorkerID = "w-ctl"; c.Concurrency = 4 }))
	opts := &queue.ControlOptions{Timeout: waitTimeout}
	waitListening(t, b)

	// Garbage on the control channel is logged and ignored.
	_, err := b.db.Pool.Exec(ctx, "SELECT pg_notify($1, 'not json'), pg_notify($1, '{\"command\":\"nope\"}')", schema.Channel(b.db.Schema, "control"))
	require.NoError(t, err)

	res, err := b.client.Ping(ctx, opts)
	require.NoError(t, err)
	require.Empty(t, res.Missing)
	require.Len(t, res.Replies, 1)
	p := pingData(t, res.Replies[0])
	require.Equal(t, "w-ctl", p.WorkerID)
	require.Equal(t, 4, p.Concurrency)
	require.Equal(t, []string{"default"}, p.Queues)

	res, err = b.client.Control(ctx, queue.ControlPoolSize, queue.PoolSizeArgs{Concurrency: 9}, opts)
	require.NoError(t, err)
	require.True(t, res.Replies[0].OK, res.Replies[0].Error)
	require.Equal(t, 9, r.w.Concurrency())
	res, err = b.client.Control(ctx, queue.ControlPoolSize, queue.PoolSizeArgs{Min: 2, Max: 6}, opts)
	require.NoError(t, err)
	p = pingData(t, res.Replies[0])
	require.Equal(t, 6, p.Concurrency)
	require.Equal(t, 2, p.AutoscaleMin)
	res, err = b.client.Control(ctx, queue.ControlPoolSize, queue.PoolSizeArgs{Concurrency: -1}, opts)
	require.NoError(t, err)
	require.False(t, res.Replies[0].OK)
	require.Contains(t, res.Replies[0].Error, "concurrency must be between")

	res, err = b.client.Control(ctx, queue.ControlAddQueue, queue.QueueArgs{Queue: "extra"}, opts)
	require.NoError(t, err)
	require.True(t, res.Replies[0].OK)
	require.Equal(t, []string{"default", "extra"}, r.w.Queues())
	ws, err := b.client.Workers(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"default", "extra"}, ws[0].Queues, "the workers row follows")
	require.Equal(t, 6, ws[0].Concurrency)
	id := b.enqueue(t, addArgs{}, &queue.Options{Queue: "extra"})
	b.waitState(t, id, queue.StateSucceeded)

	res, err = b.client.Control(ctx, queue.ControlDropQueue, queue.QueueArgs{Queue: "default"}, opts)
	require.NoError(t, err)
	require.True(t, res.Replies[0].OK)
	require.Equal(t, []string{"extra"}, r.w.Queues())
	res, err = b.client.Control(ctx, queue.ControlDropQueue, queue.QueueArgs{Queue: "extra"}, opts)
	require.NoError(t, err)
	require.False(t, res.Replies[0].OK, "the last queue stays")

	res, err = b.client.Ping(ctx, &queue.ControlOptions{Workers: []string{"ghost"}, Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Empty(t, res.Replies, "a message for another worker is not answered")
	require.Equal(t, []string{"ghost"}, res.Missing)

	res, err = b.client.Control(ctx, queue.ControlShutdown, nil, opts)
	require.NoError(t, err)
	require.True(t, res.Replies[0].OK)
	select {
	case err := <-r.done:
		require.NoError(t, err)
		r.done <- err
	case <-time.After(waitTimeout):
		t.Fatal("the worker did not shut down")
	}
}

func pingData(t *testing.T, r queue.ControlReply) queue.PingReply {
	t.Helper()
	require.True(t, r.OK, r.Error)
	var p queue.PingReply
	require.NoError(t, json.Unmarshal(r.Data, &p))
	return p
}

// waitListening waits until the test's worker answers a ping: it
// registers in pgq.workers a moment before it LISTENs, and a message sent
// in between is not seen (control delivery is at most once).
func waitListening(t *testing.T, b *bundle) {
	t.Helper()
	require.Eventually(t, func() bool {
		res, err := b.client.Ping(context.Background(), &queue.ControlOptions{Timeout: 200 * time.Millisecond})
		return err == nil && len(res.Replies) == 1
	}, waitTimeout, time.Millisecond)
}
