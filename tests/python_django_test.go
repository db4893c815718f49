package tests

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// systemPython is the interpreter the Debian packages python3-django and
// python3-psycopg2 install into (.ci/run installs them).
const systemPython = "/usr/bin/python3"

// TestPythonClientWithDjango runs the Python client's tests
// (clients/python/tests, plain unittest) against a pgtest schema, with a Go
// worker process (examples/pyinterop, which has orders.confirm compiled
// in) running the jobs Django enqueues. A job enqueued here, in Go, is
// read back from Python. The Python suite must pass.
func TestPythonClientWithDjango(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a worker and runs Python")
	}
	t.Parallel()
	if err := exec.Command(systemPython, "-c", "import django, psycopg2").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s cannot import django and psycopg2 (%v): apt-get install python3-django python3-psycopg2", systemPython, err)
		}
		t.Skipf("%s cannot import django and psycopg2 (%v): apt-get install python3-django python3-psycopg2", systemPython, err)
	}
	ctx := context.Background()
	db := pgtest.New(t)

	bin := buildExample(t, "pyinterop")

	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	args, err := json.Marshal(map[string]any{"from": "go", "items": []int{1, 2}})
	require.NoError(t, err)
	fromGo, err := client.Enqueue(ctx, queue.Raw{Task: worker.TaskEcho, Args: args}, nil)
	require.NoError(t, err)

	proc, logs := startWorkerLogs(t, bin, "worker", "-Q", "orders,default", "--database-url", db.URL, "--schema", db.Schema)

	py := exec.Command(systemPython, "../clients/python/tests/run.py")
	py.Env = append(os.Environ(),
		"PGQ_PY_DATABASE_URL="+db.URL,
		"PGQ_PY_SCHEMA="+db.Schema,
		"PGQ_PY_GO_JOB_ID="+strconv.FormatInt(fromGo.ID, 10),
		"PYTHONDONTWRITEBYTECODE=1",
	)
	pyOut, err := py.CombinedOutput()
	t.Logf("python tests:\n%s", pyOut)
	require.NoError(t, err, "the Python tests failed (output above); worker output:\n%s", logs.String())

	require.NoError(t, proc.Process.Signal(syscall.SIGTERM))
	require.NoError(t, proc.Wait())
}
