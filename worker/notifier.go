package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
)

// notifier holds a dedicated connection that LISTENs on the schema's jobs
// channel and wakes the fetcher when a job is enqueued to one of the
// worker's queues (the payload is the queue name); it also LISTENs on the
// control channel and hands control messages to the controller. A lost connection is
// re-made with capped exponential backoff; after each (re)connect the
// fetcher is woken, since wake-ups sent while nobody listened are lost.
type notifier struct {
	service
	w         *Worker
	ready     chan struct{} // closed after the first LISTEN attempt
	readyOnce sync.Once
}

func newNotifier(w *Worker) *notifier {
	return &notifier{w: w, ready: make(chan struct{})}
}

// Start starts listening.
func (n *notifier) Start(ctx context.Context) {
	if !n.start(ctx, n.run) {
		n.markReady()
	}
}

// Stop closes the connection and waits for the loop.
func (n *notifier) Stop() {
	n.stop()
	n.markReady()
}

func (n *notifier) markReady() { n.readyOnce.Do(func() { close(n.ready) }) }

func (n *notifier) run(ctx context.Context) {
	failures := 0
	for {
		connected, err := n.session(ctx)
		n.markReady()
		if ctx.Err() != nil {
			return
		}
		if connected {
			failures = 0
		}
		failures++
		backoff := retryBackoff(failures)
		n.w.health.failed("listener", fmt.Errorf("LISTEN connection: %w", err))
		n.w.log.Debug("LISTEN connection lost; polling until it is back", "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session connects, listens and forwards wake-ups until the connection
// fails or ctx ends.
func (n *notifier) session(ctx context.Context) (connected bool, err error) {
	w := n.w
	cfg := w.pool.Config().ConnConfig
	if w.cfg.SessionConnConfig != nil {
		cfg = w.cfg.SessionConnConfig
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	q := db.New(schema.Wrap(w.cfg.Schema, conn))
	if err := q.ListenJobs(ctx); err != nil {
		return false, err
	}
	if err := q.ListenControl(ctx); err != nil {
		return false, err
	}
	control := schema.Channel(w.cfg.Schema, "control")
	n.markReady()
	w.health.ok("listener")
	// Wake-ups sent while nobody listened are lost: look now.
	w.fetcher.wake()
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		switch {
		case note.Channel == control:
			w.controller.deliver(note.Payload)
		case w.queues.Load().has[note.Payload]:
			w.fetcher.wake()
		case note.Payload == schema.StagedWake:
			w.fetcher.stagedWaiting()
		}
	}
}
