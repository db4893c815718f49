package queuebench_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/internal/queuebench"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// quiet is a Reporter that records what it was told.
type quiet struct{ ends []error }

func (q *quiet) Begin(string, int) {}
func (q *quiet) Progress(int)      {}
func (q *quiet) End(err error)     { q.ends = append(q.ends, err) }

// TestRunPGQ runs every workload with tiny sizes against pgq in a test
// schema and checks that each figure has a sane value.
func TestRunPGQ(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	plan := queuebench.Plan{
		Rounds:        2,
		DrainJobs:     300,
		Steady:        queuebench.SteadyParams{Rate: 200, Duration: 500 * time.Millisecond, Producers: 2},
		RampRates:     []float64{100, 200},
		RampStep:      300 * time.Millisecond,
		RampProducers: 2,
		GrowthWaiting: 600, GrowthFinished: 500, GrowthMeasure: 200,
		Tx:              queuebench.TxParams{Duration: 200 * time.Millisecond, Clients: 2},
		WorkflowMembers: 10,
		Pinned: queuebench.PinnedParams{
			Steady: queuebench.SteadyParams{Rate: 200, Duration: 1500 * time.Millisecond, Producers: 2},
			Pin:    600 * time.Millisecond,
		},
	}
	opened := 0
	entrant := queuebench.Entrant{Name: "pgq", Open: func(ctx context.Context) (queuebench.System, func(context.Context) error, error) {
		opened++
		db, release, err := pgtest.Acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		sys, err := queuebench.NewPGQ(db.Pool, db.Schema, &queuebench.PGQConfig{Concurrency: 50})
		if err != nil {
			release()
			return nil, nil, err
		}
		return sys, func(ctx context.Context) error {
			// No job is left behind unfinished by any workload but growth.
			var unfinished int
			err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "jobs"}.Sanitize()+
				" WHERE state IN ('available', 'running')").Scan(&unfinished)
			release()
			return err
		}, nil
	}}
	rep := &quiet{}
	res, err := queuebench.Run(ctx, plan, []queuebench.Entrant{entrant}, rep)
	require.NoError(t, err)
	// drain ×2, steady ×2, tx ×2, workflow, ramp, growth, pinned
	require.Equal(t, 10, opened)

	for _, f := range res.Figures() {
		vs := res.Values(f, "pgq")
		require.NotEmpty(t, vs, f.Name)
		for _, v := range vs {
			if f.Workload == "6 pinned xmin" && strings.Contains(f.Name, "dead rows") {
				require.GreaterOrEqual(t, v, 0.0, "%s: %v", f.Name, vs)
				continue
			}
			require.Greater(t, v, 0.0, "%s: %v", f.Name, vs)
		}
	}
	require.Len(t, res.Values(queuebench.FigDrain, "pgq"), 2)
	require.Len(t, res.Values(queuebench.FigRampMax, "pgq"), 1)
	require.Equal(t, 200.0, res.Values(queuebench.FigRampMax, "pgq")[0])

	var b strings.Builder
	require.NoError(t, res.WriteTable(&b))
	for _, want := range []string{"1 drain", "2 steady", "3 growth", "4 tx enqueue", "5 workflow", "10-member chord", "6 pinned xmin"} {
		require.Contains(t, b.String(), want)
	}
}
