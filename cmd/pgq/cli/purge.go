package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

func newPurgeCmd(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge QUEUE --yes",
		Short: "Delete every waiting job of a queue",
		Long: `Delete every job of the queue that waits (scheduled, available, retrying), like
Celery's purge. Running jobs finish; finished jobs stay. Without --yes it only
says how many jobs would go, and exits with status 2.`,
		Example: `  pgq purge emails          # how many would go
  pgq purge emails --yes`,
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
			if !yes {
				n, err := s.client.CountWaiting(ctx, name)
				if err != nil {
					return err
				}
				return usageErrorf(cmd, "this would delete %d waiting %s of queue %s; run again with --yes to delete", n, plural(n, "job", "jobs"), name)
			}
			n, err := s.client.PurgeQueue(ctx, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %d waiting %s from queue %s\n", n, plural(n, "job", "jobs"), name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "really delete")
	return cmd
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
