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

// TestRestartWithSameIDRescuesJobs: a worker process died holding jobs, and
// a new process starts with the same worker id while the old row's
// heartbeat is still fresh. Its heartbeats would keep the maintenance
// leader from ever rescuing the dead process's jobs, so the new process
// rescues them itself at start: the attempt counts, a job with attempts
// left runs again, one without fails with the reason recorded.
func TestRestartWithSameIDRescuesJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worker.RegisterBuiltins(b.reg)
	ctx := context.Background()
	none := 0
	again := b.enqueue(t, queue.Raw{Task: worker.TaskNoop}, nil)
	spent := b.enqueue(t, queue.Raw{Task: worker.TaskNoop}, &queue.Options{MaxRetries: &none})

	// What the dead process left: its row, heartbeat fresh, and two jobs
	// running under its id.
	jobs := pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()
	_, err := b.db.Pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{b.db.Schema, "workers"}.Sanitize()+
		` (id, host, pid, queues, concurrency) VALUES ('fixed-id', 'gone', 1, '{default}', 1)`)
	require.NoError(t, err)
	_, err = b.db.Pool.Exec(ctx, `UPDATE `+jobs+` SET state = 'running', attempt = 1, worker_id = 'fixed-id',
		started_at = now() WHERE id = ANY($1)`, []int64{again, spent})
	require.NoError(t, err)

	b.start(t, b.config(func(c *worker.Config) {
		c.WorkerID = "fixed-id"
		c.RescueAfter = time.Hour // the maintenance leader would not rescue them for an hour
	}))
	b.waitState(t, again, queue.StateSucceeded)

	j := b.job(t, again)
	require.Equal(t, 2, j.Attempt, "the dead process's attempt counts")
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0].Error, "rescued when a new process started with its id")

	j = b.job(t, spent)
	require.Equal(t, queue.StateFailed, j.State, "out of attempts")
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0].Error, "stopped sending heartbeats")
}
