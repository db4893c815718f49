package queue

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/schema"
)

// Get returns through the notification, not the poll: the poll interval is
// an hour, and the job finishes only after Get has looked at it once.
func TestGetWakesOnNotification(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := pgtest.New(t)
	c, err := NewClient(db.Pool, &Config{Schema: db.Schema})
	require.NoError(t, err)
	e, err := c.Delay(ctx, Raw{Task: "a.b"})
	require.NoError(t, err)

	r := e.AsyncResult()
	r.PollInterval = time.Hour
	looked := make(chan struct{}, 1)
	r.afterLook = func() {
		select {
		case looked <- struct{}{}:
		default:
		}
	}
	got := make(chan error, 1)
	var out map[string]int
	go func() { got <- r.Get(ctx, &out) }()

	<-looked // Get saw the job unfinished and now waits
	_, err = db.Pool.Exec(ctx, schema.Rewrite(db.Schema,
		`UPDATE pgq.jobs SET state = 'succeeded', result = '{"n": 7}', finished_at = now() WHERE id = $1`), e.ID)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, "SELECT pg_notify($1, $2)", schema.Channel(db.Schema, "results"), "999999,"+itoa(e.ID))
	require.NoError(t, err)

	require.NoError(t, <-got)
	require.Equal(t, map[string]int{"n": 7}, out)

	// The last waiter gone, the shared listener is gone too.
	c.results.mu.Lock()
	defer c.results.mu.Unlock()
	require.Nil(t, c.results.stop)
	require.Zero(t, c.results.count)
	require.Empty(t, c.results.waiters)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
