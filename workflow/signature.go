package workflow

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pgq/pgq/queue"
)

// Names of the built-in tasks behind Map, Starmap and Chunks; every
// worker handles them (worker.TaskMap, worker.TaskStarmap).
const (
	taskMap     = "pgq.map"
	taskStarmap = "pgq.starmap"
)

// Node kinds, as stored in pgq.workflow_nodes.kind.
const (
	KindTask  = "task"
	KindChain = "chain"
	KindGroup = "group"
	KindChord = "chord"
)

// Signature is one node of a workflow: a task with its args and options,
// or a chain, group or chord of other signatures (Celery's signature and
// canvas primitives). Signatures are values: Immutable, Link and
// LinkError return changed copies, so one signature can be reused in
// several workflows.
type Signature struct {
	kind       string
	args       queue.TaskArgs
	opts       *queue.Options
	immutable  bool
	steps      []*Signature
	links      []*Signature
	linkErrors []*Signature
}

// Task returns the signature of one job: a task, its args and options
// (nil means the task's defaults), as queue.Client.Enqueue takes them.
// Unless it is Immutable, a task that follows another step receives that
// step's result, which its handler reads with Job.ParentResult.
func Task(args queue.TaskArgs, opts *queue.Options) *Signature {
	return &Signature{kind: KindTask, args: args, opts: opts}
}

// Chain runs steps one after another: each starts when the one before it
// succeeded and receives its result. The chain's result is its last
// step's. A failed step stops the chain: later steps are cancelled.
func Chain(steps ...*Signature) *Signature {
	return &Signature{kind: KindChain, steps: steps}
}

// Group runs members side by side. Its result is the list of the
// members' results, in member order. In a chain, every member receives
// the previous step's result. A failed member fails the group (members
// still running finish, but nothing after the group runs).
func Group(members ...*Signature) *Signature {
	return &Signature{kind: KindGroup, steps: members}
}

// Chord runs header (a Group; any other signature is made a group of one)
// and then callback, exactly once, with the list of every member's result
// in member order. If a member fails (after its retries) or is revoked,
// the callback is cancelled and never runs, and the chord fails with that
// member's id and error.
func Chord(header, callback *Signature) *Signature {
	if header != nil && header.kind != KindGroup {
		header = Group(header)
	}
	return &Signature{kind: KindChord, steps: []*Signature{header, callback}}
}

// Map is one job that applies task to each item in turn, each item (JSON
// encoded) being the args of one call; its result is the list of
// results (Celery's xmap). opts are the map job's options.
func Map(task string, items []any, opts *queue.Options) *Signature {
	return Task(mapArgs{name: taskMap, Task: task, Items: items}, opts)
}

// Starmap is Map for tasks that take positional arguments: each list is
// passed to one call as its args, a JSON array (Celery's xstarmap).
func Starmap(task string, argLists [][]any, opts *queue.Options) *Signature {
	items := make([]any, len(argLists))
	for i, l := range argLists {
		items[i] = l
	}
	return Task(mapArgs{name: taskStarmap, Task: task, Items: items}, opts)
}

// Chunks splits items into jobs of n items each, every job a Map of task
// over its items, and runs them as a group (Celery's chunks). The group's
// result is the list of each chunk's list of results.
func Chunks(task string, items []any, n int, opts *queue.Options) *Signature {
	if n < 1 {
		return &Signature{kind: KindGroup, args: invalidArgs{fmt.Errorf("Chunks of %s: chunk size %d must be at least 1", task, n)}}
	}
	var members []*Signature
	for start := 0; start < len(items); start += n {
		members = append(members, Map(task, items[start:min(start+n, len(items))], opts))
	}
	return Group(members...)
}

// mapArgs are the args of pgq.map and pgq.starmap (worker.MapArgs).
type mapArgs struct {
	name  string
	Task  string `json:"task"`
	Items []any  `json:"items"`
}

func (m mapArgs) TaskName() string { return m.name }

// invalidArgs carries a construction error to Apply, which reports it.
type invalidArgs struct{ err error }

func (invalidArgs) TaskName() string { return "" }

// Immutable returns a copy of s that ignores the result of the step before
// it (Celery's si()). For a chain or group, the steps that would have
// received that result ignore it.
func (s *Signature) Immutable() *Signature {
	c := s.clone()
	c.immutable = true
	return c
}

// Link returns a copy of s that runs callbacks when s succeeds, each
// receiving s's result (Celery's link). A callback can be any signature.
func (s *Signature) Link(callbacks ...*Signature) *Signature {
	c := s.clone()
	c.links = append(c.links, callbacks...)
	return c
}

// LinkError returns a copy of s that runs callbacks once when s fails for
// good (a job failed after its retries, or was revoked, at or below s),
// each receiving a Failure as its parent result (Celery's link_error).
func (s *Signature) LinkError(callbacks ...*Signature) *Signature {
	c := s.clone()
	c.linkErrors = append(c.linkErrors, callbacks...)
	return c
}

func (s *Signature) clone() *Signature {
	if s == nil {
		return &Signature{kind: KindTask}
	}
	c := *s
	c.steps = append([]*Signature(nil), s.steps...)
	c.links = append([]*Signature(nil), s.links...)
	c.linkErrors = append([]*Signature(nil), s.linkErrors...)
	return &c
}

// Kind returns the signature's kind: KindTask, KindChain, KindGroup or
// KindChord.
func (s *Signature) Kind() string { return s.kind }

// Failure describes the job that made a workflow node fail: what an error
// callback receives as its parent result, and what Error carries.
type Failure struct {
	// JobID and Task name the job that failed first.
	JobID int64  `json:"job_id"`
	Task  string `json:"task"`
	// State is the job's final state: failed, or cancelled (revoked,
	// expired).
	State string `json:"state"`
	// Message is the job's last recorded error.
	Message string `json:"error"`
}

// Error is returned by Result.Get for a workflow that failed: which job
// failed first and why. It matches queue.ErrJobFailed or
// queue.ErrJobCancelled by the job's state.
type Error struct {
	WorkflowID int64
	Failure
}

func (e *Error) Error() string {
	return fmt.Sprintf("workflow %d failed: job %d (%s) %s: %s", e.WorkflowID, e.JobID, e.Task, e.State, e.Message)
}

// Is matches queue.ErrJobFailed or queue.ErrJobCancelled.
func (e *Error) Is(target error) bool {
	return (target == queue.ErrJobFailed && e.State == queue.StateFailed) ||
		(target == queue.ErrJobCancelled && e.State == queue.StateCancelled)
}

// ErrNotFound is matched when no workflow has the given id.
var ErrNotFound = errors.New("no such workflow")

func decodeFailure(raw json.RawMessage) Failure {
	var f Failure
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &f)
	}
	return f
}
