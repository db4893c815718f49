package dashboard_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/dashboard"
	"github.com/pgq/pgq/internal/pgtest"
)

var benchRows = flag.Int("dashboard-rows", 1_000_000, "rows in the jobs table for BenchmarkDashboard and TestDashboardLargeTable")

// fillJobs inserts n jobs spread over the last 24 hours in the test's
// schema: 5 queues, 20 tasks, 90% succeeded, 5% failed (with an error
// history), 3% available, 1% scheduled, 1% cancelled; every 100th job has a
// parent. A test-only shortcut: the library never writes jobs like this.
func fillJobs(tb testing.TB, d *pgtest.DB, n int) {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	stmt := fmt.Sprintf(`
INSERT INTO %[1]q.jobs (task, queue, state, args, attempt, run_at, created_at, started_at, finished_at, worker_id, errors, parent_id, root_id)
SELECT 'task' || (i %% 20), 'q' || (i %% 5), st,
       jsonb_build_object('customer', 'cust-' || (i %% 100000), 'order', i, 'note', 'an ordinary order of the week'),
       1, created, created,
       CASE WHEN st IN ('succeeded', 'failed') THEN created + interval '20 ms' END,
       CASE WHEN st IN ('succeeded', 'failed', 'cancelled') THEN created + interval '70 ms' END,
       CASE WHEN st IN ('succeeded', 'failed') THEN 'bench-worker-' || (i %% 4) END,
       CASE WHEN st = 'failed' THEN jsonb_build_array(jsonb_build_object('attempt', 1, 'at', created, 'error', 'timeout talking to payment gateway ' || (i %% 1000), 'stack', 'goroutine 1 [running]:\nmain.pay()')) ELSE '[]'::jsonb END,
       CASE WHEN i %% 100 = 0 AND i > 1 THEN i - 1 END,
       CASE WHEN i %% 100 = 0 AND i > 1 THEN i - 1 END
  FROM (SELECT i,
               now() - interval '24 hours' + (interval '24 hours' * i / $1) AS created,
               CASE WHEN i %% 100 < 90 THEN 'succeeded' WHEN i %% 100 < 95 THEN 'failed'
                    WHEN i %% 100 < 98 THEN 'available' WHEN i %% 100 < 99 THEN 'scheduled' ELSE 'cancelled' END AS st
          FROM generate_series(1, $1) AS i) AS g`, d.Schema)
	_, err := d.Pool.Exec(ctx, stmt, n)
	require.NoError(tb, err)
	// Scheduled jobs wait for a future run time.
	_, err = d.Pool.Exec(ctx, fmt.Sprintf(`UPDATE %q.jobs SET run_at = now() + interval '1 hour' WHERE state = 'scheduled'`, d.Schema))
	require.NoError(tb, err)
	_, err = d.Pool.Exec(ctx, fmt.Sprintf(`VACUUM ANALYZE %q.jobs`, d.Schema))
	require.NoError(tb, err)
	tb.Logf("inserted %d jobs in %s", n, time.Since(start).Round(time.Millisecond))
}

// largeTableRequests are the pages measured on a large table.
func largeTableRequests(n int) []struct{ name, path string } {
	mid := n / 2
	return []struct{ name, path string }{
		{"jobs: newest page", "/api/jobs"},
		{"jobs: page deep in the table (before=n/2)", fmt.Sprintf("/api/jobs?before=%d", mid)},
		{"jobs: state=failed", "/api/jobs?state=failed"},
		{"jobs: state=failed, deep page", fmt.Sprintf("/api/jobs?state=failed&before=%d", mid)},
		{"jobs: state=available&queue=q3", "/api/jobs?state=available&queue=q3"},
		{"jobs: state=running (none)", "/api/jobs?state=running"},
		{"jobs: task=task7", "/api/jobs?task=task7"},
		{"jobs: created in the last 2 hours", "/api/jobs?from=2h"},
		{"jobs: created in a 10-minute window 12 h ago", "/api/jobs?from=" + time.Now().Add(-12*time.Hour).UTC().Format(time.RFC3339) + "&to=" + time.Now().Add(-12*time.Hour+10*time.Minute).UTC().Format(time.RFC3339)},
		{"jobs: search, common text (args)", "/api/jobs?q=ordinary"},
		{"jobs: search, error text", "/api/jobs?q=payment%20gateway%20999"},
		{"jobs: search, no match", "/api/jobs?q=no-such-text-anywhere"},
		{"job detail", fmt.Sprintf("/api/jobs/%d", mid)},
		{"overview", "/api/overview"},
		{"series 15m", "/api/series?range=15m"},
		{"series 24h", "/api/series?range=24h"},
		{"workers", "/api/workers"},
		{"queues", "/api/queues"},
	}
}

func largeTableServer(tb testing.TB) (*httptest.Server, int) {
	tb.Helper()
	n := *benchRows
	d := pgtest.New(tb)
	fillJobs(tb, d, n)
	h, err := dashboard.New(d.Pool, &dashboard.Options{Schema: d.Schema, Logger: quietLogger()})
	require.NoError(tb, err)
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv, n
}

func get(tb testing.TB, url string) {
	res, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d", url, res.StatusCode)
	}
}

// BenchmarkDashboard measures the API behind each page on a jobs table of
// -dashboard-rows rows (1,000,000 by default). Figures: docs/dashboard.md.
//
//	go test -run '^$' -bench Dashboard -benchtime 20x ./dashboard/
func BenchmarkDashboard(b *testing.B) {
	srv, n := largeTableServer(b)
	for _, r := range largeTableRequests(n) {
		b.Run(r.name, func(b *testing.B) {
			get(b, srv.URL+r.path) // warm: plan and cache
			for b.Loop() {
				get(b, srv.URL+r.path)
			}
		})
	}
}

// TestDashboardLargeTable prints the median and worst time of each page
// over 15 requests on a large table, and fails when a jobs-list page's
// median is over 300 ms. It runs only when -dashboard-rows is given
// explicitly, as it takes a minute to fill the table:
//
//	go test -run TestDashboardLargeTable -v ./dashboard/ -args -dashboard-rows=1000000
func TestDashboardLargeTable(t *testing.T) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "dashboard-rows" })
	if !set {
		t.Skip("pass -args -dashboard-rows=N to run")
	}
	srv, n := largeTableServer(t)
	var slow []string
	t.Logf("| request | first | median of 15 | slowest of 15 |")
	for _, r := range largeTableRequests(n) {
		start := time.Now()
		get(t, srv.URL+r.path)
		first := time.Since(start)
		var ds []time.Duration
		for range 15 {
			start := time.Now()
			get(t, srv.URL+r.path)
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		med := ds[len(ds)/2]
		t.Logf("| %s | %.1f ms | %.1f ms | %.1f ms |", r.name, ms(first), ms(med), ms(ds[len(ds)-1]))
		if strings.HasPrefix(r.path, "/api/jobs") && med >= 300*time.Millisecond {
			slow = append(slow, r.name)
		}
	}
	require.Empty(t, slow, "jobs pages with a median over 300 ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
