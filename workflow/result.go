package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pgq/pgq/queue"
)

// Result is a handle to a workflow's outcome. Its ID is the workflow's
// id (the root node's), which Inspect, `pgq inspect workflow` and the
// pgq.workflow_steps view take.
type Result struct {
	ID int64
	// PollInterval overrides queue.ResultPollInterval while waiting.
	PollInterval time.Duration

	c *queue.Client
}

// ResultFor returns a handle to the outcome of the workflow with id.
func ResultFor(c *queue.Client, id int64) *Result { return &Result{ID: id, c: c} }

// Tree returns the workflow's steps as they are now.
func (r *Result) Tree(ctx context.Context) (*Step, error) { return Inspect(ctx, r.c, r.ID) }

// Wait waits until the workflow has ended and returns its tree. It waits
// on the jobs whose end is the workflow's (a chain's last step, a chord's
// callback, a group's members), which are announced when they finish, run
// or cancelled; and it looks at the workflow itself every PollInterval, so
// a group that failed while other members still run is seen as ended.
func (r *Result) Wait(ctx context.Context) (*Step, error) {
	poll := r.PollInterval
	if poll <= 0 {
		poll = queue.ResultPollInterval
	}
	for {
		tree, err := r.Tree(ctx)
		if err != nil {
			return nil, err
		}
		if tree.Finished() {
			return tree, nil
		}
		g := r.c.GroupResult(tree.finals()...)
		g.PollInterval = poll
		jctx, cancel := context.WithTimeout(ctx, max(poll, time.Second))
		_, err = g.Join(jctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, queue.ErrJobNotFound):
			return nil, fmt.Errorf("workflow %d: a job it waits for was deleted: %w", r.ID, err)
		}
		// Done, failed, or time to look again: the tree says which.
	}
}

// Get waits until the workflow has ended and decodes its result into out
// (nil discards it): the last step's result for a chain or chord, the
// list of members' results for a group. A failed workflow gives an
// *Error naming the job that failed first and why.
func (r *Result) Get(ctx context.Context, out any) error {
	tree, err := r.Wait(ctx)
	if err != nil {
		return err
	}
	if tree.nodeState != "succeeded" {
		e := &Error{WorkflowID: r.ID}
		if tree.Failure != nil {
			e.Failure = *tree.Failure
		} else {
			e.State, e.Message = tree.nodeState, "workflow ended "+tree.nodeState
		}
		return e
	}
	if out == nil || len(tree.result) == 0 {
		return nil
	}
	if err := json.Unmarshal(tree.result, out); err != nil {
		return fmt.Errorf("decode result of workflow %d into %T: %w", r.ID, out, err)
	}
	return nil
}

// State returns the workflow's state: pending, active, succeeded or
// failed (a single task's: its job's state).
func (r *Result) State(ctx context.Context) (string, error) {
	tree, err := r.Tree(ctx)
	if err != nil {
		return "", err
	}
	return tree.State, nil
}
