package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// gauge counts handlers running at once, per key, and remembers the most.
type gauge struct {
	mu   sync.Mutex
	now  map[string]int
	most map[string]int
}

func newGauge() *gauge { return &gauge{now: map[string]int{}, most: map[string]int{}} }

func (g *gauge) enter(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now[key]++
	g.most[key] = max(g.most[key], g.now[key])
}

func (g *gauge) leave(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now[key]--
}

func (g *gauge) max(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most[key]
}

// waitDone waits until every one of ids has succeeded.
func (b *bundle) waitDone(t *testing.T, ids []int64) {
	t.Helper()
	for _, id := range ids {
		b.waitState(t, id, "succeeded")
	}
}

// attempts returns the largest attempt among the schema's jobs.
func (b *bundle) maxAttempt(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), schema.Rewrite(b.db.Schema, "SELECT coalesce(max(attempt), 0) FROM pgq.jobs")).Scan(&n))
	return n
}

func TestConcurrencyLimitAcrossWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	g := newGauge()
	b.reg.HandleFunc("limited", func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		g.enter("task")
		defer g.leave("task")
		time.Sleep(15 * time.Millisecond)
		return nil, nil
	}, nil)
	b.reg.HandleFunc("free", func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		g.enter("free")
		defer g.leave("free")
		time.Sleep(15 * time.Millisecond)
		return nil, nil
	}, nil)
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: "limited", Concurrency: 2}))
	var ids []int64
	for range 30 {
		ids = append(ids, b.enqueue(t, queue.Raw{Task: "limited"}, nil))
		ids = append(ids, b.enqueue(t, queue.Raw{Task: "free"}, nil))
	}
	for range 3 {
		b.start(t, b.config(func(c *worker.Config) { c.Concurrency = 5 }))
	}
	b.waitDone(t, ids)
	require.LessOrEqual(t, g.max("task"), 2, "the concurrency limit was exceeded")
	require.Equal(t, 2, g.max("task"), "the limit should be reached with 30 jobs and 15 slots")
	require.Greater(t, g.max("free"), 2, "unlimited jobs are not held back")
	require.Equal(t, 1, b.maxAttempt(t), "waiting on a limit uses up no attempt")
	t.Logf("most running at once: limited task %d, free task %d", g.max("task"), g.max("free"))
}

func TestQueueConcurrencyLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	g := newGauge()
	b.reg.HandleFunc("q.job", func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		g.enter(job.Queue)
		defer g.leave(job.Queue)
		time.Sleep(10 * time.Millisecond)
		return nil, nil
	}, nil)
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitQueue, Name: "slow", Concurrency: 3}))
	var ids []int64
	for range 30 {
		ids = append(ids, b.enqueue(t, queue.Raw{Task: "q.job"}, &queue.Options{Queue: "slow"}))
		ids = append(ids, b.enqueue(t, queue.Raw{Task: "q.job"}, &queue.Options{Queue: "fast"}))
	}
	for range 2 {
		b.start(t, b.config(func(c *worker.Config) { c.Concurrency = 10; c.Queues = []string{"slow", "fast"} }))
	}
	b.waitDone(t, ids)
	require.Equal(t, 3, g.max("slow"))
	require.Greater(t, g.max("fast"), 3)
}

func TestTaskMutexByArgs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGauge()
	var overlaps atomic.Int64
	b.reg.HandleFunc("sync.user", func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		var a struct {
			User string `json:"user"`
		}
		_ = json.Unmarshal(job.Args, &a)
		g.enter(a.User)
		defer g.leave(a.User)
		if g.max(a.User) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(10 * time.Millisecond)
		return nil, nil
	}, &worker.TaskOptions{MutexArgs: []string{"user"}})
	var ids []int64
	for i := range 24 {
		user := []string{"ann", "bob", "cy"}[i%3]
		ids = append(ids, b.enqueue(t, queue.Raw{Task: "sync.user", Args: json.RawMessage(`{"user":"` + user + `","n":` + itoa(i) + `}`)}, nil))
	}
	for range 3 {
		b.start(t, b.config(func(c *worker.Config) { c.Concurrency = 4 }))
	}
	b.waitDone(t, ids)
	require.Zero(t, overlaps.Load(), "two jobs of one user ran at once")
	for _, u := range []string{"ann", "bob", "cy"} {
		require.Equal(t, 1, g.max(u))
	}
	require.Equal(t, 1, b.maxAttempt(t))
	var key string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), schema.Rewrite(b.db.Schema, "SELECT mutex_key FROM pgq.jobs WHERE id = $1"), ids[0]).Scan(&key))
	require.Equal(t, `sync.user(user="ann")`, key)
}

func TestMutexKeyFromEnqueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGauge()
	// Two tasks share one mutex key: they exclude each other.
	for _, name := range []string{"a.task", "b.task"} {
		b.reg.HandleFunc(name, func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) {
			g.enter("k")
			defer g.leave("k")
			time.Sleep(5 * time.Millisecond)
			return nil, nil
		}, nil)
	}
	var ids []int64
	for i := range 20 {
		ids = append(ids, b.enqueue(t, queue.Raw{Task: []string{"a.task", "b.task"}[i%2]}, &queue.Options{MutexKey: "shared"}))
	}
	for range 2 {
		b.start(t, b.config(func(c *worker.Config) { c.Concurrency = 5 }))
	}
	b.waitDone(t, ids)
	require.Equal(t, 1, g.max("k"))
}

func TestRateLimitSpacesStarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.reg.HandleFunc("rated", func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) { return nil, nil }, nil)
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: "rated", Rate: "20/s"}))
	var ids []int64
	for range 21 {
		ids = append(ids, b.enqueue(t, queue.Raw{Task: "rated"}, nil))
	}
	for range 2 {
		b.start(t, b.config(func(c *worker.Config) { c.Concurrency = 10 }))
	}
	b.waitDone(t, ids)
	// Two tokens at once (the default burst), then one every 50 ms: 19
	// more take 0.95 s. (A burst of 1 would lose the time a busy machine
	// wakes the worker late; the default absorbs up to one interval.)
	var span float64
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema,
		"SELECT extract(epoch FROM max(started_at) - min(started_at)) FROM pgq.jobs")).Scan(&span))
	var gaps string
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema,
		"SELECT string_agg(round(extract(epoch FROM d) * 1000)::text || ' ' || w, ', ') FROM (SELECT started_at - lag(started_at) OVER (ORDER BY started_at) AS d, worker_id AS w FROM pgq.jobs) x")).Scan(&gaps))
	// Never faster than the rate; slower only by the wake-up lateness the
	// burst cannot absorb on a loaded machine (the 20 s test in tests/
	// measures accuracy).
	// (started_at is written a few ms after the bucket's accounting, so
	// allow that much jitter on the lower bound.)
	require.GreaterOrEqual(t, span, 0.9, "21 jobs at 20/s start over at least 0.95 s; gaps in ms: %s", gaps)
	require.Less(t, span, 2.0, "gaps in ms: %s", gaps)
	require.Equal(t, 1, b.maxAttempt(t))

	// Changed at run time: the next batch goes ten times faster.
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: "rated", Rate: "200/s"}))
	_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, "DELETE FROM pgq.jobs"))
	require.NoError(t, err)
	ids = ids[:0]
	for range 21 {
		ids = append(ids, b.enqueue(t, queue.Raw{Task: "rated"}, nil))
	}
	b.waitDone(t, ids)
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema,
		"SELECT extract(epoch FROM max(started_at) - min(started_at)) FROM pgq.jobs")).Scan(&span))
	// The bucket is empty, then fills at 200/s up to 20 (100 ms worth):
	// 21 jobs take about 0.1 s, not the 1 s of the old rate.
	require.Less(t, span, 0.6, "21 jobs at 200/s start within 0.1 s or so, far from the 0.95 s of 20/s")
}

func TestLimitedJobsDoNotSpin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.reg.HandleFunc("slowrate", func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) { return nil, nil }, nil)
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: "slowrate", Rate: "1/h", Burst: 1}))
	first := b.enqueue(t, queue.Raw{Task: "slowrate"}, nil)
	second := b.enqueue(t, queue.Raw{Task: "slowrate"}, nil)

	// The worker's pool counts its limited claims.
	var claims atomic.Int64
	cfg := b.db.Pool.Config().Copy()
	cfg.ConnConfig.Tracer = countTracer{n: &claims, substr: "claim_limited"}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	w, err := worker.New(pool, b.reg, b.config(nil))
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	b.waitState(t, first, "succeeded")
	// The second job waits an hour for its token: the worker must sleep,
	// not poll. (Measuring an absence: there is no event to wait on.)
	before := claims.Load()
	time.Sleep(500 * time.Millisecond)
	require.LessOrEqual(t, claims.Load()-before, int64(1), "a job over its rate limit must not be polled for")
	require.Equal(t, "available", b.job(t, second).State)
}

// countTracer counts the statements whose SQL contains substr.
type countTracer struct {
	n      *atomic.Int64
	substr string
}

func (c countTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, c.substr) {
		c.n.Add(1)
	}
	return ctx
}

func (countTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestLimitedQueuePaused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.reg.HandleFunc("p.job", func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) { return nil, nil }, nil)
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitQueue, Name: "slow", Concurrency: 1}))
	require.NoError(t, b.client.PauseQueue(ctx, "slow"))
	held := b.enqueue(t, queue.Raw{Task: "p.job"}, &queue.Options{Queue: "slow"})
	b.start(t, b.config(func(c *worker.Config) { c.Queues = []string{"slow", "fast"} }))
	// A job of the other queue runs: the worker has claimed since.
	b.waitState(t, b.enqueue(t, queue.Raw{Task: "p.job"}, &queue.Options{Queue: "fast"}), "succeeded")
	b.waitState(t, b.enqueue(t, queue.Raw{Task: "p.job"}, &queue.Options{Queue: "fast"}), "succeeded")
	require.Equal(t, queue.StateAvailable, b.job(t, held).State, "a paused limited queue is not claimed from")
	require.NoError(t, b.client.ResumeQueue(ctx, "slow"))
	b.waitState(t, held, "succeeded")
}

func TestLimitedTaskLeftToWorkersThatKnowIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	noop := func(ctx context.Context, job *worker.Job[json.RawMessage]) (any, error) { return nil, nil }
	other := worker.NewRegistry()
	other.HandleFunc("o.task", noop, nil)
	b.reg.HandleFunc("k.task", noop, nil)
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: "k.task", Concurrency: 1}))
	limited := b.enqueue(t, queue.Raw{Task: "k.task"}, nil)

	w, err := worker.New(b.db.Pool, other, b.config(nil))
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(rctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	b.waitState(t, b.enqueue(t, queue.Raw{Task: "o.task"}, nil), "succeeded")
	b.waitState(t, b.enqueue(t, queue.Raw{Task: "o.task"}, nil), "succeeded")
	require.Equal(t, queue.StateAvailable, b.job(t, limited).State, "a worker without a handler leaves a limited job alone")

	b.start(t, b.config(nil))
	b.waitState(t, limited, "succeeded")
}
