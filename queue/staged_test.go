package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// stagedCount counts the rows of pgq.staged_jobs matching a SQL condition.
func (b *bundle) stagedCount(t *testing.T, where string, args ...any) int {
	t.Helper()
	return b.countIn(t, "pgq.staged_jobs", where, args...)
}

// A staged job commits with the caller's transaction into
// pgq.staged_jobs, not pgq.jobs; Client.Job finds it there with the
// options given, and Commit wakes the workers that move staged jobs.
func TestStagedEnqueueWaitsInStagedJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)

	tx, err := b.client.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	opts := &queue.Options{Queue: "mail", Priority: queue.Ptr(7), TimeLimit: 2 * time.Second,
		Countdown: time.Hour, Headers: map[string]any{"tenant": "acme"}, Staged: true}
	e, err := b.client.EnqueueTx(ctx, tx, sendEmail{To: "a@example.com"}, opts)
	require.NoError(t, err)
	require.True(t, e.Staged)
	require.Positive(t, e.ID)
	require.Equal(t, queue.StateScheduled, e.State)
	require.WithinDuration(t, time.Now().Add(time.Hour), e.RunAt, time.Minute)
	require.Zero(t, b.stagedCount(t, "id = $1", e.ID), "not visible before commit")
	require.NoError(t, tx.Commit(ctx))

	require.Equal(t, schema.StagedWake, l.next(), "Commit wakes the movers of staged jobs")
	require.Equal(t, 1, b.stagedCount(t, "id = $1", e.ID))
	require.Zero(t, b.count(t, "id = $1", e.ID), "a staged job is not in pgq.jobs until a worker moves it")

	j, err := b.client.Job(ctx, e.ID)
	require.NoError(t, err)
	require.True(t, j.Staged)
	require.Equal(t, "emails.send", j.Task)
	require.Equal(t, "mail", j.Queue)
	require.Equal(t, queue.StateScheduled, j.State)
	require.Equal(t, 7, j.Priority)
	require.Equal(t, 2*time.Second, j.TimeLimit)
	require.JSONEq(t, `{"tenant":"acme"}`, string(j.Headers))
	state, err := e.AsyncResult().State(ctx)
	require.NoError(t, err)
	require.Equal(t, "PENDING", state)
}

// A rolled-back staged enqueue leaves neither a row nor a wake-up, and a
// staged enqueue in the caller's own pgx.Tx notifies inside it.
func TestStagedEnqueueIsTransactional(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)
	staged := &queue.Options{Staged: true}

	var rolledBack int64
	err := pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		e, err := b.client.EnqueueTx(ctx, tx, sendEmail{}, staged)
		rolledBack = e.ID
		require.NoError(t, err)
		return errors.New("roll back")
	})
	require.EqualError(t, err, "roll back")
	require.Zero(t, b.stagedCount(t, "id = $1", rolledBack))

	var job *queue.BatchedJob
	require.NoError(t, pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		job, err = b.client.EnqueueBatched(ctx, tx, batch, sendEmail{}, staged)
		require.NoError(t, err)
		return tx.SendBatch(ctx, batch).Close()
	}))
	e, err := job.Result()
	require.NoError(t, err)
	require.True(t, e.Staged)
	require.Equal(t, queue.StateAvailable, e.State)
	require.Equal(t, []string{schema.StagedWake}, l.drain(b), "only the committed enqueue woke anyone")
	require.Equal(t, 1, b.stagedCount(t, "true"))
}

// A unique key is checked against pgq.jobs by the insert itself, so it
// cannot be staged: the enqueue says so and writes nothing.
func TestStagedRefusesUniqueKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	_, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Staged: true, UniqueKey: "once"})
	var verr *queue.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "Staged", verr.Field)
	require.ErrorContains(t, err, "unique key cannot be staged")
	require.Zero(t, b.stagedCount(t, "true"))
	require.Zero(t, b.count(t, "true"))
}
