package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
)

// EnvSoak turns the fault suite's short CI run into the long soak
// (`make soak`): 50,000 jobs, faults until every job is done.
const EnvSoak = "PGQ_SOAK"

// TestChaos is the fault suite (docs/reliability.md). Four worker processes
// (each also running beat) work through a stream of jobs while the suite
// breaks things for real: SIGKILL of random workers and of the beat leader,
// pg_terminate_backend of random worker connections, a fast and an
// immediate PostgreSQL restart, and poison jobs (undecodable args, unknown
// tasks, a panic, a handler that ignores its time limit, one that exits
// its process, huge and oversized payloads). Afterwards every job that
// exists must have ended, every ordinary job succeeded, every poison job
// failed with a readable error, no periodic tick has two jobs, and nothing
// is left running. It prints a table of the faults and their outcomes.
//
// Not parallel: it restarts the server every test of this binary uses.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes and restarts PostgreSQL")
	}
	soak := os.Getenv(EnvSoak) != ""
	ctx := context.Background()
	db := pgtest.New(t)
	srv := pgtest.Server(t)
	bin := buildExample(t, "chaosworker")
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	jobs := pgx.Identifier{db.Schema, "jobs"}.Sanitize()
	rig := &chaosRig{t: t, bin: bin, faults: map[string]int{}, start: time.Now()}
	defer rig.stopAll()

	// Poison first, so that it meets the workers at full speed.
	poison, addPoison := enqueuePoison(ctx, t, db, client, rig)

	const workers = 4
	for i := range workers {
		rig.spawn(fmt.Sprintf("chaos-w%d", i+1), "-database-url", db.URL, "-schema", db.Schema,
			"-concurrency", "10", "-beat", "-tick", "1s")
	}
	// The handler that exits its process takes the outcomes its worker had
	// not yet written with it (they are rescued), so it comes once the
	// other poison has ended with outcomes of its own.
	for _, p := range poison {
		waitFinal(ctx, t, db, p.id)
	}
	poison = append(poison, addPoison("handler exits its process", "chaos.exit", `{}`, "failed", "stopped sending heartbeats"))

	// Ordinary jobs: 50,000 up front for the soak; in the short run a
	// producer keeps adding them (each batch its own transaction) until the
	// fault schedule is done, so faults always meet work in flight.
	work := func(n int) error {
		reqs := make([]queue.Request, n)
		for i := range reqs {
			reqs[i] = queue.Request{Args: queue.Raw{Task: "chaos.work", Args: json.RawMessage(`{"ms":20}`)}}
		}
		_, err := client.EnqueueMany(ctx, reqs)
		return err
	}
	producing := make(chan struct{})
	producerDone := make(chan struct{})
	if soak {
		for range 50 {
			require.NoError(t, work(1000))
		}
		close(producerDone)
	} else {
		go func() {
			defer close(producerDone)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-producing:
					return
				case <-tick.C:
					if err := work(50); err != nil {
						rig.count("enqueue refused during a fault (nothing committed, or the commit's outcome unknown)")
					}
				}
			}
		}()
	}

	schedule := []string{"kill-worker", "terminate-backends", "kill-beat-leader", "restart-fast",
		"kill-worker", "terminate-backends", "restart-immediate", "kill-worker", "kill-beat-leader", "terminate-backends"}
	restarts := 0
	oldInserted := false
	for i := 0; ; i++ {
		fault := schedule[i%len(schedule)]
		if i >= len(schedule) {
			if !soak || rig.unfinished(ctx, db) == 0 {
				break
			}
			if strings.HasPrefix(fault, "restart") {
				continue // twice is what the suite promises; the soak repeats the rest
			}
		}
		rig.pause(1500 * time.Millisecond)
		switch fault {
		case "kill-worker":
			rig.kill(rig.randomProc(), "SIGKILL of a random worker (restarted at once)")
		case "kill-beat-leader":
			if id := beatLeader(ctx, t, db); id != "" {
				rig.kill(rig.proc(id), "SIGKILL of the beat leader (restarted at once)")
			}
		case "terminate-backends":
			var n int
			err := db.Pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM (
				SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'chaos-w%' ORDER BY random() LIMIT 3) AS p`).Scan(&n)
			if err == nil && n > 0 {
				rig.countN("pg_terminate_backend of a worker connection", n)
			}
		case "restart-fast", "restart-immediate":
			if srv == nil {
				t.Log("PGQ_TEST_DATABASE_URL is an outside database: no restarts")
				continue
			}
			started := time.Now()
			require.NoError(t, srv.Restart(ctx, fault == "restart-immediate"))
			restarts++
			rig.count(fmt.Sprintf("PostgreSQL restart (%s mode)", strings.TrimPrefix(fault, "restart-")))
			t.Logf("%s took %s", fault, time.Since(started).Round(time.Millisecond))
			if fault == "restart-immediate" && !oldInserted {
				// Finished jobs past their retention, for the maintenance
				// leader to prune while its candidates keep being killed.
				_, err := db.Pool.Exec(ctx, `INSERT INTO `+jobs+` (task, state, created_at, run_at, finished_at)
					SELECT 'chaos.old', 'succeeded', now() - interval '3 days', now() - interval '3 days', now() - interval '2 days'
					  FROM generate_series(1, 500)`)
				require.NoError(t, err)
				oldInserted = true
			}
		}
	}
	faultsEnded := time.Now()
	close(producing)
	<-producerDone

	// Everything that exists must end; nothing may stay running.
	deadline := time.Now().Add(time.Minute)
	for rig.unfinished(ctx, db) > 0 {
		if time.Now().After(deadline) {
			rows, err := db.Pool.Query(ctx, `SELECT id, task, state, attempt, run_at - now(), coalesce(worker_id, ''), errors::text
				  FROM `+jobs+` WHERE state IN ('scheduled', 'available', 'running', 'retrying') ORDER BY id LIMIT 20`)
			require.NoError(t, err)
			for rows.Next() {
				var (
					id, attempt      int64
					task, state, wid string
					due              time.Duration
					errs             string
				)
				require.NoError(t, rows.Scan(&id, &task, &state, &attempt, &due, &wid, &errs))
				t.Logf("unfinished: job %d %s %s attempt %d due in %s worker %q errors %s", id, task, state, attempt, due, wid, trim(errs, 400))
			}
			t.Fatalf("jobs still unfinished a minute after the last fault")
		}
		rig.pause(100 * time.Millisecond)
	}
	// Retention went on through the faults: the old finished jobs are gone.
	if oldInserted {
		require.Eventually(t, func() bool {
			var n int
			err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+jobs+` WHERE task = 'chaos.old'`).Scan(&n)
			return err == nil && n == 0
		}, 30*time.Second, 50*time.Millisecond, "finished jobs past their retention were not pruned")
		rig.outcome("500 finished jobs past their retention, inserted after the immediate restart", "pruned by the maintenance leader of the moment")
	}
	// Beat recovered by itself: a tick after the last fault.
	require.Eventually(t, func() bool {
		var lastTick time.Time
		err := db.Pool.QueryRow(ctx, `SELECT max(tick) FROM `+pgx.Identifier{db.Schema, "periodic_runs"}.Sanitize()).Scan(&lastTick)
		return err == nil && lastTick.After(faultsEnded)
	}, 30*time.Second, 50*time.Millisecond, "no periodic tick after the last fault")
	rig.stopAll()
	rig.mu.Lock()
	require.Empty(t, rig.unexpected, "worker processes that exited on their own")
	rig.mu.Unlock()

	var total, succeeded, twice, maxAttempt, twiceUnexplained int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'),
		       count(*) FILTER (WHERE attempt > 1), coalesce(max(attempt), 0),
		       count(*) FILTER (WHERE attempt > 1 AND errors::text NOT LIKE '%stopped sending heartbeats%')
		  FROM `+jobs+` WHERE task = 'chaos.work'`).Scan(&total, &succeeded, &twice, &maxAttempt, &twiceUnexplained))
	require.Positive(t, total)
	require.Equal(t, total, succeeded, "every ordinary job succeeded")
	require.Zero(t, twiceUnexplained, "a job ran more than once without its worker having died")

	for _, p := range poison {
		var state, lastError string
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT state, coalesce(errors->-1->>'error', '') FROM `+jobs+` WHERE id = $1`,
			p.id).Scan(&state, &lastError))
		require.Equal(t, p.state, state, "%s (job %d): %s", p.what, p.id, lastError)
		// A poison job whose worker was killed while it ran ends with the
		// rescue's reason instead of its own: still a recorded error.
		rescued := strings.Contains(lastError, "stopped sending heartbeats")
		if !rescued || p.state == "succeeded" {
			require.Contains(t, strings.ToLower(lastError), p.errorHas, "%s (job %d)", p.what, p.id)
		}
		rig.outcome(p.what, fmt.Sprintf("%s: %q", state, trim(lastError, 90)))
	}

	var dupTicks, ticks int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE n > 1), count(*) FROM (
		SELECT meta->>'periodic_tick' AS tick, count(*) AS n FROM `+jobs+`
		 WHERE meta ? 'periodic_tick' GROUP BY 1) AS d`).Scan(&dupTicks, &ticks))
	require.Zero(t, dupTicks, "a periodic tick with two jobs")
	require.Positive(t, ticks, "beat enqueued ticks through the faults")

	// Rescue waits: from each kill or exit to the rescue it caused.
	rows, err := db.Pool.Query(ctx, `SELECT (e->>'at')::timestamptz FROM `+jobs+`, jsonb_array_elements(errors) AS e
		 WHERE e->>'error' LIKE '%stopped sending heartbeats%'`)
	require.NoError(t, err)
	rescues, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	require.NoError(t, err)
	longest := rig.longestRescueWait(rescues)

	rig.outcome("ordinary jobs", fmt.Sprintf("%d of %d succeeded; %d ran more than once (max attempt %d)", succeeded, total, twice, maxAttempt))
	rig.outcome("periodic ticks", fmt.Sprintf("%d ticks, 0 with two jobs", ticks))
	rig.outcome("rescues", fmt.Sprintf("%d jobs rescued from dead workers; longest wait from a kill to its rescue %s (rescue after 2s)", len(rescues), longest.Round(time.Millisecond)))
	t.Log("\n" + rig.report(time.Since(rig.start)))
	if srv != nil {
		require.Equal(t, 2, restarts, "PostgreSQL restarted twice")
	}
}

