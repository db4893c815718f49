package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
)

// Config configures a Client. A nil *Config means all defaults.
type Config struct {
	// Schema is where pgq's tables live; empty means "pgq".
	Schema string
	// Routes map task names to queues and default options.
	Routes []Route
	// MaxPayloadBytes limits one job's args plus headers, JSON-encoded;
	// 0 means MaxPayloadBytesDefault (1 MiB).
	MaxPayloadBytes int
	// Propagator writes the trace context of the enqueuing code's ctx
	// into each job's headers, for the worker's span; nil means
	// DefaultPropagator(). See docs/observability.md.
	Propagator propagation.TextMapPropagator
	// OnEnqueued, when set, is called for each job written (a duplicate
	// unique key writes none) once its statement returns, before the
	// caller's transaction commits; metrics.ClientMetrics counts them.
	OnEnqueued func(Enqueued)
	// SessionConnConfig, when set, is used for the connections that must
	// stay with one PostgreSQL session: LISTEN for results
	// (AsyncResult.Get) and for control replies. Behind pgbouncer in
	// transaction mode, point it straight at PostgreSQL (or at a pool in
	// session mode) while the pool goes through pgbouncer
	// (docs/pgbouncer.md). Nil means the pool's own settings.
	SessionConnConfig *pgx.ConnConfig
}

// Client enqueues and inspects jobs. It is safe for concurrent use.
type Client struct {
	pool       *pgxpool.Pool
	schema     string
	router     *router
	maxPayload int
	results    *resultHub
	prop       propagation.TextMapPropagator
	onEnqueued func(Enqueued)
	session    *pgx.ConnConfig
	waker      *waker
}

