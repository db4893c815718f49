package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

func TestEnqueueTxCommitNotifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)

	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	job, err := b.client.EnqueueTx(ctx, tx, sendEmail{To: "a@example.com"}, &queue.Options{Queue: "mail"})
	require.NoError(t, err)
	require.Positive(t, job.ID)
	require.Equal(t, "mail", job.Queue)
	require.Equal(t, queue.StateAvailable, job.State)

	// Not visible outside the transaction before commit.
	require.Zero(t, b.count(t, "id = $1", job.ID))
	require.NoError(t, tx.Commit(ctx))

	require.Equal(t, "mail", l.next())
	got, err := b.client.Job(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, "emails.send", got.Task)
	require.JSONEq(t, `{"to":"a@example.com","subject":""}`, string(got.Args))
	require.Empty(t, l.drain(b), "one job, one notification")
}

func TestEnqueueTxRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	l := listen(t, b)

	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = b.client.EnqueueTx(ctx, tx, sendEmail{To: "x"}, &queue.Options{Queue: "rolled-back"})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	require.Zero(t, b.count(t, "true"))
	require.Empty(t, l.drain(b), "a rolled-back enqueue must not wake anyone")
}

func TestEnqueueBesideBusinessWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, "CREATE TABLE IF NOT EXISTS pgq.beside_orders (id int primary key)"))
	require.NoError(t, err)

	// The job and the order commit or vanish together.
	for _, commit := range []bool{false, true} {
		err := pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, schema.Rewrite(b.db.Schema, "INSERT INTO pgq.beside_orders VALUES (1)")); err != nil {
				return err
			}
			if _, err := b.client.EnqueueTx(ctx, tx, queue.Raw{Task: "orders.confirm", Args: json.RawMessage(`{"order":1}`)}, nil); err != nil {
				return err
			}
			if !commit {
				return errors.New("business rule failed")
			}
			return nil
		})
		var orders int
		require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, "SELECT count(*) FROM pgq.beside_orders")).Scan(&orders))
		if commit {
			require.NoError(t, err)
			require.Equal(t, 1, orders)
			require.Equal(t, 1, b.count(t, "task = 'orders.confirm'"))
		} else {
			require.Error(t, err)
			require.Zero(t, orders)
			require.Zero(t, b.count(t, "true"))
		}
	}
}

// countingTracer counts statements sent on a pool.
type countingTracer struct {
	mu   sync.Mutex
	sqls []string
}

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.mu.Lock()
	c.sqls = append(c.sqls, d.SQL)
	c.mu.Unlock()
	return ctx
}
func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestEnqueueTxIsOneStatement(t *testing.T) {
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

	for _, opts := range []*queue.Options{nil, {UniqueKey: "k1", Countdown: time.Minute}} {
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
}

func TestOptionsAreStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	eta := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	before := time.Now()
	j, err := b.client.Enqueue(ctx, sendEmail{To: "x"}, &queue.Options{
		Queue:         "mail",
		Priority:      queue.Ptr(7),
		ETA:           eta,
		Expires:       2 * time.Hour,
		MaxRetries:    queue.Ptr(0),
		RetryDelay:    30 * time.Second,
		TimeLimit:     time.Minute,
		SoftTimeLimit: 50 * time.Second,
		IgnoreResult:  queue.Ptr(true),
		UniqueKey:     "mail:x",
		Headers:       map[string]any{"trace": "abc", "n": 1},
	})
	require.NoError(t, err)
	require.Equal(t, queue.StateScheduled, j.State)

	got, err := b.client.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, "mail", got.Queue)
	require.Equal(t, 7, got.Priority)
	require.True(t, got.RunAt.Equal(eta), "run_at %v, want %v", got.RunAt, eta)
	require.NotNil(t, got.ExpiresAt)
	require.WithinDuration(t, before.Add(2*time.Hour), *got.ExpiresAt, time.Minute)
	require.Zero(t, got.MaxRetries)
	require.Equal(t, 30*time.Second, got.RetryDelay)
	require.Equal(t, time.Minute, got.TimeLimit)
	require.Equal(t, 50*time.Second, got.SoftTimeLimit)
	require.True(t, got.IgnoreResult)
	require.Equal(t, "mail:x", got.UniqueKey)
	require.JSONEq(t, `{"trace":"abc","n":1}`, string(got.Headers))
	require.Empty(t, got.Errors)
	require.Equal(t, queue.StateScheduled, got.State)

	// Countdown is measured from the database's clock.
	c, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{Countdown: 10 * time.Second})
	require.NoError(t, err)
	var delay float64
	require.NoError(t, b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema,
		"SELECT extract(epoch FROM run_at - created_at) FROM pgq.jobs WHERE id = $1"), c.ID).Scan(&delay))
	require.InDelta(t, 10.0, delay, 0.5)
	require.Equal(t, queue.StateScheduled, c.State)

	// Delay uses the defaults.
	d, err := b.client.Delay(ctx, sendEmail{})
	require.NoError(t, err)
	got, err = b.client.Job(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, queue.QueueDefault, got.Queue)
	require.Equal(t, queue.PriorityDefault, got.Priority)
	require.Equal(t, queue.MaxRetriesDefault, got.MaxRetries)
	require.Equal(t, queue.StateAvailable, got.State)
	require.False(t, got.IgnoreResult)
}

