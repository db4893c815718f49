package worker

import (
	"context"
	"fmt"
	"time"
)

// heartbeat refreshes the worker's row in pgq.workers every
// HeartbeatInterval. If the row is gone (the worker was presumed dead and
// its jobs rescued), it registers again and says so in the log. It also
// looks for running jobs of this worker revoked with terminate, in case
// the revoke's notification was lost (the LISTEN connection was down, or
// NoListen is set).
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
	timer := time.NewTimer(w.cfg.HeartbeatInterval)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		bctx, cancel := context.WithTimeout(ctx, w.cfg.HeartbeatInterval)
		n, err := w.q.Heartbeat(bctx, w.cfg.WorkerID)
		if err == nil && n == 0 {
			w.log.Warn("worker row was gone (presumed dead after a missed heartbeat; its jobs may run twice); registering again")
			err = w.register(bctx)
		}
		if err == nil {
			err = h.checkRevoked(bctx)
		}
		cancel()
		next := w.cfg.HeartbeatInterval
		switch {
		case err == nil:
			failures = 0
			w.health.ok("heartbeat")
		case ctx.Err() == nil:
			// Retry sooner than the interval: every missed beat brings
			// the rescue of this worker's jobs closer.
			failures++
			w.health.failed("heartbeat", fmt.Errorf("heartbeat: %w", err))
			next = min(next, retryBackoff(failures))
		}
		timer.Reset(next)
	}
}

// checkRevoked cancels the handlers of held jobs that were revoked with
// terminate: the fallback for a lost notification on the control channel.
func (h *heartbeat) checkRevoked(ctx context.Context) error {
	ids, err := h.w.q.RevokedRunningJobs(ctx, h.w.cfg.WorkerID)
	if err != nil {
		return fmt.Errorf("look for revoked jobs: %w", err)
	}
	for _, id := range ids {
		h.w.revokeJob(id)
	}
	return nil
}