// NewClient returns a Client that uses pool. It checks cfg but does not
// touch the database; use Check to verify the schema is installed.
func NewClient(pool *pgxpool.Pool, cfg *Config) (*Client, error) {
	if pool == nil {
		return nil, errors.New("queue.NewClient: pool is nil")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	name := schema.OrDefault(cfg.Schema)
	if err := schema.Check(name); err != nil {
		return nil, fmt.Errorf("Config.Schema: %w", err)
	}
	if cfg.MaxPayloadBytes < 0 {
		return nil, errors.New("Config.MaxPayloadBytes cannot be negative")
	}
	r, err := newRouter(cfg.Routes)
	if err != nil {
		return nil, fmt.Errorf("Config.%w", err)
	}
	max := cfg.MaxPayloadBytes
	if max == 0 {
		max = MaxPayloadBytesDefault
	}
	c := &Client{pool: pool, schema: name, router: r, maxPayload: max, prop: cfg.Propagator, onEnqueued: cfg.OnEnqueued, session: cfg.SessionConnConfig}
	if c.prop == nil {
		c.prop = DefaultPropagator()
	}
	c.results = newResultHub(c)
	c.waker = newWaker(c)
	return c, nil
}

// sessionConfig returns the settings for a dedicated session connection.
func (c *Client) sessionConfig() *pgx.ConnConfig {
	if c.session != nil {
		return c.session.Copy()
	}
	return c.pool.Config().ConnConfig.Copy()
}

// Schema returns the schema the client works in.
func (c *Client) Schema() string { return c.schema }

// Pool returns the pool the client was made with.
func (c *Client) Pool() *pgxpool.Pool { return c.pool }

// Check returns an error matching ErrNotMigrated when the schema has no
// pgq tables, and nil when it has them.
func (c *Client) Check(ctx context.Context) error {
	ok, err := c.queries(c.pool).SchemaInstalled(ctx)
	if err != nil {
		return dbError(c.schema, "check schema", err)
	}
	if !ok {
		return fmt.Errorf("%w: schema %q has no pgq tables; run `pgq migrate up --schema %s` (or migrations.Up) first", ErrNotMigrated, c.schema, c.schema)
	}
	return nil
}

func (c *Client) queries(d schema.DBTX) *db.Queries {
	return db.New(schema.Wrap(c.schema, d))
}

// Enqueued describes a job that was enqueued, or the existing job a
// duplicate unique key pointed to.
type Enqueued struct {
	ID    int64
	Task  string
	Queue string
	State string
	RunAt time.Time
	// Duplicate is set when a job already held the unique key: ID is that
	// job's, and no job was inserted.
	Duplicate bool
	// Replaced is set when, with a replace Unique.Mode, the duplicate's
	// args (and run time) were replaced by this enqueue's.
	Replaced bool
	// Staged is set when the job was staged (Options.Staged): a worker
	// has yet to move it into pgq.jobs.
	Staged bool

	client *Client
}

// Delay enqueues a job with its task's default options: Celery's delay().
func (c *Client) Delay(ctx context.Context, args TaskArgs) (Enqueued, error) {
	return c.Enqueue(ctx, args, nil)
}

// Enqueue enqueues a job in a transaction of its own and returns once it
// has committed and the queue's workers have been woken: Celery's
// apply_async(). opts may be nil.
func (c *Client) Enqueue(ctx context.Context, args TaskArgs, opts *Options) (Enqueued, error) {
	e, err := c.observe(c.enqueue(ctx, c.pool, false, args, opts))
	if err == nil && e.wakes() {
		c.waker.wake(ctx, []string{e.wakeTopic()})
	}
	return e, err
}

// EnqueueTx enqueues a job inside the caller's transaction: the job exists,
// and its queue's workers are woken, only if tx commits. It sends exactly
// one statement. Invalid input is reported before anything is sent, so tx
// stays usable after such an error.
//
// With a transaction from Client.Begin the wake-up is sent in the
// background once its Commit has committed (Commit does not wait for it;
// see Client.Flush); with any other pgx.Tx it is a NOTIFY inside tx, which
// PostgreSQL delivers at commit but which makes concurrent enqueuing
// transactions commit one WAL flush at a time (see Client.Begin).
func (c *Client) EnqueueTx(ctx context.Context, tx pgx.Tx, args TaskArgs, opts *Options) (Enqueued, error) {
	own := c.ownTx(tx)
	e, err := c.observe(c.enqueue(ctx, tx, own == nil, args, opts))
	if err == nil && own != nil && e.wakes() {
		own.deferWake(e.wakeTopic())
	}
	return e, err
}

// wakes reports whether the enqueue wrote a job its workers should hear of:
// a duplicate unique key wrote none, unless it replaced the holder's args.
func (e Enqueued) wakes() bool { return !e.Duplicate || e.Replaced }

// wakeTopic is the payload that wakes the job's workers: its queue, or for
// a staged job the workers that move staged jobs.
func (e Enqueued) wakeTopic() string {
	if e.Staged {
		return schema.StagedWake
	}
	return e.Queue
}

// enqueue sends the job's one statement; with wake the statement also
// sends the queue's wake-up (a NOTIFY delivered at commit).
func (c *Client) enqueue(ctx context.Context, d schema.DBTX, wake bool, args TaskArgs, opts *Options) (Enqueued, error) {
	p, err := c.prepare(args, opts, time.Now())
	if err != nil {
		return Enqueued{}, err
	}
	p = c.traced(ctx, p)
	q := c.queries(d)
	if p.staged {
		row, err := q.StageJob(ctx, p.stageParams(wake))
		if err != nil {
			return Enqueued{}, dbError(c.schema, fmt.Sprintf("enqueue %s", p.task), err)
		}
		return Enqueued{ID: row.ID, Task: p.task, Queue: p.queue, State: row.State, RunAt: row.RunAt, Staged: true, client: c}, nil
	}
	if p.unique == nil {
		row, err := q.InsertJob(ctx, p.insertParams(wake))
		if err != nil {
			return Enqueued{}, dbError(c.schema, fmt.Sprintf("enqueue %s", p.task), err)
		}
		return Enqueued{ID: row.ID, Task: p.task, Queue: p.queue, State: row.State, RunAt: row.RunAt, client: c}, nil
	}
	return c.insertUnique(ctx, q, p, wake)
}

// insertUnique inserts a job with a unique key, or finds the unfinished job
// that holds it. An empty answer means the holder finished between the
// insert and the look-up; a few tries settle it.
func (c *Client) insertUnique(ctx context.Context, q *db.Queries, p prepared, wake bool) (Enqueued, error) {
	for range 10 {
		row, err := insertUniqueOnce(ctx, q, p, wake)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return Enqueued{}, dbError(c.schema, fmt.Sprintf("enqueue %s", p.task), err)
		}
		return Enqueued{ID: row.ID, Task: p.task, Queue: p.queue, State: row.State, RunAt: row.RunAt, Duplicate: row.Duplicate, Replaced: row.Replaced, client: c}, nil
	}
	return Enqueued{}, fmt.Errorf("enqueue %s: its unique key kept changing hands; try again", p.task)
}

// insertUniqueOnce sends the one statement of a unique job's enqueue: keep
// the holder, or replace its args, by the key's mode.
func insertUniqueOnce(ctx context.Context, q *db.Queries, p prepared, wake bool) (*db.InsertUniqueJobRow, error) {
	if p.unique.mode == UniqueKeep {
		return q.InsertUniqueJob(ctx, p.insertUniqueParams(wake))
	}
	r, err := q.ReplaceUniqueJob(ctx, p.replaceUniqueParams(wake))
	return (*db.InsertUniqueJobRow)(r), err
}

