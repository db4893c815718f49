package queuebench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Plan says which workloads to run, how big, and how often. A zero size or
// duration skips its workload.
type Plan struct {
	// Rounds is how many times the drain, steady-state and transaction
	// workloads run per system, interleaved across systems.
	Rounds int
	// DrainJobs is the size of the drain workload.
	DrainJobs int
	// Steady is the fixed-rate steady-state run.
	Steady SteadyParams
	// RampRates are the offered rates, ascending, of the search for the
	// highest sustained rate; it stops at the first rate not sustained.
	RampRates []float64
	// RampStep is how long each rate of the ramp runs.
	RampStep time.Duration
	// RampProducers is how many producers the ramp uses.
	RampProducers int
	// RampRounds is how many times the ramp runs per system.
	RampRounds int
	// GrowthWaiting and GrowthFinished are the table sizes of the growth
	// workload; GrowthMeasure is how many jobs each growth drain times.
	GrowthWaiting  int
	GrowthFinished int
	GrowthMeasure  int
	// GrowthRounds is how many times the growth workload runs per system.
	GrowthRounds int
	// Tx is the transactional-enqueue workload.
	Tx TxParams
	// WorkflowMembers is the chord size of the workflow workload.
	WorkflowMembers int
	// Pinned is workload 6; a zero Steady.Duration skips it.
	Pinned PinnedParams
}

// Reporter follows a run: Begin and End bracket each system's run of a
// workload, Progress reports jobs done within it.
type Reporter interface {
	Begin(label string, total int)
	Progress(done int)
	End(err error)
}

// Figures of the workloads, in table order.
var (
	FigDrain       = Figure{Workload: "1 drain", Name: "drain, jobs/s", HigherIsBetter: true}
	FigDrainInsert = Figure{Workload: "1 drain", Name: "bulk insert, jobs/s", HigherIsBetter: true}

	FigSteadyThroughput = Figure{Workload: "2 steady", Name: "throughput at the fixed rate, jobs/s", HigherIsBetter: true}
	FigSteadyP50        = Figure{Workload: "2 steady", Name: "pickup p50, ms", Decimals: 2}
	FigSteadyP95        = Figure{Workload: "2 steady", Name: "pickup p95, ms", Decimals: 2}
	FigSteadyP99        = Figure{Workload: "2 steady", Name: "pickup p99, ms", Decimals: 2}
	FigRampMax          = Figure{Workload: "2 steady", Name: "highest sustained offered rate, jobs/s", HigherIsBetter: true}
	FigRampThroughput   = Figure{Workload: "2 steady", Name: "throughput at that rate, jobs/s", HigherIsBetter: true}
	FigRampP99          = Figure{Workload: "2 steady", Name: "pickup p99 at that rate, ms", Decimals: 2}

	FigGrowthEmpty         = Figure{Workload: "3 growth", Name: "drain, empty table, jobs/s", HigherIsBetter: true}
	FigGrowthWaiting       = Figure{Workload: "3 growth", Name: "drain, many waiting, jobs/s", HigherIsBetter: true}
	FigGrowthWaitingShare  = Figure{Workload: "3 growth", Name: "many waiting, % of empty", HigherIsBetter: true, Decimals: 0}
	FigGrowthFinished      = Figure{Workload: "3 growth", Name: "drain, many finished retained, jobs/s", HigherIsBetter: true}
	FigGrowthFinishedShare = Figure{Workload: "3 growth", Name: "many finished, % of empty", HigherIsBetter: true, Decimals: 0}

	FigTxBare    = Figure{Workload: "4 tx enqueue", Name: "INSERT only, tx/s", HigherIsBetter: true}
	FigTxEnqueue = Figure{Workload: "4 tx enqueue", Name: "INSERT + enqueue, tx/s", HigherIsBetter: true}
	FigTxCost    = Figure{Workload: "4 tx enqueue", Name: "throughput lost to the enqueue, %", Decimals: 0}
	// pgq's enqueue straight into pgq.jobs, beside the staged one above.
	FigTxDirect     = Figure{Workload: "4 tx enqueue", Name: "INSERT + enqueue not staged, tx/s", HigherIsBetter: true}
	FigTxDirectCost = Figure{Workload: "4 tx enqueue", Name: "throughput lost to the enqueue not staged, %", Decimals: 0}

	FigWorkflowChord = Figure{Workload: "5 workflow", Name: "chord, members/s", HigherIsBetter: true}
	FigWorkflowPlain = Figure{Workload: "5 workflow", Name: "as many plain jobs, jobs/s", HigherIsBetter: true}
)

