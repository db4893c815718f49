package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

// enqueueFlags are the flags of `pgq enqueue`, one per queue.Options field.
type enqueueFlags struct {
	args          string
	queue         string
	priority      int
	countdown     time.Duration
	eta           string
	expires       time.Duration
	maxRetries    int
	retryDelay    time.Duration
	timeLimit     time.Duration
	softTimeLimit time.Duration
	ignoreResult  bool
	uniqueKey     string
	headers       []string
	json          bool
}

// enqueueResult is the output of `pgq enqueue --json`.
type enqueueResult struct {
	ID        int64     `json:"id"`
	Task      string    `json:"task"`
	Queue     string    `json:"queue"`
	State     string    `json:"state"`
	RunAt     time.Time `json:"run_at"`
	Duplicate bool      `json:"duplicate"`
}

func newEnqueueCmd(a *app) *cobra.Command {
	var f enqueueFlags
	cmd := &cobra.Command{
		Use:   "enqueue TASK",
		Short: "Enqueue a job and print its id",
		Long: `Enqueue one job of the task TASK, with its arguments given as JSON, and print
the job's id. With --unique-key, while an unfinished job holds the key no new
job is made: the existing job's id is printed followed by "duplicate".

Input is checked before anything is written: a bad flag enqueues nothing.`,
		Example: `  pgq enqueue emails.send --args '{"to":"ada@example.com"}'
  pgq enqueue reports.build --queue reports --priority 5 --countdown 10m
  pgq enqueue invoices.sync --unique-key invoice-1042 --header tenant=acme --json
  id=$(pgq enqueue cleanup --eta 2026-12-01T03:00:00Z)`,
		Args: exactArgs("TASK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, opts, err := f.build(cmd, args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			e, err := s.client.Enqueue(ctx, raw, opts)
			if err != nil {
				return enqueueError(err)
			}
			a.logger().Debug("enqueued", "job_id", e.ID, "task", e.Task, "queue", e.Queue, "duplicate", e.Duplicate)
			out := cmd.OutOrStdout()
			if f.json {
				return writeJSON(out, enqueueResult{ID: e.ID, Task: e.Task, Queue: e.Queue, State: e.State, RunAt: e.RunAt, Duplicate: e.Duplicate})
			}
			if e.Duplicate {
				fmt.Fprintf(out, "%d duplicate\n", e.ID)
				return nil
			}
			fmt.Fprintln(out, e.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.args, "args", "{}", "the task's arguments as JSON")
	fl.StringVarP(&f.queue, "queue", "q", "", `queue to put the job on (default "`+queue.QueueDefault+`", or the task's route)`)
	fl.IntVar(&f.priority, "priority", queue.PriorityDefault, fmt.Sprintf("priority from 0 (lowest) to %d (highest)", queue.PriorityMax))
	fl.DurationVar(&f.countdown, "countdown", 0, "run no earlier than this long from now, e.g. 10s, 5m")
	fl.StringVar(&f.eta, "eta", "", "run no earlier than this time, in RFC 3339 form, e.g. 2026-12-01T03:00:00Z")
	fl.DurationVar(&f.expires, "expires", 0, "discard the job if it has not started this long from now, e.g. 1h")
	fl.IntVar(&f.maxRetries, "max-retries", queue.MaxRetriesDefault, "how many times a failed job is tried again")
	fl.DurationVar(&f.retryDelay, "retry-delay", 0, "wait before a retry, e.g. 30s (default: the worker's backoff)")
	fl.DurationVar(&f.timeLimit, "time-limit", 0, "hard time limit of one attempt, e.g. 1m")
	fl.DurationVar(&f.softTimeLimit, "soft-time-limit", 0, "soft time limit of one attempt, e.g. 50s")
	fl.BoolVar(&f.ignoreResult, "ignore-result", false, "do not store the task's result")
	fl.StringVar(&f.uniqueKey, "unique-key", "", "enqueue nothing while an unfinished job holds this key")
	fl.StringArrayVar(&f.headers, "header", nil, "a header key=value stored with the job (repeatable)")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON")
	return cmd
}

// build checks the flags and turns them into the job to enqueue. Flags the
// user did not give stay unset in Options, so that the task's route and
// defaults apply as they would in Go.
func (f *enqueueFlags) build(cmd *cobra.Command, task string) (queue.Raw, *queue.Options, error) {
	if err := queue.ValidateTaskName(task); err != nil {
		return queue.Raw{}, nil, fmt.Errorf("TASK: %s", validationReason(err))
	}
	if !json.Valid([]byte(f.args)) {
		var v any
		err := json.Unmarshal([]byte(f.args), &v)
		return queue.Raw{}, nil, fmt.Errorf("--args is not valid JSON (%v): quote it for the shell, e.g. --args '{\"to\":\"ada@example.com\"}'", err)
	}
	changed := cmd.Flags().Changed
	o := &queue.Options{
		Queue:         f.queue,
		Countdown:     f.countdown,
		Expires:       f.expires,
		RetryDelay:    f.retryDelay,
		TimeLimit:     f.timeLimit,
		SoftTimeLimit: f.softTimeLimit,
		UniqueKey:     f.uniqueKey,
	}
	if changed("queue") {
		if err := queue.ValidateQueueName(f.queue); err != nil {
			return queue.Raw{}, nil, fmt.Errorf("--queue: %s", validationReason(err))
		}
	}
	if changed("unique-key") && f.uniqueKey == "" {
		return queue.Raw{}, nil, errors.New("--unique-key cannot be empty")
	}
	if changed("priority") {
		o.Priority = queue.Ptr(f.priority)
	}
	if changed("max-retries") {
		if f.maxRetries < 0 {
			return queue.Raw{}, nil, fmt.Errorf("--max-retries cannot be negative (got %d)", f.maxRetries)
		}
		o.MaxRetries = queue.Ptr(f.maxRetries)
	}
	if changed("ignore-result") {
		o.IgnoreResult = queue.Ptr(f.ignoreResult)
	}
	for name, d := range map[string]time.Duration{"countdown": f.countdown, "expires": f.expires, "retry-delay": f.retryDelay, "time-limit": f.timeLimit, "soft-time-limit": f.softTimeLimit} {
		if d < 0 {
			return queue.Raw{}, nil, fmt.Errorf("--%s cannot be negative (got %s)", name, d)
		}
	}
	if f.eta != "" {
		eta, err := time.Parse(time.RFC3339Nano, f.eta)
		if err != nil {
			return queue.Raw{}, nil, fmt.Errorf("--eta %q is not a time in RFC 3339 form: use e.g. 2026-12-01T03:00:00Z or 2026-12-01T04:00:00+01:00", f.eta)
		}
		if f.countdown != 0 {
			return queue.Raw{}, nil, errors.New("--countdown and --eta both set the run time: give one of them")
		}
		o.ETA = eta
	}
	if len(f.headers) > 0 {
		o.Headers = make(map[string]any, len(f.headers))
		for _, h := range f.headers {
			k, v, ok := strings.Cut(h, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return queue.Raw{}, nil, fmt.Errorf("--header %q is not key=value", h)
			}
			o.Headers[k] = v
		}
	}
	return queue.Raw{Task: task, Args: json.RawMessage(f.args)}, o, nil
}

// flagOf names the flag that sets a queue.Options field, for error messages.
var flagOf = map[string]string{
	"task": "TASK", "args": "--args", "Queue": "--queue", "Priority": "--priority",
	"Countdown": "--countdown", "ETA": "--eta", "Expires": "--expires", "ExpiresAt": "--expires",
	"MaxRetries": "--max-retries", "RetryDelay": "--retry-delay", "TimeLimit": "--time-limit",
	"SoftTimeLimit": "--soft-time-limit", "UniqueKey": "--unique-key", "Headers": "--header",
}

// enqueueError names the flag behind a validation error from the queue
// package.
func enqueueError(err error) error {
	if v, ok := errors.AsType[*queue.ValidationError](err); ok {
		if name, ok := flagOf[v.Field]; ok {
			return fmt.Errorf("%s: %s", name, v.Reason)
		}
	}
	return err
}

func validationReason(err error) string {
	if v, ok := errors.AsType[*queue.ValidationError](err); ok {
		return v.Reason
	}
	return err.Error()
}
