package periodic

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// Client reads and edits the periodic tasks of a schema while beat runs:
// what `pgq periodic` does. Edits reach the leading beat at once (a
// trigger NOTIFYs it) and take effect at its next tick computation.
type Client struct {
	jobs   *queue.Client
	schema string
}

// NewClient returns a Client on the pool and schema of jobs, which also
// enqueues RunNow's jobs (with its routes).
func NewClient(jobs *queue.Client) (*Client, error) {
	if jobs == nil {
		return nil, errors.New("periodic.NewClient: queue client is nil")
	}
	return &Client{jobs: jobs, schema: jobs.Schema()}, nil
}

func (c *Client) queries(d schema.DBTX) *db.Queries { return db.New(schema.Wrap(c.schema, d)) }

// List returns every periodic task, by name.
func (c *Client) List(ctx context.Context) ([]Status, error) {
	rows, err := c.queries(c.jobs.Pool()).ListPeriodicTasks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list periodic tasks: %w", err)
	}
	now := time.Now()
	out := make([]Status, 0, len(rows))
	for _, r := range rows {
		out = append(out, newRow(*r).status(now))
	}
	return out, nil
}

// Get returns one periodic task, or an error matching ErrNotFound.
func (c *Client) Get(ctx context.Context, name string) (Status, error) {
	r, err := c.get(ctx, c.queries(c.jobs.Pool()), name)
	if err != nil {
		return Status{}, err
	}
	return r.status(time.Now()), nil
}

func (c *Client) get(ctx context.Context, q *db.Queries, name string) (*row, error) {
	r, err := q.GetPeriodicTask(ctx, name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read periodic task %q: %w", name, err)
	}
	return newRow(db.ListPeriodicTasksRow(*r)), nil
}

// Add stores a new periodic task with source "cli". It fails with an
// error matching ErrInvalid for a bad entry (naming the field) and
// ErrExists when the name is taken.
func (c *Client) Add(ctx context.Context, e Entry) error {
	n, err := e.normalize()
	if err != nil {
		return err
	}
	added, err := c.queries(c.jobs.Pool()).InsertPeriodicTask(ctx, db.InsertPeriodicTaskParams{
		Name: n.name, Spec: n.spec, TimeZone: n.zone, Task: n.task, Args: n.args,
		Queue: n.queue, Priority: n.priority, MaxRetries: n.maxRetries, ExpiresSeconds: n.expires,
		Missed: string(n.missed), Enabled: true, Source: string(SourceCLI),
	})
	if err != nil {
		return fmt.Errorf("add periodic task %q: %w", e.Name, err)
	}
	if added == 0 {
		return fmt.Errorf("%w: %q (remove it first, or enable/disable it)", ErrExists, e.Name)
	}
	return nil
}

// Remove deletes a periodic task and its run history. A task that a
// program still defines in code is refused with ErrDefinedInCode (its
// beat would bring it back): disable it, or drop it from the code.
func (c *Client) Remove(ctx context.Context, name string) error {
	q := c.queries(c.jobs.Pool())
	r, err := c.get(ctx, q, name)
	if err != nil {
		return err
	}
	if r.Source == string(SourceCode) && r.RemovedAt == nil {
		return fmt.Errorf("%w: %q; disable it, or remove it from the program's periodic.Config.Entries", ErrDefinedInCode, name)
	}
	n, err := q.DeletePeriodicTask(ctx, name)
	if err != nil {
		return fmt.Errorf("remove periodic task %q: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return nil
}

// Enable makes a periodic task fire again, from its next tick on: ticks
// that passed while it was disabled are not missed ticks.
func (c *Client) Enable(ctx context.Context, name string) error { return c.setEnabled(ctx, name, true) }

// Disable stops a periodic task from firing; its row and history stay.
func (c *Client) Disable(ctx context.Context, name string) error {
	return c.setEnabled(ctx, name, false)
}

func (c *Client) setEnabled(ctx context.Context, name string, enabled bool) error {
	n, err := c.queries(c.jobs.Pool()).SetPeriodicTaskEnabled(ctx, db.SetPeriodicTaskEnabledParams{Name: name, Enabled: enabled})
	if err != nil {
		return fmt.Errorf("set periodic task %q enabled=%t: %w", name, enabled, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return nil
}

// RunNow enqueues one job of a periodic task at once, outside its
// schedule (disabled tasks too); the schedule is not affected. The job
// carries the header periodic_run_now and expires like a tick's job.
func (c *Client) RunNow(ctx context.Context, name string) (queue.Enqueued, error) {
	var out queue.Enqueued
	err := pgx.BeginFunc(ctx, c.jobs.Pool(), func(tx pgx.Tx) error {
		q := c.queries(tx)
		r, err := c.get(ctx, q, name)
		if err != nil {
			return err
		}
		if err := r.checkJob(); err != nil {
			return fmt.Errorf("periodic task %q: %w", name, err)
		}
		var next time.Time
		if r.sched.cron != nil || r.sched.every > 0 {
			next = r.sched.Next(time.Now())
		}
		out, err = c.jobs.EnqueueTx(ctx, tx, queue.Raw{Task: r.Task, Args: r.Args}, r.jobOptions(time.Time{}, next))
		if err != nil {
			return fmt.Errorf("run periodic task %q now: %w", name, err)
		}
		return q.RecordPeriodicJob(ctx, db.RecordPeriodicJobParams{JobID: out.ID, Name: name})
	})
	return out, err
}

// Sync makes the tasks of source "code" match entries: each entry is
// upserted (an existing row keeps its enabled flag), and code tasks that
// entries no longer define are disabled, not deleted. It returns the names
// it disabled. A leading Beat does this with its Config.Entries; call Sync
// to do it at deploy time instead.
func (c *Client) Sync(ctx context.Context, entries []Entry) (disabled []string, err error) {
	ns, err := normalizeAll(entries)
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, c.jobs.Pool(), func(tx pgx.Tx) error {
		disabled, err = syncCode(ctx, c.queries(tx), ns)
		return err
	})
	return disabled, err
}

func normalizeAll(entries []Entry) ([]normalized, error) {
	ns := make([]normalized, 0, len(entries))
	seen := map[string]bool{}
	for i, e := range entries {
		n, err := e.normalize()
		if err != nil {
			return nil, fmt.Errorf("Entries[%d]: %w", i, err)
		}
		if seen[n.name] {
			return nil, &ValidationError{Entry: n.name, Field: fmt.Sprintf("Entries[%d].Name", i), Reason: "name is used twice"}
		}
		seen[n.name] = true
		ns = append(ns, n)
	}
	return ns, nil
}

// syncCode runs inside the caller's transaction.
func syncCode(ctx context.Context, q *db.Queries, ns []normalized) ([]string, error) {
	names := make([]string, 0, len(ns))
	for _, n := range ns {
		err := q.UpsertCodePeriodicTask(ctx, db.UpsertCodePeriodicTaskParams{
			Name: n.name, Spec: n.spec, TimeZone: n.zone, Task: n.task, Args: n.args,
			Queue: n.queue, Priority: n.priority, MaxRetries: n.maxRetries, ExpiresSeconds: n.expires,
			Missed: string(n.missed),
		})
		if err != nil {
			return nil, fmt.Errorf("store periodic task %q: %w", n.name, err)
		}
		names = append(names, n.name)
	}
	retired, err := q.RetireCodePeriodicTasks(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("disable periodic tasks no longer in code: %w", err)
	}
	return retired, nil
}
