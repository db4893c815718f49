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
	row   *db.ClaimJobsRow // as the claim returned it; never written
	task  *task            // nil: no handler for row.Task
	job   *Job[json.RawMessage]
	start time.Time

	ignoreResult bool
	// ctx is the parent of the handler's context; cancel ends it with
	// cause ErrRevoked when the job is revoked with terminate, and with
	// ErrShutdown when the worker stops its jobs (Worker.stopJobs).
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
	// killTimer and softTimer are the time limits' timers (nil: none);
	// only the goroutine that runs execute touches them.
	killTimer, softTimer *time.Timer

	// jobv and info are what job points to, allocated with the
	// execution rather than on their own.
	jobv Job[json.RawMessage]
	info Info
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

func (w *Worker) newExecution(r *db.ClaimJobsRow) *execution {
	t := w.tasks[r.Task]
	e := &execution{w: w, row: r, task: t, start: time.Now()}
	e.ctx, e.cancel = context.WithCancelCause(context.Background()) // see stopJobs
	e.ignoreResult = r.IgnoreResult || (t != nil && t.opts.IgnoreResult)
	e.info = Info{
		ID: r.ID, Task: r.Task, Queue: r.Queue, Priority: int(r.Priority),
		Attempt: int(r.Attempt), MaxRetries: int(r.MaxRetries),
		RawArgs: r.Args, Headers: r.Meta, CreatedAt: r.CreatedAt, RunAt: r.RunAt, StartedAt: e.start,
		ParentID: r.ParentID, RootID: r.RootID, WorkerID: w.cfg.WorkerID, exec: e,
	}
	info := &e.info
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
	e.jobv = Job[json.RawMessage]{Info: info, Args: r.Args}
	e.job = &e.jobv
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
// outcome. Its frame is kept small, the rare cases and the time limits
// being in functions of their own: a goroutine starts with a small
// stack, and a first frame that does not fit in it costs a stack copy
// per job.
func (w *Worker) execute(e *execution) {
	defer e.cleanup()
	if e.row.Expired || e.task == nil {
		e.refuse()
		return
	}
	ctx, cancel := e.ctx, context.CancelFunc(nil)
	if e.info.TimeLimit > 0 || e.info.SoftTimeLimit > 0 {
		ctx, cancel = e.startLimits()
	}
	result, err := e.call(ctx)
	if cancel != nil {
		cancel()
	}
	if !e.resolve() {
		e.returnedLate(err)
		return
	}
	var o outcome
	e.decide(&o, ctx, result, err)
	e.end(&o)
	w.finish(&o)
}

// cleanup runs when execute returns: it stops the attempt's timers,
// ends its context and tells the worker not to wait for it any longer.
func (e *execution) cleanup() {
	if e.softTimer != nil {
		e.softTimer.Stop()
	}
	if e.killTimer != nil {
		e.killTimer.Stop()
	}
	if t := e.revokeKill.Load(); t != nil {
		t.Stop()
	}
	e.cancel(nil)
	e.release()
}

// refuse ends an attempt without running a handler: the job expired
// before a worker could start it, or this worker has no handler for its
// task.
func (e *execution) refuse() {
	if !e.resolve() {
		return // a revoke took the slot back first
	}
	w, r := e.w, e.row
	var o outcome
	if r.Expired {
		o = e.base()
		o.state, o.refund = stateCancelled, true
		o.err = fmt.Errorf("expired at %s before a worker could start it", r.ExpiresAt.UTC().Format(time.RFC3339Nano))
	} else {
		o = e.failure(Permanent(fmt.Errorf("%w %q: worker %s has no handler for it (it handles %s); register one with worker.Register, or route the task to a queue whose workers handle it",
			ErrUnknownTask, r.Task, w.cfg.WorkerID, describeTasks(w.tasks))))
	}
	e.end(&o)
	w.finish(&o)
}

// startLimits starts the attempt's time limits. It returns the handler's
// context, which ends at the hard limit with cause ErrTimeLimit, and its
// cancel func (nil without a hard limit); it arms the timer that takes
// the slot back from a handler that ignores its context for CancelGrace
// after that, and the soft limit's.
func (e *execution) startLimits() (context.Context, context.CancelFunc) {
	info := &e.info
	ctx, cancel := e.ctx, context.CancelFunc(nil)
	if info.TimeLimit > 0 {
		ctx, cancel = context.WithDeadlineCause(ctx, info.Deadline, &TimeLimitError{Limit: info.TimeLimit})
		e.killTimer = time.AfterFunc(info.TimeLimit+e.w.cfg.CancelGrace, e.ignoredTimeLimit)
	}
	if info.SoftTimeLimit > 0 {
		info.soft = make(chan struct{})
		e.softTimer = time.AfterFunc(info.SoftTimeLimit, func() { close(info.soft) })
	}
	return ctx, cancel
}

// ignoredTimeLimit takes the slot back from a handler still running
// CancelGrace after its hard limit.
func (e *execution) ignoredTimeLimit() {
	if !e.resolve() {
		return
	}
	w, r := e.w, e.row
	w.log.Error("handler ignored its time limit: slot taken back, the handler still runs",
		"job_id", r.ID, "task", r.Task, "queue", r.Queue, "attempt", r.Attempt, "duration", time.Since(e.start))
	o := e.failure(&TimeLimitError{Limit: e.info.TimeLimit})
	e.end(&o)
	w.finish(&o)
	e.release() // abandoned: shutdown does not wait for it
}

// returnedLate logs a handler that returned after its slot was taken
// back (time limit or revoke ignored); its outcome is dropped.
func (e *execution) returnedLate(err error) {
	r := e.row
	e.w.log.Warn("handler returned after its slot was taken back; its outcome is dropped",
		"job_id", r.ID, "task", r.Task, "queue", r.Queue, "attempt", r.Attempt, "duration", time.Since(e.start), "error", err)
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

// nullJSON is the result of a handler that returns nil, as json.Marshal
// would encode it. It is shared: nothing writes to an outcome's result.
var nullJSON = json.RawMessage("null")

// decide turns what the handler returned into the outcome to write.
// It writes the outcome into o: the common case, a success with no
// result to encode, is decided here and the others by decideOther, so
// that only they pay for its frame (see execute).
func (e *execution) decide(o *outcome, ctx context.Context, result any, err error) {
	if err != nil || e.completedTx.Load() || (result != nil && !e.ignoreResult) {
		e.decideOther(o, ctx, result, err)
		return
	}
	r := e.row
	*o = outcome{id: r.ID, attempt: r.Attempt, task: r.Task, queue: r.Queue, state: stateSucceeded, duration: time.Since(e.start)}
	if !e.ignoreResult {
		o.result = nullJSON
	}
}

// decideOther is decide for a failure, a CompleteTx, or a result to
// encode.
func (e *execution) decideOther(o *outcome, ctx context.Context, result any, err error) {
	switch {
	case err != nil:
		*o = e.decideError(ctx, err)
	case e.completedTx.Load():
		// The row says succeeded if the handler's transaction committed;
		// this failure is written only if it did not.
		*o = e.failure(errors.New("the handler called CompleteTx but its transaction did not commit"))
	default:
		*o = e.base()
		o.state = stateSucceeded
		b, merr := json.Marshal(result)
		if merr != nil {
			*o = e.failure(Permanent(fmt.Errorf("encode result of task %s as JSON: %w", e.row.Task, merr)))
			return
		}
		o.result = b
	}
}

// decideError turns the error a handler returned into the outcome to
// write.
func (e *execution) decideError(ctx context.Context, err error) outcome {
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
	w, r := e.w, e.row
	w.log.Info("job revoked: cancelling its handler", "job_id", r.ID, "task", r.Task, "queue", r.Queue, "attempt", r.Attempt)
	e.cancel(ErrRevoked)
	e.revokeKill.Store(time.AfterFunc(w.cfg.CancelGrace, func() {
		if e.resolve() {
			w.log.Error("revoked handler ignored its cancelled context: slot taken back, the handler still runs",
				"job_id", r.ID, "task", r.Task, "queue", r.Queue, "attempt", r.Attempt, "duration", time.Since(e.start))
			o := e.revokedOutcome(nil)
			e.end(&o)
			w.finish(&o)
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
