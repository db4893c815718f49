package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
)

// Request is one job of a bulk enqueue.
type Request struct {
	Args    TaskArgs
	Options *Options // nil means the task's defaults
}

// EnqueueMany enqueues jobs in one transaction of its own, and returns
// once it has committed and the queues' workers have been woken. See
// EnqueueManyTx.
func (c *Client) EnqueueMany(ctx context.Context, reqs []Request) ([]Enqueued, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after the commit
	out, err := c.EnqueueManyTx(ctx, tx, reqs)
	if err != nil {
		return out, err
	}
	// Unlike Tx.Commit, wait for the wake-up, as Enqueue does.
	return out, tx.commit(ctx, true)
}

// EnqueueManyTx enqueues jobs inside the caller's transaction with COPY:
// four statements whatever the number of jobs (reserve ids and read the
// queues' default options, both while the jobs are prepared; COPY; wake
// the queues), and one wake-up per queue at commit. Jobs with a unique key cannot
// go through COPY (it has no ON CONFLICT); they are inserted one statement
// each. One invalid job fails the call, naming its index, and leaves tx
// usable: nothing is written before every job has been checked.
//
// With a transaction from Client.Begin, the wake-ups are sent in the
// background after its Commit instead (see EnqueueTx).
//
// The result is in request order.
func (c *Client) EnqueueManyTx(ctx context.Context, tx pgx.Tx, reqs []Request) ([]Enqueued, error) {
	own := c.ownTx(tx)
	out, err := c.enqueueMany(ctx, tx, own == nil, reqs)
	if err != nil || own == nil {
		return out, err
	}
	for _, e := range out {
		if e.wakes() {
			own.deferWake(e.Queue)
		}
	}
	return out, nil
}

// enqueueMany is EnqueueManyTx; with wake, the queues' wake-ups are sent
// inside tx.
func (c *Client) enqueueMany(ctx context.Context, tx pgx.Tx, wake bool, reqs []Request) ([]Enqueued, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	q := c.queries(tx)

	// Reserve ids and read the queues' defaults while the jobs are checked
	// and encoded: the queries need only the count, and the two sides take
	// about as long (a tenth of a 100k COPY each). The connection is not
	// used here until they have answered.
	type reserved struct {
		ids      []int64
		defaults queueDefaultsByName
		err      error
	}
	reservation := make(chan reserved, 1)
	go func() {
		ids, err := q.ReserveJobIDs(ctx, int32(len(reqs)))
		if err != nil {
			reservation <- reserved{err: dbError(c.schema, "reserve job ids", err)}
			return
		}
		defaults, err := c.queueDefaults(ctx, q)
		reservation <- reserved{ids, defaults, err}
	}()

	now := time.Now()
	trace := c.traceMembers(ctx)
	jobs := make([]prepared, len(reqs))
	var plain, unique []int // indexes into reqs
	var invalid error
	for i, r := range reqs {
		p, err := c.prepare(r.Args, r.Options, now)
		if err != nil {
			invalid = fmt.Errorf("job %d of %d: %w", i, len(reqs), err)
			break
		}
		p.meta = withTrace(p.meta, trace)
		jobs[i] = p
		if p.unique == nil {
			plain = append(plain, i)
		} else {
			unique = append(unique, i)
		}
	}
	r := <-reservation
	if invalid != nil {
		return nil, invalid // only sequence values were used up
	}
	if r.err != nil {
		return nil, r.err
	}

	out := make([]Enqueued, len(reqs))
	if len(plain) > 0 {
		if err := c.copyJobs(ctx, q, wake, now, r.ids, r.defaults, jobs, plain, out); err != nil {
			return nil, err
		}
	}
	if len(unique) > 0 {
		if err := c.insertUniques(ctx, tx, wake, jobs, unique, out); err != nil {
			return nil, err
		}
	}
	return c.observeMany(out, nil)
}

