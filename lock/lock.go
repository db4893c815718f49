package lock

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
)

// Defaults of Config.
const (
	// KeepaliveIntervalDefault is how often a held session lock checks its
	// connection.
	KeepaliveIntervalDefault = time.Second
	// KeepaliveTimeoutDefault is how long one check may take before the
	// connection is taken for lost.
	KeepaliveTimeoutDefault = 5 * time.Second
	// MaxIdleConnsDefault is how many lock connections a Locker keeps open
	// for the next lock once their lock is released.
	MaxIdleConnsDefault = 4
	// UnlockTimeoutDefault bounds the unlock that WithLock runs after its
	// function returns, when the caller's context has ended.
	UnlockTimeoutDefault = 5 * time.Second
)

var (
	// ErrEmptyName is returned for a lock name of "".
	ErrEmptyName = errors.New("lock name is empty: give every lock a name")
	// ErrLost is the cause of a held lock's context when its connection
	// was lost: PostgreSQL has released the lock, and another process may
	// hold it now.
	ErrLost = errors.New("lock lost: its connection to PostgreSQL ended")
	// ErrUnlocked is the cause of a held lock's context after Unlock.
	ErrUnlocked = errors.New("lock released by Unlock")
)

// Config configures a Locker. A nil *Config means all defaults.
type Config struct {
	// Schema is the pgq schema whose locks these are; "" means "pgq".
	// It is part of every key, so two schemas never share a lock.
	Schema string
	// KeepaliveInterval is how often a held session lock checks its
	// connection. 0 means KeepaliveIntervalDefault.
	KeepaliveInterval time.Duration
	// KeepaliveTimeout is how long one check may take before the lock is
	// taken for lost (a hung network rather than a closed connection).
	// 0 means KeepaliveTimeoutDefault.
	KeepaliveTimeout time.Duration
	// MaxIdleConns is how many lock connections, their lock released, the
	// Locker keeps open to take the next lock without connecting again
	// (connecting costs far more than locking). 0 means
	// MaxIdleConnsDefault; a negative value keeps none. Locker.Close
	// closes them.
	MaxIdleConns int
}

// Locker takes named locks in one pgq schema. It is safe for concurrent
// use.
type Locker struct {
	pool     *pgxpool.Pool
	schema   string
	interval time.Duration
	timeout  time.Duration
	maxIdle  int

	mu     sync.Mutex
	idle   []*pgx.Conn
	closed bool
}

// New returns a Locker whose session locks use connections made with
// pool's settings (not taken from the pool). It does not touch the
// database.
func New(pool *pgxpool.Pool, cfg *Config) (*Locker, error) {
	if pool == nil {
		return nil, errors.New("lock.New: pool is nil")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Schema = schema.OrDefault(c.Schema)
	if err := schema.Check(c.Schema); err != nil {
		return nil, fmt.Errorf("Config.Schema: %w", err)
	}
	switch {
	case c.KeepaliveInterval < 0:
		return nil, errors.New("Config.KeepaliveInterval cannot be negative")
	case c.KeepaliveInterval == 0:
		c.KeepaliveInterval = KeepaliveIntervalDefault
	}
	switch {
	case c.KeepaliveTimeout < 0:
		return nil, errors.New("Config.KeepaliveTimeout cannot be negative")
	case c.KeepaliveTimeout == 0:
		c.KeepaliveTimeout = KeepaliveTimeoutDefault
	}
	switch {
	case c.MaxIdleConns < 0:
		c.MaxIdleConns = 0
	case c.MaxIdleConns == 0:
		c.MaxIdleConns = MaxIdleConnsDefault
	}
	return &Locker{
		pool: pool, schema: c.Schema,
		interval: c.KeepaliveInterval, timeout: c.KeepaliveTimeout, maxIdle: c.MaxIdleConns,
	}, nil
}

// Close closes the idle lock connections. Locks still held stay held
// until unlocked; their connections are then closed, not kept.
func (l *Locker) Close() {
	l.mu.Lock()
	idle := l.idle
	l.idle, l.closed = nil, true
	l.mu.Unlock()
	for _, c := range idle {
		closeConn(c)
	}
}

// connect returns an idle lock connection, or a new one made with the
// pool's settings. reused tells which.
func (l *Locker) connect(ctx context.Context) (conn *pgx.Conn, reused bool, err error) {
	l.mu.Lock()
	for len(l.idle) > 0 && conn == nil {
		c := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		if !c.IsClosed() {
			conn = c
		}
	}
	l.mu.Unlock()
	if conn != nil {
		return conn, true, nil
	}
	conn, err = pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig.Copy())
	return conn, false, err
}

