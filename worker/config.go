package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// Defaults of Config.
const (
	// ConcurrencyDefault is how many jobs a worker runs at once.
	ConcurrencyDefault = 10
	// PollIntervalDefault is the fallback fetch period when no wake-up
	// arrives (NOTIFY lost across a reconnect, or disabled).
	PollIntervalDefault = time.Second
	// ShutdownTimeoutDefault is how long running jobs may take to finish
	// after Run's context ends before they are cancelled and handed back.
	ShutdownTimeoutDefault = 30 * time.Second
	// CancelGraceDefault is how long a cancelled handler (time limit or
	// shutdown) has to return before its slot is taken back.
	CancelGraceDefault = 2 * time.Second
	// HeartbeatIntervalDefault is how often a worker proves it is alive.
	HeartbeatIntervalDefault = 5 * time.Second
	// RescueAfterDefault is how old a worker's heartbeat must be before
	// its running jobs are handed to other workers.
	RescueAfterDefault = 30 * time.Second
	// MaintenanceIntervalDefault is how often a worker tries to become the
	// maintenance leader and rescue jobs of dead workers.
	MaintenanceIntervalDefault = 5 * time.Second
	// CompletionDelayDefault is how long finished jobs are collected
	// before one statement writes them all.
	CompletionDelayDefault = 2 * time.Millisecond
	// CompletionBatchDefault is the most jobs one completion statement
	// writes.
	CompletionBatchDefault = 2000
	// AutoscaleIdleAfterDefault is how long slots must stay unused before
	// an autoscaling worker gives them up.
	AutoscaleIdleAfterDefault = 30 * time.Second
	// RetentionSucceededDefault is how long succeeded jobs (and their
	// results) are kept before the maintenance leader deletes them.
	RetentionSucceededDefault = 24 * time.Hour
	// RetentionFailedDefault is how long failed jobs are kept.
	RetentionFailedDefault = 7 * 24 * time.Hour
	// RetentionCancelledDefault is how long cancelled jobs are kept.
	RetentionCancelledDefault = 7 * 24 * time.Hour
	// PruneBatchDefault is the most jobs one retention statement deletes.
	PruneBatchDefault = 1000
)

// Autoscale lets the number of jobs a worker runs at once vary with the
// load, like Celery's --autoscale. The worker starts with Min slots. When
// a claim fills every free slot (every slot is busy and the backlog may
// hold more), it adds half as many again, up to Max. When fewer slots
// than it has were busy during a whole IdleAfter, it drops to the most
// that were busy in that time, and to no fewer than Min: an idle worker
// goes back to Min. The changes are logged, and Worker.Concurrency
// reports the current number.
type Autoscale struct {
	// Min is the fewest slots; at least 1.
	Min int
	// Max is the most slots; at least Min.
	Max int
	// IdleAfter is how long slots must stay unused before they are given
	// up; 0 means AutoscaleIdleAfterDefault. The check runs when the
	// fetcher wakes, so it may come up to PollInterval late.
	IdleAfter time.Duration
}

