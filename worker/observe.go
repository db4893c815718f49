package worker

import (
	"time"
)

// Observer is told about every attempt a worker runs: when it starts and
// after its outcome is stored. Package metrics implements it with
// Prometheus counters and histograms; set it as Config.Observer.
//
// Both methods are called on the worker's hot path, Started from the
// claiming goroutine and Finished from the completion goroutine, so they
// must be fast and must not block: update counters, do not write to a
// database or a network.
type Observer interface {
	// Started is called when an attempt begins, before its handler runs
	// (also for a claimed job that turns out expired or has no handler).
	Started(Start)
	// Finished is called after the attempt's outcome is written to the
	// database, at the moment Config.OnEvent is called.
	Finished(Event)
}

// Start describes an attempt that is beginning.
type Start struct {
	JobID   int64
	Task    string
	Queue   string
	Attempt int // 1 on the first run
	// Wait is how long the job waited between becoming runnable (its
	// run_at, or its creation if that is later) and this claim, in
	// database time; never negative.
	Wait time.Duration
}

// waitOf returns how long the claimed job waited to start: started_at
// minus the later of run_at and created_at, all three read from the
// database clock so that a drifting worker clock does not skew it.
func (e *execution) waitOf() time.Duration {
	r := e.row
	since := r.RunAt
	if r.CreatedAt.After(since) {
		since = r.CreatedAt
	}
	return max(r.StartedAt.Sub(since), 0)
}

// begin tells the observer that the attempt starts and opens its span.
// newExecution calls it in the fetcher, before the job is held, so that
// every later reader of e.span and e.ctx (execute, a revoke's timer)
// sees them.
func (w *Worker) begin(e *execution) {
	if o := w.cfg.Observer; o != nil {
		r := e.row
		o.Started(Start{JobID: r.ID, Task: r.Task, Queue: r.Queue, Attempt: int(r.Attempt), Wait: e.waitOf()})
	}
	if w.cfg.tracing != nil {
		w.cfg.tracing.start(e)
	}
}

// end closes the attempt's span with its outcome, before the worker
// hands the outcome to the completer.
func (e *execution) end(o *outcome) {
	if e.span != nil {
		endSpan(e.span, o)
	}
}

// observeFinished returns the function the completer calls after each
// stored outcome (Config.OnEvent): the observer's Finished, then the
// user's OnEvent.
func observeFinished(obs Observer, onEvent func(Event)) func(Event) {
	if onEvent == nil {
		return obs.Finished
	}
	return func(e Event) {
		obs.Finished(e)
		onEvent(e)
	}
}
