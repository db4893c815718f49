package migrations_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/migrations"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	v, dirty, err := migrations.Version(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.False(t, dirty)
	require.Equal(t, migrations.Latest(), v)
	require.GreaterOrEqual(t, v, uint(1))

	// Up again is a no-op.
	require.NoError(t, migrations.Up(ctx, db.Pool, db.Schema))

	require.NoError(t, migrations.Down(ctx, db.Pool, db.Schema, 0))
	var exists bool
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", db.Schema+".jobs").Scan(&exists))
	require.False(t, exists, "down must drop the jobs table")
	v, _, err = migrations.Version(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.Zero(t, v)

	require.NoError(t, migrations.Up(ctx, db.Pool, db.Schema))
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", db.Schema+".jobs").Scan(&exists))
	require.True(t, exists)
}

func TestSchemaIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := pgtest.New(t), pgtest.New(t)
	require.NotEqual(t, a.Schema, b.Schema)

	_, err := a.Pool.Exec(ctx, "SELECT "+a.Schema+".enqueue('x.y')")
	require.NoError(t, err)
	var n int
	require.NoError(t, b.Pool.QueryRow(ctx, "SELECT count(*) FROM "+b.Schema+".jobs").Scan(&n))
	require.Zero(t, n)
	require.NoError(t, a.Pool.QueryRow(ctx, "SELECT count(*) FROM "+a.Schema+".jobs").Scan(&n))
	require.Equal(t, 1, n)

	// No object of either copy leaked into the default schema name.
	var leaked bool
	require.NoError(t, a.Pool.QueryRow(ctx, "SELECT to_regclass('pgq.jobs') IS NOT NULL").Scan(&leaked))
	require.False(t, leaked)
}

func TestInvalidSchemaName(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	err := migrations.Up(context.Background(), db.Pool, "x; DROP TABLE y")
	require.ErrorContains(t, err, "invalid schema name")
}
