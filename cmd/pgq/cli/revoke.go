package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

// parseJobID reads a positional job id.
func parseJobID(cmd *cobra.Command, arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, usageErrorf(cmd, "job id %q is not a positive whole number", arg)
	}
	return id, nil
}

// jobNotFound names the schema in a missing-job error.
func jobNotFound(err error, id int64, schemaName string) error {
	if errors.Is(err, queue.ErrJobNotFound) {
		return fmt.Errorf("%w %d in schema %s", queue.ErrJobNotFound, id, schemaName)
	}
	return err
}

func newRevokeCmd(a *app) *cobra.Command {
	var terminate, asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Stop a job from running (cancel it), optionally terminating it on its worker",
		Long: `Revoke a job, like Celery's revoke. A job that has not started (scheduled,
available or retrying) ends cancelled at once and never runs. A running job is
marked revoked, so that it is never run again; with --terminate its worker also
cancels the handler within a second, and the job ends cancelled, not retried.
Revoking a finished job is an error (exit status 1).`,
		Example: `  pgq revoke 42
  pgq revoke 42 --terminate`,
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
			rv, err := s.client.Revoke(ctx, id, terminate)
			if err != nil {
				return jobNotFound(err, id, s.schema)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rv)
			}
			w := cmd.OutOrStdout()
			switch {
			case rv.State == queue.StateCancelled:
				fmt.Fprintf(w, "job %d cancelled; it will not run\n", id)
			case rv.Terminating:
				fmt.Fprintf(w, "job %d is running on worker %s: asked it to terminate; the job ends cancelled (`pgq result %d --wait 5s` to watch)\n", id, rv.WorkerID, id)
			default:
				fmt.Fprintf(w, "job %d is running on worker %s: it finishes this attempt but will not run again (add --terminate to stop it now)\n", id, rv.WorkerID)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&terminate, "terminate", false, "also cancel the job on the worker running it")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
