package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

// TestLeastPrivilegeRoles runs a producer and a worker, each connected as a
// role given only its own access, and proves what each may and may not do:
// the producer enqueues (one, many, unique) and reads results but cannot
// update or delete a job; the worker runs every job; neither can hand out
// access.
func TestLeastPrivilegeRoles(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := pgtest.New(t)
	owner, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)

	producerPool := roleWithAccess(ctx, t, db, owner, queue.AccessProducer)
	workerPool := roleWithAccess(ctx, t, db, owner, queue.AccessWorker)

	producer, err := queue.NewClient(producerPool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	one, err := producer.Enqueue(ctx, queue.Raw{Task: "pgq.echo", Args: json.RawMessage(`{"n":1}`)}, nil)
	require.NoError(t, err)
	var reqs []queue.Request
	for i := range 20 {
		reqs = append(reqs, queue.Request{Args: queue.Raw{Task: "pgq.echo", Args: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+2))}})
	}
	many, err := producer.EnqueueMany(ctx, reqs)
	require.NoError(t, err)
	require.Len(t, many, 20)
	uniq, err := producer.Enqueue(ctx, queue.Raw{Task: "pgq.noop"}, &queue.Options{UniqueKey: "nightly"})
	require.NoError(t, err)
	dup, err := producer.Enqueue(ctx, queue.Raw{Task: "pgq.noop"}, &queue.Options{UniqueKey: "nightly"})
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	require.Equal(t, uniq.ID, dup.ID)
	// A staged job goes to pgq.staged_jobs, which a producer may insert
	// into (and read: Client.Job looks there), and a worker moves.
	staged, err := producer.Enqueue(ctx, queue.Raw{Task: "pgq.echo", Args: json.RawMessage(`{"n":2}`)}, &queue.Options{Staged: true})
	require.NoError(t, err, "a producer stages a job")
	require.True(t, staged.Staged)
	stagedJob, err := producer.Job(ctx, staged.ID)
	require.NoError(t, err, "a producer reads a staged job")
	require.True(t, stagedJob.Staged)
	// pgq.enqueue from SQL works under the producer role too.
	var sqlID int64
	require.NoError(t, producerPool.QueryRow(ctx,
		fmt.Sprintf(`SELECT %s.enqueue('pgq.noop')`, pgx.Identifier{db.Schema}.Sanitize())).Scan(&sqlID))

	// A workflow is inserted with its jobs: a producer may enqueue one.
	chain, err := workflow.Apply(ctx, producer, workflow.Chain(
		workflow.Task(queue.Raw{Task: "pgq.echo", Args: json.RawMessage(`{"step":1}`)}, nil),
		workflow.Task(queue.Raw{Task: "pgq.noop"}, nil)))
	require.NoError(t, err, "a producer applies a workflow")

	// What a producer must not do, each refused by the database itself.
	jobs := pgx.Identifier{db.Schema, "jobs"}.Sanitize()
	for _, stmt := range []string{
		"UPDATE " + jobs + " SET state = 'cancelled' WHERE id = $1",
		"UPDATE " + jobs + " SET args = '{}' WHERE id = $1",
		"DELETE FROM " + jobs + " WHERE id = $1",
		"DELETE FROM " + pgx.Identifier{db.Schema, "staged_jobs"}.Sanitize() + " WHERE id = $1",
	} {
		_, err := producerPool.Exec(ctx, stmt, one.ID)
		requirePermissionDenied(t, err, stmt)
	}
	_, err = producerPool.Exec(ctx, "TRUNCATE "+jobs)
	requirePermissionDenied(t, err, "TRUNCATE")
	_, err = producer.Revoke(ctx, one.ID, false)
	requirePermissionDenied(t, err, "Revoke")
	err = producer.Delete(ctx, one.ID)
	requirePermissionDenied(t, err, "Delete")
	err = producer.GrantAccess(ctx, "postgres", queue.AccessAdmin)
	require.Error(t, err, "a producer handed out access")
	_, err = producer.ListAccess(ctx)
	requirePermissionDenied(t, err, "ListAccess")

	// The worker, under its own role, runs every job: claims, completions,
	// heartbeats and the maintenance round all need only worker access.
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	w, err := worker.New(workerPool, reg, &worker.Config{Schema: db.Schema, Burst: true, Concurrency: 4})
	require.NoError(t, err)
	require.NoError(t, w.Run(ctx))

	// The worker's completions advanced the workflow (the trigger runs
	// with the worker's rights) and the producer reads its outcome.
	_, err = chain.Wait(ctx)
	require.NoError(t, err)
	state, err := chain.State(ctx)
	require.NoError(t, err)
	require.Equal(t, queue.StateSucceeded, state)

	var got map[string]int
	require.NoError(t, producer.AsyncResult(one.ID).Get(ctx, &got))
	require.Equal(t, 1, got["n"])
	require.NoError(t, producer.AsyncResult(staged.ID).Get(ctx, &got), "the worker moved and ran the staged job")
	require.Equal(t, 2, got["n"])
	for _, e := range many {
		require.NoError(t, producer.AsyncResult(e.ID).Get(ctx, nil))
	}
	var left int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+jobs+" WHERE state <> 'succeeded'").Scan(&left))
	require.Zero(t, left, "jobs not succeeded under the worker role")

	// A worker may not grant either, and may not see who has access.
	workerClient, err := queue.NewClient(workerPool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	require.Error(t, workerClient.GrantAccess(ctx, "postgres", queue.AccessAdmin))
	_, err = workerPool.Exec(ctx, "DROP TABLE "+jobs)
	require.Error(t, err, "a worker dropped the jobs table")
}

