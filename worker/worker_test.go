package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

type addArgs struct {
	A int `json:"a"`
	B int `json:"b"`
}

func (addArgs) TaskName() string { return "test.add" }

type flakyArgs struct {
	Key string `json:"key"`
}

func (flakyArgs) TaskName() string { return "test.flaky" }

// fastRetry retries at once, so retry tests do not wait on backoff.
var fastRetry = &worker.TaskOptions{Backoff: func(int) time.Duration { return time.Millisecond }}

func TestSuccessStoresResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) {
		return map[string]int{"sum": job.Args.A + job.Args.B, "attempt": job.Attempt}, nil
	}, nil)
	r := b.start(t, b.config(nil))
	id := b.enqueue(t, addArgs{A: 2, B: 3}, nil)

	ev := b.waitState(t, id, queue.StateSucceeded)
	require.NoError(t, ev.Err)
	require.Equal(t, "test.add", ev.Task)
	j := b.job(t, id)
	require.Equal(t, queue.StateSucceeded, j.State)
	require.JSONEq(t, `{"sum": 5, "attempt": 1}`, string(j.Result))
	require.Equal(t, 1, j.Attempt)
	require.Equal(t, r.w.ID(), j.WorkerID)
	require.NotNil(t, j.FinishedAt)
	require.NotNil(t, j.StartedAt)
	require.Empty(t, j.Errors)
}

func TestIgnoreResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) {
		return "dropped", nil
	}, &worker.TaskOptions{IgnoreResult: true})
	b.start(t, b.config(nil))
	id := b.enqueue(t, addArgs{}, nil)
	b.waitState(t, id, queue.StateSucceeded)
	require.Empty(t, b.job(t, id).Result)
}

func TestRetriesThenSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		if job.Attempt < 3 {
			return nil, errors.New("flaky failure")
		}
		return "ok", nil
	}, fastRetry)
	b.start(t, b.config(nil))
	id := b.enqueue(t, flakyArgs{}, &queue.Options{MaxRetries: queue.Ptr(5)})

	b.waitState(t, id, queue.StateSucceeded)
	j := b.job(t, id)
	require.Equal(t, 3, j.Attempt)
	require.JSONEq(t, `"ok"`, string(j.Result))
	require.Len(t, j.Errors, 2)
	for i, e := range j.Errors {
		require.Equal(t, i+1, e.Attempt)
		require.Equal(t, "flaky failure", e.Error)
		require.False(t, e.At.IsZero())
	}
	// Each failure was reported as a retry before it ran again.
	var retries int
	for _, e := range b.events.all() {
		if e.JobID == id && e.State == queue.StateRetrying {
			retries++
		}
	}
	require.Equal(t, 2, retries)
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		return nil, errors.New("always fails")
	}, fastRetry)
	b.start(t, b.config(nil))
	id := b.enqueue(t, flakyArgs{}, &queue.Options{MaxRetries: queue.Ptr(2)})

	ev := b.waitState(t, id, queue.StateFailed)
	require.EqualError(t, ev.Err, "always fails")
	j := b.job(t, id)
	require.Equal(t, queue.StateFailed, j.State)
	require.Equal(t, 3, j.Attempt, "one run plus two retries")
	require.NotNil(t, j.FinishedAt)
	require.Len(t, j.Errors, 3)
	require.Equal(t, []int{1, 2, 3}, []int{j.Errors[0].Attempt, j.Errors[1].Attempt, j.Errors[2].Attempt})
}

