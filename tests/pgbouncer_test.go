package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/lock"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// pgbouncerBin is where Debian's pgbouncer package puts the program.
const pgbouncerBin = "/usr/sbin/pgbouncer"

// TestBehindPgbouncerTransactionMode runs a producer and a worker through a
// real pgbouncer in transaction-pooling mode (docs/pgbouncer.md): enqueue
// one, many (COPY) and inside a business transaction, work every job with
// polling instead of LISTEN, read the results, and take a
// transaction-scoped lock. Nothing may be lost.
func TestBehindPgbouncerTransactionMode(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(pgbouncerBin); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("pgbouncer is not installed (apt-get install pgbouncer): %v", err)
		}
		t.Fatalf("pgbouncer is not installed but CI is set: .ci/run should have installed it: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := pgtest.New(t)
	bouncerURL := startPgbouncer(t, db.URL)

	// Transaction pooling hands each transaction whichever server
	// connection is free, so named prepared statements (pgx's default
	// cache) cannot be used with pgbouncer 1.18: the exec mode sends each
	// statement unnamed, in one round trip.
	cfg, err := pgxpool.ParseConfig(bouncerURL)
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.MaxConns = 10
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	client, err := queue.NewClient(pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	require.NoError(t, client.Check(ctx))

	var ids []int64
	for i := range 50 {
		e, err := client.Enqueue(ctx, queue.Raw{Task: "pgq.echo", Args: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}, nil)
		require.NoError(t, err)
		ids = append(ids, e.ID)
	}
	var reqs []queue.Request
	for i := range 1000 {
		reqs = append(reqs, queue.Request{Args: queue.Raw{Task: "pgq.echo", Args: json.RawMessage(fmt.Sprintf(`{"n":%d}`, 100+i))}})
	}
	many, err := client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)
	for _, e := range many {
		ids = append(ids, e.ID)
	}
	// A business transaction with its job, and one rolled back with its job.
	business := pgx.Identifier{db.Schema, "bouncer_orders"}.Sanitize()
	_, err = pool.Exec(ctx, "CREATE TABLE "+business+" (id bigint PRIMARY KEY)")
	require.NoError(t, err)
	var txJob int64
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+business+" VALUES (1)"); err != nil {
			return err
		}
		e, err := client.EnqueueTx(ctx, tx, queue.Raw{Task: "pgq.echo", Args: json.RawMessage(`{"order":1}`)}, nil)
		txJob = e.ID
		return err
	}))
	ids = append(ids, txJob)
	rollback := fmt.Errorf("roll back")
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+business+" VALUES (2)"); err != nil {
			return err
		}
		if _, err := client.EnqueueTx(ctx, tx, queue.Raw{Task: "pgq.echo", Args: json.RawMessage(`{"order":2}`)}, nil); err != nil {
			return err
		}
		return rollback
	})
	require.ErrorIs(t, err, rollback)

	// A transaction-scoped lock works through the pooler (a session lock
	// would stay on whichever server connection took it).
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		ok, err := lock.TryLockTx(ctx, tx, db.Schema, "bouncer")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("transaction lock not taken")
		}
		return nil
	}))

	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	w, err := worker.New(pool, reg, &worker.Config{
		Schema: db.Schema, Concurrency: 20, Burst: true,
		NoListen: true, PollInterval: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, w.Run(ctx))

	// Results through the pooler: the LISTEN-based wait falls back to
	// polling, so Get still returns.
	var echoed map[string]int
	require.NoError(t, client.AsyncResult(txJob).Get(ctx, &echoed))
	require.Equal(t, 1, echoed["order"])
	group := client.GroupResult(ids[:50]...)
	joined, err := group.Join(ctx)
	require.NoError(t, err)
	require.Len(t, joined, 50)

	var succeeded, total int
	require.NoError(t, pool.QueryRow(ctx, fmt.Sprintf(
		"SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FROM %s",
		pgx.Identifier{db.Schema, "jobs"}.Sanitize())).Scan(&succeeded, &total))
	require.Equal(t, len(ids), total, "a rolled-back enqueue left a job, or a job was lost")
	require.Equal(t, len(ids), succeeded)
}

