package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/migrations"
)

func newMigrateCmd(a *app) *cobra.Command {
	cmd := groupCmd("migrate", "Install, upgrade, roll back or show pgq's schema",
		`  pgq migrate up
  pgq migrate version
  pgq migrate down --steps 1 --yes`)
	cmd.Long = `Install, upgrade, roll back or show pgq's schema.

The migrations are embedded in the binary; a Go program applies the same ones
with migrations.Up. Several processes may migrate at once: golang-migrate
serialises them with an advisory lock.`
	cmd.AddCommand(newMigrateUpCmd(a), newMigrateDownCmd(a), newMigrateVersionCmd(a))
	return cmd
}

func newMigrateUpCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "up",
		Short: "Apply every migration not yet applied (creating the schema if needed)",
		Example: `  pgq migrate up
  pgq migrate up --schema tenant_a --database-url postgres://app@db/app`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := a.open(ctx, false)
			if err != nil {
				return err
			}
			defer s.Close()
			before, _, err := migrations.Version(ctx, s.pool, s.schema)
			if err != nil {
				return err
			}
			if err := migrations.Up(ctx, s.pool, s.schema); err != nil {
				return err
			}
			after, _, err := migrations.Version(ctx, s.pool, s.schema)
			if err != nil {
				return err
			}
			if after == before {
				fmt.Fprintf(cmd.OutOrStdout(), "schema %s is up to date at version %d\n", s.schema, after)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema %s migrated from version %d to %d\n", s.schema, before, after)
			return nil
		},
	}
}

func newMigrateDownCmd(a *app) *cobra.Command {
	var steps int
	var yes bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Roll back migrations; this drops pgq's tables and the jobs in them",
		Long: `Roll back the last --steps migrations, or all of them when --steps is 0
(the default). Rolling back drops tables and the jobs in them, so the command
refuses to run without --yes.`,
		Example: `  pgq migrate down --steps 1 --yes
  pgq migrate down --yes --schema pgq_scratch`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if steps < 0 {
				return usageErrorf(cmd, "--steps cannot be negative (0 rolls back everything)")
			}
			if !yes {
				return usageErrorf(cmd, "migrate down drops pgq's tables and every job in them; pass --yes to confirm")
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, false)
			if err != nil {
				return err
			}
			defer s.Close()
			before, _, err := migrations.Version(ctx, s.pool, s.schema)
			if err != nil {
				return err
			}
			if err := migrations.Down(ctx, s.pool, s.schema, steps); err != nil {
				return err
			}
			after, _, err := migrations.Version(ctx, s.pool, s.schema)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schema %s rolled back from version %d to %d\n", s.schema, before, after)
			return nil
		},
	}
	cmd.Flags().IntVar(&steps, "steps", 0, "number of migrations to roll back; 0 means all")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm that tables and jobs may be dropped")
	return cmd
}

// versionInfo is the output of `pgq migrate version --json`.
type versionInfo struct {
	Schema  string `json:"schema"`
	Version uint   `json:"version"`
	Latest  uint   `json:"latest"`
	Dirty   bool   `json:"dirty"`
}

func newMigrateVersionCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the applied and the latest migration version",
		Long: `Show the schema's applied migration version (0 when none), the latest
version this binary carries, and whether a migration failed halfway ("dirty").`,
		Example: `  pgq migrate version
  pgq migrate version --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := a.open(ctx, false)
			if err != nil {
				return err
			}
			defer s.Close()
			v, dirty, err := migrations.Version(ctx, s.pool, s.schema)
			if err != nil {
				return err
			}
			info := versionInfo{Schema: s.schema, Version: v, Latest: migrations.Latest(), Dirty: dirty}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, info)
			}
			status := "up to date"
			switch {
			case dirty:
				status = "dirty: a migration failed halfway; fix the schema by hand, then migrate again"
			case v < info.Latest:
				status = fmt.Sprintf("%d migration(s) to apply: run `pgq migrate up`", info.Latest-v)
			case v > info.Latest:
				status = "newer than this binary"
			}
			fmt.Fprintf(out, "schema:  %s\nversion: %d\nlatest:  %d\ndirty:   %t\nstatus:  %s\n", s.schema, v, info.Latest, dirty, status)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