// release keeps a connection that holds no lock for the next lock, or
// closes it.
func (l *Locker) release(conn *pgx.Conn) {
	if conn.IsClosed() {
		return
	}
	l.mu.Lock()
	if !l.closed && len(l.idle) < l.maxIdle {
		l.idle = append(l.idle, conn)
		conn = nil
	}
	l.mu.Unlock()
	if conn != nil {
		closeConn(conn)
	}
}

// Schema returns the pgq schema of the locker's locks.
func (l *Locker) Schema() string { return l.schema }

// Key returns the advisory-lock key of the named lock in the locker's
// schema.
func (l *Locker) Key(name string) int64 { return Key(l.schema, name) }

// Key returns the PostgreSQL advisory-lock key of the lock called name in
// pgq schema schemaName ("" means "pgq"): the first 8 bytes of
// SHA-256(schemaName + "." + name), with name as UTF-8, read as a
// big-endian two's-complement int64. In SQL, pgq.lock_key(name) returns
// the same value; a client in another language computes it the same way.
// The algorithm is part of pgq's compatibility promise and never changes.
func Key(schemaName, name string) int64 {
	sum := sha256.Sum256([]byte(schema.OrDefault(schemaName) + "." + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Lock takes the named session lock, waiting for as long as ctx allows.
// It returns ctx's error when ctx ends first. The lock is held by a
// connection of its own until Unlock or until that connection is lost
// (see Held.Context).
func (l *Locker) Lock(ctx context.Context, name string) (*Held, error) {
	h, ok, err := l.lock(ctx, name, true)
	if err != nil {
		return nil, err
	}
	if !ok { // cannot happen when waiting; kept for safety
		return nil, fmt.Errorf("lock %q: not acquired", name)
	}
	return h, nil
}

// TryLock takes the named session lock if it is free. It returns
// ok == false, with a nil Held and error, when another session holds it.
func (l *Locker) TryLock(ctx context.Context, name string) (h *Held, ok bool, err error) {
	return l.lock(ctx, name, false)
}

func (l *Locker) lock(ctx context.Context, name string, wait bool) (*Held, bool, error) {
	if name == "" {
		return nil, false, ErrEmptyName
	}
	key := l.Key(name)
	for {
		conn, reused, err := l.connect(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("lock %q: connect: %w", name, err)
		}
		q := db.New(schema.Wrap(l.schema, conn))
		ok := true
		if wait {
			err = q.AdvisoryLock(ctx, key)
		} else {
			ok, err = q.TryAdvisoryLock(ctx, key)
		}
		switch {
		case err == nil && ok:
			return l.hold(conn, name, key), true, nil
		case err == nil:
			l.release(conn) // holds nothing
			return nil, false, nil
		case reused && conn.IsClosed() && ctx.Err() == nil:
			// An idle connection had died (a restart, an idle timeout):
			// try again on a new one.
			continue
		}
		// Closing the connection releases the lock, should it have been
		// granted as ctx ended.
		closeConn(conn)
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return nil, false, fmt.Errorf("lock %q: %w", name, err)
	}
}

// WithLock runs fn while holding the named session lock, waiting for it as
// long as ctx allows, and releases the lock when fn returns. The context
// fn gets is cancelled when ctx ends or the lock is lost (its cause is
// then ErrLost). WithLock returns fn's error; when fn returns nil but the
// lock was lost while it ran, it returns an error wrapping ErrLost, since
// fn's work was then not protected to the end.
func (l *Locker) WithLock(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	h, err := l.Lock(ctx, name)
	if err != nil {
		return err
	}
	fnCtx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(h.Context(), func() { cancel(context.Cause(h.Context())) })
	fnErr := fn(fnCtx)
	stop()
	cancel(nil)
	unlockCtx, cancelUnlock := context.WithTimeout(context.WithoutCancel(ctx), UnlockTimeoutDefault)
	defer cancelUnlock()
	unlockErr := h.Unlock(unlockCtx)
	if fnErr != nil {
		return fnErr
	}
	if errors.Is(unlockErr, ErrLost) {
		return fmt.Errorf("lock %q: %w while the function ran", name, ErrLost)
	}
	return unlockErr
}

// LockTx takes the named lock in transaction tx, waiting for as long as
// ctx allows; commit or rollback releases it. schemaName is the pgq
// schema ("" means "pgq"). If ctx ends while waiting, the statement is
// cancelled and tx can only be rolled back.
func LockTx(ctx context.Context, tx pgx.Tx, schemaName, name string) error {
	key, err := txKey(schemaName, name)
	if err != nil {
		return err
	}
	if err := db.New(tx).AdvisoryXactLock(ctx, key); err != nil {
		return fmt.Errorf("lock %q in transaction: %w", name, err)
	}
	return nil
}

// TryLockTx takes the named lock in transaction tx if it is free and
// reports whether it did; commit or rollback releases it. schemaName is
// the pgq schema ("" means "pgq").
func TryLockTx(ctx context.Context, tx pgx.Tx, schemaName, name string) (bool, error) {
	key, err := txKey(schemaName, name)
	if err != nil {
		return false, err
	}
	ok, err := db.New(tx).TryAdvisoryXactLock(ctx, key)
	if err != nil {
		return false, fmt.Errorf("try lock %q in transaction: %w", name, err)
	}
	return ok, nil
}

func txKey(schemaName, name string) (int64, error) {
	if name == "" {
		return 0, ErrEmptyName
	}
	s := schema.OrDefault(schemaName)
	if err := schema.Check(s); err != nil {
		return 0, err
	}
	return Key(s, name), nil
}

// Held is a session lock that was taken. Release it with Unlock; watch
// Context or Done to learn that it was lost.
type Held struct {
	locker   *Locker
	name     string
	key      int64
	interval time.Duration
	timeout  time.Duration

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu   sync.Mutex // guards conn: the keepalive and Unlock share it
	conn *pgx.Conn

	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	result error // of the first Unlock
}

func (l *Locker) hold(conn *pgx.Conn, name string, key int64) *Held {
	ctx, cancel := context.WithCancelCause(context.Background())
	h := &Held{
		locker: l, name: name, key: key, interval: l.interval, timeout: l.timeout,
		ctx: ctx, cancel: cancel, conn: conn, stop: make(chan struct{}),
	}
	h.wg.Go(h.keepalive)
	return h
}

// Name returns the lock's name.
func (h *Held) Name() string { return h.name }

// Key returns the lock's advisory-lock key.
func (h *Held) Key() int64 { return h.key }

// Context returns a context that is cancelled when the lock is lost
// (context.Cause is then ErrLost) or released by Unlock (ErrUnlocked).
func (h *Held) Context() context.Context { return h.ctx }

// Done returns a channel that is closed when the lock is lost or
// released; it is Context().Done().
func (h *Held) Done() <-chan struct{} { return h.ctx.Done() }

// Err returns nil while the lock is held, ErrLost once it was lost, and
// ErrUnlocked after Unlock.
func (h *Held) Err() error {
	if h.ctx.Err() == nil {
		return nil
	}
	return context.Cause(h.ctx)
}

// keepalive checks the connection every interval and declares the lock
// lost when a check fails.
func (h *Held) keepalive() {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		if h.conn == nil {
			h.mu.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		err := h.conn.Ping(ctx)
		cancel()
		if err != nil {
			h.cancel(ErrLost)
			closeConn(h.conn)
			h.conn = nil
		}
		h.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Unlock releases the lock; its connection is kept for the Locker's next
// lock or closed. It returns an error
// wrapping ErrLost when the lock had been lost before. Calling it again
// returns the first call's result.
func (h *Held) Unlock(ctx context.Context) error {
	h.once.Do(func() { h.result = h.unlock(ctx) })
	return h.result
}

func (h *Held) unlock(ctx context.Context) error {
	close(h.stop)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		return fmt.Errorf("unlock %q: %w", h.name, ErrLost)
	}
	conn := h.conn
	h.conn = nil
	released, err := db.New(conn).AdvisoryUnlock(ctx, h.key)
	if err == nil && released {
		h.locker.release(conn)
	} else {
		closeConn(conn)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		// Cancelled: closing the connection released the lock.
		h.cancel(ErrUnlocked)
		return fmt.Errorf("unlock %q: %w (closing its connection released it)", h.name, ctx.Err())
	case err != nil && h.ctx.Err() == nil && conn.IsClosed():
		// The connection broke on the way: PostgreSQL has let go of the
		// lock, just not at our request.
		h.cancel(ErrLost)
		return fmt.Errorf("unlock %q: %w", h.name, ErrLost)
	case err != nil:
		// Closing the connection releases the lock anyway.
		h.cancel(ErrUnlocked)
		return fmt.Errorf("unlock %q: %w (closing its connection released it)", h.name, err)
	case !released:
		h.cancel(ErrLost)
		return fmt.Errorf("unlock %q: %w (the session no longer held it)", h.name, ErrLost)
	}
	h.cancel(ErrUnlocked)
	return nil
}

// closeConn closes a lock connection; closing is what releases a session
// lock, so it must not wait on a dead server for long.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
