package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/pgq/pgq/internal/pgserver"
	"github.com/pgq/pgq/internal/queuebench"
	"github.com/pgq/pgq/migrations"
)

// BenchSchemaPrefix starts the name of the schema `pgq bench` creates for
// each run and drops afterwards; a random suffix follows.
const BenchSchemaPrefix = "pgq_bench_"

// benchWorkloads are the workload names --workloads accepts, in run order.
var benchWorkloads = []string{"drain", "steady", "ramp", "growth", "tx", "workflow", "pinned"}

// benchWorkloadsDefault are the workloads run unless --workloads says
// otherwise: all but the long pinned-xmin run.
var benchWorkloadsDefault = benchWorkloads[:len(benchWorkloads)-1]

// benchFlags are the flags of `pgq bench`.
type benchFlags struct {
	workloads   string
	rounds      int
	concurrency int
	ramp        string
	plan        queuebench.Plan
}

func newBenchCmd(a *app) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure pgq on your database: drain rate, pickup latency, growth, enqueue cost",
		Long: `Run pgq's benchmark workloads (docs/performance.md) against a database and
print a summary table; progress goes to stderr.

  drain     bulk-insert --drain-jobs noop jobs, drain them with one worker
  steady    producers enqueue one job per transaction at --steady-rate;
            throughput and pickup latency (commit to handler start)
  ramp      climb the --ramp rates until one is not sustained
  growth    the drain rate with --growth-waiting jobs waiting, and with
            --growth-finished finished jobs kept, against an empty table
  tx        business transactions (one INSERT) with and without an enqueue
  workflow  a chord of --workflow members against as many plain jobs
  pinned    (not run by default: it takes 2 × --pinned-duration) a steady
            --pinned-rate while two overlapping REPEATABLE READ
            transactions hold back the xmin horizon for --pinned-pin
            each, against the same run without them

Every run works in a schema of its own (` + BenchSchemaPrefix + `<random>), created and
dropped again, so it never touches pgq's real schema. Without a database
URL, a throwaway PostgreSQL is started as for "pgq demo", with PostgreSQL's
default durability settings, and stopped at the end.

For pgq against River, Graphile Worker and pg-boss side by side, see
bench/ in pgq's repository ("make bench-peers").`,
		Example: `  pgq bench
  pgq bench --workloads drain,steady --rounds 3
  pgq bench --database-url postgres://app@localhost/app --drain-jobs 50000`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			return a.runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), plan, f.concurrency)
		},
	}
	fl := cmd.Flags()
	p := &f.plan
	fl.StringVar(&f.workloads, "workloads", strings.Join(benchWorkloadsDefault, ","), "workloads to run, comma-separated: "+strings.Join(benchWorkloads, ", "))
	fl.IntVar(&f.rounds, "rounds", 1, "runs of the drain, steady and tx workloads (the table shows median and range)")
	fl.IntVar(&f.concurrency, "concurrency", queuebench.PGQConcurrencyDefault, "the worker's concurrency")
	fl.IntVar(&p.DrainJobs, "drain-jobs", 100_000, "drain: jobs to bulk-insert and drain")
	fl.Float64Var(&p.Steady.Rate, "steady-rate", 1000, "steady: offered rate, jobs/s")
	fl.DurationVar(&p.Steady.Duration, "steady-duration", 10*time.Second, "steady: how long the producers run")
	fl.IntVar(&p.Steady.Producers, "steady-producers", 8, "steady: concurrent producers")
	fl.StringVar(&f.ramp, "ramp", "1000,2000,4000,8000,16000", "ramp: offered rates, jobs/s, ascending")
	fl.DurationVar(&p.RampStep, "ramp-step", 5*time.Second, "ramp: how long each rate runs")
	fl.IntVar(&p.RampProducers, "ramp-producers", 32, "ramp: concurrent producers")
	fl.IntVar(&p.GrowthWaiting, "growth-waiting", 500_000, "growth: jobs waiting when the worker starts")
	fl.IntVar(&p.GrowthFinished, "growth-finished", 500_000, "growth: finished jobs kept in the table")
	fl.IntVar(&p.GrowthMeasure, "growth-measure", 50_000, "growth: jobs each timed drain completes")
	fl.DurationVar(&p.Tx.Duration, "tx-duration", 5*time.Second, "tx: how long each variant runs")
	fl.IntVar(&p.Tx.Clients, "tx-clients", 8, "tx: concurrent connections")
	fl.IntVar(&p.WorkflowMembers, "workflow", 10_000, "workflow: chord members")
	fl.Float64Var(&p.Pinned.Steady.Rate, "pinned-rate", 500, "pinned: offered rate, jobs/s")
	fl.DurationVar(&p.Pinned.Steady.Duration, "pinned-duration", 100*time.Second, "pinned: length of each run, without and with the pins")
	fl.DurationVar(&p.Pinned.Pin, "pinned-pin", 60*time.Second, "pinned: how long each REPEATABLE READ transaction stays open")
	return cmd
}

