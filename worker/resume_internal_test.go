package worker

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
)

func TestPositionOrderIsTheFetchIndexOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	first := position{priority: 9, runAt: t0.Add(time.Hour), id: 50}
	order := []position{
		first,
		{priority: 5, runAt: t0, id: 7},
		{priority: 5, runAt: t0, id: 8},
		{priority: 5, runAt: t0.Add(time.Microsecond), id: 1},
		{priority: 0, runAt: t0.Add(-time.Hour), id: 2},
	}
	for i := 1; i < len(order); i++ {
		require.True(t, order[i].after(order[i-1]), "%d after %d", i, i-1)
		require.False(t, order[i-1].after(order[i]), "%d not after %d", i-1, i)
	}
	require.False(t, first.after(first))
}

// resumeBundle is a worker in burst mode over a backlog, with a handler
// that records the order in which jobs start.
type resumeBundle struct {
	client *queue.Client
	w      *Worker

	mu      sync.Mutex
	started []string // args "name" in start order
	onStart func(n int, name string)
}

func newResumeBundle(t *testing.T, concurrency int) *resumeBundle {
	t.Helper()
	d := pgtest.New(t)
	client, err := queue.NewClient(d.Pool, &queue.Config{Schema: d.Schema})
	require.NoError(t, err)
	b := &resumeBundle{client: client}
	reg := NewRegistry()
	reg.HandleFunc("resume.rec", func(ctx context.Context, job *Job[json.RawMessage]) (any, error) {
		var a struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(job.Args, &a); err != nil {
			return nil, Permanent(err)
		}
		b.mu.Lock()
		b.started = append(b.started, a.Name)
		n, hook := len(b.started), b.onStart
		b.mu.Unlock()
		if hook != nil {
			hook(n, a.Name)
		}
		return nil, nil
	}, nil)
	b.w, err = New(d.Pool, reg, &Config{Schema: d.Schema, Logger: discardLogger(), Concurrency: concurrency, Burst: true})
	require.NoError(t, err)
	return b
}

func (b *resumeBundle) backlog(t *testing.T, n int, name string) {
	t.Helper()
	reqs := make([]queue.Request, n)
	for i := range reqs {
		reqs[i] = queue.Request{Args: queue.Raw{Task: "resume.rec", Args: json.RawMessage(`{"name":"` + name + `"}`)}}
	}
	_, err := b.client.EnqueueMany(context.Background(), reqs)
	require.NoError(t, err)
}

// enqueueAt enqueues one job named name when the n-th job starts, and
// reports the enqueue's error on the channel.
func (b *resumeBundle) enqueueAt(n int, name string, opts *queue.Options) <-chan error {
	done := make(chan error, 1)
	var once sync.Once
	b.onStart = func(started int, _ string) {
		if started == n {
			once.Do(func() {
				_, err := b.client.Enqueue(context.Background(),
					queue.Raw{Task: "resume.rec", Args: json.RawMessage(`{"name":"` + name + `"}`)}, opts)
				done <- err
			})
		}
	}
	return done
}

func (b *resumeBundle) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, b.w.Run(ctx))
}

func (b *resumeBundle) indexOf(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range b.started {
		if s == name {
			return i
		}
	}
	return -1
}

// A backlog is worked through with resumed claims, and every job runs
// once.
func TestBacklogIsClaimedWithResumedWalks(t *testing.T) {
	t.Parallel()
	b := newResumeBundle(t, 20)
	b.backlog(t, 1000, "backlog")
	b.run(t)
	require.Len(t, b.started, 1000)
	require.Positive(t, b.w.fetcher.resume.resumed, "a backlog must be claimed with resumed walks")
	var succeeded, attempts int
	require.NoError(t, b.client.Pool().QueryRow(context.Background(),
		"SELECT count(*) FILTER (WHERE state = 'succeeded'), coalesce(max(attempt), 0) FROM "+b.w.cfg.Schema+".jobs").Scan(&succeeded, &attempts))
	require.Equal(t, 1000, succeeded)
	require.Equal(t, 1, attempts, "no job ran twice")
}

// A job more urgent than the backlog, enqueued while resumed claims are
// under way, still goes before the rest of the backlog.
func TestHigherPriorityGoesFirstDuringResumedWalks(t *testing.T) {
	t.Parallel()
	b := newResumeBundle(t, 10)
	b.backlog(t, 1000, "backlog")
	urgent := b.enqueueAt(100, "urgent", &queue.Options{Priority: queue.Ptr(9)})
	b.run(t)
	require.NoError(t, <-urgent)
	require.Positive(t, b.w.fetcher.resume.resumed)
	i := b.indexOf("urgent")
	require.Positive(t, i)
	// Claimed by the next claim after its commit, a few batches of slots
	// later (the other slots keep going while it commits), not after the
	// backlog.
	require.Less(t, i, 300, "the urgent job waited behind the backlog")
}

// A job that sorts before the resumed position (its run time is in the
// past) is not lost: the worker walks from the front again when the
// backlog ahead runs out, and burst mode does not end before it ran.
func TestJobBehindThePositionStillRuns(t *testing.T) {
	t.Parallel()
	b := newResumeBundle(t, 10)
	b.backlog(t, 400, "backlog")
	late := b.enqueueAt(50, "late", &queue.Options{ETA: time.Now().Add(-time.Hour)})
	b.run(t)
	require.NoError(t, <-late)
	require.Positive(t, b.w.fetcher.resume.resumed)
	require.GreaterOrEqual(t, b.indexOf("late"), 0, "the job behind the position never ran")
	require.Len(t, b.started, 401)
}
