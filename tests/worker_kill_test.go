package tests

import (
	"bytes"
	"context"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// TestWorkerSurvivesSIGKILL enqueues 10,000 jobs, kills the worker process
// with SIGKILL in the middle of them while it holds some, starts a new one
// and checks that every job ends succeeded, exactly once in the database:
// the jobs of the dead worker are rescued once its heartbeat expires. It
// logs how many jobs ran twice and the longest wait from the kill to a
// rescue.
func TestWorkerSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a worker binary")
	}
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	bin := buildExample(t, "worker")

	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	const total = 10000
	reqs := make([]queue.Request, total)
	for i := range reqs {
		reqs[i] = queue.Request{Args: worker.SleepArgs{Seconds: 0.005}}
	}
	_, err = client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)

	args := []string{"-database-url", db.URL, "-schema", db.Schema, "-concurrency", "50",
		"-rescue-after", "2s", "-heartbeat", "500ms", "-maintenance", "200ms"}
	first := startWorker(t, bin, args...)
	// Kill it while it holds jobs, after some have finished.
	require.Eventually(t, func() bool {
		return count(t, db, queue.StateSucceeded) >= total/2 && count(t, db, queue.StateRunning) > 0
	}, time.Minute, 10*time.Millisecond)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	var killedAt time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT now()").Scan(&killedAt))
	held := count(t, db, queue.StateRunning)
	require.Positive(t, held, "the killed worker held jobs")
	t.Logf("killed the worker holding %d running jobs; %d succeeded so far", held, count(t, db, queue.StateSucceeded))

	second := startWorker(t, bin, args...)
	require.Eventually(t, func() bool { return count(t, db, queue.StateSucceeded) == total }, 2*time.Minute, 50*time.Millisecond,
		"every job ends succeeded")
	require.NoError(t, second.Process.Signal(syscall.SIGTERM))
	require.NoError(t, second.Wait(), "a SIGTERM is a clean stop")

	var rescued int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".jobs WHERE jsonb_array_length(errors) > 0").Scan(&rescued))
	// Statements the dead process sent just before the kill (a claim, a
	// completion) may still commit, as their backends finish them, so the
	// number rescued differs a little from the number counted above.
	require.Positive(t, rescued, "jobs of the dead worker were rescued, with the reason recorded")
	var (
		maxAttempt, twice, jobs int
		longestWait             float64
	)
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*), max(attempt), count(*) FILTER (WHERE attempt > 1),
		       coalesce(max(extract(epoch FROM (errors->0->>'at')::timestamptz - $1)), 0)::float8
		  FROM `+db.Schema+".jobs", killedAt).Scan(&jobs, &maxAttempt, &twice, &longestWait))
	require.Equal(t, total, jobs, "no job lost or duplicated")
	require.LessOrEqual(t, maxAttempt, 2, "a job ran at most twice: once in the dead worker, once after rescue")
	t.Logf("%d jobs rescued; %d of %d ran twice; longest wait from the kill to a rescue: %.2fs (rescue after 2s, maintenance every 200ms)",
		rescued, twice, total, longestWait)
	var wrong int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".jobs WHERE jsonb_array_length(errors) > 0 AND errors->0->>'error' NOT LIKE '%stopped sending heartbeats%'").Scan(&wrong))
	require.Zero(t, wrong, "no job failed for another reason")
	var workers int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".workers").Scan(&workers))
	require.Zero(t, workers, "the dead worker's row was removed and the live one removed its own")
}

func startWorker(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd, _ := startWorkerLogs(t, bin, args...)
	return cmd
}

// startWorkerLogs starts the worker binary and returns its combined
// output, which the test may read while the worker runs.
func startWorkerLogs(t *testing.T, bin string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("worker %d output:\n%s", cmd.Process.Pid, logs.String())
		}
	})
	return cmd, logs
}

// lockedBuffer is a bytes.Buffer that a process writes to while a test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func count(t *testing.T, db *pgtest.DB, state string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+db.Schema+".jobs WHERE state = $1", state).Scan(&n))
	return n
}
