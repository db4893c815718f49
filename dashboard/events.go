package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// keepAliveInterval is how often an idle event stream gets a comment line,
// so that proxies do not close it.
const keepAliveInterval = 15 * time.Second

// hub computes the overview once per refresh interval for every listening
// page (not once per page) and hands each listener the latest. Its loop
// runs only while someone listens: the first subscriber starts it, the
// last one to leave stops it, so an idle dashboard sends no queries.
type hub struct {
	h *handler

	mu     sync.Mutex
	subs   map[chan []byte]struct{}
	cancel context.CancelFunc // of the running loop; nil when stopped
	done   chan struct{}      // closed when the running loop has returned
	last   []byte             // the latest event, for new subscribers
}

func newHub(h *handler) *hub {
	return &hub{h: h, subs: map[chan []byte]struct{}{}}
}

// subscribe registers a listener; it gets the latest event at once (if
// any) and then each new one. Slow listeners miss intermediate events,
// never the latest.
func (b *hub) subscribe() (ch chan []byte, unsubscribe func()) {
	ch = make(chan []byte, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[ch] = struct{}{}
	if b.last != nil {
		ch <- b.last
	}
	if b.cancel == nil {
		// Wait for a previous loop to finish before the next starts, so
		// that at most one runs.
		prev := b.done
		ctx, cancel := context.WithCancel(context.Background())
		b.cancel, b.done = cancel, make(chan struct{})
		go b.loop(ctx, prev, b.done)
	}
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, ch)
		if len(b.subs) == 0 && b.cancel != nil {
			b.cancel()
			b.cancel = nil
			b.last = nil
		}
	}
}

func (b *hub) loop(ctx context.Context, prev <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return
		}
	}
	for {
		start := time.Now()
		b.refresh(ctx)
		// On a table so large that the overview takes long, wait at least
		// twice as long as it took, so the dashboard never keeps the
		// database busy more than a third of the time.
		wait := max(b.h.opts.RefreshInterval, 2*time.Since(start))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (b *hub) refresh(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, max(b.h.opts.RefreshInterval*5, 10*time.Second))
	defer cancel()
	o, err := b.h.overview(qctx)
	var ev []byte
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		b.h.log.Warn("dashboard: live overview failed", "error", err)
		data, _ := json.Marshal(apiError{Error: err.Error()})
		ev = fmt.Appendf(nil, "event: error\ndata: %s\n\n", data)
	} else {
		data, _ := json.Marshal(o)
		ev = fmt.Appendf(nil, "event: overview\ndata: %s\n\n", data)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	b.last = ev
	for ch := range b.subs {
		select {
		case <-ch: // drop the stale one
		default:
		}
		ch <- ev
	}
}

// apiEvents streams server-sent events: "overview" (the body of
// /api/overview) every refresh interval, and "error" when it could not be
// computed.
func (h *handler) apiEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", max(h.opts.RefreshInterval.Milliseconds(), 1000))
	if err := rc.Flush(); err != nil {
		return
	}
	ch, unsubscribe := h.hub.subscribe()
	defer unsubscribe()
	keep := time.NewTicker(keepAliveInterval)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			if _, err := w.Write(ev); err != nil {
				return
			}
		case <-keep.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
