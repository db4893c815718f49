package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/worker"
)

const namespace = "pgq"

// Defaults of CollectorConfig.
const (
	// CollectTimeoutDefault bounds the queries of one scrape.
	CollectTimeoutDefault = 5 * time.Second
	// StaleAfterDefault is how old a worker's heartbeat may be for the
	// worker to count as alive: the workers' default rescue timeout.
	StaleAfterDefault = worker.RescueAfterDefault
)

// CollectorConfig configures a Collector. A nil *CollectorConfig means all
// defaults.
type CollectorConfig struct {
	// Timeout bounds the queries of one scrape; 0 means
	// CollectTimeoutDefault.
	Timeout time.Duration
	// StaleAfter is how old a worker's heartbeat may be for it to count as
	// alive; 0 means StaleAfterDefault. Use the workers' RescueAfter.
	StaleAfter time.Duration
	// CountFinished adds the counts of finished jobs (states succeeded,
	// failed, cancelled) to pgq_jobs. Their query reads every finished
	// row that retention has kept, about half a second per million rows
	// (docs/observability.md), so it is off by default; the other queries
	// read only waiting and running jobs, through partial indexes.
	CountFinished bool
	// Logger receives query errors; nil means slog.Default().
	Logger *slog.Logger
}

// Collector reads cluster-wide figures from pgq's tables at each scrape:
// jobs by queue, task and state, the age of the oldest runnable job per
// queue, paused queues, and workers. Every process that reads the same
// schema reports the same values, so register it in one process (the
// dashboard, or one chosen worker), not in every worker.
//
// It exports:
//
//	pgq_up                                   1 when the last scrape's queries succeeded
//	pgq_jobs{queue,task,state}               jobs stored, by state (finished ones with CountFinished)
//	pgq_queue_oldest_runnable_seconds{queue} age of the oldest job that could run now
//	pgq_queue_paused{queue}                  1 for a paused queue (queues with settings only)
//	pgq_workers_alive, pgq_workers_stale     registered workers by heartbeat age
//	pgq_worker_slots                         concurrency summed over live workers
//	pgq_collect_duration_seconds             how long the scrape's queries took
type Collector struct {
	q   *db.Queries
	cfg CollectorConfig
	mu  sync.Mutex // one scrape's queries at a time
}

var _ prometheus.Collector = (*Collector)(nil)

var (
	descUp = prometheus.NewDesc("pgq_up",
		"1 when the collector's queries succeeded at this scrape, 0 when they failed (the other pgq_ gauges are then missing).", nil, nil)
	descJobs = prometheus.NewDesc("pgq_jobs",
		"Jobs stored in the database, by queue, task and state (scheduled, available, running, retrying; succeeded, failed, cancelled when the collector counts finished jobs).",
		[]string{"queue", "task", "state"}, nil)
	descOldest = prometheus.NewDesc("pgq_queue_oldest_runnable_seconds",
		"Age of the oldest job of the queue that could run now and has not been claimed (now minus its run_at); 0 when none waits. Paused queues included.",
		[]string{"queue"}, nil)
	descPaused = prometheus.NewDesc("pgq_queue_paused",
		"1 when the queue is paused, 0 when not; only queues with a settings row in pgq.queues.", []string{"queue"}, nil)
	descAlive = prometheus.NewDesc("pgq_workers_alive",
		"Registered workers whose heartbeat is recent.", nil, nil)
	descStale = prometheus.NewDesc("pgq_workers_stale",
		"Registered workers whose heartbeat is too old (dead; their jobs are being rescued).", nil, nil)
	descSlots = prometheus.NewDesc("pgq_worker_slots",
		"Jobs the live workers may run at once (their concurrency, summed).", nil, nil)
	descDuration = prometheus.NewDesc("pgq_collect_duration_seconds",
		"How long the collector's queries took at this scrape.", nil, nil)
)

// NewCollector returns a collector that reads the pgq tables of schema
// ("" means "pgq") through pool. cfg may be nil. It does not touch the
// database until the first scrape.
func NewCollector(pool *pgxpool.Pool, schemaName string, cfg *CollectorConfig) (*Collector, error) {
	if pool == nil {
		return nil, errors.New("metrics.NewCollector: pool is nil")
	}
	name := schema.OrDefault(schemaName)
	if err := schema.Check(name); err != nil {
		return nil, fmt.Errorf("metrics.NewCollector: schema: %w", err)
	}
	var c CollectorConfig
	if cfg != nil {
		c = *cfg
	}
	switch {
	case c.Timeout < 0:
		return nil, errors.New("CollectorConfig.Timeout cannot be negative")
	case c.Timeout == 0:
		c.Timeout = CollectTimeoutDefault
	}
	switch {
	case c.StaleAfter < 0:
		return nil, errors.New("CollectorConfig.StaleAfter cannot be negative")
	case c.StaleAfter == 0:
		c.StaleAfter = StaleAfterDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Collector{q: db.New(schema.Wrap(name, pool)), cfg: c}, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descJobs, descOldest, descPaused, descAlive, descStale, descSlots, descDuration} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it runs the queries and sends
// their figures. When a query fails it sends pgq_up 0 and nothing else,
// and logs the error.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	ms, err := c.read(ctx)
	if err != nil {
		c.cfg.Logger.Error("pgq metrics: reading the tables failed", "error", err)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	for _, m := range ms {
		ch <- m
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, time.Since(start).Seconds())
}

// read runs the queries and returns their metrics, or the first error.
func (c *Collector) read(ctx context.Context) ([]prometheus.Metric, error) {
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}

	unfinished, err := c.q.MetricsUnfinishedJobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("count unfinished jobs: %w", err)
	}
	oldest := map[string]float64{}
	for _, r := range unfinished {
		gauge(descJobs, float64(r.Jobs), r.Queue, r.Task, r.State)
		oldest[r.Queue] = max(oldest[r.Queue], r.OldestRunnableSeconds)
	}
	for q, age := range oldest {
		gauge(descOldest, age, q)
	}
	if c.cfg.CountFinished {
		finished, err := c.q.MetricsFinishedJobs(ctx)
		if err != nil {
			return nil, fmt.Errorf("count finished jobs: %w", err)
		}
		for _, r := range finished {
			gauge(descJobs, float64(r.Jobs), r.Queue, r.Task, r.State)
		}
	}
	queues, err := c.q.MetricsPausedQueues(ctx)
	if err != nil {
		return nil, fmt.Errorf("read queue settings: %w", err)
	}
	for _, r := range queues {
		paused := 0.0
		if r.Paused {
			paused = 1
		}
		gauge(descPaused, paused, r.Name)
	}
	w, err := c.q.MetricsWorkers(ctx, c.cfg.StaleAfter.Seconds())
	if err != nil {
		return nil, fmt.Errorf("count workers: %w", err)
	}
	gauge(descAlive, float64(w.Alive))
	gauge(descStale, float64(w.Stale))
	gauge(descSlots, float64(w.Slots))
	return out, nil
}
