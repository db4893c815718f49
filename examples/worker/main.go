// Command worker is a minimal pgq worker: it runs the built-in diagnostic
// tasks (pgq.noop, pgq.echo, pgq.sleep, pgq.fail) until SIGINT or SIGTERM,
// then shuts down gracefully. It shows the few lines a program needs, and
// the end-to-end tests in tests/ run it as a real process.
//
//	go run ./examples/worker -database-url postgres://localhost/app -queues default,emails
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		url         = flag.String("database-url", os.Getenv("PGQ_DATABASE_URL"), "PostgreSQL URL (default $PGQ_DATABASE_URL)")
		schemaName  = flag.String("schema", "", "pgq schema (default pgq)")
		queues      = flag.String("queues", "default", "comma-separated queues to work on")
		concurrency = flag.Int("concurrency", 0, "jobs run at once (default 10)")
		autoscale   = flag.String("autoscale", "", "min,max: vary the jobs run at once with the load (instead of -concurrency)")
		burst       = flag.Bool("burst", false, "exit once the queues hold no runnable job")
		rescueAfter = flag.Duration("rescue-after", 0, "heartbeat age after which a worker's jobs are rescued (default 30s)")
		heartbeat   = flag.Duration("heartbeat", 0, "heartbeat interval (default 5s)")
		maintenance = flag.Duration("maintenance", 0, "maintenance (rescue) interval (default 5s)")
		shutdown    = flag.Duration("shutdown-timeout", 10*time.Second, "how long running jobs may finish after a signal")
		verbose     = flag.Bool("v", false, "log every job")
	)
	flag.Parse()
	if *url == "" {
		return fmt.Errorf("no database: pass -database-url or set PGQ_DATABASE_URL")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var scale *worker.Autoscale
	if *autoscale != "" {
		lo, hi, ok := strings.Cut(*autoscale, ",")
		minN, err1 := strconv.Atoi(lo)
		maxN, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("-autoscale %q: want min,max, such as 2,20", *autoscale)
		}
		scale = &worker.Autoscale{Min: minN, Max: maxN}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()

	reg := worker.NewRegistry()
	worker.RegisterBuiltins(reg)
	w, err := worker.New(pool, reg, &worker.Config{
		Schema:              *schemaName,
		Queues:              strings.Split(*queues, ","),
		Concurrency:         *concurrency,
		Autoscale:           scale,
		Burst:               *burst,
		RescueAfter:         *rescueAfter,
		HeartbeatInterval:   *heartbeat,
		MaintenanceInterval: *maintenance,
		ShutdownTimeout:     *shutdown,
		Logger:              logger,
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
