package worker

import (
	"errors"
	"fmt"
	"time"
)

// Control values. A handler returns one of these as its error to tell the
// worker what to do with the job instead of applying the retry policy.

// RetryError asks for another attempt after a given delay. It uses up an
// attempt: when none is left the job fails with Err. Make one with Retry,
// or build it to keep the cause: &worker.RetryError{After: d, Err: err}.
type RetryError struct {
	After time.Duration
	Err   error // the cause recorded in the job's error history; may be nil
}

func (e *RetryError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("retry in %s: %v", e.After, e.Err)
	}
	return fmt.Sprintf("retry requested by the handler, in %s", e.After)
}

func (e *RetryError) Unwrap() error { return e.Err }

// Retry returns an error that makes the worker run the job again after
// the given delay (Celery's self.retry(countdown=...)). The attempt counts
// against the job's retries.
func Retry(after time.Duration) error {
	return &RetryError{After: max(after, 0)}
}

// SnoozeError puts the job back to run after a delay without using up an
// attempt and without recording an error. Make one with Snooze.
type SnoozeError struct {
	After time.Duration
}

func (e *SnoozeError) Error() string { return fmt.Sprintf("snoozed for %s", e.After) }

// Snooze returns an error that reschedules the job to run after d without
// counting the attempt: use it for "not yet" (a resource is busy, a
// precondition does not hold), not for failures.
func Snooze(d time.Duration) error {
	return &SnoozeError{After: max(d, 0)}
}

// PermanentError marks a failure that no retry can fix: the job fails at
// once whatever retries it has left. Make one with Permanent.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "permanent failure"
	}
	return e.Err.Error()
}

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the job fails at once without retries.
// Permanent(nil) is a permanent failure with a generic message.
func Permanent(err error) error {
	return &PermanentError{Err: err}
}

// ErrTimeLimit is the cause of a handler's context when the job's hard
// time limit passes (context.Cause(ctx) matches it), and is matched by the
// error recorded for such an attempt.
var ErrTimeLimit = errors.New("hard time limit exceeded")

// ErrShutdown is the cause of a handler's context when the worker stops
// and the job did not finish within Config.ShutdownTimeout. The job goes
// back to its queue without using up an attempt.
var ErrShutdown = errors.New("worker shutting down")

// ErrUnknownTask is matched by the error recorded for a job whose task has
// no handler on the worker that claimed it.
var ErrUnknownTask = errors.New("unknown task")

// ErrBadArgs is matched by the error recorded for a job whose args cannot
// be decoded into its handler's type.
var ErrBadArgs = errors.New("cannot decode args")

// ErrNotHeld is returned by CompleteTx when the job is no longer held by
// this attempt: it was completed already, or rescued from a worker that
// was presumed dead.
var ErrNotHeld = errors.New("job is no longer held by this attempt")

// TimeLimitError is the error recorded for an attempt that ran past its
// hard time limit. It matches ErrTimeLimit.
type TimeLimitError struct {
	Limit time.Duration
	Err   error // what the handler returned, if it returned in time
}

func (e *TimeLimitError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("hard time limit of %s exceeded (the handler returned: %v)", e.Limit, e.Err)
	}
	return fmt.Sprintf("hard time limit of %s exceeded", e.Limit)
}

func (e *TimeLimitError) Unwrap() error { return e.Err }

// Is makes a TimeLimitError match ErrTimeLimit.
func (e *TimeLimitError) Is(target error) bool { return target == ErrTimeLimit }

// PanicError is the error recorded for a handler that panicked.
type PanicError struct {
	Value any    // what was passed to panic
	Stack string // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// ErrRevoked is the cause of a handler's context when its job is revoked
// with terminate (queue.Client.Revoke, `pgq revoke --terminate`), and is
// matched by the error recorded for that attempt. The job ends cancelled
// and is not retried.
var ErrRevoked = errors.New("job revoked")

// RevokedError is the error recorded for an attempt stopped by a revoke.
// It matches ErrRevoked.
type RevokedError struct {
	Err error // what the handler returned, if it returned in time
}

func (e *RevokedError) Error() string {
	if e.Err != nil && !errors.Is(e.Err, ErrRevoked) {
		return fmt.Sprintf("revoked: terminated while running (the handler returned: %v)", e.Err)
	}
	return "revoked: terminated while running"
}

func (e *RevokedError) Unwrap() error { return e.Err }

// Is makes a RevokedError match ErrRevoked.
func (e *RevokedError) Is(target error) bool { return target == ErrRevoked }
