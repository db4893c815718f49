package cli_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
	"github.com/pgq/pgq/worker"
)

// jobState reads a job's state, attempt and result with SQL.
func (b *bundle) jobState(t *testing.T, id int64) (state string, attempt int, result []byte) {
	t.Helper()
	err := b.db.Pool.QueryRow(t.Context(), "SELECT state, attempt, result FROM "+
		pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()+" WHERE id = $1", id).Scan(&state, &attempt, &result)
	require.NoError(t, err)
	return state, attempt, result
}

func TestWorkerBurstRunsBuiltins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	echo := parseID(t, b.mustRun(t, "enqueue", "pgq.echo", "--args", `{"hello":"world"}`))
	noop := parseID(t, b.mustRun(t, "enqueue", "pgq.noop", "-q", "other"))
	fail := parseID(t, b.mustRun(t, "enqueue", "pgq.fail", "--args", `{"message":"on purpose","permanent":true}`))
	later := parseID(t, b.mustRun(t, "enqueue", "pgq.noop", "--countdown", "1h"))

	out := b.mustRun(t, "worker", "--burst", "-Q", "default,other", "-c", "4")
	require.Contains(t, out, "queues default,other")
	require.Contains(t, out, "pgq.echo")

	state, attempt, result := b.jobState(t, echo)
	require.Equal(t, "succeeded", state)
	require.Equal(t, 1, attempt)
	require.JSONEq(t, `{"hello":"world"}`, string(result))
	state, _, _ = b.jobState(t, noop)
	require.Equal(t, "succeeded", state)
	state, _, _ = b.jobState(t, fail)
	require.Equal(t, "failed", state)
	state, attempt, _ = b.jobState(t, later)
	require.Equal(t, "scheduled", state, "burst mode leaves future jobs alone")
	require.Zero(t, attempt)

	failed := b.mustRun(t, "inspect", "job", itoa(fail))
	require.Contains(t, failed, "on purpose")
}

type double struct {
	N int `json:"n"`
}

func (double) TaskName() string { return "math.double" }

// A program that passes its own registry gets the whole command set with
// its tasks compiled in, and keeps the built-ins.
func TestWorkerCustomRegistry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := worker.NewRegistry()
	worker.Register(reg, func(_ context.Context, job *worker.Job[double]) (any, error) {
		return map[string]int{"n": job.Args.N * 2}, nil
	}, nil)
	opts := &cli.Options{Registry: reg, Getenv: func(string) string { return "" }}
	run := func(args ...string) string {
		var out, errOut bytes.Buffer
		root := cli.New(opts)
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append([]string{"--database-url", b.db.URL, "--schema", b.db.Schema}, args...))
		require.NoError(t, root.ExecuteContext(t.Context()), "stderr: %s", errOut.String())
		return out.String()
	}
	id := parseID(t, run("enqueue", "math.double", "--args", `{"n":21}`))
	noop := parseID(t, run("enqueue", "pgq.noop"))
	out := run("worker", "--burst")
	require.Contains(t, out, "math.double")
	state, _, result := b.jobState(t, id)
	require.Equal(t, "succeeded", state)
	require.JSONEq(t, `{"n":42}`, string(result))
	state, _, _ = b.jobState(t, noop)
	require.Equal(t, "succeeded", state)
}

func TestWorkerBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, args := range [][]string{
		{"worker", "-c", "-1"},
		{"worker", "-Q", "bad queue"},
		{"worker", "--shutdown-timeout", "soon"},
		{"worker", "extra"},
	} {
		r := b.run(t, args...)
		require.Error(t, r.err, "%v", args)
		msg, code := r.report()
		require.Equal(t, cli.ExitUsage, code, "%v: %s", args, msg)
	}

	fresh := freshSchema(t, b.db)
	r := execute(t, nil, "--database-url", b.db.URL, "--schema", fresh, "worker", "--burst")
	msg, code := r.report()
	require.Equal(t, cli.ExitError, code)
	require.Contains(t, msg, "pgq migrate up")
}

// Cancelling the command's context (what SIGINT does) stops the worker
// gracefully: a job still running after the shutdown timeout goes back to
// its queue without using up an attempt.
func TestWorkerStopsGracefully(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := parseID(t, b.mustRun(t, "enqueue", "pgq.sleep", "--args", `{"seconds": 600}`))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut bytes.Buffer
	root := cli.New(&cli.Options{Getenv: func(string) string { return "" }})
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"--database-url", b.db.URL, "--schema", b.db.Schema, "worker", "--shutdown-timeout", "50ms"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	// Wait until the job is running, then stop the worker.
	require.Eventually(t, func() bool {
		state, _, _ := b.jobState(t, id)
		return state == "running"
	}, 30*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.True(t, err == nil || errors.Is(err, context.Canceled), "worker returned %v; stderr: %s", err, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
	state, attempt, _ := b.jobState(t, id)
	require.Equal(t, "available", state)
	require.Zero(t, attempt, "a handed-back job keeps its attempts")

	var workers int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM "+
		pgx.Identifier{b.db.Schema, "workers"}.Sanitize()).Scan(&workers))
	require.Zero(t, workers, "a clean stop removes the worker's row")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// --retention-* reach the worker: its maintenance round (the first runs at
// start) prunes succeeded jobs older than the flag says and keeps newer ones.
func TestWorkerRetentionFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := parseID(t, b.mustRun(t, "enqueue", "pgq.noop"))
	recent := parseID(t, b.mustRun(t, "enqueue", "pgq.noop"))
	jobs := pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()
	_, err := b.db.Pool.Exec(t.Context(), "UPDATE "+jobs+` SET state = 'succeeded',
		finished_at = CASE WHEN id = $1 THEN now() - interval '2 hours' ELSE now() END`, old)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	root := cli.New(&cli.Options{Getenv: func(string) string { return "" }})
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"--database-url", b.db.URL, "--schema", b.db.Schema, "worker", "--retention-succeeded", "1h"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	exists := func(id int64) bool {
		var n int
		require.NoError(t, b.db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM "+jobs+" WHERE id = $1", id).Scan(&n))
		return n == 1
	}
	require.Eventually(t, func() bool { return !exists(old) }, 30*time.Second, 20*time.Millisecond)
	require.True(t, exists(recent), "a job finished within the retention stays")
	cancel()
	require.NoError(t, <-done)
}
