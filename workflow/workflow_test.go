package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
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

func TestChainOf50Steps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	steps := []*workflow.Signature{task(add{A: 1})}
	for range 49 {
		steps = append(steps, task(add{A: 1}))
	}
	r := b.apply(t, workflow.Chain(steps...))
	var got int
	require.NoError(t, get(t, r, &got))
	require.Equal(t, 50, got)
	require.Equal(t, 50, scalar[int](t, b, "SELECT count(*) FROM pgq.jobs WHERE root_id = $1 AND state = 'succeeded'", r.ID))
}

func TestImmutableIgnoresParentResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	key := newKey(t)
	r := b.apply(t, workflow.Chain(task(add{A: 1, B: 2}), task(record{Key: key}).Immutable(), task(add{A: 5}).Immutable()))
	var got int
	require.NoError(t, get(t, r, &got))
	require.Equal(t, 5, got)
	require.Equal(t, []json.RawMessage{nil}, recorded(key), "the immutable step was given nothing")
}

func TestGroupResultsInMemberOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	var members []*workflow.Signature
	for i := range 30 {
		members = append(members, task(add{A: i}))
	}
	r := b.apply(t, workflow.Group(members...))
	var got []int
	require.NoError(t, get(t, r, &got))
	want := make([]int, 30)
	for i := range want {
		want[i] = i
	}
	require.Equal(t, want, got)
}

// TestChordOf1000WithRetries is the test: random transient
// failures and retries, a callback that runs exactly once with every
// result in member order.
func TestChordOf1000WithRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, func(c *worker.Config) { c.Concurrency = 20 })
	key := newKey(t)
	members := make([]*workflow.Signature, 1000)
	want := make([]any, 1000)
	for i := range members {
		members[i] = workflow.Task(flaky{N: i, Fails: rand.IntN(3)}, &queue.Options{MaxRetries: queue.Ptr(5)})
		want[i] = float64(i)
	}
	r := b.apply(t, workflow.Chord(workflow.Group(members...), task(record{Key: key})))
	var got []int
	require.NoError(t, get(t, r, &got))
	require.Len(t, got, 1000)
	runs := waitRecorded(t, key, 1)
	require.Len(t, runs, 1, "the callback ran once")
	var in []any
	require.NoError(t, json.Unmarshal(runs[0], &in))
	require.Equal(t, want, in)
	require.Greater(t, scalar[int](t, b, "SELECT count(*) FROM pgq.jobs WHERE root_id = $1 AND attempt > 1", r.ID), 0, "some members were retried")
	require.Equal(t, 0, scalar[int](t, b, "SELECT remaining FROM pgq.workflow_nodes WHERE parent_id = $1 AND kind = 'group'", r.ID))
}

func TestNested(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	cases := []struct {
		name string
		wf   *workflow.Signature
		want any
	}{
		{"chain in group", workflow.Group(
			workflow.Chain(task(add{A: 1}), task(add{A: 2})),
			task(add{A: 10}),
			workflow.Chain(task(add{A: 100}), task(add{A: 200}), task(add{A: 300}))),
			[]any{3.0, 10.0, 600.0}},
		{"chord in chain", workflow.Chain(
			task(add{A: 1}),
			workflow.Chord(workflow.Group(task(add{A: 10}), task(add{A: 20})), task(sum{})),
			task(add{A: 1000})),
			// 1 goes to both members: 11 + 21 = 32, then + 1000.
			1032.0},
		{"chord whose callback is a chain", workflow.Chord(
			workflow.Group(task(add{A: 1}), task(add{A: 2}), task(add{A: 3})),
			workflow.Chain(task(sum{}), task(add{A: 100}))),
			106.0},
		{"group in group", workflow.Group(workflow.Group(task(add{A: 1}), task(add{A: 2})), task(add{A: 3})),
			[]any{[]any{1.0, 2.0}, 3.0}},
		{"empty group in chain", workflow.Chain(task(add{A: 1}), workflow.Group(), task(sum{})), 0.0},
		{"empty group first", workflow.Chain(workflow.Group(), task(sum{})), 0.0},
		{"empty group", workflow.Group(), []any{}},
		{"empty group in a started group", workflow.Group(task(add{A: 1}), workflow.Group()), []any{1.0, []any{}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := b.apply(t, c.wf)
			var got any
			require.NoError(t, get(t, r, &got))
			require.Equal(t, c.want, got)
		})
	}
}

