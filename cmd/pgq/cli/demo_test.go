package cli_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemo runs the demo against the test database (so it starts no server
// of its own) and checks what it says and what it wrote.
func TestDemo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.mustRun(t, "demo")
	for _, want := range []string{
		"Using the database at", "schema " + b.db.Schema,
		"emails.send", "reports.build", "reminders.send", "scheduled",
		"duplicate, no new job", "images.thumbnail on queue media",
		"QUEUE", "default", "reports", "billing", "media",
		"ID", "psql '",
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "Stopping the throwaway PostgreSQL")
	require.Equal(t, 4+1000, b.jobCount(t))
}
