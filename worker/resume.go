package worker

import (
	"context"
	"time"

	"github.com/pgq/pgq/db"
)

// Resumed claims.
//
// A claim walks its queue's part of jobs_fetch_idx from the front, and
// the front is where the entries of jobs claimed since the last VACUUM
// lie: a claimed job leaves the index's predicate, but its old entry stays
// until VACUUM removes it. While a worker works through a backlog those
// entries pile up ahead of every walk (in a drain of 200,000 jobs,
// hundreds of index pages per claim by the end, milliseconds each time),
// and autovacuum comes by at most once a minute.
//
// So after a claim that filled every free slot, the worker remembers, per
// queue, the last job it claimed in the index's order, and its next claim
// resumes there (ClaimJobsAfter, queries/worker.sql). Higher priorities are
// still walked from their front, so a more urgent job goes first as
// before. What a resumed walk can miss is a job of the same priority that
// sorts before the position: committed by a transaction that began before
// the position's job was enqueued, given a run time in the past, or
// handed back by a stopping worker. The worker therefore walks from the
// front again as soon as a resumed claim comes up short (the backlog ahead
// is done), after any claim that did not fill its slots, and at least once
// every resumeEvery.

// resumeEvery is the longest a worker resumes its walks before it walks
// every queue from the front again.
const resumeEvery = time.Second

// position is a job's place in jobs_fetch_idx's order within its queue:
// priority descending, then run time, then id.
type position struct {
	priority int16
	runAt    time.Time
	id       int64
}

// after reports whether p sorts after q.
func (p position) after(q position) bool {
	if p.priority != q.priority {
		return p.priority < q.priority
	}
	if !p.runAt.Equal(q.runAt) {
		return p.runAt.After(q.runAt)
	}
	return p.id > q.id
}

// resumeState is what the fetcher knows of its place in each queue.
type resumeState struct {
	after    map[string]position // nil: walk from the front
	walkedAt time.Time           // the last claim that walked from the front
	resumed  int                 // resumed claims so far (for tests)
}

// due reports whether the next claim may resume.
func (r *resumeState) due(now time.Time) bool {
	return r.after != nil && now.Sub(r.walkedAt) < resumeEvery
}

// record notes the outcome of a claim. A claim that did not fill its slots
// ends resuming: no backlog is left ahead of the positions. A full one
// moves each queue's position to the last job claimed from it; after a
// walk from the front the positions are those of this claim alone.
func (r *resumeState) record(rows []*db.ClaimJobsRow, full, fromFront bool, now time.Time) {
	if fromFront {
		r.walkedAt = now
		r.after = nil
	}
	if !full {
		r.after = nil
		return
	}
	if r.after == nil {
		r.after = make(map[string]position, 1)
	}
	for i := range rows {
		p := position{priority: rows[i].Priority, runAt: rows[i].RunAt, id: rows[i].ID}
		if cur, ok := r.after[rows[i].Queue]; !ok || p.after(cur) {
			r.after[rows[i].Queue] = p
		}
	}
}

// claimResumed claims up to n jobs of the queues with resumed walks. A
// queue without a position is walked from its front (priority -1: every
// priority is "higher").
func (f *fetcher) claimResumed(ctx context.Context, v *limitsView, n int) ([]*db.ClaimJobsRow, error) {
	w := f.w
	p := db.ClaimJobsAfterParams{
		WorkerID: w.cfg.WorkerID, Queues: v.free, ExcludedTasks: v.excluded, MaxJobs: int32(n), Durable: w.cfg.DurableClaims,
		AfterPriorities: make([]int16, len(v.free)),
		AfterRunAts:     make([]time.Time, len(v.free)),
		AfterIds:        make([]int64, len(v.free)),
	}
	for i, q := range v.free {
		pos, ok := f.resume.after[q]
		if !ok {
			pos = position{priority: -1}
		}
		p.AfterPriorities[i], p.AfterRunAts[i], p.AfterIds[i] = pos.priority, pos.runAt, pos.id
	}
	rows, err := w.q.ClaimJobsAfter(ctx, p)
	if err != nil {
		return nil, err
	}
	f.resume.resumed++
	out := make([]*db.ClaimJobsRow, len(rows))
	for i := range rows {
		out[i] = (*db.ClaimJobsRow)(rows[i])
	}
	return out, nil
}
