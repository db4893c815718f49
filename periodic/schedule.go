package periodic

import (
	"fmt"
	"math"
	"strings"
	"time"
	_ "time/tzdata" // every process resolves zones the same way, with or without a system zoneinfo

	"github.com/robfig/cron/v3"
)

// MinInterval is the shortest interval a schedule may have: ticks are
// whole seconds.
const MinInterval = time.Second

// cronParser accepts standard 5-field specs, 6 fields with seconds first,
// and the descriptors (@hourly, @daily, ...). robfig/cron does the parsing
// and the next-time arithmetic; pgq only names the field at fault.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var (
	fieldNames5 = []string{"minute", "hour", "day-of-month", "month", "day-of-week"}
	fieldNames6 = []string{"second", "minute", "hour", "day-of-month", "month", "day-of-week"}
)

// Schedule says when a periodic task is due: a cron spec read in a time
// zone, or a fixed interval. The zero Schedule has no ticks.
type Schedule struct {
	spec  string
	zone  string
	cron  *cron.SpecSchedule
	every time.Duration
}

// Every returns the spec of a fixed interval, such as "@every 30s".
func Every(d time.Duration) string { return "@every " + d.String() }

// Parse reads spec in the IANA time zone timeZone ("" means UTC). spec is
//
//   - a cron spec of 5 fields (minute hour day-of-month month day-of-week)
//     or 6 with a seconds field first, e.g. "*/15 9-17 * * mon-fri";
//   - a descriptor: @yearly (@annually), @monthly, @weekly, @daily
//     (@midnight) or @hourly;
//   - a fixed interval, "@every 30s" (whole seconds, at least 1s).
//
// Interval ticks are aligned to the Unix epoch, not to the moment a
// process started, so every process computes the same ticks: "@every 1m"
// fires at second 0 of each minute, "@every 1h" on the hour (UTC), and
// the time zone does not affect them.
//
// The error names the part at fault: the field, the interval or the zone.
func Parse(spec, timeZone string) (Schedule, error) {
	loc, zone, err := loadZone(timeZone)
	if err != nil {
		return Schedule{}, err
	}
	spec = strings.TrimSpace(spec)
	s := Schedule{spec: spec, zone: zone}
	switch {
	case spec == "":
		return Schedule{}, &ValidationError{Field: "Schedule", Reason: "schedule is empty: give a cron spec such as \"*/5 * * * *\", a descriptor such as @hourly, or an interval such as \"@every 30s\""}
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		return Schedule{}, &ValidationError{Field: "Schedule", Reason: fmt.Sprintf("schedule %q carries a time zone: put the zone in TimeZone (--tz) and leave it out of the spec", spec)}
	case strings.HasPrefix(spec, "@every"):
		d, err := parseInterval(spec)
		if err != nil {
			return Schedule{}, err
		}
		s.every = d
		return s, nil
	}
	parsed, err := cronParser.Parse(spec)
	if err != nil {
		return Schedule{}, &ValidationError{Field: "Schedule", Reason: cronError(spec, err)}
	}
	cs, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return Schedule{}, &ValidationError{Field: "Schedule", Reason: fmt.Sprintf("schedule %q is not a cron spec", spec)}
	}
	cs.Location = loc
	s.cron = cs
	// A spec that names a date that never comes ("0 0 30 2 *") has no tick.
	if s.Next(time.Now()).IsZero() {
		return Schedule{}, &ValidationError{Field: "Schedule", Reason: fmt.Sprintf("cron spec %q never fires", spec)}
	}
	return s, nil
}

func loadZone(timeZone string) (*time.Location, string, error) {
	switch timeZone {
	case "", "UTC":
		return time.UTC, "UTC", nil
	case "Local":
		return nil, "", &ValidationError{Field: "TimeZone", Reason: `time zone "Local" means something else on every machine: name an IANA zone such as "Europe/Berlin" or "UTC"`}
	}
	loc, err := time.LoadLocation(timeZone)
	if err != nil {
		return nil, "", &ValidationError{Field: "TimeZone", Reason: fmt.Sprintf("unknown time zone %q: use an IANA name such as \"America/New_York\" or \"UTC\"", timeZone)}
	}
	return loc, timeZone, nil
}

