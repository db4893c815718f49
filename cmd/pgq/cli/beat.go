package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/periodic"
)

// beatPoolSize is the pool of `pgq beat`: the beat does its work on a
// connection of its own, and the pool only checks the schema.
const beatPoolSize = 2

// beatFlags are the tuning flags shared by `pgq beat`.
type beatFlags struct {
	id       string
	election time.Duration
	refresh  time.Duration
	// sessionURL: --session-database-url.
	sessionURL string
}

func newBeatCmd(a *app) *cobra.Command {
	var bf beatFlags
	cmd := &cobra.Command{
		Use:   "beat",
		Short: "Enqueue the jobs of periodic tasks until stopped",
		Long: `Run beat, the periodic task scheduler, until SIGINT or SIGTERM.

Run as many as you like (or use "pgq worker --beat"): one leads, holding an
advisory lock, and enqueues one job per tick of each enabled task in
pgq.periodic_tasks; the others stand by and take over within about
--election-interval when the leader dies. Edit the tasks while beat runs with
"pgq periodic", or with SQL. See docs/periodic.md.`,
		Example: `  pgq periodic add cleanup --every 1h --task maintenance.cleanup
  pgq beat
  pgq worker --beat -Q default`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			sessionConn, err := a.sessionConnConfig(bf.sessionURL)
			if err != nil {
				return usageErrorf(cmd, "--session-database-url: %v", err)
			}
			s, err := a.openSized(ctx, beatPoolSize)
			if err != nil {
				return err
			}
			defer s.Close()
			b, err := periodic.New(s.pool, &periodic.Config{
				Schema:            s.schema,
				ID:                bf.id,
				ElectionInterval:  bf.election,
				SessionConnConfig: sessionConn,
				RefreshInterval:   bf.refresh,
				Logger:            a.workerLogger(cmd.ErrOrStderr()),
			})
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pgq beat %s: schema %s\n", b.ID(), s.schema)
			if err := b.Run(ctx); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "pgq beat: stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&bf.id, "id", "", "name of this beat process (default host-pid-random)")
	f.DurationVar(&bf.election, "election-interval", 0, fmt.Sprintf("how often a standby tries to take the lead (default %s)", periodic.ElectionIntervalDefault))
	f.StringVar(&bf.sessionURL, "session-database-url", "", sessionURLUsage)
	f.DurationVar(&bf.refresh, "refresh-interval", 0, fmt.Sprintf("how often the leader re-reads the table without a wake-up (default %s)", periodic.RefreshIntervalDefault))
	return cmd
}

// startBeat starts a beat next to a worker (`pgq worker --beat`) when on is
// true; the returned function stops it.
func (a *app) startBeat(ctx context.Context, s *session, on bool, errOut io.Writer) (stop func(), err error) {
	if !on {
		return func() {}, nil
	}
	b, err := periodic.New(s.pool, &periodic.Config{Schema: s.schema, Logger: a.workerLogger(errOut), SessionConnConfig: s.sessionConn})
	if err != nil {
		return nil, err
	}
	b.Start(ctx)
	return b.Stop, nil
}
