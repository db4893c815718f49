package periodic

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{
		"*/5 * * * *", "0 9-17 * * mon-fri", "30 0 9 * * *", "@hourly", "@daily", "@midnight",
		"@weekly", "@monthly", "@yearly", "@annually", "@every 30s", "@every 1h30m", Every(2 * time.Second),
	} {
		s, err := Parse(spec, "Europe/Berlin")
		require.NoError(t, err, spec)
		require.Equal(t, spec, s.String())
		require.False(t, s.Next(time.Now()).IsZero(), spec)
	}
}

func TestParseNamesTheOffendingPart(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ spec, zone, field, want string }{
		{"61 * * * *", "", "Schedule", `minute field "61"`},
		{"* 24 * * *", "", "Schedule", `hour field "24"`},
		{"* * 0 * *", "", "Schedule", `day-of-month field "0"`},
		{"* * * 13 *", "", "Schedule", `month field "13"`},
		{"* * * * funday", "", "Schedule", `day-of-week field "funday"`},
		{"60 * * * * *", "", "Schedule", `second field "60"`},
		{"* * *", "", "Schedule", "has 3 fields"},
		{"* * * * * * *", "", "Schedule", "has 7 fields"},
		{"@fortnightly", "", "Schedule", `unknown descriptor "@fortnightly"`},
		{"@every soon", "", "Schedule", `interval "soon"`},
		{"@every 500ms", "", "Schedule", "shorter than the minimum"},
		{"@every 1500ms", "", "Schedule", "whole number of seconds"},
		{"@every", "", "Schedule", "has no duration"},
		{"", "", "Schedule", "empty"},
		{"CRON_TZ=UTC * * * * *", "", "Schedule", "put the zone in TimeZone"},
		{"0 0 30 2 *", "", "Schedule", "never fires"},
		{"* * * * *", "Mars/Olympus_Mons", "TimeZone", `unknown time zone "Mars/Olympus_Mons"`},
		{"* * * * *", "Local", "TimeZone", `"Local"`},
	} {
		_, err := Parse(c.spec, c.zone)
		require.Error(t, err, c.spec)
		require.ErrorIs(t, err, ErrInvalid)
		var v *ValidationError
		require.True(t, errors.As(err, &v))
		require.Equal(t, c.field, v.Field, c.spec)
		require.ErrorContains(t, err, c.want, c.spec)
	}
}

func mustParse(t *testing.T, spec, zone string) Schedule {
	t.Helper()
	s, err := Parse(spec, zone)
	require.NoError(t, err)
	return s
}

// ticks returns the n ticks after from, as wall-clock strings in loc.
func ticks(s Schedule, from time.Time, n int, loc *time.Location) []string {
	var out []string
	t := from
	for range n {
		t = s.Next(t)
		out = append(out, t.In(loc).Format("2006-01-02 15:04:05 MST"))
	}
	return out
}

func TestNextInZone(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	s := mustParse(t, "0 9 * * mon-fri", "Europe/Berlin")
	from := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) // a Friday
	require.Equal(t, []string{"2026-05-04 09:00:00 CEST", "2026-05-05 09:00:00 CEST"}, ticks(s, from, 2, berlin))
	// Next is strictly after: a tick's own time gives the following tick.
	first := s.Next(from)
	require.Equal(t, "2026-05-05 09:00:00 CEST", s.Next(first).In(berlin).Format("2006-01-02 15:04:05 MST"))
	// Seconds field.
	s = mustParse(t, "*/20 * * * * *", "")
	require.Equal(t, []string{"2026-05-01 12:00:20 UTC", "2026-05-01 12:00:40 UTC", "2026-05-01 12:01:00 UTC"}, ticks(s, from, 3, time.UTC))
}

func TestIntervalsAlignToTheEpoch(t *testing.T) {
	t.Parallel()
	s := mustParse(t, "@every 7m", "America/New_York") // the zone does not matter
	from := time.Date(2026, 5, 1, 12, 0, 3, 500, time.UTC)
	a := s.Next(from)
	require.Zero(t, a.Unix()%(7*60), "ticks are multiples of the interval since the Unix epoch")
	require.Equal(t, 7*time.Minute, s.Next(a).Sub(a))
	// Two processes that start at different moments agree on the ticks.
	require.Equal(t, a, s.Next(from.Add(time.Minute)))
	s = mustParse(t, "@every 1s", "")
	require.Equal(t, time.Date(2026, 5, 1, 12, 0, 4, 0, time.UTC), s.Next(from))
	require.Equal(t, time.Date(2026, 5, 1, 12, 0, 5, 0, time.UTC), s.Next(time.Date(2026, 5, 1, 12, 0, 4, 0, time.UTC)))
}

// TestIntervalNextPastUnixNanoseconds: a tick that Unix nanoseconds cannot
// hold (after 2262) is no tick, not one wrapped around to 1969. Found by
// FuzzParse.
func TestIntervalNextPastUnixNanoseconds(t *testing.T) {
	t.Parallel()
	s := mustParse(t, "@every 2562047h", "")
	first := s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Equal(t, 2262, first.Year())
	require.True(t, s.Next(first).IsZero(), "got %v", s.Next(first))
}