func TestRoutingPrecedence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, &queue.Config{Routes: []queue.Route{
		{Pattern: "emails.*", Options: queue.Options{Queue: "mail-glob", Priority: queue.Ptr(2), MaxRetries: queue.Ptr(9)}},
		{Pattern: "emails.send", Options: queue.Options{Queue: "mail-exact", Priority: queue.Ptr(3)}},
		{Pattern: "emails.*", Options: queue.Options{Queue: "never-second-glob"}},
		{Pattern: "reports.*", Options: queue.Options{Queue: "reports-route", Priority: queue.Ptr(1), TimeLimit: time.Minute}},
		{Pattern: "*", Options: queue.Options{Queue: "catch-all"}},
	}})

	cases := []struct {
		name      string
		args      queue.TaskArgs
		opts      *queue.Options
		queue     string
		priority  int
		retries   int
		timeLimit time.Duration
	}{
		{"exact route beats glob", sendEmail{}, nil, "mail-exact", 3, 3, 0},
		{"first glob wins", queue.Raw{Task: "emails.digest"}, nil, "mail-glob", 2, 9, 0},
		{"call beats route", sendEmail{}, &queue.Options{Queue: "urgent", Priority: queue.Ptr(0)}, "urgent", 0, 3, 0},
		{"task default beats route, route fills the rest", report{}, nil, "reports", 5, 7, time.Minute},
		{"call beats task default", report{}, &queue.Options{Queue: "adhoc", MaxRetries: queue.Ptr(0)}, "adhoc", 5, 0, time.Minute},
		{"catch-all route", queue.Raw{Task: "misc.thing"}, nil, "catch-all", 0, 3, 0},
	}
	for _, tc := range cases {
		j, err := b.client.Enqueue(ctx, tc.args, tc.opts)
		require.NoError(t, err, tc.name)
		got, err := b.client.Job(ctx, j.ID)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.queue, got.Queue, tc.name)
		require.Equal(t, tc.priority, got.Priority, tc.name)
		require.Equal(t, tc.retries, got.MaxRetries, tc.name)
		require.Equal(t, tc.timeLimit, got.TimeLimit, tc.name)
	}

	// Without routes a task lands in the default queue.
	plain := setup(t, nil)
	j, err := plain.client.Delay(ctx, queue.Raw{Task: "misc.thing"})
	require.NoError(t, err)
	require.Equal(t, "default", j.Queue)
}

func TestBadRoutesAreRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, routes := range [][]queue.Route{
		{{Pattern: ""}},
		{{Pattern: "emails.[", Options: queue.Options{Queue: "x"}}},
		{{Pattern: "emails.*", Options: queue.Options{Queue: "bad queue"}}},
		{{Pattern: "emails.*", Options: queue.Options{Priority: queue.Ptr(10)}}},
	} {
		_, err := queue.NewClient(b.db.Pool, &queue.Config{Schema: b.db.Schema, Routes: routes})
		require.Error(t, err)
		require.Contains(t, err.Error(), "Routes[0]")
	}
	_, err := queue.NewClient(b.db.Pool, &queue.Config{Schema: "Bad-Schema"})
	require.ErrorContains(t, err, "Config.Schema")
	_, err = queue.NewClient(nil, nil)
	require.Error(t, err)
}

