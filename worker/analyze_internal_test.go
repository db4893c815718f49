package worker

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
)

// The maintenance leader analyzes pgq.jobs once it has changed more than
// it held at the last ANALYZE, and not again until it has changed that
// much once more.
func TestStaleJobStatisticsAreRefreshed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := pgtest.New(t)
	w, err := New(d.Pool, NewRegistry(), &Config{Schema: d.Schema, Logger: discardLogger()})
	require.NoError(t, err)
	m := w.maintainer

	// Rows written by one connection, whose statistics it reports at once.
	fill := func(n int) {
		conn, err := d.Pool.Acquire(ctx)
		require.NoError(t, err)
		defer conn.Release()
		_, err = conn.Exec(ctx, schema.Rewrite(d.Schema,
			"INSERT INTO pgq.jobs (task) SELECT 'stats.fill' FROM generate_series(1, $1::int)"), n)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "SELECT pg_stat_force_next_flush()")
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "SELECT 1") // the flush happens at the end of a transaction
		require.NoError(t, err)
	}
	reltuples := func() float64 {
		var r float64
		require.NoError(t, d.Pool.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = $1::regclass",
			d.Schema+".jobs").Scan(&r))
		return r
	}

	fill(2500)
	require.NoError(t, m.analyzeIfStale(ctx))
	require.EqualValues(t, 1, m.analyzed.Load(), "2,500 new rows in a table last seen empty")
	require.InDelta(t, 2500, reltuples(), 1)

	fill(1000) // less than the 2,500 the statistics know of
	require.NoError(t, m.analyzeIfStale(ctx))
	require.EqualValues(t, 1, m.analyzed.Load(), "the statistics are still about right")

	fill(2000) // 3,000 changes since: more than the table held
	// A role that may not ANALYZE the table leaves it to autovacuum
	// (the server would refuse with a warning at every round).
	role := d.Schema + "_reader"
	_, err = d.Pool.Exec(ctx, "CREATE ROLE "+role)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = d.Pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	tx, err := d.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }() // before Cleanup's DROP ROLE, even on failure
	_, err = tx.Exec(ctx, "GRANT USAGE ON SCHEMA "+d.Schema+" TO "+role+"; SET LOCAL ROLE "+role)
	require.NoError(t, err)
	stale, err := db.New(schema.Wrap(d.Schema, tx)).JobsStatsStale(ctx)
	require.NoError(t, err)
	require.False(t, stale, "not the table's owner")
	require.NoError(t, tx.Rollback(ctx))

	require.NoError(t, m.analyzeIfStale(ctx))
	require.EqualValues(t, 2, m.analyzed.Load())
	require.InDelta(t, 5500, reltuples(), 1)
}
