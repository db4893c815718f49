// Package periodic is pgq's beat: cron and interval schedules that enqueue
// one job per tick, with any number of beat processes and exactly one
// leader.
//
// # Defining tasks
//
// In Go, give a Beat its entries; the leader stores them in
// pgq.periodic_tasks when it takes the lead:
//
//	b, err := periodic.New(pool, &periodic.Config{Entries: []periodic.Entry{
//		{Name: "cleanup", Schedule: "@hourly", Args: Cleanup{}},
//		{Name: "report", Schedule: "30 7 * * mon-fri", TimeZone: "Europe/Berlin",
//			Args: queue.Raw{Task: "reports.build", Args: json.RawMessage(`{"kind":"daily"}`)}},
//		{Name: "ping", Schedule: periodic.Every(30 * time.Second), Args: Ping{}, Missed: periodic.Skip},
//	}})
//	...
//	err = b.Run(ctx)
//
// The table is the schedule of record, editable while beat runs: `pgq
// periodic add|enable|disable|remove|run-now`, Client, or plain SQL. A
// trigger NOTIFYs the leader on every edit; it also re-reads the table
// every RefreshInterval. Tasks that came from code and are no longer in
// the leader's Config.Entries are disabled, not deleted.
//
// # Leader election
//
// Each Beat holds one connection of its own. On it, it tries
// pg_try_advisory_lock(hashtext('<schema>.beat')), a session-level lock:
// the winner leads for as long as that connection lives, the others try
// again every ElectionInterval. The leader does all its work on that
// connection, so a leader whose connection fails cannot enqueue anything
// more: its next statement fails, and it steps down and reconnects. When
// a leader's process dies, the kernel closes its socket and PostgreSQL
// ends the session and releases the lock at once; a standby takes it at
// its next try. When the leader's host vanishes without closing the
// socket, the server ends the session after SessionTimeout (both
// idle_session_timeout and idle_in_transaction_session_timeout are set on
// beat connections, and live beats never stay quiet that long). A leader
// that stops cleanly unlocks and NOTIFYs the standbys, which take over at
// once.
//
// # Exactly one job per tick
//
// Ticks are deterministic instants (cron ticks in the task's zone,
// intervals aligned to the Unix epoch), so every process computes the same
// ones. A tick is enqueued in one transaction that (1) advances the task's
// last_tick, only if the task is still enabled with the same spec and the
// tick is later than last_tick (the row lock serialises concurrent
// leaders, and the loser re-reads the row and matches nothing), (2)
// inserts (name, tick) into pgq.periodic_runs, whose primary key refuses a
// second row for the tick (ON CONFLICT DO NOTHING), and (3) enqueues the
// job with queue.Client.EnqueueTx only when both happened. The job and
// the run row commit together or not at all, so even two processes that
// both believe they lead (a leader whose dead connection the server has
// not noticed yet, and its successor) cannot enqueue a tick twice.
// queue.Options.UniqueKey would not do: it only holds while a job is
// unfinished.
//
// # Missed ticks
//
// Ticks that pass while nobody leads are missed. With RunOnce (the
// default) the leader enqueues one job for the latest missed tick, and
// none for the earlier ones; with Skip it enqueues none, unless the tick
// is less than Grace old. A task counts ticks only from when it was
// created, last enabled or last rescheduled, so enabling a task never
// fires a tick from before.
//
// By default a job expires at its task's next tick: a backlog of one
// periodic task never piles up behind stopped workers.
//
// # Time zones and daylight saving
//
// Cron fields are read in the task's IANA zone by robfig/cron. A wall
// time that does not exist (02:30 on 2026-03-08 in America/New_York) is
// skipped: "30 2 * * *" has no tick that day. A wall time that happens
// twice (01:30 on 2026-11-01) ticks twice, at 01:30 EDT and an hour later
// at 01:30 EST. Use UTC, or avoid 01:00-03:00, for tasks that must run
// exactly once a day. docs/periodic.md has the details.
package periodic
