// Command pyinterop is a pgq binary with the task Django enqueues in the
// Python client's tests compiled in: orders.confirm, whose args are
// {"order_id": N} and whose result is {"confirmed": N}. The Go struct and the
// Python dict meet by JSON field names:
//
//	pgq.task("orders.confirm").delay(order_id=42)  # Python
//	type Confirm struct{ OrderID int64 `json:"order_id"` } // Go
//
// Run it like the pgq command:
//
//	go run ./examples/pyinterop worker --burst
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pgq/pgq/cmd/pgq/cli"
	"github.com/pgq/pgq/worker"
)

// Confirm is the args of the orders.confirm task.
type Confirm struct {
	OrderID int64 `json:"order_id"`
}

// TaskName names the task Confirm's args belong to.
func (Confirm) TaskName() string { return "orders.confirm" }

// Confirmed is the result of orders.confirm.
type Confirmed struct {
	Confirmed int64 `json:"confirmed"`
}

func main() {
	reg := worker.NewRegistry()
	worker.Register(reg, func(_ context.Context, job *worker.Job[Confirm]) (any, error) {
		return Confirmed{Confirmed: job.Args.OrderID}, nil
	}, nil)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], &cli.Options{Registry: reg})
	stop()
	os.Exit(code)
}
