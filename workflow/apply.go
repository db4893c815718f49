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

// Apply enqueues the workflow in a transaction of its own. See ApplyTx.
func Apply(ctx context.Context, c *queue.Client, wf *Signature) (*Result, error) {
	var r *Result
	err := pgx.BeginFunc(ctx, c.Pool(), func(tx pgx.Tx) error {
		var err error
		r, err = ApplyTx(ctx, tx, c, wf)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ApplyTx enqueues the whole workflow inside the caller's transaction:
// every job of it exists, and the first ones are woken, only if tx
// commits. Jobs that wait for an earlier step are inserted in state
// pending. It sends three statements whatever the workflow's size (four
// when an empty group must start at once).
//
// Every signature is checked first, with the Client's routes and the
// tasks' defaults, so that an invalid workflow returns an error matching
// queue.ErrInvalid, naming the step, before anything is sent, and tx
// stays usable. Besides the Client's own rules, a workflow's tasks cannot
// have a UniqueKey, and a task whose result a later step receives (a
// chord member, a chain step before a mutable one, a task with a link)
// cannot ignore its result.
func ApplyTx(ctx context.Context, tx pgx.Tx, c *queue.Client, wf *Signature) (*Result, error) {
	if c == nil {
		return nil, errors.New("workflow.ApplyTx: client is nil")
	}
	var f flattener
	f.c = c
	if err := f.walk(wf, -1, roleStep, 0, "workflow", false, true); err != nil {
		return nil, err
	}
	if f.emptyStart {
		// An empty group that starts at once succeeds at once, which may
		// start what follows it: leave all the starting to the database.
		for i := range f.nodes {
			f.nodes[i].active = false
		}
	}
	q := db.New(schema.Wrap(c.Schema(), tx))
	ids, err := q.ReserveJobIDs(ctx, int32(len(f.nodes)))
	if err != nil {
		return nil, fmt.Errorf("enqueue workflow: reserve ids: %w", err)
	}
	root := ids[0]
	nodes := make([]nodeRow, len(f.nodes))
	var jobs []jobRow
	for i, n := range f.nodes {
		row := nodeRow{ID: ids[i], RootID: root, Role: n.role, Position: n.position, Kind: n.kind,
			Immutable: n.immutable, Callbacks: n.callbacks, State: "pending"}
		if n.active {
			row.State = "active"
			if n.kind == KindGroup {
				row.Remaining = &f.nodes[i].members
			}
		}
		var parent *int64
		if n.parent >= 0 {
			parent = &ids[n.parent]
			row.ParentKind = &f.nodes[n.parent].kind
		}
		row.ParentID = parent
		if p := n.job; p != nil {
			row.Task = &p.Task
			if p.Countdown > 0 {
				row.CountdownMs = queue.Ptr((p.Countdown + time.Millisecond - 1).Milliseconds())
			}
			j := jobRow{
				ID: ids[i], Task: p.Task, Queue: p.Queue, Priority: p.Priority, Args: p.Args,
				Meta:       c.WithTraceContext(ctx, p.Headers), // the trace goes on to every step
				MaxRetries: p.MaxRetries, RetryDelayMs: p.RetryDelayMs, TimeLimitMs: p.TimeLimitMs,
				SoftTimeLimitMs: p.SoftTimeLimitMs, IgnoreResult: p.IgnoreResult, ETA: p.ETA,
				ExpiresAt: p.ExpiresAt, ParentID: parent, RootID: root,
				CountdownMs: row.CountdownMs, Ready: n.active,
			}
			if p.ExpiresIn != nil {
				j.ExpiresInMs = queue.Ptr(p.ExpiresIn.Milliseconds())
			}
			jobs = append(jobs, j)
		}
		nodes[i] = row
	}
	jobsJSON, err := json.Marshal(jobs)
	if err != nil {
		return nil, fmt.Errorf("enqueue workflow: encode jobs: %w", err)
	}
	nodesJSON, err := json.Marshal(nodes)
	if err != nil {
		return nil, fmt.Errorf("enqueue workflow: encode nodes: %w", err)
	}
	if len(jobs) > 0 {
		if err := q.InsertWorkflowJobs(ctx, jobsJSON); err != nil {
			return nil, fmt.Errorf("enqueue workflow: insert %d jobs: %w", len(jobs), err)
		}
	}
	if err := q.InsertWorkflowNodes(ctx, nodesJSON); err != nil {
		return nil, fmt.Errorf("enqueue workflow: insert %d nodes: %w", len(nodes), err)
	}
	if f.emptyStart {
		if err := q.StartWorkflow(ctx, root); err != nil {
			return nil, fmt.Errorf("enqueue workflow: start: %w", err)
		}
	}
	return &Result{ID: root, c: c}, nil
}

const (
	roleStep      = "step"
	roleLink      = "link"
	roleLinkError = "link_error"
)

// flatNode is one node of a workflow in pre-order; parent indexes nodes.
type flatNode struct {
	parent    int
	role      string
	position  int
	kind      string
	immutable bool
	callbacks bool
	active    bool            // starts when the workflow is enqueued
	members   int             // groups: the number of members
	job       *queue.Prepared // tasks only
}

type flattener struct {
	c     *queue.Client
	nodes []flatNode
	// emptyStart says that an empty group starts at once.
	emptyStart bool
}

// walk checks s and appends it and everything below it. consumed says
// whether something receives s's result, active whether s starts when the
// workflow is enqueued.
func (f *flattener) walk(s *Signature, parent int, role string, position int, path string, consumed, active bool) error {
	if s == nil {
		return invalid(path, "signature is nil")
	}
	if len(f.nodes) >= maxNodes {
		return invalid(path, "workflow has more than %d nodes", maxNodes)
	}
	idx := len(f.nodes)
	f.nodes = append(f.nodes, flatNode{parent: parent, role: role, position: position, kind: s.kind, immutable: s.immutable,
		callbacks: len(s.links)+len(s.linkErrors) > 0, active: active, members: len(s.steps)})
	for _, l := range s.links {
		if l != nil && !startsImmutable(l) {
			consumed = true
		}
	}
	switch s.kind {
	case KindTask:
		if bad, ok := s.args.(invalidArgs); ok {
			return invalid(path, "%v", bad.err)
		}
		if s.args == nil {
			return invalid(path, "task args are nil: pass a TaskArgs value or queue.Raw")
		}
		p, err := f.c.Prepare(s.args, s.opts)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", path, s.args.TaskName(), err)
		}
		if p.UniqueKey != "" {
			return invalid(path+" ("+p.Task+")", "a workflow's tasks cannot have a UniqueKey")
		}
		if p.IgnoreResult && consumed {
			return invalid(path+" ("+p.Task+")", "ignores its result, which a later step of the workflow receives (results are passed along from the stored results); drop IgnoreResult or make the next step Immutable")
		}
		f.nodes[idx].job = &p
	case KindChain, KindChord:
		if bad, ok := s.args.(invalidArgs); ok {
			return invalid(path, "%v", bad.err)
		}
		if len(s.steps) == 0 {
			return invalid(path, "chain has no steps")
		}
		for i, step := range s.steps {
			next := consumed
			if i < len(s.steps)-1 {
				next = step != nil && s.steps[i+1] != nil && !startsImmutable(s.steps[i+1])
			}
			name := fmt.Sprintf("%s.%s[%d]", path, s.kind, i)
			if err := f.walk(step, idx, roleStep, i, name, next, active && i == 0); err != nil {
				return err
			}
		}
	case KindGroup:
		if bad, ok := s.args.(invalidArgs); ok {
			return invalid(path, "%v", bad.err)
		}
		if active && len(s.steps) == 0 {
			f.emptyStart = true
		}
		for i, m := range s.steps {
			if err := f.walk(m, idx, roleStep, i, fmt.Sprintf("%s.group[%d]", path, i), consumed, active); err != nil {
				return err
			}
		}
	default:
		return invalid(path, "unknown signature kind %q", s.kind)
	}
	for i, l := range s.links {
		if err := f.walk(l, idx, roleLink, i, fmt.Sprintf("%s.link[%d]", path, i), false, false); err != nil {
			return err
		}
	}
	for i, l := range s.linkErrors {
		if err := f.walk(l, idx, roleLinkError, i, fmt.Sprintf("%s.link_error[%d]", path, i), false, false); err != nil {
			return err
		}
	}
	return nil
}

// maxNodes bounds one workflow (its ids are reserved in one statement).
const maxNodes = 1_000_000

// startsImmutable reports whether s ignores the result it would be given.
func startsImmutable(s *Signature) bool {
	if s.immutable {
		return true
	}
	switch s.kind {
	case KindChain, KindChord:
		return len(s.steps) > 0 && s.steps[0] != nil && startsImmutable(s.steps[0])
	case KindGroup:
		for _, m := range s.steps {
			if m == nil || !startsImmutable(m) {
				return false
			}
		}
		return len(s.steps) > 0
	}
	return false
}

func invalid(path, format string, args ...any) error {
	return &queue.ValidationError{Field: path, Reason: fmt.Sprintf(format, args...)}
}

// nodeRow and jobRow are what InsertWorkflowNodes and InsertWorkflowJobs
// read with jsonb_to_recordset.
type nodeRow struct {
	ID          int64   `json:"id"`
	RootID      int64   `json:"root_id"`
	ParentID    *int64  `json:"parent_id"`
	Role        string  `json:"role"`
	Position    int     `json:"position"`
	Kind        string  `json:"kind"`
	Task        *string `json:"task"`
	State       string  `json:"state"`
	Remaining   *int    `json:"remaining"`
	Immutable   bool    `json:"immutable"`
	Callbacks   bool    `json:"callbacks"`
	ParentKind  *string `json:"parent_kind"`
	CountdownMs *int64  `json:"countdown_ms"`
}

type jobRow struct {
	ID              int64           `json:"id"`
	Task            string          `json:"task"`
	Queue           string          `json:"queue"`
	Priority        *int16          `json:"priority"`
	Args            json.RawMessage `json:"args"`
	Meta            json.RawMessage `json:"meta"`
	MaxRetries      *int32          `json:"max_retries"`
	RetryDelayMs    *int32          `json:"retry_delay_ms"`
	TimeLimitMs     *int32          `json:"time_limit_ms"`
	SoftTimeLimitMs *int32          `json:"soft_time_limit_ms"`
	IgnoreResult    bool            `json:"ignore_result"`
	ETA             *time.Time      `json:"eta"`
	CountdownMs     *int64          `json:"countdown_ms"`
	Ready           bool            `json:"ready"`
	ExpiresAt       *time.Time      `json:"expires_at"`
	ExpiresInMs     *int64          `json:"expires_in_ms"`
	ParentID        *int64          `json:"parent_id"`
	RootID          int64           `json:"root_id"`
}
