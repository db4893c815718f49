package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/pgq/pgq/db"
)

// execution is one claimed job from claim to outcome.
type execution struct {
	w     *Worker
	row   db.ClaimJobsRow
	task  *task // nil: no handler for row.Task
	job   *Job[json.RawMessage]
	start time.Time

	ignoreResult bool
	// ctx is the parent of the handler's context; cancel ends it with
	// cause ErrRevoked when the job is revoked with terminate.
	ctx     context.Context
	cancel  context.CancelCauseFunc
	revoked atomic.Bool
	// revokeKill takes the slot back when a revoked handler ignores its
	// context for CancelGrace.
	revokeKill atomic.Pointer[time.Timer]

	resolved    atomic.Bool // the outcome was decided (first caller wins)
	released    sync.Once   // execWG.Done: the handler returned, or was abandoned
	completedTx atomic.Bool // CompleteTx succeeded inside the handler's transaction
	span        trace.Span  // the attempt's span; nil: tracing is off
}

// resolve reports whether the caller is the first to decide the outcome:
// the handler returning, or the time-limit timer taking the slot back.
func (e *execution) resolve() bool { return e.resolved.CompareAndSwap(false, true) }

// release tells the worker this execution no longer needs waiting for.
func (e *execution) release() { e.released.Do(e.w.execWG.Done) }

// outcome is what the completer writes for one attempt.
type outcome struct {
	id       int64
	attempt  int32
	task     string
	queue    string
	state    string // succeeded, retrying, failed, scheduled, available, cancelled
	result   json.RawMessage
	delay    time.Duration
	err      error
	stack    string
	refund   bool // the attempt is not counted
	viaTx    bool // CompleteTx ran: a write that finds the row finished means it committed
	duration time.Duration
}

const (
	stateSucceeded = "succeeded"
	stateRetrying  = "retrying"
	stateFailed    = "failed"
	stateScheduled = "scheduled"
	stateAvailable = "available"
	stateCancelled = "cancelled"
)

func (w *Worker) newExecution(r db.ClaimJobsRow) *execution {
	t := w.tasks[r.Task]
	e := &execution{w: w, row: r, task: t, start: time.Now()}
	e.ctx, e.cancel = context.WithCancelCause(w.jobsCtx)
	e.ignoreResult = r.IgnoreResult || (t != nil && t.opts.IgnoreResult)
	info := &Info{
		ID: r.ID, Task: r.Task, Queue: r.Queue, Priority: int(r.Priority),
		Attempt: int(r.Attempt), MaxRetries: int(r.MaxRetries),
		RawArgs: r.Args, Headers: r.Meta, CreatedAt: r.CreatedAt, RunAt: r.RunAt, StartedAt: e.start,
		ParentID: r.ParentID, RootID: r.RootID, WorkerID: w.cfg.WorkerID, exec: e,
	}
	if t != nil && t.opts.MaxRetries != nil {
		info.MaxRetries = *t.opts.MaxRetries
	}
	info.TimeLimit = millisOr(r.TimeLimitMs, t, func(o *TaskOptions) time.Duration { return o.TimeLimit })
	info.SoftTimeLimit = millisOr(r.SoftTimeLimitMs, t, func(o *TaskOptions) time.Duration { return o.SoftTimeLimit })
	if info.TimeLimit > 0 {
		info.Deadline = e.start.Add(info.TimeLimit)
		if info.SoftTimeLimit >= info.TimeLimit {
			info.SoftTimeLimit = 0
		}
	}
	e.job = &Job[json.RawMessage]{Info: info, Args: r.Args}
	w.begin(e)
	return e
}

// millisOr returns the job's own value when set, else the task's.
func millisOr(ms *int32, t *task, f func(*TaskOptions) time.Duration) time.Duration {
	if ms != nil {
		return time.Duration(*ms) * time.Millisecond
	}
	if t != nil {
		return f(&t.opts)
	}
	return 0
}

// execute runs one claimed job in its own goroutine and decides its
// outcome.
func (w *Worker) execute(e *execution) {
	defer e.release()
	defer e.cancel(nil)
	defer func() {
		if t := e.revokeKill.Load(); t != nil {
			t.Stop()
		}
	}()
	r := &e.row
	switch {
	case r.Expired:
		e.resolve()
		o := e.base()
		o.state, o.refund = stateCancelled, true
		o.err = fmt.Errorf("expired at %s before a worker could start it", r.ExpiresAt.UTC().Format(time.RFC3339Nano))
		w.finish(e.end(o))
		return
	case e.task == nil:
		e.resolve()
		w.finish(e.end(e.failure(Permanent(fmt.Errorf("%w %q: worker %s has no handler for it (it handles %s); register one with worker.Register, or route the task to a queue whose workers handle it",
			ErrUnknownTask, r.Task, w.cfg.WorkerID, describeTasks(w.tasks))))))
		return
	}

	info := e.job.Info
	ctx, cancel := e.ctx, context.CancelFunc(func() {})
	if info.TimeLimit > 0 {
		ctx, cancel = context.WithDeadlineCause(ctx, info.Deadline, &TimeLimitError{Limit: info.TimeLimit})
		// A handler that ignores its context loses its slot after the grace.
		kill := time.AfterFunc(info.TimeLimit+w.cfg.CancelGrace, func() {
			if e.resolve() {
				w.log.Error("handler ignored its time limit: slot taken back, the handler still runs",
					"job_id", r.ID, "task", r.Task, "queue", r.Queue, "attempt", r.Attempt, "duration", time.Since(e.start))
				w.finish(e.end(e.failure(&TimeLimitError{Limit: info.TimeLimit})))
				e.release() // abandoned: shutdown does not wait for it
			}
		})
		defer kill.Stop()
	}
	if info.SoftTimeLimit > 0 {
		info.soft = make(chan struct{})
		soft := time.AfterFunc(info.SoftTimeLimit, func() { close(info.soft) })
		defer soft.Stop()
	}

	result, err := e.call(ctx)
	cancel()
	if !e.resolve() {
		w.log.Warn("handler returned after its slot was taken back; its outcome is dropped",
			"job_id", r.ID, "task", r.Task, "queue", r.Queue, "attempt", r.Attempt, "duration", time.Since(e.start), "error", err)
		return
	}
	w.finish(e.end(e.decide(ctx, result, err)))
}

