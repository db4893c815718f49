package tests

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// TestWorkerSurvivesDatabaseRestarts runs a worker process on 4,000 jobs
// and restarts PostgreSQL under it twice, once with a fast shutdown and
// once with an immediate one (a crash, as far as PostgreSQL is
// concerned). The worker must notice the outage, log it, reconnect by
// itself and finish every job: each one ends succeeded, none is left
// running, none is lost.
//
// Not parallel: it restarts the server that every test of this binary
// uses, and Go runs sequential tests before it releases parallel ones.
func TestWorkerSurvivesDatabaseRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a worker binary, restarts PostgreSQL")
	}
	srv := pgtest.Server(t)
	if srv == nil {
		t.Skip("PGQ_TEST_DATABASE_URL points at an outside database, which this test cannot restart")
	}
	ctx := context.Background()
	db := pgtest.New(t)
	bin := buildExample(t, "worker")

	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	const total = 4000
	reqs := make([]queue.Request, total)
	for i := range reqs {
		reqs[i] = queue.Request{Args: worker.SleepArgs{Seconds: 0.01}}
	}
	_, err = client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)

	w, logs := startWorkerLogs(t, bin, "-database-url", db.URL, "-schema", db.Schema, "-concurrency", "20")
	for i, immediate := range []bool{false, true} {
		// Restart while the worker holds jobs, after a share has finished.
		waitFor(t, db, func(succeeded, running int) bool {
			return succeeded >= (i+1)*total/3 && running > 0
		})
		start := time.Now()
		require.NoError(t, srv.Restart(ctx, immediate))
		t.Logf("restarted PostgreSQL (immediate: %v) in %s", immediate, time.Since(start).Round(time.Millisecond))
	}
	waitFor(t, db, func(succeeded, _ int) bool { return succeeded == total })
	require.NoError(t, w.Process.Signal(syscall.SIGTERM))
	require.NoError(t, w.Wait(), "a SIGTERM after the outages is a clean stop")

	var jobs, succeeded int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'succeeded')
		  FROM `+db.Schema+".jobs").Scan(&jobs, &succeeded))
	require.Equal(t, total, jobs, "no job lost")
	require.Equal(t, total, succeeded, "every job succeeded; none is left running")
	var workers int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".workers").Scan(&workers))
	require.Zero(t, workers, "the worker removed its row")

	out := logs.String()
	t.Logf("worker output:\n%s", out)
	require.True(t, strings.Contains(out, "database unreachable"), "the worker logged the outage")
	require.True(t, strings.Contains(out, "database reachable again"), "the worker logged the reconnection")
}

// waitFor polls the job counts until ok says so, for at most two minutes.
// Errors are expected while PostgreSQL restarts, and retried.
func waitFor(t *testing.T, db *pgtest.DB, ok func(succeeded, running int) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	last := [2]int{}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var succeeded, running int
		lastErr = db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state = 'running')
			  FROM `+db.Schema+".jobs").Scan(&succeeded, &running)
		cancel()
		if lastErr == nil {
			last = [2]int{succeeded, running}
			if ok(succeeded, running) {
				return
			}
		}
		<-tick.C
	}
	t.Fatalf("condition not met within 2 minutes; last counts: succeeded %d, running %d; last error: %v", last[0], last[1], lastErr)
}
