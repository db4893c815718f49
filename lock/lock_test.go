package lock_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/lock"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

type bundle struct {
	db     *pgtest.DB
	locker *lock.Locker
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := pgtest.New(t)
	l, err := lock.New(db.Pool, &lock.Config{Schema: db.Schema, KeepaliveInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(l.Close)
	return &bundle{db: db, locker: l}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestKeyGolden pins the key derivation: it is a promise to other clients
// and must never change.
func TestKeyGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		schema, name string
		key          int64
	}{
		// Computed independently with Python's hashlib:
		// int.from_bytes(sha256(b"pgq.example").digest()[:8], "big", signed=True)
		{"pgq", "example", -2935670377518634196},
		{"pgq", "reports:daily", -2336720084983701143},
		{"tenant_1", "example", 980864994815575392},
	} {
		require.Equal(t, tc.key, lock.Key(tc.schema, tc.name))
	}
	require.Equal(t, lock.Key("pgq", "x"), lock.Key("", "x"))
	require.NotEqual(t, lock.Key("a", "b.c"), lock.Key("a", "b"))
}

func TestKeyMatchesSQL(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 20*time.Second)
	b := setup(t)
	names := []string{
		"a", "example", "reports:daily", "pgq", " ", "name with spaces", "tenant/42/invoice",
		"日本語のロック", "Ünïcødé", "emoji 🔒🚀", "ascii\ttab", "quote'quote", `back\slash`,
		"ζ", "very-long-" + string(make([]byte, 0)) + "0123456789012345678901234567890123456789012345678901234567890123456789",
	}
	for i := range 200 {
		names = append(names, "job-"+string(rune('a'+i%26))+"-"+string(rune(0x4e00+i)))
	}
	var sqlKeys []int64
	rows, err := b.db.Pool.Query(ctx, "SELECT "+b.db.Schema+".lock_key(n) FROM unnest($1::text[]) WITH ORDINALITY AS u(n, i) ORDER BY i", names)
	require.NoError(t, err)
	sqlKeys, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Len(t, sqlKeys, len(names))
	for i, n := range names {
		require.Equal(t, lock.Key(b.db.Schema, n), sqlKeys[i], "name %q", n)
		require.Equal(t, b.locker.Key(n), sqlKeys[i], "name %q", n)
	}

	// Another schema gives other keys, in Go and in SQL.
	other := setup(t)
	require.NotEqual(t, b.db.Schema, other.db.Schema)
	var k1, k2 int64
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT "+b.db.Schema+".lock_key('same'), "+other.db.Schema+".lock_key('same')").Scan(&k1, &k2))
	require.NotEqual(t, k1, k2)
	require.Equal(t, lock.Key(b.db.Schema, "same"), k1)
	require.Equal(t, lock.Key(other.db.Schema, "same"), k2)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	_, err := lock.New(nil, nil)
	require.ErrorContains(t, err, "pool is nil")
	_, err = lock.New(db.Pool, &lock.Config{Schema: "Bad-Name"})
	require.ErrorContains(t, err, "Config.Schema")
	_, err = lock.New(db.Pool, &lock.Config{KeepaliveInterval: -1})
	require.ErrorContains(t, err, "Config.KeepaliveInterval cannot be negative")
	l, err := lock.New(db.Pool, nil)
	require.NoError(t, err)
	require.Equal(t, "pgq", l.Schema())
}

func TestEmptyName(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)
	_, err := b.locker.Lock(ctx, "")
	require.ErrorIs(t, err, lock.ErrEmptyName)
	_, _, err = b.locker.TryLock(ctx, "")
	require.ErrorIs(t, err, lock.ErrEmptyName)
	require.ErrorIs(t, b.locker.WithLock(ctx, "", func(context.Context) error { return nil }), lock.ErrEmptyName)
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	require.ErrorIs(t, lock.LockTx(ctx, tx, b.db.Schema, ""), lock.ErrEmptyName)
	_, err = lock.TryLockTx(ctx, tx, b.db.Schema, "")
	require.ErrorIs(t, err, lock.ErrEmptyName)
}

