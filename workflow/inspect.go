package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// Step is one node of a workflow as stored, with what is below it.
type Step struct {
	ID int64 `json:"id"`
	// Kind is KindTask, KindChain, KindGroup or KindChord.
	Kind string `json:"kind"`
	// Role is "step" for the root and the members of a chain, group or
	// chord, "link" for a success callback and "link_error" for an error
	// callback of the node above.
	Role string `json:"role"`
	Task string `json:"task,omitempty"`
	// State is a task's job state (pending, scheduled, available,
	// running, retrying, succeeded, failed, cancelled) and, for a chain,
	// group or chord: pending, active, succeeded or failed. A callback
	// that was not needed is skipped (its job was deleted); a task whose
	// job was deleted while its workflow ran is deleted.
	State   string `json:"state"`
	Attempt int    `json:"attempt,omitempty"`
	// Remaining is, for a group that has started, how many members have
	// not succeeded yet (the chord counter).
	Remaining *int `json:"remaining,omitempty"`
	// Failure names the job whose failure ended this node (or, for a step
	// that never ran, the one that made it unnecessary).
	Failure    *Failure   `json:"failure,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Steps are the members, in order; Callbacks the link and link_error
	// callbacks.
	Steps     []*Step `json:"steps,omitempty"`
	Callbacks []*Step `json:"callbacks,omitempty"`

	nodeState string
	result    json.RawMessage
}

// Inspect returns the tree of the workflow that id belongs to: id may be
// the workflow's id or any of its steps' (a job id). An unknown id gives
// an error matching ErrNotFound.
func Inspect(ctx context.Context, c *queue.Client, id int64) (*Step, error) {
	q := db.New(schema.Wrap(c.Schema(), c.Pool()))
	root, err := q.WorkflowRootOf(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("workflow of %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("workflow of %d: %w", id, err)
	}
	rows, err := q.WorkflowNodes(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("workflow %d: read steps: %w", root, err)
	}
	return buildTree(root, rows)
}

func buildTree(root int64, rows []*db.WorkflowNodesRow) (*Step, error) {
	byID := make(map[int64]*Step, len(rows))
	steps := make([]*Step, len(rows))
	for i, r := range rows {
		s := &Step{ID: r.ID, Kind: r.Kind, Role: r.Role, Task: r.Task, State: r.NodeState, nodeState: r.NodeState,
			Attempt: int(r.Attempt), FinishedAt: r.FinishedAt, result: r.Result}
		if r.Kind == KindTask {
			// A task's state is its job's (its node says only whether it
			// started, and whether its workflow cancelled or skipped it).
			s.result = r.JobResult
			if r.JobState != "" {
				s.State = r.JobState
				if queue.Finished(r.JobState) {
					s.nodeState = r.JobState
				}
			}
		}
		if r.Remaining != nil && r.NodeState != "pending" {
			s.Remaining = queue.Ptr(int(*r.Remaining))
		}
		if len(r.Failure) > 0 {
			f := decodeFailure(r.Failure)
			s.Failure = &f
		}
		byID[r.ID] = s
		steps[i] = s
	}
	// Rows come in id order, which is pre-order: parents before children,
	// members in position order.
	for i, r := range rows {
		if r.ParentID == nil {
			continue
		}
		p := byID[*r.ParentID]
		if p == nil {
			continue
		}
		if r.Role == roleStep {
			p.Steps = append(p.Steps, steps[i])
		} else {
			p.Callbacks = append(p.Callbacks, steps[i])
		}
	}
	top := byID[root]
	if top == nil {
		return nil, fmt.Errorf("workflow %d: %w", root, ErrNotFound)
	}
	return top, nil
}

// finals returns the jobs whose end is the step's end: a task's own job, a
// chain's or chord's last step's, every member's for a group.
func (s *Step) finals() []int64 {
	switch s.Kind {
	case KindTask:
		return []int64{s.ID}
	case KindGroup:
		var ids []int64
		for _, m := range s.Steps {
			ids = append(ids, m.finals()...)
		}
		return ids
	default:
		if len(s.Steps) == 0 {
			return nil
		}
		return s.Steps[len(s.Steps)-1].finals()
	}
}

// Finished reports whether the step has ended (succeeded, failed,
// cancelled or skipped).
func (s *Step) Finished() bool {
	switch s.nodeState {
	case "succeeded", "failed", "cancelled", "skipped", "deleted":
		return true
	}
	return false
}
