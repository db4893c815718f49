// Package queuebench runs pgq's benchmark workloads (issue #10) against a
// job queue and turns repeated runs into a Markdown table.
//
// A queue under test is a System, set up fresh for every run by its
// Entrant. Run drives the entrants through the workloads of a Plan,
// interleaved (A B A B …) so that a noisy machine affects all of them
// alike, and collects the figures into Results, which WriteTable prints
// with the median and spread of each figure and the ratio of the first
// system to each of the others.
//
// `pgq bench` uses this package with pgq alone; the side-by-side harness in
// bench/ (its own module, so that River never enters pgq's go.mod) adds
// River, Graphile Worker and pg-boss.
//
// The workloads:
//
//  1. Drain: n noop jobs bulk-inserted, then one worker drains them; jobs/s
//     from the worker's start to the last stored completion, and the insert
//     rate separately.
//  2. Steady state: producers enqueue one job per transaction on an
//     open-loop schedule at a fixed rate; throughput and pickup latency
//     (commit to handler start). A ramp of rates finds the highest one the
//     system sustains without a growing backlog.
//  3. Growth: the drain rate of a fixed number of jobs with many more jobs
//     waiting behind them, and with many finished jobs retained in the
//     table, against the same drain from an otherwise empty table.
//  4. Transactional enqueue: business transactions of one INSERT, with and
//     without an enqueue in the same transaction; transactions per second.
//  5. Workflow: a chord of n members against n plain jobs (when the system
//     has one).
package queuebench
