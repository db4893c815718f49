package queue

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/internal/schema"
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
// visible to the worker it wakes.
//
// The statements are sent by one goroutine per client, started when a
// wake-up is handed over and gone as soon as none is pending. Wake-ups
// handed over while a statement is in flight ride together in the next
// one (the way PostgreSQL's own group commit shares a flush), so
// concurrent producers send far fewer NOTIFYs than jobs.
//
// Enqueue and EnqueueMany wait until a NOTIFY covering their queue has
// been sent, so a program that exits right after Enqueue has woken its
// workers. Tx.Commit does not wait: waiting cost each transaction a round
// trip it did not need, since a worker that misses the wake-up still finds
// the job at its next poll. A program that exits right after a commit
// calls Client.Flush first.
//
// EnqueueTx with any other pgx.Tx keeps the NOTIFY inside the caller's
// transaction: pgq cannot see that transaction's commit.
//
// A wake-up that fails (the pool cannot reach the server) is not an
// enqueue error: the job committed, and workers find it at their next poll.

// wakeTimeout bounds one wake-up statement. The statement runs on a
// context of its own: the callers it serves may be gone, and their
// contexts with them, as soon as their commit returned.
const wakeTimeout = 5 * time.Second

// stagedWakeGap is the shortest time between two wake-ups that carry
// nothing but the staged jobs' topic. A wake-up is a statement and a
// commit of its own (NOTIFY gives its transaction an xid); with staged
// enqueues arriving faster than those can be sent back to back, about one
// went out per two transactions, a third of what a staged enqueue cost
// its transaction (docs/performance.md, "Staged enqueue"). Staging is the
// form chosen for the producer's throughput, so its wake-ups wait for
// each other under load: the first after a pause goes at once.
const stagedWakeGap = 5 * time.Millisecond

// waker sends the post-commit wake-ups of one Client.
type waker struct {
	// notify sends one NOTIFY statement for queues through the pool (a
	// field so that a test can hold it).
	notify func(ctx context.Context, queues []string) error

	mu         sync.Mutex
	cur        *wakeBatch     // the batch new wake-ups join
	last       *wakeBatch     // the last batch a wake-up joined; nil before the first
	sending    bool           // the sender goroutine runs
	sender     sync.WaitGroup // the sender goroutine, so a test can see it gone
	lastStaged time.Time      // when the last send carrying the staged topic began
}

// wakeBatch is the set of queues one NOTIFY statement wakes.
type wakeBatch struct {
	queues map[string]struct{}
	done   chan struct{} // closed once sent (or failed)
}

func newWaker(c *Client) *waker {
	notify := func(ctx context.Context, queues []string) error {
		return c.queries(c.pool).NotifyQueues(ctx, queues)
	}
	return &waker{notify: notify, cur: newWakeBatch()}
}

func newWakeBatch() *wakeBatch {
	return &wakeBatch{queues: map[string]struct{}{}, done: make(chan struct{})}
}

// wake hands queues over and returns once a wake-up that covers them has
// been sent (or ctx ends). A waiting caller holds no connection.
func (w *waker) wake(ctx context.Context, queues []string) {
	b := w.post(queues)
	if b == nil {
		return
	}
	select {
	case <-b.done:
	case <-ctx.Done():
	}
}

// post hands queues over to the sender without waiting and returns the
// batch that will carry them (nil for no queues). With no sender running
// it starts one with this batch; otherwise the batch waits for the send in
// flight to end.
func (w *waker) post(queues []string) *wakeBatch {
	if len(queues) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.cur
	for _, q := range queues {
		b.queues[q] = struct{}{}
	}
	w.last = b
	if !w.sending {
		w.sending = true
		w.cur = newWakeBatch()
		w.sender.Go(func() { w.run(b) })
	}
	return b
}

