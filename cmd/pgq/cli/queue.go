package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

func newQueueCmd(a *app) *cobra.Command {
	cmd := groupCmd("queue", "Pause, resume, configure and list queues",
		`  pgq queue pause emails
  pgq queue resume emails
  pgq queue set reports --time-limit 10m --max-retries 5
  pgq queue list`)
	cmd.AddCommand(
		newQueueSwitchCmd(a, "pause", "Stop workers from claiming jobs of a queue; running jobs finish",
			func(s *session, cmd *cobra.Command, name string) error {
				return s.client.PauseQueue(cmd.Context(), name)
			},
			"paused: workers stop claiming its jobs at their next claim; enqueueing goes on"),
		newQueueSwitchCmd(a, "resume", "Let workers claim jobs of a paused queue again",
			func(s *session, cmd *cobra.Command, name string) error {
				return s.client.ResumeQueue(cmd.Context(), name)
			},
			"resumed: its workers were woken"),
		newQueueSetCmd(a),
		newQueueListCmd(a),
	)
	return cmd
}

func newQueueSetCmd(a *app) *cobra.Command {
	var (
		priority, maxRetries                 int
		retryDelay, timeLimit, softTimeLimit time.Duration
		clear                                bool
	)
	cmd := &cobra.Command{
		Use:   "set QUEUE",
		Short: "Set a queue's default options for jobs that set none",
		Long: `Set the options a queue gives the jobs enqueued to it without them: priority,
max retries, retry delay and time limits. The enqueue call's options, the
task's defaults and the client's routes still win; pgq's own defaults
(priority 0, three retries) apply when the queue sets none. Flags not given
keep their current value; --clear removes every default first.`,
		Example: `  pgq queue set reports --time-limit 10m --soft-time-limit 9m --max-retries 5
  pgq queue set urgent --priority 9
  pgq queue set reports --clear`,
		Args: exactArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := queue.ValidateQueueName(name); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			var d queue.QueueDefaults
			if !clear {
				qs, err := s.client.ListQueues(ctx)
				if err != nil {
					return err
				}
				for _, q := range qs {
					if q.Name == name {
						d = q.Defaults
					}
				}
			}
			f := cmd.Flags()
			if f.Changed("priority") {
				d.Priority = queue.Ptr(priority)
			}
			if f.Changed("max-retries") {
				d.MaxRetries = queue.Ptr(maxRetries)
			}
			if f.Changed("retry-delay") {
				d.RetryDelay = retryDelay
			}
			if f.Changed("time-limit") {
				d.TimeLimit = timeLimit
			}
			if f.Changed("soft-time-limit") {
				d.SoftTimeLimit = softTimeLimit
			}
			if err := s.client.SetQueueDefaults(ctx, name, d); err != nil {
				if errors.Is(err, queue.ErrInvalid) {
					return usageErrorf(cmd, "%v", err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queue %s defaults: %s\n", name, describeDefaults(d))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&priority, "priority", 0, "default priority, 0 (lowest) to 9 (highest)")
	f.IntVar(&maxRetries, "max-retries", 0, "default number of retries")
	f.DurationVar(&retryDelay, "retry-delay", 0, "default delay before a retry (0: the worker's backoff)")
	f.DurationVar(&timeLimit, "time-limit", 0, "default hard time limit per attempt (0: none)")
	f.DurationVar(&softTimeLimit, "soft-time-limit", 0, "default soft time limit per attempt (0: none)")
	f.BoolVar(&clear, "clear", false, "remove every default before applying the flags")
	return cmd
}

// describeDefaults says what a queue's defaults are, for people.
func describeDefaults(d queue.QueueDefaults) string {
	var parts []string
	if d.Priority != nil {
		parts = append(parts, fmt.Sprintf("priority %d", *d.Priority))
	}
	if d.MaxRetries != nil {
		parts = append(parts, fmt.Sprintf("max retries %d", *d.MaxRetries))
	}
	for _, x := range []struct {
		name string
		d    time.Duration
	}{{"retry delay", d.RetryDelay}, {"time limit", d.TimeLimit}, {"soft time limit", d.SoftTimeLimit}} {
		if x.d != 0 {
			parts = append(parts, fmt.Sprintf("%s %s", x.name, x.d))
		}
	}
	if len(parts) == 0 {
		return "none (pgq's own apply)"
	}
	return strings.Join(parts, ", ")
}

func newQueueSwitchCmd(a *app, verb, short string, do func(*session, *cobra.Command, string) error, done string) *cobra.Command {
	return &cobra.Command{
		Use:     verb + " QUEUE",
		Short:   short,
		Example: "  pgq queue " + verb + " emails",
		Args:    exactArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := queue.ValidateQueueName(args[0]); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := do(s, cmd, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queue %s %s\n", args[0], done)
			return nil
		},
	}
}

func newQueueListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List queues: paused or not, waiting, running and finished jobs",
		Example: "  pgq queue list --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			qs, err := s.client.ListQueues(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if qs == nil {
					qs = []queue.QueueInfo{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"queues": qs})
			}
			if len(qs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no queues yet")
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "QUEUE\tSTATE\tWAITING\tRUNNING\tFINISHED\tDEFAULTS")
			for _, q := range qs {
				state := "active"
				if q.Paused {
					state = "paused"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", q.Name, state, q.Waiting, q.Running, q.Finished, describeDefaults(q.Defaults))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
