package queue_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// bundle is what most tests need: a client on a schema of their own.
type bundle struct {
	db     *pgtest.DB
	client *queue.Client
}

func setup(t *testing.T, cfg *queue.Config) *bundle {
	t.Helper()
	db := pgtest.New(t)
	if cfg == nil {
		cfg = &queue.Config{}
	}
	cfg.Schema = db.Schema
	c, err := queue.NewClient(db.Pool, cfg)
	require.NoError(t, err)
	// Tx.Commit does not wait for its wake-up: send it before the schema
	// goes back to the pool, or the next test on it could hear it.
	t.Cleanup(func() { _ = c.Flush(context.Background()) })
	return &bundle{db: db, client: c}
}

// count returns the number of jobs in the bundle's schema matching a SQL
// condition on pgq.jobs.
func (b *bundle) count(t *testing.T, where string, args ...any) int {
	t.Helper()
	return b.countIn(t, "pgq.jobs", where, args...)
}

// countIn returns the number of rows of a table of the bundle's schema
// matching a SQL condition.
func (b *bundle) countIn(t *testing.T, table, where string, args ...any) int {
	t.Helper()
	var n int
	err := b.db.Pool.QueryRow(context.Background(),
		schema.Rewrite(b.db.Schema, "SELECT count(*) FROM "+table+" WHERE "+where), args...).Scan(&n)
	require.NoError(t, err)
	return n
}

// listener is a dedicated connection listening to the schema's wake-ups.
type listener struct {
	t       *testing.T
	conn    *pgx.Conn
	channel string
}

func listen(t *testing.T, b *bundle) *listener {
	t.Helper()
	conn := pgtest.Conn(t)
	ch := schema.Channel(b.db.Schema, "jobs")
	_, err := conn.Exec(context.Background(), "LISTEN "+pgx.Identifier{ch}.Sanitize())
	require.NoError(t, err)
	return &listener{t: t, conn: conn, channel: ch}
}

// next waits for the next notification on the channel.
func (l *listener) next() string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := l.conn.WaitForNotification(ctx)
	require.NoError(l.t, err, "no notification arrived")
	require.Equal(l.t, l.channel, n.Channel)
	return n.Payload
}

// drain returns every payload that arrives before a marker notification
// sent from another connection, so a test can prove that nothing else came.
func (l *listener) drain(b *bundle) []string {
	l.t.Helper()
	_, err := b.db.Pool.Exec(context.Background(), "SELECT pg_notify($1, '--marker--')", l.channel)
	require.NoError(l.t, err)
	var got []string
	for {
		p := l.next()
		if p == "--marker--" {
			return got
		}
		got = append(got, p)
	}
}

type sendEmail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

func (sendEmail) TaskName() string { return "emails.send" }

// report has task-level defaults.
type report struct {
	Month string `json:"month"`
}

func (report) TaskName() string { return "reports.build" }
func (report) TaskOptions() queue.Options {
	return queue.Options{Queue: "reports", Priority: queue.Ptr(5), MaxRetries: queue.Ptr(7)}
}
