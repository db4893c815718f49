package queue_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// setState moves a job to a state, as a worker would.
func (b *bundle) setState(t *testing.T, id int64, state string) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), schema.Rewrite(b.db.Schema, "UPDATE pgq.jobs SET state = $2 WHERE id = $1"), id, state)
	require.NoError(t, err)
}

func TestUniqueScopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		scope queue.UniqueScope
		// whether a second enqueue is a duplicate while the first job is in
		// each state
		dupWhile map[string]bool
	}{
		{queue.UniqueWhilePending, map[string]bool{"available": true, "retrying": true, "running": false, "succeeded": false}},
		{queue.UniqueWhileActive, map[string]bool{"available": true, "retrying": true, "running": true, "succeeded": false}},
		{queue.UniqueForWindow, map[string]bool{"available": true, "retrying": true, "running": true, "succeeded": true, "failed": true}},
	}
	for _, tc := range cases {
		t.Run(string(tc.scope), func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			u := &queue.Unique{Key: "k", Scope: tc.scope}
			if tc.scope == queue.UniqueForWindow {
				u.Window = time.Hour // the test cannot straddle two hours... almost: see below
			}
			for state, dup := range tc.dupWhile {
				_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, "DELETE FROM pgq.jobs"))
				require.NoError(t, err)
				first, err := b.client.Enqueue(ctx, sendEmail{To: "a"}, &queue.Options{Unique: u})
				require.NoError(t, err)
				require.False(t, first.Duplicate)
				b.setState(t, first.ID, state)
				second, err := b.client.Enqueue(ctx, sendEmail{To: "b"}, &queue.Options{Unique: u})
				require.NoError(t, err)
				if tc.scope == queue.UniqueForWindow && !second.Duplicate && time.Now().Minute() == 0 {
					t.Skip("the hour changed between the two enqueues")
				}
				require.Equal(t, dup, second.Duplicate, "first job %s", state)
				if dup {
					require.Equal(t, first.ID, second.ID)
				} else {
					require.NotEqual(t, first.ID, second.ID)
				}
			}
		})
	}
}

func TestUniqueWindowKeyHasBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	j, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Unique: &queue.Unique{Key: "daily", Window: 24 * time.Hour}})
	require.NoError(t, err)
	var key, scope string
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, "SELECT unique_key, unique_scope FROM pgq.jobs WHERE id = $1"), j.ID).Scan(&key, &scope))
	day := time.Now().UTC().Truncate(24 * time.Hour).Unix()
	// The bucket comes from the database clock; allow for a day boundary.
	require.Contains(t, []string{"daily@" + itoa(day), "daily@" + itoa(day+86400), "daily@" + itoa(day-86400)}, key)
	require.Equal(t, "window", scope)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestUniqueDerivedFromArgs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	u := &queue.Options{Unique: &queue.Unique{}}
	a, err := b.client.Enqueue(ctx, queue.Raw{Task: "emails.send", Args: json.RawMessage(`{"to":"x","subject":"s"}`)}, u)
	require.NoError(t, err)
	// Same args with other key order and spacing: a duplicate.
	a2, err := b.client.Enqueue(ctx, queue.Raw{Task: "emails.send", Args: json.RawMessage(`{ "subject":"s", "to":"x" }`)}, u)
	require.NoError(t, err)
	require.True(t, a2.Duplicate)
	require.Equal(t, a.ID, a2.ID)
	// Other args, or another task with the same args: new jobs.
	c, err := b.client.Enqueue(ctx, queue.Raw{Task: "emails.send", Args: json.RawMessage(`{"to":"y","subject":"s"}`)}, u)
	require.NoError(t, err)
	require.False(t, c.Duplicate)
	d, err := b.client.Enqueue(ctx, queue.Raw{Task: "emails.other", Args: json.RawMessage(`{"to":"x","subject":"s"}`)}, u)
	require.NoError(t, err)
	require.False(t, d.Duplicate)
	var key string
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, "SELECT unique_key FROM pgq.jobs WHERE id = $1"), a.ID).Scan(&key))
	require.Regexp(t, `^emails\.send:[0-9a-f]{32}$`, key)
}

func TestUniqueReplaceDebounces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	opts := func(to string) *queue.Options {
		return &queue.Options{Countdown: time.Hour, Headers: map[string]any{"v": to},
			Unique: &queue.Unique{Key: "refresh", Scope: queue.UniqueWhilePending, Mode: queue.UniqueReplace}}
	}
	first, err := b.client.Enqueue(ctx, sendEmail{To: "1"}, opts("1"))
	require.NoError(t, err)
	require.False(t, first.Duplicate)
	require.False(t, first.Replaced)

	time.Sleep(20 * time.Millisecond) // so that the pushed run time is visibly later
	second, err := b.client.Enqueue(ctx, sendEmail{To: "2"}, opts("2"))
	require.NoError(t, err)
	require.True(t, second.Duplicate)
	require.True(t, second.Replaced)
	require.Equal(t, first.ID, second.ID)
	require.True(t, second.RunAt.After(first.RunAt), "debounce pushes the run time: %s then %s", first.RunAt, second.RunAt)
	var args, meta string
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, "SELECT args::text, meta::text FROM pgq.jobs WHERE id = $1"), first.ID).Scan(&args, &meta))
	require.JSONEq(t, `{"to":"2","subject":""}`, args)
	require.JSONEq(t, `{"v":"2"}`, meta)
	require.Equal(t, 1, b.count(t, "true"))

	// ReplaceArgs keeps the run time.
	third, err := b.client.Enqueue(ctx, sendEmail{To: "3"}, &queue.Options{Countdown: 5 * time.Hour,
		Unique: &queue.Unique{Key: "refresh", Scope: queue.UniqueWhilePending, Mode: queue.UniqueReplaceArgs}})
	require.NoError(t, err)
	require.True(t, third.Replaced)
	require.True(t, third.RunAt.Equal(second.RunAt), "run time kept: %s, was %s", third.RunAt, second.RunAt)

	// Once it runs, the pending-scoped key is free: a new job is made.
	b.setState(t, first.ID, "running")
	fourth, err := b.client.Enqueue(ctx, sendEmail{To: "4"}, opts("4"))
	require.NoError(t, err)
	require.False(t, fourth.Duplicate)
	require.NotEqual(t, first.ID, fourth.ID)
}

func TestUniqueReplaceLeavesRunningJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	u := &queue.Options{Unique: &queue.Unique{Key: "r", Mode: queue.UniqueReplace}}
	first, err := b.client.Enqueue(ctx, sendEmail{To: "1"}, u)
	require.NoError(t, err)
	b.setState(t, first.ID, "running")
	second, err := b.client.Enqueue(ctx, sendEmail{To: "2"}, u)
	require.NoError(t, err)
	require.True(t, second.Duplicate)
	require.False(t, second.Replaced)
	require.Equal(t, first.ID, second.ID)
	require.Equal(t, 1, b.count(t, `args->>'to' = '1'`))
}

func TestUniqueEnqueueTxIsOneStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cfg, err := pgxpool.ParseConfig(b.db.URL)
	require.NoError(t, err)
	tracer := &countingTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	client, err := queue.NewClient(pool, &queue.Config{Schema: b.db.Schema})
	require.NoError(t, err)
	// A first insert, then duplicates in each mode, and a mutex key.
	for _, opts := range []*queue.Options{
		{Unique: &queue.Unique{Scope: queue.UniqueWhilePending}},
		{Unique: &queue.Unique{Scope: queue.UniqueWhilePending}},
		{Unique: &queue.Unique{Scope: queue.UniqueWhilePending, Mode: queue.UniqueReplace}},
		{Unique: &queue.Unique{Scope: queue.UniqueWhilePending, Mode: queue.UniqueReplaceArgs}},
		{Unique: &queue.Unique{Key: "w", Window: time.Minute}},
		{MutexKey: "m"},
	} {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		tracer.mu.Lock()
		tracer.sqls = nil
		tracer.mu.Unlock()
		_, err = client.EnqueueTx(ctx, tx, sendEmail{}, opts)
		require.NoError(t, err)
		tracer.mu.Lock()
		require.Len(t, tracer.sqls, 1, "enqueue in a transaction must cost one round trip: %v", tracer.sqls)
		tracer.mu.Unlock()
		require.NoError(t, tx.Commit(ctx))
	}
	require.Equal(t, 3, b.count(t, "true"))
}

func TestUniqueConcurrentReplace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	const n = 100
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := b.client.Enqueue(ctx, sendEmail{Subject: itoa(int64(i))}, &queue.Options{
				Unique: &queue.Unique{Key: "same", Scope: queue.UniqueWhilePending, Mode: queue.UniqueReplace}})
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, b.count(t, "unique_key = 'same'"))
}

func TestUniqueAndMutexValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	long := string(make([]byte, 300))
	for name, o := range map[string]*queue.Options{
		"window too short":    {Unique: &queue.Unique{Key: "k", Window: time.Millisecond}},
		"window not seconds":  {Unique: &queue.Unique{Key: "k", Window: 1500 * time.Millisecond}},
		"window on pending":   {Unique: &queue.Unique{Key: "k", Scope: queue.UniqueWhilePending, Window: time.Hour}},
		"unknown scope":       {Unique: &queue.Unique{Key: "k", Scope: "forever"}},
		"unknown mode":        {Unique: &queue.Unique{Key: "k", Mode: 7}},
		"two keys":            {UniqueKey: "a", Unique: &queue.Unique{Key: "b"}},
		"key with NUL":        {Unique: &queue.Unique{Key: "a\x00b"}},
		"mutex key too long":  {MutexKey: long},
		"mutex key bad UTF-8": {MutexKey: "\xff"},
		"mutex key with NUL":  {MutexKey: "a\x00"},
		"window key too long": {Unique: &queue.Unique{Key: long[:250], Window: time.Hour}},
	} {
		t.Run(name, func(t *testing.T) {
			tx, err := b.db.Pool.Begin(context.Background())
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(context.Background()) }()
			_, err = b.client.EnqueueTx(context.Background(), tx, sendEmail{}, o)
			require.ErrorIs(t, err, queue.ErrInvalid)
			// The transaction is still usable.
			var one int
			require.NoError(t, tx.QueryRow(context.Background(), "SELECT 1").Scan(&one))
		})
	}
}

func TestMutexKeyIsStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	one, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{MutexKey: "user:1"})
	require.NoError(t, err)
	many, err := b.client.EnqueueMany(ctx, []queue.Request{
		{Args: sendEmail{}, Options: &queue.Options{MutexKey: "user:2"}},
		{Args: sendEmail{}},
	})
	require.NoError(t, err)
	for id, want := range map[int64]*string{one.ID: queue.Ptr("user:1"), many[0].ID: queue.Ptr("user:2"), many[1].ID: nil} {
		var got *string
		require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, "SELECT mutex_key FROM pgq.jobs WHERE id = $1"), id).Scan(&got))
		require.Equal(t, want, got)
	}
}