func parseInterval(spec string) (time.Duration, error) {
	arg, ok := strings.CutPrefix(spec, "@every ")
	arg = strings.TrimSpace(arg)
	if !ok || arg == "" {
		return 0, &ValidationError{Field: "Schedule", Reason: fmt.Sprintf("interval schedule %q has no duration: write it as \"@every 30s\"", spec)}
	}
	d, err := time.ParseDuration(arg)
	if err != nil {
		return 0, &ValidationError{Field: "Schedule", Reason: fmt.Sprintf("interval %q in %q is not a duration such as 30s, 5m or 1h30m", arg, spec)}
	}
	if d < MinInterval {
		return 0, &ValidationError{Field: "Schedule", Reason: fmt.Sprintf("interval %q in %q is shorter than the minimum of %s", arg, spec, MinInterval)}
	}
	if d%time.Second != 0 {
		return 0, &ValidationError{Field: "Schedule", Reason: fmt.Sprintf("interval %q in %q is not a whole number of seconds", arg, spec)}
	}
	return d, nil
}

// cronError names the field of spec that robfig/cron refused: each field
// is tried alone, with every other field a wildcard.
func cronError(spec string, err error) string {
	if strings.HasPrefix(spec, "@") {
		return fmt.Sprintf("unknown descriptor %q: use @yearly, @monthly, @weekly, @daily, @hourly or \"@every 30s\"", spec)
	}
	fields := strings.Fields(spec)
	var names []string
	switch len(fields) {
	case 5:
		names = fieldNames5
	case 6:
		names = fieldNames6
	default:
		return fmt.Sprintf("cron spec %q has %d fields: use 5 (minute hour day-of-month month day-of-week), or 6 with a seconds field first", spec, len(fields))
	}
	for i, f := range fields {
		probe := make([]string, len(fields))
		for j := range probe {
			probe[j] = "*"
		}
		probe[i] = f
		if _, perr := cronParser.Parse(strings.Join(probe, " ")); perr != nil {
			return fmt.Sprintf("cron spec %q: %s field %q: %v", spec, names[i], f, perr)
		}
	}
	return fmt.Sprintf("cron spec %q: %v", spec, err)
}

// String returns the spec the schedule was parsed from.
func (s Schedule) String() string { return s.spec }

// TimeZone returns the zone cron fields are read in.
func (s Schedule) TimeZone() string { return s.zone }

// Interval returns the interval of an "@every" schedule, and 0 for a cron
// spec.
func (s Schedule) Interval() time.Duration { return s.every }

// Next returns the first tick strictly after t, or the zero time when
// there is none in the next five years.
//
// Cron ticks follow robfig/cron in the schedule's zone. Across daylight
// saving changes that means: a wall-clock time that does not exist (the
// hour skipped in spring) is skipped, with no tick that day for a spec
// that names it; a wall-clock time that happens twice (the hour repeated
// in autumn) ticks twice, once in each offset. docs/periodic.md has the
// cases, and the tests pin them down.
func (s Schedule) Next(t time.Time) time.Time {
	switch {
	case s.every > 0:
		step := int64(s.every)
		q := floorDiv(t.UnixNano(), step) + 1
		if q > math.MaxInt64/step {
			return time.Time{} // past 2262, where Unix nanoseconds end
		}
		return time.Unix(0, q*step).In(t.Location())
	case s.cron != nil:
		return s.cron.Next(t)
	}
	return time.Time{}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Latest returns the last tick t with after < t <= now, and false when
// there is none.
func (s Schedule) Latest(after, now time.Time) (time.Time, bool) {
	if !now.After(after) {
		return time.Time{}, false
	}
	if s.every > 0 {
		step := int64(s.every)
		last := time.Unix(0, floorDiv(now.UnixNano(), step)*step).In(now.Location())
		return last, last.After(after)
	}
	if s.cron == nil {
		return time.Time{}, false
	}
	// Look back over a window that doubles until it holds a tick, then
	// walk forward through it: cheap for a per-second spec after a long
	// outage, and for a yearly one.
	for w := time.Minute; ; w *= 2 {
		from := now.Add(-w)
		if !from.After(after) {
			from = after
		}
		t := s.Next(from)
		if t.IsZero() || t.After(now) {
			if from.Equal(after) {
				return time.Time{}, false
			}
			continue
		}
		for {
			n := s.Next(t)
			if n.IsZero() || n.After(now) {
				return t, true
			}
			t = n
		}
	}
}
