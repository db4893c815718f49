package worker

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/pgq/pgq/db"
)

// fetcher is the claim loop. It claims up to the number of free slots in
// one statement when woken (NOTIFY for one of its queues, a rescue, a
// retry written), when slots free up after a full batch (the backlog is
// not drained), and on the poll timer. After a partial batch it asks when
// the next waiting job becomes runnable and sleeps until then (at most
// PollInterval).
type fetcher struct {
	service
	w       *Worker
	wakeCh  chan struct{}
	freedCh chan struct{}
	drained chan struct{} // closed in Burst mode when nothing is left

	// reconcile asks for Worker.reconcile before the next claim (set when
	// an outage ends).
	reconcile atomic.Bool
	failures  int // claims failed in a row

	// Autoscale state: the most slots busy since windowStart.
	windowStart time.Time
	peak        int

	// limits is the state of the limited claim (limits.go).
	limits *limiter

	// resume is where the next claim may resume each queue's walk
	// (resume.go).
	resume resumeState

	// Staged jobs (staged.go): a producer said it staged some, and when
	// the fetcher last moved them.
	stagedPending atomic.Bool
	lastMove      time.Time
}

func newFetcher(w *Worker) *fetcher {
	return &fetcher{
		w:       w,
		wakeCh:  make(chan struct{}, 1),
		freedCh: make(chan struct{}, 1),
		drained: make(chan struct{}),
		limits:  newLimiter(w.tasks),
	}
}

// Start starts the loop; its first fetch is immediate.
func (f *fetcher) Start(ctx context.Context) { f.start(ctx, f.run) }

// Stop stops claiming and waits for the loop to return. Jobs already
// claimed keep running.
func (f *fetcher) Stop() { f.stop() }

// wake asks for a fetch now. A wake-up may mean a new limited job, so
// it also makes the limited claim due (after limitedPokeGap).
func (f *fetcher) wake() {
	f.limits.poked.Store(true)
	select {
	case f.wakeCh <- struct{}{}:
	default:
	}
}

// reconcileSoon asks for a reconcile and a claim now.
func (f *fetcher) reconcileSoon() {
	f.reconcile.Store(true)
	f.wake()
}

// refreshLimits makes the next claim re-read the limits, and claims now.
func (f *fetcher) refreshLimits() {
	f.limits.refreshSoon()
	f.wake()
}

// slotFreed tells the loop a slot is free. When limited jobs wait on a
// running job (concurrency limit, mutex), a freed slot may be theirs, so
// it makes the limited claim due too.
func (f *fetcher) slotFreed() {
	if f.limits.wakeOnFree.Load() {
		f.limits.poked.Store(true)
	}
	select {
	case f.freedCh <- struct{}{}:
	default:
	}
}

// fetchCooldown is the longest a freed slot waits for others to free up,
// so that a busy worker claims in batches rather than one job at a time.
const fetchCooldown = 2 * time.Millisecond

func (f *fetcher) run(ctx context.Context) {
	w := f.w
	// While the backlog is not drained, claim once a quarter of the slots
	// is free (or fetchCooldown after the first one): each claim costs a
	// round trip and a walk of the index, so batches pay off.
	timer := time.NewTimer(0)
	defer timer.Stop()
	more := false // the last claim was full: the backlog may hold more
	soon := false // the timer is armed for fetchCooldown
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wakeCh:
		case <-timer.C:
		case <-f.freedCh:
			idle := w.cfg.Burst && w.slots.Load() == 0
			if !more && !idle && !f.limits.wakeOnFree.Load() {
				continue
			}
			limit := w.Concurrency()
			if free := limit - int(w.slots.Load()); free < max(1, limit/4) && !idle {
				if !soon {
					soon = true
					timer.Reset(fetchCooldown)
				}
				continue
			}
		}
		soon = false
		f.shrink()
		f.moveStagedIfDue(ctx, time.Now())
		var next time.Duration
		next, more = f.fetch(ctx)
		if next < 0 {
			return // burst mode is done
		}
		timer.Reset(next)
	}
}

// fetch claims until the slots are full or the queues have nothing
// runnable. It returns when to poll next (negative: burst mode is done)
// and whether the backlog may hold more.
func (f *fetcher) fetch(ctx context.Context) (time.Duration, bool) {
	w := f.w
	for {
		free := w.Concurrency() - int(w.slots.Load())
		if free <= 0 {
			return w.cfg.PollInterval, true
		}
		n, err := f.claim(ctx, free)
		if err != nil {
			if ctx.Err() != nil {
				return w.cfg.PollInterval, false
			}
			// The next wake-up (the LISTEN connection is back, an outage
			// ended) cuts the backoff short.
			f.failures++
			w.health.failed("fetcher", fmt.Errorf("claim jobs from queues %q: %w", w.Queues(), err))
			return retryBackoff(f.failures), false
		}
		if f.failures > 0 {
			f.failures = 0
			w.health.ok("fetcher")
		}
		f.peak = max(f.peak, int(w.slots.Load()))
		if n == free {
			f.grow()
			continue // a full batch: the backlog may hold more
		}
		if w.cfg.Burst && n == 0 && w.slots.Load() == 0 {
			if _, waits := f.limits.limitedWaitsFor(time.Now()); waits {
				// Limited jobs wait for a token or a run time: not done.
				return f.untilNext(ctx), false
			}
			// Retries written by the last batch may be runnable at once:
			// write every outcome, then look once more.
			w.completer.flushNow(ctx)
			if f.moveStaged(ctx) > 0 {
				continue
			}
			if n, err = f.claim(ctx, free); err == nil && n == 0 && w.slots.Load() == 0 {
				if _, waits := f.limits.limitedWaitsFor(time.Now()); !waits {
					close(f.drained)
					return -1, false
				}
			}
			continue
		}
		select {
		case <-f.wakeCh:
			// A job arrived while this claim ran: take it before spending a
			// round trip on when to poll next.
			continue
		default:
		}
		return f.untilNext(ctx), false
	}
}