// TestDaylightSaving pins down what pgq does when the clocks change, in
// America/New_York in 2026: on 8 March 02:00 EST jumps to 03:00 EDT (02:30
// does not exist), on 1 November 02:00 EDT falls back to 01:00 EST (01:30
// happens twice).
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	const zone = "America/New_York"
	spring := time.Date(2026, 3, 7, 12, 0, 0, 0, ny)
	autumn := time.Date(2026, 10, 31, 12, 0, 0, 0, ny)

	// A wall time in the skipped hour is skipped: no tick on 8 March.
	require.Equal(t, []string{"2026-03-07 02:30:00 EST", "2026-03-09 02:30:00 EDT"},
		ticks(mustParse(t, "30 2 * * *", zone), spring.Add(-12*time.Hour), 2, ny))
	// A wall time in the repeated hour ticks twice, an hour apart.
	twice := ticks(mustParse(t, "30 1 * * *", zone), autumn, 3, ny)
	require.Equal(t, []string{"2026-11-01 01:30:00 EDT", "2026-11-01 01:30:00 EST", "2026-11-02 01:30:00 EST"}, twice)
	// Hourly: 23 ticks on the short day, 25 on the long one, one per real hour.
	hourly := mustParse(t, "0 * * * *", zone)
	count := func(day time.Time) int {
		n := 0
		end := day.AddDate(0, 0, 1)
		for t := hourly.Next(day.Add(-time.Second)); t.Before(end); t = hourly.Next(t) {
			n++
		}
		return n
	}
	require.Equal(t, 23, count(time.Date(2026, 3, 8, 0, 0, 0, 0, ny)))
	require.Equal(t, 25, count(time.Date(2026, 11, 1, 0, 0, 0, 0, ny)))
	// Daily at midnight stays at local midnight on both sides.
	require.Equal(t, []string{"2026-03-08 00:00:00 EST", "2026-03-09 00:00:00 EDT"},
		ticks(mustParse(t, "@daily", zone), spring, 2, ny))
	// Intervals count real time and ignore the change.
	every := mustParse(t, "@every 1h", zone)
	a := every.Next(time.Date(2026, 11, 1, 0, 30, 0, 0, ny))
	require.Equal(t, time.Hour, every.Next(a).Sub(a))
}

func TestLatest(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 3, 250e6, time.UTC)
	// Per second, after a day down: the latest tick, found quickly.
	s := mustParse(t, "* * * * * *", "")
	tick, ok := s.Latest(now.Add(-24*time.Hour), now)
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 5, 1, 12, 0, 3, 0, time.UTC), tick)
	// A tick exactly at now is due; one at the anchor is not.
	tick, ok = s.Latest(now.Add(-2*time.Second), now.Truncate(time.Second))
	require.True(t, ok)
	require.Equal(t, now.Truncate(time.Second), tick)
	_, ok = s.Latest(now.Truncate(time.Second), now.Truncate(time.Second))
	require.False(t, ok)
	// Yearly, after five years down.
	y := mustParse(t, "@yearly", "")
	tick, ok = y.Latest(now.AddDate(-5, 0, 0), now)
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), tick)
	// Nothing due yet.
	_, ok = y.Latest(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), now)
	require.False(t, ok)
	// Interval.
	e := mustParse(t, "@every 10s", "")
	tick, ok = e.Latest(now.Add(-time.Hour), now)
	require.True(t, ok)
	require.Equal(t, time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), tick)
	_, ok = e.Latest(tick, now)
	require.False(t, ok)
}

func TestEntryValidation(t *testing.T) {
	t.Parallel()
	good := Entry{Name: "n", Schedule: "@hourly", Args: ping{}}
	_, err := good.normalize()
	require.NoError(t, err)
	for _, c := range []struct {
		mutate func(*Entry)
		field  string
	}{
		{func(e *Entry) { e.Name = "" }, "Name"},
		{func(e *Entry) { e.Schedule = "* * * * * * *" }, "Schedule"},
		{func(e *Entry) { e.TimeZone = "Nowhere/Special" }, "TimeZone"},
		{func(e *Entry) { e.Args = nil }, "Args"},
		{func(e *Entry) { e.Args = rawTask("bad task") }, "Args"},
		{func(e *Entry) { e.Options.Queue = "bad queue" }, "Options.Queue"},
		{func(e *Entry) { e.Options.Priority = new(int); *e.Options.Priority = 10 }, "Options.Priority"},
		{func(e *Entry) { e.Options.Expires = -time.Second }, "Options.Expires"},
		{func(e *Entry) { e.Missed = "later" }, "Missed"},
	} {
		e := good
		c.mutate(&e)
		_, err := e.normalize()
		var v *ValidationError
		require.True(t, errors.As(err, &v), "%v", err)
		require.Equal(t, c.field, v.Field)
		if e.Name != "" {
			require.ErrorContains(t, err, `periodic task "`+e.Name+`"`)
		}
	}
	_, err = normalizeAll([]Entry{good, good})
	require.ErrorContains(t, err, "used twice")
}
