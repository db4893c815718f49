package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// Worker runs jobs from one or more queues. Make one with New and call
// Run; a Worker runs once.
type Worker struct {
	cfg   Config
	pool  *pgxpool.Pool
	q     *db.Queries
	tasks map[string]*task
	log   *slog.Logger

	// queues are the queues claimed from now; a control message may
	// change them (add-queue, drop-queue).
	queues atomic.Pointer[queueSet]
	// scale is the autoscale range now (nil: fixed concurrency), and
	// ceiling the most slots there may be (the workers row's
	// concurrency); the pool-size control message changes both.
	scale   atomic.Pointer[Autoscale]
	ceiling atomic.Int64
	// stopRequested is closed by the shutdown control message.
	stopRequested chan struct{}
	stopOnce      sync.Once
	startedAt     time.Time

	ran atomic.Bool

	// slots counts claimed jobs whose outcome has not been handed to the
	// completer yet. Only the fetcher adds; executions subtract.
	slots atomic.Int64
	// limit is how many slots there are now: Concurrency, or with
	// Autoscale a number between Min and Max. The fetcher sets it, and
	// the pool-size control message.
	limit    atomic.Int64
	resolved chan struct{} // a slot was given back (shutdown waits on it)

	// held maps the jobs this worker has claimed and not yet written an
	// outcome for to their execution: what the database should show as
	// running under this worker (see reconcile), and what a revoke
	// cancels. pendingRevokes are revokes that arrived for jobs not held
	// (yet): a claim whose answer is still on its way.
	heldMu         sync.Mutex
	held           map[int64]*execution
	pendingRevokes map[int64]time.Time

	health health
	execWG sync.WaitGroup
	// jobsCtx ends, with its cause, when the worker stops its jobs
	// (stopJobs); it is not the parent of the handlers' contexts.
	jobsCtx       context.Context
	cancelJobsCtx context.CancelCauseFunc

	notifier   *notifier
	fetcher    *fetcher
	completer  *completer
	heartbeat  *heartbeat
	maintainer *maintainer
	controller *controller
}

// New returns a worker that takes jobs for the tasks in reg from pool. It
// checks cfg (a nil cfg means all defaults) but does not touch the
// database. Tasks registered in reg after New are not seen by the worker.
func New(pool *pgxpool.Pool, reg *Registry, cfg *Config) (*Worker, error) {
	if pool == nil {
		return nil, errors.New("worker.New: pool is nil")
	}
	if reg == nil {
		return nil, errors.New("worker.New: registry is nil")
	}
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg:            c,
		pool:           pool,
		q:              db.New(schema.Wrap(c.Schema, pool)),
		tasks:          reg.snapshot(),
		log:            c.Logger.With("worker_id", c.WorkerID),
		resolved:       make(chan struct{}, 1),
		held:           map[int64]*execution{},
		pendingRevokes: map[int64]time.Time{},
		stopRequested:  make(chan struct{}),
	}
	w.health.w = w
	w.addWorkflowBuiltins()
	w.queues.Store(newQueueSet(c.Queues))
	w.limit.Store(int64(c.Concurrency))
	w.ceiling.Store(int64(c.Concurrency))
	if c.Autoscale != nil {
		w.limit.Store(int64(c.Autoscale.Min))
		w.scale.Store(c.Autoscale)
	}
	w.jobsCtx, w.cancelJobsCtx = context.WithCancelCause(context.Background())
	w.notifier = newNotifier(w)
	w.fetcher = newFetcher(w)
	w.completer = newCompleter(w)
	w.heartbeat = &heartbeat{w: w}
	w.maintainer = &maintainer{w: w}
	w.controller = newController(w)
	return w, nil
}

// ID returns the worker's id, as stored in jobs.worker_id.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Concurrency returns how many jobs the worker may run at once now:
// Config.Concurrency, or with Config.Autoscale the current number
// between Min and Max.
func (w *Worker) Concurrency() int { return int(w.limit.Load()) }

// Queues returns the queues the worker takes jobs from now:
// Config.Queues, as changed since by add-queue and drop-queue control
// messages.
func (w *Worker) Queues() []string { return slices.Clone(w.queues.Load().list) }

// queueSet is an immutable list of queues with a membership map; the
// worker swaps it whole when a control message changes its queues.
type queueSet struct {
	list []string
	has  map[string]bool
}

func newQueueSet(list []string) *queueSet {
	s := &queueSet{list: slices.Clone(list), has: make(map[string]bool, len(list))}
	for _, q := range list {
		s.has[q] = true
	}
	return s
}

// requestStop makes Run shut down as if its context had ended.
func (w *Worker) requestStop() { w.stopOnce.Do(func() { close(w.stopRequested) }) }

