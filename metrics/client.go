package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgq/pgq/queue"
)

// ClientMetrics counts the jobs a process enqueues. Set its Enqueued
// method as queue.Config.OnEnqueued and register it with a Prometheus
// registry. It exports:
//
//	pgq_enqueued_total{queue,task}  counter
//
// A job is counted when its statement returns: a job enqueued with
// EnqueueTx in a transaction that later rolls back is counted all the
// same, and a duplicate of a unique job is not counted.
type ClientMetrics struct {
	enqueued *prometheus.CounterVec
}

var _ prometheus.Collector = (*ClientMetrics)(nil)

// NewClientMetrics returns client metrics with no values yet.
func NewClientMetrics() *ClientMetrics {
	return &ClientMetrics{
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "enqueued_total",
			Help: "Jobs this process enqueued, by queue and task (counted when the insert returns, before the caller's transaction commits).",
		}, []string{"queue", "task"}),
	}
}

// Enqueued counts one job; use it as queue.Config.OnEnqueued.
func (m *ClientMetrics) Enqueued(e queue.Enqueued) {
	m.enqueued.WithLabelValues(e.Queue, e.Task).Inc()
}

// Describe implements prometheus.Collector.
func (m *ClientMetrics) Describe(ch chan<- *prometheus.Desc) { m.enqueued.Describe(ch) }

// Collect implements prometheus.Collector.
func (m *ClientMetrics) Collect(ch chan<- prometheus.Metric) { m.enqueued.Collect(ch) }
