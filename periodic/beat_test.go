package periodic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
)

type ping struct {
	N int `json:"n"`
}

func (ping) TaskName() string { return "test.ping" }

func rawTask(name string) queue.Raw { return queue.Raw{Task: name} }

// bundle is what the beat tests need: a schema of their own, a client and
// a log to read.
type bundle struct {
	db     *pgtest.DB
	client *Client
	logs   *syncBuffer
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := pgtest.New(t)
	jobs, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	c, err := NewClient(jobs)
	require.NoError(t, err)
	return &bundle{db: db, client: c, logs: &syncBuffer{}}
}

// beat starts a Beat with quick test intervals, stopped at the end.
func (b *bundle) beat(t *testing.T, id string, entries []Entry) *Beat {
	t.Helper()
	bt, err := New(b.db.Pool, &Config{
		Schema: b.db.Schema, ID: id, Entries: entries,
		Logger:           slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ElectionInterval: 100 * time.Millisecond, RefreshInterval: time.Second, SessionTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	bt.Start(context.Background())
	t.Cleanup(bt.Stop)
	return bt
}

func (b *bundle) table(name string) string { return pgx.Identifier{b.db.Schema, name}.Sanitize() }

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err)
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// runs counts the run rows of a task.
func (b *bundle) runs(t *testing.T, name string) int {
	return b.count(t, "SELECT count(*) FROM "+b.table("periodic_runs")+" WHERE name = $1", name)
}

func (b *bundle) waitRuns(t *testing.T, name string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return b.runs(t, name) >= n }, 20*time.Second, 20*time.Millisecond,
		"task %s: %d runs wanted; logs:\n%s", name, n, b.logs.String())
}

// checkOnePerTick fails when a tick has more than one job, or a run row
// disagrees with its job.
func (b *bundle) checkOnePerTick(t *testing.T) {
	t.Helper()
	dup := b.count(t, `SELECT count(*) FROM (SELECT meta->>'periodic_task', meta->>'periodic_tick' FROM `+b.table("jobs")+`
		WHERE meta ? 'periodic_tick' GROUP BY 1, 2 HAVING count(*) > 1) d`)
	require.Zero(t, dup, "no tick has two jobs")
	orphan := b.count(t, `SELECT count(*) FROM `+b.table("periodic_runs")+` r LEFT JOIN `+b.table("jobs")+` j ON j.id = r.job_id
		WHERE j.id IS NULL OR j.meta->>'periodic_tick' <> to_char(r.tick AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`)
	require.Zero(t, orphan, "every run row points at the job of its tick")
}

func TestBeatEnqueuesEachTickOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bt := b.beat(t, "solo", []Entry{{Name: "ping", Schedule: "@every 1s", Args: ping{N: 7}, Options: Options{Queue: "pings", Priority: queue.Ptr(3)}}})
	b.waitRuns(t, "ping", 3)
	require.True(t, bt.Leader())
	b.checkOnePerTick(t)

	var (
		args            []byte
		q               string
		prio            int
		tick, expiresAt time.Time
	)
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT j.args, j.queue, j.priority, r.tick, j.expires_at
		FROM `+b.table("periodic_runs")+` r JOIN `+b.table("jobs")+` j ON j.id = r.job_id ORDER BY r.tick LIMIT 1`).
		Scan(&args, &q, &prio, &tick, &expiresAt))
	require.JSONEq(t, `{"n":7}`, string(args))
	require.Equal(t, "pings", q)
	require.Equal(t, 3, prio)
	require.Equal(t, tick.Add(time.Second), expiresAt, "a job expires at the next tick by default")

	st, err := b.client.Get(context.Background(), "ping")
	require.NoError(t, err)
	require.Equal(t, SourceCode, st.Source)
	require.NotNil(t, st.LastJobID)
	require.NotNil(t, st.NextTick)
	overview := b.count(t, "SELECT count(*) FROM "+b.table("periodic_overview")+" WHERE name = 'ping' AND enabled AND last_job_state IS NOT NULL AND next_run IS NOT NULL")
	require.Equal(t, 1, overview)
}

// Two beats: one leads and enqueues; stopping it hands over to the other
// at once, and no tick gets two jobs.
func TestLeaderElectionAndHandOver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	entries := []Entry{{Name: "ping", Schedule: "@every 1s", Args: ping{}}}
	one := b.beat(t, "one", entries)
	two := b.beat(t, "two", entries)
	require.Eventually(t, func() bool { return one.Leader() || two.Leader() }, 10*time.Second, 10*time.Millisecond)
	b.waitRuns(t, "ping", 2)
	leader, standby := one, two
	if two.Leader() {
		leader, standby = two, one
	}
	require.False(t, standby.Leader(), "only one leads")
	require.Zero(t, b.count(t, "SELECT count(*) FROM "+b.table("periodic_runs")+" WHERE beat_id = $1", standby.ID()),
		"the standby enqueued nothing")

	stopped := time.Now()
	leader.Stop()
	require.Eventually(t, standby.Leader, 5*time.Second, 5*time.Millisecond)
	t.Logf("hand-over after a clean stop took %s", time.Since(stopped).Round(time.Millisecond))
	before := b.runs(t, "ping")
	b.waitRuns(t, "ping", before+2)
	require.Positive(t, b.count(t, "SELECT count(*) FROM "+b.table("periodic_runs")+" WHERE beat_id = $1", standby.ID()))
	b.checkOnePerTick(t)
}

// The leader's lock connection is killed by the server: the leader steps
// down, and a beat (it or the standby) leads again within seconds.
func TestLeaderConnectionLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	entries := []Entry{{Name: "ping", Schedule: "@every 1s", Args: ping{}}}
	one := b.beat(t, "one", entries)
	two := b.beat(t, "two", entries)
	b.waitRuns(t, "ping", 1)
	var terminated bool
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND objid = (hashtext($1)::bigint & 4294967295)::text::oid`,
		b.db.Schema+".beat").Scan(&terminated))
	require.True(t, terminated, "the leader's lock connection was found and ended")
	require.Eventually(t, func() bool {
		return bytes.Contains([]byte(b.logs.String()), []byte("beat no longer leading"))
	}, 10*time.Second, 10*time.Millisecond, "the leader noticed")
	before := b.runs(t, "ping")
	b.waitRuns(t, "ping", before+2)
	require.True(t, one.Leader() != two.Leader(), "exactly one leads again")
	b.checkOnePerTick(t)
}