// GrowthFigureNames renames the growth figures after the sizes used.
func (p Plan) growthFigures() (waiting, waitingShare, finished, finishedShare Figure) {
	waiting, waitingShare, finished, finishedShare = FigGrowthWaiting, FigGrowthWaitingShare, FigGrowthFinished, FigGrowthFinishedShare
	waiting.Name = fmt.Sprintf("drain, %s waiting, jobs/s", FormatNumber(float64(p.GrowthWaiting), 0))
	waitingShare.Name = fmt.Sprintf("%s waiting, %% of empty", FormatNumber(float64(p.GrowthWaiting), 0))
	finished.Name = fmt.Sprintf("drain, %s finished retained, jobs/s", FormatNumber(float64(p.GrowthFinished), 0))
	finishedShare.Name = fmt.Sprintf("%s finished, %% of empty", FormatNumber(float64(p.GrowthFinished), 0))
	return
}

// Run drives the entrants through the plan's workloads, one workload at a
// time, alternating systems within each round (A B A B …), each run on a
// fresh instance. A system that fails or cannot run a workload gets a note
// in the results, and the run goes on. Run returns early only when ctx
// ends.
func Run(ctx context.Context, plan Plan, entrants []Entrant, rep Reporter) (*Results, error) {
	names := make([]string, len(entrants))
	for i, e := range entrants {
		names[i] = e.Name
	}
	res := NewResults(names...)
	r := &runner{ctx: ctx, plan: plan, rep: rep, res: res, broken: map[string]error{}}
	// Round-major: every workload's first round comes before any second
	// round, and the short workloads before the long ones, so that a run
	// cut short by a deadline still has every workload once.
	type step struct {
		what   string
		rounds int
		run    workload
	}
	var steps []step
	if plan.DrainJobs > 0 {
		steps = append(steps, step{"drain", max(1, plan.Rounds), r.drain})
	}
	if plan.Steady.Duration > 0 && plan.Steady.Rate > 0 {
		steps = append(steps, step{"steady", max(1, plan.Rounds), r.steady})
	}
	if plan.Tx.Duration > 0 {
		steps = append(steps, step{"tx", max(1, plan.Rounds), r.tx})
	}
	if plan.WorkflowMembers > 0 {
		steps = append(steps, step{"workflow", 1, r.workflow})
	}
	if len(plan.RampRates) > 0 && plan.RampStep > 0 {
		steps = append(steps, step{"ramp", max(1, plan.RampRounds), r.ramp})
	}
	if plan.GrowthMeasure > 0 {
		steps = append(steps, step{"growth", max(1, plan.GrowthRounds), r.growth})
	}
	if plan.Pinned.Steady.Duration > 0 && plan.Pinned.Steady.Rate > 0 {
		steps = append(steps, step{"pinned", 1, r.pinned})
	}
	last := 0
	for _, st := range steps {
		last = max(last, st.rounds)
	}
	for round := 1; round <= last; round++ {
		for _, st := range steps {
			if round <= st.rounds {
				r.round(entrants, round, st.rounds, st.what, st.run)
			}
		}
	}
	return res, ctx.Err()
}

type runner struct {
	ctx    context.Context
	plan   Plan
	rep    Reporter
	res    *Results
	broken map[string]error // entrants that could not be opened
}

// workload runs one workload on an open system and records its figures; it
// returns the figures it would have recorded, for notes on failure.
type workload func(ctx context.Context, sys System, name, label string) ([]Figure, error)

