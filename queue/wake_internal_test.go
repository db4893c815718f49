package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
)

// Wake-ups that arrive while one is being sent ride together in the next
// statement, and each caller returns only once its queues were sent.
func TestWakeUpsArrivingDuringASendShareTheNext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var (
		mu    sync.Mutex
		sends [][]string
	)
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	w := newWaker(nil)
	w.notify = func(_ context.Context, queues []string) error {
		mu.Lock()
		sends = append(sends, queues)
		first := len(sends) == 1
		mu.Unlock()
		entered <- struct{}{}
		if first {
			<-release // hold the first send until the others have queued
		}
		return nil
	}

	firstDone := make(chan struct{})
	go func() {
		w.wake(ctx, []string{"a"})
		close(firstDone)
	}()
	<-entered // the first send is in flight

	const others = 20
	var (
		wg     sync.WaitGroup
		queues []string
	)
	returned := make(chan string, others)
	for i := range others {
		q := fmt.Sprintf("q%02d", i) // a queue each, so the batch shows who joined
		queues = append(queues, q)
		wg.Go(func() {
			w.wake(ctx, []string{q})
			returned <- q
		})
	}
	// Every caller has joined the waiting batch once it holds all their
	// queues, and nobody has returned (they cannot before the first send
	// ends).
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.cur.queues) == others
	}, 5*time.Second, time.Millisecond)
	require.Empty(t, returned, "a caller returned before its wake-up was sent")

	close(release)
	wg.Wait()
	<-firstDone
	require.Equal(t, [][]string{{"a"}, queues}, sends, "one statement for the first caller, one for the twenty that came meanwhile")
}

// A caller whose context ends stops waiting; the batch is still sent by
// whoever sends it.
func TestWakeReturnsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	w := newWaker(nil)
	w.notify = func(context.Context, []string) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	go w.wake(context.Background(), []string{"a"})
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.wake(ctx, []string{"b"}) // returns although a send is in flight
	close(release)
}

// waitTimeout bounds each wait on an event in these tests.
const waitTimeout = 20 * time.Second

// heldNotify holds a client's wake-up statements: each reports its queues
// on entered and waits for release before it is really sent; sent counts
// the statements that went out.
type heldNotify struct {
	entered chan []string
	release chan struct{}
	sent    atomic.Int32
}

func holdNotify(c *Client) *heldNotify {
	h := &heldNotify{entered: make(chan []string, 100), release: make(chan struct{})}
	send := c.waker.notify
	c.waker.notify = func(ctx context.Context, queues []string) error {
		h.entered <- queues
		<-h.release
		err := send(ctx, queues)
		h.sent.Add(1)
		return err
	}
	return h
}

// next returns the queues of the next statement to enter notify.
func (h *heldNotify) next(t *testing.T) []string {
	t.Helper()
	select {
	case q := <-h.entered:
		return q
	case <-time.After(waitTimeout):
		t.Fatal("no wake-up statement was started")
		return nil
	}
}

// wakeSetup returns a client on a schema of its own with its wake-up
// statements held, and a connection listening to its wake-ups.
func wakeSetup(t *testing.T) (*Client, *heldNotify, *pgx.Conn, string) {
	t.Helper()
	db := pgtest.New(t)
	c, err := NewClient(db.Pool, &Config{Schema: db.Schema})
	require.NoError(t, err)
	h := holdNotify(c)
	// Let anything held go and sent before the schema is reused.
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
		_ = c.Flush(context.Background())
	})
	conn := pgtest.Conn(t)
	ch := schema.Channel(db.Schema, "jobs")
	_, err = conn.Exec(context.Background(), "LISTEN "+pgx.Identifier{ch}.Sanitize())
	require.NoError(t, err)
	return c, h, conn, ch
}

// heard returns the wake-ups conn has received, up to a marker sent
// through c's pool after them.
func heard(t *testing.T, c *Client, conn *pgx.Conn, ch string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.pool.Exec(ctx, "SELECT pg_notify($1, '--marker--')", ch)
	require.NoError(t, err)
	var got []string
	for {
		n, err := conn.WaitForNotification(ctx)
		require.NoError(t, err)
		if n.Payload == "--marker--" {
			return got
		}
		got = append(got, n.Payload)
	}
}

// commitOne enqueues a job into queue in a transaction from Begin and
// commits it.
func commitOne(ctx context.Context, c *Client, queue string) error {
	return c.BeginFunc(ctx, func(tx *Tx) error {
		_, err := c.EnqueueTx(ctx, tx, Raw{Task: "emails.send"}, &Options{Queue: queue})
		return err
	})
}

// commitReturns runs commitOne and fails the test if it does not return
// while the wake-up statements are held (it would wait for ever).
func commitReturns(t *testing.T, ctx context.Context, c *Client, queue string) {
	t.Helper()
	committed := make(chan error, 1)
	go func() { committed <- commitOne(ctx, c, queue) }()
	select {
	case err := <-committed:
		require.NoError(t, err)
	case <-time.After(waitTimeout):
		t.Fatal("Commit waited for its wake-up statement")
	}
}

