package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/pgq/pgq/internal/queuebench"
)

// River's settings are those of its own benchmark command (cmd/river
// bench), which its authors chose for throughput: a 2 ms fetch cooldown, a
// 20 ms poll and 2,000 workers (its defaults are 100 ms, 1 s and 100).
const (
	riverFetchCooldown     = 2 * time.Millisecond
	riverFetchPollInterval = 20 * time.Millisecond
	riverMaxWorkers        = 2000
)

// riverSystem is River as a queuebench.System, in a database of its own.
type riverSystem struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// migrateRiver installs River's schema with its own migrator.
func migrateRiver(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

type riverNoopArgs struct{}

func (riverNoopArgs) Kind() string { return "bench_noop" }

type riverNoopWorker struct {
	river.WorkerDefaults[riverNoopArgs]
}

func (riverNoopWorker) Work(context.Context, *river.Job[riverNoopArgs]) error { return nil }

type riverPickupArgs struct {
	I int `json:"i"`
}

func (riverPickupArgs) Kind() string { return "bench_pickup" }

type riverPickupWorker struct {
	river.WorkerDefaults[riverPickupArgs]
	pk   *queuebench.Pickups
	warm chan struct{}
	once *atomic.Bool
}

func (w riverPickupWorker) Work(_ context.Context, job *river.Job[riverPickupArgs]) error {
	if job.Args.I < 0 && w.once.CompareAndSwap(false, true) {
		close(w.warm)
	}
	w.pk.Started(job.Args.I)
	return nil
}

// client returns a River client; with workers nil it only inserts.
func (r *riverSystem) client(workers *river.Workers) (*river.Client[pgx.Tx], error) {
	cfg := &river.Config{Logger: r.log, Workers: workers}
	if workers != nil {
		cfg.FetchCooldown = riverFetchCooldown
		cfg.FetchPollInterval = riverFetchPollInterval
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: riverMaxWorkers}}
	}
	return river.NewClient(riverpgxv5.New(r.pool), cfg)
}

func (r *riverSystem) bulkInsert(ctx context.Context, n int) error {
	c, err := r.client(nil)
	if err != nil {
		return err
	}
	params := make([]river.InsertManyParams, 0, min(n, queuebench.BulkBatch))
	for left := n; left > 0; {
		k := min(left, queuebench.BulkBatch)
		params = params[:0]
		for range k {
			params = append(params, river.InsertManyParams{Args: riverNoopArgs{}})
		}
		if _, err := c.InsertManyFast(ctx, params); err != nil {
			return fmt.Errorf("bulk insert: %w", err)
		}
		left -= k
	}
	_, err = r.pool.Exec(ctx, "ANALYZE river_job")
	return err
}

// work starts a client that works noop jobs and returns when want jobs are
// completed (as River's completer reports them, after they are stored), with
// the time from Start to then.
func (r *riverSystem) work(ctx context.Context, want int, progress func(int)) (time.Duration, error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, riverNoopWorker{})
	c, err := r.client(workers)
	if err != nil {
		return 0, err
	}
	events, cancel := c.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: want + 10_000,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer cancel()
	var done, failed atomic.Int64
	stop := queuebench.ReportCount(&done, progress)
	defer stop()
	t := time.Now()
	if err := c.Start(ctx); err != nil {
		return 0, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = c.Stop(stopCtx)
	}()
	for done.Load() < int64(want) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case e := <-events:
			if e == nil {
				return 0, errors.New("River closed the event subscription")
			}
			if e.Kind != river.EventKindJobCompleted {
				failed.Add(1)
				return 0, fmt.Errorf("job %d ended %s", e.Job.ID, e.Kind)
			}
			done.Add(1)
		}
	}
	return time.Since(t), nil
}

