// Command custom-binary is a pgq binary with the application's own tasks
// compiled in: every `pgq` command (migrate, enqueue, inspect, worker, …)
// with a registry that knows "greetings.hello". This is Celery's
// `celery -A proj worker`, in about ten lines of Go:
//
//	go run ./examples/custom-binary enqueue greetings.hello --args '{"name":"Ada"}'
//	go run ./examples/custom-binary worker --burst
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pgq/pgq/cmd/pgq/cli"
	"github.com/pgq/pgq/worker"
)

// Hello is the args of the greetings.hello task.
type Hello struct {
	Name string `json:"name"`
}

// TaskName names the task Hello's args belong to.
func (Hello) TaskName() string { return "greetings.hello" }

func main() {
	reg := worker.NewRegistry()
	worker.Register(reg, func(_ context.Context, job *worker.Job[Hello]) (any, error) {
		return fmt.Sprintf("Hello, %s!", job.Args.Name), nil
	}, nil)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], &cli.Options{Registry: reg})
	stop()
	os.Exit(code)
}
