package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestCustomBinary builds this example and uses it as a user would: enqueue
// its own task, work it off in burst mode, read the result.
func TestCustomBinary(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	bin := filepath.Join(t.TempDir(), "myapp")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "PGQ_DATABASE_URL="+db.URL, "PGQ_SCHEMA="+db.Schema)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "myapp %v: %s", args, out)
		return string(out)
	}
	id := strings.TrimSpace(run("enqueue", "greetings.hello", "--args", `{"name":"Ada"}`))
	require.Contains(t, run("worker", "--burst"), "greetings.hello")
	job := run("inspect", "job", id, "--json")
	require.Contains(t, job, `"state": "succeeded"`)
	require.Contains(t, job, `Hello, Ada!`)
}
