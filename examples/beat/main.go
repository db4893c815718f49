// Command beat is a minimal beat process: it defines its periodic tasks in
// code and enqueues their jobs until SIGINT or SIGTERM. Run several: one
// leads, the others stand by. The end-to-end tests in tests/ run it as a
// real process and kill its leader.
//
//	go run ./examples/beat -database-url postgres://localhost/app -every 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/periodic"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "beat:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		url      = flag.String("database-url", os.Getenv("PGQ_DATABASE_URL"), "PostgreSQL URL (default $PGQ_DATABASE_URL)")
		schema   = flag.String("schema", "", "pgq schema (default pgq)")
		id       = flag.String("id", "", "name of this beat process (default host-pid-random)")
		every    = flag.Duration("every", 10*time.Second, "interval of the example task")
		election = flag.Duration("election-interval", 0, "how often a standby tries to lead (default 1s)")
	)
	flag.Parse()
	if *url == "" {
		return fmt.Errorf("no database: pass -database-url or set PGQ_DATABASE_URL")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()

	b, err := periodic.New(pool, &periodic.Config{
		Schema:           *schema,
		ID:               *id,
		ElectionInterval: *election,
		Logger:           logger,
		Entries: []periodic.Entry{
			// pgq.noop is a built-in task: any pgq worker runs it.
			{Name: "example.noop", Schedule: periodic.Every(*every), Args: queue.Raw{Task: worker.TaskNoop}},
		},
	})
	if err != nil {
		return err
	}
	return b.Run(ctx)
}