func TestRetryAfterAndRetryIf(t *testing.T) {
	t.Parallel()
	b := setup(t)
	errFatal := errors.New("fatal input")
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		if job.Args.Key == "fatal" {
			return nil, errFatal
		}
		if job.Attempt == 1 {
			return nil, worker.Retry(time.Millisecond)
		}
		return job.Attempt, nil
	}, &worker.TaskOptions{RetryIf: func(err error) bool { return !errors.Is(err, errFatal) }})
	b.start(t, b.config(nil))
	retried := b.enqueue(t, flakyArgs{Key: "retry"}, nil)
	fatal := b.enqueue(t, flakyArgs{Key: "fatal"}, &queue.Options{MaxRetries: queue.Ptr(5)})

	b.waitState(t, retried, queue.StateSucceeded)
	j := b.job(t, retried)
	require.Equal(t, 2, j.Attempt)
	require.Contains(t, j.Errors[0].Error, "retry requested")

	b.waitState(t, fatal, queue.StateFailed)
	j = b.job(t, fatal)
	require.Equal(t, 1, j.Attempt, "RetryIf rejected the error: no retry")
	require.Equal(t, "fatal input", j.Errors[0].Error)
}

func TestPermanentFailsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		return nil, worker.Permanent(errors.New("bad input, will never work"))
	}, fastRetry)
	b.start(t, b.config(nil))
	id := b.enqueue(t, flakyArgs{}, &queue.Options{MaxRetries: queue.Ptr(5)})

	ev := b.waitState(t, id, queue.StateFailed)
	var perm *worker.PermanentError
	require.ErrorAs(t, ev.Err, &perm)
	j := b.job(t, id)
	require.Equal(t, 1, j.Attempt)
	require.Len(t, j.Errors, 1)
	require.Equal(t, "bad input, will never work", j.Errors[0].Error)
}

func TestSnoozeKeepsAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs atomic.Int32
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		if runs.Add(1) <= 2 {
			return nil, worker.Snooze(20 * time.Millisecond)
		}
		return job.Attempt, nil
	}, nil)
	b.start(t, b.config(nil))
	id := b.enqueue(t, flakyArgs{}, &queue.Options{MaxRetries: queue.Ptr(0)})

	b.waitState(t, id, queue.StateScheduled)
	b.waitState(t, id, queue.StateSucceeded)
	j := b.job(t, id)
	require.EqualValues(t, 3, runs.Load())
	require.Equal(t, 1, j.Attempt, "snoozes use no attempt")
	require.JSONEq(t, `1`, string(j.Result), "the handler saw attempt 1 each time")
	require.Empty(t, j.Errors)
}

func TestPanicRecordedWithStack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		panicInHandler()
		return nil, nil
	}, nil)
	b.start(t, b.config(nil))
	id := b.enqueue(t, flakyArgs{}, &queue.Options{MaxRetries: queue.Ptr(0)})

	ev := b.waitState(t, id, queue.StateFailed)
	var p *worker.PanicError
	require.ErrorAs(t, ev.Err, &p)
	j := b.job(t, id)
	require.Len(t, j.Errors, 1)
	require.Equal(t, "panic: boom", j.Errors[0].Error)
	require.Contains(t, j.Errors[0].Stack, "panicInHandler")

	// The worker survived: another job runs.
	id2 := b.enqueue(t, flakyArgs{}, &queue.Options{MaxRetries: queue.Ptr(0)})
	b.waitState(t, id2, queue.StateFailed)
}

func panicInHandler() { panic("boom") }

func TestHardTimeLimitWithHandlerIgnoringContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // let the stuck handler end with the test
	started := make(chan struct{}, 1)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		started <- struct{}{}
		<-release // ignores ctx on purpose
		return "too late", nil
	}, &worker.TaskOptions{TimeLimit: 100 * time.Millisecond})
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) {
		return job.Args.A + job.Args.B, nil
	}, nil)
	b.start(t, b.config(func(c *worker.Config) { c.Concurrency = 1; c.CancelGrace = 100 * time.Millisecond }))

	stuck := b.enqueue(t, flakyArgs{}, &queue.Options{MaxRetries: queue.Ptr(0)})
	<-started
	next := b.enqueue(t, addArgs{A: 1, B: 1}, nil)

	ev := b.waitState(t, stuck, queue.StateFailed)
	require.ErrorIs(t, ev.Err, worker.ErrTimeLimit)
	require.Contains(t, b.job(t, stuck).Errors[0].Error, "hard time limit of 100ms exceeded")
	// The only slot was taken back: the next job ran while the first
	// handler is still blocked.
	b.waitState(t, next, queue.StateSucceeded)
}

func TestHardTimeLimitCancelsContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		require.False(t, job.Deadline.IsZero())
		<-ctx.Done()
		if !errors.Is(context.Cause(ctx), worker.ErrTimeLimit) {
			return nil, errors.New("context ended for another reason")
		}
		return nil, ctx.Err()
	}, nil)
	b.start(t, b.config(nil))
	// The job's own limit (set by the producer) applies.
	id := b.enqueue(t, flakyArgs{}, &queue.Options{TimeLimit: 50 * time.Millisecond, MaxRetries: queue.Ptr(0)})
	ev := b.waitState(t, id, queue.StateFailed)
	require.ErrorIs(t, ev.Err, worker.ErrTimeLimit)
	require.Contains(t, b.job(t, id).Errors[0].Error, "hard time limit of 50ms exceeded")
}

func TestSoftTimeLimitObserved(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		require.False(t, job.SoftLimitExceeded())
		select {
		case <-job.SoftLimit():
			require.True(t, job.SoftLimitExceeded())
			return "cleaned up after the soft limit", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, &worker.TaskOptions{SoftTimeLimit: 50 * time.Millisecond, TimeLimit: time.Minute})
	b.start(t, b.config(nil))
	id := b.enqueue(t, flakyArgs{}, nil)
	b.waitState(t, id, queue.StateSucceeded)
	require.JSONEq(t, `"cleaned up after the soft limit"`, string(b.job(t, id).Result))
}

func TestUnknownTaskFailsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.RegisterBuiltins(b.reg)
	b.start(t, b.config(nil))
	id := b.enqueue(t, queue.Raw{Task: "nobody.handles.this"}, &queue.Options{MaxRetries: queue.Ptr(5)})

	ev := b.waitState(t, id, queue.StateFailed)
	require.ErrorIs(t, ev.Err, worker.ErrUnknownTask)
	j := b.job(t, id)
	require.Equal(t, 1, j.Attempt)
	require.Contains(t, j.Errors[0].Error, `"nobody.handles.this"`)
	require.Contains(t, j.Errors[0].Error, "no handler")
	require.Contains(t, j.Errors[0].Error, "pgq.echo")
}

func TestUndecodableArgsFailAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) {
		t.Error("the handler must not run")
		return nil, nil
	}, nil)
	b.start(t, b.config(nil))
	id := b.enqueue(t, queue.Raw{Task: "test.add", Args: json.RawMessage(`{"a": "not a number"}`)}, &queue.Options{MaxRetries: queue.Ptr(5)})

	ev := b.waitState(t, id, queue.StateFailed)
	require.ErrorIs(t, ev.Err, worker.ErrBadArgs)
	msg := b.job(t, id).Errors[0].Error
	require.Contains(t, msg, "test.add")
	require.Contains(t, msg, "cannot unmarshal")
}

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var mu sync.Mutex
	var order []int
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) {
		mu.Lock()
		order = append(order, job.Priority)
		mu.Unlock()
		return nil, nil
	}, nil)
	for _, p := range []int{3, 0, 9, 5, 1, 9, 7} {
		b.enqueue(t, addArgs{}, &queue.Options{Priority: queue.Ptr(p)})
	}
	w, err := worker.New(b.db.Pool, b.reg, b.config(func(c *worker.Config) { c.Concurrency = 1; c.Burst = true }))
	require.NoError(t, err)
	require.NoError(t, w.Run(context.Background()))
	require.Equal(t, []int{9, 9, 7, 5, 3, 1, 0}, order)
}

func TestScheduledJobNotRunEarly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) { return nil, nil }, nil)
	b.start(t, b.config(func(c *worker.Config) { c.PollInterval = time.Minute }))
	id := b.enqueue(t, addArgs{}, &queue.Options{Countdown: 300 * time.Millisecond})
	require.Equal(t, queue.StateScheduled, b.job(t, id).State)

	b.waitState(t, id, queue.StateSucceeded)
	j := b.job(t, id)
	require.False(t, j.StartedAt.Before(j.RunAt), "started %s before its run_at %s", j.StartedAt, j.RunAt)
}

