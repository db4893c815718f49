package queuebench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// XminPinner is implemented by systems that can run workload 6: a steady
// load while long REPEATABLE READ transactions elsewhere in the database
// hold back the xmin horizon, so that no dead row can be removed.
type XminPinner interface {
	// PinXmin begins a REPEATABLE READ transaction in the system's
	// database, takes its snapshot and holds it until release is called.
	PinXmin(ctx context.Context) (release func(), err error)
	// DeadTuples returns the dead rows PostgreSQL's statistics count in
	// the system's job table.
	DeadTuples(ctx context.Context) (int64, error)
}

// PinnedParams shape workload 6.
type PinnedParams struct {
	// Steady is the load: rate, duration, producers.
	Steady SteadyParams
	// Pin is how long each of the two transactions stays open. The first
	// begins at a tenth of the run, the second half a Pin later, so they
	// overlap.
	Pin time.Duration
}

// Figures of workload 6.
var (
	FigPinnedThroughput    = Figure{Workload: "6 pinned xmin", Name: "throughput, no pin, jobs/s", HigherIsBetter: true}
	FigPinnedThroughputPin = Figure{Workload: "6 pinned xmin", Name: "throughput, xmin pinned, jobs/s", HigherIsBetter: true}
	FigPinnedP99           = Figure{Workload: "6 pinned xmin", Name: "pickup p99, no pin, ms", Decimals: 2}
	FigPinnedP99Pin        = Figure{Workload: "6 pinned xmin", Name: "pickup p99, xmin pinned, ms", Decimals: 2}
	FigPinnedDeadTuples    = Figure{Workload: "6 pinned xmin", Name: "peak dead rows in the job table, no pin"}
	FigPinnedDeadTuplesPin = Figure{Workload: "6 pinned xmin", Name: "peak dead rows in the job table, xmin pinned"}
	pinnedFigures          = []Figure{FigPinnedThroughput, FigPinnedThroughputPin, FigPinnedP99, FigPinnedP99Pin, FigPinnedDeadTuples, FigPinnedDeadTuplesPin}
)

func (r *runner) pinned(ctx context.Context, sys System, name, label string) ([]Figure, error) {
	if sys == nil {
		return pinnedFigures, nil
	}
	pinner, ok := sys.(XminPinner)
	if !ok {
		return pinnedFigures, NotAvailable("its driver does not implement workload 6")
	}
	p := r.plan.Pinned
	base, baseDead, err := pinnedRun(ctx, sys, pinner, p, false, r.begin(label+", no pin", p.Steady.Jobs()))
	r.rep.End(err)
	if err != nil {
		return pinnedFigures, err
	}
	pinned, pinnedDead, err := pinnedRun(ctx, sys, pinner, p, true, r.begin(label+", xmin pinned", p.Steady.Jobs()))
	r.rep.End(err)
	if err != nil {
		return pinnedFigures, err
	}
	r.res.Add(FigPinnedThroughput, name, base.Throughput)
	r.res.Add(FigPinnedThroughputPin, name, pinned.Throughput)
	r.res.Add(FigPinnedP99, name, ms(base.P99))
	r.res.Add(FigPinnedP99Pin, name, ms(pinned.P99))
	r.res.Add(FigPinnedDeadTuples, name, float64(baseDead))
	r.res.Add(FigPinnedDeadTuplesPin, name, float64(pinnedDead))
	if !pinned.Sustained() {
		return pinnedFigures, fmt.Errorf("with xmin pinned the load was not sustained (%d of %d jobs started, the last %s after the last enqueue)",
			pinned.Handled, pinned.Enqueued, pinned.Tail.Round(time.Millisecond))
	}
	return pinnedFigures, nil
}

// pinnedRun runs the steady load, with the two pins when pin is true,
// sampling the job table's dead rows every second; it returns the steady
// result and the most dead rows seen.
func pinnedRun(ctx context.Context, sys System, pinner XminPinner, p PinnedParams, pin bool, progress func(int)) (SteadyResult, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var peak atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if n, err := pinner.DeadTuples(ctx); err == nil {
				peak.Store(max(peak.Load(), n))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	if pin {
		first := p.Steady.Duration / 10
		for _, at := range []time.Duration{first, first + p.Pin/2} {
			wg.Go(func() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(at):
				}
				release, err := pinner.PinXmin(ctx)
				if err != nil {
					errs <- fmt.Errorf("pin xmin: %w", err)
					return
				}
				defer release()
				select {
				case <-ctx.Done():
				case <-time.After(p.Pin):
				}
			})
		}
	}
	res, err := sys.Steady(ctx, p.Steady, progress)
	cancel()
	wg.Wait()
	select {
	case perr := <-errs:
		err = fmt.Errorf("%w (and: %v)", perr, err)
	default:
	}
	return res, peak.Load(), err
}

// PinXminOn is XminPinner.PinXmin on a pool: a connection of its own in a
// REPEATABLE READ transaction that has taken its snapshot.
func PinXminOn(ctx context.Context, pool *pgxpool.Pool) (release func(), err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err == nil {
		_, err = tx.Exec(ctx, "SELECT 1") // the first statement takes the snapshot
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}
	if err != nil {
		conn.Release()
		return nil, err
	}
	return func() {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		conn.Release()
	}, nil
}

// DeadTuplesOf is XminPinner.DeadTuples for one table: PostgreSQL's count
// of its dead rows (pg_stat_user_tables.n_dead_tup).
func DeadTuplesOf(ctx context.Context, pool *pgxpool.Pool, schema, table string) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, "SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2", schema, table).Scan(&n)
	return n, err
}
