package worker

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgq/pgq/db"
)

// Moving staged jobs.
//
// A staged enqueue (queue.Options.Staged) writes its job to
// pgq.staged_jobs, which has no index and no checks, so that it costs the
// producer's transaction little; no queue can claim it there. Every
// worker's fetcher moves staged jobs into pgq.jobs before it claims: when
// a producer's wake-up says jobs were staged (the StagedWake payload), and
// at least once per PollInterval, which covers a lost notification and
// jobs staged while no worker ran. The move is one statement per batch
// and wakes the queues it filled, so the workers of those queues claim the
// jobs at once, whichever worker moved them.

// stagedBatch is the most staged jobs one statement moves, and
// stagedBatchesPerRound the most statements one round sends before the
// fetcher claims: a large heap of staged jobs is moved a round at a time,
// between claims, so that the worker does not stop claiming meanwhile.
const (
	stagedBatch           = 1000
	stagedBatchesPerRound = 10
)

// stagedWaiting records that a producer staged jobs, and wakes the
// fetcher to move them.
func (f *fetcher) stagedWaiting() {
	f.stagedPending.Store(true)
	f.wake()
}

// moveStagedIfDue moves staged jobs when a producer said it staged some
// or a poll interval has passed since the last move.
func (f *fetcher) moveStagedIfDue(ctx context.Context, now time.Time) {
	if f.stagedPending.Swap(false) || now.Sub(f.lastMove) >= f.w.cfg.PollInterval {
		f.moveStaged(ctx)
	}
}

// moveStaged moves staged jobs into pgq.jobs, up to stagedBatchesPerRound
// batches (and asks for another round if there may be more), and returns
// how many it moved. A batch that breaks a rule of pgq.jobs (a row written
// by hand with a value the domains refuse) is moved one job at a time, so
// that the bad row alone stays behind, reported in the log.
func (f *fetcher) moveStaged(ctx context.Context) int {
	w := f.w
	f.lastMove = time.Now()
	moved := 0
	for range stagedBatchesPerRound {
		rows, err := w.q.MoveStagedJobs(ctx, db.MoveStagedJobsParams{MaxJobs: stagedBatch})
		if err != nil {
			if ruleBroken(err) {
				return moved + f.moveStagedOneByOne(ctx)
			}
			if ctx.Err() == nil {
				w.log.Warn("moving staged jobs into the jobs table failed; trying again at the next poll", "error", err)
			}
			return moved
		}
		n := 0
		for _, r := range rows {
			n += int(r.Moved)
		}
		moved += n
		if n < stagedBatch {
			return moved
		}
	}
	f.stagedWaiting() // more may be staged: another round after this claim
	return moved
}

// moveStagedOneByOne moves the oldest staged jobs one statement each.
func (f *fetcher) moveStagedOneByOne(ctx context.Context) int {
	w := f.w
	ids, err := w.q.StagedJobIDs(ctx, stagedBatch)
	if err != nil {
		w.log.Warn("listing staged jobs failed; trying again at the next poll", "error", err)
		return 0
	}
	moved := 0
	for _, id := range ids {
		rows, err := w.q.MoveStagedJobs(ctx, db.MoveStagedJobsParams{OnlyID: &id, MaxJobs: 1})
		switch {
		case err != nil && ruleBroken(err):
			w.log.Error("a staged job breaks a rule of the jobs table and stays staged: fix or delete its row in staged_jobs",
				"job_id", id, "error", err)
		case err != nil:
			w.log.Warn("moving a staged job failed; trying again at the next poll", "job_id", id, "error", err)
			return moved
		default:
			for _, r := range rows {
				moved += int(r.Moved)
			}
		}
	}
	return moved
}

// ruleBroken reports whether err is the server refusing a value (data
// exception or integrity constraint: classes 22 and 23).
func ruleBroken(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}
