package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitTimeout bounds every wait on an event; tests never sleep to sync.
const waitTimeout = 20 * time.Second

type bundle struct {
	db     *pgtest.DB
	client *queue.Client
	reg    *worker.Registry
	events *eventLog
}

func setup(t *testing.T) *bundle {
	t.Helper()
	d := newDB(t)
	c, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(t, err)
	return &bundle{db: d, client: c, reg: worker.NewRegistry(), events: newEventLog()}
}

func newDB(tb testing.TB) *pgtest.DB { return pgtest.New(tb) }

func testLogger() *slog.Logger {
	if os.Getenv("PGQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// config returns a Config for the test's schema that reports events to
// the bundle; mod adjusts it.
func (b *bundle) config(mod func(*worker.Config)) *worker.Config {
	cfg := &worker.Config{
		Schema:          b.db.Schema,
		Logger:          testLogger(),
		OnEvent:         b.events.add,
		ShutdownTimeout: 5 * time.Second,
		CancelGrace:     200 * time.Millisecond,
	}
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

// running is a worker started by a test.
type running struct {
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

// stop ends Run and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // let the cleanup see it too
		return err
	case <-time.After(waitTimeout):
		t.Fatal("worker did not stop")
		return nil
	}
}

// start runs a worker until the test ends.
func (b *bundle) start(t *testing.T, cfg *worker.Config) *running {
	t.Helper()
	w, err := worker.New(b.db.Pool, b.reg, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			require.NoError(t, err)
		case <-time.After(waitTimeout):
			t.Error("worker did not stop")
		}
	})
	return r
}

func (b *bundle) enqueue(t *testing.T, args queue.TaskArgs, opts *queue.Options) int64 {
	t.Helper()
	e, err := b.client.Enqueue(context.Background(), args, opts)
	require.NoError(t, err)
	return e.ID
}

func (b *bundle) job(t *testing.T, id int64) *queue.Job {
	t.Helper()
	j, err := b.client.Job(context.Background(), id)
	require.NoError(t, err)
	return j
}

// waitState waits for the event that stores the given state for job id.
func (b *bundle) waitState(t *testing.T, id int64, state string) worker.Event {
	t.Helper()
	return b.events.wait(t, func(e worker.Event) bool { return e.JobID == id && e.State == state })
}

// eventLog collects worker events and lets tests wait for one.
type eventLog struct {
	mu      sync.Mutex
	events  []worker.Event
	changed chan struct{}
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) add(e worker.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *eventLog) all() []worker.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]worker.Event(nil), l.events...)
}

func (l *eventLog) wait(t *testing.T, match func(worker.Event) bool) worker.Event {
	t.Helper()
	deadline := time.After(waitTimeout)
	seen := 0
	for {
		l.mu.Lock()
		for _, e := range l.events[seen:] {
			if match(e) {
				l.mu.Unlock()
				return e
			}
		}
		seen = len(l.events)
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no matching event within %s; events so far: %+v", waitTimeout, l.all())
		}
	}
}