// Config configures a Worker. A nil *Config means all defaults.
type Config struct {
	// Schema is where pgq's tables live; empty means "pgq".
	Schema string
	// Queues are the queues to take jobs from; empty means "default".
	// Jobs of all of them are taken in one order: priority, then run_at.
	Queues []string
	// Concurrency is how many jobs run at once; 0 means
	// ConcurrencyDefault. Leave it 0 when Autoscale is set.
	Concurrency int
	// Autoscale, when set, makes the number of jobs run at once vary
	// between Autoscale.Min and Autoscale.Max with the load.
	Autoscale *Autoscale
	// PollInterval is the fallback fetch period; 0 means
	// PollIntervalDefault. Wake-ups by NOTIFY make fetching immediate.
	PollInterval time.Duration
	// ShutdownTimeout is how long running jobs may take to finish once
	// Run's context ends; 0 means ShutdownTimeoutDefault. Jobs still
	// running then are cancelled (cause ErrShutdown) and go back to their
	// queue without using up an attempt.
	ShutdownTimeout time.Duration
	// CancelGrace is how long a handler whose context was cancelled (hard
	// time limit, shutdown) has to return before the worker takes its slot
	// back; 0 means CancelGraceDefault.
	CancelGrace time.Duration
	// Burst makes Run return nil as soon as the queues hold no runnable
	// job and nothing is running (jobs scheduled for later do not count).
	Burst bool
	// WorkerID names this worker in jobs.worker_id and pgq.workers; empty
	// means "<host>-<pid>-<random>". Two live workers must not share one.
	WorkerID string
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
	// HeartbeatInterval is how often the worker refreshes its row in
	// pgq.workers; 0 means HeartbeatIntervalDefault. It must be less than
	// half of RescueAfter.
	HeartbeatInterval time.Duration
	// RescueAfter is how old a worker's heartbeat must be before its jobs
	// are rescued; 0 means RescueAfterDefault.
	RescueAfter time.Duration
	// MaintenanceInterval is how often the worker competes for the
	// maintenance lock and, holding it, rescues jobs; 0 means
	// MaintenanceIntervalDefault.
	MaintenanceInterval time.Duration
	// CompletionDelay is how long finished jobs are collected into one
	// write; 0 means CompletionDelayDefault.
	CompletionDelay time.Duration
	// RetentionSucceeded, RetentionFailed and RetentionCancelled are how
	// long finished jobs are kept, by final state, counted from
	// finished_at; the maintenance leader deletes older ones in batches of
	// PruneBatch. 0 means the default (RetentionSucceededDefault, 24h;
	// RetentionFailedDefault and RetentionCancelledDefault, 7 days); a
	// negative value keeps such jobs for ever. Every worker of a schema
	// should use the same values: whichever is leader applies its own.
	RetentionSucceeded time.Duration
	RetentionFailed    time.Duration
	RetentionCancelled time.Duration
	// PruneBatch is the most jobs one retention statement deletes; 0 means
	// PruneBatchDefault. Each statement is its own short transaction.
	PruneBatch int
	// DurableClaims makes each claim wait for its WAL flush before the
	// job starts. By default a claim commits asynchronously, which takes
	// about a millisecond off the pickup latency on a durable server; if
	// the server then crashes before the flush, the claim is undone and
	// the job can be claimed again while this worker still runs it (see
	// "Claims and crashes" in the package documentation). Completions are
	// always durable.
	DurableClaims bool
	// NoListen turns LISTEN off (for example behind pgbouncer in
	// transaction mode); the worker then finds jobs by polling only.
	NoListen bool
	// SessionConnConfig, when set, is used for the worker's LISTEN
	// connection (wake-ups, revokes, remote control), which must stay with
	// one PostgreSQL session. Behind pgbouncer in transaction mode, point
	// it straight at PostgreSQL while the pool goes through pgbouncer
	// (docs/pgbouncer.md). Nil means the pool's own settings.
	SessionConnConfig *pgx.ConnConfig
	// OnEvent, when set, is called after each attempt's outcome is written
	// to the database (never before), from the worker's completion
	// goroutine: keep it fast. Use it for metrics and tests.
	OnEvent func(Event)
	// Observer, when set, is told when each attempt starts and after its
	// outcome is stored (see Observer); metrics.NewWorkerMetrics returns
	// one that feeds Prometheus.
	Observer Observer
	// TracerProvider makes one span per attempt, a child of the trace
	// context found in the job's headers; nil means
	// otel.GetTracerProvider(). A noop.TracerProvider turns tracing off.
	TracerProvider trace.TracerProvider
	// Propagator reads the trace context from the job's headers; nil
	// means queue.DefaultPropagator().
	Propagator propagation.TextMapPropagator

	tracing *tracing // from TracerProvider and Propagator; nil: off
}

