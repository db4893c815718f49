package tests

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

// The Python worker (clients/python/pgq/worker.py, `python3 -m pgq
// worker`) runs as a real subprocess with the tasks of
// clients/python/tests/worker_tasks.py; Go enqueues, reads results,
// revokes, and its maintenance leader rescues the jobs of a killed Python
// worker.

// needPython skips (or, in CI, fails) when the system Python cannot
// import psycopg2.
func needPython(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Python")
	}
	if err := exec.Command(systemPython, "-c", "import psycopg2").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s cannot import psycopg2 (%v): apt-get install python3-psycopg2", systemPython, err)
		}
		t.Skipf("%s cannot import psycopg2 (%v): apt-get install python3-psycopg2", systemPython, err)
	}
}

// startPythonWorker starts `python3 -m pgq worker` on the test's schema
// with the test tasks and waits until it has registered.
func startPythonWorker(t *testing.T, db *pgtest.DB, id string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	return startPythonWorkerEnv(t, db, id, nil, append([]string{"--database-url", db.URL, "--schema", db.Schema}, args...)...)
}

// startPythonWorkerEnv is startPythonWorker with more environment and
// without the database flags.
func startPythonWorkerEnv(t *testing.T, db *pgtest.DB, id string, env []string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	dir, err := filepath.Abs("../clients/python")
	require.NoError(t, err)
	cmd := exec.Command(systemPython, append([]string{"-m", "pgq", "worker", "--worker-id", id,
		"-A", "tests.worker_tasks", "--loglevel", "DEBUG"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"), env...)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("python worker %s output:\n%s", id, logs.String())
		}
	})
	require.Eventually(t, func() bool {
		var n int
		err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+db.Schema+".workers WHERE id = $1", id).Scan(&n)
		return err == nil && n == 1
	}, 30*time.Second, 10*time.Millisecond, "the Python worker registers; output:\n%s", logs)
	return cmd, logs
}

func waitState(t *testing.T, c *queue.Client, id int64, state string) *queue.Job {
	t.Helper()
	var j *queue.Job
	require.Eventually(t, func() bool {
		var err error
		j, err = c.Job(context.Background(), id)
		return err == nil && j.State == state
	}, 30*time.Second, 5*time.Millisecond, "job %d reaches %s", id, state)
	return j
}

// Report is reports.build's args and result on the Go side; the Python
// function takes month and rows as keyword arguments.
type Report struct {
	Month string `json:"month"`
	Rows  int    `json:"rows"`
}

func (Report) TaskName() string { return "reports.build" }

type ReportFile struct {
	Month string `json:"month"`
	Rows  int    `json:"rows"`
	File  string `json:"file"`
	By    string `json:"by"`
}

