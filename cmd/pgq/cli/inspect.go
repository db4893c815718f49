package cli

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

func newInspectCmd(a *app) *cobra.Command {
	cmd := groupCmd("inspect", "Show queues and jobs",
		`  pgq inspect queues
  pgq inspect jobs --state failed --queue emails
  pgq inspect job 42 --json
  pgq inspect workers
  pgq inspect active --worker web-1-4242-a1b2c3
  pgq inspect workflow 1200`)
	cmd.AddCommand(newInspectQueuesCmd(a), newInspectJobsCmd(a), newInspectJobCmd(a),
		newInspectWorkersCmd(a), newInspectActiveCmd(a), newInspectScheduledCmd(a),
		newInspectWorkflowCmd(a))
	return cmd
}

func newInspectQueuesCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "Count jobs per queue and state",
		Example: `  pgq inspect queues
  pgq inspect queues --json | jq '.queues[] | select(.states.failed > 0)'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			stats, err := s.client.QueueStats(ctx)
			if err != nil {
				return err
			}
			rows := queueRows(stats)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), queuesJSON{Queues: rows})
			}
			return writeQueues(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// jobListLimitDefault is the number of jobs `pgq inspect jobs` shows.
const jobListLimitDefault = 50

func newInspectJobsCmd(a *app) *cobra.Command {
	var f queue.JobFilter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List jobs, newest first",
		Long: `List jobs, newest first, optionally filtered by state, queue and task.
Page with --before: it continues below the smallest id of the previous page.`,
		Example: `  pgq inspect jobs
  pgq inspect jobs --state failed --queue emails --limit 20
  pgq inspect jobs --task reports.build --before 1200 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Limit < 1 || f.Limit > 1000 {
				return usageErrorf(cmd, "--limit must be between 1 and 1000 (got %d)", f.Limit)
			}
			if f.BeforeID < 0 {
				return usageErrorf(cmd, "--before must be a job id (got %d)", f.BeforeID)
			}
			if f.State != "" && !slices.Contains(queue.States, f.State) {
				return usageErrorf(cmd, "--state %q is not a job state: use one of %v", f.State, queue.States)
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			jobs, err := s.client.ListJobs(ctx, f)
			if err != nil {
				return err
			}
			page := jobsJSON{Jobs: jobs}
			if page.Jobs == nil {
				page.Jobs = []queue.JobSummary{}
			}
			if len(jobs) == f.Limit {
				page.NextBefore = jobs[len(jobs)-1].ID
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), page)
			}
			return writeJobs(cmd.OutOrStdout(), page)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.State, "state", "", fmt.Sprintf("only jobs in this state: one of %v", queue.States))
	fl.StringVarP(&f.Queue, "queue", "q", "", "only jobs of this queue")
	fl.StringVar(&f.Task, "task", "", "only jobs of this task")
	fl.IntVar(&f.Limit, "limit", jobListLimitDefault, "show at most this many jobs (1 to 1000)")
	fl.Int64Var(&f.BeforeID, "before", 0, "show only jobs with an id below this one (the next page)")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newInspectJobCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "job ID",
		Short: "Show every field of one job, with its error history",
		Example: `  pgq inspect job 42
  pgq inspect job 42 --json | jq .errors`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageErrorf(cmd, "job id %q is not a positive integer", args[0])
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			job, err := s.client.Job(ctx, id)
			if errors.Is(err, queue.ErrJobNotFound) {
				return fmt.Errorf("%w %d in schema %s", queue.ErrJobNotFound, id, s.schema)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), job)
			}
			return writeJob(cmd.OutOrStdout(), job)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