func TestMapStarmapChunks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	worker.Register(b.reg, func(_ context.Context, job *worker.Job[pair]) (any, error) {
		return job.Args[0] * job.Args[1], nil
	}, nil)
	b.start(t, nil) // a second worker, made after pair was registered

	r := b.apply(t, workflow.Map("test.square", []any{1, 2, 3}, nil))
	var got []int
	require.NoError(t, get(t, r, &got))
	require.Equal(t, []int{1, 4, 9}, got)

	r = b.apply(t, workflow.Starmap("test.pair", [][]any{{2, 3}, {4, 5}}, &queue.Options{Queue: "pairs"}))
	b.start(t, func(c *worker.Config) { c.Queues = []string{"pairs"} })
	require.NoError(t, get(t, r, &got))
	require.Equal(t, []int{6, 20}, got)

	items := make([]any, 10)
	for i := range items {
		items[i] = i
	}
	r = b.apply(t, workflow.Chunks("test.square", items, 4, nil))
	var chunks [][]int
	require.NoError(t, get(t, r, &chunks))
	require.Equal(t, [][]int{{0, 1, 4, 9}, {16, 25, 36, 49}, {64, 81}}, chunks)
	require.Equal(t, 3, scalar[int](t, b, "SELECT count(*) FROM pgq.jobs WHERE root_id = $1", r.ID))

	_, err := workflow.Apply(context.Background(), b.client, workflow.Chunks("test.square", items, 0, nil))
	require.ErrorIs(t, err, queue.ErrInvalid)
}

type pair [2]int

func (pair) TaskName() string { return "test.pair" }

func TestChainStopsAtFailingStep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	key := newKey(t)
	r := b.apply(t, workflow.Chain(
		task(add{A: 1}),
		workflow.Task(boom{}, &queue.Options{MaxRetries: queue.Ptr(2)}),
		task(add{A: 2}),
	).LinkError(task(record{Key: key})))
	err := get(t, r, nil)
	var werr *workflow.Error
	require.ErrorAs(t, err, &werr)
	require.ErrorIs(t, err, queue.ErrJobFailed)
	require.Equal(t, "test.boom", werr.Task)
	require.Contains(t, werr.Message, "boom at attempt 3")

	tree, err := r.Tree(context.Background())
	require.NoError(t, err)
	require.Equal(t, "failed", tree.State)
	require.Equal(t, []string{"succeeded", "failed", "cancelled"}, states(tree.Steps))
	require.Equal(t, werr.JobID, tree.Steps[1].ID)
	last, err := b.client.Job(context.Background(), tree.Steps[2].ID)
	require.NoError(t, err)
	require.Equal(t, 0, last.Attempt, "the step after the failure never ran")
	require.Contains(t, last.Errors[0].Error, "not run: job")

	// The error callback ran once, with the failure.
	runs := waitRecorded(t, key, 1)
	var f workflow.Failure
	require.NoError(t, json.Unmarshal(runs[0], &f))
	require.Equal(t, werr.Failure, f)
	b.waitIdle(t, r.ID)
	require.Len(t, recorded(key), 1)
}

func states(steps []*workflow.Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.State
	}
	return out
}

// waitIdle waits until no job of the workflow waits or runs.
func (b *bundle) waitIdle(t *testing.T, root int64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for scalar[int](t, b, "SELECT count(*) FROM pgq.jobs WHERE root_id = $1 AND state NOT IN ('succeeded', 'failed', 'cancelled')", root) > 0 {
		require.True(t, time.Now().Before(deadline), "workflow %d still has unfinished jobs", root)
		time.Sleep(20 * time.Millisecond) // polling the database: the condition, not a timer, ends the wait
	}
}

func TestChordMemberFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	key, cbKey := newKey(t), newKey(t)
	members := []*workflow.Signature{task(add{A: 1}), workflow.Task(boom{}, &queue.Options{MaxRetries: queue.Ptr(1)}), task(add{A: 3})}
	r := b.apply(t, workflow.Chord(workflow.Group(members...), task(record{Key: cbKey})).LinkError(task(record{Key: key})))
	err := get(t, r, nil)
	var werr *workflow.Error
	require.ErrorAs(t, err, &werr)
	require.Equal(t, "test.boom", werr.Task)
	require.Equal(t, queue.StateFailed, werr.State)
	require.Contains(t, werr.Message, "boom at attempt 2")

	b.waitIdle(t, r.ID)
	tree, err := r.Tree(context.Background())
	require.NoError(t, err)
	require.Equal(t, werr.JobID, tree.Steps[0].Steps[1].ID, "the error names the failed member")
	require.Equal(t, "cancelled", tree.Steps[1].State, "the callback never runs")
	require.Empty(t, recorded(cbKey))
	require.Len(t, waitRecorded(t, key, 1), 1, "the error callback runs once")
}

