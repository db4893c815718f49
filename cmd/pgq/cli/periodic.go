package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/periodic"
	"github.com/pgq/pgq/queue"
)

func newPeriodicCmd(a *app) *cobra.Command {
	cmd := groupCmd("periodic", "List and edit periodic tasks (beat's schedule)",
		`  pgq periodic list
  pgq periodic add cleanup --every 1h --task maintenance.cleanup
  pgq periodic add report --cron "30 7 * * mon-fri" --tz Europe/Berlin --task reports.build --args '{"kind":"daily"}'
  pgq periodic disable report
  pgq periodic run-now report`)
	cmd.Long = `List and edit the periodic tasks in pgq.periodic_tasks. Edits take effect in
the running beat within moments, without a restart.`
	cmd.AddCommand(
		newPeriodicListCmd(a),
		newPeriodicAddCmd(a),
		newPeriodicNameCmd(a, "enable", "Let a periodic task fire again, from its next tick on",
			func(ctx context.Context, c *periodic.Client, name string, w io.Writer) error {
				if err := c.Enable(ctx, name); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "enabled %s\n", name)
				return err
			}),
		newPeriodicNameCmd(a, "disable", "Stop a periodic task from firing (its row and history stay)",
			func(ctx context.Context, c *periodic.Client, name string, w io.Writer) error {
				if err := c.Disable(ctx, name); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "disabled %s\n", name)
				return err
			}),
		newPeriodicNameCmd(a, "run-now", "Enqueue one job of a periodic task now, outside its schedule",
			func(ctx context.Context, c *periodic.Client, name string, w io.Writer) error {
				job, err := c.RunNow(ctx, name)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(w, "%d\n", job.ID)
				return err
			}),
		newPeriodicNameCmd(a, "remove", "Delete a periodic task and its run history",
			func(ctx context.Context, c *periodic.Client, name string, w io.Writer) error {
				if err := c.Remove(ctx, name); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "removed %s\n", name)
				return err
			}),
	)
	return cmd
}

// periodicClient opens a session and a periodic.Client on it.
func (a *app) periodicClient(ctx context.Context) (*session, *periodic.Client, error) {
	s, err := a.open(ctx, true)
	if err != nil {
		return nil, nil, err
	}
	c, err := periodic.NewClient(s.client)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, c, nil
}

func newPeriodicNameCmd(a *app, use, short string, do func(context.Context, *periodic.Client, string, io.Writer) error) *cobra.Command {
	return &cobra.Command{
		Use:     use + " NAME",
		Short:   short,
		Example: "  pgq periodic " + use + " cleanup",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, c, err := a.periodicClient(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			return do(ctx, c, args[0], cmd.OutOrStdout())
		},
	}
}

type periodicJSON struct {
	Tasks []periodic.Status `json:"tasks"`
}

func newPeriodicListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List periodic tasks with their last and next run",
		Example: `  pgq periodic list
  pgq periodic list --json | jq '.tasks[] | select(.error != null)'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, c, err := a.periodicClient(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := c.List(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), periodicJSON{Tasks: list})
			}
			return writePeriodic(cmd.OutOrStdout(), list)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writePeriodic(w io.Writer, list []periodic.Status) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no periodic tasks")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSCHEDULE\tZONE\tTASK\tENABLED\tSOURCE\tLAST RUN\tLAST JOB\tNEXT RUN\tERROR")
	for _, s := range list {
		job := "-"
		if s.LastJobID != nil {
			job = strconv.FormatInt(*s.LastJobID, 10) + " " + or(s.LastJobState, "(gone)")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\n",
			s.Name, s.Schedule, s.TimeZone, s.Task, s.Enabled, s.Source,
			formatTimePtr(s.LastRunAt), job, formatTimePtr(s.NextTick), or(oneLine(s.Error, 80), "-"))
	}
	return tw.Flush()
}

func newPeriodicAddCmd(a *app) *cobra.Command {
	var (
		spec, task, args, q, zone, missed string
		every, expires                    time.Duration
		priority, maxRetries              int
	)
	cmd := &cobra.Command{
		Use:   "add NAME (--cron SPEC | --every DURATION) --task TASK",
		Short: "Add a periodic task",
		Long: `Add a periodic task (source "cli"). --cron takes 5 fields (minute hour
day-of-month month day-of-week), 6 with a seconds field first, or @hourly,
@daily, @weekly, @monthly, @yearly; --every takes an interval such as 30s,
aligned to the Unix epoch. Cron fields are read in --tz (default UTC). Jobs
expire at the next tick unless --expires says otherwise.`,
		Example: `  pgq periodic add cleanup --every 1h --task maintenance.cleanup
  pgq periodic add report --cron "30 7 * * mon-fri" --tz Europe/Berlin --task reports.build --args '{"kind":"daily"}' -q reports`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			fl := cmd.Flags()
			switch {
			case fl.Changed("cron") == fl.Changed("every"):
				return usageErrorf(cmd, "give --cron SPEC or --every DURATION (one of them)")
			case task == "":
				return usageErrorf(cmd, "--task is required")
			case args != "" && !json.Valid([]byte(args)):
				return usageErrorf(cmd, "--args is not valid JSON: %s", args)
			}
			e := periodic.Entry{
				Name: pos[0], Schedule: spec, TimeZone: zone,
				Args:    queue.Raw{Task: task, Args: json.RawMessage(args)},
				Options: periodic.Options{Queue: q, Expires: expires},
				Missed:  periodic.MissedTicks(missed),
			}
			if fl.Changed("every") {
				e.Schedule = periodic.Every(every)
			}
			if fl.Changed("priority") {
				e.Options.Priority = &priority
			}
			if fl.Changed("max-retries") {
				e.Options.MaxRetries = &maxRetries
			}
			ctx := cmd.Context()
			s, c, err := a.periodicClient(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := c.Add(ctx, e); err != nil {
				if v, ok := errors.AsType[*periodic.ValidationError](err); ok {
					return usageErrorf(cmd, "%s: %s", flagFor(v.Field, fl.Changed("every")), v.Reason)
				}
				return err
			}
			st, err := c.Get(ctx, e.Name)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "added %s: %s (%s), next run %s\n", st.Name, st.Schedule, st.TimeZone, formatTimePtr(st.NextTick))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec, "cron", "", "cron spec, e.g. \"*/5 * * * *\" or @daily")
	f.DurationVar(&every, "every", 0, "fixed interval, e.g. 30s or 1h")
	f.StringVar(&task, "task", "", "task name of the jobs")
	f.StringVar(&args, "args", "", "job args as JSON (default {})")
	f.StringVarP(&q, "queue", "q", "", "queue of the jobs (default: the task's route, else \"default\")")
	f.StringVar(&zone, "tz", "", "IANA time zone of the cron fields (default UTC)")
	f.IntVar(&priority, "priority", 0, "priority 0 (lowest) to 9 (highest)")
	f.IntVar(&maxRetries, "max-retries", 0, fmt.Sprintf("retries of a failed job (default %d)", queue.MaxRetriesDefault))
	f.DurationVar(&expires, "expires", 0, "discard a job not started this long after enqueue (default: at the next tick)")
	f.StringVar(&missed, "missed", "", `ticks missed while no beat ran: "run-once" (default, one job for the latest) or "skip"`)
	return cmd
}

// flagFor names the flag that set an Entry field.
func flagFor(field string, every bool) string {
	switch field {
	case "Schedule":
		if every {
			return "--every"
		}
		return "--cron"
	case "TimeZone":
		return "--tz"
	case "Args":
		return "--task/--args"
	case "Options.Queue":
		return "--queue"
	case "Options.Priority":
		return "--priority"
	case "Options.MaxRetries":
		return "--max-retries"
	case "Options.Expires":
		return "--expires"
	case "Missed":
		return "--missed"
	case "Name":
		return "NAME"
	}
	return field
}
