package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestBinary builds the real pgq binary and runs it as a user would,
// checking output, stderr and exit codes.
func TestBinary(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)

	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command is needed to build pgq")
	bin := filepath.Join(t.TempDir(), "pgq")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	env := []string{"PGQ_DATABASE_URL=" + db.URL, "PGQ_SCHEMA=" + db.Schema}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PGQ_") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	pgq := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return o.String(), e.String(), exit.ExitCode()
		}
		require.NoError(t, err)
		return o.String(), e.String(), 0
	}

	stdout, stderr, code := pgq("enqueue", "emails.send", "--args", `{"to":"ada@example.com"}`, "--queue", "emails")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	id, err := strconv.ParseInt(strings.TrimSpace(stdout), 10, 64)
	require.NoError(t, err, stdout)

	stdout, stderr, code = pgq("inspect", "job", strconv.FormatInt(id, 10))
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "emails.send")
	require.Contains(t, stdout, `{"to":"ada@example.com"}`)

	stdout, stderr, code = pgq("inspect", "job", "999999")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.Equal(t, "pgq: no such job 999999 in schema "+db.Schema+"\n", stderr)

	_, stderr, code = pgq("enqueue", "emails.send", "--args", "{not json")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "pgq: --args is not valid JSON"), stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)

	_, stderr, code = pgq("enqueue", "--no-such-flag")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "pgq: unknown flag: --no-such-flag")
	require.NotContains(t, stderr, "goroutine")
}
