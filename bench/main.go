// Command bench runs issue #10's workloads side by side on pgq, River,
// Graphile Worker and pg-boss against one PostgreSQL, each run in a fresh
// database, interleaved (A B A B …), and prints a Markdown table of the
// median, spread and pgq/peer ratio of every figure.
//
//	cd bench && go run .                       # default sizes, ≤ 15 minutes
//	cd bench && go run . -quick                # tiny sizes, a minute
//	cd bench && go run . -write-docs ../docs/performance.md
//
// Without -database-url it starts a private PostgreSQL (pgq's
// internal/pgserver: a container when Docker answers, else the machine's
// own binaries) with PostgreSQL's default durability settings. This module
// is separate from pgq's so that River never enters pgq's go.mod; its path,
// github.com/pgq/pgq/bench, lies inside pgq's, which is what lets it import
// pgq's internal packages.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgq/pgq/internal/queuebench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	databaseURL string
	systems     string
	timeout     time.Duration
	writeDocs   string
	nodeDir     string
	quick       bool
	plan        queuebench.Plan
	rampRates   string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.databaseURL, "database-url", "", "a PostgreSQL superuser URL to create the databases on (default: a private server with default durability)")
	fs.StringVar(&o.systems, "systems", "pgq,river,graphile,pgboss", "systems to run, comma-separated; the first is compared with the others")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "stop after this long; workloads not run by then are left out")
	fs.StringVar(&o.writeDocs, "write-docs", "", "also write the table into this Markdown file, between the bench-peers markers")
	fs.StringVar(&o.nodeDir, "node-dir", "node", "directory of the Node drivers (package.json, driver.mjs)")
	fs.BoolVar(&o.quick, "quick", false, "tiny sizes, to try the harness (overrides the size flags)")
	p := &o.plan
	fs.IntVar(&p.Rounds, "rounds", 3, "rounds of the drain, steady-state and transaction workloads")
	fs.IntVar(&p.DrainJobs, "drain", 200_000, "workload 1: jobs to bulk-insert and drain (0 skips)")
	fs.Float64Var(&p.Steady.Rate, "steady-rate", 1000, "workload 2: fixed offered rate, jobs/s")
	fs.DurationVar(&p.Steady.Duration, "steady-duration", 10*time.Second, "workload 2: how long producers run at the fixed rate (0 skips)")
	fs.IntVar(&p.Steady.Producers, "steady-producers", 8, "workload 2: concurrent producers at the fixed rate")
	fs.StringVar(&o.rampRates, "ramp", "1000,2000,4000,8000,16000", "workload 2: offered rates to climb until one is not sustained (empty skips)")
	fs.DurationVar(&p.RampStep, "ramp-step", 5*time.Second, "workload 2: how long each rate of the ramp runs")
	fs.IntVar(&p.RampProducers, "ramp-producers", 48, "workload 2: concurrent producers during the ramp")
	fs.IntVar(&p.RampRounds, "ramp-rounds", 1, "workload 2: runs of the ramp per system")
	fs.IntVar(&p.GrowthWaiting, "growth-waiting", 1_000_000, "workload 3: jobs waiting when the worker starts")
	fs.IntVar(&p.GrowthFinished, "growth-finished", 1_000_000, "workload 3: finished jobs retained in the table (issue #10 asks for 5,000,000; that takes minutes per system to set up)")
	fs.IntVar(&p.GrowthMeasure, "growth-measure", 100_000, "workload 3: jobs each growth drain times (0 skips)")
	fs.IntVar(&p.GrowthRounds, "growth-rounds", 1, "workload 3: runs per system")
	fs.DurationVar(&p.Tx.Duration, "tx-duration", 4*time.Second, "workload 4: seconds per variant (0 skips)")
	fs.IntVar(&p.Tx.Clients, "tx-clients", 8, "workload 4: concurrent connections")
	fs.IntVar(&p.WorkflowMembers, "workflow", 10_000, "workload 5: chord members (0 skips)")
	fs.DurationVar(&p.Pinned.Steady.Duration, "pinned-duration", 0, "workload 6: length of each steady run, without and with xmin pinned (0 skips; it does not fit the 15-minute budget: try 100s)")
	fs.DurationVar(&p.Pinned.Pin, "pinned-pin", 60*time.Second, "workload 6: how long each of the two REPEATABLE READ transactions stays open")
	fs.Float64Var(&p.Pinned.Steady.Rate, "pinned-rate", 500, "workload 6: offered rate, jobs/s")
	fs.IntVar(&p.Pinned.Steady.Producers, "pinned-producers", 8, "workload 6: concurrent producers")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.quick {
		*p = QuickPlan()
		o.rampRates = ""
	}
	if o.rampRates != "" {
		p.RampRates = nil
		for _, s := range strings.Split(o.rampRates, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || v <= 0 {
				return nil, fmt.Errorf("-ramp: %q is not a positive rate", s)
			}
			p.RampRates = append(p.RampRates, v)
		}
	}
	return o, nil
}

// QuickPlan is the plan of -quick: every workload, tiny.
func QuickPlan() queuebench.Plan {
	return queuebench.Plan{
		Rounds:        2,
		DrainJobs:     5_000,
		Steady:        queuebench.SteadyParams{Rate: 500, Duration: 2 * time.Second, Producers: 4},
		RampRates:     []float64{500, 1000},
		RampStep:      2 * time.Second,
		RampProducers: 16,
		RampRounds:    1,
		GrowthWaiting: 20_000, GrowthFinished: 20_000, GrowthMeasure: 5_000, GrowthRounds: 1,
		Tx:              queuebench.TxParams{Duration: time.Second, Clients: 4},
		WorkflowMembers: 1_000,
		Pinned: queuebench.PinnedParams{
			Steady: queuebench.SteadyParams{Rate: 500, Duration: 4 * time.Second, Producers: 4},
			Pin:    2 * time.Second,
		},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	started := time.Now()

	srv, err := startServer(ctx, o.databaseURL, stderr)
	if err != nil {
		return err
	}
	defer srv.Close()

	var entrants []queuebench.Entrant
	var node *nodeSetup
	for _, name := range strings.Split(o.systems, ",") {
		switch strings.TrimSpace(name) {
		case "pgq":
			entrants = append(entrants, srv.pgqEntrant())
		case "river":
			entrants = append(entrants, srv.riverEntrant())
		case "graphile", "pgboss":
			if node == nil {
				node = prepareNode(ctx, o.nodeDir, stderr)
			}
			entrants = append(entrants, srv.nodeEntrant(node, strings.TrimSpace(name)))
		default:
			return fmt.Errorf("-systems: unknown system %q (want pgq, river, graphile, pgboss)", name)
		}
	}

	env := describe(ctx, srv, node, o)
	res, err := queuebench.Run(ctx, o.plan, entrants, queuebench.NewBar(stderr))
	if err != nil && ctx.Err() == nil {
		return err
	}
	env.finish(started)
	if ctx.Err() != nil {
		env.cutShort = fmt.Sprintf("stopped after %s (%v): the table has what was measured by then", env.took, ctx.Err())
		fmt.Fprintln(stderr, "bench:", env.cutShort)
	}

	var report strings.Builder
	if err := writeReport(&report, env, o, res); err != nil {
		return err
	}
	if _, err := io.WriteString(stdout, report.String()); err != nil {
		return err
	}
	if o.writeDocs != "" {
		if err := updateDocs(o.writeDocs, report.String()); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: wrote the table into %s\n", o.writeDocs)
	}
	return nil
}