// run sends b, then whatever batch gathered meanwhile, until none is
// pending. It marks itself stopped under the same lock that closes the
// last batch, so whoever saw that batch sent also sees the sender gone,
// and a post that comes later starts a new one.
func (w *waker) run(b *wakeBatch) {
	for {
		w.send(b)
		w.mu.Lock()
		close(b.done)
		if len(w.cur.queues) == 0 {
			w.sending = false
			w.mu.Unlock()
			return
		}
		if wait := w.paceFor(w.cur, time.Now()); wait > 0 {
			// Wake-ups arriving meanwhile join w.cur.
			w.mu.Unlock()
			time.Sleep(wait)
			w.mu.Lock()
		}
		b = w.cur
		w.cur = newWakeBatch()
		w.mu.Unlock()
	}
}

// paceFor returns how long batch b must wait before it is sent: it
// carries only the staged topic and the last send that carried it began
// less than stagedWakeGap ago. Called with w.mu held.
func (w *waker) paceFor(b *wakeBatch, now time.Time) time.Duration {
	if _, staged := b.queues[schema.StagedWake]; !staged || len(b.queues) > 1 {
		return 0
	}
	return stagedWakeGap - now.Sub(w.lastStaged)
}

// send sends one batch in a statement of its own.
func (w *waker) send(b *wakeBatch) {
	if _, staged := b.queues[schema.StagedWake]; staged {
		w.mu.Lock()
		w.lastStaged = time.Now()
		w.mu.Unlock()
	}
	queues := make([]string, 0, len(b.queues))
	for q := range b.queues {
		queues = append(queues, q)
	}
	slices.Sort(queues)
	ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
	defer cancel()
	// An error is dropped on purpose: see "Waking workers after the commit".
	_ = w.notify(ctx, queues)
}

// flush waits until the wake-ups handed over so far have been sent.
// Batches are sent in the order they fill, so the last one is enough.
func (w *waker) flush(ctx context.Context) error {
	w.mu.Lock()
	b := w.last
	w.mu.Unlock()
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
		return nil // already sent: do not let a finished ctx win the race
	default:
	}
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush waits until every wake-up handed over before the call has been
// sent, and returns ctx.Err() if ctx ends first. Only Tx.Commit hands a
// wake-up over without waiting for it (Enqueue and EnqueueMany wait), so a
// program that exits right after committing a transaction from Begin
// calls Flush to be sure its workers hear of the jobs now; without it they
// find them at their next poll. A wake-up whose statement failed counts
// as sent and is not reported: its jobs are committed all the same, and
// the poll finds them.
func (c *Client) Flush(ctx context.Context) error {
	return c.waker.flush(ctx)
}

// Tx is a transaction begun by Client.Begin. It is a pgx.Tx; EnqueueTx and
// EnqueueManyTx given a *Tx leave the queues' wake-up out of the
// transaction, and Commit hands it to the client's sender once the commit
// has succeeded, so that concurrent enqueuing transactions can share a WAL
// flush (see Client.Begin).
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
// notification sent after the commit instead of one sent inside the
// transaction. A notifying transaction holds PostgreSQL's notification
// lock until its commit is flushed, so with many concurrent producers this
// form commits several times as many transactions per second
// (docs/performance.md). Commit or Rollback it as any pgx.Tx.
//
// Commit returns without waiting for the notification, which the client
// sends in the background: a program that exits right after Commit calls
// Flush first, or its workers find the jobs only at their next poll.
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
// pool) and hands the wake-up of the queues jobs were enqueued into to the
// client's background sender. It returns without waiting for that
// notification: the job is already committed, and a worker that is not
// woken finds it at its next poll, so waiting would only add a round trip
// to every transaction. A program that exits right after Commit calls
// Client.Flush first.
func (t *Tx) Commit(ctx context.Context) error {
	return t.commit(ctx, false)
}

// commit commits and hands the wake-up over; with wait it returns only
// once the wake-up has been sent (or ctx ends), as EnqueueMany needs.
func (t *Tx) commit(ctx context.Context, wait bool) error {
	if err := t.Tx.Commit(ctx); err != nil {
		return err
	}
	queues := t.queues
	t.queues = nil
	if wait {
		t.c.waker.wake(ctx, queues)
	} else {
		t.c.waker.post(queues)
	}
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
