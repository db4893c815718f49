package queue_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// EnqueueBatched rides in the caller's batch: the business INSERT and the
// enqueue are one round trip, and the job commits with the order.
func TestEnqueueBatchedTravelsWithTheCallersStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, "CREATE TABLE IF NOT EXISTS pgq.batched_orders (id int primary key)"))
	require.NoError(t, err)
	client := b.client
	l := listen(t, b)

	tx, err := client.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	batch := &pgx.Batch{}
	batch.Queue(schema.Rewrite(b.db.Schema, "INSERT INTO pgq.batched_orders VALUES (1)"))
	job, err := client.EnqueueBatched(ctx, tx, batch, sendEmail{To: "a@example.com"}, &queue.Options{Queue: "mail"})
	require.NoError(t, err)
	_, err = job.Result()
	require.ErrorIs(t, err, queue.ErrBatchNotSent)
	require.Equal(t, 2, batch.Len())

	require.NoError(t, tx.SendBatch(ctx, batch).Close())

	e, err := job.Result()
	require.NoError(t, err)
	require.Positive(t, e.ID)
	require.Equal(t, "emails.send", e.Task)
	require.Equal(t, "mail", e.Queue)
	require.Equal(t, queue.StateAvailable, e.State)
	require.False(t, e.RunAt.IsZero())
	require.Zero(t, b.count(t, "id = $1", e.ID), "not visible before commit")
	require.Empty(t, l.drain(b), "no NOTIFY inside a Client.Begin transaction")

	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, client.Flush(ctx)) // Commit does not wait for the wake-up
	require.Equal(t, []string{"mail"}, l.drain(b), "Commit wakes the queue once")
	got, err := client.Job(ctx, e.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"to":"a@example.com","subject":""}`, string(got.Args))
	var orders int
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, "SELECT count(*) FROM pgq.batched_orders")).Scan(&orders))
	require.Equal(t, 1, orders)
}

// In a transaction pgq did not begin the statement notifies itself, at
// commit; a rollback leaves neither job nor wake-up.
func TestEnqueueBatchedInAnyTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)

	for _, commit := range []bool{false, true} {
		tx, err := b.db.Pool.Begin(ctx)
		require.NoError(t, err)
		batch := &pgx.Batch{}
		job, err := b.client.EnqueueBatched(ctx, tx, batch, queue.Raw{Task: "orders.confirm", Args: json.RawMessage(`{"order":1}`)}, nil)
		require.NoError(t, err)
		require.NoError(t, tx.SendBatch(ctx, batch).Close())
		e, err := job.Result()
		require.NoError(t, err)
		if !commit {
			require.NoError(t, tx.Rollback(ctx))
			require.Zero(t, b.count(t, "true"))
			require.Empty(t, l.drain(b), "a rolled-back enqueue wakes nobody")
			continue
		}
		require.NoError(t, tx.Commit(ctx))
		require.Equal(t, 1, b.count(t, "id = $1 AND task = 'orders.confirm'", e.ID))
		require.Equal(t, []string{queue.QueueDefault}, l.drain(b))
	}
}

// Invalid input is refused before anything is queued, so the caller's
// batch stays as it was.
func TestEnqueueBatchedRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	tx, err := b.client.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()

	batch := &pgx.Batch{}
	_, err = b.client.EnqueueBatched(ctx, tx, batch, queue.Raw{Task: "bad task name"}, nil)
	require.ErrorIs(t, err, queue.ErrInvalid)
	_, err = b.client.EnqueueBatched(ctx, tx, batch, sendEmail{}, &queue.Options{Priority: queue.Ptr(42)})
	require.ErrorIs(t, err, queue.ErrInvalid)
	_, err = b.client.EnqueueBatched(ctx, tx, nil, sendEmail{}, nil)
	require.ErrorIs(t, err, queue.ErrInvalid)
	require.Zero(t, batch.Len())
}

// A unique key works as with EnqueueTx: the second enqueue reports the
// holder and writes nothing.
func TestEnqueueBatchedUniqueKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	opts := &queue.Options{UniqueKey: "order-7"}

	var first, second *queue.BatchedJob
	err := b.client.BeginFunc(ctx, func(tx *queue.Tx) error {
		batch := &pgx.Batch{}
		var err error
		if first, err = b.client.EnqueueBatched(ctx, tx, batch, sendEmail{To: "x"}, opts); err != nil {
			return err
		}
		if second, err = b.client.EnqueueBatched(ctx, tx, batch, sendEmail{To: "y"}, opts); err != nil {
			return err
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	require.NoError(t, err)
	e1, err := first.Result()
	require.NoError(t, err)
	e2, err := second.Result()
	require.NoError(t, err)
	require.False(t, e1.Duplicate)
	require.True(t, e2.Duplicate)
	require.Equal(t, e1.ID, e2.ID)
	require.Equal(t, 1, b.count(t, "unique_key = 'order-7'"))
}

// When a statement queued before the enqueue fails, the enqueue's answer
// is never read, and Result says so instead of inventing one.
func TestEnqueueBatchedAfterAFailedStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	tx, err := b.client.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()

	batch := &pgx.Batch{}
	batch.Queue("SELECT 1/0")
	job, err := b.client.EnqueueBatched(ctx, tx, batch, sendEmail{}, nil)
	require.NoError(t, err)
	require.Error(t, tx.SendBatch(ctx, batch).Close())
	_, err = job.Result()
	require.ErrorIs(t, err, queue.ErrBatchNotSent)
}
