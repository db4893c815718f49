package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

type blockArgs struct {
	Key string `json:"key"`
}

func (blockArgs) TaskName() string { return "test.block" }

// blocker registers test.block: it reports each start on started and
// returns what release sends, or its context's cause when that ends
// (unless ignoreCtx).
type blocker struct {
	started chan int64
	release chan error
}

func (b *bundle) registerBlocker(ignoreCtx bool) *blocker {
	bl := &blocker{started: make(chan int64, 16), release: make(chan error, 16)}
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[blockArgs]) (any, error) {
		bl.started <- job.ID
		if ignoreCtx {
			return nil, <-bl.release
		}
		select {
		case err := <-bl.release:
			return nil, err
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}, fastRetry)
	return bl
}

func (bl *blocker) waitStart(t *testing.T) int64 {
	t.Helper()
	select {
	case id := <-bl.started:
		return id
	case <-time.After(waitTimeout):
		t.Fatal("handler did not start")
		return 0
	}
}

// TestRevokeTerminateRunningJob: a running job revoked with terminate has
// its handler's context cancelled (cause ErrRevoked) within a second of
// the revoke, through the control channel, and ends cancelled, not
// retried, with the reason recorded.
func TestRevokeTerminateRunningJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl := b.registerBlocker(false)
	b.start(t, b.config(nil))
	id := b.enqueue(t, blockArgs{}, &queue.Options{MaxRetries: queue.Ptr(5)})
	bl.waitStart(t)

	start := time.Now()
	rv, err := b.client.Revoke(context.Background(), id, true)
	require.NoError(t, err)
	require.Equal(t, queue.StateRunning, rv.State)
	require.True(t, rv.Terminating)
	ev := b.waitState(t, id, queue.StateCancelled)
	took := time.Since(start)
	require.Less(t, took, time.Second, "cancelled within a second of the revoke")
	require.ErrorIs(t, ev.Err, worker.ErrRevoked)
	t.Logf("revoke to cancelled: %s", took)

	j := b.job(t, id)
	require.Equal(t, queue.StateCancelled, j.State)
	require.Equal(t, 1, j.Attempt, "not retried")
	require.NotNil(t, j.FinishedAt)
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0].Error, "revoked: terminated while running")

	_, err = b.client.Revoke(context.Background(), id, true)
	require.ErrorIs(t, err, queue.ErrJobFinished)
	err = b.client.AsyncResult(id).Get(context.Background(), nil)
	require.ErrorIs(t, err, queue.ErrJobCancelled)
}

// TestRevokeFallsBackToHeartbeat: without LISTEN, the heartbeat finds the
// revoke mark and cancels the handler.
func TestRevokeFallsBackToHeartbeat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl := b.registerBlocker(false)
	b.start(t, b.config(func(c *worker.Config) {
		c.NoListen = true
		c.HeartbeatInterval = 100 * time.Millisecond
		c.PollInterval = 50 * time.Millisecond
	}))
	id := b.enqueue(t, blockArgs{}, nil)
	bl.waitStart(t)
	_, err := b.client.Revoke(context.Background(), id, true)
	require.NoError(t, err)
	ev := b.waitState(t, id, queue.StateCancelled)
	require.ErrorIs(t, ev.Err, worker.ErrRevoked)
}

// TestRevokeIgnoredContext: a handler that ignores its cancelled context
// loses its slot after CancelGrace, and the job ends cancelled.
func TestRevokeIgnoredContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl := b.registerBlocker(true)
	b.start(t, b.config(func(c *worker.Config) { c.CancelGrace = 50 * time.Millisecond }))
	id := b.enqueue(t, blockArgs{}, nil)
	bl.waitStart(t)
	_, err := b.client.Revoke(context.Background(), id, true)
	require.NoError(t, err)
	ev := b.waitState(t, id, queue.StateCancelled)
	require.ErrorIs(t, ev.Err, worker.ErrRevoked)
	bl.release <- nil // the abandoned handler returns; its outcome is dropped
}

// TestRevokeWithoutTerminate: a running job revoked without terminate
// finishes its attempt; when that attempt fails, it is not retried but
// ends cancelled.
func TestRevokeWithoutTerminate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl := b.registerBlocker(false)
	b.start(t, b.config(nil))
	id := b.enqueue(t, blockArgs{}, &queue.Options{MaxRetries: queue.Ptr(5)})
	bl.waitStart(t)
	rv, err := b.client.Revoke(context.Background(), id, false)
	require.NoError(t, err)
	require.False(t, rv.Terminating)
	bl.release <- errors.New("boom")
	b.waitState(t, id, queue.StateCancelled)
	j := b.job(t, id)
	require.Equal(t, 1, j.Attempt)
	require.Contains(t, j.Errors[len(j.Errors)-1].Error, "revoked: not run again (this attempt: boom)")

	// A revoked job that succeeds anyway stays succeeded.
	id2 := b.enqueue(t, blockArgs{}, nil)
	bl.waitStart(t)
	_, err = b.client.Revoke(context.Background(), id2, false)
	require.NoError(t, err)
	bl.release <- nil
	b.waitState(t, id2, queue.StateSucceeded)
}

// TestRevokeThenRetryByHand: a revoked job can be retried by hand and then
// runs normally, with its history kept.
func TestRevokeThenRetryByHand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl := b.registerBlocker(false)
	b.start(t, b.config(nil))
	id := b.enqueue(t, blockArgs{}, nil)
	bl.waitStart(t)
	_, err := b.client.Revoke(context.Background(), id, true)
	require.NoError(t, err)
	b.waitState(t, id, queue.StateCancelled)

	require.NoError(t, b.client.Retry(context.Background(), id))
	require.Equal(t, id, bl.waitStart(t), "woken at once and run again")
	bl.release <- nil
	b.waitState(t, id, queue.StateSucceeded)
	j := b.job(t, id)
	require.Equal(t, 1, j.Attempt, "attempts start again from 0")
	require.Len(t, j.Errors, 1, "the revoke stays in the history")
}
