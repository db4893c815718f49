package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// result is what one execution of the command produced.
type result struct {
	out, errOut string
	err         error
}

// report is what the user would see on stderr, and the exit code.
func (r result) report() (string, int) {
	var b bytes.Buffer
	code := cli.Report(&b, r.err)
	return b.String(), code
}

// execute runs the pgq command in-process with env as its whole
// environment.
func execute(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.New(&cli.Options{Getenv: func(k string) string { return env[k] }})
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return result{out: out.String(), errOut: errOut.String(), err: err}
}

// bundle is what most tests need: a migrated schema of their own and a way
// to run pgq against it.
type bundle struct {
	db *pgtest.DB
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return &bundle{db: pgtest.New(t)}
}

// run executes pgq against the test's schema.
func (b *bundle) run(t *testing.T, args ...string) result {
	t.Helper()
	return execute(t, nil, append([]string{"--database-url", b.db.URL, "--schema", b.db.Schema}, args...)...)
}

// mustRun executes pgq against the test's schema and fails the test on error.
func (b *bundle) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := b.run(t, args...)
	require.NoError(t, r.err, "pgq %v\nstdout: %s\nstderr: %s", args, r.out, r.errOut)
	return r.out
}

// jobCount counts the rows of the test schema's jobs table.
func (b *bundle) jobCount(t *testing.T) int {
	t.Helper()
	var n int
	err := b.db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()).Scan(&n)
	require.NoError(t, err)
	return n
}

// freshSchema returns a schema name nobody has used, dropped at the end.
func freshSchema(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "pgqcli_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		_, err := db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		if err != nil {
			t.Logf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// closedPortURL returns a database URL whose port nothing listens on.
func closedPortURL(t *testing.T) (url, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr = l.Addr().String()
	require.NoError(t, l.Close())
	return "postgres://app:secret@" + addr + "/app?sslmode=disable", addr
}

func TestMissingDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"inspect", "queues"},
		{"enqueue", "emails.send"},
		{"migrate", "version"},
	} {
		r := execute(t, map[string]string{}, args...)
		require.Error(t, r.err, "%v", args)
		msg, code := r.report()
		require.Equal(t, 1, code)
		for _, want := range []string{"--database-url", "PGQ_DATABASE_URL", "DATABASE_URL"} {
			require.Contains(t, msg, want)
		}
		require.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
	}
}

func TestDatabaseURLPrecedence(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad, _ := closedPortURL(t)

	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"PGQ_DATABASE_URL", map[string]string{"PGQ_DATABASE_URL": b.db.URL, "DATABASE_URL": bad}, nil},
		{"DATABASE_URL", map[string]string{"DATABASE_URL": b.db.URL}, nil},
		{"flag beats both", map[string]string{"PGQ_DATABASE_URL": bad, "DATABASE_URL": bad}, []string{"--database-url", b.db.URL}},
		{"PGQ_SCHEMA", map[string]string{"PGQ_DATABASE_URL": b.db.URL, "PGQ_SCHEMA": b.db.Schema}, nil},
	}
	for _, tc := range cases {
		args := append(tc.args, "inspect", "queues", "--json")
		if tc.env["PGQ_SCHEMA"] == "" {
			args = append([]string{"--schema", b.db.Schema}, args...)
		}
		r := execute(t, tc.env, args...)
		require.NoError(t, r.err, tc.name)
		require.JSONEq(t, `{"queues":[]}`, r.out, tc.name)
	}
}

func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	url, addr := closedPortURL(t)
	r := execute(t, nil, "--database-url", url, "inspect", "queues")
	require.Error(t, r.err)
	msg, code := r.report()
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
	require.Contains(t, msg, "pgq: cannot connect to PostgreSQL at "+addr)
	require.Contains(t, msg, "connection refused")
	require.NotContains(t, msg, "secret")
	require.NotContains(t, msg, "goroutine")
	require.Empty(t, r.out)
}

func TestInvalidDatabaseURL(t *testing.T) {
	t.Parallel()
	r := execute(t, nil, "--database-url", "postgres://app:secret@host:notaport/db", "inspect", "queues")
	require.Error(t, r.err)
	msg, code := r.report()
	require.Equal(t, 1, code)
	require.Contains(t, msg, "invalid database URL")
	require.NotContains(t, msg, "secret")
}

func TestNotMigrated(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	name := freshSchema(t, db)
	for _, args := range [][]string{
		{"inspect", "queues"},
		{"inspect", "jobs"},
		{"inspect", "job", "1"},
		{"enqueue", "emails.send"},
	} {
		r := execute(t, nil, append([]string{"--database-url", db.URL, "--schema", name}, args...)...)
		require.ErrorIs(t, r.err, queue.ErrNotMigrated, "%v", args)
		msg, code := r.report()
		require.Equal(t, 1, code)
		require.Contains(t, msg, "run `pgq migrate up --schema "+name+"`")
	}
}

func TestInvalidSchemaName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := execute(t, nil, "--database-url", b.db.URL, "--schema", "Bad-Name", "inspect", "queues")
	require.Error(t, r.err)
	require.Contains(t, r.err.Error(), "--schema")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"inspect", "bogus"}, `unknown command "bogus"`},
		{[]string{"enqueue"}, "missing TASK"},
		{[]string{"enqueue", "a", "b"}, "too many arguments"},
		{[]string{"enqueue", "a", "--nope"}, "unknown flag: --nope"},
		{[]string{"enqueue", "a", "--countdown", "soon"}, "--countdown"},
		{[]string{"inspect", "job"}, "missing ID"},
		{[]string{"inspect", "job", "abc"}, `job id "abc" is not a positive integer`},
		{[]string{"inspect", "jobs", "--limit", "0"}, "--limit must be between 1 and 1000"},
		{[]string{"inspect", "jobs", "--state", "done"}, `--state "done" is not a job state`},
		{[]string{"migrate", "down"}, "pass --yes to confirm"},
		{[]string{"migrate", "down", "--yes", "--steps", "-1"}, "--steps cannot be negative"},
	}
	for _, tc := range cases {
		// No database URL: usage errors are found before connecting.
		r := execute(t, map[string]string{}, tc.args...)
		var u *cli.UsageError
		require.True(t, errors.As(r.err, &u), "%v: %v", tc.args, r.err)
		msg, code := r.report()
		require.Equal(t, 2, code, "%v", tc.args)
		require.Contains(t, msg, tc.want, "%v", tc.args)
		require.Contains(t, msg, "--help")
	}
}

func TestHelpHasExamples(t *testing.T) {
	t.Parallel()
	cmds := []*cobra.Command{cli.New(nil)}
	for len(cmds) > 0 {
		c := cmds[0]
		cmds = append(cmds[1:], c.Commands()...)
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			continue
		}
		require.NotEmpty(t, c.Example, "%s has no example", c.CommandPath())
		r := execute(t, nil, append(strings.Fields(c.CommandPath())[1:], "--help")...)
		require.NoError(t, r.err)
		require.Contains(t, r.out, "Examples:", c.CommandPath())
	}
}
