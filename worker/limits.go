package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pgq/pgq/db"
)

// How the fetcher handles limited jobs (docs/limits.md).
const (
	// limitsRefreshInterval is how often a worker re-reads which tasks
	// and queues have limits, besides a ControlLimits message (which
	// SetLimit sends) and a queue change.
	limitsRefreshInterval = time.Second
	// limitsPokeRefresh is how soon after its last read a wake-up (NOTIFY
	// of a new job) makes the worker re-read the limits, so that a first
	// job with a mutex key is seen at once without a read per wake-up.
	limitsPokeRefresh = 100 * time.Millisecond
	// limitRecheck is how long a worker waits before looking again at
	// limited jobs that wait on a running job (a concurrency limit or a
	// mutex): no clock says when that job ends. A job of this worker
	// ending cuts the wait short.
	limitRecheck = 100 * time.Millisecond
	// limitedPokeGap is the least time between two limited claims that a
	// wake-up asks for, so that a stream of NOTIFYs cannot turn into a
	// stream of claims that find every limit exhausted.
	limitedPokeGap = 10 * time.Millisecond
	// limitedMinWait is the shortest wait between limited claims, in
	// milliseconds, so that a fast rate is claimed in small batches rather
	// than one token at a time.
	limitedMinWait = 5.0
	// limitedScanMin is the fewest waiting jobs one limited claim looks
	// at per queue and task before giving up on finding one it may run.
	limitedScanMin = 100
)

// limitsView is what the fetcher knows about limits, read from pgq.limits
// (LimitsSummary) for one set of queues.
type limitsView struct {
	qs *queueSet // the queues it was read for
	at time.Time
	// free are the worker's queues without a queue limit: the ordinary
	// claim takes from them.
	free []string
	// excluded are the tasks the ordinary claim leaves out: tasks with a
	// limit, and tasks registered with a mutex.
	excluded []string
	// limited says whether the limited claim has anything to look at:
	// a limit that applies, a mutex task, or jobs with a mutex key waiting.
	limited bool
}

// limiter is the fetcher's limited-claim state. Only the fetcher's
// goroutine uses it, except refreshSoon and poke.
type limiter struct {
	view       *limitsView
	mutexTasks json.RawMessage // {"task": ["field", ...]} of the registered mutex tasks
	hasMutex   bool
	known      []string // the registered tasks: limited jobs of others are left to other workers

	refresh atomic.Bool // re-read the limits before the next claim
	poked   atomic.Bool // a wake-up came: a limited job may be new
	// wakeOnFree: limited jobs wait on a running job, so a slot freed
	// here may let one run.
	wakeOnFree atomic.Bool

	next  time.Time // the limited claim is due from then
	waits bool      // limited jobs wait (for tokens, a slot, a run time)
	last  time.Time // the last limited claim
}

func newLimiter(tasks map[string]*task) *limiter {
	m := map[string][]string{}
	for name, t := range tasks {
		if t.opts.Mutex {
			m[name] = append([]string{}, t.opts.MutexArgs...)
		}
	}
	b, _ := json.Marshal(m)
	known := taskNames(tasks)
	slices.Sort(known)
	return &limiter{mutexTasks: b, hasMutex: len(m) > 0, known: known}
}

// refreshSoon makes the next claim re-read the limits and try the limited
// claim (a ControlLimits message).
func (l *limiter) refreshSoon() { l.refresh.Store(true) }

