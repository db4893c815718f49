package periodic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// Defaults of Config.
const (
	// ElectionIntervalDefault is how often a standby tries to take the
	// leader's lock. A leader that stops cleanly hands over at once.
	ElectionIntervalDefault = time.Second
	// RefreshIntervalDefault is how often the leader re-reads the table
	// even when no edit woke it.
	RefreshIntervalDefault = 5 * time.Second
	// GraceDefault is how late a tick may be reached and still count as
	// on time for the Skip policy.
	GraceDefault = 10 * time.Second
	// SessionTimeoutDefault is how long the server keeps a silent beat
	// connection (a vanished host) and with it the leader's lock.
	SessionTimeoutDefault = 15 * time.Second
	// RunRetentionDefault is how long rows of pgq.periodic_runs are kept.
	RunRetentionDefault = 7 * 24 * time.Hour
)

const (
	pruneInterval = time.Hour
	pruneBatch    = 10000
)

// Config configures a Beat. A nil *Config means all defaults.
type Config struct {
	// Schema is where pgq's tables live; empty means "pgq".
	Schema string
	// Entries are the periodic tasks this program defines in code. The
	// leader stores them (source "code") when it takes the lead, and
	// disables code tasks that are not among them. A nil Entries leaves
	// the code tasks alone: `pgq beat` and `pgq worker --beat` run what
	// the table holds.
	Entries []Entry
	// ID names this beat process in logs and in pgq.periodic_runs;
	// empty means host-pid-random.
	ID string
	// Routes route the jobs, as in queue.Config.
	Routes []queue.Route
	// Logger receives beat's logs; nil means slog.Default().
	Logger *slog.Logger
	// ElectionInterval: see ElectionIntervalDefault.
	ElectionInterval time.Duration
	// RefreshInterval: see RefreshIntervalDefault.
	RefreshInterval time.Duration
	// Grace: see GraceDefault.
	Grace time.Duration
	// SessionTimeout: see SessionTimeoutDefault. It must be longer than
	// twice ElectionInterval and RefreshInterval, or live beats would be
	// cut off between their statements.
	SessionTimeout time.Duration
	// RunRetention: see RunRetentionDefault.
	RunRetention time.Duration
	// SessionConnConfig, when set, is used for the beat's own connection,
	// which holds the leader's session advisory lock and LISTENs for
	// schedule edits, so it must stay with one PostgreSQL session. Behind
	// pgbouncer in transaction mode, point it straight at PostgreSQL
	// (docs/pgbouncer.md). Nil means the pool's own settings.
	SessionConnConfig *pgx.ConnConfig
}