func TestExpiredJobDiscarded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) {
		t.Error("an expired job must not run")
		return nil, nil
	}, nil)
	id := b.enqueue(t, addArgs{}, &queue.Options{ExpiresAt: time.Now().Add(-time.Second)})
	b.start(t, b.config(nil))

	ev := b.waitState(t, id, queue.StateCancelled)
	require.ErrorContains(t, ev.Err, "expired")
	j := b.job(t, id)
	require.Equal(t, queue.StateCancelled, j.State)
	require.Equal(t, 0, j.Attempt, "an expired job used no attempt")
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0].Error, "before a worker could start it")
}

func TestNotifyWakesIdleWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) { return nil, nil }, nil)
	b.start(t, b.config(func(c *worker.Config) { c.PollInterval = time.Minute }))

	// The first job proves the worker listens (it LISTENs before its first
	// fetch); it is then idle until the next poll, a minute away.
	first := b.enqueue(t, addArgs{}, nil)
	b.waitState(t, first, queue.StateSucceeded)

	start := time.Now()
	second := b.enqueue(t, addArgs{}, nil)
	b.waitState(t, second, queue.StateSucceeded)
	latency := time.Since(start)
	t.Logf("enqueue to stored success after NOTIFY: %s", latency)
	require.Less(t, latency, 10*time.Second, "woken by NOTIFY, not by the one-minute poll")
}

func TestQueuesAreRespected(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) { return job.Queue, nil }, nil)
	a := b.enqueue(t, addArgs{}, &queue.Options{Queue: "a"})
	bb := b.enqueue(t, addArgs{}, &queue.Options{Queue: "b"})
	c := b.enqueue(t, addArgs{}, &queue.Options{Queue: "c"})
	w, err := worker.New(b.db.Pool, b.reg, b.config(func(c *worker.Config) { c.Queues = []string{"a", "b"}; c.Burst = true }))
	require.NoError(t, err)
	require.NoError(t, w.Run(context.Background()))
	require.Equal(t, queue.StateSucceeded, b.job(t, a).State)
	require.Equal(t, queue.StateSucceeded, b.job(t, bb).State)
	require.Equal(t, queue.StateAvailable, b.job(t, c).State)
}

func TestBurstModeReturns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.RegisterBuiltins(b.reg)
	reqs := make([]queue.Request, 50)
	for i := range reqs {
		reqs[i] = queue.Request{Args: queue.Raw{Task: worker.TaskNoop}}
	}
	_, err := b.client.EnqueueMany(context.Background(), reqs)
	require.NoError(t, err)
	// A job scheduled for later does not keep a burst worker alive.
	later := b.enqueue(t, queue.Raw{Task: worker.TaskNoop}, &queue.Options{Countdown: time.Hour})

	w, err := worker.New(b.db.Pool, b.reg, b.config(func(c *worker.Config) { c.Burst = true; c.PollInterval = time.Minute }))
	require.NoError(t, err)
	require.NoError(t, w.Run(context.Background()))

	stats, err := b.client.QueueStats(context.Background())
	require.NoError(t, err)
	require.ElementsMatch(t, []queue.QueueStat{
		{Queue: "default", State: queue.StateSucceeded, Count: 50},
		{Queue: "default", State: queue.StateScheduled, Count: 1},
	}, stats)
	require.Equal(t, queue.StateScheduled, b.job(t, later).State)
	requireNoWorkerRow(t, b, w.ID())
}