// Commit returns while its wake-up statement is held; the wake-up goes out
// afterwards, also when the caller's context has ended, and Flush waits
// for it.
func TestCommitDoesNotWaitForTheWakeUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, h, conn, ch := wakeSetup(t)

	// The caller's context ends as soon as Commit returns; the wake-up
	// must not depend on it.
	callerCtx, callerDone := context.WithCancel(ctx)
	commitReturns(t, callerCtx, c, "mail")
	callerDone()
	require.Equal(t, []string{"mail"}, h.next(t), "the wake-up is sent after Commit returned")
	require.Empty(t, heard(t, c, conn, ch), "nothing is sent while the statement is held")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, c.Flush(cancelled), context.Canceled)

	type flushed struct {
		err  error
		sent int32 // statements sent when Flush returned
	}
	done := make(chan flushed, 1)
	go func() {
		err := c.Flush(ctx)
		done <- flushed{err, h.sent.Load()}
	}()
	close(h.release)
	select {
	case f := <-done:
		require.NoError(t, f.err)
		require.EqualValues(t, 1, f.sent, "Flush returned before the wake-up was sent")
	case <-time.After(waitTimeout):
		t.Fatal("Flush did not return after the wake-up was sent")
	}
	require.Equal(t, []string{"mail"}, heard(t, c, conn, ch))
}

// Commits made while a wake-up statement is held all ride in the next
// one, and once it is sent no sender goroutine is left.
func TestConcurrentCommitsShareTheNextWakeUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, h, conn, ch := wakeSetup(t)

	commitReturns(t, ctx, c, "a")
	require.Equal(t, []string{"a"}, h.next(t))

	const commits = 6
	errs := make(chan error, commits)
	for i := range commits {
		q := []string{"b", "c", "d"}[i%3]
		go func() { errs <- commitOne(ctx, c, q) }()
	}
	for range commits {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(waitTimeout):
			t.Fatal("a Commit waited for the held wake-up statement")
		}
	}
	close(h.release)
	require.NoError(t, c.Flush(ctx))
	require.Equal(t, []string{"b", "c", "d"}, h.next(t), "one statement for every Commit made during the first")
	require.EqualValues(t, 2, h.sent.Load())
	require.ElementsMatch(t, []string{"a", "b", "c", "d"}, heard(t, c, conn, ch))

	c.waker.mu.Lock()
	sending, pending := c.waker.sending, len(c.waker.cur.queues)
	c.waker.mu.Unlock()
	require.False(t, sending, "the waker still counts a sender after its last wake-up")
	require.Zero(t, pending)
	exited := make(chan struct{})
	go func() {
		c.waker.sender.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(waitTimeout):
		t.Fatal("the sender goroutine outlived its last wake-up")
	}
}

// Enqueue and EnqueueMany, unlike Tx.Commit, return only once their
// wake-up has been sent.
func TestEnqueueWaitsForItsWakeUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		enqueue func(ctx context.Context, c *Client) error
	}{
		{"Enqueue", func(ctx context.Context, c *Client) error {
			_, err := c.Enqueue(ctx, Raw{Task: "emails.send"}, &Options{Queue: "mail"})
			return err
		}},
		{"EnqueueMany", func(ctx context.Context, c *Client) error {
			_, err := c.EnqueueMany(ctx, []Request{{Args: Raw{Task: "emails.send"}, Options: &Options{Queue: "mail"}}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c, h, _, _ := wakeSetup(t)
			type enqueued struct {
				err  error
				sent int32 // statements sent when the call returned
			}
			done := make(chan enqueued, 1)
			go func() {
				err := tc.enqueue(ctx, c)
				done <- enqueued{err, h.sent.Load()}
			}()
			require.Equal(t, []string{"mail"}, h.next(t))
			close(h.release)
			select {
			case e := <-done:
				require.NoError(t, e.err)
				require.EqualValues(t, 1, e.sent, "%s returned before its wake-up was sent", tc.name)
			case <-time.After(waitTimeout):
				t.Fatalf("%s did not return after its wake-up was sent", tc.name)
			}
		})
	}
}

// Wake-ups that carry only the staged topic go out at most once per
// stagedWakeGap; a batch with a queue in it is never held back.
func TestStagedWakeUpsArePaced(t *testing.T) {
	t.Parallel()
	w := &waker{}
	now := time.Now()
	batch := func(topics ...string) *wakeBatch {
		b := newWakeBatch()
		for _, q := range topics {
			b.queues[q] = struct{}{}
		}
		return b
	}
	require.LessOrEqual(t, w.paceFor(batch(schema.StagedWake), now), time.Duration(0), "the first staged wake-up goes at once")
	w.lastStaged = now.Add(-time.Millisecond)
	require.Equal(t, stagedWakeGap-time.Millisecond, w.paceFor(batch(schema.StagedWake), now))
	require.Zero(t, w.paceFor(batch(schema.StagedWake, "mail"), now), "a queue's wake-up is not delayed")
	require.Zero(t, w.paceFor(batch("mail"), now))

	// Through the sender: the second staged wake-up, posted while the
	// first is held, starts no sooner than stagedWakeGap after the first.
	c, h, _, _ := wakeSetup(t)
	starts := make(chan time.Time, 2)
	held := c.waker.notify
	c.waker.notify = func(ctx context.Context, queues []string) error {
		starts <- time.Now()
		return held(ctx, queues)
	}
	c.waker.post([]string{schema.StagedWake})
	require.Equal(t, []string{schema.StagedWake}, h.next(t))
	c.waker.post([]string{schema.StagedWake})
	close(h.release)
	require.NoError(t, c.Flush(context.Background()))
	first, second := <-starts, <-starts
	require.GreaterOrEqual(t, second.Sub(first), stagedWakeGap)
	require.EqualValues(t, 2, h.sent.Load())
}
