package tests

import (
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

// limitsSetup returns a database, a client and the worker binary.
func limitsSetup(t *testing.T) (*pgtest.DB, *queue.Client, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs worker binaries")
	}
	db := pgtest.New(t)
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	return db, client, buildExample(t, "worker")
}

// startWorkers starts n worker processes on the database and stops them
// (SIGTERM, then wait) when the test ends.
func startWorkers(t *testing.T, db *pgtest.DB, bin string, n int, extra ...string) {
	t.Helper()
	var cmds []*exec.Cmd
	for range n {
		args := append([]string{"-database-url", db.URL, "-schema", db.Schema, "-shutdown-timeout", "2s"}, extra...)
		cmds = append(cmds, startWorker(t, bin, args...))
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			if c.ProcessState == nil {
				_ = c.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, c := range cmds {
			if c.ProcessState == nil {
				_ = c.Wait()
			}
		}
	})
}

// queryInt runs a query that returns one integer.
func queryInt(t *testing.T, db *pgtest.DB, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// TestRateLimitGlobalAcrossProcesses: a rate limit of 50/s on a task, 3
// worker processes with 20 slots each and a backlog far larger than the
// limit allows: in 20 s between 950 and 1,050 jobs start (50 × 20 plus the
// bucket's burst of 5), none fails. Then the rate is raised to 200/s at
// run time, with the command's own path (SetLimit, which tells the workers
// on the control channel): the next 3 s start about 600 more.
func TestRateLimitGlobalAcrossProcesses(t *testing.T) {
	t.Parallel()
	db, client, bin := limitsSetup(t)
	ctx := context.Background()
	require.NoError(t, client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: worker.TaskNoop, Rate: "50/s"}))
	reqs := make([]queue.Request, 2600)
	for i := range reqs {
		reqs[i] = queue.Request{Args: queue.Raw{Task: worker.TaskNoop}}
	}
	_, err := client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)

	startWorkers(t, db, bin, 3, "-concurrency", "20")
	jobs := db.Schema + ".jobs"
	require.Eventually(t, func() bool { return queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE started_at IS NOT NULL") > 0 },
		30*time.Second, 5*time.Millisecond)
	var t0 time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT min(started_at) FROM "+jobs).Scan(&t0))
	window := 20 * time.Second
	// Wait for the window to pass in database time (the measure is taken
	// from started_at afterwards, so this wait only has to be long enough).
	require.Eventually(t, func() bool {
		var passed bool
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT now() > $1::timestamptz + interval '20 s 100 ms'", t0).Scan(&passed))
		return passed
	}, window+30*time.Second, 50*time.Millisecond)
	started := queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE started_at >= $1 AND started_at < $1::timestamptz + interval '20 s'", t0)
	workers := queryInt(t, db, "SELECT count(DISTINCT worker_id) FROM "+jobs+" WHERE started_at >= $1 AND started_at < $1::timestamptz + interval '20 s'", t0)
	t.Logf("rate 50/s, 3 processes: %d jobs started in the first 20 s (by %d workers)", started, workers)
	require.GreaterOrEqual(t, started, 950)
	require.LessOrEqual(t, started, 1050)
	require.Equal(t, 3, workers, "every process took part")
	require.Zero(t, queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE state = 'failed' OR attempt > 1"), "no job failed or was retried for the limit")

	// Raise the rate at run time.
	require.NoError(t, client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: worker.TaskNoop, Rate: "200/s"}))
	var t1 time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT now()").Scan(&t1))
	require.Eventually(t, func() bool {
		var passed bool
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT now() > $1::timestamptz + interval '3 s 100 ms'", t1).Scan(&passed))
		return passed
	}, 30*time.Second, 50*time.Millisecond)
	after := queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE started_at >= $1 AND started_at < $1::timestamptz + interval '3 s'", t1)
	t.Logf("rate raised to 200/s at run time: %d jobs started in the next 3 s (at 50/s it would be 150)", after)
	require.GreaterOrEqual(t, after, 500)
	require.LessOrEqual(t, after, 700)
	require.Zero(t, queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE state = 'failed' OR attempt > 1"))
}

