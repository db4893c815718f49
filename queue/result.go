package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pgq/pgq/db"
)

// Celery's names for job states, as AsyncResult reports them.
const (
	CeleryPending = "PENDING" // pending, scheduled or available
	CeleryStarted = "STARTED" // running
	CeleryRetry   = "RETRY"   // failed an attempt, waiting for the next
	CelerySuccess = "SUCCESS"
	CeleryFailure = "FAILURE"
	CeleryRevoked = "REVOKED" // cancelled
)

// CeleryState maps a pgq state to Celery's name for it.
func CeleryState(state string) string {
	switch state {
	case StateRunning:
		return CeleryStarted
	case StateRetrying:
		return CeleryRetry
	case StateSucceeded:
		return CelerySuccess
	case StateFailed:
		return CeleryFailure
	case StateCancelled:
		return CeleryRevoked
	}
	return CeleryPending
}

// Finished reports whether state is final: succeeded, failed or cancelled.
func Finished(state string) bool {
	return state == StateSucceeded || state == StateFailed || state == StateCancelled
}

// Ready reports whether the job has finished (Celery's ready()).
func (j *Job) Ready() bool { return Finished(j.State) }

// Successful reports whether the job succeeded.
func (j *Job) Successful() bool { return j.State == StateSucceeded }

// Failed reports whether the job failed for good (retries used up, or a
// permanent error).
func (j *Job) Failed() bool { return j.State == StateFailed }

// CeleryState returns the job's state in Celery's words.
func (j *Job) CeleryState() string { return CeleryState(j.State) }

// ErrJobFailed is matched by the error AsyncResult.Get returns for a job
// that failed; ErrJobCancelled by the one for a revoked job. Both are
// *JobFailedError values.
var (
	ErrJobFailed    = errors.New("job failed")
	ErrJobCancelled = errors.New("job was cancelled")
)

// JobFailedError is a job's own error, as Get returns it: the job ended
// failed or cancelled.
type JobFailedError struct {
	ID    int64
	Task  string
	State string
	// Err is the last error recorded in the job's history ("" if none).
	Err string
	// Stack is that error's stack or traceback, when the worker kept one.
	Stack string
}

func (e *JobFailedError) Error() string {
	msg := e.Err
	if msg == "" {
		msg = e.State
	}
	return fmt.Sprintf("job %d (%s) %s: %s", e.ID, e.Task, e.State, msg)
}

// Is matches ErrJobFailed or ErrJobCancelled by state.
func (e *JobFailedError) Is(target error) bool {
	return (target == ErrJobFailed && e.State == StateFailed) ||
		(target == ErrJobCancelled && e.State == StateCancelled)
}

// ResultPollInterval is how often a waiting Get looks at the job when no
// notification arrives (notifications are lost while the listening
// connection is down, or when they cannot be used, behind pgbouncer).
const ResultPollInterval = time.Second

// AsyncResult is a handle to one job's outcome (Celery's AsyncResult).
type AsyncResult struct {
	ID int64
	c  *Client
	// PollInterval overrides ResultPollInterval for this handle.
	PollInterval time.Duration

	afterLook func() // test hook: called after each look at an unfinished job
}

// AsyncResult returns a handle to the outcome of the job with the given id.
func (c *Client) AsyncResult(id int64) *AsyncResult { return &AsyncResult{ID: id, c: c} }

// AsyncResult returns a handle to the enqueued job's outcome.
func (e Enqueued) AsyncResult() *AsyncResult { return &AsyncResult{ID: e.ID, c: e.client} }

// Job reads the job as it is now; an unknown id gives ErrJobNotFound.
func (r *AsyncResult) Job(ctx context.Context) (*Job, error) { return r.c.Job(ctx, r.ID) }

// State returns the job's state in Celery's words (PENDING, STARTED,
// RETRY, SUCCESS, FAILURE, REVOKED); an unknown id is an error, never
// PENDING forever.
func (r *AsyncResult) State(ctx context.Context) (string, error) {
	j, err := r.Job(ctx)
	if err != nil {
		return "", err
	}
	return j.CeleryState(), nil
}

// Ready reports whether the job has finished.
func (r *AsyncResult) Ready(ctx context.Context) (bool, error) {
	j, err := r.Job(ctx)
	if err != nil {
		return false, err
	}
	return j.Ready(), nil
}

// Get waits until the job has finished and decodes its result into out
// (which may be nil to discard it). A failed or cancelled job gives a
// *JobFailedError; ctx ending gives ctx's error. It waits on a
// notification sent when the job's completion commits, and looks at the
// job every PollInterval as a fallback, so it neither busy-polls nor hangs
// when a notification is lost.
func (r *AsyncResult) Get(ctx context.Context, out any) error {
	j, err := r.Wait(ctx)
	if err != nil {
		return err
	}
	if j.State != StateSucceeded {
		return jobFailed(j)
	}
	if out == nil || len(j.Result) == 0 {
		return nil
	}
	if err := json.Unmarshal(j.Result, out); err != nil {
		return fmt.Errorf("decode result of job %d into %T: %w", j.ID, out, err)
	}
	return nil
}

