package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

func newRolesCmd(a *app) *cobra.Command {
	cmd := groupCmd("roles", "Give database roles least-privilege access to pgq",
		`  pgq roles grant web_app --access producer
  pgq roles grant job_runner --access worker
  pgq roles list`)
	cmd.Long = `Give existing database roles the access they need and no more
(docs/roles.md):

  producer  enqueue jobs, read jobs, results and statistics; no update or
            delete of jobs
  worker    run jobs (select, insert, update, delete on pgq's tables)
  admin     everything the dashboard and the operator commands do

pgq does not create roles (that needs CREATEROLE and is the database
administrator's call): create them first, then run these commands as the
owner of the schema. Grants are recorded and re-applied by migrations that
add tables.`
	cmd.AddCommand(newRolesGrantCmd(a), newRolesRevokeCmd(a), newRolesListCmd(a))
	return cmd
}

func newRolesGrantCmd(a *app) *cobra.Command {
	var access string
	cmd := &cobra.Command{
		Use:   "grant ROLE",
		Short: "Give a role producer, worker or admin access (replacing what it had)",
		Example: `  psql -c "CREATE ROLE web_app LOGIN PASSWORD 'secret'"
  pgq roles grant web_app --access producer`,
		Args: exactArgs("ROLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			acc, err := queue.ParseAccess(access)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.client.GrantAccess(cmd.Context(), args[0], acc); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "role %s: %s access to schema %s\n", args[0], acc, s.schema)
			return nil
		},
	}
	cmd.Flags().StringVar(&access, "access", "", "producer, worker or admin (required)")
	_ = cmd.MarkFlagRequired("access")
	return cmd
}

func newRolesRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ROLE",
		Short:   "Take away the access a role was given",
		Example: "  pgq roles revoke web_app",
		Args:    exactArgs("ROLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			existed, err := s.client.RevokeAccess(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !existed {
				fmt.Fprintf(cmd.OutOrStdout(), "role %s does not exist; its record was removed\n", args[0])
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "role %s: no access to schema %s\n", args[0], s.schema)
			return nil
		},
	}
}

func newRolesListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the roles given access to the schema",
		Example: "  pgq roles list\n  pgq roles list --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer s.Close()
			grants, err := s.client.ListAccess(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"grants": grants})
			}
			if len(grants) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no roles were given access (pgq roles grant ROLE --access ...)")
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ROLE\tACCESS\tLOGIN\tGRANTED")
			for _, g := range grants {
				login := "yes"
				switch {
				case !g.RoleExists:
					login = "role dropped"
				case !g.CanLogin:
					login = "no"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Role, g.Access, login, formatSince(&g.GrantedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
