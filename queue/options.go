package queue

import (
	"maps"
	"time"
)

// Defaults that apply when neither the call, the task nor a route says otherwise.
const (
	// QueueDefault is the queue a job goes to when nothing routes it.
	QueueDefault = "default"
	// PriorityDefault is the priority of a job that sets none; 0 is the
	// lowest and 9 the highest.
	PriorityDefault = 0
	// PriorityMax is the highest priority.
	PriorityMax = 9
	// MaxRetriesDefault is Celery's default: a job runs at most four times.
	MaxRetriesDefault = 3
	// MaxPayloadBytesDefault limits args plus headers of one job, encoded.
	MaxPayloadBytesDefault = 1 << 20
)

// Options are Celery's calling options (apply_async's keyword arguments).
// The zero value of every field means "not set here": the value then comes
// from the task's defaults (TaskOptioner), then from the first matching
// route, then from the package defaults above. Fields where zero is a
// meaningful choice (priority 0, no retries) are pointers; use Ptr.
type Options struct {
	// Queue the job goes to.
	Queue string
	// Priority from 0 (lowest) to 9 (highest); higher runs first.
	Priority *int
	// Countdown delays the job by this long from enqueue (database time).
	Countdown time.Duration
	// ETA is the earliest time the job may run. Set ETA or Countdown, not both.
	ETA time.Time
	// Expires discards the job if it has not started this long after enqueue.
	Expires time.Duration
	// ExpiresAt discards the job if it has not started by then. Set Expires
	// or ExpiresAt, not both.
	ExpiresAt time.Time
	// MaxRetries is how many times a failed job is tried again.
	MaxRetries *int
	// RetryDelay is the wait before a retry; unset leaves it to the worker's
	// backoff policy.
	RetryDelay time.Duration
	// TimeLimit is the hard limit on one attempt (Celery's time_limit).
	TimeLimit time.Duration
	// SoftTimeLimit is the limit a handler is warned about before the hard
	// one (Celery's soft_time_limit).
	SoftTimeLimit time.Duration
	// IgnoreResult tells the worker not to store the handler's result.
	IgnoreResult *bool
	// UniqueKey makes the enqueue a no-op while another job with the same
	// key has not finished; the existing job is returned as a duplicate.
	// It is the short form of Unique: &Unique{Key: UniqueKey}.
	UniqueKey string
	// Unique sets a unique key with a scope (while pending, while pending
	// or running, for a time window) and what a duplicate does (keep,
	// replace, debounce); see Unique. nil: only UniqueKey applies.
	Unique *Unique
	// MutexKey makes the job a task mutex (what celery_mutex does): at
	// most one job with this key runs at a time, across every worker.
	// The others wait their turn in their queue; they are not failed and
	// use up no attempt. Jobs of different tasks with one key exclude each
	// other too. worker.TaskOptions.Mutex gives a task a mutex without
	// setting keys at enqueue. See docs/limits.md.
	MutexKey string
	// Headers are free-form metadata stored with the job (its meta column)
	// and handed to the handler.
	Headers map[string]any
	// Staged writes the job to pgq.staged_jobs, a narrow table without
	// indexes, instead of pgq.jobs: the enqueue then costs the caller's
	// transaction a fraction of what a job row costs (docs/performance.md,
	// "Staged enqueue"). It is as transactional as any enqueue, and the
	// job keeps the id the enqueue returns, but it enters pgq.jobs (and
	// SQL queries, views and the dashboard) only when a Go worker moves it
	// there: at once when a worker hears the wake-up, else at its next
	// poll. Client.Job finds it in either table. Under load the wake-ups
	// of staged jobs go out at most every 5 ms (queue/wake.go), so their
	// pickup may wait that much longer. A unique key cannot be staged.
	// EnqueueMany ignores the option (its COPY is already the cheap form),
	// and so do workflows (their jobs are inserted with their links). Set
	// by any layer (call, task defaults, route), it applies.
	Staged bool
}

// Ptr returns a pointer to v, for the pointer fields of Options.
func Ptr[T any](v T) *T { return &v }

// merge returns o with every unset field taken from under.
func (o Options) merge(under Options) Options {
	if o.Queue == "" {
		o.Queue = under.Queue
	}
	if o.Priority == nil {
		o.Priority = under.Priority
	}
	// ETA and Countdown are one choice, as are Expires and ExpiresAt: a
	// layer that sets either member of a pair overrides both below it.
	if o.Countdown == 0 && o.ETA.IsZero() {
		o.Countdown, o.ETA = under.Countdown, under.ETA
	}
	if o.Expires == 0 && o.ExpiresAt.IsZero() {
		o.Expires, o.ExpiresAt = under.Expires, under.ExpiresAt
	}
	if o.MaxRetries == nil {
		o.MaxRetries = under.MaxRetries
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = under.RetryDelay
	}
	if o.TimeLimit == 0 {
		o.TimeLimit = under.TimeLimit
	}
	if o.SoftTimeLimit == 0 {
		o.SoftTimeLimit = under.SoftTimeLimit
	}
	if o.IgnoreResult == nil {
		o.IgnoreResult = under.IgnoreResult
	}
	if o.UniqueKey == "" {
		o.UniqueKey = under.UniqueKey
	}
	if o.Unique == nil {
		o.Unique = under.Unique
	}
	if o.MutexKey == "" {
		o.MutexKey = under.MutexKey
	}
	o.Staged = o.Staged || under.Staged
	// Headers merge key by key; the upper layer wins.
	if len(under.Headers) > 0 {
		h := maps.Clone(under.Headers)
		maps.Copy(h, o.Headers)
		o.Headers = h
	}
	return o
}