// sampler records the most jobs seen running at once by a query polled
// as fast as the database answers.
func sampleMax(ctx context.Context, t *testing.T, db *pgtest.DB, sql string) (stop func() int) {
	var (
		mu   sync.Mutex
		most int
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			var n int
			if err := db.Pool.QueryRow(ctx, sql).Scan(&n); err == nil {
				mu.Lock()
				most = max(most, n)
				mu.Unlock()
			}
		}
	}()
	return func() int {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

// overlapMax is the most jobs of the query's set whose [started_at,
// finished_at] intervals cover one instant: at each job's start, how many
// had started and not finished. A job counts as running in the database
// until its completion is written, and limits count it so too.
func overlapMax(t *testing.T, db *pgtest.DB, where string) int {
	t.Helper()
	jobs := db.Schema + ".jobs"
	return queryInt(t, db, `SELECT coalesce(max(c), 0) FROM (
		SELECT (SELECT count(*) FROM `+jobs+` AS o WHERE `+where+` AND o.started_at <= j.started_at AND o.finished_at > j.started_at) AS c
		  FROM `+jobs+` AS j WHERE `+where+`) AS x`)
}

// TestConcurrencyLimitAcrossProcesses: a concurrency limit of 2 on a task
// and 3 worker processes with 10 slots each; never more than 2 of its jobs
// run at once (sampled while they run, and from the stored intervals
// afterwards), and every job succeeds on its first attempt.
func TestConcurrencyLimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	db, client, bin := limitsSetup(t)
	ctx := context.Background()
	require.NoError(t, client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: worker.TaskSleep, Concurrency: 2}))
	const n = 60
	reqs := make([]queue.Request, n)
	for i := range reqs {
		reqs[i] = queue.Request{Args: worker.SleepArgs{Seconds: 0.02}}
	}
	_, err := client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)
	jobs := db.Schema + ".jobs"
	stop := sampleMax(ctx, t, db, "SELECT count(*) FROM "+jobs+" WHERE state = 'running'")
	startWorkers(t, db, bin, 3, "-concurrency", "10")
	require.Eventually(t, func() bool { return queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE state = 'succeeded'") == n },
		time.Minute, 10*time.Millisecond)
	sampled := stop()
	stored := overlapMax(t, db, "true")
	workers := queryInt(t, db, "SELECT count(DISTINCT worker_id) FROM "+jobs)
	t.Logf("concurrency limit 2, 3 processes: most running at once %d (sampled), %d (from stored intervals); %d workers ran jobs", sampled, stored, workers)
	require.LessOrEqual(t, sampled, 2)
	require.LessOrEqual(t, stored, 2)
	require.Equal(t, 2, stored, "the limit is reached")
	require.Zero(t, queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE attempt <> 1"))
}

// TestTaskMutexAcrossProcesses: jobs with one mutex key, in 3 worker
// processes, never overlap; jobs with other keys run beside them.
func TestTaskMutexAcrossProcesses(t *testing.T) {
	t.Parallel()
	db, client, bin := limitsSetup(t)
	ctx := context.Background()
	var reqs []queue.Request
	for i := range 30 {
		reqs = append(reqs, queue.Request{Args: worker.SleepArgs{Seconds: 0.01}, Options: &queue.Options{MutexKey: "report:" + []string{"a", "b"}[i%2]}})
	}
	_, err := client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)
	startWorkers(t, db, bin, 3, "-concurrency", "5")
	jobs := db.Schema + ".jobs"
	require.Eventually(t, func() bool { return queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE state = 'succeeded'") == 30 },
		time.Minute, 10*time.Millisecond)
	a, b := overlapMax(t, db, "mutex_key = 'report:a'"), overlapMax(t, db, "mutex_key = 'report:b'")
	both := overlapMax(t, db, "true")
	t.Logf("mutex across 3 processes: most running at once per key %d and %d, both keys together %d", a, b, both)
	require.Equal(t, 1, a)
	require.Equal(t, 1, b)
	require.Zero(t, queryInt(t, db, "SELECT count(*) FROM "+jobs+" WHERE attempt <> 1"), "waiting for the mutex uses up no attempt")
}