// Two beats forced to lead at once (no lock) fire the same ticks from two
// connections at the same moment: the database lets exactly one job per
// tick through.
func TestExactlyOnceUnderTwoLeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.client.Add(ctx, Entry{Name: "race", Schedule: "@every 1s", Args: ping{}}))
	beats := make([]*Beat, 4)
	conns := make([]*pgx.Conn, len(beats))
	for i := range beats {
		var err error
		beats[i], err = New(b.db.Pool, &Config{Schema: b.db.Schema, ID: fmt.Sprintf("leader-%d", i)})
		require.NoError(t, err)
		conns[i] = pgtest.Conn(t)
	}
	base := time.Now().Truncate(time.Second).Add(time.Hour) // ticks after start_after
	const ticks = 25
	claimed := 0
	for k := range ticks {
		tick := base.Add(time.Duration(k) * time.Second)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			start = make(chan struct{})
		)
		for i, bt := range beats {
			list, err := bt.queries(conns[i]).ListPeriodicTasks(ctx)
			require.NoError(t, err)
			r := newRow(*list[0])
			require.NoError(t, r.err)
			wg.Go(func() {
				<-start
				_, ok, err := bt.fire(ctx, conns[i], r, tick, tick.Add(time.Second))
				require.NoError(t, err)
				if ok {
					mu.Lock()
					claimed++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
	}
	require.Equal(t, ticks, claimed, "one claim per tick")
	require.Equal(t, ticks, b.count(t, "SELECT count(*) FROM "+b.table("jobs")))
	require.Equal(t, ticks, b.runs(t, "race"))
	b.checkOnePerTick(t)

	// A stale leader that still has an old tick in hand cannot enqueue it
	// after a later one: last_tick only moves forward.
	list, err := beats[0].queries(conns[0]).ListPeriodicTasks(ctx)
	require.NoError(t, err)
	_, ok, err := beats[0].fire(ctx, conns[0], newRow(*list[0]), base.Add(-time.Second), base)
	require.NoError(t, err)
	require.False(t, ok)
	// And one whose run row exists (last_tick wound back by hand) cannot
	// either: the primary key holds.
	b.exec(t, "UPDATE "+b.table("periodic_tasks")+" SET last_tick = NULL")
	_, ok, err = beats[0].fire(ctx, conns[0], newRow(*list[0]), base, base.Add(time.Second))
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, ticks, b.count(t, "SELECT count(*) FROM "+b.table("jobs")))
}

// Edits of the table reach a running beat without a restart: disable,
// enable, change of spec and args.
func TestTableEditsTakeEffect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.client.Add(ctx, Entry{Name: "clock", Schedule: "@every 1s", Args: rawTask("test.clock")}))
	require.NoError(t, b.client.Add(ctx, Entry{Name: "edited", Schedule: "@every 1h", Args: ping{N: 1}}))
	b.beat(t, "solo", nil)
	b.waitRuns(t, "clock", 1)
	require.Zero(t, b.runs(t, "edited"))

	// A faster spec and new args, by hand in SQL.
	b.exec(t, "UPDATE "+b.table("periodic_tasks")+` SET spec = '@every 1s', args = '{"n": 2}' WHERE name = 'edited'`)
	b.waitRuns(t, "edited", 2)
	require.Equal(t, 0, b.count(t, "SELECT count(*) FROM "+b.table("jobs")+` WHERE task = 'test.ping' AND args <> '{"n": 2}'`))

	// Disabled: the leader clears its next tick when it sees the edit;
	// after two more ticks of the clock task it has enqueued nothing more.
	require.NoError(t, b.client.Disable(ctx, "edited"))
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM "+b.table("periodic_tasks")+" WHERE name = 'edited' AND next_tick IS NULL") == 1
	}, 10*time.Second, 10*time.Millisecond)
	stopped := b.runs(t, "edited")
	clock := b.runs(t, "clock")
	b.waitRuns(t, "clock", clock+2)
	require.Equal(t, stopped, b.runs(t, "edited"), "a disabled task does not fire")

	// Enabled again: it fires from its next tick on, without catching up.
	require.NoError(t, b.client.Enable(ctx, "edited"))
	b.waitRuns(t, "edited", stopped+1)
	b.checkOnePerTick(t)
}

