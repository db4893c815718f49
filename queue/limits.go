package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
)

// LimitScope says what a limit applies to.
type LimitScope string

const (
	// LimitTask limits the jobs of one task, whatever their queue.
	LimitTask LimitScope = "task"
	// LimitQueue limits the jobs of one queue, whatever their task.
	LimitQueue LimitScope = "queue"
)

// Bounds of a limit.
const (
	// RateMaxPerSecond is the highest rate a limit may have.
	RateMaxPerSecond = 1_000_000
	// ConcurrencyLimitMax is the highest concurrency limit.
	ConcurrencyLimitMax = 1_000_000
)

// ErrLimitNotFound is returned by DeleteLimit when there is no such limit.
var ErrLimitNotFound = errors.New("no such limit")

// Limit is a global limit on the jobs of a task or of a queue, enforced
// across every worker of the schema. See docs/limits.md.
type Limit struct {
	Scope LimitScope
	// Name is the task's or the queue's name.
	Name string
	// Rate is Celery's rate syntax: "10/s", "100/m", "1000/h", or a bare
	// number per second; "" for no rate limit. It is a token bucket: jobs
	// start at most at this rate, over any stretch of time, plus Burst.
	Rate string
	// Burst is the bucket's size: how many jobs may start at once after a
	// quiet spell. 0 means the default, two or 100 ms worth of the rate,
	// whichever is more.
	Burst float64
	// Concurrency is the most jobs that may run at once; 0 for no limit.
	Concurrency int
}

// LimitInfo is a limit as stored, with its state now.
type LimitInfo struct {
	Limit
	// PerSecond is Rate in jobs per second; 0 without a rate limit.
	PerSecond float64
	// Tokens is how many jobs the bucket would let start now; nil without
	// a rate limit.
	Tokens *float64
	// Running is how many jobs run under the limit now.
	Running   int64
	UpdatedAt time.Time
}

