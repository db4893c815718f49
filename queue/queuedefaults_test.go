package queue_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

func TestQueueDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, &queue.Config{Routes: []queue.Route{
		{Pattern: "routed.*", Options: queue.Options{Queue: "slow", Priority: queue.Ptr(2)}},
	}})
	require.NoError(t, b.client.SetQueueDefaults(ctx, "slow", queue.QueueDefaults{
		Priority: queue.Ptr(7), MaxRetries: queue.Ptr(9), RetryDelay: time.Minute, TimeLimit: time.Hour, SoftTimeLimit: 50 * time.Minute,
	}))

	type want struct {
		priority, retries int
		timeLimit         time.Duration
	}
	check := func(id int64, w want, what string) {
		t.Helper()
		j, err := b.client.Job(ctx, id)
		require.NoError(t, err, what)
		require.Equal(t, w.priority, j.Priority, what)
		require.Equal(t, w.retries, j.MaxRetries, what)
		require.Equal(t, w.timeLimit, j.TimeLimit, what)
	}

	// The queue's defaults fill what the job leaves unset, on every way in.
	e, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "slow"})
	require.NoError(t, err)
	check(e.ID, want{7, 9, time.Hour}, "single enqueue")
	got, err := b.client.Job(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, time.Minute, got.RetryDelay)
	require.Equal(t, 50*time.Minute, got.SoftTimeLimit)

	u, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "slow", UniqueKey: "u"})
	require.NoError(t, err)
	check(u.ID, want{7, 9, time.Hour}, "unique enqueue")

	many, err := b.client.EnqueueMany(ctx, []queue.Request{
		{Args: sendEmail{}, Options: &queue.Options{Queue: "slow"}},
		{Args: sendEmail{}, Options: &queue.Options{Queue: "other"}},
	})
	require.NoError(t, err)
	check(many[0].ID, want{7, 9, time.Hour}, "COPY, queue with defaults")
	check(many[1].ID, want{0, 3, 0}, "COPY, queue without defaults")

	var sqlID int64
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, `SELECT pgq.enqueue('a.b', queue => 'slow')`)).Scan(&sqlID))
	check(sqlID, want{7, 9, time.Hour}, "pgq.enqueue")

	// Stronger layers win: the call, the task's defaults, the route.
	e, err = b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "slow", Priority: queue.Ptr(1), MaxRetries: queue.Ptr(0), TimeLimit: time.Second})
	require.NoError(t, err)
	check(e.ID, want{1, 0, time.Second}, "call options")
	e, err = b.client.Enqueue(ctx, report{}, &queue.Options{Queue: "slow"})
	require.NoError(t, err)
	check(e.ID, want{5, 7, time.Hour}, "task defaults")
	e, err = b.client.Delay(ctx, queue.Raw{Task: "routed.job"})
	require.NoError(t, err)
	check(e.ID, want{2, 9, time.Hour}, "route")
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, `SELECT pgq.enqueue('a.b', queue => 'slow', priority => 0, max_retries => 1)`)).Scan(&sqlID))
	check(sqlID, want{0, 1, time.Hour}, "pgq.enqueue arguments")

	// They are listed, and cleared by the zero value.
	qs, err := b.client.ListQueues(ctx)
	require.NoError(t, err)
	var slow *queue.QueueInfo
	for i := range qs {
		if qs[i].Name == "slow" {
			slow = &qs[i]
		}
	}
	require.NotNil(t, slow)
	require.Equal(t, 7, *slow.Defaults.Priority)
	require.Equal(t, time.Hour, slow.Defaults.TimeLimit)
	js, err := json.Marshal(slow.Defaults)
	require.NoError(t, err)
	require.JSONEq(t, `{"priority":7,"max_retries":9,"retry_delay_ms":60000,"time_limit_ms":3600000,"soft_time_limit_ms":3000000}`, string(js))

	require.NoError(t, b.client.SetQueueDefaults(ctx, "slow", queue.QueueDefaults{}))
	e, err = b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "slow"})
	require.NoError(t, err)
	check(e.ID, want{0, 3, 0}, "cleared")

	// Bad input names the field.
	for _, d := range []queue.QueueDefaults{{Priority: queue.Ptr(10)}, {MaxRetries: queue.Ptr(-1)}, {TimeLimit: -time.Second}} {
		require.ErrorIs(t, b.client.SetQueueDefaults(ctx, "slow", d), queue.ErrInvalid)
	}
	require.ErrorIs(t, b.client.SetQueueDefaults(ctx, "bad queue", queue.QueueDefaults{}), queue.ErrInvalid)
}
