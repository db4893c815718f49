package dashboard

import (
	"net/http/httptest"
	"slices"
	"testing"
)

// FuzzJobsParams feeds arbitrary query strings to the jobs listing's
// parameter parser: it must never panic, and what it accepts must be
// within bounds (a known state, a page size within limits, a bounded
// search text, a positive keyset id). The values reach SQL only as
// parameters (tests/injection_test.go sends hostile ones end to end).
func FuzzJobsParams(f *testing.F) {
	for _, seed := range []string{
		"", "state=failed", "state=nope", "q=timeout&limit=10", "limit=0", "limit=99999",
		"before=42", "before=-1", "before=x", "from=15m", "from=2026-01-02T15:04:05Z&to=1h",
		"from=-5m", "task=emails.send&queue=default", "q=%27%3B%20DROP%20TABLE%20jobs%3B--",
		"q=" + string(make([]byte, 300)), "%zz", "state=failed&state=running",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest("GET", "/api/jobs", nil)
		req.URL.RawQuery = raw
		p, limit, err := jobsParams(req)
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("query %q: error %v is not a bad request", raw, err)
			}
			return
		}
		if limit < 1 || limit > JobsPageMax || int(p.MaxRows) != limit {
			t.Fatalf("query %q: page size %d (max rows %d) out of bounds", raw, limit, p.MaxRows)
		}
		if p.State != nil && !slices.Contains(jobStates, *p.State) {
			t.Fatalf("query %q: unknown state %q accepted", raw, *p.State)
		}
		if p.Search != nil && len(*p.Search) > 200 {
			t.Fatalf("query %q: search text of %d bytes accepted", raw, len(*p.Search))
		}
		if p.BeforeID < 0 {
			t.Fatalf("query %q: negative keyset id %d", raw, p.BeforeID)
		}
	})
}
