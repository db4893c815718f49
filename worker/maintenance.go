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
	turn   atomic.Int64
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