type poisonJob struct {
	id       int64
	what     string
	state    string // expected final state
	errorHas string // expected in the last error, lower case
}

func enqueuePoison(ctx context.Context, t *testing.T, db *pgtest.DB, client *queue.Client, rig *chaosRig) (
	out []poisonJob, add func(what, task, args, state, errorHas string) poisonJob) {
	t.Helper()
	// No retries: a poison job ends on its first attempt. (The worker's
	// TaskOptions.MaxRetries governs a handler's failures; a rescue by the
	// maintenance leader, in SQL, goes by the job's own max_retries.)
	sqlEnqueue := fmt.Sprintf("SELECT %s.enqueue($1, $2::jsonb, max_retries => $3)", pgx.Identifier{db.Schema}.Sanitize())
	add = func(what, task, args, state, errorHas string) poisonJob {
		var id int64
		retries := 0
		if state == "succeeded" {
			retries = 3
		}
		require.NoError(t, db.Pool.QueryRow(ctx, sqlEnqueue, task, args, retries).Scan(&id))
		p := poisonJob{id: id, what: "poison: " + what, state: state, errorHas: errorHas}
		out = append(out, p)
		rig.count(p.what)
		return p
	}
	add("args that do not decode (string for int)", "chaos.typed", `{"n": "seven"}`, "failed", "chaos.typed")
	add("args that do not decode (array)", "chaos.typed", `[1, 2, 3]`, "failed", "chaos.typed")
	add("args that do not decode (bare string)", "chaos.typed", `"hello"`, "failed", "chaos.typed")
	add("unknown task", "chaos.nobody-handles-this", `{}`, "failed", "no handler")
	add("handler panics", "chaos.panic", `{}`, "failed", "panic")
	add("handler ignores its time limit for ever", "chaos.loop", `{}`, "failed", "time limit")
	huge := `{"blob": "` + strings.Repeat("x", 600<<10) + `"}`
	add("600 KiB args", "pgq.echo", huge, "succeeded", "")

	// Over the 1 MiB payload limit: refused at enqueue, nothing written.
	_, err := client.Enqueue(ctx, queue.Raw{Task: "pgq.echo", Args: json.RawMessage(`{"blob": "` + strings.Repeat("x", 2<<20) + `"}`)}, nil)
	require.ErrorIs(t, err, queue.ErrPayloadTooLarge)
	rig.count("poison: 2 MiB args")
	rig.outcome("poison: 2 MiB args", "refused at enqueue (ErrPayloadTooLarge), nothing written")
	return out, add
}

