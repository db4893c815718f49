package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
)

// TestWorkerSignals runs `pgq worker` as a process and signals it as a
// shell or an orchestrator would: one SIGTERM drains gracefully (the
// running job goes back to its queue, exit 0); a second signal during the
// drain exits at once (130).
func TestWorkerSignals(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	bin := filepath.Join(t.TempDir(), "pgq")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	env := append(os.Environ(), "PGQ_DATABASE_URL="+db.URL, "PGQ_SCHEMA="+db.Schema)

	jobState := func(id int64) string {
		var s string
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT state FROM "+
			pgx.Identifier{db.Schema, "jobs"}.Sanitize()+" WHERE id = $1", id).Scan(&s))
		return s
	}
	enqueueSleep := func() int64 {
		cmd := exec.CommandContext(ctx, bin, "enqueue", "pgq.sleep", "--args", `{"seconds": 600}`)
		cmd.Env = env
		out, err := cmd.Output()
		require.NoError(t, err)
		id, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		require.NoError(t, err)
		return id
	}
	// startWorker runs `pgq worker` until job runs; stopping receives a
	// value when the worker has taken the first signal.
	startWorker := func(shutdownTimeout string, job int64) (cmd *exec.Cmd, done chan error, stopping chan struct{}) {
		cmd = exec.CommandContext(ctx, bin, "worker", "--shutdown-timeout", shutdownTimeout)
		cmd.Env = env
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		stopping = make(chan struct{}, 1)
		go func() {
			lines := bufio.NewScanner(stderr)
			for lines.Scan() {
				if strings.Contains(lines.Text(), "pgq worker: stopping") {
					stopping <- struct{}{}
				}
			}
		}()
		done = make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		require.Eventually(t, func() bool { return jobState(job) == "running" }, time.Minute, 10*time.Millisecond)
		return cmd, done, stopping
	}
	exitCode := func(err error) int {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		require.NoError(t, err)
		return 0
	}

	// One signal: graceful. The 600 s job outlives the 200 ms shutdown
	// timeout and is handed back without using up an attempt.
	job := enqueueSleep()
	cmd, done, _ := startWorker("200ms", job)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, exitCode(<-done))
	require.Equal(t, "available", jobState(job))

	// Two signals: the second one does not wait for the 10-minute drain.
	// (Wait for the first to be taken: the kernel merges a signal sent
	// while the same one is still pending.)
	cmd, done, stopping := startWorker("10m", job)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-stopping:
	case <-ctx.Done():
		t.Fatal("the worker never reported that it is stopping")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	start := time.Now()
	select {
	case err := <-done:
		require.Equal(t, 130, exitCode(err))
		require.Less(t, time.Since(start), 30*time.Second)
	case <-ctx.Done():
		t.Fatal("a second signal did not stop the worker")
	}
}
