package tests

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/lock"
)

// TestLockCounterNoLostUpdate runs 8 goroutines in 3 processes that
// increment one counter row 1,000 times in total, each increment a read
// and a separate write under one named lock. The counter must end at
// exactly 1,000: no update was lost.
func TestLockCounterNoLostUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lockcounter binaries")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := pgtest.New(t)
	bin := buildExample(t, "lockcounter")
	table := counterTable(ctx, t, db)

	started := time.Now()
	var procs []*exec.Cmd
	var outs []*lockedBuffer
	for _, p := range []struct{ goroutines, increments string }{{"3", "334"}, {"3", "333"}, {"2", "333"}} {
		cmd, out := startWorkerLogs(t, bin, "-database-url", db.URL, "-schema", db.Schema, "-table", table,
			"-lock", "counter", "-goroutines", p.goroutines, "-increments", p.increments)
		procs, outs = append(procs, cmd), append(outs, out)
	}
	for i, cmd := range procs {
		require.NoError(t, cmd.Wait(), "lockcounter %d: %s", i, outs[i].String())
		require.Contains(t, outs[i].String(), "done")
	}
	var n int64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT n FROM "+table+" WHERE id = 1").Scan(&n))
	require.EqualValues(t, 1000, n, "lost updates")
	t.Logf("1,000 locked increments by 8 goroutines in 3 processes took %v", time.Since(started).Round(time.Millisecond))
}

// TestLockHolderSIGKILL kills a process that holds a lock while another
// session waits for it; PostgreSQL ends the dead process's session and the
// waiter must get the lock within a second.
func TestLockHolderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs lockcounter binaries")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := pgtest.New(t)
	bin := buildExample(t, "lockcounter")
	holder, out := startWorkerLogs(t, bin, "-database-url", db.URL, "-schema", db.Schema, "-lock", "singleton", "-hold")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "holding") }, 10*time.Second, 5*time.Millisecond)

	locker, err := lock.New(db.Pool, &lock.Config{Schema: db.Schema})
	require.NoError(t, err)
	_, ok, err := locker.TryLock(ctx, "singleton")
	require.NoError(t, err)
	require.False(t, ok, "the holder process has it")

	type result struct {
		h   *lock.Held
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		h, err := locker.Lock(ctx, "singleton")
		got <- result{h, err, time.Now()}
	}()
	key := locker.Key("singleton")
	require.Eventually(t, func() bool {
		var n int
		_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1`, key).Scan(&n)
		return n == 1
	}, 10*time.Second, 5*time.Millisecond, "the waiter never queued")

	killed := time.Now()
	require.NoError(t, holder.Process.Signal(syscall.SIGKILL))
	_ = holder.Wait()
	select {
	case r := <-got:
		require.NoError(t, r.err)
		handover := r.at.Sub(killed)
		t.Logf("lock handed to the waiter %v after SIGKILL of its holder", handover.Round(time.Microsecond))
		require.Less(t, handover, time.Second)
		require.NoError(t, r.h.Unlock(ctx))
	case <-ctx.Done():
		t.Fatal("the waiter never got the lock")
	}
}

// counterTable creates a counter row in a table of its own, outside the
// pgq schema, and drops it when the test ends.
func counterTable(ctx context.Context, t *testing.T, db *pgtest.DB) string {
	t.Helper()
	table := pgx.Identifier{"public", "lockcounter_" + db.Schema}.Sanitize()
	_, err := db.Pool.Exec(ctx, "CREATE TABLE "+table+" (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO "+table+" VALUES (1, 0)")
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+table) })
	return "public.lockcounter_" + db.Schema
}
