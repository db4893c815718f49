package migrations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/migrations"
)

// jobRules is every rule on pgq.jobs's columns (migration 0013 holds them
// in domains; 0001, 0008 and 0010 held them in CHECK constraints of the
// table): a column, a value that breaks the rule, and the domain and the
// constraint that must refuse it, then the old table constraint's name.
var jobRules = []struct {
	column, bad        string
	domain, constraint string
	tableConstraint    string
	good               string // a value at the edge that passes
}{
	{"task", "''", "task_name", "task_name_length", "jobs_task_length", "repeat('t', 200)"},
	{"task", "repeat('t', 201)", "task_name", "task_name_length", "jobs_task_length", "'t'"},
	{"queue", "''", "queue_name", "queue_name_length", "jobs_queue_length", "repeat('q', 100)"},
	{"queue", "repeat('q', 101)", "queue_name", "queue_name_length", "jobs_queue_length", "'q'"},
	{"state", "'bogus'", "job_state", "job_state_known", "jobs_state_known", "'pending'"},
	{"state", "'Available'", "job_state", "job_state_known", "jobs_state_known", "'cancelled'"},
	{"priority", "10", "job_priority", "job_priority_range", "jobs_priority_range", "9"},
	{"priority", "-1", "job_priority", "job_priority_range", "jobs_priority_range", "0"},
	{"meta", "'[]'", "json_object", "json_object_type", "jobs_meta_object", "'{}'"},
	{"meta", "'null'", "json_object", "json_object_type", "jobs_meta_object", `'{"a": 1}'`},
	{"errors", "'{}'", "json_array", "json_array_type", "jobs_errors_array", "'[]'"},
	{"max_retries", "-1", "non_negative_int", "non_negative_int_range", "jobs_max_retries_positive", "0"},
	{"retry_delay_ms", "0", "positive_int", "positive_int_range", "jobs_retry_delay_positive", "1"},
	{"time_limit_ms", "0", "positive_int", "positive_int_range", "jobs_time_limit_positive", "1"},
	{"soft_time_limit_ms", "-5", "positive_int", "positive_int_range", "jobs_soft_time_limit_positive", "1"},
	{"unique_key", "''", "unique_key", "unique_key_length", "jobs_unique_key_length", "repeat('u', 255)"},
	{"unique_key", "repeat('u', 256)", "unique_key", "unique_key_length", "jobs_unique_key_length", "'u'"},
	{"unique_scope", "'forever'", "unique_scope", "unique_scope_known", "jobs_unique_scope_known", "'window'"},
	{"mutex_key", "''", "mutex_key", "mutex_key_length", "jobs_mutex_key_length", "repeat('m', 300)"},
	{"mutex_key", "repeat('m', 301)", "mutex_key", "mutex_key_length", "jobs_mutex_key_length", "'m'"},
}

// insertJob inserts one job with column set to the SQL expression value,
// in a transaction that is rolled back, and returns the error.
func insertJob(ctx context.Context, t *testing.T, db *pgtest.DB, column, value string) error {
	t.Helper()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	cols, vals := "task, "+column, "'x.y', "+value
	if column == "task" {
		cols, vals = column, value
	}
	_, err = tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s.jobs (%s) VALUES (%s)", db.Schema, cols, vals))
	return err
}

func requireCheckViolation(t *testing.T, err error, constraint string) *pgconn.PgError {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a check violation, got %v", err)
	require.Equal(t, "23514", pgErr.Code, pgErr.Message)
	require.Equal(t, constraint, pgErr.ConstraintName, pgErr.Message)
	return pgErr
}

// TestJobRules: each rule of a job's columns refuses a bad value, whether
// it comes by INSERT, UPDATE or COPY, with the error of its domain, and
// lets the values at its edges through.
func TestJobRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	for _, r := range jobRules {
		t.Run(r.column+"="+r.bad, func(t *testing.T) {
			pgErr := requireCheckViolation(t, insertJob(ctx, t, db, r.column, r.bad), r.constraint)
			require.Equal(t, db.Schema, pgErr.SchemaName)
			require.Equal(t, r.domain, pgErr.DataTypeName)
			require.Equal(t, fmt.Sprintf("value for domain %s.%s violates check constraint %q", db.Schema, r.domain, r.constraint), pgErr.Message)

			require.NoError(t, insertJob(ctx, t, db, r.column, r.good))
		})
	}

	// A job that exists cannot be changed into a bad one.
	var id int64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT "+db.Schema+".enqueue('x.y')").Scan(&id))
	for _, r := range jobRules {
		_, err := db.Pool.Exec(ctx, fmt.Sprintf("UPDATE %s.jobs SET %s = %s WHERE id = $1", db.Schema, r.column, r.bad), id)
		requireCheckViolation(t, err, r.constraint)
	}

	// Bulk enqueue (binary COPY, as EnqueueMany sends it) checks each row.
	_, err := db.Pool.CopyFrom(ctx, pgx.Identifier{db.Schema, "jobs"}, []string{"task", "state", "priority"},
		pgx.CopyFromRows([][]any{{"x.y", "available", int16(0)}, {"x.y", "available", int16(12)}}))
	requireCheckViolation(t, err, "job_priority_range")
	_, err = db.Pool.CopyFrom(ctx, pgx.Identifier{db.Schema, "jobs"}, []string{"task", "state"},
		pgx.CopyFromRows([][]any{{"x.y", "sleeping"}}))
	requireCheckViolation(t, err, "job_state_known")
}