func (r *riverSystem) Drain(ctx context.Context, n int, progress func(int)) (queuebench.DrainResult, error) {
	res := queuebench.DrainResult{Jobs: n}
	t := time.Now()
	if err := r.bulkInsert(ctx, n); err != nil {
		return res, err
	}
	res.Insert = time.Since(t)
	d, err := r.work(ctx, n, progress)
	res.Drain = d
	if err != nil {
		return res, err
	}
	var left int
	if err := r.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state <> 'completed'").Scan(&left); err != nil {
		return res, err
	}
	if left != 0 {
		return res, fmt.Errorf("drain: %d jobs not completed", left)
	}
	return res, nil
}

func (r *riverSystem) Steady(ctx context.Context, p queuebench.SteadyParams, progress func(int)) (queuebench.SteadyResult, error) {
	pk := queuebench.NewPickups(p.Jobs())
	w := riverPickupWorker{pk: pk, warm: make(chan struct{}), once: &atomic.Bool{}}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c, err := r.client(workers)
	if err != nil {
		return queuebench.SteadyResult{}, err
	}
	if err := c.Start(ctx); err != nil {
		return queuebench.SteadyResult{}, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = c.Stop(stopCtx)
	}()
	enqueue := func(ctx context.Context, i int) error {
		_, err := c.Insert(ctx, riverPickupArgs{I: i}, nil)
		return err
	}
	if err := enqueue(ctx, -1); err != nil {
		return queuebench.SteadyResult{}, err
	}
	select {
	case <-w.warm:
	case <-time.After(30 * time.Second):
		return queuebench.SteadyResult{}, errors.New("the warm-up job did not run within 30s")
	}
	return pk.Run(ctx, p, enqueue, progress)
}

func (r *riverSystem) Growth(ctx context.Context, p queuebench.GrowthParams, progress func(int)) (queuebench.GrowthResult, error) {
	var res queuebench.GrowthResult
	t := time.Now()
	if _, err := r.pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
		return res, err
	}
	if p.Finished > 0 {
		_, err := r.pool.Exec(ctx, `INSERT INTO river_job (state, attempt, max_attempts, attempted_at, finalized_at, args, kind)
			SELECT 'completed', 1, 25, now(), now(), '{}', 'bench_noop' FROM generate_series(1, $1::int)`, p.Finished)
		if err != nil {
			return res, fmt.Errorf("insert finished jobs: %w", err)
		}
	}
	if err := r.bulkInsert(ctx, max(p.Waiting, p.Measure)); err != nil {
		return res, err
	}
	if err := queuebench.Settle(ctx, r.pool, "river_job"); err != nil {
		return res, err
	}
	res.Setup = time.Since(t)
	d, err := r.work(ctx, p.Measure, progress)
	if err != nil {
		return res, err
	}
	res.Rate = float64(p.Measure) / d.Seconds()
	return res, nil
}

func (r *riverSystem) TxCost(ctx context.Context, p queuebench.TxParams) (queuebench.TxResult, error) {
	c, err := r.client(nil)
	if err != nil {
		return queuebench.TxResult{}, err
	}
	if _, err := r.pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS bench_orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)"); err != nil {
		return queuebench.TxResult{}, err
	}
	run := func(enqueue bool, d time.Duration) (int64, error) {
		return queuebench.RunClients(ctx, p.Clients, d, func(ctx context.Context) error {
			return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO bench_orders (note) VALUES ('order')"); err != nil {
					return err
				}
				if enqueue {
					_, err := c.InsertTx(ctx, tx, riverNoopArgs{}, nil)
					return err
				}
				return nil
			})
		})
	}
	return queuebench.AlternateTx(p.Duration, run)
}

func (r *riverSystem) Workflow(context.Context, int, func(int)) (queuebench.WorkflowResult, error) {
	return queuebench.WorkflowResult{}, queuebench.NotAvailable("open-source River has no chord (workflows are a River Pro feature)")
}

func (r *riverSystem) Close(context.Context) error { return nil }

func (r *riverSystem) PinXmin(ctx context.Context) (func(), error) {
	return queuebench.PinXminOn(ctx, r.pool)
}

func (r *riverSystem) DeadTuples(ctx context.Context) (int64, error) {
	return queuebench.DeadTuplesOf(ctx, r.pool, "public", "river_job")
}