// claim claims up to n jobs and starts them: first with the ordinary
// claim, which leaves limited jobs out, then, when slots are left and it
// is due, with the limited claim (limits.go, docs/limits.md).
func (f *fetcher) claim(ctx context.Context, n int) (int, error) {
	w := f.w
	if f.reconcile.CompareAndSwap(true, false) {
		if err := w.reconcile(ctx); err != nil {
			f.reconcile.Store(true)
			return 0, err
		}
	}
	v, err := f.viewFor(ctx)
	if err != nil {
		return 0, err
	}
	got := 0
	if len(v.free) > 0 && f.resume.due(time.Now()) {
		// Working through a backlog: resume each queue's walk (resume.go).
		rows, err := f.claimResumed(ctx, v, n)
		if err != nil {
			return 0, err
		}
		f.startJobs(rows)
		got = len(rows)
		f.resume.record(rows, got == n, false, time.Now())
	}
	if len(v.free) > 0 && got < n {
		rows, err := w.q.ClaimJobs(ctx, db.ClaimJobsParams{WorkerID: w.cfg.WorkerID, Queues: v.free, ExcludedTasks: v.excluded, MaxJobs: int32(n - got), Durable: w.cfg.DurableClaims})
		if err != nil {
			return got, err
		}
		f.startJobs(rows)
		f.resume.record(rows, len(rows) == n-got, true, time.Now())
		got += len(rows)
	}
	if got < n && f.limits.limitedDue(v, time.Now()) {
		rows, err := f.claimLimited(ctx, v, n-got)
		f.startJobs(rows)
		got += len(rows)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// startJobs runs claimed jobs, each in a goroutine of its own.
func (f *fetcher) startJobs(rows []*db.ClaimJobsRow) {
	w := f.w
	execs := make([]*execution, len(rows))
	for i, r := range rows {
		execs[i] = w.newExecution(r)
	}
	w.hold(execs)
	if cause := context.Cause(w.jobsCtx); cause != nil {
		// The jobs were stopped already: stopJobs may not have seen these.
		for _, e := range execs {
			e.cancel(cause)
		}
	}
	for _, e := range execs {
		w.slots.Add(1)
		w.execWG.Add(1)
		go w.execute(e)
	}
}

// untilNext returns how long to sleep before the next poll: until the
// earliest waiting job becomes runnable, or the limited claim is due, at
// most PollInterval.
func (f *fetcher) untilNext(ctx context.Context) time.Duration {
	poll := f.w.cfg.PollInterval
	if d, waits := f.limits.limitedWaitsFor(time.Now()); waits {
		poll = min(poll, d+time.Millisecond)
	}
	v := f.limits.view
	if v == nil || len(v.free) == 0 {
		return poll
	}
	ms, err := f.w.q.NextRunIn(ctx, db.NextRunInParams{Queues: v.free, ExcludedTasks: v.excluded})
	if err != nil || math.IsInf(ms, 0) || math.IsNaN(ms) {
		return poll
	}
	if ms <= 0 {
		// Runnable jobs exist that the claim skipped (locked by another
		// worker's claim in flight): look again soon.
		return min(poll, 50*time.Millisecond)
	}
	return min(poll, time.Duration(ms*float64(time.Millisecond))+time.Millisecond)
}

// grow adds slots under Autoscale. The fetcher calls it after a claim
// that filled every free slot: every slot is busy, and the backlog may
// hold more.
func (f *fetcher) grow() {
	w := f.w
	a := w.scale.Load()
	limit := w.Concurrency()
	if a == nil || limit >= a.Max {
		return
	}
	n := min(a.Max, limit+max(1, limit/2))
	w.limit.Store(int64(n))
	w.log.Info("autoscale: more slots, every one is busy and jobs are waiting", "concurrency", n, "was", limit, "max", a.Max)
}

// shrink gives up, under Autoscale, the slots that stayed unused during a
// whole IdleAfter: the limit drops to the most slots busy in that time,
// but not below Min.
func (f *fetcher) shrink() {
	w := f.w
	a := w.scale.Load()
	if a == nil {
		return
	}
	now := time.Now()
	busy := int(w.slots.Load())
	if f.windowStart.IsZero() {
		f.windowStart, f.peak = now, busy
		return
	}
	f.peak = max(f.peak, busy)
	if now.Sub(f.windowStart) < a.IdleAfter {
		return
	}
	limit := w.Concurrency()
	if n := max(a.Min, f.peak); n < limit {
		w.limit.Store(int64(n))
		w.log.Info("autoscale: fewer slots, some stayed unused", "concurrency", n, "was", limit, "min", a.Min, "idle_after", a.IdleAfter)
	}
	f.windowStart, f.peak = now, busy
}
