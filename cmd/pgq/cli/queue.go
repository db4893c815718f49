package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

func newQueueCmd(a *app) *cobra.Command {
	cmd := groupCmd("queue", "Pause, resume and list queues",
		`  pgq queue pause emails
  pgq queue resume emails
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
		newQueueListCmd(a),
	)
	return cmd
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
			fmt.Fprintln(tw, "QUEUE\tSTATE\tWAITING\tRUNNING\tFINISHED")
			for _, q := range qs {
				state := "active"
				if q.Paused {
					state = "paused"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", q.Name, state, q.Waiting, q.Running, q.Finished)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
