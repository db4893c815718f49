package queue

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// resultHub is the one LISTEN connection a Client shares among all its
// waiting AsyncResults. It runs only while somebody waits: the first
// waiter starts it, the last one to leave stops it and waits for it, so a
// Client needs no Close and leaves no goroutine behind.
//
// Workers announce finished jobs on "<schema>.results" with one
// notification per completion batch, the payload a comma-separated list of
// job ids. A notification only says "look now"; the job row is the truth,
// and waiters look at it every PollInterval anyway, because notifications
// are lost while this connection is down.
type resultHub struct {
	c *Client

	mu      sync.Mutex
	waiters map[int64]map[chan struct{}]struct{}
	count   int                // subscriptions
	stop    context.CancelFunc // nil when no listener runs
	done    chan struct{}      // closed when the running listener has exited
	ready   chan struct{}      // closed once it listens, or has failed to
}

func newResultHub(c *Client) *resultHub {
	return &resultHub{c: c, waiters: map[int64]map[chan struct{}]struct{}{}}
}

// subscribe registers interest in the given jobs. It returns once the
// listener listens (or has failed to: the caller then relies on polling),
// so that a look at the jobs made afterwards cannot miss a completion. The
// channel receives a value when any of them is announced; call unsubscribe
// when done. One subscription keeps one listener, however many ids.
func (h *resultHub) subscribe(ctx context.Context, ids ...int64) (ch <-chan struct{}, unsubscribe func()) {
	c := make(chan struct{}, 1)
	h.mu.Lock()
	for _, id := range ids {
		if h.waiters[id] == nil {
			h.waiters[id] = map[chan struct{}]struct{}{}
		}
		h.waiters[id][c] = struct{}{}
	}
	h.count++
	if h.stop == nil {
		lctx, cancel := context.WithCancel(context.Background())
		h.stop, h.done, h.ready = cancel, make(chan struct{}), make(chan struct{})
		go h.listen(lctx, h.ready, h.done)
	}
	ready := h.ready
	h.mu.Unlock()

	select {
	case <-ready:
	case <-ctx.Done():
	}
	return c, func() { h.unsubscribe(ids, c) }
}

func (h *resultHub) unsubscribe(ids []int64, c chan struct{}) {
	h.mu.Lock()
	for _, id := range ids {
		delete(h.waiters[id], c)
		if len(h.waiters[id]) == 0 {
			delete(h.waiters, id)
		}
	}
	h.count--
	var stop context.CancelFunc
	var done chan struct{}
	if h.count == 0 {
		stop, done = h.stop, h.done
		h.stop, h.done, h.ready = nil, nil, nil
	}
	h.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// listen keeps a LISTEN connection open until ctx ends, reconnecting with
// capped backoff.
func (h *resultHub) listen(ctx context.Context, ready, done chan struct{}) {
	defer close(done)
	var once sync.Once
	markReady := func() { once.Do(func() { close(ready) }) }
	defer markReady()
	backoff := 100 * time.Millisecond
	for {
		err := h.session(ctx, markReady)
		markReady() // failed before listening: waiters fall back to polling
		if ctx.Err() != nil {
			return
		}
		_ = err // the waiters' polling covers the gap; nothing to report to
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (h *resultHub) session(ctx context.Context, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, h.c.sessionConfig())
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if err := h.c.queries(conn).ListenResults(ctx); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		h.announce(n.Payload)
	}
}

// announce wakes the waiters of every job id in payload.
func (h *resultHub) announce(payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range strings.Split(payload, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			continue // not ours to judge; the row is the truth
		}
		for c := range h.waiters[id] {
			select {
			case c <- struct{}{}:
			default: // already signalled
			}
		}
	}
}
