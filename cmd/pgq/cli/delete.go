package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a job that is not running",
		Long: `Delete a job row for good: its args, result and history go with it. A running
job cannot be deleted: revoke it with --terminate first.`,
		Example: `  pgq delete 42`,
		Args:    exactArgs("ID"),
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
			if err := s.client.Delete(ctx, id); err != nil {
				return jobNotFound(err, id, s.schema)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %d deleted\n", id)
			return nil
		},
	}
}
