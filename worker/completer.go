package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/pgq/pgq/db"
)

// completer writes outcomes in batches: what arrives within
// CompletionDelay of the first outcome (or while the previous batch was
// being written) goes out as one statement for the successes and one for
// everything else. Stop drains and writes whatever is left, so it must
// run after every execution has handed over its outcome.
type completer struct {
	service
	w     *Worker
	in    chan outcome
	flush chan chan struct{}
	dead  chan struct{} // closed when the loop has returned (or will never run)

	deadOnce sync.Once
}

func newCompleter(w *Worker) *completer {
	c := &completer{
		w:    w,
		in:   make(chan outcome, 2*w.cfg.Concurrency),
		dead: make(chan struct{}),
	}
	c.flush = make(chan chan struct{})
	return c
}

// Start starts the loop.
func (c *completer) Start(ctx context.Context) {
	if !c.start(ctx, c.run) {
		c.deadOnce.Do(func() { close(c.dead) })
	}
}

// Stop writes every outcome handed over so far and waits for the loop.
func (c *completer) Stop() {
	c.stop()
	c.deadOnce.Do(func() { close(c.dead) })
}

// add hands an outcome over. It blocks while the completer is behind
// (backpressure on the executions) and drops the outcome, with an error
// log, once the completer has stopped.
func (c *completer) add(o outcome) {
	select {
	case c.in <- o:
	case <-c.dead:
		c.w.log.Error("outcome dropped: the completer has stopped; the job is handed back or rescued",
			"job_id", o.id, "task", o.task, "state", o.state)
	}
}

