package metrics_test

import (
	"fmt"
	"testing"
	"time"

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