func (cfg *Config) normalize() (Config, []normalized, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Schema = schema.OrDefault(c.Schema)
	if err := schema.Check(c.Schema); err != nil {
		return c, nil, fmt.Errorf("Config.Schema: %w", err)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ElectionInterval", &c.ElectionInterval, ElectionIntervalDefault},
		{"RefreshInterval", &c.RefreshInterval, RefreshIntervalDefault},
		{"Grace", &c.Grace, GraceDefault},
		{"SessionTimeout", &c.SessionTimeout, SessionTimeoutDefault},
		{"RunRetention", &c.RunRetention, RunRetentionDefault},
	} {
		if *d.v < 0 {
			return c, nil, fmt.Errorf("Config.%s cannot be negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.SessionTimeout < 2*max(c.ElectionInterval, c.RefreshInterval) {
		return c, nil, fmt.Errorf("Config.SessionTimeout (%s) must be at least twice ElectionInterval and RefreshInterval (%s)",
			c.SessionTimeout, max(c.ElectionInterval, c.RefreshInterval))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	var ns []normalized
	if c.Entries != nil {
		var err error
		if ns, err = normalizeAll(c.Entries); err != nil {
			return c, nil, fmt.Errorf("Config.%w", err)
		}
		if ns == nil {
			ns = []normalized{}
		}
	}
	return c, ns, nil
}

// Beat enqueues the jobs of periodic tasks. Run any number of Beats on a
// schema: one leads, holding a session advisory lock on a connection of
// its own; the others stand by and take over when it goes. See the
// package documentation for the election and the exactly-once argument.
type Beat struct {
	cfg     Config
	entries []normalized // nil: leave code tasks alone
	pool    *pgxpool.Pool
	jobs    *queue.Client
	log     *slog.Logger
	now     func() time.Time

	leader   atomic.Bool
	lockName string

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// badRows remembers which invalid rows were logged, so that a bad row
	// is reported when it appears or changes, not at every re-read.
	badRows map[string]string
}

// New returns a Beat that uses pool's connection settings for its own
// connection and enqueues through a queue.Client on pool. It checks cfg
// (every entry included, with errors that name the entry and field) but
// does not touch the database.
func New(pool *pgxpool.Pool, cfg *Config) (*Beat, error) {
	if pool == nil {
		return nil, errors.New("periodic.New: pool is nil")
	}
	c, ns, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	jobs, err := queue.NewClient(pool, &queue.Config{Schema: c.Schema, Routes: c.Routes})
	if err != nil {
		return nil, err
	}
	return &Beat{
		cfg: c, entries: ns, pool: pool, jobs: jobs,
		log:      c.Logger.With("beat_id", c.ID),
		now:      time.Now,
		lockName: schema.Channel(c.Schema, "beat"),
		badRows:  map[string]string{},
	}, nil
}

// ID returns the beat's id.
func (b *Beat) ID() string { return b.cfg.ID }

// Leader reports whether this beat leads now.
func (b *Beat) Leader() bool { return b.leader.Load() }

// Start starts the beat's loop: connect, try to lead, and lead or stand
// by until Stop. Database errors are logged and retried with backoff.
// Start after Stop, or a second Start, does nothing.
func (b *Beat) Start(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.stopped {
		return
	}
	b.started = true
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.wg.Go(func() { b.loop(ctx) })
}

// Stop stops the loop and waits for it. A leader releases its lock and
// tells the standbys, so one of them takes over at once. Stop may be
// called more than once, and before Start.
func (b *Beat) Stop() {
	b.mu.Lock()
	b.stopped = true
	cancel := b.cancel
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.wg.Wait()
}

// Run starts the beat and stops it when ctx ends. It returns nil.
func (b *Beat) Run(ctx context.Context) error {
	b.Start(ctx)
	<-ctx.Done()
	b.Stop()
	return nil
}

func (b *Beat) loop(ctx context.Context) {
	b.log.Info("beat started", "schema", b.cfg.Schema)
	failures := 0
	for {
		connected, err := b.session(ctx)
		b.setLeader(false)
		if ctx.Err() != nil {
			b.log.Info("beat stopped")
			return
		}
		if connected {
			failures = 0
		}
		failures++
		wait := backoff(failures)
		b.log.Warn("beat connection failed; reconnecting", "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			b.log.Info("beat stopped")
			return
		case <-t.C:
		}
	}
}

func (b *Beat) setLeader(on bool) {
	if b.leader.Swap(on) == on {
		return
	}
	if on {
		b.log.Info("beat leading")
	} else {
		b.log.Warn("beat no longer leading")
	}
}

// session opens the beat's connection, stands by until it gets the lock,
// then leads, until the connection fails or ctx ends.
func (b *Beat) session(ctx context.Context) (connected bool, err error) {
	cfg := b.pool.Config().ConnConfig
	if b.cfg.SessionConnConfig != nil {
		cfg = b.cfg.SessionConnConfig
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	leading := false
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if leading && !conn.IsClosed() {
			q := b.queries(conn)
			if _, err := q.ReleaseBeatLock(closeCtx, b.lockName); err == nil {
				_ = q.NotifyBeatResigned(closeCtx, b.cfg.ID)
			}
		}
		_ = conn.Close(closeCtx)
	}()
	q := b.queries(conn)
	if err := q.SetBeatSessionTimeouts(ctx, fmt.Sprintf("%dms", b.cfg.SessionTimeout.Milliseconds())); err != nil {
		return true, fmt.Errorf("set session timeouts: %w", err)
	}
	if err := q.ListenBeat(ctx); err != nil {
		return true, fmt.Errorf("listen: %w", err)
	}
	for {
		got, err := q.TryBeatLock(ctx, b.lockName)
		if err != nil {
			return true, fmt.Errorf("try the leader lock: %w", err)
		}
		if got {
			leading = true
			return true, b.lead(ctx, conn)
		}
		// Stand by until the leader resigns or it is time to try again.
		if _, err := b.wait(ctx, conn, jitter(b.cfg.ElectionInterval)); err != nil {
			return true, err
		}
	}
}

// wait waits up to d for a notification on conn. It returns the
// notification (nil on timeout) and an error only when the connection
// failed or ctx ended.
func (b *Beat) wait(ctx context.Context, conn *pgx.Conn, d time.Duration) (*pgconn.Notification, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	n, err := conn.WaitForNotification(wctx)
	switch {
	case err == nil:
		return n, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil && !conn.IsClosed():
		return nil, nil
	}
	return nil, fmt.Errorf("wait for notifications: %w", err)
}

func (b *Beat) queries(d schema.DBTX) *db.Queries { return db.New(schema.Wrap(b.cfg.Schema, d)) }

// lead runs the leader's loop on conn, the connection that holds the
// lock. Every write goes through conn, so a leader whose connection fails
// cannot enqueue another job: its next statement fails and it steps down.
func (b *Beat) lead(ctx context.Context, conn *pgx.Conn) error {
	b.setLeader(true)
	q := b.queries(conn)
	if err := q.ListenPeriodic(ctx); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if b.entries != nil {
		var retired []string
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var err error
			retired, err = syncCode(ctx, b.queries(tx), b.entries)
			return err
		})
		if err != nil {
			return fmt.Errorf("store periodic tasks defined in code: %w", err)
		}
		for _, name := range retired {
			b.log.Warn("periodic task no longer defined in code: disabled", "periodic_task", name)
		}
		b.log.Info("periodic tasks from code stored", "count", len(b.entries), "disabled", len(retired))
	}
	var (
		rows      []*row
		reload    = true
		refreshAt time.Time
		pruneAt   = b.now()
	)
	for {
		now := b.now()
		if reload || !now.Before(refreshAt) {
			var err error
			if rows, err = b.load(ctx, q, now); err != nil {
				return err
			}
			reload, refreshAt = false, now.Add(b.cfg.RefreshInterval)
		}
		wake := refreshAt
		for _, r := range rows {
			if r.err != nil || !r.Enabled || now.Before(r.retryAt) {
				continue
			}
			if err := b.due(ctx, conn, r, now); err != nil {
				return err
			}
			if n := r.sched.Next(maxTime(now, r.anchor())); !n.IsZero() && n.Before(wake) {
				wake = n
			}
		}
		if !now.Before(pruneAt) {
			b.prune(ctx, q, now)
			pruneAt = now.Add(pruneInterval)
		}
		n, err := b.wait(ctx, conn, max(time.Until(wake), 0))
		if err != nil {
			return err
		}
		if n != nil && n.Channel == schema.Channel(b.cfg.Schema, "periodic") {
			reload = true
		}
	}
}

// load reads every periodic task, logs rows that cannot be scheduled
// (once per distinct problem) and writes each row's next tick and error
// for people reading the table.
func (b *Beat) load(ctx context.Context, q *db.Queries, now time.Time) ([]*row, error) {
	list, err := q.ListPeriodicTasks(ctx)
	if err != nil {
		return nil, fmt.Errorf("read periodic tasks: %w", err)
	}
	rows := make([]*row, 0, len(list))
	p := db.SetPeriodicStatusParams{}
	seen := make(map[string]bool, len(list))
	for _, l := range list {
		r := newRow(*l)
		rows = append(rows, r)
		seen[r.Name] = true
		msg := ""
		if r.err != nil {
			msg = r.err.Error()
			if r.Enabled && b.badRows[r.Name] != msg {
				b.log.Error("periodic task cannot be scheduled; skipping it until its row is fixed",
					"periodic_task", r.Name, "spec", r.Spec, "time_zone", r.TimeZone, "task", r.Task, "error", r.err)
			}
		}
		b.badRows[r.Name] = msg
		var next time.Time
		if r.err == nil && r.Enabled {
			next = r.sched.Next(maxTime(now, r.anchor()))
		}
		p.Names = append(p.Names, r.Name)
		p.HasNext = append(p.HasNext, !next.IsZero())
		p.NextTicks = append(p.NextTicks, next)
		p.Errors = append(p.Errors, msg)
	}
	for name := range b.badRows {
		if !seen[name] {
			delete(b.badRows, name)
		}
	}
	if err := q.SetPeriodicStatus(ctx, p); err != nil {
		return nil, fmt.Errorf("write periodic task status: %w", err)
	}
	return rows, nil
}

// due handles r's latest due tick, if it has one: a job, or a skip.
func (b *Beat) due(ctx context.Context, conn *pgx.Conn, r *row, now time.Time) error {
	tick, ok := r.sched.Latest(r.anchor(), now)
	if !ok {
		return nil
	}
	next := r.sched.Next(tick)
	missed := r.sched.Next(r.anchor()).Before(tick)
	late := now.Sub(tick) > b.cfg.Grace
	log := b.log.With("periodic_task", r.Name, "tick", tick, "task", r.Task)
	if MissedTicks(r.Missed) == Skip && late {
		n, err := b.queries(conn).SkipPeriodicTick(ctx, db.SkipPeriodicTickParams{
			Tick: tick, NextTick: ptrIfSet(next), Name: r.Name, Spec: r.Spec, TimeZone: r.TimeZone,
		})
		if err != nil {
			return b.tickFailed(r, now, fmt.Errorf("skip tick of %q: %w", r.Name, err))
		}
		r.LastTick = &tick
		if n > 0 {
			log.Info("missed tick skipped (policy skip)", "late_by", now.Sub(tick).Round(time.Millisecond))
		}
		return nil
	}
	if missed {
		log.Info("ticks were missed; one job for the latest (policy run-once)", "missed_since", r.anchor())
	}
	job, claimed, err := b.fire(ctx, conn, r, tick, next)
	if err != nil {
		return b.tickFailed(r, now, fmt.Errorf("enqueue tick of %q: %w", r.Name, err))
	}
	r.LastTick = &tick
	if claimed {
		log.Info("periodic job enqueued", "job_id", job.ID, "queue", job.Queue, "late_by", now.Sub(tick).Round(time.Millisecond))
	} else {
		log.Debug("tick already handled elsewhere")
	}
	return nil
}

// errNotClaimed rolls back a tick's transaction whose tick another beat
// handled.
var errNotClaimed = errors.New("tick already claimed")

// fire enqueues the job of tick in one transaction with the tick's claim:
// the run row (name, tick) is inserted first, ON CONFLICT DO NOTHING, and
// the job only when the insert happened. Both commit, or neither.
func (b *Beat) fire(ctx context.Context, conn *pgx.Conn, r *row, tick, next time.Time) (queue.Enqueued, bool, error) {
	var job queue.Enqueued
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		q := b.queries(tx)
		_, err := q.ClaimPeriodicTick(ctx, db.ClaimPeriodicTickParams{
			Tick: tick, BeatID: b.cfg.ID, NextTick: ptrIfSet(next), Name: r.Name, Spec: r.Spec, TimeZone: r.TimeZone,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotClaimed
		}
		if err != nil {
			return err
		}
		job, err = b.jobs.EnqueueTx(ctx, tx, queue.Raw{Task: r.Task, Args: r.Args}, r.jobOptions(tick, next))
		if err != nil {
			return err
		}
		return q.RecordPeriodicJob(ctx, db.RecordPeriodicJobParams{JobID: job.ID, Name: r.Name, Tick: &tick})
	})
	if errors.Is(err, errNotClaimed) {
		return job, false, nil
	}
	return job, err == nil, err
}