func TestGracefulShutdownHandsJobsBack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		ignoresCtx bool
	}{{"handler honours ctx", false}, {"handler ignores ctx", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			started := make(chan int64, 3)
			worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
				started <- job.ID
				if tc.ignoresCtx {
					<-release
					return nil, errors.New("late")
				}
				<-ctx.Done()
				require.ErrorIs(t, context.Cause(ctx), worker.ErrShutdown)
				return nil, ctx.Err()
			}, nil)
			r := b.start(t, b.config(func(c *worker.Config) {
				c.ShutdownTimeout = 100 * time.Millisecond
				c.CancelGrace = 100 * time.Millisecond
			}))
			var ids []int64
			for range 3 {
				ids = append(ids, b.enqueue(t, flakyArgs{}, nil))
			}
			for range 3 {
				<-started
			}
			require.NoError(t, r.stop(t))

			for _, id := range ids {
				j := b.job(t, id)
				require.Equal(t, queue.StateAvailable, j.State, "job %d", id)
				require.Equal(t, 0, j.Attempt, "the interrupted attempt is not counted")
				require.Empty(t, j.Errors)
				require.Empty(t, j.WorkerID)
			}
			requireNoWorkerRow(t, b, r.w.ID())
		})
	}
}

func TestGracefulShutdownLetsJobsFinish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	started := make(chan struct{})
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		close(started)
		<-release
		return "finished during shutdown", nil
	}, nil)
	r := b.start(t, b.config(func(c *worker.Config) { c.ShutdownTimeout = time.Minute }))
	id := b.enqueue(t, flakyArgs{}, nil)
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop(t) }()
	close(release)
	require.NoError(t, <-stopped)
	j := b.job(t, id)
	require.Equal(t, queue.StateSucceeded, j.State)
	require.JSONEq(t, `"finished during shutdown"`, string(j.Result))
}

func TestCompleteTx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	table := pgx.Identifier{b.db.Schema, "side_effects"}.Sanitize()
	_, err := b.db.Pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (job_id bigint PRIMARY KEY)")
	require.NoError(t, err)

	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		tx, err := b.db.Pool.Begin(ctx)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" VALUES ($1)", job.ID); err != nil {
			return nil, err
		}
		if err := worker.CompleteTx(ctx, tx, job, map[string]string{"mode": job.Args.Key}); err != nil {
			return nil, err
		}
		switch job.Args.Key {
		case "commit":
			return "ignored: CompleteTx stored the result", tx.Commit(ctx)
		case "rollback-error":
			return nil, errors.New("changed my mind")
		default: // "rollback-nil": returns nil without committing
			return nil, nil
		}
	}, nil)
	b.start(t, b.config(nil))

	commit := b.enqueue(t, flakyArgs{Key: "commit"}, nil)
	rbErr := b.enqueue(t, flakyArgs{Key: "rollback-error"}, &queue.Options{MaxRetries: queue.Ptr(0)})
	rbNil := b.enqueue(t, flakyArgs{Key: "rollback-nil"}, &queue.Options{MaxRetries: queue.Ptr(0)})

	b.waitState(t, commit, queue.StateSucceeded)
	b.waitState(t, rbErr, queue.StateFailed)
	b.waitState(t, rbNil, queue.StateFailed)

	j := b.job(t, commit)
	require.Equal(t, queue.StateSucceeded, j.State)
	require.JSONEq(t, `{"mode": "commit"}`, string(j.Result))
	require.Empty(t, j.Errors)

	require.Equal(t, "changed my mind", b.job(t, rbErr).Errors[0].Error)
	require.Contains(t, b.job(t, rbNil).Errors[0].Error, "did not commit")

	rows, err := b.db.Pool.Query(ctx, "SELECT job_id FROM "+table+" ORDER BY job_id")
	require.NoError(t, err)
	written, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Equal(t, []int64{commit}, written, "only the committed transaction's write exists")
}

func TestCompleteTxOutsideWorker(t *testing.T) {
	t.Parallel()
	err := worker.CompleteTx(context.Background(), nil, &worker.Job[addArgs]{Info: &worker.Info{ID: 1}}, nil)
	require.ErrorContains(t, err, "not given to a handler by a worker")
}

func TestRescueJobsOfDeadWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		return job.Attempt, nil
	}, nil)
	again := b.enqueue(t, flakyArgs{Key: "again"}, &queue.Options{MaxRetries: queue.Ptr(3)})
	spent := b.enqueue(t, flakyArgs{Key: "spent"}, &queue.Options{MaxRetries: queue.Ptr(0)})
	orphan := b.enqueue(t, flakyArgs{Key: "orphan"}, &queue.Options{MaxRetries: queue.Ptr(3)})
	// A worker that died an hour ago, holding two jobs; a third job is held
	// by a worker that has no row at all.
	s := b.db.Schema
	_, err := b.db.Pool.Exec(ctx, `INSERT INTO `+s+`.workers (id, host, pid, queues, concurrency, started_at, heartbeat_at)
		VALUES ('dead-1', 'gone', 1, '{default}', 1, now() - interval '2 hours', now() - interval '1 hour')`)
	require.NoError(t, err)
	_, err = b.db.Pool.Exec(ctx, `UPDATE `+s+`.jobs SET state = 'running', attempt = 1, started_at = now() - interval '1 hour',
		worker_id = CASE WHEN id = $1 THEN 'never-registered' ELSE 'dead-1' END WHERE id = ANY($2)`,
		orphan, []int64{again, spent, orphan})
	require.NoError(t, err)

	b.start(t, b.config(func(c *worker.Config) {
		c.RescueAfter = 2 * time.Second
		c.HeartbeatInterval = 500 * time.Millisecond
		c.MaintenanceInterval = 50 * time.Millisecond
	}))

	b.waitState(t, again, queue.StateSucceeded)
	b.waitState(t, orphan, queue.StateSucceeded)
	j := b.job(t, again)
	require.Equal(t, 2, j.Attempt, "the rescued attempt counts")
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0].Error, "worker dead-1 stopped sending heartbeats")
	require.Contains(t, b.job(t, orphan).Errors[0].Error, "worker never-registered")

	j = b.job(t, spent)
	require.Equal(t, queue.StateFailed, j.State, "no attempt left")
	require.NotNil(t, j.FinishedAt)
	require.Contains(t, j.Errors[0].Error, "dead-1")

	// The dead worker's row goes once it holds nothing.
	require.Eventually(t, func() bool { return !workerRowExists(t, b, "dead-1") }, waitTimeout, 20*time.Millisecond)
}

func TestLiveWorkerIsNotRescued(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	started := make(chan struct{})
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[flakyArgs]) (any, error) {
		close(started)
		<-release
		return nil, nil
	}, nil)
	r := b.start(t, b.config(func(c *worker.Config) {
		c.RescueAfter = time.Second
		c.HeartbeatInterval = 100 * time.Millisecond
		c.MaintenanceInterval = 50 * time.Millisecond
	}))
	id := b.enqueue(t, flakyArgs{}, nil)
	<-started
	// Several heartbeat and rescue periods pass while the job runs.
	require.Never(t, func() bool { return b.job(t, id).State != queue.StateRunning }, 2*time.Second, 100*time.Millisecond)
	close(release)
	b.waitState(t, id, queue.StateSucceeded)
	require.Equal(t, 1, b.job(t, id).Attempt)
	require.True(t, workerRowExists(t, b, r.w.ID()))
}

func TestBuiltins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.RegisterBuiltins(b.reg)
	b.start(t, b.config(nil))
	noop := b.enqueue(t, queue.Raw{Task: worker.TaskNoop}, nil)
	echo := b.enqueue(t, queue.Raw{Task: worker.TaskEcho, Args: json.RawMessage(`{"x": [1, 2]}`)}, nil)
	sleep := b.enqueue(t, worker.SleepArgs{Seconds: 0.01}, nil)
	fail := b.enqueue(t, worker.FailArgs{Message: "as asked", Permanent: true}, nil)
	interrupted := b.enqueue(t, worker.SleepArgs{Seconds: 60}, &queue.Options{TimeLimit: 50 * time.Millisecond, MaxRetries: queue.Ptr(0)})

	b.waitState(t, noop, queue.StateSucceeded)
	b.waitState(t, echo, queue.StateSucceeded)
	b.waitState(t, sleep, queue.StateSucceeded)
	b.waitState(t, fail, queue.StateFailed)
	b.waitState(t, interrupted, queue.StateFailed)
	require.JSONEq(t, `null`, string(b.job(t, noop).Result))
	require.JSONEq(t, `{"x": [1, 2]}`, string(b.job(t, echo).Result))
	require.JSONEq(t, `{"slept": 0.01}`, string(b.job(t, sleep).Result))
	require.Equal(t, "as asked", b.job(t, fail).Errors[0].Error)
	require.Equal(t, 1, b.job(t, fail).Attempt)
	require.Contains(t, b.job(t, interrupted).Errors[0].Error, "hard time limit")
}

