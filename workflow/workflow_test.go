package workflow_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/workflow"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func task(args queue.TaskArgs) *workflow.Signature { return workflow.Task(args, nil) }

func TestChainPassesResults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	r := b.apply(t, workflow.Chain(task(add{A: 1, B: 2}), task(add{A: 10}), task(add{A: 100})))
	var got int
	require.NoError(t, get(t, r, &got))
	require.Equal(t, 113, got)
}
