package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/lock"
)

func newLockCmd(a *app) *cobra.Command {
	cmd := groupCmd("lock", "Show distributed locks (PostgreSQL advisory locks)",
		`  pgq lock list
  pgq lock list --name reports:daily --json
  pgq lock key reports:daily`)
	cmd.Long = `Show the advisory locks of the database, which package lock (pgq's named
distributed locks), beat's leader election and the maintenance leader use.
A lock's key is a hash of its schema and name (docs/locks.md); it cannot be
turned back into the name, so "pgq lock list" marks the locks whose names it
is given with --name.`
	cmd.AddCommand(newLockListCmd(a), newLockKeyCmd(a))
	return cmd
}

func newLockListCmd(a *app) *cobra.Command {
	var (
		asJSON bool
		names  []string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List advisory locks held or awaited in the database, with their sessions",
		Long: `List every advisory lock of the current database, held or awaited, from
pg_locks and pg_stat_activity: key, holder (pid, client address,
application), and since when. OWNER names pgq's own locks in the schema
(beat leader, maintenance leader) and the named locks given with --name;
other keys belong to other schemas or programs, or to names not given.
SINCE is when a waiter began to wait, or when a holder's session
connected (a pgq session lock opens its connection to take the lock).`,
		Example: "  pgq lock list --name reports:daily --name invoices",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer s.Close()
			l, err := lock.New(s.pool, &lock.Config{Schema: s.schema})
			if err != nil {
				return err
			}
			infos, err := l.List(cmd.Context(), names...)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"locks": infos})
			}
			if len(infos) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no advisory locks held or awaited")
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "KEY\tOWNER\tSTATUS\tMODE\tPID\tCLIENT\tAPPLICATION\tSINCE")
			for _, in := range infos {
				key := strconv.FormatInt(in.Key, 10)
				if in.TwoKeys {
					key = fmt.Sprintf("(%d,%d)", in.Key1, in.Key2)
				}
				status, since := "held", in.BackendStart
				if !in.Granted {
					status, since = "waiting", in.WaitStart
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", key, dash(in.Owner), status, in.Mode, in.PID,
					dash(lockClientAddr(in)), dash(in.ApplicationName), formatSince(since))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringArrayVar(&names, "name", nil, "mark the lock with this name (repeatable)")
	return cmd
}

func newLockKeyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "key NAME...",
		Short: "Print the advisory-lock key of named locks in the schema",
		Long: `Print the advisory-lock key of each named lock in the schema, one a line, as
lock.Key in Go and pgq.lock_key(name) in SQL compute it. It needs no
database.`,
		Example: "  pgq lock key reports:daily",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := a.schemaName()
			if err != nil {
				return err
			}
			for _, n := range args {
				if n == "" {
					return lock.ErrEmptyName
				}
				fmt.Fprintln(cmd.OutOrStdout(), lock.Key(name, n))
			}
			return nil
		},
	}
}

func lockClientAddr(in lock.Info) string {
	if in.ClientAddr == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", in.ClientAddr, in.ClientPort)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatSince(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
