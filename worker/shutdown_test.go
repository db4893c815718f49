package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// TestShutdownSurvivesTerminatedConnections: every idle connection of the
// worker's pool is terminated by the server (an administrator's
// pg_terminate_backend, or a restart the pool has not noticed) while a job
// runs. A clean stop must still hand the job back and remove the worker's
// row: the first statement on a dead connection fails, a retry gets a
// fresh one.
func TestShutdownSurvivesTerminatedConnections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A handler that ignores its context: the job can only go back to its
	// queue through the shutdown's hand-back statement.
	bl := b.registerBlocker(true)
	t.Cleanup(func() { bl.release <- nil })
	ctx := context.Background()

	// A pool of the worker's own, so that terminating its connections
	// leaves the other tests' alone.
	cfg, err := pgxpool.ParseConfig(b.db.URL)
	require.NoError(t, err)
	app := "shutdown-" + b.db.Schema
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	id := b.enqueue(t, blockArgs{}, nil)
	w, err := worker.New(pool, b.reg, b.config(func(c *worker.Config) {
		c.ShutdownTimeout = 50 * time.Millisecond
		c.NoListen = true
		c.CancelGrace = 50 * time.Millisecond
	}))
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	bl.waitStart(t)

	// Terminate every connection of the worker's pool (a statement in
	// flight, such as a heartbeat, fails and is retried by its loop).
	require.Eventually(t, func() bool {
		var killed int
		err := b.db.Pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			 WHERE application_name = $1`, app).Scan(&killed)
		return err == nil && killed > 0
	}, waitTimeout, 10*time.Millisecond, "no connection of the worker's pool to terminate")

	stop()
	select {
	case err := <-done:
		require.NoError(t, err, "a clean stop despite dead connections")
	case <-time.After(waitTimeout):
		t.Fatal("worker did not stop")
	}
	j := b.job(t, id)
	require.Equal(t, queue.StateAvailable, j.State, "handed back")
	var rows int
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+b.db.Schema+".workers").Scan(&rows))
	require.Zero(t, rows, "the worker removed its row")
}
