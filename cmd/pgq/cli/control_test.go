package cli_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

func TestRevokeRetryDeletePurgeCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := parseID(t, b.mustRun(t, "enqueue", "pgq.noop"))
	require.Contains(t, b.mustRun(t, "revoke", itoa(id)), "cancelled; it will not run")
	r := b.run(t, "revoke", itoa(id), "--terminate")
	require.ErrorIs(t, r.err, queue.ErrJobFinished)
	msg, code := r.report()
	require.Equal(t, cli.ExitError, code)
	require.Contains(t, msg, "already finished (cancelled)")
	r = b.run(t, "revoke", "999999")
	require.ErrorContains(t, r.err, "no such job 999999")

	require.Contains(t, b.mustRun(t, "retry", itoa(id)), "available again")
	state, _, _ := b.jobState(t, id)
	require.Equal(t, "available", state)
	r = b.run(t, "retry", itoa(id))
	require.ErrorIs(t, r.err, queue.ErrJobNotRetryable)

	require.Contains(t, b.mustRun(t, "delete", itoa(id)), "deleted")
	require.Zero(t, b.jobCount(t))

	for range 3 {
		b.mustRun(t, "enqueue", "pgq.noop", "-q", "mail")
	}
	r = b.run(t, "purge", "mail")
	msg, code = r.report()
	require.Equal(t, cli.ExitUsage, code, "without --yes")
	require.Contains(t, msg, "would delete 3 waiting jobs of queue mail")
	require.Equal(t, 3, b.jobCount(t))
	require.Contains(t, b.mustRun(t, "purge", "mail", "--yes"), "purged 3 waiting jobs from queue mail")
	require.Zero(t, b.jobCount(t))
}

func TestQueuePauseResumeCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := parseID(t, b.mustRun(t, "enqueue", "pgq.noop", "-q", "mail"))
	require.Contains(t, b.mustRun(t, "queue", "pause", "mail"), "paused")
	out := b.mustRun(t, "queue", "list")
	require.Regexp(t, `mail\s+paused\s+1\s+0\s+0`, out)
	b.mustRun(t, "worker", "--burst", "-Q", "mail")
	state, _, _ := b.jobState(t, id)
	require.Equal(t, "available", state, "a paused queue is not claimed from")
	require.Contains(t, b.mustRun(t, "queue", "resume", "mail"), "resumed")
	b.mustRun(t, "worker", "--burst", "-Q", "mail")
	state, _, _ = b.jobState(t, id)
	require.Equal(t, "succeeded", state)
}

func TestInspectAndControlCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Contains(t, b.mustRun(t, "inspect", "workers"), "no workers registered")
	r := b.run(t, "control", "ping", "--timeout", "100ms")
	require.ErrorContains(t, r.err, "no workers are registered")

	client, err := queue.NewClient(b.db.Pool, &queue.Config{Schema: b.db.Schema})
	require.NoError(t, err)
	_, err = client.Enqueue(context.Background(), worker.SleepArgs{Seconds: 60}, &queue.Options{Countdown: time.Hour})
	require.NoError(t, err)
	require.Contains(t, b.mustRun(t, "inspect", "scheduled"), "pgq.sleep")

	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	w, err := worker.New(b.db.Pool, reg, &worker.Config{Schema: b.db.Schema, WorkerID: "cli-w1", Concurrency: 3, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// It registers a moment before it listens: wait for its first reply.
	require.Eventually(t, func() bool {
		res, err := client.Ping(ctx, &queue.ControlOptions{Timeout: 200 * time.Millisecond})
		return err == nil && len(res.Replies) == 1
	}, 20*time.Second, time.Millisecond)
	require.Contains(t, b.mustRun(t, "inspect", "workers"), "cli-w1")
	require.Contains(t, b.mustRun(t, "inspect", "active"), "no running jobs")

	out := b.mustRun(t, "control", "ping", "--timeout", "5s")
	require.Contains(t, out, "cli-w1: ok")
	require.Contains(t, out, "concurrency 3")
	out = b.mustRun(t, "control", "pool-size", "7", "--worker", "cli-w1", "--timeout", "5s")
	require.Contains(t, out, "concurrency 7")
	r = b.run(t, "control", "drop-queue", "default", "--timeout", "5s")
	require.ErrorContains(t, r.err, "1 failed")
	require.Contains(t, r.out, "only queue")
	out = b.mustRun(t, "control", "shutdown", "--timeout", "5s")
	require.Contains(t, out, "cli-w1: ok")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not shut down")
	}
	r = b.run(t, "control", "ping", "--worker", "cli-w1", "--timeout", "200ms")
	require.ErrorContains(t, r.err, "did not reply")
	require.Contains(t, r.out, "cli-w1: no reply within 200ms")
}
