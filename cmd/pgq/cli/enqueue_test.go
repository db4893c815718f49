package cli_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// jobRow is a job as stored, read back with SQL.
type jobRow struct {
	Task, Queue, State string
	Priority           int16
	Args, Meta         []byte
	MaxRetries         int32
	RetryDelayMs       *int32
	TimeLimitMs        *int32
	SoftTimeLimitMs    *int32
	IgnoreResult       bool
	UniqueKey          *string
	RunAt, CreatedAt   time.Time
	ExpiresAt          *time.Time
}

func (b *bundle) jobRow(t *testing.T, id int64) jobRow {
	t.Helper()
	var j jobRow
	err := b.db.Pool.QueryRow(t.Context(), `SELECT task, queue, state, priority, args, meta, max_retries,
		retry_delay_ms, time_limit_ms, soft_time_limit_ms, ignore_result, unique_key, run_at, created_at, expires_at
		FROM `+pgx.Identifier{b.db.Schema, "jobs"}.Sanitize()+` WHERE id = $1`, id).Scan(
		&j.Task, &j.Queue, &j.State, &j.Priority, &j.Args, &j.Meta, &j.MaxRetries,
		&j.RetryDelayMs, &j.TimeLimitMs, &j.SoftTimeLimitMs, &j.IgnoreResult, &j.UniqueKey, &j.RunAt, &j.CreatedAt, &j.ExpiresAt)
	require.NoError(t, err)
	return j
}

// parseID reads the job id printed by `pgq enqueue`.
func parseID(t *testing.T, out string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	require.NoError(t, err, "output %q", out)
	return id
}

func TestEnqueueDefaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := parseID(t, b.mustRun(t, "enqueue", "emails.send"))
	j := b.jobRow(t, id)
	require.Equal(t, "emails.send", j.Task)
	require.Equal(t, "default", j.Queue)
	require.Equal(t, "available", j.State)
	require.EqualValues(t, 0, j.Priority)
	require.JSONEq(t, `{}`, string(j.Args))
	require.JSONEq(t, `{}`, string(j.Meta))
	require.EqualValues(t, 3, j.MaxRetries)
	require.Nil(t, j.RetryDelayMs)
	require.Nil(t, j.UniqueKey)
	require.False(t, j.IgnoreResult)
}

func TestEnqueueAllOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.mustRun(t, "enqueue", "reports.build",
		"--args", `{"month": "2026-11", "pages": [1, 2]}`,
		"--queue", "reports", "--priority", "7", "--countdown", "10m", "--expires", "1h",
		"--max-retries", "0", "--retry-delay", "30s", "--time-limit", "1m", "--soft-time-limit", "50s",
		"--ignore-result", "--unique-key", "report-2026-11",
		"--header", "tenant=acme", "--header", "trace=a=b", "--json")
	var e struct {
		ID        int64     `json:"id"`
		Task      string    `json:"task"`
		Queue     string    `json:"queue"`
		State     string    `json:"state"`
		RunAt     time.Time `json:"run_at"`
		Duplicate bool      `json:"duplicate"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &e), out)
	require.Equal(t, "reports.build", e.Task)
	require.Equal(t, "reports", e.Queue)
	require.Equal(t, "scheduled", e.State)
	require.False(t, e.Duplicate)

	j := b.jobRow(t, e.ID)
	require.Equal(t, "reports", j.Queue)
	require.Equal(t, "scheduled", j.State)
	require.EqualValues(t, 7, j.Priority)
	require.JSONEq(t, `{"month":"2026-11","pages":[1,2]}`, string(j.Args))
	require.JSONEq(t, `{"tenant":"acme","trace":"a=b"}`, string(j.Meta))
	require.EqualValues(t, 0, j.MaxRetries)
	require.EqualValues(t, 30000, *j.RetryDelayMs)
	require.EqualValues(t, 60000, *j.TimeLimitMs)
	require.EqualValues(t, 50000, *j.SoftTimeLimitMs)
	require.True(t, j.IgnoreResult)
	require.Equal(t, "report-2026-11", *j.UniqueKey)
	require.WithinDuration(t, j.CreatedAt.Add(10*time.Minute), j.RunAt, time.Second)
	require.NotNil(t, j.ExpiresAt)
	require.WithinDuration(t, j.CreatedAt.Add(time.Hour), *j.ExpiresAt, time.Second)
	require.True(t, e.RunAt.Equal(j.RunAt))
}

func TestEnqueueETA(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eta := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	id := parseID(t, b.mustRun(t, "enqueue", "cleanup", "--eta", "2030-01-02T04:04:05+01:00"))
	j := b.jobRow(t, id)
	require.True(t, eta.Equal(j.RunAt), "run_at %s", j.RunAt)
	require.Equal(t, "scheduled", j.State)
}

func TestEnqueueUniqueKeyDuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := parseID(t, b.mustRun(t, "enqueue", "invoices.sync", "--unique-key", "invoice-7"))

	out := b.mustRun(t, "enqueue", "invoices.sync", "--unique-key", "invoice-7")
	require.Equal(t, strconv.FormatInt(first, 10)+" duplicate\n", out)

	out = b.mustRun(t, "enqueue", "invoices.sync", "--unique-key", "invoice-7", "--json")
	var e struct {
		ID        int64 `json:"id"`
		Duplicate bool  `json:"duplicate"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &e))
	require.Equal(t, first, e.ID)
	require.True(t, e.Duplicate)
	require.Equal(t, 1, b.jobCount(t))
}

func TestEnqueueBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"invalid JSON args", []string{"t", "--args", `{"to":`}, "--args is not valid JSON"},
		{"bare word args", []string{"t", "--args", "hello"}, "--args is not valid JSON"},
		{"negative countdown", []string{"t", "--countdown", "-5s"}, "--countdown cannot be negative"},
		{"unparsable eta", []string{"t", "--eta", "tomorrow"}, "RFC 3339"},
		{"eta without zone", []string{"t", "--eta", "2030-01-02 03:04:05"}, "2026-12-01T03:00:00Z"},
		{"eta and countdown", []string{"t", "--eta", "2030-01-02T03:04:05Z", "--countdown", "1s"}, "give one of them"},
		{"negative max retries", []string{"t", "--max-retries", "-1"}, "--max-retries cannot be negative"},
		{"empty task", []string{""}, "task name is empty"},
		{"invalid task", []string{"bad task!"}, `invalid task name "bad task!"`},
		{"empty queue", []string{"t", "--queue", ""}, "--queue: queue name is empty"},
		{"invalid queue", []string{"t", "--queue", "no spaces"}, `--queue: invalid queue name "no spaces"`},
		{"priority out of range", []string{"t", "--priority", "12"}, "--priority: priority 12 is out of range"},
		{"negative expires", []string{"t", "--expires", "-1h"}, "--expires cannot be negative"},
		{"soft limit above hard", []string{"t", "--time-limit", "10s", "--soft-time-limit", "20s"}, "--soft-time-limit"},
		{"bad header", []string{"t", "--header", "novalue"}, `--header "novalue" is not key=value`},
		{"empty unique key", []string{"t", "--unique-key", ""}, "--unique-key cannot be empty"},
	}
	for _, tc := range cases {
		r := b.run(t, append([]string{"enqueue"}, tc.args...)...)
		require.Error(t, r.err, tc.name)
		msg, code := r.report()
		require.NotEqual(t, 0, code, tc.name)
		require.Contains(t, msg, tc.want, tc.name)
		require.Equal(t, 1, strings.Count(msg, "\n"), "%s: one line: %q", tc.name, msg)
		require.Empty(t, r.out, tc.name)
	}
	require.Zero(t, b.jobCount(t))
}
