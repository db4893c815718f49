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
	rows, err := w.q.RescuePreviousProcessJobs(ctx, w.cfg.WorkerID)
	if err != nil {
		return fmt.Errorf("rescue jobs left running by an earlier process with id %s: %w", w.cfg.WorkerID, err)
	}
	for _, r := range rows {
		w.log.Warn("rescued a job an earlier process with this worker's id left running",
			"job_id", r.ID, "state", r.State, "worker_id", w.cfg.WorkerID)
	}
	return nil
}
