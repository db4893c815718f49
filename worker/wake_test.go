package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// Every way in wakes an idle worker whose next poll is a minute away:
// the client's own transactions and Client.Begin send the wake-up after
// the commit, a caller's pgx.Tx carries it inside (queue/wake.go); so do
// staged enqueues, whose wake-up has a worker move them first.
func TestEveryEnqueuePathWakesIdleWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	worker.Register(b.reg, func(ctx context.Context, job *worker.Job[addArgs]) (any, error) { return nil, nil }, nil)
	b.start(t, b.config(func(c *worker.Config) { c.PollInterval = time.Minute }))

	// The first job proves the worker listens (it LISTENs before its
	// first fetch); it is then idle until the next poll.
	b.waitState(t, b.enqueue(t, addArgs{}, nil), queue.StateSucceeded)

	var opts *queue.Options // the pass's options: plain, then staged

	// batched enqueues with EnqueueBatched in a transaction from begin.
	batched := func(begin func(fn func(pgx.Tx) error) error) (int64, error) {
		var job *queue.BatchedJob
		err := begin(func(tx pgx.Tx) error {
			batch := &pgx.Batch{}
			var err error
			if job, err = b.client.EnqueueBatched(ctx, tx, batch, addArgs{}, opts); err != nil {
				return err
			}
			return tx.SendBatch(ctx, batch).Close()
		})
		if err != nil {
			return 0, err
		}
		e, err := job.Result()
		return e.ID, err
	}
	paths := []struct {
		name    string
		enqueue func() (int64, error)
	}{
		{"Enqueue", func() (int64, error) {
			e, err := b.client.Enqueue(ctx, addArgs{}, opts)
			return e.ID, err
		}},
		{"EnqueueMany", func() (int64, error) {
			e, err := b.client.EnqueueMany(ctx, []queue.Request{{Args: addArgs{}}})
			if err != nil {
				return 0, err
			}
			return e[0].ID, nil
		}},
		{"Begin+EnqueueTx", func() (int64, error) {
			tx, err := b.client.Begin(ctx)
			if err != nil {
				return 0, err
			}
			defer func() { _ = tx.Rollback(ctx) }()
			e, err := b.client.EnqueueTx(ctx, tx, addArgs{}, opts)
			if err != nil {
				return 0, err
			}
			return e.ID, tx.Commit(ctx)
		}},
		{"BeginFunc+EnqueueManyTx", func() (id int64, err error) {
			err = b.client.BeginFunc(ctx, func(tx *queue.Tx) error {
				e, err := b.client.EnqueueManyTx(ctx, tx, []queue.Request{{Args: addArgs{}}})
				if err == nil {
					id = e[0].ID
				}
				return err
			})
			return id, err
		}},
		{"BeginFunc+EnqueueBatched", func() (int64, error) {
			return batched(func(fn func(pgx.Tx) error) error {
				return b.client.BeginFunc(ctx, func(tx *queue.Tx) error { return fn(tx) })
			})
		}},
		{"pgx.Tx+EnqueueBatched", func() (int64, error) {
			return batched(func(fn func(pgx.Tx) error) error { return pgx.BeginFunc(ctx, b.db.Pool, fn) })
		}},
		{"pgx.Tx+EnqueueTx", func() (id int64, err error) {
			err = pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
				e, err := b.client.EnqueueTx(ctx, tx, addArgs{}, opts)
				id = e.ID
				return err
			})
			return id, err
		}},
	}
	// Staged jobs (EnqueueMany ignores the option) wake the workers that
	// move them, which wake the queue's.
	for _, opts = range []*queue.Options{nil, {Staged: true}} {
		for _, p := range paths {
			start := time.Now()
			id, err := p.enqueue()
			require.NoError(t, err, p.name)
			b.waitState(t, id, queue.StateSucceeded)
			latency := time.Since(start)
			t.Logf("%s (staged: %v): enqueue to stored success: %s", p.name, opts != nil, latency)
			require.Less(t, latency, 10*time.Second, "%s (staged: %v): woken by a NOTIFY, not by the one-minute poll", p.name, opts != nil)
		}
	}
}
