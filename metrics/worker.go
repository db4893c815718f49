package metrics

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgq/pgq/worker"
)

// Buckets of the worker's histograms, in seconds: from a millisecond (a
// noop job, a claim by wake-up) to an hour (a long report, a backlog).
var (
	RunBuckets  = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
	WaitBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
)

// Outcomes are the values of the outcome label of
// pgq_worker_attempts_total, one per state a stored attempt leaves its
// job in.
const (
	OutcomeSucceeded = "succeeded" // the job succeeded
	OutcomeFailed    = "failed"    // the job failed for good
	OutcomeRetried   = "retried"   // the attempt failed; the job waits for a retry
	OutcomeCancelled = "cancelled" // revoked, or expired before it started
	OutcomeSnoozed   = "snoozed"   // the handler returned worker.Snooze
	OutcomeReleased  = "released"  // handed back to its queue at shutdown, attempt not counted
)

// WorkerMetrics counts what one worker process runs: a worker.Observer
// and a prometheus.Collector. Set it as worker.Config.Observer and
// register it with a Prometheus registry; one WorkerMetrics may observe
// several workers of the process.
//
// It exports:
//
//	pgq_worker_attempts_total{queue,task,outcome}  counter
//	pgq_worker_run_seconds{queue,task}             histogram: handler run time
//	pgq_worker_wait_seconds{queue,task}            histogram: runnable → claimed
//
// The series of each queue and task are looked up once, when the pair is
// first seen (that also starts its succeeded, failed and retried counters
// at zero, so that rate() sees their first increase); after that an event
// reads an immutable map and makes an atomic add: no lock, no allocation.
type WorkerMetrics struct {
	attempts *prometheus.CounterVec
	run      *prometheus.HistogramVec
	wait     *prometheus.HistogramVec

	// series maps queue and task to their series; it is replaced, never
	// changed, under mu when a new pair is seen.
	series atomic.Pointer[map[seriesKey]*series]
	mu     sync.Mutex
}

type seriesKey struct{ queue, task string }

// series are the metrics of one queue and task.
type series struct {
	succeeded, failed, retried prometheus.Counter
	run, wait                  prometheus.Observer
}

var _ worker.Observer = (*WorkerMetrics)(nil)
var _ prometheus.Collector = (*WorkerMetrics)(nil)

// NewWorkerMetrics returns worker metrics with no values yet.
func NewWorkerMetrics() *WorkerMetrics {
	m := &WorkerMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "worker", Name: "attempts_total",
			Help: "Attempts whose outcome this process stored, by queue, task and outcome (succeeded, failed, retried, cancelled, snoozed, released).",
		}, []string{"queue", "task", "outcome"}),
		run: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "worker", Name: "run_seconds",
			Help:    "How long handlers ran, by queue and task, observed when the attempt's outcome is stored.",
			Buckets: RunBuckets,
		}, []string{"queue", "task"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "worker", Name: "wait_seconds",
			Help:    "How long jobs waited between becoming runnable (run_at, or creation if later) and being claimed, by queue and task, in database time.",
			Buckets: WaitBuckets,
		}, []string{"queue", "task"}),
	}
	m.series.Store(&map[seriesKey]*series{})
	return m
}

// seriesOf returns the series of queue and task, making them the first
// time.
func (m *WorkerMetrics) seriesOf(queue, task string) *series {
	k := seriesKey{queue, task}
	if s := (*m.series.Load())[k]; s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if s := old[k]; s != nil {
		return s
	}
	s := &series{
		succeeded: m.attempts.WithLabelValues(queue, task, OutcomeSucceeded),
		failed:    m.attempts.WithLabelValues(queue, task, OutcomeFailed),
		retried:   m.attempts.WithLabelValues(queue, task, OutcomeRetried),
		run:       m.run.WithLabelValues(queue, task),
		wait:      m.wait.WithLabelValues(queue, task),
	}
	next := make(map[seriesKey]*series, len(old)+1)
	maps.Copy(next, old)
	next[k] = s
	m.series.Store(&next)
	return s
}

// Started implements worker.Observer: it records the job's wait.
func (m *WorkerMetrics) Started(s worker.Start) {
	m.seriesOf(s.Queue, s.Task).wait.Observe(s.Wait.Seconds())
}

// Finished implements worker.Observer: it counts the attempt by outcome
// and records its run time.
func (m *WorkerMetrics) Finished(e worker.Event) {
	s := m.seriesOf(e.Queue, e.Task)
	switch e.State {
	case "succeeded":
		s.succeeded.Inc()
	case "failed":
		s.failed.Inc()
	case "retrying":
		s.retried.Inc()
	default:
		m.attempts.WithLabelValues(e.Queue, e.Task, outcomeOf(e.State)).Inc()
	}
	s.run.Observe(e.Duration.Seconds())
}

// Describe implements prometheus.Collector.
func (m *WorkerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.attempts.Describe(ch)
	m.run.Describe(ch)
	m.wait.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *WorkerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.attempts.Collect(ch)
	m.run.Collect(ch)
	m.wait.Collect(ch)
}

// outcomeOf names the outcome of an attempt that left its job in state.
func outcomeOf(state string) string {
	switch state {
	case "succeeded":
		return OutcomeSucceeded
	case "failed":
		return OutcomeFailed
	case "retrying":
		return OutcomeRetried
	case "cancelled":
		return OutcomeCancelled
	case "scheduled":
		return OutcomeSnoozed
	case "available":
		return OutcomeReleased
	}
	return state
}
