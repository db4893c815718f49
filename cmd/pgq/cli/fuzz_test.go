package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/queue"
)

// FuzzEnqueueInput: the checks of `pgq enqueue` on TASK, --args, --eta and
// one --header never panic and refuse exactly the bad values; accepted
// values come back unchanged: the args bytes, the header's key and value
// (key=value again), and an ETA that formats and parses to the same
// instant.
func FuzzEnqueueInput(f *testing.F) {
	f.Add("emails.send", `{"to":"ada@example.com"}`, "2026-12-01T03:00:00Z", "tenant=acme")
	f.Fuzz(func(t *testing.T, task, args, eta, header string) {
		fl := &enqueueFlags{args: args, eta: eta}
		if header != "" {
			fl.headers = []string{header}
		}
		// A command without flags: every flag counts as not given, so only
		// the values above are checked.
		raw, opts, err := fl.build(&cobra.Command{}, task)

		k, v, hasEq := strings.Cut(header, "=")
		_, etaErr := time.Parse(time.RFC3339Nano, eta)
		bad := queue.ValidateTaskName(task) != nil ||
			!json.Valid([]byte(args)) ||
			(eta != "" && etaErr != nil) ||
			(header != "" && (!hasEq || strings.TrimSpace(k) == ""))
		if (err != nil) != bad {
			t.Fatalf("build(task %q, --args %q, --eta %q, --header %q): error %v, want refused=%v", task, args, eta, header, err, bad)
		}
		if err != nil {
			return
		}
		if raw.Task != task || string(raw.Args) != args {
			t.Fatalf("got task %q args %q, want %q %q", raw.Task, raw.Args, task, args)
		}
		if header != "" {
			got, ok := opts.Headers[k]
			if len(opts.Headers) != 1 || !ok || got != v || k+"="+got.(string) != header {
				t.Fatalf("--header %q gave headers %v", header, opts.Headers)
			}
		}
		if eta == "" {
			if !opts.ETA.IsZero() {
				t.Fatalf("no --eta gave ETA %v", opts.ETA)
			}
			return
		}
		back, err := time.Parse(time.RFC3339Nano, opts.ETA.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(opts.ETA) {
			t.Fatalf("--eta %q: ETA %v formats as %q, which parses to %v (%v)", eta, opts.ETA, opts.ETA.Format(time.RFC3339Nano), back, err)
		}
	})
}

// FuzzParseAutoscale: --autoscale never panics; an accepted MAX,MIN has
// 1 <= MIN <= MAX and reads back the same when written out again.
func FuzzParseAutoscale(f *testing.F) {
	f.Add("50,5")
	f.Fuzz(func(t *testing.T, spec string) {
		a, err := parseAutoscale(spec)
		if err != nil {
			if a != nil {
				t.Fatalf("parseAutoscale(%q) = %+v and error %v", spec, a, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", spec)) {
				t.Fatalf("parseAutoscale(%q): error %v does not quote the value", spec, err)
			}
			return
		}
		if spec == "" {
			if a != nil {
				t.Fatalf("empty --autoscale gave %+v", a)
			}
			return
		}
		if a == nil || a.Min < 1 || a.Max < a.Min {
			t.Fatalf("parseAutoscale(%q) = %+v", spec, a)
		}
		b, err := parseAutoscale(fmt.Sprintf("%d,%d", a.Max, a.Min))
		if err != nil || *b != *a {
			t.Fatalf("parseAutoscale(%q) = %+v does not round-trip: %+v, %v", spec, a, b, err)
		}
	})
}