// TestGrantAccessErrors checks the errors an operator meets.
func TestGrantAccessErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := pgtest.New(t)
	owner, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)

	err = owner.GrantAccess(ctx, "pgq_no_such_role_"+randomSuffix(t), queue.AccessWorker)
	require.ErrorIs(t, err, queue.ErrNoSuchRole)
	require.Contains(t, err.Error(), "CREATE ROLE")
	require.ErrorIs(t, owner.GrantAccess(ctx, "postgres", "superuser"), queue.ErrInvalid)
	require.ErrorIs(t, owner.GrantAccess(ctx, "", queue.AccessWorker), queue.ErrInvalid)

	// Moving a role from worker to producer takes the extra rights away.
	pool := roleWithAccess(ctx, t, db, owner, queue.AccessWorker)
	e, err := owner.Enqueue(ctx, queue.Raw{Task: "pgq.noop"}, nil)
	require.NoError(t, err)
	jobs := pgx.Identifier{db.Schema, "jobs"}.Sanitize()
	_, err = pool.Exec(ctx, "UPDATE "+jobs+" SET priority = 1 WHERE id = $1", e.ID)
	require.NoError(t, err)
	role := pool.Config().ConnConfig.User
	require.NoError(t, owner.GrantAccess(ctx, role, queue.AccessProducer))
	_, err = pool.Exec(ctx, "UPDATE "+jobs+" SET priority = 2 WHERE id = $1", e.ID)
	requirePermissionDenied(t, err, "UPDATE after the move to producer")

	grants, err := owner.ListAccess(ctx)
	require.NoError(t, err)
	require.Len(t, grants, 1)
	require.Equal(t, queue.AccessProducer, grants[0].Access)
	require.True(t, grants[0].RoleExists)

	// Revoked: not even a read.
	ok, err := owner.RevokeAccess(ctx, role)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = pool.Exec(ctx, "SELECT 1 FROM "+jobs+" LIMIT 1")
	requirePermissionDenied(t, err, "SELECT after revoke")
	grants, err = owner.ListAccess(ctx)
	require.NoError(t, err)
	require.Empty(t, grants)
}

// roleWithAccess creates a login role for this test, grants it access to
// the test's schema and returns a pool connected as that role. The role is
// dropped when the test ends.
func roleWithAccess(ctx context.Context, t *testing.T, db *pgtest.DB, owner *queue.Client, access queue.Access) *pgxpool.Pool {
	t.Helper()
	role := fmt.Sprintf("%s_%s", db.Schema, access)
	password := randomSuffix(t)
	_, err := db.Pool.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgx.Identifier{role}.Sanitize(), password))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			t.Fatalf("the test database user cannot create roles (CREATEROLE is needed for this test): %v", err)
		}
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = db.Pool.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
		_, _ = db.Pool.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
	})
	require.NoError(t, owner.GrantAccess(ctx, role, access))

	cfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.ConnConfig.User = role
	cfg.ConnConfig.Password = password
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func requirePermissionDenied(t *testing.T, err error, what string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "%s: want permission denied, got %v", what, err)
	require.Equal(t, "42501", pgErr.Code, "%s: %v", what, err)
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