// Wait waits until the job has finished and returns it, whatever its
// outcome.
func (r *AsyncResult) Wait(ctx context.Context) (*Job, error) {
	done, stop := r.c.results.subscribe(ctx, r.ID)
	defer stop()
	poll := r.PollInterval
	if poll <= 0 {
		poll = ResultPollInterval
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		// Subscribed first, looked second: a completion between the two
		// is seen by the look.
		j, err := r.Job(ctx)
		if err != nil {
			return nil, err
		}
		if j.Ready() {
			return j, nil
		}
		if r.afterLook != nil {
			r.afterLook()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-done:
		case <-tick.C:
		}
	}
}

// Forget deletes the job's stored result (the job row stays). An unknown
// id gives ErrJobNotFound.
func (r *AsyncResult) Forget(ctx context.Context) error {
	n, err := r.c.queries(r.c.pool).ForgetResult(ctx, r.ID)
	if err != nil {
		return dbError(r.c.schema, fmt.Sprintf("forget result of job %d", r.ID), err)
	}
	if n == 0 {
		return fmt.Errorf("forget result of job %d: %w", r.ID, ErrJobNotFound)
	}
	return nil
}

func jobFailed(j *Job) error {
	e := &JobFailedError{ID: j.ID, Task: j.Task, State: j.State}
	if n := len(j.Errors); n > 0 {
		e.Err, e.Stack = j.Errors[n-1].Error, j.Errors[n-1].Stack
	}
	return e
}

// GroupResult is a handle to the outcomes of several jobs (Celery's
// GroupResult), in the order given.
type GroupResult struct {
	IDs []int64
	c   *Client
	// PollInterval overrides ResultPollInterval.
	PollInterval time.Duration
}

// GroupResult returns a handle to the outcomes of the jobs with these ids.
func (c *Client) GroupResult(ids ...int64) *GroupResult { return &GroupResult{IDs: ids, c: c} }

// GroupCounts says how many jobs of a group are in which condition.
type GroupCounts struct {
	Total, Completed, Failed, Cancelled, Waiting int
}

// Ready reports whether every job has finished.
func (g GroupCounts) Ready() bool { return g.Completed+g.Failed+g.Cancelled == g.Total }

// Counts reads the states of the group's jobs. An id that matches no job
// gives ErrJobNotFound.
func (g *GroupResult) Counts(ctx context.Context) (GroupCounts, error) {
	rows, err := g.c.queries(g.c.pool).JobStates(ctx, g.IDs)
	if err != nil {
		return GroupCounts{}, dbError(g.c.schema, "read group states", err)
	}
	states := make(map[int64]string, len(rows))
	for _, r := range rows {
		states[r.ID] = r.State
	}
	counts := GroupCounts{Total: len(g.IDs)}
	for _, id := range g.IDs {
		s, ok := states[id]
		if !ok {
			return GroupCounts{}, fmt.Errorf("job %d: %w", id, ErrJobNotFound)
		}
		switch s {
		case StateSucceeded:
			counts.Completed++
		case StateFailed:
			counts.Failed++
		case StateCancelled:
			counts.Cancelled++
		default:
			counts.Waiting++
		}
	}
	return counts, nil
}

// Join waits until every job has finished and returns their results in
// the order of IDs. If any job failed or was cancelled it returns the
// first such job's *JobFailedError (in IDs order) once all have finished.
// It waits on one subscription for the whole group, looking at the states
// of all its jobs at each announcement (and every PollInterval).
func (g *GroupResult) Join(ctx context.Context) ([]json.RawMessage, error) {
	done, stop := g.c.results.subscribe(ctx, g.IDs...)
	defer stop()
	poll := g.PollInterval
	if poll <= 0 {
		poll = ResultPollInterval
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		counts, err := g.Counts(ctx)
		if err != nil {
			return nil, err
		}
		if counts.Ready() {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-done:
		case <-tick.C:
		}
	}
	rows, err := g.c.queries(g.c.pool).JobResults(ctx, g.IDs)
	if err != nil {
		return nil, dbError(g.c.schema, "read group results", err)
	}
	byID := make(map[int64]db.JobResultsRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = *r
	}
	out := make([]json.RawMessage, len(g.IDs))
	for i, id := range g.IDs {
		r, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("job %d: %w", id, ErrJobNotFound)
		}
		if r.State != StateSucceeded {
			j, err := g.c.Job(ctx, id)
			if err != nil {
				return nil, err
			}
			return nil, jobFailed(j)
		}
		out[i] = r.Result
	}
	return out, nil
}