// tickFailed decides what a failed tick means. A statement the database
// refused (a constraint, a payload the client rejects) concerns this row
// only: it is logged and retried after RefreshInterval, and the other
// tasks keep firing. Anything else means the connection is in doubt, and
// the leader steps down.
func (b *Beat) tickFailed(r *row, now time.Time, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !isConnectionError(pgErr) || errors.Is(err, queue.ErrInvalid) {
		b.log.Error("periodic task failed; retrying later", "periodic_task", r.Name, "error", err, "retry_in", b.cfg.RefreshInterval)
		r.retryAt = now.Add(b.cfg.RefreshInterval)
		return nil
	}
	return err
}

func isConnectionError(e *pgconn.PgError) bool {
	return len(e.Code) >= 2 && e.Code[:2] == "08" || e.Code == "57P01" || e.Code == "57P02" || e.Code == "57P03"
}

// prune deletes run rows older than RunRetention. A failure is only
// logged: the next round tries again.
func (b *Beat) prune(ctx context.Context, q *db.Queries, now time.Time) {
	n, err := q.PrunePeriodicRuns(ctx, db.PrunePeriodicRunsParams{Before: now.Add(-b.cfg.RunRetention), MaxRows: pruneBatch})
	if err != nil {
		b.log.Warn("prune periodic runs", "error", err)
		return
	}
	if n > 0 {
		b.log.Debug("pruned periodic runs", "count", n)
	}
}

const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 5 * time.Second
)

// backoff is the wait before the n-th reconnection (n from 1): 50 ms
// doubling to 5 s, spread by ±20%.
func backoff(n int) time.Duration {
	d := min(backoffMin<<min(max(n-1, 0), 10), backoffMax)
	return jitter(d)
}

// jitter spreads d by ±20%, so that standbys do not all ask at once.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*mathrand.Float64()))
}