// TestPythonWorkerRunsJobsFromGo: a Go service enqueues reports.build and
// reads the result the Python worker wrote; the worker applies the retry
// policy (error history in Go's shape, with the Python traceback),
// pgq.Retry, pgq.Permanent, pgq.Snooze, soft and hard time limits
// (including a handler that ignores them), unknown tasks and bad args,
// and a revoke with terminate sent by Go.
func TestPythonWorkerRunsJobsFromGo(t *testing.T) {
	needPython(t)
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	proc, logs := startPythonWorker(t, db, "py-main", "-Q", "python", "-c", "4", "--cancel-grace", "0.5")
	py := &queue.Options{Queue: "python"}
	enqueue := func(task string, args string, opts *queue.Options) int64 {
		t.Helper()
		o := queue.Options{Queue: "python"}
		if opts != nil {
			o = *opts
			o.Queue = "python"
		}
		e, err := client.Enqueue(ctx, queue.Raw{Task: task, Args: json.RawMessage(args)}, &o)
		require.NoError(t, err)
		return e.ID
	}

	t.Run("result", func(t *testing.T) {
		e, err := client.Enqueue(ctx, Report{Month: "2026-11", Rows: 3}, py)
		require.NoError(t, err)
		var out ReportFile
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(t, e.AsyncResult().Get(wctx, &out))
		require.Equal(t, ReportFile{Month: "2026-11", Rows: 3, File: "report-2026-11.csv", By: "python"}, out)
		j, err := client.Job(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, "py-main", j.WorkerID)
		require.Equal(t, 1, j.Attempt)
		require.Equal(t, queue.CelerySuccess, j.CeleryState())
	})

	t.Run("retries then fails with its error history", func(t *testing.T) {
		id := enqueue("py.flaky", `{}`, &queue.Options{MaxRetries: queue.Ptr(10)})
		j := waitJob(t, client, id)
		require.Equal(t, queue.StateFailed, j.State)
		require.Equal(t, 3, j.Attempt, "the task's max_retries=2 replaces the job's 10")
		require.Len(t, j.Errors, 3)
		for i, e := range j.Errors {
			require.Equal(t, i+1, e.Attempt)
			require.Equal(t, "ValueError: flaky attempt "+string(rune('1'+i)), e.Error)
			require.Contains(t, e.Stack, "Traceback (most recent call last)")
			require.Contains(t, e.Stack, "worker_tasks.py")
			require.WithinDuration(t, time.Now(), e.At, time.Minute)
		}
		var jfe *queue.JobFailedError
		err := client.AsyncResult(id).Get(ctx, nil)
		require.ErrorAs(t, err, &jfe)
		require.ErrorIs(t, err, queue.ErrJobFailed)
		require.Equal(t, "ValueError: flaky attempt 3", jfe.Err)
	})

	t.Run("pgq.Retry", func(t *testing.T) {
		j := waitJob(t, client, enqueue("py.retry", `{}`, nil))
		require.Equal(t, queue.StateSucceeded, j.State)
		require.JSONEq(t, `{"attempt":3}`, string(j.Result))
		require.Len(t, j.Errors, 2)
		require.Equal(t, "retry in 50ms: ConnectionError: upstream busy", j.Errors[0].Error)
	})

	t.Run("pgq.Permanent", func(t *testing.T) {
		j := waitJob(t, client, enqueue("py.permanent", `[]`, nil))
		require.Equal(t, queue.StateFailed, j.State)
		require.Equal(t, 1, j.Attempt, "no retry")
		require.Equal(t, "KeyError: 'no such customer'", j.Errors[0].Error)
	})

	t.Run("pgq.Snooze", func(t *testing.T) {
		j := waitJob(t, client, enqueue("py.snooze_once", `{}`, nil))
		require.Equal(t, queue.StateSucceeded, j.State)
		require.JSONEq(t, `{"attempt":1}`, string(j.Result), "the snooze did not use up an attempt")
		require.Empty(t, j.Errors)
	})

	t.Run("unknown task and bad args fail at once", func(t *testing.T) {
		j := waitJob(t, client, enqueue("py.nope", `{}`, nil))
		require.Equal(t, queue.StateFailed, j.State)
		require.Equal(t, 1, j.Attempt)
		require.Contains(t, j.Errors[0].Error, `unknown task "py.nope": worker py-main has no handler for it`)
		j = waitJob(t, client, enqueue("reports.build", `{"month":"x","colour":"red"}`, nil))
		require.Equal(t, queue.StateFailed, j.State)
		require.Equal(t, 1, j.Attempt)
		require.Contains(t, j.Errors[0].Error, "cannot decode args: reports.build:")
	})

	t.Run("soft time limit", func(t *testing.T) {
		j := waitJob(t, client, enqueue("py.soft", `{"seconds": 30}`, &queue.Options{SoftTimeLimit: 200 * time.Millisecond, TimeLimit: 20 * time.Second}))
		require.Equal(t, queue.StateSucceeded, j.State)
		require.JSONEq(t, `{"soft_limit":true,"flag":true}`, string(j.Result))
	})

	t.Run("hard time limit", func(t *testing.T) {
		start := time.Now()
		j := waitJob(t, client, enqueue("py.slow", `{"seconds": 60}`, &queue.Options{TimeLimit: 300 * time.Millisecond, MaxRetries: queue.Ptr(0)}))
		require.Equal(t, queue.StateFailed, j.State)
		require.Equal(t, "hard time limit of 300ms exceeded", j.Errors[0].Error)
		require.Less(t, time.Since(start), 20*time.Second)

		// A handler blocked in C (one long sleep) ignores the interrupt:
		// its slot is taken back after the grace, with the same error.
		j = waitJob(t, client, enqueue("py.stubborn", `{"seconds": 30}`, &queue.Options{TimeLimit: 300 * time.Millisecond, MaxRetries: queue.Ptr(0)}))
		require.Equal(t, queue.StateFailed, j.State)
		require.Equal(t, "hard time limit of 300ms exceeded", j.Errors[0].Error)
		// The worker logs this as it writes the outcome; its output reaches
		// the buffer through a pipe, possibly after the job's row changed.
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), "handler ignored its time limit") },
			10*time.Second, 10*time.Millisecond, "output:\n%s", logs)
	})

	t.Run("revoke with terminate from Go", func(t *testing.T) {
		id := enqueue("py.slow", `{"seconds": 600}`, &queue.Options{MaxRetries: queue.Ptr(5)})
		waitState(t, client, id, queue.StateRunning)
		rv, err := client.Revoke(ctx, id, true)
		require.NoError(t, err)
		require.Equal(t, "py-main", rv.WorkerID)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		j, err := client.AsyncResult(id).Wait(wctx)
		require.NoError(t, err)
		require.Equal(t, queue.StateCancelled, j.State)
		require.Equal(t, 1, j.Attempt, "not retried")
		require.Equal(t, "revoked: terminated while running", j.Errors[len(j.Errors)-1].Error)
	})

	t.Run("still serving", func(t *testing.T) {
		var out ReportFile
		e, err := client.Enqueue(ctx, Report{Month: "2026-12"}, py)
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(t, e.AsyncResult().Get(wctx, &out))
		require.Equal(t, "python", out.By)
	})

	t.Run("workflow steps", func(t *testing.T) {
		res, err := workflow.Apply(ctx, client, workflow.Chain(
			workflow.Task(Report{Month: "2027-02", Rows: 9}, py),
			workflow.Task(queue.Raw{Task: "py.parent"}, py),
		))
		require.NoError(t, err)
		var out struct {
			Parent ReportFile `json:"parent"`
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(t, res.Get(wctx, &out))
		require.Equal(t, ReportFile{Month: "2027-02", Rows: 9, File: "report-2027-02.csv", By: "python"}, out.Parent)
	})

	t.Run("remote control", func(t *testing.T) {
		res, err := client.Ping(ctx, &queue.ControlOptions{Workers: []string{"py-main"}, Timeout: 10 * time.Second})
		require.NoError(t, err)
		require.Empty(t, res.Missing)
		require.Len(t, res.Replies, 1)
		require.True(t, res.Replies[0].OK)
		var ping queue.PingReply
		require.NoError(t, json.Unmarshal(res.Replies[0].Data, &ping))
		require.Equal(t, "py-main", ping.WorkerID)
		require.Equal(t, []string{"python"}, ping.Queues)
		require.Equal(t, 4, ping.Concurrency)
	})

	// A shutdown control message stops it as SIGTERM would.
	res, err := client.Control(ctx, queue.ControlShutdown, nil, &queue.ControlOptions{Workers: []string{"py-main"}, Timeout: 10 * time.Second})
	require.NoError(t, err)
	require.Len(t, res.Replies, 1)
	require.True(t, res.Replies[0].OK)
	require.NoError(t, proc.Wait(), "a shutdown is a clean stop; output:\n%s", logs)
	var workers int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".workers").Scan(&workers))
	require.Zero(t, workers, "the worker removed its row")
}