// prepared is one job, validated and encoded, ready for INSERT or COPY.
type prepared struct {
	task, queue, state string
	priority           *int16 // nil: the queue's default, else PriorityDefault
	args, meta         []byte
	maxRetries         *int32 // nil: the queue's default, else MaxRetriesDefault
	retryDelayMs       *int32
	timeLimitMs        *int32
	softTimeLimitMs    *int32
	ignoreResult       bool
	runAt              *time.Time // nil: now + countdown, in database time
	countdown          time.Duration
	expiresAt          *time.Time
	expiresIn          *time.Duration
	unique             *resolvedUnique // nil: no unique key
	uniqueKey          *string         // unique.key, when one was given
	mutexKey           *string
	staged             bool // into pgq.staged_jobs (Options.Staged)
}

// prepare validates and encodes one job. Options apply in layers: the
// call's, then the task's defaults, then the route's. Priority, retries and
// the time options left unset are filled in by the database from the
// queue's defaults (pgq.queues), then the package's.
func (c *Client) prepare(args TaskArgs, call *Options, now time.Time) (prepared, error) {
	if args == nil {
		return prepared{}, invalid("args", "args are nil: pass a TaskArgs value or queue.Raw")
	}
	task := args.TaskName()
	if err := ValidateTaskName(task); err != nil {
		return prepared{}, err
	}

	var o Options
	if call != nil {
		if err := validateOptions(*call); err != nil {
			return prepared{}, err
		}
		o = *call
	}
	if t, ok := args.(TaskOptioner); ok {
		td := t.TaskOptions()
		if err := validateOptions(td); err != nil {
			return prepared{}, fmt.Errorf("TaskOptions of %s: %w", task, err)
		}
		o = o.merge(td)
	}
	if r, ok := c.router.match(task); ok {
		o = o.merge(r)
	}
	o = o.merge(Options{Queue: QueueDefault, IgnoreResult: Ptr(false)})
	if o.TimeLimit > 0 && o.SoftTimeLimit > o.TimeLimit {
		return prepared{}, invalid("SoftTimeLimit", "soft time limit %s is longer than the hard limit %s", o.SoftTimeLimit, o.TimeLimit)
	}

	encoded, err := json.Marshal(args)
	if err != nil {
		return prepared{}, &ValidationError{Field: "args", Reason: fmt.Sprintf("cannot encode args of task %s as JSON: %v", task, err)}
	}
	if string(encoded) == "null" {
		encoded = []byte("{}")
	}
	if why := jsonbRefusal(encoded); why != "" { // a string with a NUL character, or custom MarshalJSON output
		return prepared{}, invalid("args", "args of task %s %s", task, why)
	}
	meta := []byte("{}")
	if len(o.Headers) > 0 {
		meta, err = json.Marshal(o.Headers)
		if err != nil {
			return prepared{}, &ValidationError{Field: "Headers", Reason: fmt.Sprintf("cannot encode headers of task %s as JSON: %v", task, err)}
		}
	}
	if size := len(encoded) + len(meta); size > c.maxPayload {
		return prepared{}, &ValidationError{Field: "args", cause: ErrPayloadTooLarge,
			Reason: fmt.Sprintf("payload of %d bytes is larger than the limit of %d bytes (Config.MaxPayloadBytes); store large data elsewhere and pass a reference", size, c.maxPayload)}
	}

	p := prepared{
		task:         task,
		queue:        o.Queue,
		state:        "available",
		args:         encoded,
		meta:         meta,
		ignoreResult: *o.IgnoreResult,
		countdown:    o.Countdown,
	}
	if o.Priority != nil {
		p.priority = Ptr(int16(*o.Priority))
	}
	if o.MaxRetries != nil {
		p.maxRetries = Ptr(int32(min(*o.MaxRetries, math.MaxInt32)))
	}
	var err2 error
	if p.retryDelayMs, err2 = millisOf("RetryDelay", o.RetryDelay); err2 != nil {
		return prepared{}, err2
	}
	if p.timeLimitMs, err2 = millisOf("TimeLimit", o.TimeLimit); err2 != nil {
		return prepared{}, err2
	}
	if p.softTimeLimitMs, err2 = millisOf("SoftTimeLimit", o.SoftTimeLimit); err2 != nil {
		return prepared{}, err2
	}
	if !o.ETA.IsZero() {
		p.runAt = Ptr(o.ETA)
	}
	if o.Countdown > 0 || o.ETA.After(now) {
		p.state = "scheduled"
	}
	if !o.ExpiresAt.IsZero() {
		p.expiresAt = Ptr(o.ExpiresAt)
	} else if o.Expires > 0 {
		p.expiresIn = Ptr(o.Expires)
	}
	if p.unique, err = uniqueOf(o); err != nil {
		return prepared{}, err
	}
	if p.unique != nil {
		p.uniqueKey = p.unique.key
	}
	if o.Staged {
		if p.unique != nil {
			return prepared{}, invalid("Staged", "task %s: a job with a unique key cannot be staged (the key is checked against pgq.jobs when it is inserted); drop Staged or the unique key", task)
		}
		p.staged = true
	}
	if o.MutexKey != "" {
		if err := checkKey("MutexKey", "mutex key", o.MutexKey, mutexKeyMax); err != nil {
			return prepared{}, err
		}
		p.mutexKey = Ptr(o.MutexKey)
	}
	return p, nil
}

