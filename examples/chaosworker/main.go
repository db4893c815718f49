// Command chaosworker is the worker process of the fault suite
// (tests/chaos_test.go, docs/reliability.md): a pgq worker, optionally with
// beat, that also runs tasks built to misbehave, so the suite can check
// that each misbehaviour ends in a recorded outcome while other jobs flow.
//
//	chaos.work   {"ms": n}       sleeps n ms (honours cancellation) and succeeds
//	chaos.typed  {"n": int}      a typed handler: args that do not decode fail at once
//	chaos.panic                  panics
//	chaos.loop                   ignores its context for ever (hard time limit 300 ms)
//	chaos.exit                   ends the whole process with status 3
//
// Poison tasks have no retries, so each ends failed on its first attempt
// (chaos.exit after its worker's heartbeat expires and the job is rescued).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/periodic"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// WorkArgs are the args of chaos.work.
type WorkArgs struct {
	MS int `json:"ms"`
}

// TaskName names the task.
func (WorkArgs) TaskName() string { return "chaos.work" }

// TypedArgs are the args of chaos.typed.
type TypedArgs struct {
	N int `json:"n"`
}

// TaskName names the task.
func (TypedArgs) TaskName() string { return "chaos.typed" }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaosworker:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		url         = flag.String("database-url", os.Getenv("PGQ_DATABASE_URL"), "PostgreSQL URL")
		schemaName  = flag.String("schema", "", "pgq schema (default pgq)")
		id          = flag.String("id", "", "worker and beat id, also the connections' application_name")
		queues      = flag.String("queues", "default", "comma-separated queues")
		concurrency = flag.Int("concurrency", 10, "jobs run at once")
		withBeat    = flag.Bool("beat", false, "also run beat with a chaos.tick entry every -tick")
		tick        = flag.Duration("tick", time.Second, "period of the chaos.tick periodic task")
		rescueAfter = flag.Duration("rescue-after", 2*time.Second, "heartbeat age after which a worker's jobs are rescued")
		heartbeat   = flag.Duration("heartbeat", 500*time.Millisecond, "heartbeat interval")
		maintenance = flag.Duration("maintenance", 200*time.Millisecond, "maintenance interval")
	)
	flag.Parse()
	if *url == "" || *id == "" {
		return fmt.Errorf("-database-url and -id are required")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("process", *id)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := pgxpool.ParseConfig(*url)
	if err != nil {
		return err
	}
	// The suite finds this process's connections (and so the beat leader)
	// by application_name.
	cfg.ConnConfig.RuntimeParams["application_name"] = *id
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	w, err := worker.New(pool, registry(), &worker.Config{
		Schema:              *schemaName,
		WorkerID:            *id,
		Queues:              strings.Split(*queues, ","),
		Concurrency:         *concurrency,
		RescueAfter:         *rescueAfter,
		HeartbeatInterval:   *heartbeat,
		MaintenanceInterval: *maintenance,
		CancelGrace:         200 * time.Millisecond,
		ShutdownTimeout:     5 * time.Second,
		Logger:              logger,
	})
	if err != nil {
		return err
	}
	if *withBeat {
		b, err := periodic.New(pool, &periodic.Config{
			Schema:           *schemaName,
			ID:               *id,
			ElectionInterval: 500 * time.Millisecond,
			Logger:           logger,
			Entries: []periodic.Entry{
				{Name: "chaos.tick", Schedule: periodic.Every(*tick), Args: queue.Raw{Task: worker.TaskNoop}},
			},
		})
		if err != nil {
			return err
		}
		b.Start(ctx)
		defer b.Stop()
	}
	return w.Run(ctx)
}

func registry() *worker.Registry {
	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	none := 0
	poison := &worker.TaskOptions{MaxRetries: &none}
	worker.Register(reg, func(ctx context.Context, job *worker.Job[WorkArgs]) (any, error) {
		t := time.NewTimer(time.Duration(job.Args.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return map[string]bool{"ok": true}, nil
		}
	}, nil)
	worker.Register(reg, func(_ context.Context, job *worker.Job[TypedArgs]) (any, error) {
		return job.Args.N * 2, nil
	}, poison)
	reg.HandleFunc("chaos.panic", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		panic("chaos: a handler panicked")
	}, poison)
	reg.HandleFunc("chaos.loop", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		for { // ignores its context: only the hard time limit frees the slot
			time.Sleep(10 * time.Millisecond)
		}
	}, &worker.TaskOptions{MaxRetries: &none, TimeLimit: 300 * time.Millisecond})
	reg.HandleFunc("chaos.exit", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		os.Exit(3)
		return nil, nil
	}, poison)
	return reg
}
