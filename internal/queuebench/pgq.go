package queuebench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// PGQConcurrencyDefault is the worker concurrency PGQ uses unless told
// otherwise: the setting with the best drain rate in docs/performance.md.
const PGQConcurrencyDefault = 1000

// BulkBatch is how many jobs one bulk-insert call carries, for every
// system.
const BulkBatch = 50_000

// taskPickup is the task of the steady-state workload; its args carry the
// job's number.
const taskPickup = "bench.pickup"

// PGQ is pgq as a System, in a migrated, empty schema of a pool that it
// does not own.
type PGQ struct {
	pool        *pgxpool.Pool
	schema      string
	client      *queue.Client
	concurrency int
	log         *slog.Logger
}

// PGQConfig configures NewPGQ; nil means defaults.
type PGQConfig struct {
	// Concurrency is the worker's; 0 means PGQConcurrencyDefault.
	Concurrency int
	// Logger receives the worker's logs; nil discards them.
	Logger *slog.Logger
}

// NewPGQ returns pgq in the given schema (migrated and empty) as a System.
func NewPGQ(pool *pgxpool.Pool, schema string, cfg *PGQConfig) (*PGQ, error) {
	if cfg == nil {
		cfg = &PGQConfig{}
	}
	client, err := queue.NewClient(pool, &queue.Config{Schema: schema})
	if err != nil {
		return nil, err
	}
	p := &PGQ{pool: pool, schema: schema, client: client, concurrency: cfg.Concurrency, log: cfg.Logger}
	if p.concurrency <= 0 {
		p.concurrency = PGQConcurrencyDefault
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

func (p *PGQ) table(name string) string { return pgx.Identifier{p.schema, name}.Sanitize() }

// PinXmin implements XminPinner.
func (p *PGQ) PinXmin(ctx context.Context) (func(), error) { return PinXminOn(ctx, p.pool) }

// DeadTuples implements XminPinner.
func (p *PGQ) DeadTuples(ctx context.Context) (int64, error) {
	return DeadTuplesOf(ctx, p.pool, p.schema, "jobs")
}

// Close does nothing: the pool belongs to the caller.
func (p *PGQ) Close(context.Context) error { return nil }

func (p *PGQ) bulkInsert(ctx context.Context, n int) error {
	reqs := make([]queue.Request, 0, min(n, BulkBatch))
	for left := n; left > 0; {
		k := min(left, BulkBatch)
		reqs = reqs[:0]
		for range k {
			reqs = append(reqs, queue.Request{Args: queue.Raw{Task: worker.TaskNoop}})
		}
		if _, err := p.client.EnqueueMany(ctx, reqs); err != nil {
			return fmt.Errorf("bulk insert: %w", err)
		}
		left -= k
	}
	_, err := p.pool.Exec(ctx, "ANALYZE "+p.table("jobs"))
	return err
}

func (p *PGQ) worker(reg *worker.Registry, burst bool, onEvent func(worker.Event)) (*worker.Worker, error) {
	if reg == nil {
		reg = worker.NewRegistry()
		worker.RegisterBuiltins(reg)
	}
	cfg := &worker.Config{
		Schema: p.schema, Logger: p.log, Concurrency: p.concurrency, Burst: burst, OnEvent: onEvent,
	}
	if burst {
		cfg.PollInterval = time.Minute // the backlog is all there; no need to poll
	}
	return worker.New(p.pool, reg, cfg)
}

// ReportCount calls progress with count's value every 100 ms, and once
// more when stop is called. A nil progress does nothing.
func ReportCount(count *atomic.Int64, progress func(int)) (stop func()) {
	if progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				progress(int(count.Load()))
				return
			case <-tick.C:
				progress(int(count.Load()))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Drain implements System.
func (p *PGQ) Drain(ctx context.Context, n int, progress func(int)) (DrainResult, error) {
	res := DrainResult{Jobs: n}
	t := time.Now()
	if err := p.bulkInsert(ctx, n); err != nil {
		return res, err
	}
	res.Insert = time.Since(t)
	var done atomic.Int64
	w, err := p.worker(nil, true, func(e worker.Event) {
		if e.State == queue.StateSucceeded {
			done.Add(1)
		}
	})
	if err != nil {
		return res, err
	}
	stop := ReportCount(&done, progress)
	t = time.Now()
	err = w.Run(ctx)
	res.Drain = time.Since(t)
	stop()
	if err != nil {
		return res, err
	}
	if got := int(done.Load()); got != n {
		return res, fmt.Errorf("drain: %d of %d jobs succeeded", got, n)
	}
	return res, nil
}

// Steady implements System.
func (p *PGQ) Steady(ctx context.Context, sp SteadyParams, progress func(int)) (SteadyResult, error) {
	pk := NewPickups(sp.Jobs())
	warm := make(chan struct{})
	var warmOnce sync.Once
	reg := worker.NewRegistry()
	reg.HandleFunc(taskPickup, func(_ context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		var a struct {
			I int `json:"i"`
		}
		if err := json.Unmarshal(job.Args, &a); err != nil {
			return nil, worker.Permanent(err)
		}
		if a.I < 0 {
			warmOnce.Do(func() { close(warm) })
		}
		pk.Started(a.I)
		return nil, nil
	}, nil)
	w, err := p.worker(reg, false, nil)
	if err != nil {
		return SteadyResult{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- w.Run(runCtx) }()
	enqueue := func(ctx context.Context, i int) error {
		_, err := p.client.Enqueue(ctx, queue.Raw{Task: taskPickup, Args: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)}, nil)
		return err
	}
	// Warm up: the worker listens and the pool has connections.
	if err := enqueue(ctx, -1); err != nil {
		return SteadyResult{}, err
	}
	select {
	case <-warm:
	case err := <-ran:
		return SteadyResult{}, fmt.Errorf("worker stopped during warm-up: %v", err)
	case <-time.After(30 * time.Second):
		return SteadyResult{}, errors.New("the warm-up job did not run within 30s")
	}
	res, err := pk.Run(ctx, sp, enqueue, progress)
	stop()
	return res, errors.Join(err, <-ran)
}

// Growth implements System. It starts from an empty table.
func (p *PGQ) Growth(ctx context.Context, gp GrowthParams, progress func(int)) (GrowthResult, error) {
	var res GrowthResult
	t := time.Now()
	if _, err := p.pool.Exec(ctx, "TRUNCATE "+p.table("jobs")); err != nil {
		return res, err
	}
	if gp.Finished > 0 {
		_, err := p.pool.Exec(ctx, `INSERT INTO `+p.table("jobs")+` (task, state, attempt, started_at, finished_at, worker_id)
			SELECT $1, 'succeeded', 1, now(), now(), 'bench' FROM generate_series(1, $2::int)`, worker.TaskNoop, gp.Finished)
		if err != nil {
			return res, fmt.Errorf("insert finished jobs: %w", err)
		}
	}
	if err := p.bulkInsert(ctx, max(gp.Waiting, gp.Measure)); err != nil {
		return res, err
	}
	if err := Settle(ctx, p.pool, p.table("jobs")); err != nil {
		return res, err
	}
	res.Setup = time.Since(t)

	var done atomic.Int64
	reached := make(chan time.Time, 1)
	w, err := p.worker(nil, false, func(e worker.Event) {
		if e.State == queue.StateSucceeded && done.Add(1) == int64(gp.Measure) {
			reached <- time.Now()
		}
	})
	if err != nil {
		return res, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	stopReport := ReportCount(&done, progress)
	defer stopReport()
	t = time.Now()
	go func() { ran <- w.Run(runCtx) }()
	select {
	case end := <-reached:
		res.Rate = float64(gp.Measure) / end.Sub(t).Seconds()
		stop()
		return res, <-ran
	case err := <-ran:
		return res, fmt.Errorf("worker stopped after %d of %d jobs: %v", done.Load(), gp.Measure, err)
	}
}

// TxCost implements System: Clients connections run transactions of one
// INSERT into a table of the schema: without an enqueue, with a staged
// one (queue.Options.Staged, the cheapest form) and with one written
// straight into pgq.jobs, in alternating parts so that drift affects all
// alike. All run in transactions from Client.BeginFunc, the documented
// way to enqueue beside one's own writes: its Commit wakes the workers
// after the commit instead of a NOTIFY inside the transaction
// (queue/wake.go), and the enqueue is queued with EnqueueBatched on the
// batch that carries the INSERT, so every variant makes the same three
// round trips (BEGIN, the statements, COMMIT).
func (p *PGQ) TxCost(ctx context.Context, tp TxParams) (TxResult, error) {
	orders := p.table("bench_orders")
	if _, err := p.pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+orders+" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)"); err != nil {
		return TxResult{}, err
	}
	insert := "INSERT INTO " + orders + " (note) VALUES ('order')"
	opts := []*queue.Options{nil, {Staged: true}, nil}
	run := func(variant int, d time.Duration) (int64, error) {
		return RunClients(ctx, tp.Clients, d, func(ctx context.Context) error {
			return p.client.BeginFunc(ctx, func(tx *queue.Tx) error {
				if variant == 0 {
					_, err := tx.Exec(ctx, insert)
					return err
				}
				b := &pgx.Batch{}
				b.Queue(insert)
				job, err := p.client.EnqueueBatched(ctx, tx, b, queue.Raw{Task: worker.TaskNoop}, opts[variant])
				if err != nil {
					return err
				}
				if err := tx.SendBatch(ctx, b).Close(); err != nil {
					return err
				}
				_, err = job.Result()
				return err
			})
		})
	}
	rates, err := AlternateVariants(tp.Duration, len(opts), run)
	if err != nil {
		return TxResult{}, err
	}
	return TxResult{Bare: rates[0], WithEnqueue: rates[1], Direct: rates[2]}, nil
}

// RunClients runs op in a loop on clients goroutines for d and returns how
// many calls succeeded. The first error stops the run. A call that is
// under way at the end of d runs to its end with ctx, not a context that
// expired: a transaction cut off mid-flight would leave its server
// session working after RunClients returned (pgx closes such a connection
// in the background), and the next workload's DROP SCHEMA would then
// deadlock with it.
func RunClients(ctx context.Context, clients int, d time.Duration, op func(context.Context) error) (int64, error) {
	deadline := time.Now().Add(d)
	var n atomic.Int64
	var firstErr error
	var failed atomic.Bool
	var once sync.Once
	var wg sync.WaitGroup
	for range max(1, clients) {
		wg.Go(func() {
			for ctx.Err() == nil && !failed.Load() && time.Now().Before(deadline) {
				if err := op(ctx); err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err; failed.Store(true) })
					}
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load(), firstErr
}

// AlternateTx runs the two variants of the transaction workload (without
// and with an enqueue) as AlternateVariants does.
func AlternateTx(d time.Duration, run func(enqueue bool, d time.Duration) (int64, error)) (TxResult, error) {
	rates, err := AlternateVariants(d, 2, func(v int, d time.Duration) (int64, error) { return run(v == 1, d) })
	if err != nil {
		return TxResult{}, err
	}
	return TxResult{Bare: rates[0], WithEnqueue: rates[1]}, nil
}

// AlternateVariants runs n variants of a workload for d each, in two
// rounds of d/2 (0, 1, …, n-1, 0, 1, …), and returns each one's
// operations per second.
func AlternateVariants(d time.Duration, n int, run func(variant int, d time.Duration) (int64, error)) ([]float64, error) {
	half := d / 2
	counts := make([]int64, n)
	for range 2 {
		for v := range n {
			c, err := run(v, half)
			if err != nil {
				return nil, err
			}
			counts[v] += c
		}
	}
	rates := make([]float64, n)
	for v, c := range counts {
		rates[v] = float64(c) / (2 * half).Seconds()
	}
	return rates, nil
}
