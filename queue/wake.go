package queue

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Waking workers after the commit.
//
// Workers sleep on LISTEN and wake on a NOTIFY for one of their queues.
// PostgreSQL delivers a notification only when its transaction commits,
// which is what a transactional enqueue needs, but it pays for that order
// with a database-wide lock that a notifying transaction holds from just
// before its commit until the commit record is flushed. Concurrent
// enqueuing transactions therefore commit one flush at a time instead of
// sharing one: at 8 producers the bare INSERT transaction ran at about
// 5,500 tx/s here, with a notifying enqueue 2,100 tx/s, with the same
// enqueue and no NOTIFY in it 3,300 tx/s (docs/performance.md).
//
// When the client owns the transaction (Enqueue, EnqueueMany, and the
// transactions of Client.Begin and Client.BeginFunc), it therefore leaves
// the NOTIFY out of the transaction and sends it itself once the commit
// has returned, in a statement of its own. Such a statement writes no WAL,
// so it holds the lock for microseconds, and the job it announces is
// visible to the worker it wakes. Wake-ups that arrive while one is being
// sent ride together in the next (the way PostgreSQL's own group commit
// shares a flush), so concurrent producers send far fewer NOTIFYs than
// jobs. A caller returns once a NOTIFY that covers its queues has been
// sent, so a program that exits right after Enqueue has woken its workers.
//
// EnqueueTx with any other pgx.Tx keeps the NOTIFY inside the caller's
// transaction: pgq cannot see that transaction's commit.
//
// A wake-up that fails (the pool cannot reach the server) is not an
// enqueue error: the job committed, and workers find it at their next poll.

// wakeTimeout bounds one wake-up statement; the caller's context may end as
// soon as its commit returned.
const wakeTimeout = 5 * time.Second

// waker sends the post-commit wake-ups of one Client.
type waker struct {
	// notify sends one NOTIFY statement for queues through the pool (a
	// field so that a test can hold it).
	notify func(ctx context.Context, queues []string) error

	mu      sync.Mutex
	cur     *wakeBatch    // the batch new wake-ups join
	sending bool          // a batch is being sent
	free    chan struct{} // closed when the batch in flight has been sent
}

// wakeBatch is the set of queues one NOTIFY statement wakes.
type wakeBatch struct {
	queues map[string]struct{}
	done   chan struct{} // closed once sent
}

func newWaker(c *Client) *waker {
	notify := func(ctx context.Context, queues []string) error {
		return c.queries(c.pool).NotifyQueues(ctx, queues)
	}
	return &waker{notify: notify, cur: newWakeBatch(), free: make(chan struct{})}
}

func newWakeBatch() *wakeBatch {
	return &wakeBatch{queues: map[string]struct{}{}, done: make(chan struct{})}
}

// wake sends a wake-up for queues and returns once one has been sent that
// covers them (or ctx ends). The first caller finding no send in flight
// sends the current batch through the pool; callers arriving meanwhile
// join the next batch and one of them sends it when the first send is
// over. A waiting caller holds no connection.
func (w *waker) wake(ctx context.Context, queues []string) {
	if len(queues) == 0 {
		return
	}
	w.mu.Lock()
	b := w.cur
	for _, q := range queues {
		b.queues[q] = struct{}{}
	}
	for {
		if b != w.cur {
			// Another caller took this batch and is sending it.
			w.mu.Unlock()
			select {
			case <-b.done:
			case <-ctx.Done():
			}
			return
		}
		if !w.sending {
			w.sending = true
			w.cur = newWakeBatch()
			w.mu.Unlock()
			w.send(ctx, b)
			w.mu.Lock()
			w.sending = false
			close(b.done)
			close(w.free)
			w.free = make(chan struct{})
			w.mu.Unlock()
			return
		}
		free := w.free
		w.mu.Unlock()
		select {
		case <-free:
		case <-ctx.Done():
			return
		}
		w.mu.Lock()
	}
}

// send sends one batch in a statement of its own. It outlives the
// caller's context: the other callers of the batch wait for it.
func (w *waker) send(ctx context.Context, b *wakeBatch) {
	queues := make([]string, 0, len(b.queues))
	for q := range b.queues {
		queues = append(queues, q)
	}
	slices.Sort(queues)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wakeTimeout)
	defer cancel()
	// An error is dropped on purpose: see "Waking workers after the commit".
	_ = w.notify(ctx, queues)
}

// Tx is a transaction begun by Client.Begin. It is a pgx.Tx; EnqueueTx and
// EnqueueManyTx given a *Tx leave the queues' wake-up out of the
// transaction, and Commit sends it once the commit has succeeded, so that
// concurrent enqueuing transactions can share a WAL flush (see
// Client.Begin).
//
// Like any pgx.Tx it is for one goroutine at a time.
type Tx struct {
	pgx.Tx
	c      *Client
	queues []string // queues to wake after commit
}

// Begin starts a transaction on the client's pool for enqueuing together
// with the caller's own writes: the transactional enqueue's fastest form.
// Jobs enqueued in it with EnqueueTx or EnqueueManyTx exist only if it
// commits, as with any pgx.Tx, but their workers are woken by a
// notification sent right after the commit instead of one sent inside the
// transaction. A notifying transaction holds PostgreSQL's notification
// lock until its commit is flushed, so with many concurrent producers this
// form commits several times as many transactions per second
// (docs/performance.md). Commit or Rollback it as any pgx.Tx.
func (c *Client) Begin(ctx context.Context) (*Tx, error) {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return nil, dbError(c.schema, "begin transaction", err)
	}
	return &Tx{Tx: tx, c: c}, nil
}

// BeginFunc runs fn in a transaction from Begin and commits it when fn
// returns nil, rolls it back otherwise (as pgx.BeginFunc).
func (c *Client) BeginFunc(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Commit commits the transaction (which returns its connection to the
// pool) and then wakes the workers of the queues jobs were enqueued into.
func (t *Tx) Commit(ctx context.Context) error {
	if err := t.Tx.Commit(ctx); err != nil {
		return err
	}
	queues := t.queues
	t.queues = nil
	t.c.waker.wake(ctx, queues)
	return nil
}

// deferWake records queues to wake after commit.
func (t *Tx) deferWake(queues ...string) {
	for _, q := range queues {
		if !slices.Contains(t.queues, q) {
			t.queues = append(t.queues, q)
		}
	}
}

// ownTx returns tx as a *Tx of this client, or nil: the wake-up then goes
// inside the caller's transaction.
func (c *Client) ownTx(tx pgx.Tx) *Tx {
	if t, ok := tx.(*Tx); ok && t.c == c {
		return t
	}
	return nil
}
