package cli_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBench runs `pgq bench` with tiny sizes against the test database and
// checks the summary table: every workload is there, every figure that pgq
// can measure is a positive number, and the bench schema is gone.
func TestBench(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs every benchmark workload")
	}
	b := setup(t)
	r := b.run(t, "bench", "--drain-jobs", "300", "--steady-rate", "200", "--steady-duration", "500ms",
		"--steady-producers", "2", "--ramp", "100,200", "--ramp-step", "300ms", "--ramp-producers", "2",
		"--growth-waiting", "600", "--growth-finished", "500", "--growth-measure", "200",
		"--tx-duration", "300ms", "--tx-clients", "2", "--workflow", "50", "--concurrency", "20", "--rounds", "2",
		"--workloads", "drain,steady,ramp,growth,tx,workflow,pinned", "--pinned-rate", "200", "--pinned-duration", "1500ms", "--pinned-pin", "600ms")
	require.NoError(t, r.err, "stdout: %s\nstderr: %s", r.out, r.errOut)
	require.Contains(t, r.errOut, "in schema pgq_bench_")
	require.Contains(t, r.errOut, "drain, pgq (round 2/2): done in")
	require.Contains(t, r.errOut, "growth, pgq, empty table ...\n") // no bar drawn into a buffer
	require.Contains(t, r.out, "| workload | figure | pgq |")

	rows := map[string]string{}
	for _, line := range strings.Split(r.out, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !regexp.MustCompile(`^ \d `).MatchString(cells[1]) {
			continue
		}
		workload, figure, value := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])
		rows[workload+": "+figure] = value
	}
	workloads := map[string]int{}
	for name, value := range rows {
		workloads[name[:1]]++
		// "1,234 (1,000–1,500)" or "2.50": the median comes first.
		median := strings.ReplaceAll(strings.Fields(value)[0], ",", "")
		v, err := strconv.ParseFloat(median, 64)
		require.NoError(t, err, "%s: %q", name, value)
		if strings.Contains(name, "dead rows") {
			require.GreaterOrEqual(t, v, 0.0, "%s: %q", name, value)
			continue
		}
		require.Greater(t, v, 0.0, "%s: %q", name, value)
	}
	require.Equal(t, map[string]int{"1": 2, "2": 7, "3": 5, "4": 5, "5": 2, "6": 6}, workloads, "figures per workload: %v", rows)

	var left int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgq\\_bench\\_%'").Scan(&left))
	require.Zero(t, left, "bench schemas left behind")
}

// TestBenchRejectsBadFlags checks the flag checks, which run before any
// database is touched.
func TestBenchRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workloads", "drain,fly"}, `unknown workload "fly"`},
		{[]string{"--ramp", "2000,1000"}, "rates must ascend"},
		{[]string{"--ramp", "fast"}, `"fast" is not a positive rate`},
		{[]string{"--rounds", "0"}, "--rounds must be at least 1"},
		{[]string{"--drain-jobs", "0"}, "--drain-jobs must be at least 1"},
	} {
		r := execute(t, nil, append([]string{"bench"}, tc.args...)...)
		require.ErrorContains(t, r.err, tc.want, tc.args)
		_, code := r.report()
		require.Equal(t, 2, code, tc.args)
	}
}
