package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

// resultJSON is what `pgq result --json` prints.
type resultJSON struct {
	ID     int64           `json:"id"`
	Task   string          `json:"task"`
	State  string          `json:"state"`
	Celery string          `json:"celery_state"`
	Ready  bool            `json:"ready"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	Stack  string          `json:"stack,omitempty"`
}

func newResultCmd(a *app) *cobra.Command {
	var (
		wait   time.Duration
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "result ID",
		Short: "Show a job's state and result, optionally waiting for it to finish",
		Long: `Show a job's state (pgq's and Celery's name for it) and, once it has
finished, its result or its error. With --wait, wait up to that long for the
job to finish (woken by the worker's notification, with a polling fallback);
a job still unfinished then is an error (exit status 1).`,
		Example: `  pgq result 42
  pgq result 42 --wait 30s --json`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageErrorf(cmd, "job id %q is not a positive whole number", args[0])
			}
			if wait < 0 {
				return usageErrorf(cmd, "--wait cannot be negative")
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			r := s.client.AsyncResult(id)
			j, err := r.Job(ctx)
			if errors.Is(err, queue.ErrJobNotFound) {
				return fmt.Errorf("no such job %d in schema %s", id, s.schema)
			}
			if err != nil {
				return err
			}
			if wait > 0 && !j.Ready() {
				wctx, cancel := context.WithTimeout(ctx, wait)
				defer cancel()
				finished, err := r.Wait(wctx)
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					if j, err = r.Job(ctx); err != nil {
						return err
					}
					if err := printResult(cmd, j, asJSON); err != nil {
						return err
					}
					return fmt.Errorf("job %d is still %s after waiting %s", id, j.State, wait)
				}
				if err != nil {
					return err
				}
				j = finished
			}
			return printResult(cmd, j, asJSON)
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for the job to finish")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printResult(cmd *cobra.Command, j *queue.Job, asJSON bool) error {
	out := resultJSON{ID: j.ID, Task: j.Task, State: j.State, Celery: j.CeleryState(), Ready: j.Ready(), Result: j.Result}
	if n := len(j.Errors); n > 0 && j.State != queue.StateSucceeded {
		out.Error, out.Stack = j.Errors[n-1].Error, j.Errors[n-1].Stack
	}
	w := cmd.OutOrStdout()
	if asJSON {
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "job %d (%s): %s (%s)\n", out.ID, out.Task, out.State, out.Celery)
	if len(out.Result) > 0 {
		fmt.Fprintf(w, "result: %s\n", compactJSON(out.Result))
	}
	if out.Error != "" {
		fmt.Fprintf(w, "error: %s\n", out.Error)
		if out.Stack != "" {
			fmt.Fprintln(w, indent(out.Stack, "  "))
		}
	}
	return nil
}
