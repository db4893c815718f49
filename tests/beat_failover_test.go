package tests

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
)

// TestBeatFailoverSIGKILL runs three beat processes on a 1-second
// schedule and kills the leader with SIGKILL four times. Every tick must
// have exactly one job; ticks may be missing only in the window between
// a kill and the first tick of the next leader (the missed-tick policy,
// run-once, then enqueues the latest missed tick). It logs each failover
// window: from the kill to the next leader's first job.
func TestBeatFailoverSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs beat binaries")
	}
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	bin := buildExample(t, "beat")
	runs := db.Schema + ".periodic_runs"

	procs := map[string]*exec.Cmd{}
	start := func(id string) {
		cmd, _ := startWorkerLogs(t, bin, "-database-url", db.URL, "-schema", db.Schema, "-id", id, "-every", "1s")
		procs[id] = cmd
	}
	for _, id := range []string{"beat-1", "beat-2", "beat-3"} {
		start(id)
	}
	// latest returns the newest run: its tick and the beat that enqueued it.
	latest := func() (tick time.Time, beat string) {
		err := db.Pool.QueryRow(ctx, "SELECT tick, beat_id FROM "+runs+" ORDER BY tick DESC LIMIT 1").Scan(&tick, &beat)
		if err != nil {
			return time.Time{}, ""
		}
		return tick, beat
	}

	const kills = 4
	type failover struct {
		killed, next string
		window       time.Duration
		missed       int
	}
	var failovers []failover
	for range kills {
		// Let the current leader enqueue two ticks, then kill it.
		var leader string
		var first time.Time
		require.Eventually(t, func() bool {
			tick, beat := latest()
			if beat == "" {
				return false
			}
			if beat != leader {
				leader, first = beat, tick
			}
			return tick.Sub(first) >= time.Second
		}, 30*time.Second, 10*time.Millisecond)
		// Kill at a random point of the second, not just after a tick, so
		// that the election's own delay shows (this sleep places the kill;
		// it synchronises nothing).
		time.Sleep(time.Duration(rand.IntN(900)) * time.Millisecond)
		lastOld, _ := latest()
		killedAt := time.Now()
		require.NoError(t, procs[leader].Process.Signal(syscall.SIGKILL))
		_ = procs[leader].Wait()
		var (
			next      string
			nextTick  time.Time
			nextAtDB  time.Time
			nextCount int
		)
		require.Eventually(t, func() bool {
			err := db.Pool.QueryRow(ctx, "SELECT tick, beat_id, enqueued_at FROM "+runs+" WHERE beat_id <> $1 AND tick > $2 ORDER BY tick LIMIT 1",
				leader, lastOld).Scan(&nextTick, &next, &nextAtDB)
			return err == nil
		}, 30*time.Second, 10*time.Millisecond, "another beat takes over")
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+runs+" WHERE tick > $1 AND tick < $2", lastOld, nextTick).Scan(&nextCount))
		f := failover{killed: leader, next: next, window: nextAtDB.Sub(killedAt),
			missed: int(nextTick.Sub(lastOld)/time.Second) - 1 - nextCount}
		failovers = append(failovers, f)
		t.Logf("killed %s %s after its last tick: %s enqueued its first job %s after the kill (%s after that job's tick); %d tick(s) missed",
			f.killed, killedAt.Sub(lastOld).Round(time.Millisecond), f.next, f.window.Round(time.Millisecond),
			nextAtDB.Sub(nextTick).Round(time.Millisecond), f.missed)
		start(leader) // back to three processes
	}
	// One more tick by the last leader, then stop everyone cleanly.
	lastTick, _ := latest()
	require.Eventually(t, func() bool { tick, _ := latest(); return tick.After(lastTick) }, 30*time.Second, 10*time.Millisecond)
	for id, cmd := range procs {
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmd.Wait(), "%s stops cleanly on SIGTERM", id)
	}

	// Exactly one job per tick, and one run row per job.
	var dups, jobs, runRows int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT meta->>'periodic_tick' FROM `+db.Schema+`.jobs
		GROUP BY 1 HAVING count(*) > 1) d`).Scan(&dups))
	require.Zero(t, dups, "no tick has two jobs")
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Schema+".jobs").Scan(&jobs))
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+runs+" WHERE job_id IS NOT NULL").Scan(&runRows))
	require.Equal(t, jobs, runRows)

	// Gaps in the ticks happen only at a change of leader, and are short.
	rows, err := db.Pool.Query(ctx, `SELECT tick, beat_id, lag(tick) OVER (ORDER BY tick), lag(beat_id) OVER (ORDER BY tick) FROM `+runs)
	require.NoError(t, err)
	var gaps int
	for rows.Next() {
		var (
			tick     time.Time
			beat     string
			prev     *time.Time
			prevBeat *string
		)
		require.NoError(t, rows.Scan(&tick, &beat, &prev, &prevBeat))
		if prev == nil || tick.Sub(*prev) == time.Second {
			continue
		}
		gaps++
		require.NotEqual(t, beat, *prevBeat, "ticks %s..%s are missing without a change of leader", prev.Format(time.TimeOnly), tick.Format(time.TimeOnly))
		require.LessOrEqual(t, tick.Sub(*prev), 5*time.Second, "the failover window is a few seconds")
	}
	require.NoError(t, rows.Err())
	require.LessOrEqual(t, gaps, kills)
	var worst time.Duration
	missed := 0
	for _, f := range failovers {
		worst = max(worst, f.window)
		missed += f.missed
	}
	t.Logf("%d ticks enqueued by 3 beat processes, %d SIGKILLs of the leader: 0 duplicates, %d ticks missed, longest failover %s (election interval 1s)",
		jobs, kills, missed, worst.Round(time.Millisecond))
}
