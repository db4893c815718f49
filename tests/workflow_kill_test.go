package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/workflow"
)

// TestChordSurvivesSIGKILL runs a chord of 200 members on worker
// processes of examples/workflow and kills two of them with SIGKILL while
// they hold members. The members they held are rescued and run again; the
// callback is enqueued once, runs once (its effect, a row written in the
// transaction that completes it, exists once) and receives the 200
// results in member order.
func TestChordSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs worker binaries")
	}
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	bin := buildExample(t, "workflow")

	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	const members = 200
	sigs := make([]*workflow.Signature, members)
	want := int64(0)
	for i := range sigs {
		sigs[i] = workflow.Task(queue.Raw{Task: "demo.square", Args: json.RawMessage(fmt.Sprintf(`{"n": %d, "millis": 100}`, i))},
			&queue.Options{MaxRetries: queue.Ptr(5)})
		want += int64(i * i)
	}
	r, err := workflow.Apply(ctx, client, workflow.Chord(workflow.Group(sigs...), workflow.Task(queue.Raw{Task: "demo.total"}, nil)))
	require.NoError(t, err)

	args := []string{"-database-url", db.URL, "-schema", db.Schema, "-work", "-concurrency", "10",
		"-rescue-after", "2s", "-heartbeat", "500ms", "-maintenance", "200ms"}
	first, second := startWorker(t, bin, args...), startWorker(t, bin, args...)
	killAt := func(succeeded int, victim string) {
		require.Eventually(t, func() bool {
			return count(t, db, queue.StateSucceeded) >= succeeded && count(t, db, queue.StateRunning) > 0
		}, time.Minute, 5*time.Millisecond)
		t.Logf("SIGKILL %s with %d members running, %d succeeded", victim, count(t, db, queue.StateRunning), count(t, db, queue.StateSucceeded))
	}
	killAt(50, "the first worker")
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	third := startWorker(t, bin, args...)
	killAt(150, "the second worker")
	require.NoError(t, second.Process.Signal(syscall.SIGKILL))
	_ = second.Wait()

	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var total int64
	require.NoError(t, r.Get(wctx, &total))
	require.Equal(t, want, total)
	require.NoError(t, third.Process.Signal(syscall.SIGTERM))
	require.NoError(t, third.Wait())

	q := func(sql string, args ...any) int64 {
		var n int64
		require.NoError(t, db.Pool.QueryRow(ctx, fmt.Sprintf(sql, db.Schema), args...).Scan(&n))
		return n
	}
	require.EqualValues(t, 1, q("SELECT count(*) FROM %s.jobs WHERE root_id = $1 AND task = 'demo.total'", r.ID), "one callback job")
	require.EqualValues(t, 1, q("SELECT count(*) FROM %s.demo_totals WHERE workflow_id = $1", r.ID), "the callback took effect once")
	require.EqualValues(t, members, q("SELECT members FROM %s.demo_totals WHERE workflow_id = $1", r.ID))
	require.EqualValues(t, 1, q("SELECT attempt FROM %s.jobs WHERE root_id = $1 AND task = 'demo.total'", r.ID), "the callback ran once")
	rescued := q(`SELECT count(*) FROM %s.jobs WHERE root_id = $1 AND errors::text LIKE '%%stopped sending heartbeats%%'`, r.ID)
	require.Positive(t, rescued, "members of the killed workers were rescued")
	t.Logf("%d members were rescued and run again", rescued)

	var in []int64
	require.NoError(t, db.Pool.QueryRow(ctx, fmt.Sprintf("SELECT %s.workflow_input(id) FROM %s.jobs WHERE root_id = $1 AND task = 'demo.total'", db.Schema, db.Schema), r.ID).Scan(&in))
	require.Len(t, in, members)
	for i, v := range in {
		require.EqualValues(t, i*i, v, "result %d in member order", i)
	}
}
