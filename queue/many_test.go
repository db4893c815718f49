package queue_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

func TestEnqueueManyCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)

	const n = 5000
	reqs := make([]queue.Request, n)
	for i := range reqs {
		q := "bulk-a"
		if i%2 == 1 {
			q = "bulk-b"
		}
		reqs[i] = queue.Request{Args: sendEmail{To: fmt.Sprintf("user%d@example.com", i)}, Options: &queue.Options{Queue: q}}
	}
	reqs[10].Options.Countdown = time.Hour

	out, err := b.client.EnqueueMany(ctx, reqs)
	require.NoError(t, err)
	require.Len(t, out, n)
	require.Equal(t, n, b.count(t, "true"))

	// Results come back in request order and name the stored rows.
	for _, i := range []int{0, 1, 10, n - 1} {
		got, err := b.client.Job(ctx, out[i].ID)
		require.NoError(t, err)
		require.JSONEq(t, fmt.Sprintf(`{"to":"user%d@example.com","subject":""}`, i), string(got.Args))
		require.Equal(t, reqs[i].Options.Queue, got.Queue)
	}
	require.Equal(t, queue.StateScheduled, out[10].State)
	require.Equal(t, 1, b.count(t, "state = 'scheduled' AND run_at > now() + interval '59 minutes'"))

	// One wake-up per queue for the whole COPY.
	got := l.drain(b)
	sort.Strings(got)
	require.Equal(t, []string{"bulk-a", "bulk-b"}, got)
}

func TestEnqueueManyInCallersTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)
	reqs := []queue.Request{
		{Args: sendEmail{To: "a"}},
		{Args: sendEmail{To: "b"}, Options: &queue.Options{UniqueKey: "u1"}},
		{Args: report{Month: "2026-11"}},
		{Args: sendEmail{To: "dup"}, Options: &queue.Options{UniqueKey: "u1"}},
	}

	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = b.client.EnqueueManyTx(ctx, tx, reqs)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	require.Zero(t, b.count(t, "true"))
	require.Empty(t, l.drain(b))

	tx, err = b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	out, err := b.client.EnqueueManyTx(ctx, tx, reqs)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, 3, b.count(t, "true"))
	require.False(t, out[1].Duplicate)
	require.True(t, out[3].Duplicate)
	require.Equal(t, out[1].ID, out[3].ID)
	require.Equal(t, "reports", out[2].Queue, "task defaults apply in bulk too")
	got := l.drain(b)
	sort.Strings(got)
	require.Equal(t, []string{"default", "reports"}, got)
}

func TestEnqueueManyRejectsBadJobByIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = b.client.EnqueueManyTx(ctx, tx, []queue.Request{
		{Args: sendEmail{}},
		{Args: sendEmail{}, Options: &queue.Options{Priority: queue.Ptr(42)}},
	})
	require.ErrorIs(t, err, queue.ErrInvalid)
	require.Contains(t, err.Error(), "job 1 of 2")
	// Nothing was sent, so the transaction goes on.
	_, err = b.client.EnqueueManyTx(ctx, tx, []queue.Request{{Args: sendEmail{}}})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, 1, b.count(t, "true"))
}

func TestListJobsAndQueueStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	for i := range 5 {
		_, err := b.client.Enqueue(ctx, sendEmail{To: fmt.Sprint(i)}, &queue.Options{Queue: "mail"})
		require.NoError(t, err)
	}
	_, err := b.client.Enqueue(ctx, report{}, &queue.Options{Countdown: time.Hour})
	require.NoError(t, err)
	_, err = b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema,
		`UPDATE pgq.jobs SET state = 'failed', errors = '[{"attempt":1,"at":"2026-11-29T10:00:00Z","error":"boom","stack":"main.go:1"}]'
		  WHERE id = (SELECT min(id) FROM pgq.jobs)`))
	require.NoError(t, err)

	stats, err := b.client.QueueStats(ctx)
	require.NoError(t, err)
	require.Equal(t, []queue.QueueStat{
		{Queue: "mail", State: "available", Count: 4},
		{Queue: "mail", State: "failed", Count: 1},
		{Queue: "reports", State: "scheduled", Count: 1},
	}, stats)

	page1, err := b.client.ListJobs(ctx, queue.JobFilter{Queue: "mail", Limit: 3})
	require.NoError(t, err)
	require.Len(t, page1, 3)
	require.Greater(t, page1[0].ID, page1[1].ID, "newest first")
	page2, err := b.client.ListJobs(ctx, queue.JobFilter{Queue: "mail", Limit: 3, BeforeID: page1[2].ID})
	require.NoError(t, err)
	require.Len(t, page2, 2)

	failed, err := b.client.ListJobs(ctx, queue.JobFilter{State: "failed"})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, "boom", failed[0].LastError)
	job, err := b.client.Job(ctx, failed[0].ID)
	require.NoError(t, err)
	require.Equal(t, []queue.JobError{{Attempt: 1, At: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC), Error: "boom", Stack: "main.go:1"}}, job.Errors)

	_, err = b.client.ListJobs(ctx, queue.JobFilter{State: "exploded"})
	require.ErrorIs(t, err, queue.ErrInvalid)

	// The SQL view agrees.
	var lastErr string
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema,
		"SELECT last_error FROM pgq.job_overview WHERE state = 'failed'")).Scan(&lastErr))
	require.Equal(t, "boom", lastErr)
}
