package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgq/pgq/db"
)

// ErrJobFinished is matched by the error of Revoke for a job that has
// already finished (succeeded, failed or cancelled): there is nothing left
// to revoke.
var ErrJobFinished = errors.New("job already finished")

// ErrJobRunning is matched by the error of Delete for a job a worker is
// running: revoke it with terminate first.
var ErrJobRunning = errors.New("job is running")

// ErrJobNotRetryable is matched by the error of Retry for a job that is
// neither failed nor cancelled.
var ErrJobNotRetryable = errors.New("only failed or cancelled jobs can be retried")

// RevokeReasonWaiting is recorded in the error history of a job revoked
// before it ran.
const RevokeReasonWaiting = "revoked before it ran"

// Revoked says what Revoke did.
type Revoked struct {
	ID int64 `json:"id"`
	// State is the job's state after the call: cancelled for a job that
	// had not started, running for one a worker holds (it ends cancelled
	// when its worker stops it, or finishes its attempt without being
	// run again).
	State string `json:"state"`
	// WorkerID is the worker that runs the job, when it is running.
	WorkerID string `json:"worker_id,omitempty"`
	// Terminating is true when the running job's worker was asked to
	// cancel its handler.
	Terminating bool `json:"terminating"`
}

// Revoke stops a job from running (Celery's revoke). A job that waits
// (scheduled, available or retrying) ends cancelled at once and never
// runs. A running job is marked revoked: it is never run again (a retry,
// snooze, hand-back or rescue ends it cancelled instead), and with
// terminate its worker cancels the handler's context (cause
// worker.ErrRevoked) within a second — told by a notification on the
// control channel, or by its next heartbeat when that is lost — and the
// job ends cancelled, not retried, with the reason in its error history.
// A handler that ignores its context loses its slot after the worker's
// CancelGrace.
//
// Revoke of a finished job returns an error matching ErrJobFinished, and
// of an unknown id one matching ErrJobNotFound.
func (c *Client) Revoke(ctx context.Context, id int64, terminate bool) (Revoked, error) {
	out := Revoked{ID: id}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		q := c.queries(tx)
		row, err := q.LockJob(ctx, id)
		if err != nil {
			return dbError(c.schema, fmt.Sprintf("revoke job %d", id), err)
		}
		out.State = row.State
		switch row.State {
		case StateSucceeded, StateFailed, StateCancelled:
			return fmt.Errorf("revoke job %d: %w (%s); nothing to revoke (Delete removes it, Retry runs it again)", id, ErrJobFinished, row.State)
		case StateRunning:
			out.WorkerID = row.WorkerID
			if err := q.MarkRevoked(ctx, db.MarkRevokedParams{ID: id, Terminate: terminate}); err != nil {
				return dbError(c.schema, fmt.Sprintf("revoke job %d", id), err)
			}
			if !terminate {
				return nil
			}
			out.Terminating = true
			msg, err := newControlMessage(ControlRevoke, RevokeArgs{JobIDs: []int64{id}}, []string{row.WorkerID}, "")
			if err != nil {
				return err
			}
			// Sent at commit, after the mark is visible.
			if err := q.NotifyControl(ctx, msg); err != nil {
				return dbError(c.schema, fmt.Sprintf("revoke job %d: notify its worker", id), err)
			}
			return nil
		default:
			if err := q.CancelWaitingJob(ctx, db.CancelWaitingJobParams{ID: id, Reason: RevokeReasonWaiting}); err != nil {
				return dbError(c.schema, fmt.Sprintf("revoke job %d", id), err)
			}
			out.State = StateCancelled
			return nil
		}
	})
	if err != nil {
		return Revoked{}, err
	}
	return out, nil
}