func TestRevokedMemberFailsChord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	cbKey := newKey(t)
	r := b.apply(t, workflow.Chord(workflow.Group(
		task(add{A: 1}),
		workflow.Task(add{A: 2}, &queue.Options{Countdown: time.Hour}),
	), task(record{Key: cbKey})))
	tree, err := r.Tree(context.Background())
	require.NoError(t, err)
	_, err = b.client.Revoke(context.Background(), tree.Steps[0].Steps[1].ID, false)
	require.NoError(t, err)
	err = get(t, r, nil)
	require.ErrorIs(t, err, queue.ErrJobCancelled)
	var werr *workflow.Error
	require.ErrorAs(t, err, &werr)
	require.Equal(t, tree.Steps[0].Steps[1].ID, werr.JobID)
	b.waitIdle(t, r.ID)
	require.Empty(t, recorded(cbKey))
}

func TestExpiredMemberFailsChord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	r := b.apply(t, workflow.Chord(workflow.Group(
		task(add{A: 1}),
		workflow.Task(add{A: 2}, &queue.Options{ExpiresAt: time.Now().Add(-time.Minute)}),
	), task(sum{})))
	err := get(t, r, nil)
	require.ErrorIs(t, err, queue.ErrJobCancelled)
	require.ErrorContains(t, err, "expired")
}

func TestLinks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	ok, bad := newKey(t), newKey(t)
	r := b.apply(t, task(add{A: 4, B: 5}).Link(task(record{Key: ok})).LinkError(task(record{Key: bad})))
	var got int
	require.NoError(t, get(t, r, &got))
	require.Equal(t, 9, got)
	require.Equal(t, []json.RawMessage{json.RawMessage("9")}, waitRecorded(t, ok, 1))
	tree, err := r.Tree(context.Background())
	require.NoError(t, err)
	require.Len(t, tree.Callbacks, 2)
	require.Equal(t, "skipped", tree.Callbacks[1].State)
	require.Equal(t, 0, scalar[int](t, b, "SELECT count(*) FROM pgq.jobs WHERE id = $1", tree.Callbacks[1].ID), "the unneeded callback's job is deleted")
	require.Empty(t, recorded(bad))
}

func TestRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = workflow.ApplyTx(ctx, tx, b.client, workflow.Chord(workflow.Group(task(add{}), task(add{})), task(sum{})))
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, 0, scalar[int](t, b, "SELECT count(*) FROM pgq.jobs"))
	require.Equal(t, 0, scalar[int](t, b, "SELECT count(*) FROM pgq.workflow_nodes"))
}

func TestInvalidWorkflowIsRejectedBeforeSending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	cases := map[string]*workflow.Signature{
		"ignore_result in a chord":            workflow.Chord(workflow.Group(workflow.Task(add{}, &queue.Options{IgnoreResult: queue.Ptr(true)})), task(sum{})),
		"ignore_result before a mutable step": workflow.Chain(workflow.Task(add{}, &queue.Options{IgnoreResult: queue.Ptr(true)}), task(add{})),
		"unique key":                          workflow.Group(workflow.Task(add{}, &queue.Options{UniqueKey: "k"})),
		"empty chain":                         workflow.Chain(),
		"nil step":                            workflow.Chain(task(add{}), nil),
		"bad task name":                       workflow.Group(task(queue.Raw{Task: "bad name"})),
		"nil args":                            workflow.Task(nil, nil),
	}
	for name, wf := range cases {
		err := pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
			_, err := workflow.ApplyTx(ctx, tx, b.client, wf)
			require.ErrorIs(t, err, queue.ErrInvalid, name)
			// The transaction is still usable.
			var one int
			return tx.QueryRow(ctx, "SELECT 1").Scan(&one)
		})
		require.NoError(t, err, name)
	}
	// ignore_result is fine where nothing receives the result.
	_, err := workflow.Apply(ctx, b.client, workflow.Chain(task(add{}), workflow.Task(add{}, &queue.Options{IgnoreResult: queue.Ptr(true)})))
	require.NoError(t, err)
	_, err = workflow.Apply(ctx, b.client, workflow.Chain(workflow.Task(add{}, &queue.Options{IgnoreResult: queue.Ptr(true)}), task(add{}).Immutable()))
	require.NoError(t, err)
}

