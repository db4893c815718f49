package workflow_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

// BenchmarkChord compares draining b.N independent noop jobs with draining
// a chord of b.N noop members and a noop callback, on one worker, from the
// worker's start to the last job stored (enqueue happens before the
// timer). The target: the chord within 1.5 times the independent
// jobs' time. Run it as
//
//	go test -run '^$' -bench Chord -benchtime 10000x -count 3 ./workflow/
func BenchmarkChord(b *testing.B) {
	b.Run("independent", func(b *testing.B) { benchDrain(b, false) })
	b.Run("chord", func(b *testing.B) { benchDrain(b, true) })
}

func benchDrain(b *testing.B, chord bool) {
	d := setupBench(b)
	ctx := context.Background()
	noop := queue.Raw{Task: worker.TaskNoop}
	var root int64
	enqueueStart := time.Now()
	if chord {
		members := make([]*workflow.Signature, b.N)
		for i := range members {
			members[i] = workflow.Task(noop, nil)
		}
		r, err := workflow.Apply(ctx, d.client, workflow.Chord(workflow.Group(members...), workflow.Task(noop, nil)))
		require.NoError(b, err)
		root = r.ID
	} else {
		reqs := make([]queue.Request, b.N)
		for i := range reqs {
			reqs[i] = queue.Request{Args: noop}
		}
		_, err := d.client.EnqueueMany(ctx, reqs)
		require.NoError(b, err)
	}
	enqueued := time.Since(enqueueStart)
	_, err := d.db.Pool.Exec(ctx, "ANALYZE "+d.db.Schema+".jobs")
	require.NoError(b, err)

	b.ResetTimer()
	start := time.Now()
	// A burst worker stops when nothing is runnable; a chord's callback
	// becomes runnable only when the last member's completion is written,
	// so run bursts until every job has succeeded.
	for scalar[int](b, d, "SELECT count(*) FROM pgq.jobs WHERE state <> 'succeeded'") > 0 {
		w, err := worker.New(d.db.Pool, d.reg, &worker.Config{
			Schema: d.db.Schema, Logger: testLogger(), Burst: true, Concurrency: 100, PollInterval: time.Minute,
		})
		require.NoError(b, err)
		require.NoError(b, w.Run(ctx))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if chord {
		var out []any
		require.NoError(b, workflow.ResultFor(d.client, root).Get(ctx, &out))
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	b.ReportMetric(float64(enqueued.Milliseconds()), "enqueue-ms")
}

func setupBench(b *testing.B) *bundle {
	d := setup(b)
	worker.RegisterBuiltins(d.reg)
	return d
}

// BenchmarkCompleteSQL isolates the database's share: b.N running jobs,
// independent or members of one chord, completed by plain UPDATEs of 100
// rows each, as a worker's batched completion writes them. The difference
// between the two is what the workflow trigger costs per member.
//
//	go test -run '^$' -bench CompleteSQL -benchtime 10000x -count 3 ./workflow/
func BenchmarkCompleteSQL(b *testing.B) {
	b.Run("independent", func(b *testing.B) { benchCompleteSQL(b, false) })
	b.Run("chord", func(b *testing.B) { benchCompleteSQL(b, true) })
}

func benchCompleteSQL(b *testing.B, chord bool) {
	d := setupBench(b)
	ctx := context.Background()
	noop := queue.Raw{Task: worker.TaskNoop}
	if chord {
		members := make([]*workflow.Signature, b.N)
		for i := range members {
			members[i] = workflow.Task(noop, nil)
		}
		_, err := workflow.Apply(ctx, d.client, workflow.Chord(workflow.Group(members...), workflow.Task(noop, nil)))
		require.NoError(b, err)
	} else {
		reqs := make([]queue.Request, b.N)
		for i := range reqs {
			reqs[i] = queue.Request{Args: noop}
		}
		_, err := d.client.EnqueueMany(ctx, reqs)
		require.NoError(b, err)
	}
	d.exec(b, "UPDATE pgq.jobs SET state = 'running', attempt = 1, worker_id = 'w' WHERE state = 'available'")
	rows, err := d.db.Pool.Query(ctx, schema.Rewrite(d.db.Schema, "SELECT id FROM pgq.jobs WHERE state = 'running' ORDER BY id"))
	require.NoError(b, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(b, err)
	b.ResetTimer()
	start := time.Now()
	for len(ids) > 0 {
		n := min(100, len(ids))
		d.exec(b, "UPDATE pgq.jobs SET state = 'succeeded', finished_at = now(), result = 'null' WHERE id = ANY($1)", ids[:n])
		ids = ids[n:]
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}
