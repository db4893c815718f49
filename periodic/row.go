package periodic

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/queue"
)

// Status is a periodic task as stored, with beat's bookkeeping: what
// `pgq periodic list` shows.
type Status struct {
	Name     string          `json:"name"`
	Schedule string          `json:"schedule"`
	TimeZone string          `json:"time_zone"`
	Task     string          `json:"task"`
	Args     json.RawMessage `json:"args"`
	Queue    string          `json:"queue,omitempty"`
	Priority *int            `json:"priority,omitempty"`
	// MaxRetries is nil when the task's route or the default applies.
	MaxRetries *int `json:"max_retries,omitempty"`
	// Expires is 0 for "at the next tick".
	Expires time.Duration `json:"expires_ms"`
	Missed  MissedTicks   `json:"missed"`
	Enabled bool          `json:"enabled"`
	Source  Source        `json:"source"`
	// RemovedAt is when a code task stopped being defined in code.
	RemovedAt *time.Time `json:"removed_at,omitempty"`
	// LastTick is the latest tick handled (enqueued or skipped).
	LastTick *time.Time `json:"last_tick,omitempty"`
	// LastRunAt and LastJobID describe the last job enqueued, by a tick or
	// by RunNow; LastJobState is that job's state now ("" when it is gone).
	LastRunAt    *time.Time `json:"last_run_at,omitempty"`
	LastJobID    *int64     `json:"last_job_id,omitempty"`
	LastJobState string     `json:"last_job_state,omitempty"`
	// NextTick is the next tick, computed now from the schedule (nil when
	// disabled or unschedulable).
	NextTick *time.Time `json:"next_tick,omitempty"`
	// Error says why the row cannot be scheduled ("" when it can).
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// row is one periodic_tasks row as beat uses it: parsed, or with the
// reason it cannot be.
type row struct {
	db.ListPeriodicTasksRow
	sched Schedule
	err   error // non-nil: the row is skipped
	// retryAt holds a row whose last tick failed back until then.
	retryAt time.Time
}

func newRow(r db.ListPeriodicTasksRow) *row {
	out := &row{ListPeriodicTasksRow: r}
	out.sched, out.err = Parse(r.Spec, r.TimeZone)
	if out.err == nil {
		out.err = out.checkJob()
	}
	return out
}

// checkJob rejects what the enqueue would reject, so that a bad row is
// skipped up front rather than failing at every tick.
func (r *row) checkJob() error {
	if err := queue.ValidateTaskName(r.Task); err != nil {
		return &ValidationError{Field: "task", Reason: reason(err)}
	}
	if r.Queue != nil {
		if err := queue.ValidateQueueName(*r.Queue); err != nil {
			return &ValidationError{Field: "queue", Reason: reason(err)}
		}
	}
	if r.Missed != string(RunOnce) && r.Missed != string(Skip) {
		return &ValidationError{Field: "missed", Reason: fmt.Sprintf("unknown policy %q", r.Missed)}
	}
	return nil
}

// anchor is the time after which the row's ticks count: its last tick, or
// when it was created, enabled or rescheduled, whichever is later.
func (r *row) anchor() time.Time {
	a := r.StartAfter
	if r.LastTick != nil && r.LastTick.After(a) {
		a = *r.LastTick
	}
	return a
}

func (r *row) expires() time.Duration { return intervalDuration(r.Expires) }

// jobOptions are the options of the job for tick (zero for run-now),
// whose successor is next (zero when there is none).
func (r *row) jobOptions(tick, next time.Time) *queue.Options {
	o := &queue.Options{Headers: map[string]any{"periodic_task": r.Name}}
	if !tick.IsZero() {
		o.Headers["periodic_tick"] = tick.UTC().Format(time.RFC3339)
	} else {
		o.Headers["periodic_run_now"] = true
	}
	if r.Queue != nil {
		o.Queue = *r.Queue
	}
	if r.Priority != nil {
		o.Priority = queue.Ptr(int(*r.Priority))
	}
	if r.MaxRetries != nil {
		o.MaxRetries = queue.Ptr(int(*r.MaxRetries))
	}
	if d := r.expires(); d > 0 {
		o.Expires = d
	} else if !next.IsZero() {
		o.ExpiresAt = next
	}
	return o
}

func (r *row) status(now time.Time) Status {
	s := Status{
		Name: r.Name, Schedule: r.Spec, TimeZone: r.TimeZone, Task: r.Task, Args: r.Args,
		Expires: r.expires(), Missed: MissedTicks(r.Missed), Enabled: r.Enabled, Source: Source(r.Source),
		RemovedAt: r.RemovedAt, LastTick: r.LastTick, LastRunAt: r.LastRunAt, LastJobID: r.LastJobID,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.Queue != nil {
		s.Queue = *r.Queue
	}
	if r.Priority != nil {
		s.Priority = queue.Ptr(int(*r.Priority))
	}
	if r.MaxRetries != nil {
		s.MaxRetries = queue.Ptr(int(*r.MaxRetries))
	}
	if r.LastJobState != nil {
		s.LastJobState = *r.LastJobState
	}
	if r.err != nil {
		s.Error = r.err.Error()
	} else if r.Enabled {
		if n := r.sched.Next(maxTime(now, r.anchor())); !n.IsZero() {
			s.NextTick = &n
		}
	}
	return s
}

// reason is the message of a queue validation error without its field.
func reason(err error) string {
	if v, ok := errors.AsType[*queue.ValidationError](err); ok {
		return v.Reason
	}
	return err.Error()
}

func intervalDuration(iv pgtype.Interval) time.Duration {
	if !iv.Valid {
		return 0
	}
	return time.Duration(iv.Microseconds)*time.Microsecond +
		time.Duration(iv.Days)*24*time.Hour +
		time.Duration(iv.Months)*30*24*time.Hour
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func ptrIfSet(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