// Event reports the stored outcome of one attempt.
type Event struct {
	JobID    int64
	Task     string
	Queue    string
	Attempt  int
	State    string        // the job's state now: succeeded, retrying, failed, scheduled (snoozed), available (handed back), cancelled (expired)
	Err      error         // the attempt's error; nil on success
	Duration time.Duration // how long the handler ran
}

func (c *Config) normalize() (Config, error) {
	var n Config
	if c != nil {
		n = *c
	}
	n.Schema = schema.OrDefault(n.Schema)
	if err := schema.Check(n.Schema); err != nil {
		return n, fmt.Errorf("Config.Schema: %w", err)
	}
	if len(n.Queues) == 0 {
		n.Queues = []string{queue.QueueDefault}
	}
	seen := map[string]bool{}
	queues := make([]string, 0, len(n.Queues))
	for _, q := range n.Queues {
		if err := queue.ValidateQueueName(q); err != nil {
			return n, fmt.Errorf("Config.Queues: %w", err)
		}
		if !seen[q] {
			seen[q] = true
			queues = append(queues, q)
		}
	}
	n.Queues = queues
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PollInterval", &n.PollInterval, PollIntervalDefault},
		{"ShutdownTimeout", &n.ShutdownTimeout, ShutdownTimeoutDefault},
		{"CancelGrace", &n.CancelGrace, CancelGraceDefault},
		{"HeartbeatInterval", &n.HeartbeatInterval, HeartbeatIntervalDefault},
		{"RescueAfter", &n.RescueAfter, RescueAfterDefault},
		{"MaintenanceInterval", &n.MaintenanceInterval, MaintenanceIntervalDefault},
		{"CompletionDelay", &n.CompletionDelay, CompletionDelayDefault},
	} {
		if *f.v < 0 {
			return n, fmt.Errorf("Config.%s cannot be negative", f.name)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if n.Concurrency < 0 {
		return n, errors.New("Config.Concurrency cannot be negative")
	}
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&n.RetentionSucceeded, RetentionSucceededDefault},
		{&n.RetentionFailed, RetentionFailedDefault},
		{&n.RetentionCancelled, RetentionCancelledDefault},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	switch {
	case n.PruneBatch < 0:
		return n, errors.New("Config.PruneBatch cannot be negative")
	case n.PruneBatch == 0:
		n.PruneBatch = PruneBatchDefault
	}
	if a := n.Autoscale; a != nil {
		switch {
		case n.Concurrency != 0:
			return n, errors.New("Config.Concurrency and Config.Autoscale cannot both be set: Autoscale.Min and Autoscale.Max bound the concurrency")
		case a.Min < 1:
			return n, fmt.Errorf("Config.Autoscale.Min must be at least 1 (got %d)", a.Min)
		case a.Max < a.Min:
			return n, fmt.Errorf("Config.Autoscale.Max (%d) cannot be less than Autoscale.Min (%d)", a.Max, a.Min)
		case a.IdleAfter < 0:
			return n, errors.New("Config.Autoscale.IdleAfter cannot be negative")
		}
		c := *a
		if c.IdleAfter == 0 {
			c.IdleAfter = AutoscaleIdleAfterDefault
		}
		n.Autoscale = &c
		n.Concurrency = c.Max // the ceiling: buffers, the workers row
	}
	if n.Concurrency == 0 {
		n.Concurrency = ConcurrencyDefault
	}
	if n.HeartbeatInterval*2 > n.RescueAfter {
		return n, fmt.Errorf("Config.HeartbeatInterval (%s) must be at most half of RescueAfter (%s), or live workers would be taken for dead", n.HeartbeatInterval, n.RescueAfter)
	}
	if n.WorkerID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "worker"
		}
		n.WorkerID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(3))
	}
	if len(n.WorkerID) > 200 {
		return n, errors.New("Config.WorkerID is longer than 200 bytes")
	}
	if n.Logger == nil {
		n.Logger = slog.Default()
	}
	if n.Observer != nil {
		n.OnEvent = observeFinished(n.Observer, n.OnEvent)
	}
	n.tracing = newTracing(n.TracerProvider, n.Propagator)
	return n, nil
}