// Retry sends a failed or cancelled job back to its queue by hand. It
// runs as if new: attempt 0 (so it has all its retries again), no result,
// no revoke mark, run now. Its error history is kept, so the earlier
// attempts stay readable. Other states give an error matching
// ErrJobNotRetryable; an unknown id, ErrJobNotFound. A job with a unique
// key that another unfinished job holds now cannot be retried (the error
// says so).
func (c *Client) Retry(ctx context.Context, id int64) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		q := c.queries(tx)
		row, err := q.LockJob(ctx, id)
		if err != nil {
			return dbError(c.schema, fmt.Sprintf("retry job %d", id), err)
		}
		if row.State != StateFailed && row.State != StateCancelled {
			return fmt.Errorf("retry job %d: %w; it is %s", id, ErrJobNotRetryable, row.State)
		}
		if err := q.RetryJob(ctx, id); err != nil {
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "23505" {
				return fmt.Errorf("retry job %d: another unfinished job holds its unique key; wait for it to finish or delete it", id)
			}
			return dbError(c.schema, fmt.Sprintf("retry job %d", id), err)
		}
		return nil
	})
}

// Delete removes a job that is not running. A running job gives an error
// matching ErrJobRunning (revoke it with terminate, then delete it); an
// unknown id, ErrJobNotFound.
func (c *Client) Delete(ctx context.Context, id int64) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		q := c.queries(tx)
		row, err := q.LockJob(ctx, id)
		if err != nil {
			return dbError(c.schema, fmt.Sprintf("delete job %d", id), err)
		}
		if row.State == StateRunning {
			return fmt.Errorf("delete job %d: %w on worker %s; revoke it with terminate first", id, ErrJobRunning, row.WorkerID)
		}
		if _, err := q.DeleteJob(ctx, id); err != nil {
			return dbError(c.schema, fmt.Sprintf("delete job %d", id), err)
		}
		return nil
	})
}

// CountWaiting returns how many jobs of the queue wait (scheduled,
// available or retrying): what PurgeQueue would delete.
func (c *Client) CountWaiting(ctx context.Context, queueName string) (int64, error) {
	if err := ValidateQueueName(queueName); err != nil {
		return 0, err
	}
	n, err := c.queries(c.pool).CountWaitingJobs(ctx, queueName)
	if err != nil {
		return 0, dbError(c.schema, fmt.Sprintf("count waiting jobs of queue %s", queueName), err)
	}
	return n, nil
}

// PurgeQueue deletes every waiting job (scheduled, available, retrying)
// of the queue in one statement and returns how many went (Celery's
// purge). Running jobs finish; finished jobs stay.
func (c *Client) PurgeQueue(ctx context.Context, queueName string) (int64, error) {
	if err := ValidateQueueName(queueName); err != nil {
		return 0, err
	}
	n, err := c.queries(c.pool).PurgeQueue(ctx, queueName)
	if err != nil {
		return 0, dbError(c.schema, fmt.Sprintf("purge queue %s", queueName), err)
	}
	return n, nil
}

// PauseQueue stops workers from claiming jobs of the queue: the claim
// statement skips paused queues, so the pause holds from the next claim
// on. Running jobs finish; enqueueing goes on. A queue need not exist yet
// to be paused.
func (c *Client) PauseQueue(ctx context.Context, queueName string) error {
	if err := ValidateQueueName(queueName); err != nil {
		return err
	}
	if err := c.queries(c.pool).PauseQueue(ctx, queueName); err != nil {
		return dbError(c.schema, fmt.Sprintf("pause queue %s", queueName), err)
	}
	return nil
}

// ResumeQueue lets workers claim jobs of the queue again and wakes them.
func (c *Client) ResumeQueue(ctx context.Context, queueName string) error {
	if err := ValidateQueueName(queueName); err != nil {
		return err
	}
	if err := c.queries(c.pool).ResumeQueue(ctx, queueName); err != nil {
		return dbError(c.schema, fmt.Sprintf("resume queue %s", queueName), err)
	}
	return nil
}

// QueueInfo is one queue as ListQueues shows it.
type QueueInfo struct {
	Name     string     `json:"name"`
	Paused   bool       `json:"paused"`
	PausedAt *time.Time `json:"paused_at,omitempty"`
	Waiting  int64      `json:"waiting"`
	Running  int64      `json:"running"`
	Finished int64      `json:"finished"`
	// Defaults are the options the queue gives jobs that set none.
	Defaults QueueDefaults `json:"defaults"`
}

