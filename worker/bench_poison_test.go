package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// BenchmarkDrainWithPoison drains b.N noop jobs at concurrency 1000, once
// alone and once with one poison job for every nine of them (a handler
// that panics, args that do not decode, an unknown task, a permanent
// failure, in turn, none retried), and reports the ordinary jobs per
// second: bad input must not slow the rest down (docs/reliability.md).
//
//	go test -run '^$' -bench DrainWithPoison -benchtime 20000x ./worker/
func BenchmarkDrainWithPoison(b *testing.B) {
	for _, poison := range []bool{false, true} {
		b.Run(fmt.Sprintf("poison=%v", poison), func(b *testing.B) { benchDrainPoison(b, poison) })
	}
}

type poisonTyped struct {
	N int `json:"n"`
}

func (poisonTyped) TaskName() string { return "bench.typed" }

func benchDrainPoison(b *testing.B, poison bool) {
	bu := setupB(b)
	ctx := context.Background()
	none := 0
	bu.reg.HandleFunc("bench.panic", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		panic("bench: poison")
	}, &worker.TaskOptions{MaxRetries: &none})
	worker.Register(bu.reg, func(_ context.Context, job *worker.Job[poisonTyped]) (any, error) {
		return job.Args.N, nil
	}, &worker.TaskOptions{MaxRetries: &none})
	noRetry := &queue.Options{MaxRetries: &none}
	poisons := []queue.Request{
		{Args: queue.Raw{Task: "bench.panic"}, Options: noRetry},
		{Args: queue.Raw{Task: "bench.typed", Args: json.RawMessage(`{"n":"x"}`)}, Options: noRetry},
		{Args: queue.Raw{Task: "bench.nobody"}, Options: noRetry},
		{Args: worker.FailArgs{Message: "poison", Permanent: true}, Options: noRetry},
	}
	var reqs []queue.Request
	bad := 0
	for i := range b.N {
		reqs = append(reqs, queue.Request{Args: queue.Raw{Task: worker.TaskNoop}})
		if poison && i%9 == 8 {
			reqs = append(reqs, poisons[bad%len(poisons)])
			bad++
		}
		if len(reqs) >= 10000 || i == b.N-1 {
			_, err := bu.client.EnqueueMany(ctx, reqs)
			require.NoError(b, err)
			reqs = reqs[:0]
		}
	}
	_, err := bu.db.Pool.Exec(ctx, "ANALYZE "+bu.db.Schema+".jobs")
	require.NoError(b, err)

	w, err := worker.New(bu.db.Pool, bu.reg, &worker.Config{
		Schema: bu.db.Schema, Logger: testLogger(), Burst: true, Concurrency: 1000, PollInterval: time.Minute,
	})
	require.NoError(b, err)
	b.ResetTimer()
	start := time.Now()
	require.NoError(b, w.Run(ctx))
	elapsed := time.Since(start)
	b.StopTimer()

	var succeeded, failed int
	require.NoError(b, bu.db.Pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE state = 'failed') FROM "+
		bu.db.Schema+".jobs").Scan(&succeeded, &failed))
	require.Equal(b, b.N, succeeded, "every ordinary job succeeded")
	require.Equal(b, bad, failed, "every poison job failed")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ordinary-jobs/s")
	b.ReportMetric(float64(b.N+bad)/elapsed.Seconds(), "all-jobs/s")
}
