package queue_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	good := map[string]float64{
		"10/s": 10, "100/m": 100.0 / 60, "1000/h": 1000.0 / 3600, "10": 10, "0.5/s": 0.5,
		" 5 / m ": 5.0 / 60, "1/h": 1.0 / 3600, "1000000/s": 1e6, "007/s": 7,
	}
	for in, want := range good {
		got, err := queue.ParseRate(in)
		require.NoError(t, err, in)
		require.InDelta(t, want, got, 1e-12, in)
	}
	for in, why := range map[string]string{
		"":          "the number is missing",
		"/s":        "the number is missing",
		"0/s":       "more than 0",
		"-1/s":      "is not a number",
		"10/d":      `unknown unit "d"`,
		"10/":       "unit after / is missing",
		"1e3/s":     "is not a number",
		"Inf":       "is not a number",
		"NaN/s":     "is not a number",
		"10/s/s":    `unknown unit "s/s"`,
		"1.":        "is not a number",
		".5":        "is not a number",
		"2000000/s": "more than 1000000 per second",
		"ten/s":     "is not a number",
	} {
		_, err := queue.ParseRate(in)
		require.ErrorIs(t, err, queue.ErrInvalid, in)
		require.ErrorContains(t, err, why, in)
		require.ErrorContains(t, err, `"10/s", "100/m" or "1000/h"`, "the error names what was expected")
	}
}

// FuzzParseRate: ParseRate never panics; it refuses with ErrInvalid or
// returns a finite rate in (0, RateMaxPerSecond], which the SQL side
// stores; a rate it accepts, printed back per second, parses to itself.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/s", "100/m", "1000/h", "10", "0.5/s", " 5 / m ", "", "/", "0", "-1/s", "1e3", "NaN",
		"Inf/s", "10/d", "99999999999999999999999999/s", "1.", ".5", "\x00/s", "١٠/s", "10/ s", "10 /s\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := queue.ParseRate(s)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid rate") {
				t.Fatalf("ParseRate(%q): error does not say what is wrong: %v", s, err)
			}
			return
		}
		if !(r > 0) || r > queue.RateMaxPerSecond || math.IsInf(r, 0) || math.IsNaN(r) {
			t.Fatalf("ParseRate(%q) = %v, out of range", s, r)
		}
	})
}

func TestRateSyntaxMatchesSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	for _, in := range []string{"10/s", "100/m", "1000/h", "10", "0.5/s", " 5 / m ", "0/s", "-1/s", "10/d", "1e3", "", "1.", "x", "10/s\n", "\t7\r/\fh\v", "10 s"} {
		want, goErr := queue.ParseRate(in)
		var got float64
		err := b.db.Pool.QueryRow(ctx, schema.Rewrite(b.db.Schema, "SELECT pgq.parse_rate($1)"), in).Scan(&got)
		if goErr != nil {
			require.Error(t, err, "SQL accepts %q, Go does not", in)
			continue
		}
		require.NoError(t, err, in)
		require.InDelta(t, want, got, 1e-12, in)
	}
}

func TestLimitsAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: "emails.send", Rate: "10/s", Concurrency: 3}))
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitQueue, Name: "reports", Concurrency: 2}))
	ls, err := b.client.Limits(ctx)
	require.NoError(t, err)
	require.Len(t, ls, 2)
	require.Equal(t, "emails.send", ls[1].Name)
	require.Equal(t, "10/s", ls[1].Rate)
	require.InDelta(t, 10, ls[1].PerSecond, 1e-9)
	require.Equal(t, 3, ls[1].Concurrency)
	require.NotNil(t, ls[1].Tokens)
	require.InDelta(t, 2, *ls[1].Tokens, 1e-9, "a new bucket starts full (the default burst for 10/s is 2)")
	require.Equal(t, queue.LimitQueue, ls[0].Scope)
	require.Nil(t, ls[0].Tokens)

	// Replacing keeps the bucket (at most the new size).
	require.NoError(t, b.client.SetLimit(ctx, queue.Limit{Scope: queue.LimitTask, Name: "emails.send", Rate: "1/h", Burst: 1}))
	ls, err = b.client.Limits(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, ls[1].Concurrency)
	require.InDelta(t, 1, *ls[1].Tokens, 1e-6)

	require.NoError(t, b.client.DeleteLimit(ctx, queue.LimitTask, "emails.send"))
	require.ErrorIs(t, b.client.DeleteLimit(ctx, queue.LimitTask, "emails.send"), queue.ErrLimitNotFound)

	for name, l := range map[string]queue.Limit{
		"bad rate":           {Scope: queue.LimitTask, Name: "t", Rate: "fast"},
		"zero concurrency":   {Scope: queue.LimitTask, Name: "t"},
		"negative":           {Scope: queue.LimitTask, Name: "t", Concurrency: -1},
		"bad scope":          {Scope: "worker", Name: "t", Concurrency: 1},
		"bad name":           {Scope: queue.LimitQueue, Name: "a b", Concurrency: 1},
		"burst without rate": {Scope: queue.LimitTask, Name: "t", Concurrency: 1, Burst: 5},
		"burst below one":    {Scope: queue.LimitTask, Name: "t", Rate: "1/s", Burst: 0.5},
	} {
		require.ErrorIs(t, b.client.SetLimit(ctx, l), queue.ErrInvalid, name)
	}
}

func TestSetLimitFromSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	exec := func(sql string) error {
		_, err := b.db.Pool.Exec(ctx, schema.Rewrite(b.db.Schema, sql))
		return err
	}
	require.NoError(t, exec("SELECT pgq.set_limit('task', 'emails.send', rate => '100/m', concurrency => 3)"))
	ls, err := b.client.Limits(ctx)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.Equal(t, "100/m", ls[0].Rate)
	require.InDelta(t, 100.0/60, ls[0].PerSecond, 1e-9)
	require.Equal(t, 3, ls[0].Concurrency)
	require.NoError(t, exec("SELECT pgq.set_limit('task', 'emails.send')"))
	ls, err = b.client.Limits(ctx)
	require.NoError(t, err)
	require.Empty(t, ls)
	for _, bad := range []string{
		"SELECT pgq.set_limit('task', 't', rate => '10/d')",
		"SELECT pgq.set_limit('task', 't', concurrency => 0)",
		"SELECT pgq.set_limit('worker', 't', concurrency => 1)",
		"SELECT pgq.set_limit('task', 't', concurrency => 1, burst => 5)",
	} {
		require.Error(t, exec(bad), bad)
	}
}
