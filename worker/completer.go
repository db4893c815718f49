package worker

import (
	"context"
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

	// Reused from batch to batch by the loop's goroutine, the only one
	// that writes: the outcomes split by statement, the arrays of the
	// successes' statement and the set of ids it stored.
	ok, other []*outcome
	succeeded db.CompleteJobsParams
	done      map[int64]bool
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
func (c *completer) add(o *outcome) {
	// The common case first, without a select: the completer runs and
	// its channel has room. A receive from the open dead channel takes
	// no lock and a send without a select locks only c.in, where the
	// select locks both channels, dead being the same for every
	// execution that finishes at that moment (docs/performance.md).
	select {
	case <-c.dead:
		c.dropped(o)
		return
	default:
	}
	select {
	case c.in <- *o:
		return
	default:
	}
	select {
	case c.in <- *o:
	case <-c.dead:
		c.dropped(o)
	}
}

// dropped logs an outcome that came after the completer stopped.
func (c *completer) dropped(o *outcome) {
	c.w.log.Error("outcome dropped: the completer has stopped; the job is handed back or rescued",
		"job_id", o.id, "task", o.task, "queue", o.queue, "attempt", o.attempt, "state", o.state)
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
				// Outcomes queued already are taken without a select each
				// (this goroutine is the only receiver).
				for n := min(len(c.in), CompletionBatchDefault-len(batch)); n > 0; n-- {
					batch = append(batch, <-c.in)
				}
				if len(batch) == CompletionBatchDefault {
					break
				}
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
// retrying with backoff while the database is unreachable. Successes and
// the rest are written and retried separately, so a retry never sends
// again what a statement already stored. Once the completer is stopping
// it gives up after a few tries: the jobs then stay running under this
// worker's id until the shutdown hands them back or, failing that, a
// rescue does.
func (c *completer) write(stopping context.Context, batch []outcome) {
	for len(batch) > 0 {
		n := min(len(batch), CompletionBatchDefault)
		part := batch[:n]
		batch = batch[n:]
		ok, other := c.ok[:0], c.other[:0]
		for i := range part {
			if part[i].state == stateSucceeded {
				ok = append(ok, &part[i])
			} else {
				other = append(other, &part[i])
			}
		}
		c.retry(stopping, ok, c.writeSucceeded)
		c.retry(stopping, other, c.writeOther)
		clear(ok) // let the batch's outcomes go
		clear(other)
		c.ok, c.other = ok[:0], other[:0]
	}
}

// retry calls write until it succeeds (or, once stopping, for a few
// tries), then lets the worker forget the jobs: each is now written,
// lost to another attempt, or left for the shutdown's hand-back.
func (c *completer) retry(stopping context.Context, outs []*outcome, write func([]*outcome, bool) error) {
	if len(outs) == 0 {
		return
	}
	defer c.w.unhold(outs)
	for try := 1; ; try++ {
		err := write(outs, try > 1)
		if err == nil {
			c.w.health.ok("completer")
			return
		}
		c.w.health.failed("completer", err)
		if stopping.Err() != nil && try >= 3 {
			c.w.log.Error("writing job outcomes failed; giving up (the shutdown hands the jobs back, or a rescue does)", "jobs", len(outs), "error", err)
			return
		}
		backoff := retryBackoff(try)
		c.w.log.Debug("writing job outcomes failed; retrying", "jobs", len(outs), "error", err, "retry_in", backoff)
		time.Sleep(backoff)
	}
}

// writeSucceeded stores successes. CompleteJobs counts a row this very
// attempt already completed as written, so a retry after a lost answer
// needs no special case here.
func (c *completer) writeSucceeded(ok []*outcome, _ bool) error {
	w := c.w
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := &c.succeeded
	p.WorkerID = w.cfg.WorkerID
	p.Ids, p.Attempts, p.Results = p.Ids[:0], p.Attempts[:0], p.Results[:0]
	for _, o := range ok {
		p.Ids = append(p.Ids, o.id)
		p.Attempts = append(p.Attempts, o.attempt)
		p.Results = append(p.Results, o.result)
	}
	ids, err := w.q.CompleteJobs(ctx, *p)
	clear(p.Results) // let the results go
	if err != nil {
		return err
	}
	if c.done == nil {
		c.done = make(map[int64]bool, len(ids))
	}
	done := c.done
	clear(done)
	for _, id := range ids {
		done[id] = true
	}
	for _, o := range ok {
		if done[o.id] {
			c.report(o, stateSucceeded)
		} else {
			c.lost(o, false)
		}
	}
	return nil
}

// writeOther stores retries, failures, snoozes, expiries and hand-backs.
// retried says an earlier try failed, so it may have committed without
// our hearing of it.
func (c *completer) writeOther(other []*outcome, retried bool) error {
	w := c.w
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
			c.lost(o, retried)
		}
	}
	if retries {
		// A retry or snooze may be due before the next poll.
		w.fetcher.wake()
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

// lost logs an outcome that found its job no longer held by its attempt.
func (c *completer) lost(o *outcome, retried bool) {
	if retried {
		// Most likely the failed try committed and only its answer was
		// lost; the row then already holds this outcome.
		c.w.log.Info("job outcome not written again: an earlier try whose answer was lost had most likely stored it",
			"job_id", o.id, "task", o.task, "queue", o.queue, "attempt", o.attempt, "state", o.state)
		return
	}
	c.w.log.Warn("job outcome not written: the job is no longer held by this attempt (rescued after a missed heartbeat, or finished elsewhere)",
		"job_id", o.id, "task", o.task, "queue", o.queue, "attempt", o.attempt, "state", o.state)
}