// flushNow writes everything handed over so far and returns when it is
// stored (or ctx ends).
func (c *completer) flushNow(ctx context.Context) {
	done := make(chan struct{})
	select {
	case c.flush <- done:
	case <-c.dead:
		return
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (c *completer) run(ctx context.Context) {
	defer c.deadOnce.Do(func() { close(c.dead) })
	delay := c.w.cfg.CompletionDelay
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	batch := make([]outcome, 0, 64)
	for {
		var flushed chan struct{}
		select {
		case o := <-c.in:
			batch = append(batch, o)
			linger.Reset(delay)
		collect:
			for len(batch) < CompletionBatchDefault {
				select {
				case o := <-c.in:
					batch = append(batch, o)
				case <-linger.C:
					break collect
				case flushed = <-c.flush:
					break collect
				case <-ctx.Done():
					break collect
				}
			}
			linger.Stop()
		case flushed = <-c.flush:
		case <-ctx.Done():
		}
		if flushed != nil || ctx.Err() != nil {
			batch = c.drain(batch)
		}
		c.write(ctx, batch)
		batch = batch[:0]
		if flushed != nil {
			close(flushed)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// drain takes every outcome waiting in the channel.
func (c *completer) drain(batch []outcome) []outcome {
	for {
		select {
		case o := <-c.in:
			batch = append(batch, o)
		default:
			return batch
		}
	}
}

// write stores a batch, in slices of at most CompletionBatchDefault,
// retrying while the database is unreachable. Once the completer is
// stopping it gives up after a few tries: the jobs then stay running
// under this worker's id until the shutdown hands them back or, failing
// that, a rescue does.
func (c *completer) write(stopping context.Context, batch []outcome) {
	for len(batch) > 0 {
		n := min(len(batch), CompletionBatchDefault)
		part := batch[:n]
		batch = batch[n:]
		backoff := 50 * time.Millisecond
		for try := 1; ; try++ {
			err := c.writeOnce(part)
			if err == nil {
				break
			}
			if stopping.Err() != nil && try >= 3 {
				c.w.log.Error("writing job outcomes failed; giving up", "jobs", len(part), "error", err)
				break
			}
			c.w.log.Error("writing job outcomes failed; retrying", "jobs", len(part), "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

func (c *completer) writeOnce(batch []outcome) error {
	w := c.w
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var ok, other []*outcome
	for i := range batch {
		if batch[i].state == stateSucceeded {
			ok = append(ok, &batch[i])
		} else {
			other = append(other, &batch[i])
		}
	}
	if len(ok) > 0 {
		p := db.CompleteJobsParams{
			WorkerID: w.cfg.WorkerID,
			Ids:      make([]int64, len(ok)),
			Attempts: make([]int32, len(ok)),
			Results:  make([]json.RawMessage, len(ok)),
		}
		for i, o := range ok {
			p.Ids[i], p.Attempts[i], p.Results[i] = o.id, o.attempt, o.result
		}
		ids, err := w.q.CompleteJobs(ctx, p)
		if err != nil {
			return err
		}
		done := make(map[int64]bool, len(ids))
		for _, id := range ids {
			done[id] = true
		}
		for _, o := range ok {
			if done[o.id] {
				c.report(o, stateSucceeded)
			} else {
				c.lost(o)
			}
		}
		ok = nil
	}
	if len(other) > 0 {
		p := db.FinishJobsParams{
			WorkerID: w.cfg.WorkerID,
			Ids:      make([]int64, len(other)),
			Attempts: make([]int32, len(other)),
			States:   make([]string, len(other)),
			DelaysMs: make([]int64, len(other)),
			Errors:   make([]string, len(other)),
			Stacks:   make([]string, len(other)),
			Refunds:  make([]bool, len(other)),
		}
		retries := false
		for i, o := range other {
			p.Ids[i], p.Attempts[i], p.States[i] = o.id, o.attempt, o.state
			p.DelaysMs[i] = o.delay.Milliseconds()
			p.Refunds[i] = o.refund
			p.Stacks[i] = o.stack
			if o.err != nil && o.state != stateAvailable && o.state != stateScheduled {
				p.Errors[i] = o.err.Error()
			}
			if o.state != stateFailed && o.state != stateCancelled {
				retries = true
			}
		}
		rows, err := w.q.FinishJobs(ctx, p)
		if err != nil {
			return err
		}
		states := make(map[int64]string, len(rows))
		for _, r := range rows {
			states[r.ID] = r.State
		}
		for _, o := range other {
			switch s, found := states[o.id]; {
			case found:
				c.report(o, s)
			case o.viaTx:
				// CompleteTx committed: the row already says succeeded.
				o.err = nil
				c.report(o, stateSucceeded)
			default:
				c.lost(o)
			}
		}
		if retries {
			// A retry or snooze may be due before the next poll.
			w.fetcher.wake()
		}
	}
	return nil
}

func (c *completer) report(o *outcome, state string) {
	w := c.w
	level := slog.LevelDebug
	switch state {
	case stateRetrying:
		level = slog.LevelWarn
	case stateFailed:
		level = slog.LevelError
	case stateCancelled:
		level = slog.LevelInfo
	}
	if w.log.Enabled(context.Background(), level) {
		attrs := []any{"job_id", o.id, "task", o.task, "queue", o.queue, "attempt", o.attempt, "duration", o.duration, "state", state}
		if o.err != nil {
			attrs = append(attrs, "error", o.err)
		}
		if state == stateRetrying || state == stateScheduled {
			attrs = append(attrs, "retry_in", o.delay)
		}
		w.log.Log(context.Background(), level, "job "+state, attrs...)
	}
	if w.cfg.OnEvent != nil {
		w.cfg.OnEvent(Event{JobID: o.id, Task: o.task, Queue: o.queue, Attempt: int(o.attempt), State: state, Err: o.err, Duration: o.duration})
	}
}

func (c *completer) lost(o *outcome) {
	c.w.log.Warn("job outcome not written: the job is no longer held by this attempt (rescued after a missed heartbeat, or finished elsewhere)",
		"job_id", o.id, "task", o.task, "attempt", o.attempt, "state", o.state)
}
