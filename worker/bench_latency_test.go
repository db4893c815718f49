package worker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// pickupRate is the enqueue rate of BenchmarkPickupLatency.
const pickupRate = 1000 // jobs per second

// BenchmarkPickupLatency enqueues b.N jobs at a fixed rate of 1,000 a
// second, each in a transaction of its own (queue.Client.Enqueue), while
// one worker runs, and reports the time from Enqueue's return (just after
// the commit) to the start of the job's handler, as p50, p95, p99 and max
// in milliseconds. A handler that starts before Enqueue has returned (the
// NOTIFY can overtake the commit's answer) counts as 0. The schedule is
// open-loop: job i is due at i/1000 s, whatever happened to the others.
//
// The sub-benchmarks claim asynchronously (the default) and with
// Config.DurableClaims.
//
//	go test -run '^$' -bench PickupLatency -benchtime 5000x ./worker/
func BenchmarkPickupLatency(b *testing.B) {
	b.Run("claims=async", func(b *testing.B) { benchPickup(b, false) })
	b.Run("claims=durable", func(b *testing.B) { benchPickup(b, true) })
}

func benchPickup(b *testing.B, durableClaims bool) {
	bu := setupB(b)
	ctx := context.Background()
	n := b.N
	started := make([]time.Time, n)
	returned := make([]time.Time, n)
	var handled sync.WaitGroup
	handled.Add(n)
	warm := make(chan struct{})
	reg := worker.NewRegistry()
	reg.HandleFunc("bench.pickup", func(_ context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		now := time.Now()
		var a struct{ I int }
		if err := json.Unmarshal(job.Args, &a); err != nil {
			return nil, worker.Permanent(err)
		}
		if a.I < 0 {
			close(warm)
			return nil, nil
		}
		started[a.I] = now
		handled.Done()
		return nil, nil
	}, nil)
	w, err := worker.New(bu.db.Pool, reg, &worker.Config{Schema: bu.db.Schema, Logger: testLogger(), Concurrency: 100,
		DurableClaims: durableClaims})
	require.NoError(b, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	// Warm up: once the worker has run a job it listens, and the pool
	// has connections.
	_, err = bu.client.Enqueue(ctx, queue.Raw{Task: "bench.pickup", Args: json.RawMessage(`{"I":-1}`)}, nil)
	require.NoError(b, err)
	select {
	case <-warm:
	case <-time.After(waitTimeout):
		b.Fatal("the warm-up job did not run")
	}

	b.ResetTimer()
	t0 := time.Now()
	var next atomic.Int64
	var producers sync.WaitGroup
	for range 4 { // enough producers to keep the rate when a commit is slow
		producers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				time.Sleep(time.Until(t0.Add(time.Duration(i) * time.Second / pickupRate)))
				_, err := bu.client.Enqueue(ctx, queue.Raw{Task: "bench.pickup", Args: json.RawMessage(`{"I":` + strconv.Itoa(i) + `}`)}, nil)
				returned[i] = time.Now()
				if err != nil {
					b.Error(err)
					handled.Done()
				}
			}
		})
	}
	producers.Wait()
	handled.Wait()
	b.StopTimer()
	stop()
	require.NoError(b, <-done)

	lat := make([]float64, n)
	for i := range n {
		lat[i] = max(started[i].Sub(returned[i]), 0).Seconds() * 1000
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return lat[min(n-1, int(p*float64(n)))] }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(lat[n-1], "max-ms")
}

// BenchmarkDrainMemory drains b.N noop jobs (bulk-enqueued before the
// timer starts) with one worker at Concurrency 100 and reports the peak Go
// heap in use (runtime.ReadMemStats every 10 ms) and the peak resident
// set of the whole test process (VmHWM, reset after the enqueue through
// /proc/self/clear_refs), in MiB. The process also holds the test's pool
// and client, so the RSS figure is an upper bound for a worker.
//
//	go test -run '^$' -bench DrainMemory -benchtime 100000x ./worker/
func BenchmarkDrainMemory(b *testing.B) {
	bu := setupB(b)
	ctx := context.Background()
	reqs := make([]queue.Request, 0, 10000)
	for left := b.N; left > 0; {
		k := min(left, cap(reqs))
		reqs = reqs[:0]
		for range k {
			reqs = append(reqs, queue.Request{Args: queue.Raw{Task: worker.TaskNoop}})
		}
		_, err := bu.client.EnqueueMany(ctx, reqs)
		require.NoError(b, err)
		left -= k
	}
	reqs = nil
	_, err := bu.db.Pool.Exec(ctx, "ANALYZE "+bu.db.Schema+".jobs")
	require.NoError(b, err)
	w, err := worker.New(bu.db.Pool, bu.reg, &worker.Config{
		Schema: bu.db.Schema, Logger: testLogger(), Burst: true, Concurrency: 100, PollInterval: time.Minute,
	})
	require.NoError(b, err)

	debug.FreeOSMemory()
	rssReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var peakHeap atomic.Uint64
	sampled := make(chan struct{})
	sampling, stopSampling := context.WithCancel(ctx)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peakHeap.Store(max(peakHeap.Load(), ms.HeapInuse))
			select {
			case <-sampling.Done():
				return
			case <-tick.C:
			}
		}
	}()
	b.ResetTimer()
	require.NoError(b, w.Run(ctx))
	b.StopTimer()
	stopSampling()
	<-sampled

	var left int
	require.NoError(b, bu.db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+bu.db.Schema+".jobs WHERE state <> 'succeeded'").Scan(&left))
	require.Zero(b, left)
	const mib = 1 << 20
	b.ReportMetric(float64(peakHeap.Load())/mib, "peak-heap-MiB")
	if hwm, ok := vmHWM(); ok && rssReset {
		b.ReportMetric(float64(hwm)/mib, "peak-rss-MiB")
	}
}

// vmHWM returns the process's peak resident set size in bytes.
func vmHWM() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}