// viewFor returns the limits view for the worker's queues now, reading it
// again when it is stale.
func (f *fetcher) viewFor(ctx context.Context) (*limitsView, error) {
	w, l := f.w, f.limits
	qs := w.queues.Load()
	v := l.view
	now := time.Now()
	poked := l.poked.Swap(false)
	if poked {
		l.next = minTime(l.next, l.last.Add(limitedPokeGap))
	}
	asked := l.refresh.Swap(false)
	stale := v == nil || v.qs != qs || asked || now.Sub(v.at) >= limitsRefreshInterval ||
		(poked && now.Sub(v.at) >= limitsPokeRefresh)
	if !stale {
		return v, nil
	}
	rows, err := w.q.LimitsSummary(ctx, qs.list)
	if err != nil {
		return nil, fmt.Errorf("read limits: %w", err)
	}
	nv := &limitsView{qs: qs, at: now, excluded: []string{}, limited: l.hasMutex}
	limitedQueue := map[string]bool{}
	for _, r := range rows {
		switch r.Scope {
		case "task":
			nv.excluded = append(nv.excluded, r.Name)
		case "queue":
			limitedQueue[r.Name] = true
		}
		nv.limited = true
	}
	for name, t := range w.tasks {
		if t.opts.Mutex && !slices.Contains(nv.excluded, name) {
			nv.excluded = append(nv.excluded, name)
		}
	}
	slices.Sort(nv.excluded)
	for _, q := range qs.list {
		if !limitedQueue[q] {
			nv.free = append(nv.free, q)
		}
	}
	if changed(v, nv) || asked {
		l.next = time.Time{} // something changed: look at limited jobs now
	}
	if v != nil && (!slices.Equal(v.free, nv.free) || !slices.Equal(v.excluded, nv.excluded)) {
		w.log.Info("limits changed", "limited_tasks", nv.excluded, "unlimited_queues", nv.free)
	}
	l.view = nv
	return nv, nil
}

func changed(a, b *limitsView) bool {
	return a == nil || a.limited != b.limited || !slices.Equal(a.free, b.free) || !slices.Equal(a.excluded, b.excluded)
}

// limitedDue says whether the limited claim should run now.
func (l *limiter) limitedDue(v *limitsView, now time.Time) bool {
	return v.limited && !now.Before(l.next)
}

// claimLimited claims up to n limited jobs, and when it finds fewer,
// works out when to look next.
func (f *fetcher) claimLimited(ctx context.Context, v *limitsView, n int) ([]*db.ClaimJobsRow, error) {
	w, l := f.w, f.limits
	l.last = time.Now()
	rows, err := w.q.ClaimLimitedJobs(ctx, db.ClaimLimitedJobsParams{
		WorkerID: w.cfg.WorkerID, Queues: v.qs.list, MaxJobs: int32(n),
		MutexTasks: l.mutexTasks, ScanMax: int32(max(limitedScanMin, 4*n)), KnownTasks: l.known,
	})
	if err != nil {
		l.next = l.last.Add(limitRecheck)
		return nil, fmt.Errorf("claim limited jobs: %w", err)
	}
	l.wakeOnFree.Store(false)
	out := make([]*db.ClaimJobsRow, len(rows))
	for i, r := range rows {
		out[i] = (*db.ClaimJobsRow)(r)
	}
	if len(rows) == n {
		l.next, l.waits = l.last, true // there may be more
		return out, nil
	}
	ms, err := w.q.LimitedWait(ctx, db.LimitedWaitParams{
		Queues: v.qs.list, MutexTasks: l.mutexTasks, RecheckMs: float64(limitRecheck / time.Millisecond), KnownTasks: l.known,
	})
	switch {
	case err != nil:
		l.next, l.waits = time.Now().Add(limitRecheck), true
		if ctx.Err() == nil {
			w.log.Warn("limited jobs: cannot tell when to look next; looking again soon", "error", err)
		}
	case math.IsInf(ms, 1) || math.IsNaN(ms):
		// Nothing limited waits: only a wake-up or a change brings work.
		l.next, l.waits = time.Now().Add(limitsRefreshInterval), false
	case ms == float64(limitRecheck/time.Millisecond):
		// Jobs wait on a running job: a slot freed here may be theirs.
		l.next, l.waits = time.Now().Add(limitRecheck), true
		l.wakeOnFree.Store(true)
		return out, nil
	case ms <= 0 && len(rows) == 0:
		// Room and jobs, yet this claim found none it may run: they are
		// held by something no clock predicts (a mutex, another claim).
		l.next, l.waits = time.Now().Add(limitRecheck), true
	default:
		l.next, l.waits = time.Now().Add(time.Duration(max(ms, limitedMinWait)*float64(time.Millisecond))), true
	}
	return out, nil
}

// limitedWaitsFor returns how long until the limited claim is due, and
// whether limited jobs wait at all.
func (l *limiter) limitedWaitsFor(now time.Time) (time.Duration, bool) {
	if l.view == nil || !l.view.limited {
		return 0, false
	}
	return max(l.next.Sub(now), 0), l.waits
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
