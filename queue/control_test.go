package queue_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
)

// TestRevokeWaitingJobs: scheduled, available and retrying jobs end
// cancelled at once, with the reason recorded and announced to waiters;
// finished and unknown jobs give typed errors.
func TestRevokeWaitingJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	avail, err := b.client.Enqueue(ctx, sendEmail{To: "a"}, nil)
	require.NoError(t, err)
	sched, err := b.client.Enqueue(ctx, sendEmail{To: "b"}, &queue.Options{Countdown: 3600e9})
	require.NoError(t, err)
	require.Equal(t, queue.StateScheduled, sched.State)

	for _, e := range []queue.Enqueued{avail, sched} {
		rv, err := b.client.Revoke(ctx, e.ID, false)
		require.NoError(t, err)
		require.Equal(t, queue.StateCancelled, rv.State)
		j, err := b.client.Job(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, queue.StateCancelled, j.State)
		require.NotNil(t, j.FinishedAt)
		require.Equal(t, queue.RevokeReasonWaiting, j.Errors[0].Error)
		require.ErrorIs(t, e.AsyncResult().Get(ctx, nil), queue.ErrJobCancelled)

		_, err = b.client.Revoke(ctx, e.ID, true)
		require.ErrorIs(t, err, queue.ErrJobFinished)
		require.ErrorContains(t, err, "already finished (cancelled)")
	}
	_, err = b.client.Revoke(ctx, 987654, true)
	require.ErrorIs(t, err, queue.ErrJobNotFound)
}

// TestRetryAndDeleteByHand covers the states Retry and Delete accept.
func TestRetryAndDeleteByHand(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	e, err := b.client.Enqueue(ctx, sendEmail{To: "a"}, nil)
	require.NoError(t, err)
	require.ErrorIs(t, b.client.Retry(ctx, e.ID), queue.ErrJobNotRetryable, "an available job")
	_, err = b.client.Revoke(ctx, e.ID, false)
	require.NoError(t, err)

	require.NoError(t, b.client.Retry(ctx, e.ID))
	j, err := b.client.Job(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, queue.StateAvailable, j.State)
	require.Equal(t, 0, j.Attempt)
	require.Nil(t, j.FinishedAt)
	require.Len(t, j.Errors, 1, "history kept")
	require.ErrorIs(t, b.client.Retry(ctx, 987654), queue.ErrJobNotFound)

	// Delete: any job that is not running.
	require.NoError(t, b.client.Delete(ctx, e.ID))
	_, err = b.client.Job(ctx, e.ID)
	require.ErrorIs(t, err, queue.ErrJobNotFound)
	require.ErrorIs(t, b.client.Delete(ctx, e.ID), queue.ErrJobNotFound)

	running, err := b.client.Enqueue(ctx, sendEmail{To: "r"}, nil)
	require.NoError(t, err)
	_, err = b.db.Pool.Exec(ctx, "UPDATE "+b.db.Schema+".jobs SET state = 'running', worker_id = 'w1', attempt = 1 WHERE id = $1", running.ID)
	require.NoError(t, err)
	require.ErrorIs(t, b.client.Delete(ctx, running.ID), queue.ErrJobRunning)
}

// TestPurgeQueue deletes the waiting jobs of one queue only.
func TestPurgeQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	for range 3 {
		_, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "mail"})
		require.NoError(t, err)
	}
	_, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "mail", Countdown: 3600e9})
	require.NoError(t, err)
	keep, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "other"})
	require.NoError(t, err)
	done, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "mail"})
	require.NoError(t, err)
	_, err = b.client.Revoke(ctx, done.ID, false) // finished: stays
	require.NoError(t, err)

	n, err := b.client.CountWaiting(ctx, "mail")
	require.NoError(t, err)
	require.EqualValues(t, 4, n)
	n, err = b.client.PurgeQueue(ctx, "mail")
	require.NoError(t, err)
	require.EqualValues(t, 4, n)
	require.Equal(t, 2, b.count(t, "true"), "the other queue's job and the finished one stay")
	_, err = b.client.Job(ctx, keep.ID)
	require.NoError(t, err)
	_, err = b.client.PurgeQueue(ctx, "bad name")
	require.ErrorIs(t, err, queue.ErrInvalid)
}

// TestPauseResumeQueueState: pausing and resuming is recorded, idempotent,
// listed, and resume wakes the queue's workers.
func TestPauseResumeQueueState(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	l := listen(t, b)
	_, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Queue: "mail"})
	require.NoError(t, err)
	require.Equal(t, "mail", l.next())

	require.NoError(t, b.client.PauseQueue(ctx, "mail"))
	require.NoError(t, b.client.PauseQueue(ctx, "mail"))
	require.NoError(t, b.client.PauseQueue(ctx, "empty"))
	qs, err := b.client.ListQueues(ctx)
	require.NoError(t, err)
	require.Len(t, qs, 2)
	require.Equal(t, "empty", qs[0].Name)
	require.True(t, qs[0].Paused)
	require.Equal(t, "mail", qs[1].Name)
	require.True(t, qs[1].Paused)
	require.NotNil(t, qs[1].PausedAt)
	require.EqualValues(t, 1, qs[1].Waiting)
	require.Empty(t, l.drain(b), "pausing wakes nobody")

	require.NoError(t, b.client.ResumeQueue(ctx, "mail"))
	require.Equal(t, []string{"mail"}, l.drain(b), "resume wakes the queue's workers")
	qs, err = b.client.ListQueues(ctx)
	require.NoError(t, err)
	require.False(t, qs[1].Paused)
	require.Nil(t, qs[1].PausedAt)
	require.ErrorIs(t, b.client.PauseQueue(ctx, ""), queue.ErrInvalid)
}
