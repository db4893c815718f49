package workflow_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pgq/pgq/internal/pgtest"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
	"github.com/pgq/pgq/workflow"
)

// Fetch downloads a page; Count counts its words; Report adds the counts
// of several pages up.
type Fetch struct {
	URL string `json:"url"`
}

func (Fetch) TaskName() string { return "example.fetch" }

type Count struct{}

func (Count) TaskName() string { return "example.count" }

type Report struct{}

func (Report) TaskName() string { return "example.report" }

// A chord of chains: each page is fetched and then counted, and once
// every count is in, the report runs once with all of them, in order.
func ExampleApply() {
	ctx := context.Background()
	db, release, err := pgtest.Acquire(ctx) // your *pgxpool.Pool and schema
	if err != nil {
		panic(err)
	}
	defer release()
	client, err := queue.NewClient(db.Pool, &queue.Config{Schema: db.Schema})
	if err != nil {
		panic(err)
	}

	pages := []string{"a b c", "d e", "f"}
	var members []*workflow.Signature
	for _, p := range pages {
		members = append(members, workflow.Chain(workflow.Task(Fetch{URL: p}, nil), workflow.Task(Count{}, nil)))
	}
	res, err := workflow.Apply(ctx, client, workflow.Chord(workflow.Group(members...), workflow.Task(Report{}, nil)))
	if err != nil {
		panic(err)
	}

	// The worker side: each handler reads what the step before it returned.
	reg := worker.NewRegistry()
	worker.Register(reg, func(_ context.Context, job *worker.Job[Fetch]) (any, error) {
		return job.Args.URL, nil // the page's text, in this example
	}, nil)
	worker.Register(reg, func(_ context.Context, job *worker.Job[Count]) (any, error) {
		var text string
		if err := job.ParentResult(&text); err != nil {
			return nil, err
		}
		n := 0
		for _, c := range text {
			if c != ' ' {
				n++
			}
		}
		return n, nil
	}, nil)
	worker.Register(reg, func(_ context.Context, job *worker.Job[Report]) (any, error) {
		var counts []int
		if err := job.ParentResult(&counts); err != nil {
			return nil, err
		}
		return fmt.Sprintf("counts %v", counts), nil
	}, nil)
	w, err := worker.New(db.Pool, reg, &worker.Config{Schema: db.Schema, Logger: testLogger()})
	if err != nil {
		panic(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(wctx) }()
	defer func() { stop(); <-done }()

	res.PollInterval = 100 * time.Millisecond
	var report string
	if err := res.Get(ctx, &report); err != nil {
		panic(err)
	}
	fmt.Println(report)
	// Output: counts [3 2 1]
}
