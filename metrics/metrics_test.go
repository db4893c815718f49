package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/metrics"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const waitTimeout = 20 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// scrape fetches the handler's text output and parses it.
func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/plain") // the text format, not protobuf
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err, "handler output:\n%s", body)
	return fams, string(body)
}

// value returns the value of the sample of family name whose labels
// include want (a counter or gauge value, or a histogram's count), and
// whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func requireValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, want float64, labels ...string) {
	t.Helper()
	l := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	got, ok := value(fams, name, l)
	require.True(t, ok, "no sample %s%v", name, l)
	require.Equal(t, want, got, "%s%v", name, l)
}

// events counts the worker's stored outcomes and lets a test wait for n.
type events struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func newEvents() *events { return &events{changed: make(chan struct{})} }

func (e *events) add(worker.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *events) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		e.mu.Lock()
		got, changed := e.n, e.changed
		e.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waited for %d worker events, saw %d", n, got)
		}
	}
}

// runWorker runs w until the returned stop is called (or the test ends).
func runWorker(t *testing.T, w *worker.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(waitTimeout):
				t.Error("worker did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestWorkerAndClusterMetrics runs known jobs (3 succeed, 2 fail, 1 fails
// once and is retried, then succeeds) and reads every figure back through
// the handler's text output: the worker's own counters and histograms, the
// client's enqueue counter, and the collector's table counts.
func TestWorkerAndClusterMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := pgtest.New(t)

	cm := metrics.NewClientMetrics()
	client, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema, OnEnqueued: cm.Enqueued})
	require.NoError(t, err)

	reg := worker.NewRegistry()
	reg.HandleFunc("ok", func(context.Context, *worker.Job[json.RawMessage]) (any, error) { return "done", nil }, nil)
	reg.HandleFunc("bad", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		return nil, worker.Permanent(errors.New("broken on purpose"))
	}, nil)
	reg.HandleFunc("flaky", func(_ context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		if job.Attempt == 1 {
			return nil, worker.Retry(time.Millisecond)
		}
		return "second time lucky", nil
	}, nil)

	wm := metrics.NewWorkerMetrics()
	ev := newEvents()
	w, err := worker.New(d.Pool, reg, &worker.Config{
		Schema: d.Schema, Logger: quietLogger(), Observer: wm, OnEvent: ev.add,
	})
	require.NoError(t, err)
	collector, err := metrics.NewCollector(d.Pool, d.Schema, &metrics.CollectorConfig{Logger: quietLogger(), CountFinished: true})
	require.NoError(t, err)
	registry, err := metrics.NewRegistry(cm, wm, collector)
	require.NoError(t, err)
	h := metrics.Handler(registry)

	for _, task := range []string{"ok", "ok", "ok", "bad", "bad", "flaky"} {
		_, err := client.Enqueue(ctx, queue.Raw{Task: task}, nil)
		require.NoError(t, err)
	}
	// Jobs nobody works on: two waiting in a paused queue, one scheduled.
	for range 2 {
		_, err := client.Enqueue(ctx, queue.Raw{Task: "ok"}, &queue.Options{Queue: "idle"})
		require.NoError(t, err)
	}
	_, err = client.Enqueue(ctx, queue.Raw{Task: "ok"}, &queue.Options{Queue: "idle", Countdown: time.Hour})
	require.NoError(t, err)
	_, err = d.Pool.Exec(ctx, fmt.Sprintf("SELECT %s.pause_queue('idle')", d.Schema))
	require.NoError(t, err)

	stop := runWorker(t, w)
	ev.wait(t, 7) // 6 jobs, one of them twice

	fams, text := scrape(t, h)
	t.Logf("scrape while the worker runs:\n%s", grepPGQ(text))

	// The worker's own view.
	requireValue(t, fams, "pgq_worker_attempts_total", 3, "queue", "default", "task", "ok", "outcome", "succeeded")
	requireValue(t, fams, "pgq_worker_attempts_total", 2, "queue", "default", "task", "bad", "outcome", "failed")
	requireValue(t, fams, "pgq_worker_attempts_total", 1, "queue", "default", "task", "flaky", "outcome", "retried")
	requireValue(t, fams, "pgq_worker_attempts_total", 1, "queue", "default", "task", "flaky", "outcome", "succeeded")
	requireValue(t, fams, "pgq_worker_run_seconds", 3, "queue", "default", "task", "ok")
	requireValue(t, fams, "pgq_worker_run_seconds", 2, "queue", "default", "task", "flaky")
	requireValue(t, fams, "pgq_worker_wait_seconds", 3, "queue", "default", "task", "ok")
	requireValue(t, fams, "pgq_worker_wait_seconds", 2, "queue", "default", "task", "bad")
	requireValue(t, fams, "pgq_worker_wait_seconds", 2, "queue", "default", "task", "flaky")

	// The client's.
	requireValue(t, fams, "pgq_enqueued_total", 3, "queue", "default", "task", "ok")
	requireValue(t, fams, "pgq_enqueued_total", 3, "queue", "idle", "task", "ok")
	requireValue(t, fams, "pgq_enqueued_total", 1, "queue", "default", "task", "flaky")

	// The tables'.
	requireValue(t, fams, "pgq_up", 1)
	requireValue(t, fams, "pgq_jobs", 3, "queue", "default", "task", "ok", "state", "succeeded")
	requireValue(t, fams, "pgq_jobs", 2, "queue", "default", "task", "bad", "state", "failed")
	requireValue(t, fams, "pgq_jobs", 1, "queue", "default", "task", "flaky", "state", "succeeded")
	requireValue(t, fams, "pgq_jobs", 2, "queue", "idle", "task", "ok", "state", "available")
	requireValue(t, fams, "pgq_jobs", 1, "queue", "idle", "task", "ok", "state", "scheduled")
	requireValue(t, fams, "pgq_queue_paused", 1, "queue", "idle")
	requireValue(t, fams, "pgq_workers_alive", 1)
	requireValue(t, fams, "pgq_workers_stale", 0)
	requireValue(t, fams, "pgq_worker_slots", worker.ConcurrencyDefault)
	oldest, ok := value(fams, "pgq_queue_oldest_runnable_seconds", map[string]string{"queue": "idle"})
	require.True(t, ok)
	require.GreaterOrEqual(t, oldest, 0.0)

	stop()
	fams, _ = scrape(t, h)
	requireValue(t, fams, "pgq_workers_alive", 0)
	requireValue(t, fams, "pgq_worker_slots", 0)
}