// waitFinal waits until job id has ended.
func waitFinal(ctx context.Context, t *testing.T, db *pgtest.DB, id int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		var final bool
		err := db.Pool.QueryRow(ctx, `SELECT state IN ('succeeded', 'failed', 'cancelled') FROM `+
			pgx.Identifier{db.Schema, "jobs"}.Sanitize()+` WHERE id = $1`, id).Scan(&final)
		return err == nil && final
	}, time.Minute, 20*time.Millisecond, "job %d did not end", id)
}

// beatLeader returns the id of the process whose beat enqueued the latest
// tick, or "" when none has yet.
func beatLeader(ctx context.Context, t *testing.T, db *pgtest.DB) string {
	t.Helper()
	var id string
	err := db.Pool.QueryRow(ctx, `SELECT beat_id FROM `+pgx.Identifier{db.Schema, "periodic_runs"}.Sanitize()+
		` ORDER BY tick DESC LIMIT 1`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	require.NoError(t, err)
	return id
}

// chaosRig runs the worker processes, restarts them when they die, and
// counts faults and outcomes.
type chaosRig struct {
	t     *testing.T
	bin   string
	start time.Time

	mu         sync.Mutex
	procs      []*chaosProc
	faults     map[string]int
	order      []string
	outcomes   map[string]string
	deaths     []time.Time // kills and exits, for rescue waits
	unexpected []string
	stopping   bool
	wg         sync.WaitGroup
}

type chaosProc struct {
	id   string
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *lockedBuffer
}

func (r *chaosRig) spawn(id string, args ...string) {
	p := &chaosProc{id: id, args: append([]string{"-id", id}, args...)}
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	r.start1(p)
	r.wg.Add(1)
	go r.supervise(p)
}

func (r *chaosRig) start1(p *chaosProc) {
	cmd := exec.Command(r.bin, p.args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(r.t, cmd.Start())
	p.mu.Lock()
	p.cmd, p.out = cmd, out
	p.mu.Unlock()
}

// supervise waits for the process and starts it again, until stopAll.
func (r *chaosRig) supervise(p *chaosProc) {
	defer r.wg.Done()
	for {
		p.mu.Lock()
		cmd, out := p.cmd, p.out
		p.mu.Unlock()
		err := cmd.Wait()
		r.mu.Lock()
		if r.stopping {
			if err != nil && !isSignal(err, syscall.SIGTERM) {
				r.unexpected = append(r.unexpected, fmt.Sprintf("%s stopped badly: %v\n%s", p.id, err, out.String()))
			}
			r.mu.Unlock()
			return
		}
		var exit *exec.ExitError
		switch {
		case isSignal(err, syscall.SIGKILL):
			// Counted by kill.
		case errors.As(err, &exit) && exit.ExitCode() == 3:
			r.deaths = append(r.deaths, time.Now())
			r.bump("a handler exited its worker process (restarted)")
		default:
			r.unexpected = append(r.unexpected, fmt.Sprintf("%s exited: %v\n%s", p.id, err, out.String()))
		}
		r.mu.Unlock()
		r.start1(p)
	}
}

func isSignal(err error, sig syscall.Signal) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

func (r *chaosRig) kill(p *chaosProc, what string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd.Process.Signal(syscall.SIGKILL) == nil {
		r.mu.Lock()
		r.deaths = append(r.deaths, time.Now())
		r.bump(what)
		r.mu.Unlock()
	}
}

func (r *chaosRig) randomProc() *chaosProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.procs[rand.IntN(len(r.procs))]
}

func (r *chaosRig) proc(id string) *chaosProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (r *chaosRig) stopAll() {
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return
	}
	r.stopping = true
	procs := append([]*chaosProc(nil), r.procs...)
	r.mu.Unlock()
	for _, p := range procs {
		p.mu.Lock()
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		p.mu.Unlock()
	}
	r.wg.Wait()
}

