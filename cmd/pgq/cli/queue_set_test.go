package cli_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
)

func TestQueueSetDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.mustRun(t, "queue", "set", "reports", "--time-limit", "10m", "--max-retries", "5")
	require.Contains(t, out, "max retries 5, time limit 10m0s")
	// Flags not given keep their value.
	out = b.mustRun(t, "queue", "set", "reports", "--priority", "8")
	require.Contains(t, out, "priority 8, max retries 5, time limit 10m0s")

	id := parseID(t, b.mustRun(t, "enqueue", "reports.build", "-q", "reports"))
	j := b.jobRow(t, id)
	require.EqualValues(t, 8, j.Priority)
	require.EqualValues(t, 5, j.MaxRetries)
	require.NotNil(t, j.TimeLimitMs)
	require.EqualValues(t, 600_000, *j.TimeLimitMs)
	// The call's options still win.
	id = parseID(t, b.mustRun(t, "enqueue", "reports.build", "-q", "reports", "--priority", "1"))
	require.EqualValues(t, 1, b.jobRow(t, id).Priority)

	require.Regexp(t, `reports\s+active.*priority 8, max retries 5, time limit 10m0s`, b.mustRun(t, "queue", "list"))
	require.Contains(t, b.mustRun(t, "queue", "set", "reports", "--clear"), "none (pgq's own apply)")

	r := b.run(t, "queue", "set", "reports", "--priority", "12")
	_, code := r.report()
	require.Equal(t, cli.ExitUsage, code)
	require.ErrorContains(t, r.err, "priority 12 is out of range")
}
