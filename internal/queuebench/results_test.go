package queuebench_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/queuebench"
)

func TestWriteTable(t *testing.T) {
	t.Parallel()
	r := queuebench.NewResults("pgq", "River", "pg-boss")
	rate := queuebench.Figure{Workload: "1 drain", Name: "drain, jobs/s", HigherIsBetter: true}
	lat := queuebench.Figure{Workload: "2 steady", Name: "pickup p50, ms", Decimals: 2}
	for _, v := range []float64{30000, 28000, 31000} {
		r.Add(rate, "pgq", v)
	}
	for _, v := range []float64{15000, 14000, 16000} {
		r.Add(rate, "River", v)
	}
	r.Note(rate, "pg-boss", "cannot be set up: npm ci failed")
	r.Add(lat, "pgq", 1.5)
	r.Add(lat, "River", 3)
	r.Note(lat, "pg-boss", "cannot be set up: npm ci failed") // same note: one footnote

	var b strings.Builder
	require.NoError(t, r.WriteTable(&b))
	want := `| workload | figure | pgq | River | pgq/River | pg-boss | pgq/pg-boss |
| --- | --- | --: | --: | --: | --: | --: |
| 1 drain | drain, jobs/s (higher is better) | 30,000 (28,000–31,000) | 15,000 (14,000–16,000) | 2.00× | —[^1] | — |
| 2 steady | pickup p50, ms (lower is better) | 1.50 | 3.00 | 0.50× | —[^1] | — |

[^1]: pg-boss: cannot be set up: npm ci failed
`
	require.Equal(t, want, b.String())
}

func TestWriteTableEscapesPipes(t *testing.T) {
	t.Parallel()
	r := queuebench.NewResults("pgq")
	r.Add(queuebench.Figure{Workload: "w", Name: "a|b", HigherIsBetter: true}, "pgq", 1)
	var b strings.Builder
	require.NoError(t, r.WriteTable(&b))
	require.Contains(t, b.String(), `a\|b`)
	require.Equal(t, 3, strings.Count(b.String(), "\n"))
}

func TestFiguresKeepWorkloadOrder(t *testing.T) {
	t.Parallel()
	r := queuebench.NewResults("pgq")
	f := func(w, n string) queuebench.Figure { return queuebench.Figure{Workload: w, Name: n} }
	for _, fig := range []queuebench.Figure{f("1 drain", "a"), f("4 tx", "b"), f("4 tx", "c"), f("2 steady", "d"), f("1 drain", "e"), f("3 growth", "g"), f("2 steady", "d")} {
		r.Add(fig, "pgq", 1)
	}
	var got []string
	for _, fig := range r.Figures() {
		got = append(got, fig.Name)
	}
	require.Equal(t, []string{"a", "e", "d", "g", "b", "c"}, got)
}