// round runs one round of a workload on every entrant in turn.
func (r *runner) round(entrants []Entrant, round, of int, what string, run workload) {
	for _, e := range entrants {
		if r.ctx.Err() != nil {
			return
		}
		label := fmt.Sprintf("%s, %s", what, e.Name)
		if of > 1 {
			label += fmt.Sprintf(" (round %d/%d)", round, of)
		}
		r.one(e, label, run)
	}
}

func (r *runner) one(e Entrant, label string, run workload) {
	if err := r.broken[e.Name]; err != nil {
		figs, _ := run(r.ctx, nil, e.Name, label)
		for _, f := range figs {
			r.res.Note(f, e.Name, err.Error())
		}
		return
	}
	sys, cleanup, err := e.Open(r.ctx)
	if err != nil {
		err = fmt.Errorf("cannot be set up: %w", err)
		r.broken[e.Name] = err
		r.rep.Begin(label, 0)
		r.rep.End(err)
		figs, _ := run(r.ctx, nil, e.Name, label)
		for _, f := range figs {
			r.res.Note(f, e.Name, err.Error())
		}
		return
	}
	figs, err := run(r.ctx, sys, e.Name, label)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), time.Minute)
	defer cancel()
	err = errors.Join(err, sys.Close(closeCtx))
	if cleanup != nil {
		err = errors.Join(err, cleanup(closeCtx))
	}
	if err != nil && r.ctx.Err() == nil {
		note := "failed: " + err.Error()
		if errors.Is(err, ErrNotAvailable) {
			note = "not available: " + err.Error()
		}
		for _, f := range figs {
			r.res.Note(f, e.Name, note)
		}
	}
}

// begin starts the reporter for one run and returns its progress function;
// the caller ends it with r.rep.End.
func (r *runner) begin(label string, total int) func(int) {
	r.rep.Begin(label, total)
	return r.rep.Progress
}

func (r *runner) drain(ctx context.Context, sys System, name, label string) ([]Figure, error) {
	figs := []Figure{FigDrain, FigDrainInsert}
	if sys == nil {
		return figs, nil
	}
	n := r.plan.DrainJobs
	d, err := sys.Drain(ctx, n, r.begin(label, n))
	r.rep.End(err)
	if err != nil {
		return figs, err
	}
	r.res.Add(FigDrain, name, float64(d.Jobs)/d.Drain.Seconds())
	r.res.Add(FigDrainInsert, name, float64(d.Jobs)/d.Insert.Seconds())
	return figs, nil
}

func (r *runner) steady(ctx context.Context, sys System, name, label string) ([]Figure, error) {
	p := r.plan.Steady
	throughput := FigSteadyThroughput
	throughput.Name = fmt.Sprintf("throughput at %s/s offered, jobs/s", FormatNumber(p.Rate, 0))
	figs := []Figure{throughput, FigSteadyP50, FigSteadyP95, FigSteadyP99}
	if sys == nil {
		return figs, nil
	}
	s, err := sys.Steady(ctx, p, r.begin(label, p.Jobs()))
	r.rep.End(err)
	if err != nil {
		return figs, err
	}
	r.res.Add(throughput, name, s.Throughput)
	r.res.Add(FigSteadyP50, name, ms(s.P50))
	r.res.Add(FigSteadyP95, name, ms(s.P95))
	r.res.Add(FigSteadyP99, name, ms(s.P99))
	return figs, nil
}

func (r *runner) ramp(ctx context.Context, sys System, name, label string) ([]Figure, error) {
	figs := []Figure{FigRampMax, FigRampThroughput, FigRampP99}
	if sys == nil {
		return figs, nil
	}
	var best *SteadyResult
	for _, rate := range r.plan.RampRates {
		p := SteadyParams{Rate: rate, Duration: r.plan.RampStep, Producers: r.plan.RampProducers}
		s, err := sys.Steady(ctx, p, r.begin(fmt.Sprintf("%s at %s/s", label, FormatNumber(rate, 0)), p.Jobs()))
		r.rep.End(err)
		if err != nil {
			return figs, err
		}
		if !s.Sustained() {
			break
		}
		best = &s
	}
	if best == nil {
		r.res.Add(FigRampMax, name, 0)
		note := fmt.Sprintf("not even %s jobs/s was sustained", FormatNumber(r.plan.RampRates[0], 0))
		r.res.Note(FigRampThroughput, name, note)
		r.res.Note(FigRampP99, name, note)
		return figs, nil
	}
	r.res.Add(FigRampMax, name, best.Offered)
	r.res.Add(FigRampThroughput, name, best.Throughput)
	r.res.Add(FigRampP99, name, ms(best.P99))
	return figs, nil
}

