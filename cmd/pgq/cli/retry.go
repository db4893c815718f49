package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRetryCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID",
		Short: "Run a failed or cancelled job again",
		Long: `Send a failed or cancelled job back to its queue. It runs as if new: attempt 0,
so it has all its retries again; its error history is kept.`,
		Example: `  pgq retry 42
  pgq inspect jobs --state failed --json | jq -r '.jobs[].id' | xargs -n1 pgq retry`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(cmd, args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.client.Retry(ctx, id); err != nil {
				return jobNotFound(err, id, s.schema)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %d is available again\n", id)
			return nil
		},
	}
}
