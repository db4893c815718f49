package worker_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// BenchmarkDrain measures how fast one worker drains a backlog of b.N noop
// jobs (bulk-enqueued with COPY before the timer starts), from Run to the
// last outcome stored. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench Drain -benchtime 100000x ./worker/
func BenchmarkDrain(b *testing.B) {
	for _, conc := range []int{100, 1000} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			benchDrain(b, conc)
		})
	}
}

// benchDrain drains with the default Config: no observer, tracing
// through the global provider (unset in the test). It reports the
// worker's CPU time per job as well as jobs/s (see benchDrainWith).
func benchDrain(b *testing.B, concurrency int) {
	benchDrainWith(b, concurrency, func(*worker.Config) {})
}

func setupB(b *testing.B) *bundle {
	// pgtest.New takes a testing.TB; the bundle is the same as a test's.
	d := newDB(b)
	c, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(b, err)
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	return &bundle{db: d, client: c, reg: reg, events: newEventLog()}
}
