package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/pgq/pgq/queue"
)

// Defaults of TaskOptions.
const (
	// RetryDelayDefault is the first retry's delay; each further retry
	// doubles it, up to MaxRetryDelayDefault.
	RetryDelayDefault = time.Second
	// MaxRetryDelayDefault caps the exponential backoff.
	MaxRetryDelayDefault = 10 * time.Minute
	// RetryJitterDefault spreads retry times by ±25% so that jobs that
	// failed together do not all come back in the same instant.
	RetryJitterDefault = 0.25
)

// Handler runs jobs of one task. Work receives the job with its args still
// encoded; use Register for handlers that take typed args.
//
// Work returns the job's result, stored as JSON in jobs.result (unless the
// task ignores results), or an error. A plain error is retried by the
// task's policy; Retry, Snooze and Permanent return control values that
// override it. A panic is recovered and recorded, with its stack, as a
// failed attempt.
type Handler interface {
	Work(ctx context.Context, job *Job[json.RawMessage]) (any, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job *Job[json.RawMessage]) (any, error)

// Work calls f(ctx, job).
func (f HandlerFunc) Work(ctx context.Context, job *Job[json.RawMessage]) (any, error) {
	return f(ctx, job)
}

// Job is one attempt at running a job, as its handler sees it: the job's
// fields (promoted from Info) and its args decoded into T.
type Job[T any] struct {
	*Info
	Args T
}

// Info describes the job and the attempt a handler runs.
type Info struct {
	ID         int64
	Task       string
	Queue      string
	Priority   int
	Attempt    int // 1 on the first run
	MaxRetries int // the job fails when Attempt > MaxRetries
	// RawArgs are the args as stored (JSON).
	RawArgs json.RawMessage
	// Headers are the job's free-form metadata (queue.Options.Headers) as
	// stored (a JSON object).
	Headers   json.RawMessage
	CreatedAt time.Time
	RunAt     time.Time
	StartedAt time.Time // this attempt, worker clock
	// TimeLimit is the hard limit of this attempt; 0 means none. The
	// handler's context is cancelled at Deadline with cause ErrTimeLimit.
	TimeLimit time.Duration
	Deadline  time.Time
	// SoftTimeLimit is the warning limit; see SoftLimit.
	SoftTimeLimit time.Duration
	ParentID      *int64
	RootID        *int64
	WorkerID      string

	soft chan struct{} // closed at the soft limit; nil when there is none
	exec *execution    // nil for an Info not made by a worker
}

// SoftLimit returns a channel that is closed when the attempt's soft time
// limit passes (Celery's SoftTimeLimitExceeded, as a signal the handler
// selects on). Without a soft limit the channel is never closed.
func (i *Info) SoftLimit() <-chan struct{} {
	return i.soft
}

// SoftLimitExceeded reports whether the soft time limit has passed.
func (i *Info) SoftLimitExceeded() bool {
	select {
	case <-i.soft:
		return true
	default:
		return false
	}
}

func (i *Info) info() *Info { return i }

// JobRef is any job a handler was given (a *Job[T] of any T). CompleteTx
// takes one.
type JobRef interface {
	info() *Info
}

// TaskOptions are a task's defaults on the worker side. A nil
// *TaskOptions means all defaults. Values stored on the job itself (set
// by the producer: retry_delay_ms, time limits, ignore_result) win over
// these, except where a field says otherwise.
type TaskOptions struct {
	// MaxRetries, when set, replaces the job's max_retries for this task:
	// the job fails once Attempt > MaxRetries. Use queue.Ptr.
	MaxRetries *int
	// RetryDelay is the first retry's delay of the exponential backoff;
	// 0 means RetryDelayDefault. A job enqueued with its own RetryDelay
	// retries after exactly that delay instead.
	RetryDelay time.Duration
	// MaxRetryDelay caps the backoff; 0 means MaxRetryDelayDefault.
	MaxRetryDelay time.Duration
	// RetryJitter spreads each delay by ± this fraction (0 to 1); 0 means
	// RetryJitterDefault. Set Backoff for exact delays.
	RetryJitter float64
	// Backoff, when set, replaces the exponential backoff: it returns the
	// delay before the retry that follows the given failed attempt (1 for
	// the first).
	Backoff func(attempt int) time.Duration
	// RetryIf decides which errors are retried; nil retries every error
	// but a Permanent one. Errors it rejects fail the job at once.
	RetryIf func(err error) bool
	// TimeLimit is the hard limit of one attempt; 0 means none. The
	// handler's context is cancelled at the limit, and its slot is taken
	// back after Config.CancelGrace even if it ignores the context.
	TimeLimit time.Duration
	// SoftTimeLimit is when the handler is warned (Job.SoftLimit); 0 means
	// none. It must be shorter than TimeLimit.
	SoftTimeLimit time.Duration
	// IgnoreResult drops the handler's result instead of storing it (a job
	// enqueued with IgnoreResult drops it too).
	IgnoreResult bool
	// Mutex makes the task a mutex across the cluster (what celery_mutex
	// does): at most one of its jobs runs at a time, on any worker; the
	// others wait their turn in their queue, not failed and without
	// using up an attempt. With MutexArgs, the mutex is per distinct
	// values of those top-level args fields (jobs for different users run
	// side by side; two for one user never do). The key is computed by
	// the database (pgq.mutex_key), so every worker agrees; a job enqueued
	// with its own queue.Options.MutexKey keeps that key. See
	// docs/limits.md.
	Mutex bool
	// MutexArgs are the args fields the mutex is keyed by; setting them
	// implies Mutex.
	MutexArgs []string
}

func (o *TaskOptions) normalize() (TaskOptions, error) {
	var n TaskOptions
	if o != nil {
		n = *o
	}
	switch {
	case n.MaxRetries != nil && *n.MaxRetries < 0:
		return n, errors.New("MaxRetries cannot be negative")
	case n.RetryDelay < 0:
		return n, errors.New("RetryDelay cannot be negative")
	case n.MaxRetryDelay < 0:
		return n, errors.New("MaxRetryDelay cannot be negative")
	case n.RetryJitter < 0 || n.RetryJitter > 1:
		return n, errors.New("RetryJitter must be between 0 and 1")
	case n.TimeLimit < 0:
		return n, errors.New("TimeLimit cannot be negative")
	case n.SoftTimeLimit < 0:
		return n, errors.New("SoftTimeLimit cannot be negative")
	case n.TimeLimit > 0 && n.SoftTimeLimit >= n.TimeLimit:
		return n, fmt.Errorf("SoftTimeLimit %s must be shorter than TimeLimit %s", n.SoftTimeLimit, n.TimeLimit)
	case slices.Contains(n.MutexArgs, ""):
		return n, errors.New("MutexArgs cannot hold an empty field name")
	}
	if len(n.MutexArgs) > 0 {
		n.Mutex = true
		n.MutexArgs = slices.Clone(n.MutexArgs)
	}
	if n.RetryDelay == 0 {
		n.RetryDelay = RetryDelayDefault
	}
	if n.MaxRetryDelay == 0 {
		n.MaxRetryDelay = MaxRetryDelayDefault
	}
	if n.RetryJitter == 0 {
		n.RetryJitter = RetryJitterDefault
	}
	return n, nil
}

// backoff returns the delay before the retry that follows a failed attempt.
func (o *TaskOptions) backoff(attempt int, rnd func() float64) time.Duration {
	if o.Backoff != nil {
		return max(o.Backoff(attempt), 0)
	}
	d := float64(o.RetryDelay) * math.Pow(2, float64(max(attempt-1, 0)))
	d *= 1 + o.RetryJitter*(2*rnd()-1)
	return time.Duration(min(d, float64(o.MaxRetryDelay)))
}

// Registry maps task names to handlers. Register every task before the
// worker starts; a Registry is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	tasks map[string]*task
}