// Tasks that came from code and are no longer defined are disabled, not
// deleted; defined again, they fire again. An operator's disable of a
// code task survives the next leader's sync.
func TestCodeEntriesSync(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a := Entry{Name: "a", Schedule: "@hourly", Args: ping{}}
	c := Entry{Name: "c", Schedule: "@daily", Args: ping{}}
	first := b.beat(t, "v1", []Entry{a, c})
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM "+b.table("periodic_tasks")+" WHERE source = 'code' AND enabled") == 2
	},
		10*time.Second, 10*time.Millisecond)
	first.Stop()

	second := b.beat(t, "v2", []Entry{a})
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM "+b.table("periodic_tasks")+" WHERE name = 'c' AND NOT enabled AND removed_at IS NOT NULL") == 1
	}, 10*time.Second, 10*time.Millisecond)
	st, err := b.client.Get(ctx, "a")
	require.NoError(t, err)
	require.True(t, st.Enabled)
	require.ErrorIs(t, b.client.Remove(ctx, "a"), ErrDefinedInCode)
	require.NoError(t, b.client.Disable(ctx, "a"))
	second.Stop()

	b.beat(t, "v3", []Entry{a, c})
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM "+b.table("periodic_tasks")+" WHERE name = 'c' AND enabled AND removed_at IS NULL") == 1
	}, 10*time.Second, 10*time.Millisecond)
	st, err = b.client.Get(ctx, "a")
	require.NoError(t, err)
	require.False(t, st.Enabled, "the operator's disable survives a sync")
}

// Rows edited in by hand with a bad spec or zone are logged and skipped;
// every other task keeps firing.
func TestBadRowsAreSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, "INSERT INTO "+b.table("periodic_tasks")+` (name, spec, time_zone, task) VALUES
		('bad-spec', '61 * * * *', 'UTC', 'test.ping'),
		('bad-zone', '@every 1s', 'Mars/Olympus_Mons', 'test.ping'),
		('bad-task', '@every 1s', 'UTC', 'bad task'),
		('good', '@every 1s', 'UTC', 'test.ping')`)
	b.beat(t, "solo", nil)
	b.waitRuns(t, "good", 2)
	require.Equal(t, b.runs(t, "good"), b.runs(t, "bad-spec")+b.runs(t, "bad-zone")+b.runs(t, "bad-task")+b.runs(t, "good"))
	logs := b.logs.String()
	for _, want := range []string{"periodic_task=bad-spec", `minute field \"61\"`, "periodic_task=bad-zone", "Mars/Olympus_Mons", "periodic_task=bad-task"} {
		require.Contains(t, logs, want)
	}
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM "+b.table("periodic_overview")+" WHERE error IS NOT NULL") == 3
	}, 10*time.Second, 10*time.Millisecond, "the errors are in the table for SQL readers")
	list, err := b.client.List(context.Background())
	require.NoError(t, err)
	require.Len(t, list, 4)
	require.Equal(t, "bad-spec", list[0].Name)
	require.Contains(t, list[0].Error, "minute field")
	require.Equal(t, "good", list[3].Name)
	require.Empty(t, list[3].Error)
}

