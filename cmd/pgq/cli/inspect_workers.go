package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

// The `pgq inspect workers|active|scheduled` commands read the tables,
// not the workers: they answer even when a worker does not (`pgq control
// ping` asks the workers themselves).

func newInspectWorkersCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List registered workers with their queues, concurrency, heartbeat and running jobs",
		Long: `List the workers registered in pgq.workers. A worker that died stays listed, its
heartbeat growing old, until the maintenance leader removes it (after the
rescue timeout). To ask the workers themselves, use "pgq control ping".`,
		Example: "  pgq inspect workers --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			ws, err := s.client.Workers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if ws == nil {
					ws = []queue.WorkerInfo{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"workers": ws})
			}
			if len(ws) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no workers registered")
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "WORKER\tHOST\tPID\tQUEUES\tCONCURRENCY\tRUNNING\tHEARTBEAT AGE\tUP SINCE")
			for _, w := range ws {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%.1fs\t%s\n", w.ID, w.Host, w.PID, strings.Join(w.Queues, ","),
					w.Concurrency, w.Running, w.HeartbeatAge, w.StartedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newInspectActiveCmd(a *app) *cobra.Command {
	var (
		asJSON   bool
		workerID string
		limit    int
	)
	cmd := &cobra.Command{
		Use:     "active",
		Short:   "List running jobs, by worker",
		Example: "  pgq inspect active --worker web-1-4242-a1b2c3",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usageErrorf(cmd, "--limit must be positive")
			}
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			jobs, err := s.client.ActiveJobs(cmd.Context(), workerID, limit)
			if err != nil {
				return err
			}
			if asJSON {
				if jobs == nil {
					jobs = []queue.ActiveJob{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"active": jobs})
			}
			if len(jobs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no running jobs")
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "WORKER\tID\tTASK\tQUEUE\tATTEMPT\tRUNNING FOR")
			for _, j := range jobs {
				since := "-"
				if j.StartedAt != nil {
					since = time.Since(*j.StartedAt).Round(time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", j.WorkerID, j.ID, j.Task, j.Queue, j.Attempt, since)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVarP(&workerID, "worker", "w", "", "only this worker's jobs")
	cmd.Flags().IntVar(&limit, "limit", 1000, "show at most this many jobs")
	return cmd
}

func newInspectScheduledCmd(a *app) *cobra.Command {
	var (
		asJSON bool
		limit  int
	)
	cmd := &cobra.Command{
		Use:     "scheduled",
		Short:   "List jobs waiting for a later run time (countdown, ETA, retry), soonest first",
		Example: "  pgq inspect scheduled --limit 20",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usageErrorf(cmd, "--limit must be positive")
			}
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			jobs, err := s.client.ScheduledJobs(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				if jobs == nil {
					jobs = []queue.ScheduledJob{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"scheduled": jobs})
			}
			if len(jobs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no scheduled jobs")
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tTASK\tQUEUE\tSTATE\tATTEMPT\tRUN AT")
			for _, j := range jobs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", j.ID, j.Task, j.Queue, j.State, j.Attempt, j.RunAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many jobs")
	return cmd
}
