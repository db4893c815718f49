package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

func newLimitCmd(a *app) *cobra.Command {
	cmd := groupCmd("limit", "Set, list and remove global rate and concurrency limits of tasks and queues",
		`  pgq limit set emails.send --rate 10/s --concurrency 5
  pgq limit set reports --queue --concurrency 2
  pgq limit list
  pgq limit delete emails.send`)
	cmd.AddCommand(newLimitSetCmd(a), newLimitListCmd(a), newLimitDeleteCmd(a))
	return cmd
}

// limitScope returns the scope and checks the name for it.
func limitScope(cmd *cobra.Command, name string, isQueue bool) (queue.LimitScope, error) {
	if isQueue {
		if err := queue.ValidateQueueName(name); err != nil {
			return "", usageErrorf(cmd, "%v", err)
		}
		return queue.LimitQueue, nil
	}
	if err := queue.ValidateTaskName(name); err != nil {
		return "", usageErrorf(cmd, "%v", err)
	}
	return queue.LimitTask, nil
}

func newLimitSetCmd(a *app) *cobra.Command {
	var (
		rate        string
		concurrency int
		burst       float64
		isQueue     bool
	)
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Set the rate and/or concurrency limit of a task (or, with --queue, of a queue)",
		Long: `Set a limit that every worker of the schema obeys together: --rate in
Celery's syntax ("10/s", "100/m", "1000/h", or a bare number per second)
caps how fast jobs start; --concurrency caps how many run at once. Jobs over
a limit wait in their queue: they are not failed and use up no attempt.

Flags not given keep their current value; --rate none and --concurrency 0
remove that part. Running workers apply the change at once (they are told
on the control channel; one that misses it re-reads the limits within a
second).`,
		Example: `  pgq limit set emails.send --rate 10/s
  pgq limit set emails.send --concurrency 5
  pgq limit set reports --queue --concurrency 2
  pgq limit set api.call --rate 100/m --burst 10
  pgq limit set emails.send --rate none`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			scope, err := limitScope(cmd, name, isQueue)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if !f.Changed("rate") && !f.Changed("concurrency") && !f.Changed("burst") {
				return usageErrorf(cmd, "give --rate, --concurrency or both")
			}
			if f.Changed("rate") && rate != "none" {
				if _, err := queue.ParseRate(rate); err != nil {
					return usageErrorf(cmd, "--rate: %v", err)
				}
			}
			if f.Changed("concurrency") && concurrency < 0 {
				return usageErrorf(cmd, "--concurrency %d: a concurrency limit must be 1 or more (0 removes it)", concurrency)
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			l := queue.Limit{Scope: scope, Name: name}
			current, err := s.client.Limits(ctx)
			if err != nil {
				return err
			}
			for _, c := range current {
				if c.Scope == scope && c.Name == name {
					l = c.Limit
				}
			}
			if f.Changed("rate") {
				l.Rate = rate
				if rate == "none" {
					l.Rate, l.Burst = "", 0
				}
			}
			if f.Changed("burst") {
				l.Burst = burst
			}
			if f.Changed("concurrency") {
				l.Concurrency = concurrency
			}
			if l.Rate == "" && l.Concurrency == 0 {
				if err := s.client.DeleteLimit(ctx, scope, name); err != nil && !errors.Is(err, queue.ErrLimitNotFound) {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: no limit\n", scope, name)
				return nil
			}
			if err := s.client.SetLimit(ctx, l); err != nil {
				if errors.Is(err, queue.ErrInvalid) {
					return usageErrorf(cmd, "%v", err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", scope, name, describeLimit(l))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&rate, "rate", "", `jobs started per second, minute or hour, such as "10/s", "100/m", "1000/h"; "none" removes it`)
	f.IntVar(&concurrency, "concurrency", 0, "most jobs running at once across every worker; 0 removes it")
	f.Float64Var(&burst, "burst", 0, "how many jobs may start at once after a quiet spell (default: 2, or 100 ms worth of the rate if more)")
	f.BoolVar(&isQueue, "queue", false, "NAME is a queue: limit all its jobs, whatever their task")
	return cmd
}

// describeLimit says what a limit is, for people.
func describeLimit(l queue.Limit) string {
	var parts []string
	if l.Rate != "" {
		r := "rate " + l.Rate
		if l.Burst != 0 {
			r += " (burst " + strconv.FormatFloat(l.Burst, 'f', -1, 64) + ")"
		}
		parts = append(parts, r)
	}
	if l.Concurrency > 0 {
		parts = append(parts, fmt.Sprintf("at most %d running", l.Concurrency))
	}
	return strings.Join(parts, ", ")
}

func newLimitListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the limits with their bucket's tokens now and the jobs running under them",
		Example: "  pgq limit list --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			ls, err := s.client.Limits(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if ls == nil {
					ls = []queue.LimitInfo{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"limits": ls})
			}
			if len(ls) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no limits")
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "SCOPE\tNAME\tRATE\tTOKENS\tCONCURRENCY\tRUNNING")
			for _, l := range ls {
				rate, tokens, conc := "-", "-", "-"
				if l.Rate != "" {
					rate = l.Rate
					if l.Burst != 0 {
						rate += " burst " + strconv.FormatFloat(l.Burst, 'f', -1, 64)
					}
				}
				if l.Tokens != nil {
					tokens = strconv.FormatFloat(*l.Tokens, 'f', 2, 64)
				}
				if l.Concurrency > 0 {
					conc = strconv.Itoa(l.Concurrency)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", l.Scope, l.Name, rate, tokens, conc, l.Running)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLimitDeleteCmd(a *app) *cobra.Command {
	var isQueue bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Remove the limits of a task (or, with --queue, of a queue)",
		Example: "  pgq limit delete emails.send\n  pgq limit delete reports --queue",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope, err := limitScope(cmd, args[0], isQueue)
			if err != nil {
				return err
			}
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.client.DeleteLimit(cmd.Context(), scope, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: no limit\n", scope, args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&isQueue, "queue", false, "NAME is a queue")
	return cmd
}