// TestPythonWorkerKilledJobRescuedByGo: a Python worker killed with
// SIGKILL mid-job stops sending heartbeats; the Go workers' maintenance
// leader hands its job back, and another Python worker finishes it.
func TestPythonWorkerKilledJobRescuedByGo(t *testing.T) {
	needPython(t)
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	e, err := client.Enqueue(ctx, queue.Raw{Task: "py.hang_first", Args: json.RawMessage(`{"seconds": 600}`)}, &queue.Options{Queue: "python"})
	require.NoError(t, err)
	first, _ := startPythonWorker(t, db, "py-doomed", "-Q", "python", "--heartbeat-interval", "0.2")
	waitState(t, client, e.ID, queue.StateRunning)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()

	// A Go worker on another queue: only its maintenance leader matters here.
	reg := worker.NewRegistry()
	w, err := worker.New(db.Pool, reg, &worker.Config{Schema: db.Schema, Queues: []string{"go-only"},
		RescueAfter: time.Second, HeartbeatInterval: 200 * time.Millisecond, MaintenanceInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()
	j := waitState(t, client, e.ID, queue.StateAvailable)
	require.Contains(t, j.Errors[0].Error, "worker py-doomed stopped sending heartbeats while running this job (attempt 1); rescued by "+w.ID())

	second, logs := startPythonWorker(t, db, "py-heir", "-Q", "python")
	j = waitJob(t, client, e.ID)
	require.Equal(t, queue.StateSucceeded, j.State)
	require.JSONEq(t, `{"attempt":2,"worker":"py-heir"}`, string(j.Result))
	require.NoError(t, second.Process.Signal(syscall.SIGINT))
	require.NoError(t, second.Wait(), "output:\n%s", logs)
	var dead int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".workers WHERE id LIKE 'py-%'").Scan(&dead))
	require.Zero(t, dead, "the dead worker's row was removed by the leader, the live one's by itself")
}