// TestDomainParameters: pgx sends Go values to parameters whose type is one
// of the domains (a column's value in INSERT or UPDATE, not cast) and reads
// the columns back as their base types.
func TestDomainParameters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	retry := int32(1500)
	var (
		id       int64
		task     string
		state    string
		priority int16
		meta     json.RawMessage
		maxR     int32
		delay    *int32
		uniq     *string
	)
	err := db.Pool.QueryRow(ctx, fmt.Sprintf(`
		INSERT INTO %s.jobs (task, queue, state, priority, meta, errors, max_retries, retry_delay_ms, unique_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING id, task, state, priority, meta, max_retries, retry_delay_ms, unique_key`, db.Schema),
		"x.y", "q", "scheduled", int16(7), json.RawMessage(`{"trace": "abc"}`), json.RawMessage(`[]`), int32(2), &retry, nil,
	).Scan(&id, &task, &state, &priority, &meta, &maxR, &delay, &uniq)
	require.NoError(t, err)
	require.Equal(t, "x.y", task)
	require.Equal(t, "scheduled", state)
	require.Equal(t, int16(7), priority)
	require.JSONEq(t, `{"trace": "abc"}`, string(meta))
	require.Equal(t, int32(2), maxR)
	require.Equal(t, &retry, delay)
	require.Nil(t, uniq)

	_, err = db.Pool.Exec(ctx, fmt.Sprintf("UPDATE %s.jobs SET state = $1, priority = $2 WHERE id = $3", db.Schema), "bogus", int16(1), id)
	requireCheckViolation(t, err, "job_state_known")
	_, err = db.Pool.Exec(ctx, fmt.Sprintf("UPDATE %s.jobs SET meta = $1 WHERE id = $2", db.Schema), json.RawMessage(`[1]`), id)
	requireCheckViolation(t, err, "json_object_type")
}

// TestJobDomainsDownUp: rolling 0013 back puts every rule back as a CHECK
// constraint of the table, and going up again as domains; grants and
// comments on the views that had to be re-created survive both ways.
func TestJobDomainsDownUp(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := pgtest.New(t)
	s := db.Schema
	// Whatever happens below, the schema goes back to the pool migrated.
	t.Cleanup(func() { require.NoError(t, migrations.Up(context.Background(), db.Pool, s)) })

	// A grant made by hand (to PUBLIC: roles are cluster-wide, and this
	// test shares its server).
	_, err := db.Pool.Exec(ctx, "GRANT SELECT ON "+s+".queue_stats, "+s+".workflow_steps TO PUBLIC")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), "REVOKE SELECT ON "+s+".queue_stats, "+s+".workflow_steps FROM PUBLIC")
	})
	viewState := func() string {
		var out string
		require.NoError(t, db.Pool.QueryRow(ctx, `
			SELECT string_agg(c.relname || ':' || coalesce(c.relacl::text, '-') || ':' || coalesce(obj_description(c.oid, 'pg_class'), '-'), ' ' ORDER BY c.relname)
			  FROM pg_catalog.pg_class AS c
			 WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'v'`, s).Scan(&out))
		return out
	}
	before := viewState()
	require.Contains(t, before, "=r/") // PUBLIC's SELECT

	for {
		v, _, err := migrations.Version(ctx, db.Pool, s)
		require.NoError(t, err)
		if v <= 12 {
			require.Equal(t, uint(12), v)
			break
		}
		require.NoError(t, migrations.Down(ctx, db.Pool, s, 1))
	}
	require.Equal(t, before, viewState())
	var domains int
	require.NoError(t, db.Pool.QueryRow(ctx,
		"SELECT count(*) FROM pg_catalog.pg_type WHERE typnamespace = $1::regnamespace AND typtype = 'd'", s).Scan(&domains))
	require.Zero(t, domains)
	for _, r := range jobRules {
		pgErr := requireCheckViolation(t, insertJob(ctx, t, db, r.column, r.bad), r.tableConstraint)
		require.True(t, strings.HasPrefix(pgErr.Message, `new row for relation "jobs"`), pgErr.Message)
		require.NoError(t, insertJob(ctx, t, db, r.column, r.good))
	}

	require.NoError(t, migrations.Up(ctx, db.Pool, s))
	require.Equal(t, before, viewState())
	for _, r := range jobRules {
		requireCheckViolation(t, insertJob(ctx, t, db, r.column, r.bad), r.constraint)
	}
	var checks int
	require.NoError(t, db.Pool.QueryRow(ctx,
		"SELECT count(*) FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'", s+".jobs").Scan(&checks))
	require.Zero(t, checks, "pgq.jobs keeps no CHECK constraint: each one costs every write (docs/performance.md)")
}

// TestSQLClaimReturnsJobs: pgq.claim, the SQL API's claim, returns the
// columns that are domains as its declared plain types (PL/pgSQL's RETURN
// QUERY does not convert them by itself).
func TestSQLClaimReturnsJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)

	var id int64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT "+db.Schema+".enqueue('x.y', priority => 4, retry_delay => interval '2 s')").Scan(&id))
	var (
		gotID    int64
		task     string
		priority int32
		meta     json.RawMessage
		maxR     int32
		delay    *int32
	)
	require.NoError(t, db.Pool.QueryRow(ctx,
		"SELECT id, task, priority, meta, max_retries, retry_delay_ms FROM "+db.Schema+".claim('w1', '{default}', 1)",
	).Scan(&gotID, &task, &priority, &meta, &maxR, &delay))
	require.Equal(t, id, gotID)
	require.Equal(t, "x.y", task)
	require.Equal(t, int32(4), priority)
	require.JSONEq(t, `{}`, string(meta))
	require.Equal(t, int32(3), maxR)
	require.NotNil(t, delay)
	require.Equal(t, int32(2000), *delay)
}
