package cli_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestRolesCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	role := b.db.Schema + "_cli"
	_, err := b.db.Pool.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" NOLOGIN")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = b.db.Pool.Exec(context.Background(), "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
		_, _ = b.db.Pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
	})

	require.Contains(t, b.mustRun(t, "roles", "list"), "no roles were given access")
	require.Contains(t, b.mustRun(t, "roles", "grant", role, "--access", "worker"), "worker access to schema "+b.db.Schema)

	var canUpdate bool
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT has_table_privilege($1, $2, 'UPDATE')",
		role, b.db.Schema+".jobs").Scan(&canUpdate))
	require.True(t, canUpdate)

	var list struct {
		Grants []struct {
			Role     string `json:"role"`
			Access   string `json:"access"`
			CanLogin bool   `json:"can_login"`
		} `json:"grants"`
	}
	require.NoError(t, json.Unmarshal([]byte(b.mustRun(t, "roles", "list", "--json")), &list))
	require.Len(t, list.Grants, 1)
	require.Equal(t, role, list.Grants[0].Role)
	require.Equal(t, "worker", list.Grants[0].Access)
	require.False(t, list.Grants[0].CanLogin)

	require.Contains(t, b.mustRun(t, "roles", "revoke", role), "no access")
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT has_table_privilege($1, $2, 'SELECT')",
		role, b.db.Schema+".jobs").Scan(&canUpdate))
	require.False(t, canUpdate)

	r := b.run(t, "roles", "grant", role, "--access", "root")
	require.ErrorContains(t, r.err, "use producer, worker or admin")
	r = b.run(t, "roles", "grant", role+"_missing", "--access", "producer")
	require.ErrorContains(t, r.err, "CREATE ROLE")
}