// pause waits between faults; the suite's pace is the point, not a
// synchronisation.
func (r *chaosRig) pause(d time.Duration) { time.Sleep(d) }

func (r *chaosRig) unfinished(ctx context.Context, db *pgtest.DB) int {
	var n int
	err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{db.Schema, "jobs"}.Sanitize()+
		` WHERE state IN ('scheduled', 'available', 'running', 'retrying')`).Scan(&n)
	if err != nil {
		return -1 // the database is restarting: not done
	}
	return n
}

func (r *chaosRig) count(what string) { r.countN(what, 1) }

func (r *chaosRig) countN(what string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.bump(what)
	}
}

// bump counts one fault; r.mu is held.
func (r *chaosRig) bump(what string) {
	if _, ok := r.faults[what]; !ok {
		r.order = append(r.order, what)
	}
	r.faults[what]++
}

func (r *chaosRig) outcome(what, result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outcomes == nil {
		r.outcomes = map[string]string{}
	}
	if _, ok := r.faults[what]; !ok {
		r.order = append(r.order, what)
	}
	r.outcomes[what] = result
}

func (r *chaosRig) longestRescueWait(rescues []time.Time) time.Duration {
	r.mu.Lock()
	deaths := append([]time.Time(nil), r.deaths...)
	r.mu.Unlock()
	sort.Slice(deaths, func(i, j int) bool { return deaths[i].Before(deaths[j]) })
	var longest time.Duration
	for _, at := range rescues {
		// The latest death before the rescue caused it.
		i := sort.Search(len(deaths), func(i int) bool { return deaths[i].After(at) })
		if i > 0 {
			longest = max(longest, at.Sub(deaths[i-1]))
		}
	}
	return longest
}

func (r *chaosRig) report(took time.Duration) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "fault suite: %s\n| fault or input | count | outcome |\n| --- | --- | --- |\n", took.Round(time.Second))
	for _, what := range r.order {
		n := "-"
		if c, ok := r.faults[what]; ok {
			n = fmt.Sprint(c)
		}
		outcome := r.outcomes[what]
		if outcome == "" {
			outcome = "recovered; see the totals below"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", what, n, outcome)
	}
	return b.String()
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