// call runs the handler, turning a panic into a PanicError.
func (e *execution) call(ctx context.Context) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: string(debug.Stack())}
		}
	}()
	return e.task.handler.Work(ctx, e.job)
}

func (e *execution) base() outcome {
	return outcome{
		id: e.row.ID, attempt: e.row.Attempt, task: e.row.Task, queue: e.row.Queue,
		viaTx: e.completedTx.Load(), duration: time.Since(e.start),
	}
}

// decide turns what the handler returned into the outcome to write.
func (e *execution) decide(ctx context.Context, result any, err error) outcome {
	if err == nil {
		if e.completedTx.Load() {
			// The row says succeeded if the handler's transaction committed;
			// this failure is written only if it did not.
			return e.failure(errors.New("the handler called CompleteTx but its transaction did not commit"))
		}
		o := e.base()
		o.state = stateSucceeded
		if !e.ignoreResult {
			b, merr := json.Marshal(result)
			if merr != nil {
				return e.failure(Permanent(fmt.Errorf("encode result of task %s as JSON: %w", e.row.Task, merr)))
			}
			o.result = b
		}
		return o
	}
	if e.revoked.Load() && errors.Is(context.Cause(ctx), ErrRevoked) {
		return e.revokedOutcome(err)
	}
	if context.Cause(e.w.jobsCtx) != nil {
		// Cancelled by shutdown: back to the queue, attempt not counted.
		o := e.base()
		o.state, o.refund, o.err = stateAvailable, true, ErrShutdown
		return o
	}
	var snooze *SnoozeError
	if errors.As(err, &snooze) {
		o := e.base()
		o.state, o.refund, o.delay, o.err = stateScheduled, true, snooze.After, err
		return o
	}
	if ctx.Err() != nil {
		if tl := (*TimeLimitError)(nil); errors.As(context.Cause(ctx), &tl) && !errors.Is(err, ErrTimeLimit) {
			err = &TimeLimitError{Limit: tl.Limit, Err: err}
		}
	}
	return e.failure(err)
}

// revoke cancels the handler's context with cause ErrRevoked (once), and
// takes the slot back if the handler has not returned CancelGrace later.
func (e *execution) revoke() {
	if !e.revoked.CompareAndSwap(false, true) {
		return
	}
	w, r := e.w, &e.row
	w.log.Info("job revoked: cancelling its handler", "job_id", r.ID, "task", r.Task, "queue", r.Queue, "attempt", r.Attempt)
	e.cancel(ErrRevoked)
	e.revokeKill.Store(time.AfterFunc(w.cfg.CancelGrace, func() {
		if e.resolve() {
			w.log.Error("revoked handler ignored its cancelled context: slot taken back, the handler still runs",
				"job_id", r.ID, "task", r.Task, "queue", r.Queue, "attempt", r.Attempt, "duration", time.Since(e.start))
			w.finish(e.end(e.revokedOutcome(nil)))
			e.release() // abandoned: shutdown does not wait for it
		}
	}))
}

// revokedOutcome ends a revoked attempt cancelled, not retried.
func (e *execution) revokedOutcome(returned error) outcome {
	o := e.base()
	o.state = stateCancelled
	o.err = &RevokedError{Err: returned}
	return o
}

// failure applies the retry policy to a failed attempt.
func (e *execution) failure(err error) outcome {
	o := e.base()
	o.err = err
	if p := (*PanicError)(nil); errors.As(err, &p) {
		o.stack = p.Stack
	}
	exhausted := int(e.row.Attempt) > e.job.MaxRetries
	var (
		perm  *PermanentError
		retry *RetryError
	)
	switch {
	case errors.As(err, &perm):
		o.state = stateFailed
	case exhausted:
		o.state = stateFailed
	case errors.As(err, &retry):
		o.state, o.delay = stateRetrying, retry.After
	case e.task == nil, e.task.opts.RetryIf != nil && !e.task.opts.RetryIf(err):
		o.state = stateFailed
	case e.row.RetryDelayMs != nil:
		o.state, o.delay = stateRetrying, time.Duration(*e.row.RetryDelayMs)*time.Millisecond
	default:
		o.state, o.delay = stateRetrying, e.task.opts.backoff(int(e.row.Attempt), rand.Float64)
	}
	return o
}

func describeTasks(m map[string]*task) string {
	names := taskNames(m)
	if len(names) == 0 {
		return "no tasks"
	}
	slices.Sort(names)
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}
