package queuebench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// System is one job queue under test, set up in a database (or schema) of
// its own that nothing else uses while it runs. Each method runs one
// workload and leaves the system usable for the next one.
type System interface {
	// Drain bulk-inserts n noop jobs, then starts one worker and waits
	// until every job's completion is stored.
	Drain(ctx context.Context, n int, progress func(done int)) (DrainResult, error)
	// Steady runs a worker while producers enqueue p.Rate jobs a second,
	// each in a transaction of its own, for p.Duration.
	Steady(ctx context.Context, p SteadyParams, progress func(done int)) (SteadyResult, error)
	// Growth fills the table as p says, then measures the drain rate of
	// the first p.Measure waiting jobs.
	Growth(ctx context.Context, p GrowthParams, progress func(done int)) (GrowthResult, error)
	// TxCost measures business transactions with and without an enqueue.
	TxCost(ctx context.Context, p TxParams) (TxResult, error)
	// Workflow runs a chord of n members and, for comparison, n plain
	// jobs. A system without chords returns an error from NotAvailable.
	Workflow(ctx context.Context, n int, progress func(done int)) (WorkflowResult, error)
	// Close releases the system's connections and workers; the Entrant
	// that opened it removes its database.
	Close(ctx context.Context) error
}

// Entrant is a system taking part in a run: Open gives a fresh instance in
// an empty database or schema, and cleanup removes it again.
type Entrant struct {
	// Name heads the system's column in the table, such as "River".
	Name string
	// Open sets up a fresh instance of the system.
	Open func(ctx context.Context) (sys System, cleanup func(context.Context) error, err error)
}

// ErrNotAvailable marks a workload a system cannot run; the table shows a
// dash and the reason.
var ErrNotAvailable = errors.New("not available")

// NotAvailable returns an error that wraps ErrNotAvailable with a reason.
func NotAvailable(reason string) error {
	return &notAvailableError{reason}
}

type notAvailableError struct{ reason string }

func (e *notAvailableError) Error() string { return e.reason }
func (e *notAvailableError) Unwrap() error { return ErrNotAvailable }

// DrainResult is the outcome of the drain workload.
type DrainResult struct {
	// Jobs is how many jobs were inserted and completed.
	Jobs int `json:"jobs"`
	// Insert is how long the bulk insert took.
	Insert time.Duration `json:"insert_ns"`
	// Drain is the time from the worker's start to the last completion
	// stored.
	Drain time.Duration `json:"drain_ns"`
}

// SteadyParams shape the steady-state workload.
type SteadyParams struct {
	// Rate is the offered rate, jobs per second, on an open-loop
	// schedule: job i is due at i/Rate seconds whatever happened to the
	// others.
	Rate float64 `json:"rate"`
	// Duration is how long the producers run.
	Duration time.Duration `json:"duration_ns"`
	// Producers is how many producers enqueue concurrently, each job in a
	// transaction of its own.
	Producers int `json:"producers"`
}

// Jobs returns how many jobs the schedule holds.
func (p SteadyParams) Jobs() int { return max(1, int(p.Rate*p.Duration.Seconds())) }

// SteadyResult is the outcome of one steady-state run.
type SteadyResult struct {
	// Offered is the rate asked for, jobs/s.
	Offered float64 `json:"offered"`
	// Enqueued is how many enqueues committed.
	Enqueued int `json:"enqueued"`
	// Handled is how many of them had started their handler by the end.
	Handled int `json:"handled"`
	// EnqueueRate is the rate the producers achieved, jobs/s.
	EnqueueRate float64 `json:"enqueue_rate"`
	// Throughput is Handled over the time from the first enqueue to the
	// last handler start, jobs/s.
	Throughput float64 `json:"throughput"`
	// Tail is the time from the last enqueue's commit to the last handler
	// start: a backlog that grew shows here.
	Tail time.Duration `json:"tail_ns"`
	// P50, P95, P99 and Max are pickup latencies: from an enqueue's
	// commit (the call returning) to its handler starting.
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// SustainedTail is the longest Tail a sustained run may have.
const SustainedTail = time.Second

// Sustained reports whether the system kept up: the producers achieved at
// least 95% of the offered rate, every job started, and the last one within
// SustainedTail of the last enqueue.
func (r SteadyResult) Sustained() bool {
	return r.Enqueued > 0 && r.EnqueueRate >= 0.95*r.Offered && r.Handled == r.Enqueued && r.Tail <= SustainedTail
}

// GrowthParams shape one run of the growth workload.
type GrowthParams struct {
	// Waiting is how many jobs wait when the worker starts (at least
	// Measure).
	Waiting int `json:"waiting"`
	// Finished is how many finished jobs are kept in the table.
	Finished int `json:"finished"`
	// Measure is how many jobs the timed drain completes.
	Measure int `json:"measure"`
}

// GrowthResult is the outcome of one growth run.
type GrowthResult struct {
	// Rate is Measure completions over the time they took, jobs/s.
	Rate float64 `json:"rate"`
	// Setup is how long filling the table took.
	Setup time.Duration `json:"setup_ns"`
}

// TxParams shape the transactional-enqueue workload.
type TxParams struct {
	// Duration is how long each variant runs.
	Duration time.Duration `json:"duration_ns"`
	// Clients is how many connections run transactions at once.
	Clients int `json:"clients"`
}

// TxResult is the outcome of the transactional-enqueue workload, in
// transactions per second.
type TxResult struct {
	Bare        float64 `json:"bare"`
	WithEnqueue float64 `json:"with_enqueue"`
	// Direct is pgq's enqueue written straight into pgq.jobs, where
	// WithEnqueue stages it (queue.Options.Staged); 0 for other systems.
	Direct float64 `json:"direct,omitempty"`
}

// WorkflowResult is the outcome of the workflow workload.
type WorkflowResult struct {
	// Chord is the time from enqueueing a chord to its callback
	// finishing.
	Chord time.Duration `json:"chord_ns"`
	// Plain is the time to enqueue and run as many plain jobs.
	Plain time.Duration `json:"plain_ns"`
}

// Settle brings a freshly filled job table to the state a long-lived one
// is in before a growth run is timed: VACUUM (hint bits set, visibility
// map and statistics current) and a CHECKPOINT, so that the timed drain
// does not share the machine with autovacuum's first pass over millions
// of new rows and with the checkpoint their WAL triggers. A table that
// kept 5,000,000 finished jobs for real has had both long ago. The
// CHECKPOINT needs superuser or pg_checkpoint; without it, it is skipped.
func Settle(ctx context.Context, pool *pgxpool.Pool, table string) error {
	if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) "+table); err != nil {
		return fmt.Errorf("vacuum %s: %w", table, err)
	}
	var pgErr *pgconn.PgError
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42501") {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