// resolve checks the flags and turns them into a plan of the chosen
// workloads.
func (f *benchFlags) resolve(cmd *cobra.Command) (queuebench.Plan, error) {
	p := f.plan
	if f.rounds < 1 {
		return p, usageErrorf(cmd, "--rounds must be at least 1")
	}
	if f.concurrency < 1 {
		return p, usageErrorf(cmd, "--concurrency must be at least 1")
	}
	p.Rounds, p.RampRounds, p.GrowthRounds = f.rounds, 1, 1
	for _, v := range []struct {
		name string
		n    int
	}{{"--drain-jobs", p.DrainJobs}, {"--steady-producers", p.Steady.Producers}, {"--ramp-producers", p.RampProducers},
		{"--growth-measure", p.GrowthMeasure}, {"--tx-clients", p.Tx.Clients}, {"--workflow", p.WorkflowMembers}} {
		if v.n < 1 {
			return p, usageErrorf(cmd, "%s must be at least 1", v.name)
		}
	}
	if p.GrowthWaiting < 0 || p.GrowthFinished < 0 {
		return p, usageErrorf(cmd, "--growth-waiting and --growth-finished cannot be negative")
	}
	if p.Steady.Rate <= 0 || p.Steady.Duration <= 0 || p.RampStep <= 0 || p.Tx.Duration <= 0 {
		return p, usageErrorf(cmd, "rates and durations must be positive")
	}
	p.RampRates = nil
	for _, s := range strings.Split(f.ramp, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v <= 0 {
			return p, usageErrorf(cmd, "--ramp: %q is not a positive rate", s)
		}
		if n := len(p.RampRates); n > 0 && v <= p.RampRates[n-1] {
			return p, usageErrorf(cmd, "--ramp: rates must ascend")
		}
		p.RampRates = append(p.RampRates, v)
	}
	want := map[string]bool{}
	for _, w := range strings.Split(f.workloads, ",") {
		w = strings.TrimSpace(w)
		known := false
		for _, k := range benchWorkloads {
			known = known || k == w
		}
		if !known {
			return p, usageErrorf(cmd, "--workloads: unknown workload %q (choose from %s)", w, strings.Join(benchWorkloads, ", "))
		}
		want[w] = true
	}
	if !want["drain"] {
		p.DrainJobs = 0
	}
	if !want["steady"] {
		p.Steady.Duration = 0
	}
	if !want["ramp"] {
		p.RampRates = nil
	}
	if !want["growth"] {
		p.GrowthMeasure = 0
	}
	if !want["tx"] {
		p.Tx.Duration = 0
	}
	if !want["workflow"] {
		p.WorkflowMembers = 0
	}
	p.Pinned.Steady.Producers = p.Steady.Producers
	if !want["pinned"] {
		p.Pinned.Steady.Duration = 0
	} else if p.Pinned.Steady.Rate <= 0 || p.Pinned.Steady.Duration <= 0 || p.Pinned.Pin <= 0 {
		return p, usageErrorf(cmd, "--pinned-rate, --pinned-duration and --pinned-pin must be positive")
	}
	return p, nil
}

func (a *app) runBench(ctx context.Context, out, errOut io.Writer, plan queuebench.Plan, concurrency int) error {
	u, given := a.databaseURL()
	where := "the database at " + redactURL(u)
	if !given {
		fmt.Fprintln(errOut, "Starting a throwaway PostgreSQL with default durability settings (no --database-url given)...")
		srv, err := pgserver.Start(ctx, &pgserver.Options{Durable: true})
		if err != nil {
			return fmt.Errorf("start a throwaway PostgreSQL: %w", err)
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := srv.Stop(stopCtx); err != nil {
				a.logger().Warn("stop throwaway PostgreSQL", "err", err)
			}
		}()
		u, where = srv.URL, "a throwaway PostgreSQL ("+serverKind(srv.Kind)+")"
	}
	pool, err := a.connectURLSized(ctx, u, int32(max(plan.RampProducers, plan.Steady.Producers, plan.Tx.Clients)+16))
	if err != nil {
		return err
	}
	defer pool.Close()
	var version string
	if err := pool.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version); err != nil {
		return err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := BenchSchemaPrefix + hex.EncodeToString(suffix)
	drop := func(ctx context.Context) error {
		_, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		return err
	}
	defer func() {
		dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = drop(dropCtx)
	}()
	fmt.Fprintf(errOut, "Benchmarking pgq on %s, PostgreSQL %s, in schema %s (dropped afterwards).\n", where, version, name)

	entrant := queuebench.Entrant{Name: "pgq", Open: func(ctx context.Context) (queuebench.System, func(context.Context) error, error) {
		return openBenchSchema(ctx, pool, name, drop, concurrency)
	}}
	started := time.Now()
	res, err := queuebench.Run(ctx, plan, []queuebench.Entrant{entrant}, queuebench.NewBar(errOut))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pgq bench: PostgreSQL %s on %s, worker concurrency %d, %s.\n\n", version, where, concurrency, time.Since(started).Round(time.Second))
	return res.WriteTable(out)
}

// openBenchSchema migrates a fresh bench schema and returns pgq on it; the
// cleanup drops the schema again.
func openBenchSchema(ctx context.Context, pool *pgxpool.Pool, name string, drop func(context.Context) error, concurrency int) (queuebench.System, func(context.Context) error, error) {
	if err := drop(ctx); err != nil {
		return nil, nil, err
	}
	// The pool's connections cached statements prepared against the
	// schema just dropped; the new one has the same name but new types
	// (its domains), and a cached plan whose result type changed fails
	// once. Fresh connections start with empty caches.
	pool.Reset()
	if err := migrations.Up(ctx, pool, name); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("migrate schema %s: %w", name, err), drop(context.WithoutCancel(ctx)))
	}
	sys, err := queuebench.NewPGQ(pool, name, &queuebench.PGQConfig{Concurrency: concurrency})
	if err != nil {
		return nil, nil, errors.Join(err, drop(context.WithoutCancel(ctx)))
	}
	return sys, drop, nil
}