// TestCollectorCountsFinishedOnlyWhenAsked: by default pgq_jobs holds
// the unfinished states only.
func TestCollectorCountsFinishedOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := pgtest.New(t)
	client, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(t, err)
	e, err := client.Enqueue(ctx, queue.Raw{Task: "t"}, nil)
	require.NoError(t, err)
	_, err = client.Enqueue(ctx, queue.Raw{Task: "t"}, nil)
	require.NoError(t, err)
	_, err = d.Pool.Exec(ctx, fmt.Sprintf("UPDATE %s.jobs SET state = 'succeeded', finished_at = now() WHERE id = $1", d.Schema), e.ID)
	require.NoError(t, err)

	for _, count := range []bool{false, true} {
		c, err := metrics.NewCollector(d.Pool, d.Schema, &metrics.CollectorConfig{CountFinished: count})
		require.NoError(t, err)
		reg, err := metrics.NewRegistry(c)
		require.NoError(t, err)
		fams, _ := scrape(t, metrics.Handler(reg))
		requireValue(t, fams, "pgq_jobs", 1, "queue", "default", "task", "t", "state", "available")
		n, ok := value(fams, "pgq_jobs", map[string]string{"state": "succeeded"})
		require.Equal(t, count, ok, "CountFinished %t", count)
		if count {
			require.Equal(t, 1.0, n)
		}
	}
}

// TestCollectorDatabaseDown reports pgq_up 0, not a failed scrape, when
// the queries fail.
func TestCollectorDatabaseDown(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	c, err := metrics.NewCollector(d.Pool, "pgq_not_there", &metrics.CollectorConfig{Logger: quietLogger()})
	require.NoError(t, err)
	reg, err := metrics.NewRegistry(c)
	require.NoError(t, err)
	fams, _ := scrape(t, metrics.Handler(reg))
	requireValue(t, fams, "pgq_up", 0)
	_, ok := value(fams, "pgq_jobs", nil)
	require.False(t, ok)
	_, ok = value(fams, "go_goroutines", nil)
	require.True(t, ok, "the other collectors are still served")
}

func TestNewCollectorChecksItsInput(t *testing.T) {
	t.Parallel()
	d := pgtest.New(t)
	for name, tc := range map[string]struct {
		schema string
		cfg    *metrics.CollectorConfig
		want   string
	}{
		"bad schema":       {schema: "Robert'); DROP TABLE", want: "schema"},
		"negative timeout": {cfg: &metrics.CollectorConfig{Timeout: -1}, want: "Timeout cannot be negative"},
		"negative stale":   {cfg: &metrics.CollectorConfig{StaleAfter: -1}, want: "StaleAfter cannot be negative"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := metrics.NewCollector(d.Pool, tc.schema, tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := metrics.NewCollector(nil, "", nil)
	require.ErrorContains(t, err, "pool is nil")
}

func grepPGQ(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "pgq_") && !strings.Contains(l, "_bucket{") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