// startPgbouncer runs pgbouncer in transaction-pooling mode in front of the
// server serverURL points at, and returns the URL to connect through it.
func startPgbouncer(t *testing.T, serverURL string) string {
	t.Helper()
	u, err := url.Parse(serverURL)
	require.NoError(t, err)
	// Not t.TempDir: its parent is private to the user running the tests,
	// and pgbouncer may run as another user (below).
	dir, err := os.MkdirTemp("", "pgq-pgbouncer-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	port := freePort(t)
	userName := u.User.Username()
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, u.Hostname(), u.Port(), port, filepath.Join(dir, "users.txt"), filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "users.txt"), []byte(strconv.Quote(userName)+` ""`+"\n"), 0o644))

	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		// pgbouncer refuses to run as root; the directory must be the
		// unprivileged user's to write its log and pid file.
		pg, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root, pgbouncer needs an unprivileged user")
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		require.NoError(t, os.Chmod(dir, 0o755))
		for _, f := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "users.txt")} {
			require.NoError(t, os.Chown(f, uid, gid))
		}
		args = append([]string{"-u", "postgres"}, args...)
	}
	cmd := exec.Command(pgbouncerBin, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Logf("pgbouncer output: %s\nlog:\n%s", out.String(), log)
		}
	})

	bu := *u
	bu.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Wait until it accepts connections (it starts in milliseconds).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", bu.Host, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not start listening on %s: %v\n%s", bu.Host, err, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return bu.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBehindPgbouncerWithSessionURL runs the pool through pgbouncer in
// transaction mode and the session connections (LISTEN for wake-ups,
// remote control and results) straight to PostgreSQL, as docs/pgbouncer.md
// describes. With a one-minute poll interval, a job enqueued after the
// worker started can only run within the test's deadline if the wake-up
// arrived over the direct session connection.
func TestBehindPgbouncerWithSessionURL(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(pgbouncerBin); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("pgbouncer is not installed (apt-get install pgbouncer): %v", err)
		}
		t.Fatalf("pgbouncer is not installed but CI is set: .ci/run should have installed it: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := pgtest.New(t)
	bouncerURL := startPgbouncer(t, db.URL)

	cfg, err := pgxpool.ParseConfig(bouncerURL)
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	direct, err := pgx.ParseConfig(db.URL)
	require.NoError(t, err)

	client, err := queue.NewClient(pool, &queue.Config{Schema: db.Schema, SessionConnConfig: direct})
	require.NoError(t, err)
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	w, err := worker.New(pool, reg, &worker.Config{
		Schema: db.Schema, Concurrency: 4, PollInterval: time.Minute, SessionConnConfig: direct,
	})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	// The worker answers a ping once its LISTEN connection is up: the ping
	// and its reply both travel over session connections.
	require.Eventually(t, func() bool {
		res, err := client.Ping(ctx, &queue.ControlOptions{Timeout: 200 * time.Millisecond})
		return err == nil && len(res.Replies) == 1
	}, 20*time.Second, 10*time.Millisecond, "worker never answered a ping over its session connection")

	started := time.Now()
	e, err := client.Enqueue(ctx, queue.Raw{Task: "pgq.echo", Args: json.RawMessage(`{"woken":true}`)}, nil)
	require.NoError(t, err)
	r := client.AsyncResult(e.ID)
	r.PollInterval = time.Minute // only a notification can end the wait in time
	var got map[string]bool
	waitCtx, waitCancel := context.WithTimeout(ctx, 20*time.Second)
	defer waitCancel()
	require.NoError(t, r.Get(waitCtx, &got))
	require.True(t, got["woken"])
	t.Logf("enqueue through pgbouncer to result, woken over the session connection: %v", time.Since(started).Round(time.Millisecond))
}
