package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// Figures and the machine they were measured on are in docs/performance.md.
//
//	go test -run '^$' -bench . -benchtime 5x ./queue

type noop struct{}

func (noop) TaskName() string { return "pgq.noop" }

func benchClient(b *testing.B) (*pgtest.DB, *queue.Client) {
	db := pgtest.New(b)
	c, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(b, err)
	return db, c
}

// BenchmarkCopyEnqueue100k enqueues 100,000 jobs per iteration in one
// EnqueueMany call (reserve ids + COPY) and reports jobs/s.
func BenchmarkCopyEnqueue100k(b *testing.B) {
	ctx := context.Background()
	_, c := benchClient(b)
	const n = 100_000
	reqs := make([]queue.Request, n)
	for i := range reqs {
		reqs[i] = queue.Request{Args: noop{}}
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		_, err := c.EnqueueMany(ctx, reqs)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkBusinessTx compares a business transaction of one INSERT with
// the same transaction plus one EnqueueTx (workload 4 of the peer
// benchmark): the enqueue's cost is the ratio of the two ns/op. The
// enqueue runs in a plain pgx.Tx (its NOTIFY inside) and in a *queue.Tx
// from Client.BeginFunc (the NOTIFY sent after the commit).
func BenchmarkBusinessTx(b *testing.B) {
	ctx := context.Background()
	db, c := benchClient(b)
	_, err := db.Pool.Exec(ctx, schema.Rewrite(db.Schema, "CREATE TABLE pgq.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)"))
	require.NoError(b, err)
	insert := schema.Rewrite(db.Schema, "INSERT INTO pgq.orders (note) VALUES ('x')")

	run := func(b *testing.B, enqueue, clientTx bool) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				work := func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, insert); err != nil {
						return err
					}
					if enqueue {
						_, err := c.EnqueueTx(ctx, tx, noop{}, nil)
						return err
					}
					return nil
				}
				var err error
				if clientTx {
					err = c.BeginFunc(ctx, func(tx *queue.Tx) error { return work(tx) })
				} else {
					err = pgx.BeginFunc(ctx, db.Pool, work)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
	}
	b.Run("insert-only", func(b *testing.B) { run(b, false, false) })
	b.Run("insert+enqueue", func(b *testing.B) { run(b, true, false) })
	b.Run("insert+enqueue/client-tx", func(b *testing.B) { run(b, true, true) })
}