// ListQueues lists every queue that has jobs or settings, by name.
func (c *Client) ListQueues(ctx context.Context) ([]QueueInfo, error) {
	rows, err := c.queries(c.pool).ListQueues(ctx)
	if err != nil {
		return nil, dbError(c.schema, "list queues", err)
	}
	out := make([]QueueInfo, len(rows))
	for i, r := range rows {
		out[i] = QueueInfo{Name: r.Name, Paused: r.Paused, PausedAt: r.PausedAt, Waiting: r.Waiting, Running: r.Running, Finished: r.Finished,
			Defaults: queueDefaultsOf(r.Priority, r.MaxRetries, r.RetryDelayMs, r.TimeLimitMs, r.SoftTimeLimitMs)}
	}
	return out, nil
}

// WorkerInfo is one registered worker.
type WorkerInfo struct {
	ID           string    `json:"id"`
	Host         string    `json:"host"`
	PID          int       `json:"pid"`
	Queues       []string  `json:"queues"`
	Concurrency  int       `json:"concurrency"`
	StartedAt    time.Time `json:"started_at"`
	HeartbeatAt  time.Time `json:"heartbeat_at"`
	HeartbeatAge float64   `json:"heartbeat_age_seconds"`
	Running      int64     `json:"running"`
}

// Workers lists the registered workers (pgq.workers), with the number of
// jobs each runs. A worker that died stays listed, its heartbeat growing
// old, until the maintenance leader removes it.
func (c *Client) Workers(ctx context.Context) ([]WorkerInfo, error) {
	rows, err := c.queries(c.pool).ListWorkers(ctx)
	if err != nil {
		return nil, dbError(c.schema, "list workers", err)
	}
	out := make([]WorkerInfo, len(rows))
	for i, r := range rows {
		out[i] = WorkerInfo{ID: r.ID, Host: r.Host, PID: int(r.Pid), Queues: r.Queues, Concurrency: int(r.Concurrency),
			StartedAt: r.StartedAt, HeartbeatAt: r.HeartbeatAt, HeartbeatAge: r.HeartbeatAgeSeconds, Running: r.Running}
	}
	return out, nil
}

// ActiveJob is a running job.
type ActiveJob struct {
	ID        int64      `json:"id"`
	Task      string     `json:"task"`
	Queue     string     `json:"queue"`
	Attempt   int        `json:"attempt"`
	WorkerID  string     `json:"worker_id"`
	StartedAt *time.Time `json:"started_at,omitempty"`
}

// ActiveJobs lists running jobs by worker (workerID "" means every
// worker), at most limit (0 means 1000).
func (c *Client) ActiveJobs(ctx context.Context, workerID string, limit int) ([]ActiveJob, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := c.queries(c.pool).ActiveJobs(ctx, db.ActiveJobsParams{WorkerID: nonEmpty(workerID), MaxRows: int32(min(limit, 100000))})
	if err != nil {
		return nil, dbError(c.schema, "list running jobs", err)
	}
	out := make([]ActiveJob, len(rows))
	for i, r := range rows {
		out[i] = ActiveJob{ID: r.ID, Task: r.Task, Queue: r.Queue, Attempt: int(r.Attempt), WorkerID: r.WorkerID, StartedAt: r.StartedAt}
	}
	return out, nil
}

// ScheduledJob is a job waiting for a later run time.
type ScheduledJob struct {
	ID      int64     `json:"id"`
	Task    string    `json:"task"`
	Queue   string    `json:"queue"`
	State   string    `json:"state"`
	Attempt int       `json:"attempt"`
	RunAt   time.Time `json:"run_at"`
}

// ScheduledJobs lists jobs whose run time is in the future (countdown,
// ETA, retry backoff), soonest first, at most limit (0 means 1000).
func (c *Client) ScheduledJobs(ctx context.Context, limit int) ([]ScheduledJob, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := c.queries(c.pool).ScheduledJobs(ctx, int32(min(limit, 100000)))
	if err != nil {
		return nil, dbError(c.schema, "list scheduled jobs", err)
	}
	out := make([]ScheduledJob, len(rows))
	for i, r := range rows {
		out[i] = ScheduledJob{ID: r.ID, Task: r.Task, Queue: r.Queue, State: r.State, Attempt: int(r.Attempt), RunAt: r.RunAt}
	}
	return out, nil
}
