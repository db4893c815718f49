package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/pgq/pgq/db"
)

// QueueDefaults are options a queue gives the jobs that do not set them
// (a queue's row in pgq.queues). Precedence, strongest first: the enqueue
// call's options, the task's defaults (TaskOptioner), the client's routes,
// the queue's defaults, then the package's (priority 0, three retries).
// The queue's defaults are applied by the database at enqueue, so jobs
// enqueued from Go, SQL (pgq.enqueue) and other languages agree.
type QueueDefaults struct {
	Priority      *int          `json:"priority,omitempty"`
	MaxRetries    *int          `json:"max_retries,omitempty"`
	RetryDelay    time.Duration `json:"-"`
	TimeLimit     time.Duration `json:"-"`
	SoftTimeLimit time.Duration `json:"-"`
}

// SetQueueDefaults replaces the queue's default options; the zero value
// clears them. Jobs enqueued before keep the values they were given.
func (c *Client) SetQueueDefaults(ctx context.Context, queueName string, d QueueDefaults) error {
	if err := ValidateQueueName(queueName); err != nil {
		return err
	}
	o := Options{Priority: d.Priority, MaxRetries: d.MaxRetries, RetryDelay: d.RetryDelay, TimeLimit: d.TimeLimit, SoftTimeLimit: d.SoftTimeLimit}
	if err := validateOptions(o); err != nil {
		return err
	}
	p := db.SetQueueDefaultsParams{Name: queueName}
	if d.Priority != nil {
		p.Priority = Ptr(int16(*d.Priority))
	}
	if d.MaxRetries != nil {
		p.MaxRetries = Ptr(int32(min(*d.MaxRetries, math.MaxInt32)))
	}
	var err error
	if p.RetryDelayMs, err = millisOf("RetryDelay", d.RetryDelay); err != nil {
		return err
	}
	if p.TimeLimitMs, err = millisOf("TimeLimit", d.TimeLimit); err != nil {
		return err
	}
	if p.SoftTimeLimitMs, err = millisOf("SoftTimeLimit", d.SoftTimeLimit); err != nil {
		return err
	}
	if err := c.queries(c.pool).SetQueueDefaults(ctx, p); err != nil {
		return dbError(c.schema, fmt.Sprintf("set defaults of queue %s", queueName), err)
	}
	return nil
}

// queueDefaultsOf maps a stored row's columns to QueueDefaults.
func queueDefaultsOf(priority *int16, maxRetries, retryDelayMs, timeLimitMs, softTimeLimitMs *int32) QueueDefaults {
	d := QueueDefaults{RetryDelay: millis(retryDelayMs), TimeLimit: millis(timeLimitMs), SoftTimeLimit: millis(softTimeLimitMs)}
	if priority != nil {
		d.Priority = Ptr(int(*priority))
	}
	if maxRetries != nil {
		d.MaxRetries = Ptr(int(*maxRetries))
	}
	return d
}

// MarshalJSON writes durations as milliseconds, like Job.
func (d QueueDefaults) MarshalJSON() ([]byte, error) {
	ms := func(x time.Duration) *int64 {
		if x == 0 {
			return nil
		}
		return Ptr(x.Milliseconds())
	}
	return json.Marshal(struct {
		Priority        *int   `json:"priority,omitempty"`
		MaxRetries      *int   `json:"max_retries,omitempty"`
		RetryDelayMs    *int64 `json:"retry_delay_ms,omitempty"`
		TimeLimitMs     *int64 `json:"time_limit_ms,omitempty"`
		SoftTimeLimitMs *int64 `json:"soft_time_limit_ms,omitempty"`
	}{d.Priority, d.MaxRetries, ms(d.RetryDelay), ms(d.TimeLimit), ms(d.SoftTimeLimit)})
}
