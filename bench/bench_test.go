package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgserver"
	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/queuebench"
)

// testServer is the harness's server for the tests: PGQ_TEST_DATABASE_URL
// when set, else a private cluster without fsync (the tests check
// correctness, not speed).
func testServer(t *testing.T) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	url := os.Getenv(pgtest.EnvURL)
	if url == "" {
		srv, err := pgserver.Start(ctx, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = srv.Stop(context.Background()) })
		url = srv.URL
	}
	s, err := startServer(ctx, url, io.Discard)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// TestDrainEverySystem drains a few hundred jobs on each system in a
// database of its own and checks that every job completed and that the
// database is dropped afterwards. Graphile Worker and pg-boss take part
// when Node.js and the drivers' packages are installed (cd bench/node &&
// npm ci).
func TestDrainEverySystem(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the queues against PostgreSQL")
	}
	s := testServer(t)
	entrants := []queuebench.Entrant{s.pgqEntrant(), s.riverEntrant()}
	node := prepareNodeForTest(t)
	if node != nil {
		entrants = append(entrants, s.nodeEntrant(node, "graphile"), s.nodeEntrant(node, "pgboss"))
	}
	const n = 500
	for _, e := range entrants {
		t.Run(e.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			before := countDatabases(t, s)
			sys, cleanup, err := e.Open(ctx)
			require.NoError(t, err)
			require.Equal(t, before+1, countDatabases(t, s), "a fresh database per run")
			var seen int
			res, err := sys.Drain(ctx, n, func(done int) { seen = max(seen, done) })
			require.NoError(t, err)
			require.Equal(t, n, res.Jobs)
			require.Equal(t, n, seen, "progress reached every job")
			require.Positive(t, res.Insert)
			require.Positive(t, res.Drain)
			// Drain itself refuses to report before every completion is
			// stored; a second look from here:
			require.Zero(t, unfinished(t, s, e.Name))
			require.NoError(t, sys.Close(ctx))
			require.NoError(t, cleanup(ctx))
			require.Equal(t, before, countDatabases(t, s), "the run's database is dropped")
		})
	}
}

func prepareNodeForTest(t *testing.T) *nodeSetup {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Log("Node.js not installed: Graphile Worker and pg-boss left out")
		return nil
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", ".package-lock.json")); err != nil {
		t.Log("bench/node/node_modules missing (run npm ci there): Graphile Worker and pg-boss left out")
		return nil
	}
	n := prepareNode(t.Context(), "node", io.Discard)
	require.NoError(t, n.err)
	return n
}

func countDatabases(t *testing.T, s *server) int {
	t.Helper()
	var n int
	require.NoError(t, s.admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname LIKE 'bench\\_%'").Scan(&n))
	return n
}

// unfinished counts the jobs of the newest benchmark database that have not
// completed, in the system's own tables.
func unfinished(t *testing.T, s *server, system string) int {
	t.Helper()
	var name string
	require.NoError(t, s.admin.QueryRow(t.Context(), "SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%' ORDER BY oid DESC LIMIT 1").Scan(&name))
	pool, err := s.pool(t.Context(), withDatabase(s.url, name))
	require.NoError(t, err)
	defer pool.Close()
	query := map[string]string{
		"pgq":             "SELECT count(*) FROM pgq.jobs WHERE state <> 'succeeded'",
		"River":           "SELECT count(*) FROM river_job WHERE state <> 'completed'",
		"Graphile Worker": "SELECT count(*) FROM graphile_worker._private_jobs",
		"pg-boss":         "SELECT count(*) FROM pgboss.job WHERE name = 'noop' AND state <> 'completed'",
	}[system]
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), query).Scan(&n))
	return n
}

func TestReplaceTable(t *testing.T) {
	t.Parallel()
	doc := "# Performance\n\nintro\n"
	// No section yet: one is appended.
	out, err := replaceTable(doc, "table one\n")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, doc))
	require.Contains(t, out, markerBegin+"\n## Side by side")
	require.Contains(t, out, markerTableBegin+"\ntable one\n"+markerTableEnd)
	require.True(t, strings.HasSuffix(out, markerEnd+"\n"))

	// Prose written around the table survives a new run.
	edited := strings.Replace(out, markerTableBegin, "How to read it.\n\n"+markerTableBegin, 1)
	edited = strings.Replace(edited, markerTableEnd+"\n", markerTableEnd+"\n\nWhere pgq loses.\n", 1)
	edited += "\n## Next section\n"
	again, err := replaceTable(edited, "table two\n")
	require.NoError(t, err)
	require.NotContains(t, again, "table one")
	require.Contains(t, again, "How to read it.\n\n"+markerTableBegin+"\ntable two\n"+markerTableEnd+"\n\nWhere pgq loses.\n")
	require.True(t, strings.HasSuffix(again, "## Next section\n"))
	require.Equal(t, 1, strings.Count(again, markerBegin))

	// A section without table markers gets the table at its end.
	bare := doc + markerBegin + "\n## Side by side\n\nprose\n" + markerEnd + "\n"
	out, err = replaceTable(bare, "t\n")
	require.NoError(t, err)
	require.Contains(t, out, "prose\n\n"+markerTableBegin+"\nt\n"+markerTableEnd+"\n"+markerEnd)

	// Broken markers are refused rather than guessed at.
	_, err = replaceTable(doc+markerBegin+"\nno end\n", "t")
	require.Error(t, err)
	_, err = replaceTable(doc+markerBegin+"\n"+markerTableEnd+"\n"+markerTableBegin+"\n"+markerEnd, "t")
	require.Error(t, err)
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://u:p@127.0.0.1:5432/bench_x?sslmode=disable",
		withDatabase("postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "bench_x"))
	require.Equal(t, "host=/tmp user=u dbname=bench_x", withDatabase("host=/tmp user=u", "bench_x"))
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 200_000, o.plan.DrainJobs)
	require.Equal(t, 3, o.plan.Rounds)
	require.Equal(t, []float64{1000, 2000, 4000, 8000, 16000}, o.plan.RampRates)
	require.Equal(t, 15*time.Minute, o.timeout)

	o, err = parseFlags([]string{"-quick"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, QuickPlan(), o.plan)

	_, err = parseFlags([]string{"-ramp", "1000,x"}, io.Discard)
	require.ErrorContains(t, err, `"x" is not a positive rate`)
	_, err = parseFlags([]string{"stray"}, io.Discard)
	require.Error(t, err)
}
