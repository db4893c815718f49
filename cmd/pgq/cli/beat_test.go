package cli_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
)

// start runs pgq against the test's schema until the returned function
// cancels it and waits for it to return.
func (b *bundle) start(t *testing.T, args ...string) (stop func() (string, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	// `pgq worker --beat` has two loggers on stderr; a bytes.Buffer needs
	// a lock to be written by both (os.Stderr does not).
	var out, errOut lockedBuffer
	root := cli.New(&cli.Options{Getenv: func(string) string { return "" }})
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--database-url", b.db.URL, "--schema", b.db.Schema}, args...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	return func() (string, error) {
		cancel()
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return out.String() + errOut.String(), err
		case <-time.After(30 * time.Second):
			t.Fatal("pgq did not stop")
			return "", nil
		}
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (b *bundle) periodicJobs(t *testing.T, state string) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM "+
		pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()+" WHERE meta ? 'periodic_tick' AND state LIKE $1", state).Scan(&n))
	return n
}

func TestBeatCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustRun(t, "periodic", "add", "ping", "--every", "1s", "--task", "pgq.noop")
	stop := b.start(t, "beat", "--election-interval", "100ms")
	require.Eventually(t, func() bool { return b.periodicJobs(t, "%") >= 2 }, 20*time.Second, 20*time.Millisecond)
	out, err := stop()
	require.NoError(t, err, out)
	require.Contains(t, out, "pgq beat ")
	require.Contains(t, out, "beat leading")
	require.Contains(t, out, "pgq beat: stopped")
}

func TestWorkerWithBeat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mustRun(t, "periodic", "add", "ping", "--every", "1s", "--task", "pgq.noop")
	stop := b.start(t, "worker", "--beat")
	require.Eventually(t, func() bool { return b.periodicJobs(t, "succeeded") >= 2 }, 20*time.Second, 20*time.Millisecond,
		"the worker runs the jobs its own beat enqueued")
	out, err := stop()
	require.NoError(t, err, out)
	require.Contains(t, out, "beat leading")
}