func (r *runner) growth(ctx context.Context, sys System, name, label string) ([]Figure, error) {
	waiting, waitingShare, finished, finishedShare := r.plan.growthFigures()
	figs := []Figure{FigGrowthEmpty}
	if r.plan.GrowthWaiting > r.plan.GrowthMeasure {
		figs = append(figs, waiting, waitingShare)
	}
	if r.plan.GrowthFinished > 0 {
		figs = append(figs, finished, finishedShare)
	}
	if sys == nil {
		return figs, nil
	}
	m := r.plan.GrowthMeasure
	empty, err := sys.Growth(ctx, GrowthParams{Waiting: m, Measure: m}, r.begin(label+", empty table", m))
	r.rep.End(err)
	if err != nil {
		return figs, err
	}
	r.res.Add(FigGrowthEmpty, name, empty.Rate)
	if r.plan.GrowthWaiting > m {
		g, err := sys.Growth(ctx, GrowthParams{Waiting: r.plan.GrowthWaiting, Measure: m}, r.begin(label+", "+FormatNumber(float64(r.plan.GrowthWaiting), 0)+" waiting", m))
		r.rep.End(err)
		if err != nil {
			return figs, err
		}
		r.res.Add(waiting, name, g.Rate)
		r.res.Add(waitingShare, name, 100*g.Rate/empty.Rate)
	}
	if r.plan.GrowthFinished > 0 {
		g, err := sys.Growth(ctx, GrowthParams{Waiting: m, Finished: r.plan.GrowthFinished, Measure: m}, r.begin(label+", "+FormatNumber(float64(r.plan.GrowthFinished), 0)+" finished", m))
		r.rep.End(err)
		if err != nil {
			return figs, err
		}
		r.res.Add(finished, name, g.Rate)
		r.res.Add(finishedShare, name, 100*g.Rate/empty.Rate)
	}
	return figs, nil
}

func (r *runner) tx(ctx context.Context, sys System, name, label string) ([]Figure, error) {
	figs := []Figure{FigTxBare, FigTxEnqueue, FigTxCost, FigTxDirect, FigTxDirectCost}
	if sys == nil {
		return figs, nil
	}
	r.begin(label, 0)
	t, err := sys.TxCost(ctx, r.plan.Tx)
	r.rep.End(err)
	if err != nil {
		return figs, err
	}
	r.res.Add(FigTxBare, name, t.Bare)
	r.res.Add(FigTxEnqueue, name, t.WithEnqueue)
	r.res.Add(FigTxCost, name, 100*(1-t.WithEnqueue/t.Bare))
	if t.Direct > 0 {
		r.res.Add(FigTxDirect, name, t.Direct)
		r.res.Add(FigTxDirectCost, name, 100*(1-t.Direct/t.Bare))
	}
	return figs, nil
}

func (r *runner) workflow(ctx context.Context, sys System, name, label string) ([]Figure, error) {
	chord := FigWorkflowChord
	chord.Name = fmt.Sprintf("%s-member chord, members/s", FormatNumber(float64(r.plan.WorkflowMembers), 0))
	figs := []Figure{chord, FigWorkflowPlain}
	if sys == nil {
		return figs, nil
	}
	n := r.plan.WorkflowMembers
	w, err := sys.Workflow(ctx, n, r.begin(label, n))
	r.rep.End(err)
	if err != nil {
		return figs, err
	}
	r.res.Add(chord, name, float64(n)/w.Chord.Seconds())
	r.res.Add(FigWorkflowPlain, name, float64(n)/w.Plain.Seconds())
	return figs, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
