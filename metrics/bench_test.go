package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/metrics"
	"github.com/pgq/pgq/worker"
)

// BenchmarkWorkerMetrics times one attempt's updates (Started, then
// Finished) spread over 20 tasks in 2 queues, from one goroutine and from
// all of them at once:
//
//	go test -run '^$' -bench WorkerMetrics ./metrics/
func BenchmarkWorkerMetrics(b *testing.B) {
	m := metrics.NewWorkerMetrics()
	var starts []worker.Start
	var events []worker.Event
	for i := range 20 {
		q, task := fmt.Sprintf("queue%d", i%2), fmt.Sprintf("task%d", i)
		starts = append(starts, worker.Start{Task: task, Queue: q, Attempt: 1, Wait: 3 * time.Millisecond})
		events = append(events, worker.Event{Task: task, Queue: q, Attempt: 1, State: "succeeded", Duration: time.Millisecond})
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.Started(starts[i%20])
			m.Finished(events[i%20])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.Started(starts[i%20])
				m.Finished(events[i%20])
				i++
			}
		})
	})
}

// BenchmarkCollect times one scrape of the Collector over a table of
// 1,000,000 finished jobs (20 tasks, 2 queues) and 10,000 waiting ones,
// without and with the finished counts:
//
//	go test -run '^$' -bench Collect -benchtime 20x ./metrics/
func BenchmarkCollect(b *testing.B) {
	ctx := context.Background()
	d := pgtest.New(b)
	_, err := d.Pool.Exec(ctx, fmt.Sprintf(`
		INSERT INTO %[1]s.jobs (task, queue, state, finished_at)
		SELECT 'task' || (i %% 20), 'queue' || (i %% 2), (ARRAY['succeeded', 'succeeded', 'succeeded', 'failed', 'cancelled'])[1 + i %% 5], now()
		  FROM generate_series(1, 1000000) AS i;
		INSERT INTO %[1]s.jobs (task, queue, state)
		SELECT 'task' || (i %% 20), 'queue' || (i %% 2), 'available'
		  FROM generate_series(1, 10000) AS i;`, d.Schema))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.Pool.Exec(ctx, "VACUUM ANALYZE "+d.Schema+".jobs"); err != nil {
		b.Fatal(err)
	}
	for _, count := range []bool{false, true} {
		b.Run(fmt.Sprintf("count-finished=%t", count), func(b *testing.B) {
			c, err := metrics.NewCollector(d.Pool, d.Schema, &metrics.CollectorConfig{CountFinished: count})
			if err != nil {
				b.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			for b.Loop() {
				fams, err := reg.Gather()
				if err != nil || len(fams) == 0 {
					b.Fatalf("gather: %v", err)
				}
			}
		})
	}
}
