package worker_test

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/pgq/pgq/metrics"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	started  []worker.Start
	finished []worker.Event
}

func (r *recorder) Started(s worker.Start) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, s)
}

func (r *recorder) Finished(e worker.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = append(r.finished, e)
}

// TestObserver: Started comes for every attempt with the job's wait,
// counted from the later of run_at and created_at; Finished comes with
// the stored outcome, and Config.OnEvent still gets its events.
func TestObserver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.reg.HandleFunc("ok", func(context.Context, *worker.Job[json.RawMessage]) (any, error) { return nil, nil }, nil)
	// An ETA an hour ago: the job waited since its creation, not for an hour.
	past := b.enqueue(t, queue.Raw{Task: "ok"}, &queue.Options{ETA: time.Now().Add(-time.Hour)})
	unknown := b.enqueue(t, queue.Raw{Task: "nobody.handles.this"}, nil)
	rec := &recorder{}
	b.start(t, b.config(func(c *worker.Config) { c.Observer = rec }))
	b.waitState(t, past, "succeeded")
	b.waitState(t, unknown, "failed")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Len(t, rec.started, 2)
	require.Len(t, rec.finished, 2)
	for _, s := range rec.started {
		require.Equal(t, 1, s.Attempt)
		require.GreaterOrEqual(t, s.Wait, time.Duration(0))
		require.Less(t, s.Wait, waitTimeout, "job %d (%s) waited %s", s.JobID, s.Task, s.Wait)
	}
	states := map[int64]string{}
	for _, e := range rec.finished {
		states[e.JobID] = e.State
	}
	require.Equal(t, map[int64]string{past: "succeeded", unknown: "failed"}, states)
	require.Len(t, b.events.all(), 2, "Config.OnEvent is called as well")
}

// BenchmarkDrainObserved is BenchmarkDrain with the observability hooks
// set, to compare with it (docs/observability.md has figures):
//
//	go test -run '^$' -bench 'Drain/concurrency=1000' -benchtime 50000x -count 2 ./worker/
//
// off: no observer and a noop TracerProvider, so no tracing work at all;
// metrics: a metrics.WorkerMetrics observer and still no tracing;
// metrics+tracing: the observer and an SDK provider that samples every
// attempt into an in-memory exporter. BenchmarkDrain itself runs with
// the defaults: no observer, tracing through the global provider (unset
// in the test, so the noop jobs, which carry no trace context, get no
// span).
func BenchmarkDrainObserved(b *testing.B) {
	b.Run("concurrency=1000", func(b *testing.B) {
		for _, mode := range []string{"off", "metrics", "metrics+tracing"} {
			b.Run(mode, func(b *testing.B) {
				benchDrainWith(b, 1000, func(c *worker.Config) {
					switch mode {
					case "off":
						c.TracerProvider = noop.NewTracerProvider()
					case "metrics":
						c.Observer = metrics.NewWorkerMetrics()
						c.TracerProvider = noop.NewTracerProvider()
					case "metrics+tracing":
						c.Observer = metrics.NewWorkerMetrics()
						exp := tracetest.NewInMemoryExporter()
						tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
						b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
						c.TracerProvider = tp
					}
				})
			})
		}
	})
}

// benchDrainWith is benchDrain with a change to the worker's Config.
func benchDrainWith(b *testing.B, concurrency int, mod func(*worker.Config)) {
	bu := setupB(b)
	ctx := context.Background()
	reqs := make([]queue.Request, 0, 10000)
	for left := b.N; left > 0; {
		n := min(left, cap(reqs))
		reqs = reqs[:0]
		for range n {
			reqs = append(reqs, queue.Request{Args: queue.Raw{Task: worker.TaskNoop}})
		}
		_, err := bu.client.EnqueueMany(ctx, reqs)
		require.NoError(b, err)
		left -= n
	}
	_, err := bu.db.Pool.Exec(ctx, "ANALYZE "+bu.db.Schema+".jobs")
	require.NoError(b, err)

	cfg := &worker.Config{
		Schema: bu.db.Schema, Logger: testLogger(), Burst: true, Concurrency: concurrency, PollInterval: time.Minute,
	}
	mod(cfg)
	w, err := worker.New(bu.db.Pool, bu.reg, cfg)
	require.NoError(b, err)
	b.ResetTimer()
	var mem0, mem1 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := processCPU(b)
	start := time.Now()
	require.NoError(b, w.Run(ctx))
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&mem1)
	b.StopTimer()

	var left int
	require.NoError(b, bu.db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+bu.db.Schema+".jobs WHERE state <> 'succeeded'").Scan(&left))
	require.Zero(b, left)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	// CPU time of this process (the worker; PostgreSQL runs in others):
	// what the hooks add, much less disturbed by other load than jobs/s.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/job")
	// Heap allocations of the process per job: unlike the CPU time, they
	// do not depend on the load of the machine, and the garbage collector's
	// share of the CPU time grows with them.
	b.ReportMetric(float64(mem1.Mallocs-mem0.Mallocs)/float64(b.N), "allocs/job")
	b.ReportMetric(float64(mem1.TotalAlloc-mem0.TotalAlloc)/float64(b.N), "B/job")
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
