package cli_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/queue"
)

func TestInspectQueues(t *testing.T) {
	t.Parallel()
	b := setup(t)

	require.Equal(t, "no jobs yet\n", b.mustRun(t, "inspect", "queues"))

	for range 2 {
		b.mustRun(t, "enqueue", "emails.send")
	}
	b.mustRun(t, "enqueue", "reports.build", "--queue", "reports", "--countdown", "1h")

	out := b.mustRun(t, "inspect", "queues")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Equal(t, []string{"QUEUE", "PENDING", "SCHEDULED", "AVAILABLE", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED", "TOTAL"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"default", "0", "0", "2", "0", "0", "0", "0", "0", "2"}, strings.Fields(lines[1]))
	require.Equal(t, []string{"reports", "0", "1", "0", "0", "0", "0", "0", "0", "1"}, strings.Fields(lines[2]))

	var got struct {
		Queues []struct {
			Queue  string           `json:"queue"`
			States map[string]int64 `json:"states"`
			Total  int64            `json:"total"`
		} `json:"queues"`
	}
	out = b.mustRun(t, "inspect", "queues", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Len(t, got.Queues, 2)
	require.Equal(t, "default", got.Queues[0].Queue)
	require.Len(t, got.Queues[0].States, len(queue.States))
	require.EqualValues(t, 2, got.Queues[0].States["available"])
	require.EqualValues(t, 2, got.Queues[0].Total)
	require.EqualValues(t, 1, got.Queues[1].States["scheduled"])
}

func TestInspectJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)

	out := b.mustRun(t, "inspect", "jobs", "--json")
	require.JSONEq(t, `{"jobs":[]}`, out)
	require.Equal(t, "no jobs\n", b.mustRun(t, "inspect", "jobs"))

	var ids []int64
	for _, q := range []string{"a", "b", "a"} {
		ids = append(ids, parseID(t, b.mustRun(t, "enqueue", "task."+q, "--queue", q)))
	}

	out = b.mustRun(t, "inspect", "jobs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	require.Equal(t, []string{"ID", "TASK", "QUEUE", "STATE", "PRIORITY", "ATTEMPTS", "RUN", "AT", "CREATED", "LAST", "ERROR"}, strings.Fields(lines[0]))
	require.Equal(t, []string{strconv.FormatInt(ids[2], 10), "task.a", "a", "available", "0", "0/4"}, strings.Fields(lines[1])[:6])

	var page struct {
		Jobs       []queue.JobSummary `json:"jobs"`
		NextBefore int64              `json:"next_before"`
	}
	out = b.mustRun(t, "inspect", "jobs", "--queue", "a", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Len(t, page.Jobs, 2)
	require.Equal(t, ids[2], page.Jobs[0].ID)
	require.Equal(t, ids[0], page.Jobs[1].ID)
	require.Zero(t, page.NextBefore)

	// Pagination: a full page names the next --before.
	out = b.mustRun(t, "inspect", "jobs", "--limit", "2", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Len(t, page.Jobs, 2)
	require.Equal(t, ids[1], page.NextBefore)
	require.Contains(t, b.mustRun(t, "inspect", "jobs", "--limit", "2"), "more: --before "+strconv.FormatInt(ids[1], 10))

	out = b.mustRun(t, "inspect", "jobs", "--before", strconv.FormatInt(page.NextBefore, 10), "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Len(t, page.Jobs, 1)
	require.Equal(t, ids[0], page.Jobs[0].ID)

	out = b.mustRun(t, "inspect", "jobs", "--task", "task.b", "--state", "available", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Len(t, page.Jobs, 1)
	require.Equal(t, ids[1], page.Jobs[0].ID)
}

func TestInspectJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := parseID(t, b.mustRun(t, "enqueue", "emails.send", "--args", `{"to":"ada@example.com"}`,
		"--queue", "emails", "--unique-key", "welcome-ada", "--header", "tenant=acme", "--time-limit", "1m"))

	// Give the job a history of two failed attempts, as a worker would.
	_, err := b.db.Pool.Exec(t.Context(), `UPDATE `+pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()+`
		SET state = 'failed', attempt = 2, finished_at = now(), errors = jsonb_build_array(
			jsonb_build_object('attempt', 1, 'at', now(), 'error', 'smtp: connection reset'),
			jsonb_build_object('attempt', 2, 'at', now(), 'error', 'smtp: 550 mailbox unavailable',
				'stack', E'goroutine 7 [running]:\nmain.send()\n\t/app/send.go:42'))
		WHERE id = $1`, id)
	require.NoError(t, err)

	out := b.mustRun(t, "inspect", "job", strconv.FormatInt(id, 10))
	for _, want := range []string{
		"id:", strconv.FormatInt(id, 10), "task:", "emails.send", "queue:", "emails", "state:", "failed",
		`{"to":"ada@example.com"}`, `{"tenant":"acme"}`, "welcome-ada", "time limit:", "1m0s",
		"attempt:", "2 of 4", "errors:", "attempt 1 at", "smtp: connection reset",
		"attempt 2 at", "smtp: 550 mailbox unavailable", "stack:", "main.send()", "/app/send.go:42",
	} {
		require.Contains(t, out, want)
	}

	out = b.mustRun(t, "inspect", "job", strconv.FormatInt(id, 10), "--json")
	var j queue.Job
	require.NoError(t, json.Unmarshal([]byte(out), &j), out)
	require.Equal(t, id, j.ID)
	require.Equal(t, "emails.send", j.Task)
	require.Equal(t, "failed", j.State)
	require.JSONEq(t, `{"to":"ada@example.com"}`, string(j.Args))
	require.Len(t, j.Errors, 2)
	require.Equal(t, "smtp: 550 mailbox unavailable", j.Errors[1].Error)
	require.Contains(t, j.Errors[1].Stack, "/app/send.go:42")
}

func TestInspectJobNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run(t, "inspect", "job", "999999")
	require.ErrorIs(t, r.err, queue.ErrJobNotFound)
	msg, code := r.report()
	require.Equal(t, 1, code)
	require.Contains(t, msg, "pgq: no such job 999999")
	require.Equal(t, 1, strings.Count(msg, "\n"))
}
