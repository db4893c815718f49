package queue

import (
	"encoding/json"
	"time"
)

// Prepared is a job checked and encoded exactly as the Client's own
// enqueue would write it, for packages that insert jobs themselves with
// links the Client does not set (package workflow). Nil pointers mean
// "not set": the database fills them from the queue's defaults (see
// Options), then pgq's.
type Prepared struct {
	Task, Queue     string
	Priority        *int16
	Args, Headers   json.RawMessage
	MaxRetries      *int32
	RetryDelayMs    *int32
	TimeLimitMs     *int32
	SoftTimeLimitMs *int32
	IgnoreResult    bool
	// ETA is the earliest run time when Options.ETA was set; Countdown the
	// delay when Options.Countdown was.
	ETA       *time.Time
	Countdown time.Duration
	// ExpiresAt is set for Options.ExpiresAt, ExpiresIn for Options.Expires.
	ExpiresAt *time.Time
	ExpiresIn *time.Duration
	// UniqueKey is "" when the job has none.
	UniqueKey string
}

// Prepare checks and encodes a job as Enqueue would (routes, the task's
// defaults and the call's options, names, payload limit), without
// writing anything. Errors match ErrInvalid.
func (c *Client) Prepare(args TaskArgs, opts *Options) (Prepared, error) {
	p, err := c.prepare(args, opts, time.Now())
	if err != nil {
		return Prepared{}, err
	}
	out := Prepared{
		Task: p.task, Queue: p.queue, Priority: p.priority, Args: p.args, Headers: p.meta,
		MaxRetries: p.maxRetries, RetryDelayMs: p.retryDelayMs, TimeLimitMs: p.timeLimitMs,
		SoftTimeLimitMs: p.softTimeLimitMs, IgnoreResult: p.ignoreResult, ETA: p.runAt,
		Countdown: p.countdown, ExpiresAt: p.expiresAt, ExpiresIn: p.expiresIn,
	}
	if p.uniqueKey != nil {
		out.UniqueKey = *p.uniqueKey
	}
	return out, nil
}
