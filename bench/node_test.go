package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/queuebench"
)

// TestNodeProtocol runs a stand-in driver.mjs to check how the harness
// reads a driver's progress, result, refusal and failure.
func TestNodeProtocol(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("Node.js not installed")
	}
	dir := t.TempDir()
	script := `const [system, workload, params] = process.argv.slice(2);
if (process.env.DATABASE_URL !== "postgres://x/y") { console.error("no URL"); process.exit(1); }
switch (workload) {
case "drain":
  console.log("progress 3"); console.log("noise"); console.log("progress 7");
  console.log("result " + JSON.stringify({ jobs: JSON.parse(params).jobs, insert_ns: 1e9, drain_ns: 2e9 }));
  break;
case "workflow":
  console.error("not available: " + system + " has no chord"); process.exit(3);
case "tx":
  console.error("stack line"); console.error("boom"); process.exit(1);
case "steady":
  break; // no result line
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "driver.mjs"), []byte(script), 0o644))
	sys := &nodeSystem{setup: &nodeSetup{dir: dir}, system: "graphile", url: "postgres://x/y"}
	ctx := t.Context()

	var seen []int
	d, err := sys.Drain(ctx, 7, func(n int) { seen = append(seen, n) })
	require.NoError(t, err)
	require.Equal(t, queuebench.DrainResult{Jobs: 7, Insert: time.Second, Drain: 2 * time.Second}, d)
	require.Equal(t, []int{3, 7}, seen)

	_, err = sys.Workflow(ctx, 10, nil)
	require.ErrorIs(t, err, queuebench.ErrNotAvailable)
	require.EqualError(t, err, "graphile has no chord")

	_, err = sys.TxCost(ctx, queuebench.TxParams{})
	require.EqualError(t, err, "graphile tx: boom")
	require.False(t, errors.Is(err, queuebench.ErrNotAvailable))

	_, err = sys.Steady(ctx, queuebench.SteadyParams{}, nil)
	require.ErrorContains(t, err, "printed no result")
}