// After downtime, run-once enqueues one job for the latest missed tick;
// skip enqueues none.
func TestMissedTicks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A daily spec whose latest tick was two hours ago, for tasks created
	// three hours ago: one tick was missed.
	ago := time.Now().UTC().Add(-2 * time.Hour)
	spec := fmt.Sprintf("%d %d * * *", ago.Minute(), ago.Hour())
	b.exec(t, "INSERT INTO "+b.table("periodic_tasks")+` (name, spec, task, missed, start_after) VALUES
		('once', $1, 'test.ping', 'run-once', now() - interval '3 hours'),
		('skip', $1, 'test.ping', 'skip', now() - interval '3 hours'),
		('clock', '@every 1s', 'test.ping', 'run-once', now())`, spec)
	b.beat(t, "solo", nil)
	b.waitRuns(t, "once", 1)
	b.waitRuns(t, "clock", 2)
	require.Equal(t, 1, b.runs(t, "once"))
	require.Zero(t, b.runs(t, "skip"))
	require.Equal(t, 1, b.count(t, "SELECT count(*) FROM "+b.table("periodic_tasks")+" WHERE name = 'skip' AND last_tick IS NOT NULL AND last_job_id IS NULL"),
		"the skipped tick was recorded as handled")
	require.Contains(t, b.logs.String(), "missed tick skipped")
	b.checkOnePerTick(t)
}

func TestRunNowAndAdmin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.client.Add(ctx, Entry{Name: "x", Schedule: "@daily", TimeZone: "Europe/Berlin", Args: ping{N: 3}}))
	require.ErrorIs(t, b.client.Add(ctx, Entry{Name: "x", Schedule: "@daily", Args: ping{}}), ErrExists)
	err := b.client.Add(ctx, Entry{Name: "y", Schedule: "@daily", TimeZone: "Atlantis/Capital", Args: ping{}})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "TimeZone")
	job, err := b.client.RunNow(ctx, "x")
	require.NoError(t, err)
	var meta json.RawMessage
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT meta FROM "+b.table("jobs")+" WHERE id = $1", job.ID).Scan(&meta))
	require.JSONEq(t, `{"periodic_task":"x","periodic_run_now":true}`, string(meta))
	st, err := b.client.Get(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, job.ID, *st.LastJobID)
	require.Equal(t, "available", st.LastJobState)
	require.Equal(t, SourceCLI, st.Source)
	_, err = b.client.RunNow(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, b.client.Enable(ctx, "nope"), ErrNotFound)
	require.NoError(t, b.client.Remove(ctx, "x"))
	require.ErrorIs(t, b.client.Remove(ctx, "x"), ErrNotFound)
}

func TestBeatStartStopContract(t *testing.T) {
	b := setup(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	newBeat := func() *Beat {
		bt, err := New(b.db.Pool, &Config{Schema: b.db.Schema, Logger: slog.New(slog.DiscardHandler), ElectionInterval: 50 * time.Millisecond})
		require.NoError(t, err)
		return bt
	}
	// Stop before Start: Start does nothing.
	bt := newBeat()
	bt.Stop()
	bt.Start(context.Background())
	bt.Stop()
	require.False(t, bt.Leader())
	// Start, lead, double Stop.
	bt = newBeat()
	bt.Start(context.Background())
	bt.Start(context.Background())
	require.Eventually(t, bt.Leader, 10*time.Second, 5*time.Millisecond)
	bt.Stop()
	bt.Stop()
	require.False(t, bt.Leader())
	// Run returns when its context ends.
	bt = newBeat()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bt.Run(ctx) }()
	require.Eventually(t, bt.Leader, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Schema: "Bad-Name"}, "Config.Schema"},
		{Config{ElectionInterval: -1}, "Config.ElectionInterval cannot be negative"},
		{Config{SessionTimeout: time.Second}, "Config.SessionTimeout"},
		{Config{Entries: []Entry{{Name: "x", Schedule: "* * * * * * *", Args: ping{}}}}, `Config.Entries[0]: periodic task "x": Schedule: cron spec`},
	} {
		_, err := New(b.db.Pool, &c.cfg)
		require.ErrorContains(t, err, c.want)
	}
	_, err := New(nil, nil)
	require.Error(t, err)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
