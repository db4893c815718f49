package metrics

import (
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
// Updating them takes no lock of its own: each event is a label look-up
// and an atomic add inside client_golang.
type WorkerMetrics struct {
	attempts *prometheus.CounterVec
	run      *prometheus.HistogramVec
	wait     *prometheus.HistogramVec
}

var _ worker.Observer = (*WorkerMetrics)(nil)
var _ prometheus.Collector = (*WorkerMetrics)(nil)

// NewWorkerMetrics returns worker metrics with no values yet.
func NewWorkerMetrics() *WorkerMetrics {
	return &WorkerMetrics{
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
}

// Started implements worker.Observer: it records the job's wait.
func (m *WorkerMetrics) Started(s worker.Start) {
	m.wait.WithLabelValues(s.Queue, s.Task).Observe(s.Wait.Seconds())
}

// Finished implements worker.Observer: it counts the attempt by outcome
// and records its run time.
func (m *WorkerMetrics) Finished(e worker.Event) {
	m.attempts.WithLabelValues(e.Queue, e.Task, outcomeOf(e.State)).Inc()
	m.run.WithLabelValues(e.Queue, e.Task).Observe(e.Duration.Seconds())
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
