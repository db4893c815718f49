package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Names of the built-in diagnostic tasks (see RegisterBuiltins).
const (
	TaskNoop  = "pgq.noop"
	TaskEcho  = "pgq.echo"
	TaskSleep = "pgq.sleep"
	TaskFail  = "pgq.fail"
)

// SleepArgs are the args of pgq.sleep.
type SleepArgs struct {
	Seconds float64 `json:"seconds"`
}

// TaskName returns "pgq.sleep".
func (SleepArgs) TaskName() string { return TaskSleep }

// FailArgs are the args of pgq.fail.
type FailArgs struct {
	Message   string `json:"message"`
	Permanent bool   `json:"permanent"`
}

// TaskName returns "pgq.fail".
func (FailArgs) TaskName() string { return TaskFail }

// RegisterBuiltins registers the diagnostic tasks, useful to check a
// deployment and to benchmark it:
//
//   - pgq.noop does nothing and returns null;
//   - pgq.echo returns its args;
//   - pgq.sleep sleeps {"seconds": n}, returning early with an error when
//     its context ends (time limit, shutdown);
//   - pgq.fail fails with {"message": s}; with "permanent": true it fails
//     without retries.
func RegisterBuiltins(reg *Registry) {
	reg.HandleFunc(TaskNoop, func(context.Context, *Job[json.RawMessage]) (any, error) {
		return nil, nil
	}, nil)
	reg.HandleFunc(TaskEcho, func(_ context.Context, job *Job[json.RawMessage]) (any, error) {
		return job.Args, nil
	}, nil)
	Register(reg, func(ctx context.Context, job *Job[SleepArgs]) (any, error) {
		if job.Args.Seconds < 0 {
			return nil, Permanent(fmt.Errorf("pgq.sleep: seconds cannot be negative (got %v)", job.Args.Seconds))
		}
		t := time.NewTimer(time.Duration(job.Args.Seconds * float64(time.Second)))
		defer t.Stop()
		select {
		case <-t.C:
			return map[string]float64{"slept": job.Args.Seconds}, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("pgq.sleep interrupted: %w", context.Cause(ctx))
		}
	}, nil)
	Register(reg, func(_ context.Context, job *Job[FailArgs]) (any, error) {
		msg := job.Args.Message
		if msg == "" {
			msg = "pgq.fail: failing as asked"
		}
		if job.Args.Permanent {
			return nil, Permanent(errors.New(msg))
		}
		return nil, errors.New(msg)
	}, nil)
}
