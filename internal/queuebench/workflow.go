package queuebench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

// Workflow implements System: n plain noop jobs bulk-inserted and drained,
// then a chord of n noop members with a noop callback, applied and drained;
// each timed from the worker's start to the last job's completion stored
// (the callback's, for the chord), as the drain is.
func (p *PGQ) Workflow(ctx context.Context, n int, progress func(int)) (WorkflowResult, error) {
	var res WorkflowResult
	if err := p.bulkInsert(ctx, n); err != nil {
		return res, err
	}
	d, err := p.runUntil(ctx, n, progress)
	if err != nil {
		return res, fmt.Errorf("plain jobs: %w", err)
	}
	res.Plain = d

	noop := queue.Raw{Task: worker.TaskNoop}
	members := make([]*workflow.Signature, n)
	for i := range members {
		members[i] = workflow.Task(noop, nil)
	}
	wf, err := workflow.Apply(ctx, p.client, workflow.Chord(workflow.Group(members...), workflow.Task(noop, nil)))
	if err != nil {
		return res, fmt.Errorf("apply the chord: %w", err)
	}
	if _, err := p.pool.Exec(ctx, "ANALYZE "+p.table("jobs")); err != nil {
		return res, err
	}
	d, err = p.runUntil(ctx, n+1, progress) // the members and the callback
	if err != nil {
		return res, fmt.Errorf("chord: %w", err)
	}
	res.Chord = d
	state, err := wf.State(ctx)
	if err != nil {
		return res, err
	}
	if state != queue.StateSucceeded {
		return res, fmt.Errorf("chord: the workflow is %s after its callback ran", state)
	}
	return res, nil
}

// runUntil runs a worker until want jobs have succeeded and returns the
// time from its start to the last of them.
func (p *PGQ) runUntil(ctx context.Context, want int, progress func(int)) (time.Duration, error) {
	var done atomic.Int64
	reached := make(chan time.Time, 1)
	w, err := p.worker(nil, false, func(e worker.Event) {
		if e.State == queue.StateSucceeded && done.Add(1) == int64(want) {
			reached <- time.Now()
		}
	})
	if err != nil {
		return 0, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	stopReport := ReportCount(&done, progress)
	defer stopReport()
	ran := make(chan error, 1)
	t := time.Now()
	go func() { ran <- w.Run(runCtx) }()
	select {
	case end := <-reached:
		stop()
		return end.Sub(t), <-ran
	case err := <-ran:
		return 0, fmt.Errorf("worker stopped after %d of %d jobs: %v", done.Load(), want, err)
	}
}
