package cli_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
)

func TestLimitSetListDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Contains(t, b.mustRun(t, "limit", "set", "emails.send", "--rate", "10/s"), "task emails.send: rate 10/s")
	// Flags not given keep their value.
	require.Contains(t, b.mustRun(t, "limit", "set", "emails.send", "--concurrency", "5"), "task emails.send: rate 10/s, at most 5 running")
	require.Contains(t, b.mustRun(t, "limit", "set", "reports", "--queue", "--concurrency", "2"), "queue reports: at most 2 running")

	out := b.mustRun(t, "limit", "list")
	require.Regexp(t, `task\s+emails\.send\s+10/s\s+2\.00\s+5\s+0`, out)
	require.Regexp(t, `queue\s+reports\s+-\s+-\s+2\s+0`, out)
	require.Contains(t, b.mustRun(t, "limit", "list", "--json"), `"per_second": 10`)

	require.Contains(t, b.mustRun(t, "limit", "set", "emails.send", "--rate", "none"), "task emails.send: at most 5 running")
	require.Contains(t, b.mustRun(t, "limit", "set", "emails.send", "--concurrency", "0"), "no limit")
	require.Contains(t, b.mustRun(t, "limit", "delete", "reports", "--queue"), "queue reports: no limit")
	require.Contains(t, b.mustRun(t, "limit", "list"), "no limits")

	for args, msg := range map[string][]string{
		"invalid rate \"fast\"":      {"limit", "set", "t", "--rate", "fast"},
		"unknown unit \"d\"":         {"limit", "set", "t", "--rate", "10/d"},
		"must be 1 or more":          {"limit", "set", "t", "--concurrency", "-1"},
		"give --rate, --concurrency": {"limit", "set", "t"},
		"invalid task name":          {"limit", "set", "bad name", "--concurrency", "1"},
	} {
		r := b.run(t, msg...)
		_, code := r.report()
		require.Equal(t, cli.ExitUsage, code, args)
		require.ErrorContains(t, r.err, args)
	}
}
