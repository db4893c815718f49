package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/internal/pgserver"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/migrations"
	"github.com/pgq/pgq/queue"
	"github.com/pgq/pgq/worker"
)

// DemoSchemaDefault is the schema `pgq demo` uses in a database it was
// given, unless --schema or PGQ_SCHEMA says otherwise, so that the demo's
// jobs never land in a real "pgq" schema.
const DemoSchemaDefault = "pgq_demo"

// demoBulkJobs is the size of the demo's bulk (COPY) enqueue.
const demoBulkJobs = 1000

// demo is one run of `pgq demo`: where it writes and what it made.
type demo struct {
	out    io.Writer
	url    string // the database, as the user can reach it
	schema string
	s      *session
	log    *slog.Logger
	// retried is the id of the example job whose first attempt fails.
	retried int64
}

// demoStep is one stage of the demo. Later stages (workers, the dashboard)
// are added to demoSteps.
type demoStep struct {
	title string
	run   func(d *demo, ctx context.Context) error
}

func demoSteps() []demoStep {
	return []demoStep{
		{"Migrating", (*demo).migrate},
		{"Enqueuing example jobs", (*demo).enqueueExamples},
		{"Newest jobs (pgq inspect jobs)", (*demo).showJobs},
		{fmt.Sprintf("Enqueuing %d jobs in one COPY", demoBulkJobs), (*demo).enqueueBulk},
		{"Queues (pgq inspect queues)", (*demo).showQueues},
		{"Running a worker until the queues are empty (pgq worker --burst)", (*demo).work},
		{"Queues afterwards", (*demo).showQueues},
		{"The job that was retried (pgq inspect job)", (*demo).showRetried},
	}
}

func newDemoCmd(a *app) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try pgq with nothing set up: a throwaway PostgreSQL and example jobs",
		Long: `Show pgq at work with no set-up. Without a database URL, the demo starts a
throwaway PostgreSQL (a Docker container when a Docker engine answers, else
the machine's own PostgreSQL binaries in a temporary directory), migrates it,
enqueues example jobs and shows the queues, then stops the server again
unless --keep is given.

Given a database URL, it uses that database instead, in the schema
"` + DemoSchemaDefault + `" unless --schema or $` + EnvSchema + ` names another.`,
		Example: `  pgq demo
  pgq demo --keep
  pgq demo --database-url postgres://app@localhost/app`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDemo(cmd.Context(), cmd.OutOrStdout(), keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the throwaway PostgreSQL running until Ctrl-C")
	return cmd
}

func (a *app) runDemo(ctx context.Context, out io.Writer, keep bool) error {
	u, given := a.databaseURL()
	name := DemoSchemaDefault
	if a.schemaExplicit() || !given {
		var err error
		if name, err = a.schemaName(); err != nil {
			return err
		}
	}
	d := &demo{out: out, schema: name}

	if given {
		fmt.Fprintf(out, "Using the database at %s, schema %s.\n", redactURL(u), name)
	} else {
		fmt.Fprintln(out, "Starting a throwaway PostgreSQL (no --database-url given)...")
		srv, err := pgserver.Start(ctx, nil)
		if err != nil {
			return fmt.Errorf("start a throwaway PostgreSQL: %w", err)
		}
		defer func() {
			// ctx may be cancelled by now; stopping must still happen.
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			fmt.Fprintln(out, "\nStopping the throwaway PostgreSQL; its data is gone.")
			if err := srv.Stop(stopCtx); err != nil {
				a.logger().Warn("stop throwaway PostgreSQL", "err", err)
			}
		}()
		u = srv.URL
		fmt.Fprintf(out, "  ready at %s (%s)\n", u, serverKind(srv.Kind))
	}
	d.url = u

	pool, err := a.connectURLSized(ctx, u, workerPoolSize)
	if err != nil {
		return err
	}
	defer pool.Close()
	d.log = a.logger()
	if d.s, err = newSession(ctx, pool, name, false); err != nil {
		return err
	}

	for _, step := range demoSteps() {
		fmt.Fprintf(out, "\n%s\n", step.title)
		if err := step.run(d, ctx); err != nil {
			return fmt.Errorf("demo: %s: %w", step.title, err)
		}
	}

	if !given && !keep {
		fmt.Fprintln(out, "\nRun `pgq demo --keep` to keep the server running and look around with psql.")
		return nil
	}
	schemaFlag := ""
	if name != schema.Default {
		schemaFlag = " --schema " + name
	}
	fmt.Fprintf(out, "\nLook around:\n  psql '%s' -c 'SELECT * FROM %s.job_overview ORDER BY id DESC LIMIT 5'\n", redactURL(u), name)
	fmt.Fprintf(out, "  pgq --database-url '%s'%s inspect queues\n", redactURL(u), schemaFlag)
	if given {
		return nil
	}
	fmt.Fprintln(out, "\nPostgreSQL keeps running; press Ctrl-C to stop it.")
	<-ctx.Done()
	return nil
}

// serverKind describes pgserver's Kind for people.
func serverKind(kind string) string {
	switch kind {
	case "local":
		return "the machine's PostgreSQL binaries, in a temporary directory"
	case "container":
		return "a Docker container"
	}
	return kind
}

