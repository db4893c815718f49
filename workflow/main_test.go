package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// waitTimeout bounds every wait; tests never sleep to synchronise.
const waitTimeout = 30 * time.Second

type bundle struct {
	db     *pgtest.DB
	client *queue.Client
	reg    *worker.Registry
}

func setup(t testing.TB) *bundle {
	t.Helper()
	d := pgtest.New(t)
	c, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(t, err)
	b := &bundle{db: d, client: c, reg: worker.NewRegistry()}
	registerTestTasks(b.reg)
	return b
}

func testLogger() *slog.Logger {
	if os.Getenv("PGQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs a worker on the bundle's schema until the test ends.
func (b *bundle) start(t *testing.T, mod func(*worker.Config)) *worker.Worker {
	t.Helper()
	cfg := &worker.Config{
		Schema: b.db.Schema, Logger: testLogger(), Concurrency: 8,
		ShutdownTimeout: 5 * time.Second, CancelGrace: 200 * time.Millisecond,
		PollInterval: 100 * time.Millisecond,
	}
	if mod != nil {
		mod(cfg)
	}
	w, err := worker.New(b.db.Pool, b.reg, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitTimeout):
			t.Error("worker did not stop")
		}
	})
	return w
}

func (b *bundle) apply(t *testing.T, wf *workflow.Signature) *workflow.Result {
	t.Helper()
	r, err := workflow.Apply(context.Background(), b.client, wf)
	require.NoError(t, err)
	r.PollInterval = 100 * time.Millisecond
	return r
}

// get waits for the workflow's result.
func get(t *testing.T, r *workflow.Result, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return r.Get(ctx, out)
}

// exec runs SQL against the bundle's schema.
func (b *bundle) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), schema.Rewrite(b.db.Schema, sql), args...)
	require.NoError(t, err)
}

// scalar runs a one-value query against the bundle's schema.
func scalar[T any](t testing.TB, b *bundle, sql string, args ...any) T {
	t.Helper()
	var v T
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), schema.Rewrite(b.db.Schema, sql), args...).Scan(&v))
	return v
}

// Test tasks.

// add returns A+B, plus the parent result (a number) when there is one.
type add struct {
	A int `json:"a"`
	B int `json:"b"`
}

func (add) TaskName() string { return "test.add" }

// sum returns the sum of the list it receives as its parent result.
type sum struct{}

func (sum) TaskName() string { return "test.sum" }

// record appends what it is given (its parent result) to a log table row
// keyed by Key, so that tests can count runs.
type record struct {
	Key string `json:"key"`
}

func (record) TaskName() string { return "test.record" }

// flaky fails its first Fails attempts, then returns N.
type flaky struct {
	N     int `json:"n"`
	Fails int `json:"fails"`
}

func (flaky) TaskName() string { return "test.flaky" }

// boom always fails, permanently when Permanent is set.
type boom struct {
	Permanent bool `json:"permanent"`
}

func (boom) TaskName() string { return "test.boom" }

// square returns its args (a number) squared: the task of Map and Chunks.
type square int

func (square) TaskName() string { return "test.square" }

// runs counts handler runs per key, across tests (keys are unique).
var runs sync.Map // string -> *[]json.RawMessage

func recorded(key string) []json.RawMessage {
	v, ok := runs.Load(key)
	if !ok {
		return nil
	}
	l := v.(*recordLog)
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]json.RawMessage(nil), l.items...)
}

type recordLog struct {
	mu    sync.Mutex
	items []json.RawMessage
	added chan struct{}
}

func logFor(key string) *recordLog {
	v, _ := runs.LoadOrStore(key, &recordLog{added: make(chan struct{}, 1000)})
	return v.(*recordLog)
}

func registerTestTasks(reg *worker.Registry) {
	worker.Register(reg, func(_ context.Context, job *worker.Job[add]) (any, error) {
		total := job.Args.A + job.Args.B
		var parent int
		switch err := job.ParentResult(&parent); {
		case err == nil:
			total += parent
		case !errorsIs(err, worker.ErrNoParentResult):
			return nil, err
		}
		return total, nil
	}, nil)
	worker.Register(reg, func(_ context.Context, job *worker.Job[sum]) (any, error) {
		var parts []int
		if err := job.ParentResult(&parts); err != nil {
			return nil, err
		}
		total := 0
		for _, p := range parts {
			total += p
		}
		return total, nil
	}, nil)
	worker.Register(reg, func(_ context.Context, job *worker.Job[record]) (any, error) {
		var in json.RawMessage
		if err := job.ParentResult(&in); err != nil && !errorsIs(err, worker.ErrNoParentResult) {
			return nil, err
		}
		l := logFor(job.Args.Key)
		l.mu.Lock()
		l.items = append(l.items, in)
		l.mu.Unlock()
		l.added <- struct{}{}
		return in, nil
	}, nil)
	worker.Register(reg, func(_ context.Context, job *worker.Job[flaky]) (any, error) {
		if job.Attempt <= job.Args.Fails {
			return nil, fmt.Errorf("flaky: attempt %d fails", job.Attempt)
		}
		return job.Args.N, nil
	}, &worker.TaskOptions{Backoff: func(int) time.Duration { return time.Millisecond }})
	worker.Register(reg, func(_ context.Context, job *worker.Job[boom]) (any, error) {
		if job.Args.Permanent {
			return nil, worker.Permanent(fmt.Errorf("boom"))
		}
		return nil, fmt.Errorf("boom at attempt %d", job.Attempt)
	}, &worker.TaskOptions{Backoff: func(int) time.Duration { return time.Millisecond }})
	worker.Register(reg, func(_ context.Context, job *worker.Job[square]) (any, error) {
		return int(job.Args) * int(job.Args), nil
	}, nil)
}

var keys atomic.Int64

// newKey returns a record key no other test (or run of -count) uses.
func newKey(t *testing.T) string { return fmt.Sprintf("%s/%d", t.Name(), keys.Add(1)) }

// waitRecorded waits until key has n records and returns them.
func waitRecorded(t *testing.T, key string, n int) []json.RawMessage {
	t.Helper()
	l := logFor(key)
	deadline := time.After(waitTimeout)
	for {
		if got := recorded(key); len(got) >= n {
			return got
		}
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("%s: %d records, want %d", key, len(recorded(key)), n)
		}
	}
}