// TestBatchCompletionCountsOnce completes every member of a chord with one
// statement, as the worker's batched completion does, and then repeats
// the completion (a retried write after a lost acknowledgement): the
// callback is made available once, with the results in member order.
func TestBatchCompletionCountsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var members []*workflow.Signature
	for i := range 50 {
		members = append(members, task(add{A: i}))
	}
	r := b.apply(t, workflow.Chord(workflow.Group(members...), task(sum{})))
	tree, err := r.Tree(context.Background())
	require.NoError(t, err)
	callback := tree.Steps[1].ID
	// Claimed, then completed in reverse order in one statement.
	b.exec(t, "UPDATE pgq.jobs SET state = 'running', attempt = 1, worker_id = 'w' WHERE root_id = $1 AND state = 'available'", r.ID)
	complete := `UPDATE pgq.jobs AS j SET state = 'succeeded', finished_at = now(), result = to_jsonb(u.n)
	               FROM (SELECT id, (args ->> 'a')::int AS n FROM pgq.jobs WHERE root_id = $1 AND id <> $2 ORDER BY id DESC OFFSET 0) AS u
	              WHERE j.id = u.id`
	b.exec(t, complete, r.ID, callback)
	b.exec(t, complete, r.ID, callback)
	require.Equal(t, "available", scalar[string](t, b, "SELECT state FROM pgq.jobs WHERE id = $1", callback))
	var in []int
	require.NoError(t, json.Unmarshal(scalar[json.RawMessage](t, b, "SELECT pgq.workflow_input($1)", callback), &in))
	for i, v := range in {
		require.Equal(t, i, v)
	}
	require.Len(t, in, 50)
}

// TestRetriedMemberCountsOnce walks a member through a failed attempt, a
// retry and a success by plain SQL (what a worker of any language writes):
// only the success counts.
func TestRetriedMemberCountsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.apply(t, workflow.Chord(workflow.Group(task(add{A: 1}), task(add{A: 2})), task(sum{})))
	tree, err := r.Tree(context.Background())
	require.NoError(t, err)
	m0, m1, cb := tree.Steps[0].Steps[0].ID, tree.Steps[0].Steps[1].ID, tree.Steps[1].ID
	group := tree.Steps[0].ID
	remaining := func() int {
		return scalar[int](t, b, "SELECT remaining FROM pgq.workflow_nodes WHERE id = $1", group)
	}
	require.Equal(t, 2, remaining())
	for _, s := range []string{"running", "retrying", "running", "succeeded"} {
		b.exec(t, "UPDATE pgq.jobs SET state = $2, result = '1' WHERE id = $1", m0, s)
	}
	require.Equal(t, 1, remaining())
	// Written again (a retried batch), and retried by hand: no second count.
	b.exec(t, "UPDATE pgq.jobs SET state = 'succeeded' WHERE id = $1", m0)
	require.Equal(t, 1, remaining())
	require.Equal(t, "pending", scalar[string](t, b, "SELECT state FROM pgq.jobs WHERE id = $1", cb))
	b.exec(t, "UPDATE pgq.jobs SET state = 'succeeded', result = '2' WHERE id = $1", m1)
	require.Equal(t, 0, remaining())
	require.Equal(t, "available", scalar[string](t, b, "SELECT state FROM pgq.jobs WHERE id = $1", cb))
	require.JSONEq(t, "[1, 2]", string(scalar[json.RawMessage](t, b, "SELECT pgq.workflow_input($1)", cb)))
}

// TestCompleteTxContinues finishes a chain step with CompleteTx inside the
// handler's own transaction: the next step starts in that transaction.
func TestCompleteTxContinues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[txStep]) (any, error) {
		return nil, pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
			return worker.CompleteTx(ctx, tx, job, 41)
		})
	}, nil)
	b.start(t, nil)
	r := b.apply(t, workflow.Chain(task(txStep{}), task(add{A: 1})))
	var got int
	require.NoError(t, get(t, r, &got))
	require.Equal(t, 42, got)
}

type txStep struct{}

func (txStep) TaskName() string { return "test.txstep" }

