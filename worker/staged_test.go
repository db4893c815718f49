package worker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// stagedLeft counts the rows still in pgq.staged_jobs.
func (b *bundle) stagedLeft(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		schema.Rewrite(b.db.Schema, "SELECT count(*) FROM pgq.staged_jobs")).Scan(&n))
	return n
}

// registerCountingAdd registers test.add (it returns a + b) and returns
// how many times each job ran, to be read once the workers have stopped.
func registerCountingAdd(b *bundle) map[int64]int {
	var mu sync.Mutex
	ran := map[int64]int{}
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) {
		mu.Lock()
		ran[job.ID]++
		mu.Unlock()
		return job.Args.A + job.Args.B, nil
	}, nil)
	return ran
}

// Jobs staged while no worker ran are moved into pgq.jobs by the next
// worker, keep their ids and options, take the queue's defaults for the
// options left unset, and run.
func TestStagedJobsAreMovedAndRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ran := registerCountingAdd(b)
	require.NoError(t, b.client.SetQueueDefaults(ctx, "default", queue.QueueDefaults{MaxRetries: queue.Ptr(9), TimeLimit: 7 * time.Second}))

	plain := b.enqueue(t, addArgs{A: 1, B: 2}, &queue.Options{Staged: true})
	tuned := b.enqueue(t, addArgs{A: 3, B: 4}, &queue.Options{Staged: true, Priority: queue.Ptr(8), MaxRetries: queue.Ptr(2),
		Headers: map[string]any{"k": "v"}, IgnoreResult: queue.Ptr(true)})
	staged := b.job(t, tuned)
	require.True(t, staged.Staged)
	require.Equal(t, 2, b.stagedLeft(t))

	w, err := worker.New(b.db.Pool, b.reg, b.config(func(c *worker.Config) { c.Burst = true; c.PollInterval = time.Minute }))
	require.NoError(t, err)
	require.NoError(t, w.Run(ctx))

	require.Zero(t, b.stagedLeft(t))
	require.Equal(t, map[int64]int{plain: 1, tuned: 1}, ran)
	p := b.job(t, plain)
	require.False(t, p.Staged)
	require.Equal(t, queue.StateSucceeded, p.State)
	require.JSONEq(t, "3", string(p.Result))
	require.Equal(t, 9, p.MaxRetries, "the queue's default")
	require.Equal(t, 7*time.Second, p.TimeLimit, "the queue's default")
	require.Equal(t, 0, p.Priority)
	j := b.job(t, tuned)
	require.Equal(t, queue.StateSucceeded, j.State)
	require.Equal(t, 8, j.Priority)
	require.Equal(t, 2, j.MaxRetries, "the job's own option wins over the queue's")
	require.Equal(t, 7*time.Second, j.TimeLimit)
	require.JSONEq(t, `{"k":"v"}`, string(j.Headers))
	require.Empty(t, j.Result, "ignore_result came along")
	require.True(t, j.CreatedAt.Equal(staged.CreatedAt), "created_at is the time of the staging")
}

// A staged row that breaks a rule of pgq.jobs (written by hand) stays
// behind, alone: the jobs staged around it are moved and run.
func TestStagedBadRowDoesNotHoldUpTheRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) { return nil, nil }, nil)

	before := b.enqueue(t, addArgs{}, &queue.Options{Staged: true})
	_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema,
		`INSERT INTO pgq.staged_jobs (task, queue, state, args, meta, ignore_result, run_at)
		 VALUES ('test.add', 'default', 'bogus', '{}', '{}', false, now())`))
	require.NoError(t, err)
	after := b.enqueue(t, addArgs{}, &queue.Options{Staged: true})

	w, err := worker.New(b.db.Pool, b.reg, b.config(func(c *worker.Config) { c.Burst = true; c.PollInterval = time.Minute }))
	require.NoError(t, err)
	require.NoError(t, w.Run(ctx))

	require.Equal(t, queue.StateSucceeded, b.job(t, before).State)
	require.Equal(t, queue.StateSucceeded, b.job(t, after).State)
	require.Equal(t, 1, b.stagedLeft(t), "the bad row stays staged for someone to fix")
}

// Several workers move staged jobs side by side: every job is moved and
// run exactly once.
func TestStagedJobsMovedOnceByConcurrentWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ran := registerCountingAdd(b)
	jobs := 2*worker.StagedBatch + worker.StagedBatch/2 // more than one move's batch
	ids := make([]int64, 0, jobs)
	tx, err := b.client.Begin(ctx)
	require.NoError(t, err)
	for i := range jobs {
		e, err := b.client.EnqueueTx(ctx, tx, addArgs{A: i}, &queue.Options{Staged: true})
		require.NoError(t, err)
		ids = append(ids, e.ID)
	}
	require.NoError(t, tx.Commit(ctx))

	var wg sync.WaitGroup
	for range 3 {
		w, err := worker.New(b.db.Pool, b.reg, b.config(func(c *worker.Config) { c.Burst = true; c.PollInterval = time.Minute }))
		require.NoError(t, err)
		wg.Go(func() { require.NoError(t, w.Run(ctx)) })
	}
	wg.Wait()

	require.Zero(t, b.stagedLeft(t))
	require.Len(t, ran, jobs)
	for _, id := range ids {
		require.Equal(t, 1, ran[id], "job %d", id)
	}
}

// A heap of staged jobs larger than one round of moves is moved round
// after round, between claims, without waiting for the next poll.
func TestStagedHeapMovedRoundAfterRound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	jobs := worker.StagedRound + worker.StagedBatch/2 // more than one round of moves
	var done atomic.Int32
	all := make(chan struct{})
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) {
		if int(done.Add(1)) == jobs {
			close(all)
		}
		return nil, nil
	}, nil)
	_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema,
		`INSERT INTO pgq.staged_jobs (task, queue, state, args, meta, ignore_result, run_at)
		 SELECT 'test.add', 'default', 'available', '{}', '{}', true, now() FROM generate_series(1, $1)`), jobs)
	require.NoError(t, err)

	b.start(t, b.config(func(c *worker.Config) { c.PollInterval = time.Minute; c.Concurrency = 100 }))
	select {
	case <-all:
	case <-time.After(waitTimeout):
		t.Fatalf("%d of %d staged jobs ran; the rest waited for the one-minute poll", done.Load(), jobs)
	}
	require.Zero(t, b.stagedLeft(t))
}
