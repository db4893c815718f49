package cli_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
	"github.com/pgq/pgq/internal/pgserver"
	"github.com/pgq/pgq/internal/pgtest"
)

// TestDemo runs the demo against the test database (so it starts no server
// of its own) and checks what it says and what it wrote.
func TestDemo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.mustRun(t, "demo")
	for _, want := range []string{
		"Using the database at", "schema " + b.db.Schema,
		"emails.send", "reports.build", "reminders.send", "scheduled",
		"duplicate, no new job", "images.thumbnail on queue media",
		"QUEUE", "default", "reports", "billing", "media",
		"ID", "psql '",
		"1003 jobs succeeded", "1 attempt(s) failed and were retried", "retry requested by the handler",
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "Stopping the throwaway PostgreSQL")
	require.Equal(t, 4+1000, b.jobCount(t))
	var succeeded, scheduled int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE state = 'succeeded'),
		count(*) FILTER (WHERE state = 'scheduled') FROM `+pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()).Scan(&succeeded, &scheduled))
	require.Equal(t, 1003, succeeded)
	require.Equal(t, 1, scheduled)
}

// TestDemoThrowawayServer runs the demo as a newcomer would, with no
// database URL: it must start its own PostgreSQL, leave it running with
// --keep until interrupted, and then stop it.
func TestDemoThrowawayServer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a PostgreSQL server of its own")
	}
	if _, err := pgserver.BinDir(); err != nil && os.Getenv(pgtest.EnvURL) != "" {
		t.Skipf("no local PostgreSQL binaries for the demo's own server: %v", err)
	}
	out := newWatchWriter("press Ctrl-C")
	root := cli.New(&cli.Options{Getenv: func(string) string { return "" }})
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs([]string{"demo", "--keep"})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("demo ended before waiting for Ctrl-C: %v\n%s", err, out.String())
	case <-ctx.Done():
		t.Fatalf("demo never got to waiting for Ctrl-C:\n%s", out.String())
	}

	// While it waits, the server it printed is up and holds the demo's jobs.
	m := regexp.MustCompile(`ready at (\S+)`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	conn, err := pgx.Connect(ctx, m[1])
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pgq.jobs").Scan(&n))
	require.NoError(t, conn.Close(ctx))
	require.Equal(t, 4+1000, n)

	cancel() // Ctrl-C
	require.NoError(t, <-done)
	require.Contains(t, out.String(), "Stopping the throwaway PostgreSQL")
	_, err = pgx.Connect(context.Background(), m[1])
	require.Error(t, err, "the throwaway server still answers")
}

// watchWriter collects output and closes seen once it contains want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func newWatchWriter(want string) *watchWriter {
	return &watchWriter{want: want, seen: make(chan struct{})}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
