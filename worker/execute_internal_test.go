package worker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/pgq/pgq/db"
)

// BenchmarkAttempts times the worker's own work per job, without the
// database: claimed rows made into executions and held, each run in its
// goroutine by a noop handler, its outcome decided and handed to the
// completer, whose channel the benchmark drains, then unheld. Jobs come
// in batches of 1,000, as BenchmarkDrain's claims do at concurrency 1000.
// The claim, the completion statements and pgx are not in it.
//
//	go test -run '^$' -bench Attempts -count 6 ./worker/
func BenchmarkAttempts(b *testing.B) {
	const batch = 1000
	reg := NewRegistry()
	RegisterBuiltins(reg)
	w, err := New(&pgxpool.Pool{}, reg, &Config{Logger: discardLogger(), Concurrency: batch, TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	rows := make([]*db.ClaimJobsRow, batch)
	for i := range rows {
		rows[i] = &db.ClaimJobsRow{
			ID: int64(i + 1), Task: TaskNoop, Queue: "default", Args: json.RawMessage(`{}`), Meta: json.RawMessage(`{}`),
			Attempt: 1, MaxRetries: 3, RunAt: now, CreatedAt: now, StartedAt: now,
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for left := b.N; left > 0; left -= batch {
		n := min(left, batch)
		w.fetcher.startJobs(rows[:n])
		outs := make([]*outcome, 0, n)
		for range n {
			o := <-w.completer.in
			outs = append(outs, &o)
		}
		w.unhold(outs)
	}
	b.StopTimer()
	w.execWG.Wait()
}
