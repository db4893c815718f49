// Command pgq runs and inspects pgq, the PostgreSQL-backed job queue:
// migrations, enqueueing from a shell, inspection and a demo.
//
// The commands live in the importable package
// github.com/pgq/pgq/cmd/pgq/cli, so a program can build its own pgq binary
// with the same command set.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pgq/pgq/cmd/pgq/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	os.Exit(cli.Report(os.Stderr, err))
}

func run(ctx context.Context, args []string) error {
	return cli.Run(ctx, args, nil)
}
