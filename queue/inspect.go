package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
)

// Job states, as stored in pgq.jobs.state.
const (
	StatePending   = "pending"   // a workflow step waiting for an earlier one (package workflow)
	StateScheduled = "scheduled" // waiting for its run time (countdown/ETA)
	StateAvailable = "available" // waiting for a worker
	StateRunning   = "running"   // held by a worker
	StateRetrying  = "retrying"  // failed, waiting for its next attempt
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// States lists every job state in lifecycle order.
var States = []string{StatePending, StateScheduled, StateAvailable, StateRunning, StateRetrying, StateSucceeded, StateFailed, StateCancelled}

// Job is a job row as stored.
type Job struct {
	ID            int64           `json:"id"`
	Task          string          `json:"task"`
	Queue         string          `json:"queue"`
	State         string          `json:"state"`
	Priority      int             `json:"priority"`
	Args          json.RawMessage `json:"args"`
	Headers       json.RawMessage `json:"headers"`
	Attempt       int             `json:"attempt"`
	MaxRetries    int             `json:"max_retries"`
	RetryDelay    time.Duration   `json:"retry_delay,omitempty"`
	TimeLimit     time.Duration   `json:"time_limit,omitempty"`
	SoftTimeLimit time.Duration   `json:"soft_time_limit,omitempty"`
	IgnoreResult  bool            `json:"ignore_result"`
	UniqueKey     string          `json:"unique_key,omitempty"`
	RunAt         time.Time       `json:"run_at"`
	ExpiresAt     *time.Time      `json:"expires_at,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	StartedAt     *time.Time      `json:"started_at,omitempty"`
	FinishedAt    *time.Time      `json:"finished_at,omitempty"`
	WorkerID      string          `json:"worker_id,omitempty"`
	Result        json.RawMessage `json:"result,omitempty"`
	Errors        []JobError      `json:"errors"`
	ParentID      *int64          `json:"parent_id,omitempty"`
	RootID        *int64          `json:"root_id,omitempty"`
	// Staged is set for a staged job (Options.Staged) that no worker has
	// moved into pgq.jobs yet. The queue's defaults are not applied to it
	// until then: options the producer left unset read as zero.
	Staged bool `json:"staged,omitempty"`
}

// JobError is one failed attempt in a job's error history.
type JobError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
	Stack   string    `json:"stack,omitempty"`
}

// Job returns the job with the given id, or an error matching
// ErrJobNotFound.
func (c *Client) Job(ctx context.Context, id int64) (*Job, error) {
	q := c.queries(c.pool)
	row, err := q.GetJob(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		// A staged job waits in pgq.staged_jobs until a worker moves it.
		// Looked at in this order, a job moved between two looks is found
		// by the third.
		staged, serr := q.GetStagedJob(ctx, id)
		if serr == nil {
			return stagedJobFromRow(staged)
		}
		if !errors.Is(serr, pgx.ErrNoRows) {
			return nil, dbError(c.schema, fmt.Sprintf("job %d", id), serr)
		}
		row, err = q.GetJob(ctx, id)
	}
	if err != nil {
		return nil, dbError(c.schema, fmt.Sprintf("job %d", id), err)
	}
	return jobFromRow(row)
}

// stagedJobFromRow reads a staged job as the row it will become, with
// what the move fills in left at zero.
func stagedJobFromRow(r *db.PgqStagedJob) (*Job, error) {
	row := &db.PgqJob{
		ID: r.ID, Task: r.Task, Queue: r.Queue, State: r.State, Args: r.Args, Meta: r.Meta,
		RetryDelayMs: r.RetryDelayMs, TimeLimitMs: r.TimeLimitMs, SoftTimeLimitMs: r.SoftTimeLimitMs,
		IgnoreResult: r.IgnoreResult, RunAt: r.RunAt, ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt,
		MutexKey: r.MutexKey, Errors: json.RawMessage("[]"),
	}
	if r.Priority != nil {
		row.Priority = *r.Priority
	}
	if r.MaxRetries != nil {
		row.MaxRetries = *r.MaxRetries
	}
	j, err := jobFromRow(row)
	if err != nil {
		return nil, err
	}
	j.Staged = true
	return j, nil
}

func jobFromRow(r *db.PgqJob) (*Job, error) {
	j := &Job{
		ID: r.ID, Task: r.Task, Queue: r.Queue, State: r.State, Priority: int(r.Priority),
		Args: r.Args, Headers: r.Meta, Attempt: int(r.Attempt), MaxRetries: int(r.MaxRetries),
		RetryDelay: millis(r.RetryDelayMs), TimeLimit: millis(r.TimeLimitMs), SoftTimeLimit: millis(r.SoftTimeLimitMs),
		IgnoreResult: r.IgnoreResult, RunAt: r.RunAt, ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Result: r.Result, ParentID: r.ParentID, RootID: r.RootID,
	}
	if r.UniqueKey != nil {
		j.UniqueKey = *r.UniqueKey
	}
	if r.WorkerID != nil {
		j.WorkerID = *r.WorkerID
	}
	if err := json.Unmarshal(r.Errors, &j.Errors); err != nil {
		return nil, fmt.Errorf("job %d: decode error history: %w", r.ID, err)
	}
	return j, nil
}

func millis(ms *int32) time.Duration {
	if ms == nil {
		return 0
	}
	return time.Duration(*ms) * time.Millisecond
}

// JobFilter narrows ListJobs. Empty fields match everything.
type JobFilter struct {
	State, Queue, Task string
	// BeforeID continues a listing after its last row (keyset pagination).
	BeforeID int64
	// Limit caps the rows returned; 0 means 50, the maximum is 1000.
	Limit int
}

// JobSummary is one line of a job listing.
type JobSummary struct {
	ID         int64      `json:"id"`
	Task       string     `json:"task"`
	Queue      string     `json:"queue"`
	State      string     `json:"state"`
	Priority   int        `json:"priority"`
	Attempt    int        `json:"attempt"`
	MaxRetries int        `json:"max_retries"`
	RunAt      time.Time  `json:"run_at"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
}

// ListJobs lists jobs, newest first.
func (c *Client) ListJobs(ctx context.Context, f JobFilter) ([]JobSummary, error) {
	if f.State != "" && !knownState(f.State) {
		return nil, invalid("State", "unknown state %q: use one of %v", f.State, States)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	rows, err := c.queries(c.pool).ListJobs(ctx, db.ListJobsParams{
		State: nonEmpty(f.State), Queue: nonEmpty(f.Queue), Task: nonEmpty(f.Task),
		BeforeID: nonZero(f.BeforeID), MaxRows: int32(limit),
	})
	if err != nil {
		return nil, dbError(c.schema, "list jobs", err)
	}
	out := make([]JobSummary, len(rows))
	for i, r := range rows {
		out[i] = JobSummary{
			ID: r.ID, Task: r.Task, Queue: r.Queue, State: r.State, Priority: int(r.Priority),
			Attempt: int(r.Attempt), MaxRetries: int(r.MaxRetries), RunAt: r.RunAt, CreatedAt: r.CreatedAt,
			FinishedAt: r.FinishedAt, LastError: r.LastError,
		}
	}
	return out, nil
}

// QueueStat is the number of jobs of one queue in one state.
type QueueStat struct {
	Queue string `json:"queue"`
	State string `json:"state"`
	Count int64  `json:"count"`
}

// QueueStats counts jobs by queue and state (the pgq.queue_stats view).
func (c *Client) QueueStats(ctx context.Context) ([]QueueStat, error) {
	rows, err := c.queries(c.pool).QueueStats(ctx)
	if err != nil {
		return nil, dbError(c.schema, "queue stats", err)
	}
	out := make([]QueueStat, len(rows))
	for i, r := range rows {
		out[i] = QueueStat{Queue: r.Queue, State: r.State, Count: r.Count}
	}
	return out, nil
}

func knownState(s string) bool {
	for _, k := range States {
		if k == s {
			return true
		}
	}
	return false
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonZero(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}