func TestTryLockContention(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)
	h, ok, err := b.locker.TryLock(ctx, "report")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "report", h.Name())
	require.Equal(t, b.locker.Key("report"), h.Key())
	require.NoError(t, h.Err())

	h2, ok, err := b.locker.TryLock(ctx, "report")
	require.NoError(t, err)
	require.False(t, ok)
	require.Nil(t, h2)

	// Another name, and the same name in another schema, are free.
	h3, ok, err := b.locker.TryLock(ctx, "other")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, h3.Unlock(ctx))
	otherSchema := setup(t)
	h4, ok, err := otherSchema.locker.TryLock(ctx, "report")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, h4.Unlock(ctx))

	require.NoError(t, h.Unlock(ctx))
	require.ErrorIs(t, h.Err(), lock.ErrUnlocked)
	require.NoError(t, h.Unlock(ctx), "second Unlock repeats the first result")
	select {
	case <-h.Done():
	default:
		t.Fatal("Done not closed after Unlock")
	}

	h5, ok, err := b.locker.TryLock(ctx, "report")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, h5.Unlock(ctx))
}

func TestLockWaitsForUnlock(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)
	h, err := b.locker.Lock(ctx, "job")
	require.NoError(t, err)

	got := make(chan *lock.Held, 1)
	errs := make(chan error, 1)
	go func() {
		h2, err := b.locker.Lock(ctx, "job")
		if err != nil {
			errs <- err
			return
		}
		got <- h2
	}()
	// Wait until the second session waits on the lock.
	require.Eventually(t, func() bool {
		var n int
		_ = b.db.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1", h.Key()).Scan(&n)
		return n == 1
	}, 5*time.Second, 5*time.Millisecond)
	select {
	case <-got:
		t.Fatal("second Lock returned while the first held the lock")
	default:
	}
	unlocked := time.Now()
	require.NoError(t, h.Unlock(ctx))
	select {
	case h2 := <-got:
		t.Logf("waiter took the lock %v after Unlock", time.Since(unlocked))
		require.NoError(t, h2.Unlock(ctx))
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("waiter never took the lock")
	}
}

func TestLockContextEnds(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)
	h, err := b.locker.Lock(ctx, "busy")
	require.NoError(t, err)
	defer func() { require.NoError(t, h.Unlock(ctx)) }()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = b.locker.Lock(short, "busy")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestLostConnectionCancelsHolder(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)
	h, err := b.locker.Lock(ctx, "fragile")
	require.NoError(t, err)

	var pid int32
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1", h.Key()).Scan(&pid))
	killed := time.Now()
	var ok bool
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok))
	require.True(t, ok)
	select {
	case <-h.Done():
		t.Logf("holder's context cancelled %v after pg_terminate_backend", time.Since(killed))
	case <-time.After(2 * time.Second):
		t.Fatal("holder's context not cancelled within 2s of losing its connection")
	}
	require.ErrorIs(t, context.Cause(h.Context()), lock.ErrLost)
	require.ErrorIs(t, h.Err(), lock.ErrLost)
	require.ErrorIs(t, h.Unlock(ctx), lock.ErrLost)

	// The lock is free again.
	h2, ok, err := b.locker.TryLock(ctx, "fragile")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, h2.Unlock(ctx))
}

func TestWithLock(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)

	ran := false
	require.NoError(t, b.locker.WithLock(ctx, "w", func(ctx context.Context) error {
		ran = true
		_, ok, err := b.locker.TryLock(ctx, "w")
		require.NoError(t, err)
		require.False(t, ok, "held during fn")
		return nil
	}))
	require.True(t, ran)
	boom := errors.New("boom")
	require.ErrorIs(t, b.locker.WithLock(ctx, "w", func(context.Context) error { return boom }), boom)

	// Released after fn.
	h, ok, err := b.locker.TryLock(ctx, "w")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, h.Unlock(ctx))

	// A lost lock cancels fn's context with ErrLost, and WithLock says so
	// even when fn returns nil.
	err = b.locker.WithLock(ctx, "w", func(fnCtx context.Context) error {
		var pid int32
		require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1", b.locker.Key("w")).Scan(&pid))
		_, err := b.db.Pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
		require.NoError(t, err)
		select {
		case <-fnCtx.Done():
		case <-time.After(2 * time.Second):
			t.Error("fn's context not cancelled")
		}
		require.ErrorIs(t, context.Cause(fnCtx), lock.ErrLost)
		return nil
	})
	require.ErrorIs(t, err, lock.ErrLost)
}

