package worker

import (
	"context"
	"fmt"
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
type maintainer struct {
	service
	w *Worker
}

// Start starts the loop; the first round runs at once.
func (m *maintainer) Start(ctx context.Context) { m.start(ctx, m.run) }

// Stop stops the loop and waits for it.
func (m *maintainer) Stop() { m.stop() }

func (m *maintainer) run(ctx context.Context) {
	tick := time.NewTicker(m.w.cfg.MaintenanceInterval)
	defer tick.Stop()
	for {
		switch _, err := m.round(ctx); {
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

// round runs one maintenance round and returns the number of jobs it
// rescued (0 when another worker is the leader).
func (m *maintainer) round(ctx context.Context) (int, error) {
	w := m.w
	ctx, cancel := context.WithTimeout(ctx, max(w.cfg.MaintenanceInterval, 10*time.Second))
	defer cancel()
	var rescued []db.RescueJobsRow
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		q := db.New(schema.Wrap(w.cfg.Schema, tx))
		leader, err := q.TryMaintenanceLock(ctx, schema.Channel(w.cfg.Schema, "maintenance"))
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
		return 0, err
	}
	for _, r := range rescued {
		w.log.Warn("rescued job of a dead worker", "job_id", r.ID, "task", r.Task, "queue", r.Queue,
			"attempt", r.Attempt, "dead_worker_id", r.HeldBy, "state", r.State)
	}
	if len(rescued) > 0 {
		w.fetcher.wake()
	}
	return len(rescued), nil
}