// Run registers the worker, takes and runs jobs until ctx ends (or, in
// Burst mode, until nothing is left to run), then shuts down in this
// order: stop claiming; let running jobs finish within ShutdownTimeout;
// cancel the rest and give them CancelGrace; write every outcome; hand
// the jobs still held back to their queues without using up an attempt;
// stop the heartbeat and remove the worker's row.
//
// Run returns nil after a clean shutdown, and an error when the worker
// could not start (the schema is not migrated, the database is
// unreachable) or could not hand its jobs back (they are then rescued
// once its heartbeat expires).
func (w *Worker) Run(ctx context.Context) error {
	if !w.ran.CompareAndSwap(false, true) {
		return errors.New("worker: Run was called twice; make a new Worker")
	}
	defer w.stopJobs(ErrShutdown)
	w.startedAt = time.Now()
	if err := w.register(ctx); err != nil {
		return err
	}
	if err := w.rescuePreviousProcess(ctx); err != nil {
		return err
	}
	attrs := []any{"queues", w.Queues(), "concurrency", w.Concurrency(), "tasks", len(w.tasks), "schema", w.cfg.Schema}
	if a := w.cfg.Autoscale; a != nil {
		attrs = append(attrs, "autoscale_min", a.Min, "autoscale_max", a.Max)
	}
	w.log.Info("worker started", attrs...)

	bg := context.WithoutCancel(ctx)
	w.heartbeat.Start(bg)
	w.completer.Start(bg)
	w.maintainer.Start(bg)
	w.controller.Start(bg)
	if !w.cfg.NoListen {
		w.notifier.Start(bg)
		// Listen before the first fetch: a job enqueued from now on is seen
		// either by that fetch or by its wake-up.
		select {
		case <-w.notifier.ready:
		case <-ctx.Done():
		}
	}
	w.fetcher.Start(bg)

	select {
	case <-ctx.Done():
	case <-w.stopRequested:
		w.log.Info("shutdown asked for by a control message")
	case <-w.fetcher.drained:
		w.log.Info("burst mode: no runnable jobs left")
	}
	return w.shutdown()
}