type unencodable struct {
	C chan int `json:"c"`
}

func (unencodable) TaskName() string { return "bad.args" }

func TestBadInputIsRejectedBeforeSending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, &queue.Config{MaxPayloadBytes: 1000})

	cases := []struct {
		name  string
		args  queue.TaskArgs
		opts  *queue.Options
		field string
	}{
		{"nil args", nil, nil, "args"},
		{"empty task", queue.Raw{Task: ""}, nil, "task"},
		{"task with spaces", queue.Raw{Task: "send email"}, nil, "task"},
		{"task injection", queue.Raw{Task: "x'); DROP TABLE pgq.jobs; --"}, nil, "task"},
		{"task too long", queue.Raw{Task: strings.Repeat("a", 201)}, nil, "task"},
		{"queue injection", sendEmail{}, &queue.Options{Queue: "q'; DELETE FROM pgq.jobs; --"}, "Queue"},
		{"queue too long", sendEmail{}, &queue.Options{Queue: strings.Repeat("q", 101)}, "Queue"},
		{"unencodable args", unencodable{C: make(chan int)}, nil, "args"},
		{"invalid raw json", queue.Raw{Task: "a.b", Args: json.RawMessage(`{"x":`)}, nil, "args"},
		{"payload too large", queue.Raw{Task: "a.b", Args: json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)}, nil, "args"},
		{"unencodable header", sendEmail{}, &queue.Options{Headers: map[string]any{"f": func() {}}}, "Headers"},
		// JSON that encoding/json takes and jsonb refuses (found by FuzzPrepareRaw).
		{"raw args not utf-8", queue.Raw{Task: "a.b", Args: json.RawMessage("{\"x\":\"\xff\"}")}, nil, "args"},
		{"raw args with nul", queue.Raw{Task: "a.b", Args: json.RawMessage(`{"x":"\u0000"}`)}, nil, "args"},
		{"raw args lone surrogate", queue.Raw{Task: "a.b", Args: json.RawMessage(`{"x":"\ud800"}`)}, nil, "args"},
		{"header with nul", sendEmail{}, &queue.Options{Headers: map[string]any{"h": "a\x00b"}}, "Headers"},
		{"typed args with nul", sendEmail{To: "a\x00b"}, nil, "args"},
		{"negative countdown", sendEmail{}, &queue.Options{Countdown: -time.Second}, "Countdown"},
		{"countdown and eta", sendEmail{}, &queue.Options{Countdown: time.Second, ETA: time.Now()}, "ETA"},
		{"negative expires", sendEmail{}, &queue.Options{Expires: -time.Second}, "Expires"},
		{"negative max retries", sendEmail{}, &queue.Options{MaxRetries: queue.Ptr(-1)}, "MaxRetries"},
		{"priority too high", sendEmail{}, &queue.Options{Priority: queue.Ptr(10)}, "Priority"},
		{"priority negative", sendEmail{}, &queue.Options{Priority: queue.Ptr(-1)}, "Priority"},
		{"negative time limit", sendEmail{}, &queue.Options{TimeLimit: -time.Second}, "TimeLimit"},
		{"soft above hard", sendEmail{}, &queue.Options{TimeLimit: time.Second, SoftTimeLimit: 2 * time.Second}, "SoftTimeLimit"},
		{"unique key too long", sendEmail{}, &queue.Options{UniqueKey: strings.Repeat("k", 256)}, "UniqueKey"},
	}

	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	for _, tc := range cases {
		_, err := b.client.EnqueueTx(ctx, tx, tc.args, tc.opts)
		require.Error(t, err, tc.name)
		require.ErrorIs(t, err, queue.ErrInvalid, tc.name)
		var ve *queue.ValidationError
		require.ErrorAs(t, err, &ve, tc.name)
		require.Equal(t, tc.field, ve.Field, "%s: %v", tc.name, err)
	}
	_, err = b.client.Enqueue(ctx, queue.Raw{Task: "a.b", Args: json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)}, nil)
	require.ErrorIs(t, err, queue.ErrPayloadTooLarge)

	// The transaction is still usable after every one of those errors.
	ok, err := b.client.EnqueueTx(ctx, tx, sendEmail{To: "still fine"}, nil)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, 1, b.count(t, "true"))
	require.Equal(t, 1, b.count(t, "id = $1", ok.ID))
}

func TestHostileValuesAreStoredAsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	evil := `'); DROP TABLE pgq.jobs; --`
	j, err := b.client.Enqueue(ctx, queue.Raw{Task: "a.b", Args: json.RawMessage(`{"s":"` + strings.ReplaceAll(evil, `"`, `\"`) + `"}`)},
		&queue.Options{UniqueKey: evil, Headers: map[string]any{evil: evil}})
	require.NoError(t, err)
	got, err := b.client.Job(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, evil, got.UniqueKey)
	require.Contains(t, string(got.Args), "DROP TABLE")
	require.Equal(t, 1, b.count(t, "true"))
}

// TestGoRulesMatchSQL keeps queue/validate.go and pgq.enqueue() in step:
// every name is judged the same by both ways in.
func TestGoRulesMatchSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	names := []string{"a", "emails.send", "A_b:c/d-e.f", "_x", "9lives", ".hidden", "-x", "a b", "a;b", "é", "a'b", "",
		strings.Repeat("a", 100), strings.Repeat("a", 101), strings.Repeat("a", 200), strings.Repeat("a", 201), "a/b", "q:1", "a\nb"}
	enqueue := schema.Rewrite(b.db.Schema, "SELECT pgq.enqueue($1, queue => $2)")
	for _, n := range names {
		for _, col := range []string{"task", "queue"} {
			goErr := queue.ValidateTaskName(n)
			task, q := n, "default"
			if col == "queue" {
				goErr = queue.ValidateQueueName(n)
				task, q = "t", n
			}
			var sqlErr error
			_ = pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
				_, sqlErr = tx.Exec(ctx, enqueue, task, q)
				return errors.New("always roll back")
			})
			require.Equal(t, goErr == nil, sqlErr == nil, "%s %q: go says %v, SQL says %v", col, n, goErr, sqlErr)
		}
	}
}

func TestUniqueKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	first, err := b.client.Enqueue(ctx, sendEmail{To: "a"}, &queue.Options{UniqueKey: "welcome:42"})
	require.NoError(t, err)
	require.False(t, first.Duplicate)
	second, err := b.client.Enqueue(ctx, sendEmail{To: "b"}, &queue.Options{UniqueKey: "welcome:42"})
	require.NoError(t, err)
	require.True(t, second.Duplicate)
	require.Equal(t, first.ID, second.ID)
	require.Equal(t, 1, b.count(t, "true"))

	// Once the holder has finished, the key is free again.
	_, err = b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, "UPDATE pgq.jobs SET state = 'succeeded' WHERE id = $1"), first.ID)
	require.NoError(t, err)
	third, err := b.client.Enqueue(ctx, sendEmail{To: "c"}, &queue.Options{UniqueKey: "welcome:42"})
	require.NoError(t, err)
	require.False(t, third.Duplicate)
	require.NotEqual(t, first.ID, third.ID)
}

func TestUniqueKeyConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	const n = 100
	ids := make(chan int64, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			j, err := b.client.Enqueue(ctx, sendEmail{}, &queue.Options{UniqueKey: "only-one"})
			if err != nil {
				errs <- err
				return
			}
			ids <- j.ID
		}()
	}
	close(start)
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[int64]bool{}
	for id := range ids {
		seen[id] = true
	}
	require.Len(t, seen, 1, "every caller must get the same job")
	require.Equal(t, 1, b.count(t, "unique_key = 'only-one'"))
}

func TestNotMigrated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	c, err := queue.NewClient(b.db.Pool, &queue.Config{Schema: "pgq_not_installed"})
	require.NoError(t, err)
	_, err = c.Delay(ctx, sendEmail{})
	require.ErrorIs(t, err, queue.ErrNotMigrated)
	require.Contains(t, err.Error(), "pgq migrate up")
	require.ErrorIs(t, c.Check(ctx), queue.ErrNotMigrated)
	require.NoError(t, b.client.Check(ctx))
	_, err = b.client.Job(ctx, 123456)
	require.ErrorIs(t, err, queue.ErrJobNotFound)
}
