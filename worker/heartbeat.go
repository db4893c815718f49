package worker

import (
	"context"
	"time"
)

// heartbeat refreshes the worker's row in pgq.workers every
// HeartbeatInterval. If the row is gone (the worker was presumed dead and
// its jobs rescued), it registers again and says so in the log.
type heartbeat struct {
	service
	w *Worker
}

// Start starts the loop.
func (h *heartbeat) Start(ctx context.Context) { h.start(ctx, h.run) }

// Stop stops the loop and waits for it.
func (h *heartbeat) Stop() { h.stop() }

func (h *heartbeat) run(ctx context.Context) {
	w := h.w
	tick := time.NewTicker(w.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		bctx, cancel := context.WithTimeout(ctx, w.cfg.HeartbeatInterval)
		n, err := w.q.Heartbeat(bctx, w.cfg.WorkerID)
		if err == nil && n == 0 {
			w.log.Warn("worker row was gone (presumed dead after a missed heartbeat; its jobs may run twice); registering again")
			err = w.register(bctx)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			w.log.Error("heartbeat failed", "error", err)
		}
	}
}
