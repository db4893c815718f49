package queue_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
)

// The SQL function pgq.enqueue is the way in for psql, Django and other
// languages; these tests hold it to the Go client's behaviour.

func TestSQLEnqueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)

	var id int64
	err := b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, `
		SELECT pgq.enqueue('emails.send', '{"to":"a@example.com"}',
		                   queue => 'mail', priority => 3, countdown => '10 seconds',
		                   max_retries => 5, retry_delay => '30 seconds', time_limit => '1 minute',
		                   unique_key => 'welcome:1', meta => '{"source":"psql"}')`)).Scan(&id)
	require.NoError(t, err)
	require.Equal(t, "mail", l.next())

	got, err := b.client.Job(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "emails.send", got.Task)
	require.Equal(t, "mail", got.Queue)
	require.Equal(t, 3, got.Priority)
	require.Equal(t, 5, got.MaxRetries)
	require.Equal(t, "scheduled", got.State)
	require.Equal(t, 30_000, int(got.RetryDelay.Milliseconds()))
	require.Equal(t, 60_000, int(got.TimeLimit.Milliseconds()))
	require.InDelta(t, 10.0, got.RunAt.Sub(got.CreatedAt).Seconds(), 0.5)
	require.JSONEq(t, `{"source":"psql"}`, string(got.Headers))

	// Same unique key: the existing id comes back, no second row.
	var again int64
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema,
		`SELECT pgq.enqueue('emails.send', unique_key => 'welcome:1')`)).Scan(&again))
	require.Equal(t, id, again)
	require.Equal(t, 1, b.count(t, "true"))

	// Defaults: queue default, available now, Celery's three retries.
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, `SELECT pgq.enqueue('a.b')`)).Scan(&id))
	got, err = b.client.Job(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "default", got.Queue)
	require.Equal(t, "available", got.State)
	require.Equal(t, 3, got.MaxRetries)
	require.JSONEq(t, `{}`, string(got.Args))
}

func TestSQLEnqueueRollbackSendsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)
	err := pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, schema.Rewrite(b.db.Schema, `SELECT pgq.enqueue('a.b', queue => 'gone')`)); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	require.Error(t, err)
	require.Zero(t, b.count(t, "true"))
	require.Empty(t, l.drain(b))
}

func TestSQLEnqueueValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cases := []struct{ call, want string }{
		{`pgq.enqueue('')`, "task name is empty"},
		{`pgq.enqueue('send email')`, "invalid task name"},
		{`pgq.enqueue($$x'); DROP TABLE pgq.jobs; --$$)`, "invalid task name"},
		{`pgq.enqueue('a.b', queue => '')`, "queue name is empty"},
		{`pgq.enqueue('a.b', queue => 'a b')`, "invalid queue name"},
		{`pgq.enqueue('a.b', priority => 10)`, "priority 10 is out of range"},
		{`pgq.enqueue('a.b', max_retries => -1)`, "max_retries cannot be negative"},
		{`pgq.enqueue('a.b', countdown => '-1 second')`, "countdown cannot be negative"},
		{`pgq.enqueue('a.b', countdown => '1 second', run_at => now())`, "not both"},
		{`pgq.enqueue('a.b', time_limit => '0')`, "must be positive"},
		{`pgq.enqueue('a.b', unique_key => '')`, "unique_key must be 1 to 255 characters"},
		{`pgq.enqueue('a.b', args => NULL)`, "args cannot be NULL"},
		{`pgq.enqueue('a.b', meta => '[1]')`, "meta must be a JSON object"},
		{`pgq.enqueue('a.b', args => to_jsonb(repeat('x', 2000000)))`, "larger than the limit"},
	}
	for _, tc := range cases {
		_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, "SELECT "+tc.call))
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, tc.call)
		require.Equal(t, "22023", pgErr.Code, tc.call)
		require.Contains(t, pgErr.Message, tc.want, tc.call)
	}
	require.Zero(t, b.count(t, "true"))

	// The payload limit is a setting named after the schema.
	err := pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config($1, '100', true)", b.db.Schema+".max_payload_bytes"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema.Rewrite(b.db.Schema, `SELECT pgq.enqueue('a.b', args => to_jsonb(repeat('x', 200)))`))
		return err
	})
	require.ErrorContains(t, err, "larger than the limit of 100 bytes")
	require.Zero(t, b.count(t, "true"))
}
