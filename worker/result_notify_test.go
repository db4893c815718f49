package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// The worker announces finished jobs on <schema>.results (what
// AsyncResult.Get waits on): successes and final failures, in batches,
// and not attempts that will be retried.
func TestWorkerAnnouncesFinishedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	conn := pgtest.Conn(t)
	_, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{schema.Channel(b.db.Schema, "results")}.Sanitize())
	require.NoError(t, err)

	worker.RegisterBuiltins(b.reg)
	var attempts atomic.Int32
	b.reg.HandleFunc("flaky.once", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		if attempts.Add(1) == 1 {
			return nil, worker.Retry(time.Millisecond)
		}
		return "ok", nil
	}, nil)
	ok := b.enqueue(t, queue.Raw{Task: worker.TaskEcho}, nil)
	bad := b.enqueue(t, queue.Raw{Task: worker.TaskFail, Args: []byte(`{"message":"x","permanent":true}`)}, nil)
	flaky := b.enqueue(t, queue.Raw{Task: "flaky.once"}, nil)

	r := b.start(t, b.config(nil))
	defer func() { require.NoError(t, r.stop(t)) }()

	want := map[int64]bool{ok: true, bad: true, flaky: true}
	seen := map[int64]int{}
	for len(seen) < len(want) {
		n, err := conn.WaitForNotification(ctx)
		require.NoError(t, err, "announced so far: %v", seen)
		for _, s := range strings.Split(n.Payload, ",") {
			id, err := strconv.ParseInt(s, 10, 64)
			require.NoError(t, err)
			seen[id]++
			if id == flaky {
				require.Equal(t, queue.StateSucceeded, b.job(t, id).State, "announced only once it has finished")
			}
		}
	}
	require.Equal(t, map[int64]int{ok: 1, bad: 1, flaky: 1}, seen)

	// And Get, waiting on those announcements, sees each outcome.
	var echoed any
	require.NoError(t, b.client.AsyncResult(ok).Get(ctx, &echoed))
	err = b.client.AsyncResult(bad).Get(ctx, nil)
	require.True(t, errors.Is(err, queue.ErrJobFailed), "got %v", err)
}