func TestRunRequiresMigratedSchema(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, err := worker.New(b.db.Pool, b.reg, &worker.Config{Schema: "pgq_not_there", Logger: testLogger()})
	require.NoError(t, err)
	err = w.Run(context.Background())
	require.ErrorIs(t, err, queue.ErrNotMigrated)
	require.ErrorContains(t, err, "pgq migrate up --schema pgq_not_there")
	require.ErrorContains(t, w.Run(context.Background()), "Run was called twice")
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		cfg  worker.Config
		want string
	}{
		{worker.Config{Concurrency: -1}, "Config.Concurrency cannot be negative"},
		{worker.Config{PollInterval: -time.Second}, "Config.PollInterval cannot be negative"},
		{worker.Config{Schema: "Bad-Name"}, "Config.Schema"},
		{worker.Config{Queues: []string{"ok", "-bad"}}, "Config.Queues"},
		{worker.Config{HeartbeatInterval: 20 * time.Second, RescueAfter: 30 * time.Second}, "HeartbeatInterval"},
		{worker.Config{Concurrency: 5, Autoscale: &worker.Autoscale{Min: 1, Max: 2}}, "Config.Concurrency and Config.Autoscale cannot both be set"},
		{worker.Config{Autoscale: &worker.Autoscale{Min: 0, Max: 2}}, "Config.Autoscale.Min must be at least 1"},
		{worker.Config{Autoscale: &worker.Autoscale{Min: 3, Max: 2}}, "Config.Autoscale.Max (2) cannot be less than Autoscale.Min (3)"},
		{worker.Config{Autoscale: &worker.Autoscale{Min: 1, Max: 2, IdleAfter: -time.Second}}, "Config.Autoscale.IdleAfter cannot be negative"},
	} {
		_, err := worker.New(b.db.Pool, b.reg, &tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
	_, err := worker.New(nil, b.reg, nil)
	require.ErrorContains(t, err, "pool is nil")
	_, err = worker.New(b.db.Pool, nil, nil)
	require.ErrorContains(t, err, "registry is nil")
}

func TestRegistryPanicsOnMisuse(t *testing.T) {
	t.Parallel()
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	require.PanicsWithValue(t, "worker: task pgq.noop is registered twice", func() {
		reg.HandleFunc(worker.TaskNoop, func(context.Context, *worker.Job[json.RawMessage]) (any, error) { return nil, nil }, nil)
	})
	require.Panics(t, func() { reg.Handle("bad name!", worker.HandlerFunc(nil), nil) })
	require.Panics(t, func() {
		worker.Register(reg, func(context.Context, *worker.Job[addArgs]) (any, error) { return nil, nil },
			&worker.TaskOptions{TimeLimit: time.Second, SoftTimeLimit: 2 * time.Second})
	})
	require.True(t, slices.Equal([]string{"pgq.echo", "pgq.fail", "pgq.noop", "pgq.sleep"}, reg.Tasks()))
}

func workerRowExists(t *testing.T, b *bundle, id string) bool {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+b.db.Schema+".workers WHERE id = $1", id).Scan(&n))
	return n > 0
}

func requireNoWorkerRow(t *testing.T, b *bundle, id string) {
	t.Helper()
	require.False(t, workerRowExists(t, b, id), "worker %s left its row behind", id)
}