type task struct {
	name    string
	handler Handler
	opts    TaskOptions
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{tasks: map[string]*task{}}
}

// Handle registers h for the task name. Like http.ServeMux.Handle, it
// panics on a programming error: an invalid name, a nil handler, invalid
// options or a name registered twice.
func (r *Registry) Handle(name string, h Handler, opts *TaskOptions) {
	if err := queue.ValidateTaskName(name); err != nil {
		panic(fmt.Sprintf("worker: register %q: %v", name, err))
	}
	if h == nil {
		panic(fmt.Sprintf("worker: register %s: handler is nil", name))
	}
	o, err := opts.normalize()
	if err != nil {
		panic(fmt.Sprintf("worker: register %s: TaskOptions.%v", name, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.tasks[name]; dup {
		panic(fmt.Sprintf("worker: task %s is registered twice", name))
	}
	r.tasks[name] = &task{name: name, handler: h, opts: o}
}

// HandleFunc registers a function as the handler of the task name.
func (r *Registry) HandleFunc(name string, f func(ctx context.Context, job *Job[json.RawMessage]) (any, error), opts *TaskOptions) {
	r.Handle(name, HandlerFunc(f), opts)
}

// Register registers a handler that receives the job's args decoded into
// T; the task name is T's TaskName. Args that cannot be decoded fail the
// job at once with an error naming the task and the reason (ErrBadArgs).
// It panics like Registry.Handle.
//
//	worker.Register(reg, func(ctx context.Context, job *worker.Job[SendEmail]) (any, error) {
//		return nil, mailer.Send(ctx, job.Args.To, job.Args.Subject)
//	}, &worker.TaskOptions{TimeLimit: time.Minute})
func Register[T queue.TaskArgs](r *Registry, fn func(ctx context.Context, job *Job[T]) (any, error), opts *TaskOptions) {
	if fn == nil {
		panic(fmt.Sprintf("worker: register %T: handler is nil", *new(T)))
	}
	r.Handle(taskName[T](), typed[T](fn), opts)
}

// taskName returns T's task name, also when T is a pointer type.
func taskName[T queue.TaskArgs]() string {
	var zero T
	if rt := reflect.TypeFor[T](); rt.Kind() == reflect.Pointer {
		zero = reflect.New(rt.Elem()).Interface().(T)
	}
	return zero.TaskName()
}

type typed[T queue.TaskArgs] func(ctx context.Context, job *Job[T]) (any, error)

func (f typed[T]) Work(ctx context.Context, raw *Job[json.RawMessage]) (any, error) {
	j := &Job[T]{Info: raw.Info}
	if rt := reflect.TypeFor[T](); rt.Kind() == reflect.Pointer {
		j.Args = reflect.New(rt.Elem()).Interface().(T)
		if err := json.Unmarshal(raw.Args, j.Args); err != nil {
			return nil, badArgs(raw.Task, j.Args, err)
		}
	} else if err := json.Unmarshal(raw.Args, &j.Args); err != nil {
		return nil, badArgs(raw.Task, j.Args, err)
	}
	return f(ctx, j)
}

func badArgs(task string, into any, err error) error {
	return Permanent(fmt.Errorf("%w of task %s into %T: %v", ErrBadArgs, task, into, err))
}

// Tasks returns the registered task names, sorted.
func (r *Registry) Tasks() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.tasks))
	for n := range r.tasks {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// snapshot copies the table for a worker, which then reads it without locks.
func (r *Registry) snapshot() map[string]*task {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := make(map[string]*task, len(r.tasks))
	for n, t := range r.tasks {
		m[n] = t
	}
	return m
}
