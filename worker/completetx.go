package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
)

// CompleteTx marks the job succeeded, with result, inside tx: the job is
// finished exactly when the handler's own writes in tx commit. Use it for
// exactly-once effects:
//
//	func(ctx context.Context, job *worker.Job[Charge]) (any, error) {
//		return nil, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//			if _, err := tx.Exec(ctx, "INSERT INTO payments ...", job.Args.OrderID); err != nil {
//				return err
//			}
//			return worker.CompleteTx(ctx, tx, job, receipt)
//		})
//	}
//
// If tx rolls back, the job is still running and the handler's return
// value decides, as usual; a handler that returns nil although its
// transaction did not commit gets a failed attempt saying so. CompleteTx
// returns ErrNotHeld when the attempt no longer holds the job.
func CompleteTx(ctx context.Context, tx pgx.Tx, job JobRef, result any) error {
	if job == nil || job.info() == nil || job.info().exec == nil {
		return errors.New("worker.CompleteTx: the job was not given to a handler by a worker")
	}
	e := job.info().exec
	var b json.RawMessage
	if !e.ignoreResult {
		var err error
		if b, err = json.Marshal(result); err != nil {
			return fmt.Errorf("complete job %d: encode result of task %s as JSON: %w", e.row.ID, e.row.Task, err)
		}
	}
	_, err := db.New(schema.Wrap(e.w.cfg.Schema, tx)).CompleteJob(ctx, db.CompleteJobParams{
		Result: b, ID: e.row.ID, WorkerID: e.w.cfg.WorkerID, Attempt: e.row.Attempt,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("complete job %d (attempt %d): %w", e.row.ID, e.row.Attempt, ErrNotHeld)
	}
	if err != nil {
		return fmt.Errorf("complete job %d: %w", e.row.ID, err)
	}
	e.completedTx.Store(true)
	return nil
}
