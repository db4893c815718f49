package cli_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/workflow"
)

func TestInspectWorkflow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, err := queue.NewClient(b.db.Pool, &queue.Config{Schema: b.db.Schema})
	require.NoError(t, err)
	step := func(task string) *workflow.Signature { return workflow.Task(queue.Raw{Task: task}, nil) }
	r, err := workflow.Apply(t.Context(), c, workflow.Chain(
		step("etl.extract"),
		workflow.Chord(workflow.Group(step("etl.part"), step("etl.part")), step("etl.merge")),
	).LinkError(step("etl.alert")))
	require.NoError(t, err)

	// The first step fails for good, as a worker in any language would write it.
	first := r.ID + 1
	_, err = b.db.Pool.Exec(t.Context(), fmt.Sprintf(
		`UPDATE %s SET state = 'failed', finished_at = now(), errors = '[{"attempt": 1, "error": "source is down"}]' WHERE id = $1`,
		pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()), first)
	require.NoError(t, err)

	want := fmt.Sprintf(`chain %[1]d  failed  (job %[2]d etl.extract failed: source is down)
├── %[2]d  etl.extract  failed  source is down
├── chord %[3]d  cancelled  (job %[2]d etl.extract failed: source is down)
│   ├── group %[4]d  cancelled  (job %[2]d etl.extract failed: source is down)
│   │   ├── %[5]d  etl.part  cancelled  (job %[2]d etl.extract failed: source is down)
│   │   └── %[6]d  etl.part  cancelled  (job %[2]d etl.extract failed: source is down)
│   └── %[7]d  etl.merge  cancelled  (job %[2]d etl.extract failed: source is down)
└── on error: %[8]d  etl.alert  available
`, r.ID, first, r.ID+2, r.ID+3, r.ID+4, r.ID+5, r.ID+6, r.ID+7)
	require.Equal(t, want, b.mustRun(t, "inspect", "workflow", strconv.FormatInt(r.ID, 10)))
	// Any job's id finds its workflow.
	require.Equal(t, want, b.mustRun(t, "inspect", "workflow", strconv.FormatInt(r.ID+5, 10)))

	var tree workflow.Step
	require.NoError(t, json.Unmarshal([]byte(b.mustRun(t, "inspect", "workflow", strconv.FormatInt(r.ID, 10), "--json")), &tree))
	require.Equal(t, "failed", tree.State)
	require.Equal(t, first, tree.Failure.JobID)
	require.Len(t, tree.Steps, 2)
	require.Equal(t, "link_error", tree.Callbacks[0].Role)

	res := b.run(t, "inspect", "workflow", strconv.FormatInt(r.ID+1000, 10))
	require.Error(t, res.err)
	require.ErrorIs(t, res.err, workflow.ErrNotFound)
	require.True(t, strings.Contains(res.err.Error(), "neither a workflow"), res.err)
}