// TestPythonWorkerGracefulShutdown: on SIGTERM the Python worker lets a
// short job finish and hands a long one back (attempt not counted) when
// its shutdown timeout passes, then removes its row; a Go worker then
// runs nothing twice and the handed-back job is claimable again. A
// second signal skips the wait.
func TestPythonWorkerGracefulShutdown(t *testing.T) {
	needPython(t)
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	short, err := client.Enqueue(ctx, queue.Raw{Task: "py.slow", Args: json.RawMessage(`{"seconds": 1}`)}, &queue.Options{Queue: "python"})
	require.NoError(t, err)
	long, err := client.Enqueue(ctx, queue.Raw{Task: "py.slow", Args: json.RawMessage(`{"seconds": 600}`)}, &queue.Options{Queue: "python"})
	require.NoError(t, err)
	proc, logs := startPythonWorker(t, db, "py-stop", "-Q", "python", "-c", "2", "--shutdown-timeout", "3")
	waitState(t, client, short.ID, queue.StateRunning)
	waitState(t, client, long.ID, queue.StateRunning)
	require.NoError(t, proc.Process.Signal(syscall.SIGTERM))
	require.NoError(t, proc.Wait(), "output:\n%s", logs)

	j, err := client.Job(ctx, short.ID)
	require.NoError(t, err)
	require.Equal(t, queue.StateSucceeded, j.State, "the short job finished during the shutdown")
	j, err = client.Job(ctx, long.ID)
	require.NoError(t, err)
	require.Equal(t, queue.StateAvailable, j.State, "the long job was handed back")
	require.Zero(t, j.Attempt, "its attempt is not counted")
	require.Empty(t, j.WorkerID)
	require.Empty(t, j.Errors)
	var rows int
	require.NoError(t, db.Pool.QueryRow(ctx, schema.Rewrite(db.Schema, "SELECT count(*) FROM pgq.workers")).Scan(&rows))
	require.Zero(t, rows)

	// Again, with a second signal: no waiting for the shutdown timeout.
	proc, logs = startPythonWorker(t, db, "py-hurry", "-Q", "python", "--shutdown-timeout", "600")
	waitState(t, client, long.ID, queue.StateRunning)
	start := time.Now()
	require.NoError(t, proc.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "stopping") }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, proc.Process.Signal(syscall.SIGTERM))
	require.NoError(t, proc.Wait(), "output:\n%s", logs)
	require.Less(t, time.Since(start), 20*time.Second)
	j = waitState(t, client, long.ID, queue.StateAvailable)
	require.Zero(t, j.Attempt)
}

// TestPythonWorkerDjangoNoListen: the worker started in a Django project
// (DJANGO_SETTINGS_MODULE, no --database-url: Django's database and
// PGQ_SCHEMA) with --no-listen finds jobs by polling, and a revoke with
// terminate reaches it through its heartbeat, the fallback for a lost
// notification.
func TestPythonWorkerDjangoNoListen(t *testing.T) {
	needPython(t)
	if err := exec.Command(systemPython, "-c", "import django").Run(); err != nil {
		t.Skipf("%s cannot import django (%v): apt-get install python3-django", systemPython, err)
	}
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	cmd, logs := startPythonWorkerEnv(t, db, "py-django", []string{"DJANGO_SETTINGS_MODULE=tests.settings",
		"PGQ_PY_DATABASE_URL=" + db.URL, "PGQ_PY_SCHEMA=" + db.Schema, "PGQ_DATABASE_URL=", "DATABASE_URL=", "PGQ_SCHEMA="},
		"-Q", "python", "--no-listen", "--poll-interval", "0.1", "--heartbeat-interval", "0.2")

	e, err := client.Enqueue(ctx, Report{Month: "2027-01", Rows: 1}, &queue.Options{Queue: "python"})
	require.NoError(t, err)
	var out ReportFile
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, e.AsyncResult().Get(wctx, &out), "output:\n%s", logs)
	require.Equal(t, "python", out.By)

	long, err := client.Enqueue(ctx, queue.Raw{Task: "py.slow", Args: json.RawMessage(`{"seconds": 600}`)}, &queue.Options{Queue: "python"})
	require.NoError(t, err)
	waitState(t, client, long.ID, queue.StateRunning)
	_, err = client.Revoke(ctx, long.ID, true)
	require.NoError(t, err)
	j := waitJob(t, client, long.ID)
	require.Equal(t, queue.StateCancelled, j.State)
	require.Equal(t, "revoked: terminated while running", j.Errors[len(j.Errors)-1].Error)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "output:\n%s", logs)
}