func (d *demo) migrate(ctx context.Context) error {
	if err := migrations.Up(ctx, d.s.pool, d.schema); err != nil {
		return err
	}
	v, _, err := migrations.Version(ctx, d.s.pool, d.schema)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  schema %s is at version %d\n", d.schema, v)
	return nil
}

func (d *demo) enqueueExamples(ctx context.Context) error {
	examples := []struct {
		what string
		raw  queue.Raw
		opts *queue.Options
	}{
		{"", queue.Raw{Task: "emails.send", Args: json.RawMessage(`{"to":"ada@example.com","subject":"Welcome"}`)}, nil},
		{"priority 5", queue.Raw{Task: "reports.build", Args: json.RawMessage(`{"month":"2026-11"}`)},
			&queue.Options{Queue: "reports", Priority: queue.Ptr(5)}},
		{"countdown 1m", queue.Raw{Task: "reminders.send", Args: json.RawMessage(`{"user_id":7}`)},
			&queue.Options{Countdown: time.Minute}},
		{"unique key invoice-1042", queue.Raw{Task: "invoices.sync", Args: json.RawMessage(`{"invoice":1042}`)},
			&queue.Options{Queue: "billing", UniqueKey: "invoice-1042"}},
		{"same unique key again", queue.Raw{Task: "invoices.sync", Args: json.RawMessage(`{"invoice":1042}`)},
			&queue.Options{Queue: "billing", UniqueKey: "invoice-1042"}},
	}
	for _, ex := range examples {
		e, err := d.s.client.Enqueue(ctx, ex.raw, ex.opts)
		if err != nil {
			return err
		}
		if ex.raw.Task == "invoices.sync" {
			d.retried = e.ID
		}
		note := ex.what
		if e.Duplicate {
			note += ": duplicate, no new job"
		}
		if note != "" {
			note = " (" + note + ")"
		}
		fmt.Fprintf(d.out, "  job %d: %s on queue %s, %s%s\n", e.ID, e.Task, e.Queue, e.State, note)
	}
	return nil
}

func (d *demo) enqueueBulk(ctx context.Context) error {
	reqs := make([]queue.Request, demoBulkJobs)
	for i := range reqs {
		reqs[i] = queue.Request{
			Args:    queue.Raw{Task: "images.thumbnail", Args: json.RawMessage(fmt.Sprintf(`{"image":%d}`, i+1))},
			Options: &queue.Options{Queue: "media"},
		}
	}
	start := time.Now()
	jobs, err := d.s.client.EnqueueMany(ctx, reqs)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  jobs %d to %d: images.thumbnail on queue media, in %s\n",
		jobs[0].ID, jobs[len(jobs)-1].ID, time.Since(start).Round(time.Millisecond))
	return nil
}

func (d *demo) showQueues(ctx context.Context) error {
	stats, err := d.s.client.QueueStats(ctx)
	if err != nil {
		return err
	}
	return writeQueues(d.out, queueRows(stats))
}

func (d *demo) showJobs(ctx context.Context) error {
	jobs, err := d.s.client.ListJobs(ctx, queue.JobFilter{Limit: 10})
	if err != nil {
		return err
	}
	return writeJobs(d.out, jobsJSON{Jobs: jobs})
}

// demoRegistry has a handler for every task the demo enqueues. The invoice
// sync fails its first attempt, to show a retry.
func demoRegistry() *worker.Registry {
	reg := worker.NewRegistry()
	reg.HandleFunc("emails.send", func(_ context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		return map[string]any{"sent": true, "request": job.Args}, nil
	}, nil)
	reg.HandleFunc("reports.build", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		return map[string]int{"rows": 1042}, nil
	}, nil)
	reg.HandleFunc("reminders.send", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		return nil, nil
	}, nil)
	reg.HandleFunc("invoices.sync", func(_ context.Context, job *worker.Job[json.RawMessage]) (any, error) {
		if job.Attempt == 1 {
			return nil, worker.Retry(100 * time.Millisecond)
		}
		return "synced", nil
	}, nil)
	reg.HandleFunc("images.thumbnail", func(context.Context, *worker.Job[json.RawMessage]) (any, error) {
		return nil, nil
	}, nil)
	return reg
}

func (d *demo) work(ctx context.Context) error {
	var done, retried atomic.Int64
	w, err := worker.New(d.s.pool, demoRegistry(), &worker.Config{
		Schema:      d.schema,
		Queues:      []string{"default", "reports", "billing", "media"},
		Concurrency: 50,
		Burst:       true,
		Logger:      d.log,
		OnEvent: func(e worker.Event) {
			switch e.State {
			case queue.StateSucceeded:
				done.Add(1)
			case queue.StateRetrying:
				retried.Add(1)
			}
		},
	})
	if err != nil {
		return err
	}
	start := time.Now()
	if err := w.Run(ctx); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(d.out, "  %d jobs succeeded in %s (%.0f jobs/s); %d attempt(s) failed and were retried\n",
		done.Load(), took.Round(time.Millisecond), float64(done.Load())/took.Seconds(), retried.Load())
	fmt.Fprintln(d.out, "  the reminder (countdown 1m) is still scheduled: burst mode leaves future jobs alone")
	return nil
}

func (d *demo) showRetried(ctx context.Context) error {
	j, err := d.s.client.Job(ctx, d.retried)
	if err != nil {
		return err
	}
	return writeJob(d.out, j)
}
