package queue_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
)

// A transaction from Client.Begin carries no NOTIFY of its own: its
// Commit has the wake-up sent afterwards, once per queue, and Flush waits
// for it (wake_internal_test.go shows that Commit itself does not).
func TestBeginSendsTheWakeUpAfterCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)

	// Committed underneath Tx.Commit: nothing was sent inside.
	tx, err := b.client.Begin(ctx)
	require.NoError(t, err)
	_, err = b.client.EnqueueTx(ctx, tx, sendEmail{}, &queue.Options{Queue: "mail"})
	require.NoError(t, err)
	require.NoError(t, tx.Tx.Commit(ctx))
	require.ErrorIs(t, tx.Rollback(ctx), pgx.ErrTxClosed) // returns the connection
	require.Empty(t, l.drain(b), "the enqueue statement must not notify inside a Client.Begin transaction")
	require.Equal(t, 1, b.count(t, "queue = 'mail'"))

	// Tx.Commit: one wake-up per queue, however many jobs.
	tx, err = b.client.Begin(ctx)
	require.NoError(t, err)
	for range 3 {
		_, err = b.client.EnqueueTx(ctx, tx, sendEmail{}, &queue.Options{Queue: "mail"})
		require.NoError(t, err)
	}
	_, err = b.client.EnqueueManyTx(ctx, tx, []queue.Request{
		{Args: report{}}, {Args: sendEmail{}, Options: &queue.Options{Queue: "mail"}},
	})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, b.client.Flush(ctx))
	require.ElementsMatch(t, []string{"mail", "reports"}, l.drain(b))
	require.Equal(t, 5, b.count(t, "queue = 'mail'"))

	// A rollback wakes nobody.
	tx, err = b.client.Begin(ctx)
	require.NoError(t, err)
	_, err = b.client.EnqueueTx(ctx, tx, sendEmail{}, &queue.Options{Queue: "mail"})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, b.client.Flush(ctx))
	require.Empty(t, l.drain(b))
	require.Equal(t, 5, b.count(t, "queue = 'mail'"))
}

// Enqueue returns after its wake-up was sent, and a duplicate unique key,
// which writes nothing, wakes nobody.
func TestEnqueueWakesOnceItCommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)

	_, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "mail", UniqueKey: "once"})
	require.NoError(t, err)
	require.Equal(t, []string{"mail"}, l.drain(b))

	dup, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "mail", UniqueKey: "once"})
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	require.Empty(t, l.drain(b), "a duplicate wrote no job")

	_, err = b.client.EnqueueMany(ctx, []queue.Request{{Args: report{}}, {Args: report{}}})
	require.NoError(t, err)
	require.Equal(t, []string{"reports"}, l.drain(b))
}

// BeginFunc commits when fn returns nil and rolls back otherwise.
func TestBeginFunc(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	boom := context.Canceled
	err := b.client.BeginFunc(ctx, func(tx *queue.Tx) error {
		_, err := b.client.EnqueueTx(ctx, tx, sendEmail{}, nil)
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Zero(t, b.count(t, "true"))
	require.NoError(t, b.client.BeginFunc(ctx, func(tx *queue.Tx) error {
		_, err := b.client.EnqueueTx(ctx, tx, sendEmail{}, nil)
		return err
	}))
	require.Equal(t, 1, b.count(t, "true"))
}

// Commit, Rollback and BeginFunc return the transaction's connection to
// the pool, also after a failed Commit.
func TestClientTxReturnsItsConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cfg, err := pgxpool.ParseConfig(b.db.URL)
	require.NoError(t, err)
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	client, err := queue.NewClient(pool, &queue.Config{Schema: b.db.Schema})
	require.NoError(t, err)

	for range 5 {
		tx, err := client.Begin(ctx)
		require.NoError(t, err)
		_, err = client.EnqueueTx(ctx, tx, sendEmail{}, nil)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
		require.ErrorIs(t, tx.Rollback(ctx), pgx.ErrTxClosed)

		tx, err = client.Begin(ctx)
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))

		// A statement error aborts the transaction; Commit then fails.
		tx, err = client.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "SELECT 1/0")
		require.Error(t, err)
		require.Error(t, tx.Commit(ctx))

		require.Error(t, client.BeginFunc(ctx, func(tx *queue.Tx) error { return errors.New("no") }))
		_, err = client.Enqueue(ctx, sendEmail{}, nil)
		require.NoError(t, err)
	}
	// The last Commit's wake-up may still hold a connection.
	require.NoError(t, client.Flush(ctx))
	require.Zero(t, pool.Stat().AcquiredConns(), "a connection was not returned to the pool")
	require.Equal(t, 10, b.count(t, "true"))
}
