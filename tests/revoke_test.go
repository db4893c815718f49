package tests

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// TestRevokeRunningJobAcrossProcesses: a worker process runs a long
// pgq.sleep; this process revokes it with terminate. The job ends
// cancelled within a second, with the reason recorded, and is not
// retried. The worker goes on running other jobs.
func TestRevokeRunningJobAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a worker binary")
	}
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	bin := buildExample(t, "worker")
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)

	proc := startWorker(t, bin, "-database-url", db.URL, "-schema", db.Schema, "-concurrency", "4")
	e, err := client.Enqueue(ctx, worker.SleepArgs{Seconds: 600}, &queue.Options{MaxRetries: queue.Ptr(5)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := client.Job(ctx, e.ID)
		return err == nil && j.State == queue.StateRunning
	}, 30*time.Second, 5*time.Millisecond, "the worker starts the job")

	start := time.Now()
	rv, err := client.Revoke(ctx, e.ID, true)
	require.NoError(t, err)
	require.True(t, rv.Terminating)
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	j, err := e.AsyncResult().Wait(wctx)
	require.NoError(t, err, "the job finished within a second of the revoke")
	took := time.Since(start)
	require.Equal(t, queue.StateCancelled, j.State)
	require.Equal(t, 1, j.Attempt, "not retried")
	require.Contains(t, j.Errors[len(j.Errors)-1].Error, "revoked: terminated while running")
	t.Logf("revoke of a running pgq.sleep in another process: cancelled after %s", took)

	// The worker is unharmed: it runs the next job.
	next, err := client.Enqueue(ctx, queue.Raw{Task: worker.TaskNoop}, nil)
	require.NoError(t, err)
	wctx2, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	j, err = next.AsyncResult().Wait(wctx2)
	require.NoError(t, err)
	require.Equal(t, queue.StateSucceeded, j.State)
	require.NoError(t, proc.Process.Signal(syscall.SIGTERM))
	require.NoError(t, proc.Wait())
}
