package cli_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/migrations"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	name := freshSchema(t, db)
	pgq := func(args ...string) result {
		return execute(t, nil, append([]string{"--database-url", db.URL, "--schema", name}, args...)...)
	}
	version := func() map[string]any {
		t.Helper()
		r := pgq("migrate", "version", "--json")
		require.NoError(t, r.err)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.out), &v), r.out)
		return v
	}
	installed := func() bool {
		t.Helper()
		var ok bool
		require.NoError(t, db.Pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name+".jobs").Scan(&ok))
		return ok
	}
	latest := float64(migrations.Latest())

	r := pgq("migrate", "version")
	require.NoError(t, r.err)
	require.Contains(t, r.out, "version: 0\n")
	require.Contains(t, r.out, "dirty:   false\n")
	require.Contains(t, r.out, "run `pgq migrate up`")
	require.Equal(t, map[string]any{"schema": name, "version": 0.0, "latest": latest, "dirty": false}, version())

	r = pgq("migrate", "up")
	require.NoError(t, r.err)
	require.Contains(t, r.out, "migrated from version 0 to")
	require.True(t, installed())
	require.Equal(t, map[string]any{"schema": name, "version": latest, "latest": latest, "dirty": false}, version())

	r = pgq("migrate", "up")
	require.NoError(t, r.err)
	require.Contains(t, r.out, "up to date")

	// down refuses without --yes and leaves the tables alone.
	r = pgq("migrate", "down")
	require.Error(t, r.err)
	require.True(t, installed())

	r = pgq("migrate", "down", "--yes")
	require.NoError(t, r.err, r.out)
	require.Contains(t, r.out, "rolled back from version")
	require.False(t, installed())
	require.Equal(t, 0.0, version()["version"])
}