// retryIdempotent runs fn, an idempotent statement, up to three times
// while ctx allows. A pooled connection can be dead without the pool
// knowing (the server was restarted, or an administrator terminated the
// backend); the first statement on it fails, and a retry gets a fresh one.
// Shutdown uses it, so that one stale connection does not leave jobs
// running until the rescue.
func retryIdempotent(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = fn(); err == nil || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(retryBackoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}

// shutdown runs the shutdown order documented on Run.
func (w *Worker) shutdown() error {
	start := time.Now()
	w.fetcher.Stop()
	w.notifier.Stop()
	w.controller.Stop()
	w.maintainer.Stop()

	clean := w.waitSlots(w.cfg.ShutdownTimeout)
	if !clean {
		w.log.Warn("shutdown timeout: cancelling running jobs", "running", w.slots.Load(), "timeout", w.cfg.ShutdownTimeout)
		w.stopJobs(ErrShutdown)
		clean = w.waitSlots(w.cfg.CancelGrace)
		if !clean {
			w.log.Error("handlers ignored cancellation: their jobs go back to the queue while they still run", "running", w.slots.Load(), "grace", w.cfg.CancelGrace)
		}
	}
	if clean {
		w.execWG.Wait() // every slot is resolved: only returns are left
	}
	w.completer.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	var released []int64
	err := retryIdempotent(ctx, func() (err error) {
		released, err = w.q.ReleaseWorkerJobs(ctx, w.cfg.WorkerID)
		return err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("hand back running jobs: %w (they are rescued once the heartbeat expires)", err))
	} else if len(released) > 0 {
		w.log.Warn("jobs handed back to their queues", "jobs", len(released))
	}
	w.heartbeat.Stop()
	if len(errs) == 0 {
		if err := retryIdempotent(ctx, func() error { return w.q.DeleteWorker(ctx, w.cfg.WorkerID) }); err != nil {
			errs = append(errs, fmt.Errorf("remove worker row: %w", err))
		}
	}
	w.log.Info("worker stopped", "duration", time.Since(start))
	return errors.Join(errs...)
}

// waitSlots waits until no job holds a slot, for at most d.
func (w *Worker) waitSlots(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for w.slots.Load() > 0 {
		select {
		case <-w.resolved:
		case <-timer.C:
			return w.slots.Load() == 0
		}
	}
	return true
}

func (w *Worker) register(ctx context.Context) error {
	meta, _ := json.Marshal(map[string]any{"tasks": taskNames(w.tasks)})
	host, _ := os.Hostname()
	err := w.q.RegisterWorker(ctx, db.RegisterWorkerParams{
		ID: w.cfg.WorkerID, Host: host, Pid: int32(os.Getpid()),
		Queues: w.Queues(), Concurrency: int32(w.ceiling.Load()), Meta: meta,
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") {
			return fmt.Errorf("register worker: %w: schema %q has no pgq.workers table; run `pgq migrate up --schema %s` (or migrations.Up) first",
				queue.ErrNotMigrated, w.cfg.Schema, w.cfg.Schema)
		}
		return fmt.Errorf("register worker %s: %w", w.cfg.WorkerID, err)
	}
	return nil
}

// stopJobs ends the context of every running handler with cause, and
// jobsCtx. A handler's context does not derive from jobsCtx: with a
// child per running job, that parent cost a map insertion and a
// deletion under its one lock per job, from every goroutine. The held
// jobs are cancelled one by one instead: a job leaves the held set only
// once its outcome is written, after its handler returned or was
// abandoned (a handler abandoned at its time limit or revoke has had
// its context ended already).
func (w *Worker) stopJobs(cause error) {
	w.cancelJobsCtx(cause)
	w.heldMu.Lock()
	held := make([]*execution, 0, len(w.held))
	for _, e := range w.held {
		held = append(held, e)
	}
	w.heldMu.Unlock()
	for _, e := range held {
		e.cancel(cause)
	}
}

// finish hands an attempt's outcome to the completer and frees its slot.
// Exactly one caller per execution gets here (execution.resolve).
func (w *Worker) finish(o *outcome) {
	w.completer.add(o)
	w.slots.Add(-1)
	select {
	case w.resolved <- struct{}{}:
	default:
	}
	w.fetcher.slotFreed()
}

// hold records claimed jobs as held until their outcome is written, and
// revokes those a revoke arrived for before the claim's answer.
func (w *Worker) hold(execs []*execution) {
	var revoke []*execution
	w.heldMu.Lock()
	for _, e := range execs {
		w.held[e.row.ID] = e
		if _, ok := w.pendingRevokes[e.row.ID]; ok {
			delete(w.pendingRevokes, e.row.ID)
			revoke = append(revoke, e)
		}
	}
	w.heldMu.Unlock()
	for _, e := range revoke {
		e.revoke()
	}
}

// unhold forgets jobs whose outcome the completer is done with.
func (w *Worker) unhold(outs []*outcome) {
	w.heldMu.Lock()
	for _, o := range outs {
		if e := w.held[o.id]; e != nil && e.row.Attempt == o.attempt {
			delete(w.held, o.id)
		}
	}
	w.heldMu.Unlock()
}

// pendingRevokeTTL is how long a revoke for a job this worker does not
// hold is remembered, in case the job's claim is still on its way.
const pendingRevokeTTL = time.Minute

// revokeJob cancels the handler of a held job (cause ErrRevoked), or
// remembers the id for a while in case its claim has not returned yet.
// It reports whether the job was held.
func (w *Worker) revokeJob(id int64) bool {
	w.heldMu.Lock()
	e := w.held[id]
	if e == nil {
		now := time.Now()
		for k, at := range w.pendingRevokes {
			if now.Sub(at) > pendingRevokeTTL {
				delete(w.pendingRevokes, k)
			}
		}
		w.pendingRevokes[id] = now
	}
	w.heldMu.Unlock()
	if e == nil {
		return false
	}
	e.revoke()
	return true
}

// heldIDs returns the ids of the jobs held, at most n of them, and how
// many there are.
func (w *Worker) heldIDs(n int) ([]int64, int) {
	w.heldMu.Lock()
	defer w.heldMu.Unlock()
	ids := make([]int64, 0, min(n, len(w.held)))
	for id := range w.held {
		if len(ids) == n {
			break
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, len(w.held)
}

// reconcile hands back to their queues the jobs that the database says
// this worker runs but that it does not hold: after an outage, a claim
// may have committed although its answer was lost, and a crash of a
// server with synchronous_commit = off may have undone a completion the
// worker was told had committed. The worker's own heartbeat would keep
// such jobs from ever being rescued. Only the fetcher calls it, between
// two claims, so no claim is in flight; an outcome written meanwhile
// leaves the running state before its job leaves the held set.
func (w *Worker) reconcile(ctx context.Context) error {
	w.heldMu.Lock()
	held := make([]int64, 0, len(w.held))
	for id := range w.held {
		held = append(held, id)
	}
	w.heldMu.Unlock()
	released, err := w.q.ReleaseUnheldJobs(ctx, db.ReleaseUnheldJobsParams{WorkerID: w.cfg.WorkerID, Held: held})
	if err != nil {
		return fmt.Errorf("reconcile running jobs: %w", err)
	}
	if len(released) > 0 {
		w.log.Warn("jobs running in the database but not in this worker handed back to their queues (a claim whose answer was lost, or a completion undone by a crash)",
			"jobs", len(released), "job_ids", released[:min(len(released), 20)])
	}
	return nil
}

func taskNames(m map[string]*task) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	return names
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
