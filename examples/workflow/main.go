// Command workflow shows pgq's canvas: it enqueues a chord (square every
// number, then add the squares up) and runs a worker for its tasks. The
// callback records its total in a table inside the same transaction that
// completes its job (worker.CompleteTx), so the table shows how many times
// it took effect. The end-to-end tests in tests/ run it as real processes
// and kill them.
//
//	go run ./examples/workflow -database-url postgres://localhost/app -enqueue 100 -wait
//	go run ./examples/workflow -database-url postgres://localhost/app -work
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/migrations"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

// Square returns N*N after sleeping Millis milliseconds.
type Square struct {
	N      int `json:"n"`
	Millis int `json:"millis"`
}

// TaskName returns "demo.square".
func (Square) TaskName() string { return "demo.square" }

// Total adds up the squares it receives from its chord and records the sum.
type Total struct{}

// TaskName returns "demo.total".
func (Total) TaskName() string { return "demo.total" }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "workflow:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		url         = flag.String("database-url", os.Getenv("PGQ_DATABASE_URL"), "PostgreSQL URL (default $PGQ_DATABASE_URL)")
		schemaName  = flag.String("schema", "pgq", "pgq schema")
		enqueue     = flag.Int("enqueue", 0, "enqueue a chord of this many squares and print its id")
		millis      = flag.Int("millis", 0, "how long each square sleeps, in milliseconds")
		wait        = flag.Bool("wait", false, "with -enqueue: wait for the chord and print its total")
		work        = flag.Bool("work", false, "run a worker for demo.square and demo.total until SIGINT or SIGTERM")
		concurrency = flag.Int("concurrency", 0, "jobs run at once (default 10)")
		rescueAfter = flag.Duration("rescue-after", 0, "heartbeat age after which a worker's jobs are rescued (default 30s)")
		heartbeat   = flag.Duration("heartbeat", 0, "heartbeat interval (default 5s)")
		maintenance = flag.Duration("maintenance", 0, "maintenance (rescue) interval (default 5s)")
	)
	flag.Parse()
	if *url == "" {
		return errors.New("no database: pass -database-url or set PGQ_DATABASE_URL")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrations.Up(ctx, pool, *schemaName); err != nil {
		return err
	}
	totals := pgx.Identifier{*schemaName, "demo_totals"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+totals+" (workflow_id bigint, job_id bigint, total bigint, members integer)"); err != nil {
		return err
	}
	client, err := queue.NewClient(pool, &queue.Config{Schema: *schemaName})
	if err != nil {
		return err
	}

	if *enqueue > 0 {
		members := make([]*workflow.Signature, *enqueue)
		for i := range members {
			members[i] = workflow.Task(Square{N: i, Millis: *millis}, &queue.Options{MaxRetries: queue.Ptr(5)})
		}
		r, err := workflow.Apply(ctx, client, workflow.Chord(workflow.Group(members...), workflow.Task(Total{}, nil)))
		if err != nil {
			return err
		}
		fmt.Println(r.ID)
		if *wait {
			var total int64
			if err := r.Get(ctx, &total); err != nil {
				return err
			}
			fmt.Println("total", total)
		}
	}
	if !*work {
		return nil
	}

	reg := worker.NewRegistry()
	worker.Register(reg, func(ctx context.Context, job *worker.Job[Square]) (any, error) {
		select {
		case <-time.After(time.Duration(job.Args.Millis) * time.Millisecond):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		return job.Args.N * job.Args.N, nil
	}, nil)
	worker.Register(reg, func(ctx context.Context, job *worker.Job[Total]) (any, error) {
		var squares []int64
		if err := job.ParentResult(&squares); err != nil {
			return nil, err
		}
		var total int64
		for _, s := range squares {
			total += s
		}
		// The total is recorded exactly when the job completes.
		return nil, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO "+totals+" VALUES ($1, $2, $3, $4)", *job.RootID, job.ID, total, len(squares)); err != nil {
				return err
			}
			return worker.CompleteTx(ctx, tx, job, total)
		})
	}, nil)
	w, err := worker.New(pool, reg, &worker.Config{
		Schema: *schemaName, Concurrency: *concurrency, RescueAfter: *rescueAfter,
		HeartbeatInterval: *heartbeat, MaintenanceInterval: *maintenance,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
