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

// finish plays the worker: it ends a job with the given state, result and
// error history, and announces it on the results channel.
func (b *bundle) finish(t *testing.T, id int64, state, result, errors string) {
	t.Helper()
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema,
		`UPDATE pgq.jobs SET state = $2, result = $3::jsonb, errors = $4::jsonb, finished_at = now() WHERE id = $1`),
		id, state, nullIfEmpty(result), errors)
	require.NoError(t, err)
	_, err = b.db.Pool.Exec(ctx, "SELECT pg_notify($1, $2::bigint::text)", schema.Channel(b.db.Schema, "results"), id)
	require.NoError(t, err)
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func TestCeleryStates(t *testing.T) {
	t.Parallel()
	for state, want := range map[string]string{
		"scheduled": "PENDING", "available": "PENDING", "running": "STARTED", "retrying": "RETRY",
		"succeeded": "SUCCESS", "failed": "FAILURE", "cancelled": "REVOKED",
	} {
		require.Equal(t, want, queue.CeleryState(state), state)
	}
}

func TestAsyncResultLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	e, err := b.client.Delay(ctx, sendEmail{To: "a"})
	require.NoError(t, err)
	r := e.AsyncResult()
	require.Equal(t, e.ID, r.ID)

	state, err := r.State(ctx)
	require.NoError(t, err)
	require.Equal(t, queue.CeleryPending, state)
	ready, err := r.Ready(ctx)
	require.NoError(t, err)
	require.False(t, ready)

	// A deadline while waiting is the caller's error, not the job's.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.Get(short, nil), context.DeadlineExceeded)

	b.finish(t, e.ID, "succeeded", `{"sent": true}`, `[]`)
	var out struct{ Sent bool }
	require.NoError(t, r.Get(ctx, &out))
	require.True(t, out.Sent)
	j, err := r.Job(ctx)
	require.NoError(t, err)
	require.True(t, j.Ready())
	require.True(t, j.Successful())
	require.Equal(t, queue.CelerySuccess, j.CeleryState())

	require.NoError(t, r.Forget(ctx))
	j, err = r.Job(ctx)
	require.NoError(t, err)
	require.Empty(t, j.Result)
	require.Equal(t, queue.StateSucceeded, j.State, "forget keeps the job")
}

func TestAsyncResultFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)

	failed, err := b.client.Delay(ctx, sendEmail{})
	require.NoError(t, err)
	b.finish(t, failed.ID, "failed", "", `[{"attempt":1,"at":"2026-11-29T10:00:00Z","error":"smtp down","stack":"main.send()"}]`)
	err = failed.AsyncResult().Get(ctx, nil)
	require.ErrorIs(t, err, queue.ErrJobFailed)
	var jf *queue.JobFailedError
	require.ErrorAs(t, err, &jf)
	require.Equal(t, "smtp down", jf.Err)
	require.Equal(t, "main.send()", jf.Stack)
	require.Contains(t, err.Error(), "emails.send")

	revoked, err := b.client.Delay(ctx, sendEmail{})
	require.NoError(t, err)
	b.finish(t, revoked.ID, "cancelled", "", `[]`)
	err = revoked.AsyncResult().Get(ctx, nil)
	require.ErrorIs(t, err, queue.ErrJobCancelled)
	require.NotErrorIs(t, err, queue.ErrJobFailed)

	// An unknown id is an error at once, never PENDING forever.
	unknown := b.client.AsyncResult(987654321)
	require.ErrorIs(t, unknown.Get(ctx, nil), queue.ErrJobNotFound)
	_, err = unknown.State(ctx)
	require.ErrorIs(t, err, queue.ErrJobNotFound)
	require.ErrorIs(t, unknown.Forget(ctx), queue.ErrJobNotFound)

	// A result that does not fit the caller's type says so.
	ok, err := b.client.Delay(ctx, sendEmail{})
	require.NoError(t, err)
	b.finish(t, ok.ID, "succeeded", `"text"`, `[]`)
	var n int
	require.ErrorContains(t, ok.AsyncResult().Get(ctx, &n), "decode result")
}

// Without notifications (a worker that sends none, or a lost connection)
// Get still returns, by polling.
func TestAsyncResultPollingFallback(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := setup(t, nil)
	e, err := b.client.Delay(ctx, sendEmail{})
	require.NoError(t, err)
	r := e.AsyncResult()
	r.PollInterval = 20 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- r.Get(ctx, nil) }()
	_, err = b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, `UPDATE pgq.jobs SET state = 'succeeded' WHERE id = $1`), e.ID)
	require.NoError(t, err)
	require.NoError(t, <-done)
}

func TestGroupResult(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := setup(t, nil)
	var ids []int64
	for range 3 {
		e, err := b.client.Delay(ctx, sendEmail{})
		require.NoError(t, err)
		ids = append(ids, e.ID)
	}
	g := b.client.GroupResult(ids[2], ids[0], ids[1]) // any order: results follow it
	counts, err := g.Counts(ctx)
	require.NoError(t, err)
	require.Equal(t, queue.GroupCounts{Total: 3, Waiting: 3}, counts)
	require.False(t, counts.Ready())

	joined := make(chan []json.RawMessage, 1)
	go func() {
		res, err := g.Join(ctx)
		if err != nil {
			t.Error(err)
		}
		joined <- res
	}()
	for i, id := range ids {
		b.finish(t, id, "succeeded", `{"i": `+string(rune('0'+i))+`}`, `[]`)
	}
	res := <-joined
	require.Len(t, res, 3)
	require.JSONEq(t, `{"i": 2}`, string(res[0]))
	require.JSONEq(t, `{"i": 0}`, string(res[1]))
	require.JSONEq(t, `{"i": 1}`, string(res[2]))
	counts, err = g.Counts(ctx)
	require.NoError(t, err)
	require.True(t, counts.Ready())
	require.Equal(t, 3, counts.Completed)

	// One failed member: Join reports it once all have finished.
	e, err := b.client.Delay(ctx, sendEmail{})
	require.NoError(t, err)
	b.finish(t, e.ID, "failed", "", `[{"attempt":1,"at":"2026-11-29T10:00:00Z","error":"boom"}]`)
	_, err = b.client.GroupResult(ids[0], e.ID).Join(ctx)
	require.ErrorIs(t, err, queue.ErrJobFailed)
	counts, err = b.client.GroupResult(ids[0], e.ID).Counts(ctx)
	require.NoError(t, err)
	require.Equal(t, queue.GroupCounts{Total: 2, Completed: 1, Failed: 1}, counts)

	_, err = b.client.GroupResult(ids[0], 999999).Counts(ctx)
	require.ErrorIs(t, err, queue.ErrJobNotFound)
}
