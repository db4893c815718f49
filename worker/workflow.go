package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Names of the built-in tasks that package workflow's Map, Starmap and
// Chunks enqueue. Every worker handles them without registration.
const (
	TaskMap     = "pgq.map"
	TaskStarmap = "pgq.starmap"
)

// MapArgs are the args of pgq.map and pgq.starmap: apply Task to each item
// in turn, each item being the args of one call (for pgq.starmap, a JSON
// array of positional arguments).
type MapArgs struct {
	Task  string            `json:"task"`
	Items []json.RawMessage `json:"items"`
}

// ErrNoParentResult is returned by ParentResult when the job was given
// nothing: it is not part of a workflow, it is a workflow's first step,
// or its signature is immutable.
var ErrNoParentResult = errors.New("job has no parent result")

// ParentResult decodes into v what the job's workflow passed it: the
// result of the previous step of a chain, the list of member results (in
// member order) for a chord's callback, a link callback's parent's result,
// or a workflow.Failure for an error callback. It reads the stored value
// (one query) each time it is called, and returns ErrNoParentResult when
// there is none.
func (i *Info) ParentResult(v any) error {
	if i.exec == nil {
		return errors.New("worker: ParentResult: the job was not given to a handler by a worker")
	}
	e := i.exec
	raw, err := e.w.q.WorkflowInput(e.ctx, i.ID)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && raw == nil) {
		return fmt.Errorf("job %d: %w", i.ID, ErrNoParentResult)
	}
	if err != nil {
		return fmt.Errorf("job %d: read parent result: %w", i.ID, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("job %d: decode parent result into %T: %w", i.ID, v, err)
	}
	return nil
}

// addWorkflowBuiltins gives the worker pgq.map and pgq.starmap unless the
// registry has its own.
func (w *Worker) addWorkflowBuiltins() {
	for _, name := range []string{TaskMap, TaskStarmap} {
		if _, ok := w.tasks[name]; ok {
			continue
		}
		o, _ := (*TaskOptions)(nil).normalize()
		w.tasks[name] = &task{name: name, handler: HandlerFunc(w.runMap), opts: o}
	}
}

// runMap applies a registered task to each item in turn, in this job's
// attempt, and returns the list of results. An item's error fails the
// whole attempt (the job's retry policy then runs every item again).
func (w *Worker) runMap(ctx context.Context, job *Job[json.RawMessage]) (any, error) {
	var args MapArgs
	if err := json.Unmarshal(job.Args, &args); err != nil {
		return nil, badArgs(job.Task, &args, err)
	}
	t := w.tasks[args.Task]
	if t == nil || t.name == TaskMap || t.name == TaskStarmap {
		return nil, Permanent(fmt.Errorf("%w %q in %s: worker %s has no handler for it", ErrUnknownTask, args.Task, job.Task, w.cfg.WorkerID))
	}
	results := make([]json.RawMessage, len(args.Items))
	for n, item := range args.Items {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		info := *job.Info
		info.Task, info.RawArgs, info.exec = args.Task, item, nil
		r, err := t.handler.Work(ctx, &Job[json.RawMessage]{Info: &info, Args: item})
		if err != nil {
			return nil, fmt.Errorf("%s item %d of %d (%s): %w", job.Task, n, len(args.Items), args.Task, err)
		}
		if results[n], err = json.Marshal(r); err != nil {
			return nil, Permanent(fmt.Errorf("%s item %d: encode result of %s as JSON: %w", job.Task, n, args.Task, err))
		}
	}
	return results, nil
}
