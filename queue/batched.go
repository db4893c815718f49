package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgq/pgq/internal/schema"
)

// Enqueuing in the caller's pipeline.
//
// EnqueueTx sends its statement at once and waits for the answer: one
// round trip more than the transaction would make without it: in a short
// business transaction (BEGIN, one INSERT, COMMIT) a fourth one. So
// EnqueueBatched queues the enqueue on the
// caller's pgx.Batch instead, and it travels with the caller's own
// statements: the transaction makes as many round trips with the enqueue
// as without it (docs/performance.md, "Single enqueue inside a business
// transaction").

// BatchedJob is an enqueue queued on a pgx.Batch by EnqueueBatched. Its
// outcome is known once the batch's results have been read (after
// BatchResults.Close returned).
type BatchedJob struct {
	c      *Client
	task   string
	queue  string
	own    *Tx // wakes queue after its commit; nil: the statement notifies
	done   bool
	job    Enqueued
	err    error
	unique bool
	staged bool
}

// ErrBatchNotSent is returned by BatchedJob.Result when the batch's results
// have not been read yet.
var ErrBatchNotSent = errors.New("pgq: this enqueue's answer has not been read: send its batch and Close the results first (or a statement queued before it failed)")

// Result is the enqueued job, or the error its statement met. Before the
// batch's results have been read it returns ErrBatchNotSent.
func (j *BatchedJob) Result() (Enqueued, error) {
	if !j.done {
		return Enqueued{}, ErrBatchNotSent
	}
	return j.job, j.err
}

// EnqueueBatched queues the enqueue of one job on b, to be sent with the
// caller's other statements when b is sent in tx: the enqueue then adds
// no round trip of its own. It checks and encodes the job at once (invalid
// input is an error here, and nothing is queued); the job's id and state
// are known from the returned BatchedJob once b's results have been read.
//
// Send b with tx.SendBatch, where tx is the transaction the job must
// belong to. With a transaction from Client.Begin the wake-up is sent in
// the background after its Commit; otherwise the statement notifies
// inside the transaction, as EnqueueTx does.
//
// A job with a unique key whose holder finished while the statement ran
// is reported as an error by BatchedJob.Result (EnqueueTx would try
// again); send an EnqueueTx for it then.
func (c *Client) EnqueueBatched(ctx context.Context, tx pgx.Tx, b *pgx.Batch, args TaskArgs, opts *Options) (*BatchedJob, error) {
	if b == nil {
		return nil, invalid("batch", "batch is nil: pass the *pgx.Batch the caller will send")
	}
	p, err := c.prepare(args, opts, time.Now())
	if err != nil {
		return nil, err
	}
	p = c.traced(ctx, p)
	own := c.ownTx(tx)
	j := &BatchedJob{c: c, task: p.task, queue: p.queue, own: own, unique: p.unique != nil, staged: p.staged}
	rec := &recorder{}
	q := c.queries(rec)
	wake := own == nil
	switch {
	case p.staged:
		_, _ = q.StageJob(ctx, p.stageParams(wake))
	case p.unique == nil:
		_, _ = q.InsertJob(ctx, p.insertParams(wake))
	default:
		_, _ = insertUniqueOnce(ctx, q, p, wake)
	}
	b.Queue(rec.sql, rec.args...).QueryRow(j.scan)
	return j, nil
}

// scan reads the statement's answer when the batch's results are read.
func (j *BatchedJob) scan(row pgx.Row) error {
	j.done = true
	e := Enqueued{Task: j.task, Queue: j.queue, Staged: j.staged, client: j.c}
	var err error
	if j.unique {
		err = row.Scan(&e.ID, &e.State, &e.RunAt, &e.Duplicate, &e.Replaced)
	} else {
		err = row.Scan(&e.ID, &e.State, &e.RunAt)
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		j.err = fmt.Errorf("enqueue %s: its unique key changed hands while the statement ran; enqueue it again", j.task)
	case err != nil:
		j.err = dbError(j.c.schema, fmt.Sprintf("enqueue %s", j.task), err)
	default:
		j.job, j.err = j.c.observe(e, nil)
		if j.own != nil && e.wakes() {
			j.own.deferWake(e.wakeTopic())
		}
	}
	return j.err
}

// recorder is a db.DBTX that keeps the one statement a generated query
// sends, without sending it: the generated code stays the one place that
// knows the statement and the order of its arguments.
type recorder struct {
	sql  string
	args []any
}

var errRecorded = errors.New("pgq: statement recorded, not sent")

func (r *recorder) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	r.sql, r.args = sql, args
	return recordedRow{}
}

func (r *recorder) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errRecorded
}

func (r *recorder) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errRecorded
}

func (r *recorder) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errRecorded
}

type recordedRow struct{}

func (recordedRow) Scan(...any) error { return errRecorded }

var _ schema.DBTX = (*recorder)(nil)