func (p prepared) insertParams(wake bool) db.InsertJobParams {
	return db.InsertJobParams{
		Wake: wake, Task: p.task, Queue: p.queue, State: p.state, Priority: p.priority,
		Args: p.args, Meta: p.meta, MaxRetries: p.maxRetries,
		RetryDelayMs: p.retryDelayMs, TimeLimitMs: p.timeLimitMs, SoftTimeLimitMs: p.softTimeLimitMs,
		IgnoreResult: p.ignoreResult, RunAt: p.runAt, CountdownSeconds: p.countdown.Seconds(),
		ExpiresAt: p.expiresAt, ExpiresInSeconds: seconds(p.expiresIn), MutexKey: p.mutexKey,
	}
}

func (p prepared) stageParams(wake bool) db.StageJobParams {
	i := p.insertParams(wake)
	return db.StageJobParams{
		Wake: wake, Task: i.Task, Queue: i.Queue, State: i.State, Priority: i.Priority,
		Args: i.Args, Meta: i.Meta, MaxRetries: i.MaxRetries,
		RetryDelayMs: i.RetryDelayMs, TimeLimitMs: i.TimeLimitMs, SoftTimeLimitMs: i.SoftTimeLimitMs,
		IgnoreResult: i.IgnoreResult, RunAt: i.RunAt, CountdownSeconds: i.CountdownSeconds,
		ExpiresAt: i.ExpiresAt, ExpiresInSeconds: i.ExpiresInSeconds, MutexKey: i.MutexKey,
	}
}

func (p prepared) insertUniqueParams(wake bool) db.InsertUniqueJobParams {
	i := p.insertParams(wake)
	return db.InsertUniqueJobParams{
		Wake: wake, Task: i.Task, Queue: i.Queue, State: i.State, Priority: i.Priority,
		Args: i.Args, Meta: i.Meta, MaxRetries: i.MaxRetries,
		RetryDelayMs: i.RetryDelayMs, TimeLimitMs: i.TimeLimitMs, SoftTimeLimitMs: i.SoftTimeLimitMs,
		IgnoreResult: i.IgnoreResult, RunAt: i.RunAt, CountdownSeconds: i.CountdownSeconds,
		ExpiresAt: i.ExpiresAt, ExpiresInSeconds: i.ExpiresInSeconds, MutexKey: i.MutexKey,
		UniqueKey: p.unique.key, UniqueScope: string(p.unique.scope), WindowSeconds: p.unique.windowSeconds,
	}
}

func (p prepared) replaceUniqueParams(wake bool) db.ReplaceUniqueJobParams {
	i := p.insertUniqueParams(wake)
	return db.ReplaceUniqueJobParams{
		Wake: wake, Task: i.Task, Queue: i.Queue, State: i.State, Priority: i.Priority,
		Args: i.Args, Meta: i.Meta, MaxRetries: i.MaxRetries,
		RetryDelayMs: i.RetryDelayMs, TimeLimitMs: i.TimeLimitMs, SoftTimeLimitMs: i.SoftTimeLimitMs,
		IgnoreResult: i.IgnoreResult, RunAt: i.RunAt, CountdownSeconds: i.CountdownSeconds,
		ExpiresAt: i.ExpiresAt, ExpiresInSeconds: i.ExpiresInSeconds, MutexKey: i.MutexKey,
		UniqueKey: i.UniqueKey, UniqueScope: i.UniqueScope, WindowSeconds: i.WindowSeconds,
		ReplaceRunAt: p.unique.mode == UniqueReplace,
	}
}

func seconds(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	return Ptr(d.Seconds())
}

// millisOf converts a duration option to the milliseconds the jobs table
// stores: nil for 0 (unset), rounded up so that 1ns is not "none".
func millisOf(field string, d time.Duration) (*int32, error) {
	if d == 0 {
		return nil, nil
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxInt32 {
		return nil, invalid(field, "%s of %s is too long (the limit is about 24 days)", field, d)
	}
	return Ptr(int32(ms)), nil
}
