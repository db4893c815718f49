package queuebench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// SteadyGrace is how long Pickups.Run waits, after the last enqueue, for
// the handlers of jobs still waiting.
const SteadyGrace = 5 * time.Second

// Pickups measures a steady-state run for a system driven from Go: the
// producers are Run's, the system's handler reports each job's start with
// Started. Jobs are numbered 0 … n-1; the number travels in the job's args.
type Pickups struct {
	t0       time.Time
	returned []atomic.Int64 // ns since t0, +1 (0: not yet)
	started  []atomic.Int64 // ns since t0, +1 (0: not yet)
	handled  atomic.Int64
	enqueued atomic.Int64
	notify   chan struct{}
}

// NewPickups prepares the measurement of n jobs.
func NewPickups(n int) *Pickups {
	return &Pickups{
		t0:       time.Now(),
		returned: make([]atomic.Int64, n),
		started:  make([]atomic.Int64, n),
		notify:   make(chan struct{}, 1),
	}
}

// Started records that job i's handler started now. Repeated or unknown
// numbers are ignored (a warm-up job can use -1).
func (p *Pickups) Started(i int) {
	now := int64(time.Since(p.t0)) + 1
	if i < 0 || i >= len(p.started) || !p.started[i].CompareAndSwap(0, now) {
		return
	}
	p.handled.Add(1)
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Run enqueues the jobs on the schedule params gives, with
// params.Producers goroutines calling enqueue (which must commit job i in a
// transaction of its own and return after the commit), waits up to
// SteadyGrace after the last enqueue for the handlers, and summarises.
func (p *Pickups) Run(ctx context.Context, params SteadyParams, enqueue func(ctx context.Context, i int) error, progress func(int)) (SteadyResult, error) {
	n := len(p.started)
	res := SteadyResult{Offered: params.Rate}
	start := time.Now()
	base := start.Sub(p.t0)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var producers sync.WaitGroup
	for range max(1, params.Producers) {
		producers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				due := start.Add(time.Duration(float64(i) / params.Rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if err := enqueue(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("enqueue job %d: %w", i, err) })
					return
				}
				p.returned[i].Store(int64(time.Since(p.t0)) + 1)
				p.enqueued.Add(1)
			}
		})
	}
	// Progress while producing and waiting.
	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if progress != nil {
		progressDone.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-tick.C:
					progress(int(p.handled.Load()))
				}
			}
		})
	}
	producers.Wait()
	if firstErr != nil {
		close(stopProgress)
		progressDone.Wait()
		return res, firstErr
	}
	lastEnqueue := time.Now()
	deadline := time.NewTimer(SteadyGrace)
	defer deadline.Stop()
wait:
	for p.handled.Load() < p.enqueued.Load() {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline.C:
			break wait
		case <-p.notify:
		}
	}
	close(stopProgress)
	progressDone.Wait()
	if progress != nil {
		progress(int(p.handled.Load()))
	}

	var lastStart, lastReturn time.Duration
	lat := make([]time.Duration, 0, n)
	for i := range n {
		r, s := p.returned[i].Load(), p.started[i].Load()
		if r == 0 {
			continue
		}
		res.Enqueued++
		lastReturn = max(lastReturn, time.Duration(r-1))
		if s == 0 {
			continue
		}
		res.Handled++
		lastStart = max(lastStart, time.Duration(s-1))
		lat = append(lat, max(time.Duration(s-r), 0))
	}
	if span := (lastReturn - base).Seconds(); span > 0 {
		res.EnqueueRate = float64(res.Enqueued) / span
	}
	if span := (lastStart - base).Seconds(); span > 0 {
		res.Throughput = float64(res.Handled) / span
	}
	if res.Handled < res.Enqueued {
		res.Tail = time.Since(lastEnqueue) // the grace ran out (or ctx ended)
	} else {
		res.Tail = max(lastStart-lastReturn, 0)
	}
	slices.Sort(lat)
	res.P50, res.P95, res.P99 = Percentile(lat, 0.50), Percentile(lat, 0.95), Percentile(lat, 0.99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res, ctx.Err()
}