func TestTxLockReleasedAtCommit(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)

	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, lock.LockTx(ctx, tx, b.db.Schema, "tx"))

	// A session lock and another transaction cannot take it.
	_, ok, err := b.locker.TryLock(ctx, "tx")
	require.NoError(t, err)
	require.False(t, ok)
	tx2, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	ok, err = lock.TryLockTx(ctx, tx2, b.db.Schema, "tx")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, tx2.Rollback(ctx))

	require.NoError(t, tx.Commit(ctx))
	h, ok, err := b.locker.TryLock(ctx, "tx")
	require.NoError(t, err)
	require.True(t, ok, "commit released the transaction lock")

	// And the other way round: a transaction waits for a session lock,
	// and gets it when it is released; rollback releases it too.
	tx3, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	ok, err = lock.TryLockTx(ctx, tx3, "", "tx") // default schema: another key
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, tx3.Rollback(ctx))
	done := make(chan error, 1)
	tx4, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	go func() { done <- lock.LockTx(ctx, tx4, b.db.Schema, "tx") }()
	require.NoError(t, h.Unlock(ctx))
	require.NoError(t, <-done)
	require.NoError(t, tx4.Rollback(ctx))
	h, ok, err = b.locker.TryLock(ctx, "tx")
	require.NoError(t, err)
	require.True(t, ok, "rollback released the transaction lock")
	require.NoError(t, h.Unlock(ctx))
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)
	h, err := b.locker.Lock(ctx, "listed")
	require.NoError(t, err)
	defer func() { require.NoError(t, h.Unlock(ctx)) }()
	infos, err := b.locker.List(ctx, "listed")
	require.NoError(t, err)
	var found *lock.Info
	for i := range infos {
		if infos[i].Key == h.Key() {
			found = &infos[i]
		}
	}
	require.NotNil(t, found)
	require.Equal(t, "lock listed", found.Owner)
	require.True(t, found.Granted)
	require.Equal(t, "ExclusiveLock", found.Mode)
	require.NotZero(t, found.PID)
	require.NotNil(t, found.BackendStart)
}

func TestNoGoroutineLeak(t *testing.T) {
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t) // starts the shared server and pool first
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h, err := b.locker.Lock(ctx, "leak")
	require.NoError(t, err)
	require.NoError(t, h.Unlock(ctx))
	require.NoError(t, b.locker.WithLock(ctx, "leak", func(context.Context) error { return nil }))
}

func TestIdleConnectionReused(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, 10*time.Second)
	b := setup(t)
	backend := func(key int64) int32 {
		var pid int32
		require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1", key).Scan(&pid))
		return pid
	}
	h, err := b.locker.Lock(ctx, "a")
	require.NoError(t, err)
	first := backend(h.Key())
	require.NoError(t, h.Unlock(ctx))
	h, err = b.locker.Lock(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, first, backend(h.Key()), "the released connection takes the next lock")
	require.NoError(t, h.Unlock(ctx))

	// An idle connection that died is replaced, not reported.
	_, err = b.db.Pool.Exec(ctx, "SELECT pg_terminate_backend($1)", first)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		_ = b.db.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", first).Scan(&n)
		return n == 0
	}, 5*time.Second, 5*time.Millisecond)
	h, ok, err := b.locker.TryLock(ctx, "c")
	require.NoError(t, err)
	require.True(t, ok)
	require.NotEqual(t, first, backend(h.Key()))
	require.NoError(t, h.Unlock(ctx))
}