// TestRescueMidChord: members held by a worker that died are rescued by
// another worker's maintenance and run again; the callback runs once. A
// member whose attempts are used up fails the chord instead, and the
// error callback runs once.
func TestRescueMidChord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key, errKey := newKey(t), newKey(t)
	var members []*workflow.Signature
	for i := range 20 {
		members = append(members, task(add{A: i}))
	}
	ok := b.apply(t, workflow.Chord(workflow.Group(members...), task(record{Key: key})))
	doomed := b.apply(t, workflow.Chord(workflow.Group(
		workflow.Task(add{A: 1}, &queue.Options{MaxRetries: queue.Ptr(0)}),
	), task(record{Key: key + "/never"})).LinkError(task(record{Key: errKey})))
	// A worker that is gone claimed every member a minute ago.
	b.exec(t, `UPDATE pgq.jobs SET state = 'running', attempt = attempt + 1, worker_id = 'dead-worker',
	                               started_at = now() - interval '1 minute'
	            WHERE state = 'available'`)
	b.start(t, func(c *worker.Config) {
		c.HeartbeatInterval, c.RescueAfter, c.MaintenanceInterval = 50*time.Millisecond, time.Second, 100*time.Millisecond
	})
	var total []int
	require.NoError(t, get(t, ok, &total))
	require.Len(t, total, 20)
	require.Len(t, waitRecorded(t, key, 1), 1)
	err := get(t, doomed, nil)
	require.ErrorIs(t, err, queue.ErrJobFailed)
	require.ErrorContains(t, err, "stopped sending heartbeats")
	require.Len(t, waitRecorded(t, errKey, 1), 1)
	b.waitIdle(t, ok.ID)
	b.waitIdle(t, doomed.ID)
	require.Len(t, recorded(key), 1)
	require.Empty(t, recorded(key+"/never"))
	require.Len(t, recorded(errKey), 1)
}

func TestInspectAndView(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.apply(t, workflow.Chain(task(add{A: 1}), workflow.Chord(workflow.Group(task(add{}), task(add{})), task(sum{}))))
	tree, err := workflow.Inspect(context.Background(), b.client, r.ID)
	require.NoError(t, err)
	require.Equal(t, workflow.KindChain, tree.Kind)
	require.Equal(t, "active", tree.State)
	require.Equal(t, []string{"available", "pending"}, states(tree.Steps))
	chord := tree.Steps[1]
	require.Equal(t, workflow.KindChord, chord.Kind)
	require.Equal(t, []string{"pending", "pending"}, states(chord.Steps[0].Steps))
	// Any step's id finds its workflow.
	again, err := workflow.Inspect(context.Background(), b.client, chord.Steps[1].ID)
	require.NoError(t, err)
	require.Equal(t, r.ID, again.ID)
	_, err = workflow.Inspect(context.Background(), b.client, r.ID+1000)
	require.ErrorIs(t, err, workflow.ErrNotFound)
	require.Equal(t, 7, scalar[int](t, b, "SELECT count(*) FROM pgq.workflow_steps WHERE workflow_id = $1", r.ID))
	require.Equal(t, 5, scalar[int](t, b, "SELECT count(*) FROM pgq.workflow_steps WHERE workflow_id = $1 AND state = 'pending'", r.ID))
	require.Equal(t, 1, scalar[int](t, b, "SELECT count(*) FROM pgq.jobs WHERE root_id = $1 AND state = 'available'", r.ID))
}

// TestDeletedJobs: deleting a step that has not run (Delete, a purge)
// fails its workflow instead of leaving it waiting; retention deleting
// succeeded members of a running chord keeps their results for the
// callback; deleting every job of a finished workflow removes its tree.
func TestDeletedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	purged := b.apply(t, workflow.Chain(task(add{A: 1}), task(add{A: 2})))
	tree, err := purged.Tree(ctx)
	require.NoError(t, err)
	b.exec(t, "DELETE FROM pgq.jobs WHERE id = $1", tree.Steps[0].ID)
	err = get(t, purged, nil)
	require.ErrorIs(t, err, queue.ErrJobCancelled)
	require.ErrorContains(t, err, "deleted before it finished")

	chord := b.apply(t, workflow.Chord(workflow.Group(task(add{A: 1}), task(add{A: 2}), task(add{A: 3})), task(sum{})))
	tree, err = chord.Tree(ctx)
	require.NoError(t, err)
	m := tree.Steps[0].Steps
	b.exec(t, "UPDATE pgq.jobs SET state = 'succeeded', result = to_jsonb((args ->> 'a')::int) WHERE id = ANY($1)", []int64{m[0].ID, m[1].ID})
	b.exec(t, "DELETE FROM pgq.jobs WHERE id = ANY($1)", []int64{m[0].ID, m[1].ID}) // retention
	b.exec(t, "UPDATE pgq.jobs SET state = 'succeeded', result = '3' WHERE id = $1", m[2].ID)
	require.JSONEq(t, "[1, 2, 3]", string(scalar[json.RawMessage](t, b, "SELECT pgq.workflow_input($1)", tree.Steps[1].ID)))

	b.exec(t, "UPDATE pgq.jobs SET state = 'succeeded', result = '6' WHERE id = $1", tree.Steps[1].ID)
	require.NoError(t, get(t, chord, nil))
	b.exec(t, "DELETE FROM pgq.jobs WHERE root_id = $1", chord.ID)
	require.Equal(t, 0, scalar[int](t, b, "SELECT count(*) FROM pgq.workflow_nodes WHERE root_id = $1", chord.ID))
	_, err = chord.Tree(ctx)
	require.ErrorIs(t, err, workflow.ErrNotFound)
}

