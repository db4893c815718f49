package pgserver

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func query(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n))
	return n
}

func TestLocalClusterLifecycle(t *testing.T) {
	if _, err := BinDir(); err != nil {
		t.Fatalf("the test suite needs PostgreSQL's binaries: %v", err)
	}
	ctx := context.Background()
	s, err := Start(ctx, &Options{NoDocker: true})
	require.NoError(t, err)
	require.Equal(t, "local", s.Kind)
	dir := s.local.dir

	conn, err := pgx.Connect(ctx, s.URL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2)")
	require.NoError(t, err)
	conn.Close(ctx)

	// Data survives a fast and an immediate (crash-like) restart.
	require.NoError(t, s.Restart(ctx, false))
	require.Equal(t, 2, query(t, s.URL))
	require.NoError(t, s.Restart(ctx, true))
	require.Equal(t, 2, query(t, s.URL))

	require.NoError(t, s.Stop(ctx))
	require.NoError(t, s.Stop(ctx), "a second Stop is harmless")
	_, err = os.Stat(dir)
	require.True(t, os.IsNotExist(err), "Stop removes the cluster's directory")
	_, err = pgx.Connect(ctx, s.URL)
	require.Error(t, err, "the server is gone")
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv("PGQ_PG_BIN", t.TempDir())
	_, err := Start(context.Background(), &Options{NoDocker: true})
	require.ErrorContains(t, err, "has no initdb")
}
