package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/dashboard"
	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/lock"
	"github.com/pgq/pgq/queue"
)

// hostile are strings that would do damage if any of them reached SQL as
// text rather than as a parameter or a quoted identifier.
var hostile = []string{
	`x'); DROP TABLE canary; --`,
	`"; DROP TABLE canary; --`,
	`' OR '1'='1`,
	`$$; SELECT pg_sleep(5); $$`,
	`\'; TRUNCATE canary; --`,
	`Robert'); DROP TABLE canary;--`,
	`%s%s%s%n%x`,
	`' UNION SELECT rolpassword FROM pg_authid --`,
	`canary"; DROP TABLE "canary`,
	"quote'\"`in every style",
}

// TestHostileNamesAndFilters sends hostile strings through every name and
// filter a user or a web request can give pgq: task and queue names,
// unique keys, args, the SQL enqueue function, queue settings, lock names,
// role names, inspection filters and the dashboard's query parameters.
// Each is stored verbatim or refused with an error; none is executed: the
// canary table and pgq's own tables survive with exactly the rows stored.
func TestHostileNamesAndFilters(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := pgtest.New(t)
	canary := pgx.Identifier{db.Schema, "canary"}.Sanitize()
	_, err := db.Pool.Exec(ctx, "CREATE TABLE "+canary+" (id int); INSERT INTO "+canary+" VALUES (1)")
	require.NoError(t, err)
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	require.NoError(t, err)
	locks, err := lock.New(db.Pool, &lock.Config{Schema: db.Schema})
	require.NoError(t, err)
	t.Cleanup(locks.Close)
	dash, err := dashboard.New(db.Pool, &dashboard.Options{Schema: db.Schema})
	require.NoError(t, err)

	for _, h := range hostile {
		// Names are refused before anything is sent.
		_, err := client.Enqueue(ctx, queue.Raw{Task: h}, nil)
		require.ErrorIs(t, err, queue.ErrInvalid, "task %q", h)
		_, err = client.Enqueue(ctx, queue.Raw{Task: "pgq.noop"}, &queue.Options{Queue: h})
		require.ErrorIs(t, err, queue.ErrInvalid, "queue %q", h)
		require.ErrorIs(t, client.PauseQueue(ctx, h), queue.ErrInvalid, "pause %q", h)
		require.ErrorIs(t, client.SetQueueDefaults(ctx, h, queue.QueueDefaults{}), queue.ErrInvalid, "queue defaults %q", h)
		_, err = queue.NewClient(db.Pool, &queue.Config{Schema: h})
		require.Error(t, err, "schema %q", h)

		// pgq.enqueue refuses the name; the string travels as a parameter.
		_, err = db.Pool.Exec(ctx, "SELECT "+pgx.Identifier{db.Schema}.Sanitize()+".enqueue($1)", h)
		require.ErrorContains(t, err, "invalid task name", "pgq.enqueue(%q)", h)

		// Values are stored verbatim and read back the same.
		args, _ := json.Marshal(map[string]string{"s": h})
		e, err := client.Enqueue(ctx, queue.Raw{Task: "pgq.echo", Args: args}, &queue.Options{UniqueKey: h})
		require.NoError(t, err, "unique key and args %q", h)
		j, err := client.Job(ctx, e.ID)
		require.NoError(t, err)
		var got map[string]string
		require.NoError(t, json.Unmarshal(j.Args, &got))
		require.Equal(t, h, got["s"])

		// Filters match nothing and break nothing.
		list, err := client.ListJobs(ctx, queue.JobFilter{Queue: h, Task: h})
		require.NoError(t, err)
		require.Empty(t, list)

		// A lock name is hashed; a role name is quoted and not found.
		held, ok, err := locks.TryLock(ctx, h)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, held.Unlock(ctx))
		require.ErrorIs(t, client.GrantAccess(ctx, h, queue.AccessProducer), queue.ErrNoSuchRole, "role %q", h)

		// The dashboard's API: each filter is a parameter; the answer is a
		// listing or a 400, never a server error.
		for _, param := range []string{"q", "task", "queue", "state", "before", "from", "to"} {
			req := httptest.NewRequest(http.MethodGet, "/api/jobs?"+param+"="+url.QueryEscape(h), nil)
			req.Host = "127.0.0.1"
			rec := httptest.NewRecorder()
			dash.ServeHTTP(rec, req)
			require.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, rec.Code, "GET /api/jobs?%s=%q: %s", param, h, rec.Body.String())
		}
		req := httptest.NewRequest(http.MethodGet, "/api/jobs/"+url.PathEscape(h), nil)
		req.Host = "127.0.0.1"
		rec := httptest.NewRecorder()
		dash.ServeHTTP(rec, req)
		require.Less(t, rec.Code, 500, "GET /api/jobs/%q: %s", h, rec.Body.String())
	}

	var rows int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+canary).Scan(&rows), "the canary table survived")
	require.Equal(t, 1, rows)
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "jobs"}.Sanitize()).Scan(&rows))
	require.Equal(t, len(hostile), rows, "one stored job per hostile unique key, nothing else")
}
