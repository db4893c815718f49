// Package workflow is pgq's canvas: chains, groups, chords, map, starmap,
// chunks and link/link_error callbacks, built from signatures and enqueued
// atomically in the caller's transaction.
//
// # Use
//
//	wf := workflow.Chord(
//		workflow.Group(workflow.Task(Resize{ID: 1}, nil), workflow.Task(Resize{ID: 2}, nil)),
//		workflow.Task(Publish{}, nil),
//	).LinkError(workflow.Task(Alert{}, nil))
//	res, err := workflow.ApplyTx(ctx, tx, client, wf) // exists only if tx commits
//	...
//	var out PublishResult
//	err = res.Get(ctx, &out) // or a *workflow.Error naming the job that failed
//
// A handler reads what the step before it produced with Job.ParentResult:
// the previous chain step's result, a chord callback's list of member
// results in member order, or a Failure for an error callback. Immutable
// signatures are given nothing.
//
// # Design
//
// The whole tree is written when the workflow is enqueued: one row per
// node in pgq.workflow_nodes (ids from the jobs' sequence, so a task's node
// id is its job's id) and every job in pgq.jobs, those that must wait for
// an earlier step in the state pending, which no claim reads. Three
// statements, whatever the size, all inside the caller's transaction.
//
// Every continuation is made by the database, in the transaction of the
// completion that causes it: a row trigger on pgq.jobs fires when a job of
// a workflow (root_id set) enters succeeded, failed or cancelled, whoever
// wrote it (the worker's batched completion, CompleteTx, a rescue, a
// revoke, an expiry, plain SQL from another language). It starts the next
// step of a chain, counts a group's member, starts a chord's callback with
// the stored member results, runs link or link_error callbacks, and cancels
// the steps that a failure made pointless. Other jobs pay for the
// triggers' WHEN tests alone.
//
// Exactly once follows from transactions, not from the workers: a member
// is counted in the transaction that marks it succeeded, so a worker that
// dies before that commit leaves the member running (and rescued later,
// counted then), and one that dies after it leaves the count written; the
// group's counter row is locked by each counting transaction, so exactly
// one of them sees it reach zero and starts the callback, and a retried
// attempt is not counted because only the move into succeeded is. The
// details, failure semantics and measurements are in docs/workflow.md.
package workflow
