package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
)

// rescueBatch is the most jobs one maintenance round rescues.
const rescueBatch = 1000

// maintainer runs the maintenance rounds. Every worker runs the loop, but
// each round first takes a transaction-scoped advisory lock whose key is
// derived from the schema (hashtext of "<schema>.maintenance"); whoever
// gets it is the leader for that round and the others skip it. The lock
// ends with the round's transaction, so a leader that dies mid-round
// leaves nothing behind and the next round elects again.
//
// A round rescues jobs held by workers whose heartbeat is older than
// RescueAfter (back to available, or failed when out of attempts, with
// the reason in the error history) and deletes the rows of such workers
// that no longer hold anything.
//
// The round's leader then applies retention: it deletes finished jobs
// older than RetentionSucceeded, RetentionFailed and RetentionCancelled,
// PruneBatch rows per statement, each statement its own transaction
// after the round's has committed, so no lock is held for longer than
// one small DELETE. It goes on while statements come back full, for at
// most half a MaintenanceInterval, and carries on in the next round.
type maintainer struct {
	service
	w *Worker

	// pruned counts the jobs deleted by retention (tests and logs).
	pruned atomic.Int64
	// analyzed counts the ANALYZEs of stale statistics (tests).
	analyzed atomic.Int64
	turn     atomic.Int64
}

// Start starts the loop; the first round runs at once.
func (m *maintainer) Start(ctx context.Context) { m.start(ctx, m.run) }

// Stop stops the loop and waits for it.
func (m *maintainer) Stop() { m.stop() }

func (m *maintainer) run(ctx context.Context) {
	tick := time.NewTicker(m.w.cfg.MaintenanceInterval)
	defer tick.Stop()
	for {
		leader, err := m.round(ctx)
		if err == nil && leader {
			err = m.analyzeIfStale(ctx)
		}
		if err == nil && leader {
			err = m.prune(ctx)
		}
		switch {
		case err == nil:
			m.w.health.ok("maintenance")
		case ctx.Err() == nil:
			m.w.health.failed("maintenance", fmt.Errorf("maintenance round: %w", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// round runs one maintenance round and reports whether this worker was
// its leader.
func (m *maintainer) round(ctx context.Context) (bool, error) {
	w := m.w
	ctx, cancel := context.WithTimeout(ctx, max(w.cfg.MaintenanceInterval, 10*time.Second))
	defer cancel()
	var rescued []*db.RescueJobsRow
	var leader bool
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		q := db.New(schema.Wrap(w.cfg.Schema, tx))
		var err error
		leader, err = q.TryMaintenanceLock(ctx, schema.Channel(w.cfg.Schema, "maintenance"))
		if err != nil || !leader {
			return err
		}
		rescued, err = q.RescueJobs(ctx, db.RescueJobsParams{
			Rescuer: w.cfg.WorkerID, StaleSeconds: w.cfg.RescueAfter.Seconds(), MaxJobs: rescueBatch,
		})
		if err != nil {
			return fmt.Errorf("rescue jobs: %w", err)
		}
		dead, err := q.DeleteDeadWorkers(ctx, w.cfg.RescueAfter.Seconds())
		if err != nil {
			return fmt.Errorf("delete dead workers: %w", err)
		}
		for _, id := range dead {
			w.log.Warn("removed dead worker", "dead_worker_id", id, "rescue_after", w.cfg.RescueAfter)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, r := range rescued {
		w.log.Warn("rescued job of a dead worker", "job_id", r.ID, "task", r.Task, "queue", r.Queue,
			"attempt", r.Attempt, "dead_worker_id", r.HeldBy, "state", r.State)
	}
	if len(rescued) > 0 {
		w.fetcher.wake()
	}
	return leader, nil
}

// Fresh statistics.
//
// The worker's statements are prepared once per connection and PostgreSQL
// keeps a generic plan for each after a few runs, made from the table's
// statistics at that moment. On a young or freshly emptied pgq.jobs those
// say "a few rows", so the plan reads the whole table (the completion
// joined its batch to a sequential scan), and it keeps doing so as the
// table grows until something replaces the statistics. Autovacuum does,
// but it looks at a database at most once a minute (autovacuum_naptime)
// and only after a tenth of the table changed: in a 10-second run at
// 1,000 jobs/s, the completions scanned up to 10,000 rows each and pickup
// latency in the harness was 4 ms at the median instead of 1.3
// (docs/performance.md). So the round's leader runs ANALYZE itself when
// the table has changed more since the last one than it held then (at
// least 1,000 rows): a handful of times while a table grows from empty,
// never for a large table in a steady state. ANALYZE invalidates the
// cached plans of every session. It is skipped when autovacuum holds the
// table, and a role that does not own pgq.jobs gets a warning from the
// server instead (autovacuum remains).
func (m *maintainer) analyzeIfStale(ctx context.Context) error {
	w := m.w
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stale, err := w.q.JobsStatsStale(ctx)
	if err != nil {
		return fmt.Errorf("read the job table's statistics: %w", err)
	}
	if !stale {
		return nil
	}
	start := time.Now()
	if err := w.q.AnalyzeJobs(ctx); err != nil {
		return fmt.Errorf("analyze the job table: %w", err)
	}
	m.analyzed.Add(1)
	w.log.Debug("analyzed the job table, whose statistics were stale", "duration", time.Since(start))
	return nil
}

// prune applies retention (see maintainer) and returns the first error.
func (m *maintainer) prune(ctx context.Context) error {
	w := m.w
	start := time.Now()
	budget := max(w.cfg.MaintenanceInterval/2, 50*time.Millisecond)
	total := int64(0)
	states := []struct {
		state string
		age   time.Duration
	}{
		{stateSucceeded, w.cfg.RetentionSucceeded},
		{stateFailed, w.cfg.RetentionFailed},
		{stateCancelled, w.cfg.RetentionCancelled},
	}
	// Start with another state each round, so that a backlog of one never
	// starves the others when the time budget runs out.
	first := int(m.turn.Add(1)) % len(states)
	for i := range states {
		r := states[(first+i)%len(states)]
		if r.age < 0 {
			continue // kept for ever
		}
		for {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			n, err := w.q.PruneJobs(sctx, db.PruneJobsParams{
				State: r.state, OlderThanSeconds: r.age.Seconds(), MaxRows: int32(w.cfg.PruneBatch),
			})
			cancel()
			if err != nil {
				return fmt.Errorf("retention: delete %s jobs older than %s: %w", r.state, r.age, err)
			}
			total += n
			m.pruned.Add(n)
			if n < int64(w.cfg.PruneBatch) || ctx.Err() != nil || time.Since(start) > budget {
				break
			}
		}
		if time.Since(start) > budget {
			break // the next round goes on
		}
	}
	if total > 0 {
		w.log.Info("retention: deleted finished jobs", "jobs", total, "duration", time.Since(start))
	}
	return nil
}