// TestConcurrentChordsOnSeveralWorkers runs three chords at once on three
// workers, so that completion batches of different workers count members
// of the same groups concurrently: every callback runs once with every
// result in order.
func TestConcurrentChordsOnSeveralWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for range 3 {
		b.start(t, func(c *worker.Config) { c.Concurrency = 10 })
	}
	var results []*workflow.Result
	var keys []string
	for range 3 {
		key := newKey(t)
		members := make([]*workflow.Signature, 200)
		for i := range members {
			members[i] = task(add{A: i})
		}
		keys = append(keys, key)
		results = append(results, b.apply(t, workflow.Chord(workflow.Group(members...), task(record{Key: key}))))
	}
	for i, r := range results {
		var got []int
		require.NoError(t, get(t, r, &got))
		require.Len(t, got, 200)
		for j, v := range got {
			require.Equal(t, j, v)
		}
		require.Len(t, waitRecorded(t, keys[i], 1), 1)
	}
	for i, r := range results {
		b.waitIdle(t, r.ID)
		require.Len(t, recorded(keys[i]), 1, "callback %d ran once", i)
	}
}

// TestMapOfUnknownTaskFails: a map over a task no worker handles fails at
// once, naming the task.
func TestMapOfUnknownTaskFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	err := get(t, b.apply(t, workflow.Map("test.nobody", []any{1}, nil)), nil)
	require.ErrorIs(t, err, queue.ErrJobFailed)
	require.ErrorContains(t, err, `"test.nobody"`)
}

// TestCallbacksCanBeWorkflows: a link callback that is a chain receives
// the parent's result in its first step.
func TestCallbacksCanBeWorkflows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.start(t, nil)
	key := newKey(t)
	r := b.apply(t, task(add{A: 1, B: 1}).Link(workflow.Chain(task(add{A: 10}), task(record{Key: key}))))
	require.NoError(t, get(t, r, nil))
	require.Equal(t, []json.RawMessage{json.RawMessage("12")}, waitRecorded(t, key, 1))
}

// TestInterleavedGroupsInOneStatement completes the members of many
// chords in one statement, interleaved (so that the counts of many groups
// are held at once, and written in several rounds): every callback starts
// once, with its members' results in order.
func TestInterleavedGroupsInOneStatement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const chords = 300
	var callbacks []int64
	for range chords {
		r := b.apply(t, workflow.Chord(workflow.Group(task(add{A: 1}), task(add{A: 2}), task(add{A: 3})), task(sum{})))
		callbacks = append(callbacks, r.ID+5) // chord, group, three members, callback
	}
	b.exec(t, "UPDATE pgq.jobs SET state = 'running', attempt = 1, worker_id = 'w' WHERE state = 'available'")
	b.exec(t, `UPDATE pgq.jobs AS j SET state = 'succeeded', finished_at = now(), result = to_jsonb((j.args ->> 'a')::int)
	             FROM (SELECT id FROM pgq.jobs WHERE state = 'running' ORDER BY (args ->> 'a')::int, id OFFSET 0) AS u
	            WHERE j.id = u.id`)
	require.Equal(t, chords, scalar[int](t, b, "SELECT count(*) FROM pgq.jobs WHERE id = ANY($1) AND state = 'available'", callbacks))
	require.Equal(t, chords, scalar[int](t, b, "SELECT count(*) FROM pgq.jobs WHERE id = ANY($1) AND pgq.workflow_input(id) = '[1, 2, 3]'", callbacks))
	require.Equal(t, 0, scalar[int](t, b, "SELECT count(*) FROM pgq.workflow_nodes WHERE kind = 'group' AND remaining <> 0"))
}