// ParseRate parses a rate in Celery's syntax and returns it in jobs per
// second: a positive number (digits, optionally a fraction such as
// "0.5"), optionally followed by "/s", "/m" or "/h" (per second, minute,
// hour; a bare number is per second). Spaces around the parts are
// allowed. Errors match ErrInvalid and say what was expected.
func ParseRate(s string) (float64, error) {
	bad := func(why string) error {
		return invalid("Rate", "invalid rate %q: %s; use a number of jobs per second, minute or hour, such as \"10/s\", \"100/m\" or \"1000/h\"", s, why)
	}
	num, unit, hasUnit := strings.Cut(s, "/")
	num = strings.Trim(num, rateSpace)
	unit = strings.Trim(unit, rateSpace)
	if num == "" {
		return 0, bad("the number is missing")
	}
	// Digits with an optional fraction: no sign, exponent, Inf or NaN,
	// which strconv.ParseFloat would take.
	whole, frac, dot := strings.Cut(num, ".")
	if whole == "" || !allDigits(whole) || (dot && (frac == "" || !allDigits(frac))) {
		return 0, bad(fmt.Sprintf("%q is not a number of jobs", num))
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(n, 0) {
		return 0, bad(fmt.Sprintf("%q is not a number of jobs", num))
	}
	if n <= 0 {
		return 0, bad("the number of jobs must be more than 0")
	}
	per := 1.0
	if hasUnit {
		switch unit {
		case "s":
		case "m":
			per = 60
		case "h":
			per = 3600
		case "":
			return 0, bad("the unit after / is missing")
		default:
			return 0, bad(fmt.Sprintf("unknown unit %q after /", unit))
		}
	}
	r := n / per
	if r > RateMaxPerSecond {
		return 0, bad(fmt.Sprintf("more than %d per second", RateMaxPerSecond))
	}
	return r, nil
}

// rateSpace is the white space a rate may have around its parts: what
// \s matches in PostgreSQL's regular expressions, so that pgq.parse_rate
// accepts the same strings.
const rateSpace = " \t\n\r\f\v"

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validate checks l and returns its rate in jobs per second (0: none).
func (l Limit) validate() (float64, error) {
	switch l.Scope {
	case LimitTask:
		if err := ValidateTaskName(l.Name); err != nil {
			return 0, err
		}
	case LimitQueue:
		if err := ValidateQueueName(l.Name); err != nil {
			return 0, err
		}
	default:
		return 0, invalid("Scope", "unknown limit scope %q: use %q or %q", l.Scope, LimitTask, LimitQueue)
	}
	var perSecond float64
	if l.Rate != "" {
		var err error
		if perSecond, err = ParseRate(l.Rate); err != nil {
			return 0, err
		}
	}
	switch {
	case l.Concurrency < 0:
		return 0, invalid("Concurrency", "concurrency limit %d is not allowed: use 1 or more (0 means no concurrency limit)", l.Concurrency)
	case l.Concurrency > ConcurrencyLimitMax:
		return 0, invalid("Concurrency", "concurrency limit %d is more than %d", l.Concurrency, ConcurrencyLimitMax)
	case l.Burst != 0 && (l.Burst < 1 || math.IsNaN(l.Burst) || math.IsInf(l.Burst, 0) || l.Burst > RateMaxPerSecond):
		return 0, invalid("Burst", "burst %v must be at least 1 (0 means the default)", l.Burst)
	case l.Burst != 0 && l.Rate == "":
		return 0, invalid("Burst", "a burst needs a rate")
	case l.Rate == "" && l.Concurrency == 0:
		return 0, invalid("Rate", "a limit needs a rate, a concurrency limit or both (DeleteLimit removes one)")
	}
	return perSecond, nil
}

// SetLimit creates or replaces the limit of a task or queue. A changed
// rate keeps the tokens the bucket holds (at most the new burst); a new
// bucket starts full. Workers apply the change at once: the statement
// also sends a ControlLimits message, delivered at commit, and workers
// that miss it re-read the limits within a second.
func (c *Client) SetLimit(ctx context.Context, l Limit) error {
	perSecond, err := l.validate()
	if err != nil {
		return err
	}
	p := db.SetLimitParams{Scope: string(l.Scope), Name: l.Name}
	if l.Rate != "" {
		p.Rate, p.PerSecond = Ptr(strings.TrimSpace(l.Rate)), Ptr(perSecond)
		if l.Burst != 0 {
			p.Burst = Ptr(l.Burst)
		}
	}
	if l.Concurrency > 0 {
		p.Concurrency = Ptr(int32(l.Concurrency))
	}
	return c.changeLimits(ctx, fmt.Sprintf("set %s limit of %s", l.Scope, l.Name), func(q *db.Queries) error {
		return q.SetLimit(ctx, p)
	})
}

// DeleteLimit removes the limit of a task or queue; ErrLimitNotFound when
// there is none.
func (c *Client) DeleteLimit(ctx context.Context, scope LimitScope, name string) error {
	if scope != LimitTask && scope != LimitQueue {
		return invalid("Scope", "unknown limit scope %q: use %q or %q", scope, LimitTask, LimitQueue)
	}
	return c.changeLimits(ctx, fmt.Sprintf("delete %s limit of %s", scope, name), func(q *db.Queries) error {
		n, err := q.DeleteLimit(ctx, db.DeleteLimitParams{Scope: string(scope), Name: name})
		if err == nil && n == 0 {
			return fmt.Errorf("%w: %s %q has no limit", ErrLimitNotFound, scope, name)
		}
		return err
	})
}

// changeLimits runs change and tells the workers, in one transaction.
func (c *Client) changeLimits(ctx context.Context, action string, change func(*db.Queries) error) error {
	payload, err := newControlMessage(ControlLimits, nil, nil, "")
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		q := c.queries(tx)
		if err := change(q); err != nil {
			return err
		}
		return q.NotifyControl(ctx, payload)
	})
	if errors.Is(err, ErrLimitNotFound) {
		return err
	}
	if err != nil {
		return dbError(c.schema, action, err)
	}
	return nil
}

// Limits returns every limit, tasks first, by name.
func (c *Client) Limits(ctx context.Context) ([]LimitInfo, error) {
	rows, err := c.queries(c.pool).ListLimits(ctx)
	if err != nil {
		return nil, dbError(c.schema, "list limits", err)
	}
	out := make([]LimitInfo, len(rows))
	for i, r := range rows {
		li := LimitInfo{Limit: Limit{Scope: LimitScope(r.Scope), Name: r.Name}, Running: r.Running, UpdatedAt: r.UpdatedAt}
		if r.Tokens >= 0 {
			li.Tokens = Ptr(r.Tokens)
		}
		if r.Rate != nil {
			li.Rate = *r.Rate
		}
		if r.PerSecond != nil {
			li.PerSecond = *r.PerSecond
		}
		if r.Burst != nil {
			li.Burst = *r.Burst
		}
		if r.Concurrency != nil {
			li.Concurrency = int(*r.Concurrency)
		}
		out[i] = li
	}
	return out, nil
}

// MarshalJSON gives LimitInfo flat snake_case fields, for `pgq limit list --json`.
func (li LimitInfo) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Scope       LimitScope `json:"scope"`
		Name        string     `json:"name"`
		Rate        string     `json:"rate,omitempty"`
		PerSecond   float64    `json:"per_second,omitempty"`
		Burst       float64    `json:"burst,omitempty"`
		Concurrency int        `json:"concurrency,omitempty"`
		Tokens      *float64   `json:"tokens,omitempty"`
		Running     int64      `json:"running"`
		UpdatedAt   time.Time  `json:"updated_at"`
	}{li.Scope, li.Name, li.Rate, li.PerSecond, li.Burst, li.Concurrency, li.Tokens, li.Running, li.UpdatedAt})
}
