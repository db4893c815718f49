package worker

import (
	"context"
	"fmt"
)

// rescuePreviousProcess rescues the jobs an earlier process with this
// worker's id left running when it died. A worker restarted under a fixed
// id (a StatefulSet, a systemd unit with --worker-id) would otherwise keep
// them from the maintenance leader for ever: its heartbeats keep the id
// alive, and the dead process's jobs look held. Called once, before the
// first claim, when this process holds nothing.
func (w *Worker) rescuePreviousProcess(ctx context.Context) error {
	n, err := w.q.RescuePreviousProcessJobs(ctx, w.cfg.WorkerID)
	if err != nil {
		return fmt.Errorf("rescue jobs left running by an earlier process with id %s: %w", w.cfg.WorkerID, err)
	}
	if n > 0 {
		w.log.Warn("rescued jobs an earlier process with this worker's id left running",
			"jobs", n, "worker_id", w.cfg.WorkerID)
	}
	return nil
}