// copyJobs sends the jobs at idx with COPY, using the reserved ids, and
// with wake their queues' wake-ups.
func (c *Client) copyJobs(ctx context.Context, q *db.Queries, wake bool, now time.Time, ids []int64, defaults queueDefaultsByName, jobs []prepared, idx []int, out []Enqueued) error {
	rows := make([]db.CopyJobsParams, len(idx))
	for k, i := range idx {
		p := defaults.apply(jobs[i])
		// COPY cannot call now(): times are taken from this machine's clock.
		runAt := now.Add(p.countdown)
		if p.runAt != nil {
			runAt = *p.runAt
		}
		expiresAt := p.expiresAt
		if p.expiresIn != nil {
			expiresAt = Ptr(now.Add(*p.expiresIn))
		}
		rows[k] = db.CopyJobsParams{
			ID: ids[k], Task: p.task, Queue: p.queue, State: p.state, Priority: *p.priority,
			Args: p.args, Meta: p.meta, MaxRetries: *p.maxRetries,
			RetryDelayMs: p.retryDelayMs, TimeLimitMs: p.timeLimitMs, SoftTimeLimitMs: p.softTimeLimitMs,
			IgnoreResult: p.ignoreResult, RunAt: runAt, ExpiresAt: expiresAt, MutexKey: p.mutexKey,
		}
		out[i] = Enqueued{ID: ids[k], Task: p.task, Queue: p.queue, State: p.state, RunAt: runAt, client: c}
	}
	if _, err := q.CopyJobs(ctx, rows); err != nil {
		return dbError(c.schema, fmt.Sprintf("copy %d jobs", len(rows)), err)
	}
	if !wake {
		return nil
	}
	if err := q.NotifyQueues(ctx, queuesOf(rows)); err != nil {
		return dbError(c.schema, "wake queues", err)
	}
	return nil
}

// insertUniques inserts the unique-key jobs of a bulk enqueue one statement
// each: their conflict handling needs INSERT ... ON CONFLICT, which COPY
// lacks.
func (c *Client) insertUniques(ctx context.Context, tx pgx.Tx, wake bool, jobs []prepared, idx []int, out []Enqueued) error {
	q := c.queries(tx)
	for _, i := range idx {
		e, err := c.insertUnique(ctx, q, jobs[i], wake)
		if err != nil {
			return err
		}
		out[i] = e
	}
	return nil
}

// queuesOf returns the distinct queues of rows.
func queuesOf(rows []db.CopyJobsParams) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rows {
		if !seen[r.Queue] {
			seen[r.Queue] = true
			out = append(out, r.Queue)
		}
	}
	return out
}

// queueDefaultsByName holds the pgq.queues defaults of some queues.
type queueDefaultsByName map[string]db.QueueDefaultsRow

// queueDefaults reads the default options of every queue that has some.
func (c *Client) queueDefaults(ctx context.Context, q *db.Queries) (queueDefaultsByName, error) {
	rows, err := q.QueueDefaults(ctx)
	if err != nil {
		return nil, dbError(c.schema, "read queue defaults", err)
	}
	out := make(queueDefaultsByName, len(rows))
	for _, r := range rows {
		out[r.Name] = *r
	}
	return out, nil
}

// apply fills p's unset options from its queue's defaults, then the
// package's, as InsertJob does in SQL.
func (d queueDefaultsByName) apply(p prepared) prepared {
	qd := d[p.queue]
	p.priority = firstOf(p.priority, qd.Priority, Ptr(int16(PriorityDefault)))
	p.maxRetries = firstOf(p.maxRetries, qd.MaxRetries, Ptr(int32(MaxRetriesDefault)))
	p.retryDelayMs = firstOf(p.retryDelayMs, qd.RetryDelayMs)
	p.timeLimitMs = firstOf(p.timeLimitMs, qd.TimeLimitMs)
	p.softTimeLimitMs = firstOf(p.softTimeLimitMs, qd.SoftTimeLimitMs)
	return p
}

// firstOf returns the first non-nil pointer, or nil.
func firstOf[T any](ptrs ...*T) *T {
	for _, p := range ptrs {
		if p != nil {
			return p
		}
	}
	return nil
}
