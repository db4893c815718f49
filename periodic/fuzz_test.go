package periodic

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParse: Parse never panics. A refusal is a ValidationError matching
// ErrInvalid that names the part at fault: the zone, or the spec as given.
// An accepted schedule reports its spec and zone, and its next tick after
// each of a range of start times is strictly later (or none, only for a
// cron spec), with the tick after that later still.
func FuzzParse(f *testing.F) {
	f.Add("*/15 9-17 * * mon-fri", "Europe/Berlin", int64(1774746000))
	f.Fuzz(func(t *testing.T, spec, zone string, start int64) {
		s, err := Parse(spec, zone)
		trimmed := strings.TrimSpace(spec)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q, %q): error %v does not match ErrInvalid", spec, zone, err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse(%q, %q): error %v is not a ValidationError", spec, zone, err)
			}
			switch {
			case ve.Field == "TimeZone":
				if !strings.Contains(ve.Reason, strconv.Quote(zone)) {
					t.Fatalf("Parse(%q, %q): zone error %q does not name the zone", spec, zone, ve.Reason)
				}
			case ve.Field == "Schedule" && trimmed != "":
				if !strings.Contains(ve.Reason, strconv.Quote(trimmed)) {
					t.Fatalf("Parse(%q, %q): error %q does not name the spec", spec, zone, ve.Reason)
				}
			case ve.Field != "Schedule":
				t.Fatalf("Parse(%q, %q): error %v names field %q", spec, zone, err, ve.Field)
			}
			return
		}
		if s.String() != trimmed {
			t.Fatalf("Parse(%q): String() = %q", spec, s.String())
		}
		if (zone == "" && s.TimeZone() != "UTC") || (zone != "" && s.TimeZone() != zone) {
			t.Fatalf("Parse(%q, %q): TimeZone() = %q", spec, zone, s.TimeZone())
		}
		// Start times from 1900 to 2100, where Next's arithmetic on Unix
		// nanoseconds cannot overflow: the fuzzed one and a few fixed ones
		// around a DST change and a leap day.
		const lo, hi = -2208988800, 4102444800
		starts := []time.Time{
			time.Unix(lo+mod(start, hi-lo), mod(start, 1e9)),
			time.Now(),
			time.Date(2026, 3, 29, 0, 59, 59, 999_999_999, time.UTC),
			time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC),
			time.Date(2028, 2, 28, 23, 59, 59, 0, time.UTC),
			time.Unix(0, 0),
		}
		for _, from := range starts {
			next := s.Next(from)
			if next.IsZero() {
				if s.Interval() > 0 {
					t.Fatalf("%q: no tick after %v", spec, from)
				}
				continue
			}
			if !next.After(from) {
				t.Fatalf("%q in %q: Next(%v) = %v, not after it", spec, zone, from, next)
			}
			if d := s.Interval(); d > 0 {
				if next.Sub(from) > d || next.UnixNano()%int64(d) != 0 {
					t.Fatalf("%q: Next(%v) = %v is not the next multiple of %s", spec, from, next, d)
				}
			}
			// The tick after may be past 2262, where there are none.
			if after := s.Next(next); !after.IsZero() && !after.After(next) {
				t.Fatalf("%q in %q: Next(%v) = %v, not after it", spec, zone, next, after)
			}
		}
	})
}

func mod(a, b int64) int64 { return ((a % b) + b) % b }

// FuzzEvery: Parse(Every(d)) accepts exactly the whole-second intervals of
// at least MinInterval, and gives d back.
func FuzzEvery(f *testing.F) {
	f.Add(int64(30 * time.Second))
	f.Fuzz(func(t *testing.T, ns int64) {
		d := time.Duration(ns)
		spec := Every(d)
		s, err := Parse(spec, "")
		want := d >= MinInterval && d%time.Second == 0
		if (err == nil) != want {
			t.Fatalf("Parse(%q): error %v, want accepted=%v", spec, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), strconv.Quote(spec)) {
				t.Fatalf("Parse(%q): error %v does not match ErrInvalid and name the spec", spec, err)
			}
			return
		}
		if s.Interval() != d || s.String() != spec {
			t.Fatalf("Parse(%q) = interval %s, spec %q", spec, s.Interval(), s.String())
		}
	})
}
