package cli_test

import (
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/cmd/pgq/cli"
)

func TestPeriodicCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Contains(t, b.mustRun(t, "periodic", "list"), "no periodic tasks")

	out := b.mustRun(t, "periodic", "add", "report", "--cron", "30 7 * * mon-fri", "--tz", "Europe/Berlin",
		"--task", "reports.build", "--args", `{"kind":"daily"}`, "-q", "reports", "--priority", "5", "--missed", "skip")
	require.Contains(t, out, "added report: 30 7 * * mon-fri (Europe/Berlin), next run ")
	b.mustRun(t, "periodic", "add", "ping", "--every", "30s", "--task", "pgq.noop")

	out = b.mustRun(t, "periodic", "list")
	require.Contains(t, out, "report")
	require.Contains(t, out, "@every 30s")

	var list struct {
		Tasks []struct {
			Name     string          `json:"name"`
			Schedule string          `json:"schedule"`
			TimeZone string          `json:"time_zone"`
			Task     string          `json:"task"`
			Args     json.RawMessage `json:"args"`
			Queue    string          `json:"queue"`
			Priority *int            `json:"priority"`
			Missed   string          `json:"missed"`
			Enabled  bool            `json:"enabled"`
			Source   string          `json:"source"`
			Next     *string         `json:"next_tick"`
			LastJob  *int64          `json:"last_job_id"`
			State    string          `json:"last_job_state"`
		} `json:"tasks"`
	}
	require.NoError(t, json.Unmarshal([]byte(b.mustRun(t, "periodic", "list", "--json")), &list))
	require.Len(t, list.Tasks, 2)
	r := list.Tasks[1]
	require.Equal(t, "report", r.Name)
	require.Equal(t, "Europe/Berlin", r.TimeZone)
	require.JSONEq(t, `{"kind":"daily"}`, string(r.Args))
	require.Equal(t, "reports", r.Queue)
	require.Equal(t, 5, *r.Priority)
	require.Equal(t, "skip", r.Missed)
	require.Equal(t, "cli", r.Source)
	require.True(t, r.Enabled)
	require.NotNil(t, r.Next)

	require.Equal(t, "disabled report\n", b.mustRun(t, "periodic", "disable", "report"))
	id := parseID(t, b.mustRun(t, "periodic", "run-now", "report"))
	state, _, _ := b.jobState(t, id)
	require.Equal(t, "available", state)
	list.Tasks = nil
	require.NoError(t, json.Unmarshal([]byte(b.mustRun(t, "periodic", "list", "--json")), &list))
	require.False(t, list.Tasks[1].Enabled)
	require.Nil(t, list.Tasks[1].Next, "a disabled task has no next run")
	require.Equal(t, id, *list.Tasks[1].LastJob)
	require.Equal(t, "available", list.Tasks[1].State)
	require.Equal(t, "enabled report\n", b.mustRun(t, "periodic", "enable", "report"))

	var overview int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM "+
		pgx.Identifier{b.db.Schema, "periodic_overview"}.Sanitize()+" WHERE name = 'report' AND last_job_state = 'available'").Scan(&overview))
	require.Equal(t, 1, overview)

	require.Equal(t, "removed report\n", b.mustRun(t, "periodic", "remove", "report"))
	require.NotContains(t, b.mustRun(t, "periodic", "list"), "report")
}

func TestPeriodicBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"periodic", "add", "x", "--cron", "61 * * * *", "--task", "t"}, cli.ExitUsage, `--cron: cron spec "61 * * * *": minute field "61"`},
		{[]string{"periodic", "add", "x", "--cron", "* * *", "--task", "t"}, cli.ExitUsage, "has 3 fields"},
		{[]string{"periodic", "add", "x", "--cron", "@daily", "--tz", "Mars/Base", "--task", "t"}, cli.ExitUsage, `--tz: unknown time zone "Mars/Base"`},
		{[]string{"periodic", "add", "x", "--every", "500ms", "--task", "t"}, cli.ExitUsage, "--every: interval"},
		{[]string{"periodic", "add", "x", "--every", "1m", "--cron", "@daily", "--task", "t"}, cli.ExitUsage, "one of them"},
		{[]string{"periodic", "add", "x", "--every", "1m"}, cli.ExitUsage, "--task is required"},
		{[]string{"periodic", "add", "x", "--every", "1m", "--task", "t", "--args", "{"}, cli.ExitUsage, "--args is not valid JSON"},
		{[]string{"periodic", "add", "x", "--every", "1m", "--task", "bad task"}, cli.ExitUsage, "--task/--args"},
		{[]string{"periodic", "add", "x", "--every", "1m", "--task", "t", "--missed", "later"}, cli.ExitUsage, "--missed"},
		{[]string{"periodic", "enable", "nope"}, cli.ExitError, `no such periodic task: "nope"`},
		{[]string{"periodic", "run-now", "nope"}, cli.ExitError, `no such periodic task`},
		{[]string{"periodic", "remove"}, cli.ExitUsage, "missing NAME"},
	} {
		msg, code := b.run(t, c.args...).report()
		require.Equal(t, c.code, code, "%v: %s", c.args, msg)
		require.Contains(t, msg, c.want, "%v", c.args)
	}
	b.mustRun(t, "periodic", "add", "x", "--every", "1m", "--task", "t")
	msg, code := b.run(t, "periodic", "add", "x", "--every", "1m", "--task", "t").report()
	require.Equal(t, cli.ExitError, code)
	require.Contains(t, msg, "already exists")
}
