// Package worker is pgq's consumer side: a task registry, and a Worker
// that claims jobs from PostgreSQL, runs their handlers with limits,
// writes their outcomes in batches, heartbeats, rescues the jobs of dead
// workers and shuts down without losing any.
//
// # Use
//
//	reg := worker.NewRegistry()
//	worker.Register(reg, func(ctx context.Context, job *worker.Job[SendEmail]) (any, error) {
//		return nil, mailer.Send(ctx, job.Args.To, job.Args.Subject)
//	}, &worker.TaskOptions{TimeLimit: time.Minute})
//
//	w, err := worker.New(pool, reg, &worker.Config{Queues: []string{"default", "emails"}})
//	if err != nil {
//		return err
//	}
//	return w.Run(ctx) // until ctx ends; then a graceful shutdown
//
// A handler returns a result (stored as JSON in jobs.result) or an error.
// Plain errors are retried with exponential backoff and jitter until the
// job's retries are used up; Retry(after), Snooze(d) and Permanent(err)
// override that. Panics, time limits, unknown tasks and undecodable args
// all end as a readable entry in the job's error history, never as a
// crashed worker. CompleteTx finishes a job inside the handler's own
// transaction, for exactly-once effects.
//
// # Claiming
//
// One statement claims up to the number of free slots: for each queue an
// ordered walk of jobs_fetch_idx (partial over waiting jobs) with FOR
// UPDATE SKIP LOCKED, merged by priority and run_at, and the chosen rows
// set running by primary key. Workers never wait for each other's locks.
// The fetcher claims when LISTEN delivers a wake-up for one of its queues,
// again at once after a full batch, when a quarter of the slots frees up
// (or 2 ms after the first one) while a backlog remains, and on a poll
// timer as a fallback: NOTIFY is lost while the listening connection is
// down, and unavailable behind pgbouncer in transaction mode (NoListen).
// After a partial batch it asks when the next waiting job becomes due and
// sleeps until then, so a countdown or a retry runs on time without a
// short poll interval.
//
// While it works through a backlog (its last claim filled every free
// slot) a worker resumes each queue's walk after the last job it claimed
// rather than stepping again over the index entries of every job claimed
// since the last VACUUM; higher priorities are still walked from their
// front. A job that sorts before that position (a run time in the past,
// a transaction that began early, a hand-back) is claimed when the
// backlog ahead runs out, or within a second (worker/resume.go).
//
// Limited jobs (a task or queue with a rate or concurrency limit in
// pgq.limits, a task registered with TaskOptions.Mutex, a job enqueued
// with a mutex key) are left out of that statement and claimed by a
// second one, pgq.claim_limited, which runs one at a time per schema
// under a transaction-scoped advisory lock, so that budgets and mutexes
// hold across every worker. The worker caches which tasks and queues are
// limited (re-read every second, and at once on the "limits" control
// message) and, when limited jobs must wait, computes when the next token
// is due instead of polling. See docs/limits.md.
//
// With Config.Autoscale the number of slots is not fixed: a claim that
// fills every free slot (all busy, the backlog may hold more) adds half
// as many slots again, up to Max; slots that stay unused for a whole
// IdleAfter are given up, down to Min. Worker.Concurrency reports the
// current number.
//
// Staged jobs (queue.Options.Staged) wait in pgq.staged_jobs, where no
// queue can claim them. Before it claims, the fetcher moves them into
// pgq.jobs, 1,000 per statement and at most ten statements between two
// claims, when a producer's wake-up says it staged some and at least once
// per PollInterval; the move wakes the queues it filled. Workers move side by side (SKIP LOCKED), whatever their queues
// (staged.go).
//
// # Completing
//
// A slot is freed as soon as its handler returns; the outcome goes to the
// completer, which collects outcomes for CompletionDelay (or while its
// previous write runs) and writes them with one statement for successes
// and one for everything else (retry, failure, snooze, expiry, hand-back),
// each taking arrays and unnesting them. Each row is guarded by "still
// running, held by this worker, same attempt": a worker that lost a job
// (its heartbeat expired and the job was rescued) cannot overwrite the
// new attempt. Config.OnEvent is called only after the row is written, so
// nothing is reported succeeded before the database says so. If the
// database is unreachable, writes are retried and the completer's queue
// fills, which stops the claiming: backpressure, not memory growth.
//
// Both statements are written so that their plan is one primary-key
// lookup per id whatever the table statistics say; see the comments in
// queries/worker.sql for the two plans they avoid.
//
// # Time limits
//
// A hard limit cancels the handler's context at the deadline with cause
// ErrTimeLimit. A handler that ignores its context keeps running, but
// CancelGrace later its slot is taken back and the attempt recorded as
// failed; whatever it returns after that is dropped. A soft limit closes
// the channel returned by Job.SoftLimit.
//
// # Heartbeats and rescue
//
// A worker inserts its row in pgq.workers before its first claim and
// refreshes heartbeat_at every HeartbeatInterval. Every worker runs the
// maintenance loop, but each round first takes a transaction-scoped
// advisory lock keyed by the schema (hashtext("<schema>.maintenance")):
// one leader per round, and a leader that dies releases the lock with its
// connection, so no election state survives it. The leader hands jobs
// that are running under a worker whose heartbeat is older than
// RescueAfter (or that has no row) back to their queue, or fails them
// when their attempts are used up, recording why; it then deletes the
// rows of dead workers that hold nothing. A job must also have started
// more than RescueAfter ago, so a worker that re-registers after a long
// pause does not lose the jobs it claimed since. A worker that finds its
// own row gone (it was presumed dead) registers again and logs that its
// jobs may run twice: delivery is at least once.
//
// # Outages
//
// Every loop (listener, fetcher, completer, heartbeat, maintenance) goes
// through the pool, so a restarted or unreachable PostgreSQL costs each
// of them failed calls, which it retries with capped exponential backoff
// (50 ms doubling to 5 s, ±20% jitter). The log tells the story once:
// "database unreachable" (warn) when the first loop fails, "database
// reachable again" (info, with the outage's length) when the first one
// gets through; the retries themselves are logged at debug level. A
// statement the database refuses (a bug, a missing table) is not an
// outage and is logged as an error each time.
//
// Outcomes are never dropped: the completer keeps a batch and retries it,
// successes and the rest separately, so that a retry does not send again
// what is stored. A success whose commit went through but whose answer
// was lost is recognised on the retry (the row is already succeeded by
// this worker in this attempt) and reported as such.
//
// Two things can leave a job running in the database although the
// worker does not hold it: a claim that committed while its answer was
// lost, and a completion undone by a server crash when synchronous_commit
// is off. The worker's own heartbeat would keep such a job from ever being
// rescued, so when an outage ends the fetcher first hands back every job
// running under this worker's id that it does not hold, then claims at
// once: the LISTEN connection is made again and wake-ups sent while it
// was down are lost.
//
// # Claims and crashes
//
// A claim commits without waiting for its WAL flush (synchronous_commit
// off for the claim's own transaction; Config.DurableClaims turns this
// off). On a durable server the flush was about a third of the pickup
// latency. The price is paid only when PostgreSQL itself crashes (not on
// a clean restart): claims committed in the last few hundred milliseconds
// before the crash are undone, so their jobs become claimable again while
// the workers that claimed them may still be running them. Delivery is
// at least once either way; what changes is that, after a server crash,
// the second run may overlap the first. The first run's outcome then
// fails the completion guard (the job is no longer running under that
// worker and attempt) and is logged as lost, and a handler that completes
// inside its own transaction (CompleteTx) still commits its effects at
// most once. Completions, retries and hand-backs always wait for their
// flush: an outcome reported to a waiting AsyncResult is never undone.
//
// # Revoke, remote control and retention
//
// The notifier also LISTENs on "<schema>.control" and hands messages to
// the controller, which runs them one at a time: revoke (cancel held
// jobs' handlers with cause ErrRevoked; the job ends cancelled, not
// retried), ping, pool-size, add-queue, drop-queue and shutdown, replying
// on "<schema>.control_reply". A malformed message is logged and ignored.
// A revoke notification can be lost (listener down, NoListen), so the
// heartbeat also looks for this worker's running jobs marked
// revoke_terminate. The claim statement skips queues paused in
// pgq.queues. After each round it leads, the maintenance leader deletes
// finished jobs older than RetentionSucceeded, RetentionFailed and
// RetentionCancelled, 1,000 rows per short transaction. See
// docs/control.md. It also runs ANALYZE on pgq.jobs when the table has
// changed more since the last one than it held then, so that plans
// prepared while the table was young do not keep scanning it once it has
// grown (worker/maintenance.go, "Fresh statistics"); only a role that owns
// the table may, and otherwise autovacuum keeps that job.
//
// # Shutdown
//
// When Run's context ends (or a shutdown control message arrives): stop claiming and listening; let running jobs
// finish for up to ShutdownTimeout; cancel the rest (cause ErrShutdown)
// and give them CancelGrace; write every outcome (a job interrupted by the
// shutdown goes back to available without using up an attempt); hand any
// job still held back the same way; stop the heartbeat and delete the
// worker's row. No job is left running under a worker that has stopped.
package worker
