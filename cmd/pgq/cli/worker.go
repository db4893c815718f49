package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/worker"
)

// workerPoolSize is the connection pool of `pgq worker`: the listener has
// its own connection; fetching, completing, heartbeats, maintenance and
// handlers that use the database share these.
const workerPoolSize = 10

// registry returns the task registry the commands run: the one given in
// Options (so a program can build its own pgq binary with its tasks) or a
// new one, with pgq's built-in diagnostic tasks added to either.
func (a *app) registry() *worker.Registry {
	reg := a.opts.Registry
	if reg == nil {
		reg = worker.NewRegistry()
	}
	if !slices.Contains(reg.Tasks(), worker.TaskNoop) {
		worker.RegisterBuiltins(reg)
	}
	return reg
}

// workerLogger is the app's logger when one was given, else a text logger
// at info level (debug with --verbose): a worker's start, stop and outages
// are worth seeing by default, unlike other commands' chatter.
func (a *app) workerLogger(w io.Writer) *slog.Logger {
	if a.opts.Logger != nil {
		return a.opts.Logger
	}
	level := slog.LevelInfo
	if a.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func newWorkerCmd(a *app) *cobra.Command {
	var (
		queues      []string
		concurrency int
		burst       bool
		poll        time.Duration
		shutdown    time.Duration
		workerID    string
		noListen    bool
		autoscale   string
		beat        bool
		retention   struct{ succeeded, failed, cancelled time.Duration }
		metricsAddr string
		metricsAll  bool
		sessionURL  string
		durable     bool
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run jobs from one or more queues until stopped",
		Long: `Claim jobs from the given queues and run the tasks registered in this binary.

SIGINT or SIGTERM stops claiming, lets running jobs finish within
--shutdown-timeout, then hands the rest back to their queues without using
up an attempt; a second signal exits at once. With --burst the worker exits
(status 0) as soon as its queues hold no runnable job, for batch runs and CI.

This binary runs pgq's built-in diagnostic tasks: pgq.noop, pgq.echo (returns
its args), pgq.sleep ({"seconds": n}) and pgq.fail ({"message": s,
"permanent": bool}). To run your own tasks, build a binary that passes its
registry to cli.Main; see examples/custom-binary.`,
		Example: `  pgq worker
  pgq worker -Q high,default -c 20
  pgq worker --autoscale 50,5
  pgq worker --burst -Q reports
  pgq worker --metrics-addr :9090
  pgq enqueue pgq.sleep --args '{"seconds": 2}' && pgq worker --burst`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if concurrency < 0 {
				return usageErrorf(cmd, "--concurrency cannot be negative")
			}
			scale, err := parseAutoscale(autoscale)
			if err != nil {
				return usageErrorf(cmd, "--autoscale: %v", err)
			}
			if scale != nil && cmd.Flags().Changed("concurrency") {
				return usageErrorf(cmd, "set --concurrency or --autoscale, not both")
			}
			ctx := cmd.Context()
			sessionConn, err := a.sessionConnConfig(sessionURL)
			if err != nil {
				return usageErrorf(cmd, "--session-database-url: %v", err)
			}
			s, err := a.openSized(ctx, workerPoolSize)
			if err != nil {
				return err
			}
			defer s.Close()
			s.sessionConn = sessionConn
			reg := a.registry()
			logger := a.workerLogger(cmd.ErrOrStderr())
			wm, err := startWorkerMetrics(s, metricsAddr, metricsAll, cmd.OutOrStdout(), logger)
			if err != nil {
				return err
			}
			defer wm.stop()
			w, err := worker.New(s.pool, reg, &worker.Config{
				Schema:             s.schema,
				Queues:             queues,
				Concurrency:        concurrency,
				Autoscale:          scale,
				Burst:              burst,
				PollInterval:       poll,
				ShutdownTimeout:    shutdown,
				WorkerID:           workerID,
				NoListen:           noListen,
				SessionConnConfig:  sessionConn,
				DurableClaims:      durable,
				RetentionSucceeded: retention.succeeded,
				RetentionFailed:    retention.failed,
				RetentionCancelled: retention.cancelled,
				Logger:             logger,
				Observer:           wm.observer,
			})
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pgq worker %s: queues %s, tasks %s\n",
				w.ID(), strings.Join(orDefault(queues), ","), strings.Join(reg.Tasks(), ", "))
			stop := exitOnSecondSignal(ctx, logger)
			defer stop()
			stopBeat, err := a.startBeat(ctx, s, beat, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer stopBeat()
			if err := w.Run(ctx); err != nil {
				return err
			}
			if ctx.Err() != nil {
				fmt.Fprintln(cmd.OutOrStdout(), "pgq worker: stopped")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&queues, "queues", "Q", nil, `queues to work on, comma-separated (default "default")`)
	f.IntVarP(&concurrency, "concurrency", "c", 0, fmt.Sprintf("jobs run at once (default %d)", worker.ConcurrencyDefault))
	f.StringVar(&autoscale, "autoscale", "", "MAX,MIN: vary the jobs run at once with the load, like Celery's --autoscale")
	f.BoolVar(&burst, "burst", false, "exit 0 once the queues hold no runnable job")
	f.DurationVar(&poll, "poll-interval", 0, fmt.Sprintf("fallback fetch period when no wake-up arrives (default %s)", worker.PollIntervalDefault))
	f.DurationVar(&shutdown, "shutdown-timeout", 0, fmt.Sprintf("how long running jobs may finish after a signal (default %s)", worker.ShutdownTimeoutDefault))
	f.StringVar(&workerID, "worker-id", "", "name of this worker (default host-pid-random)")
	f.BoolVar(&noListen, "no-listen", false, "find jobs by polling only (for pgbouncer in transaction mode without --session-database-url)")
	f.StringVar(&sessionURL, "session-database-url", "", sessionURLUsage)
	f.BoolVar(&durable, "durable-claims", false, "make each claim wait for its WAL flush (slower pickup; no overlapping re-run of a claimed job after a server crash)")
	f.DurationVar(&retention.succeeded, "retention-succeeded", 0, fmt.Sprintf("keep succeeded jobs this long; negative: for ever (default %s)", worker.RetentionSucceededDefault))
	f.DurationVar(&retention.failed, "retention-failed", 0, fmt.Sprintf("keep failed jobs this long; negative: for ever (default %s)", worker.RetentionFailedDefault))
	f.DurationVar(&retention.cancelled, "retention-cancelled", 0, fmt.Sprintf("keep cancelled jobs this long; negative: for ever (default %s)", worker.RetentionCancelledDefault))
	f.BoolVar(&beat, "beat", false, "also run beat, the periodic task scheduler (see pgq beat)")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. :9090; default off)")
	f.BoolVar(&metricsAll, "metrics-cluster", false, "with --metrics-addr, also export the tables' figures (waiting and running jobs, paused queues, workers); enable on one process only")
	return cmd
}

// parseAutoscale reads Celery's "MAX,MIN" form ("" means off; "MAX" alone
// means MIN 1).
func parseAutoscale(spec string) (*worker.Autoscale, error) {
	if spec == "" {
		return nil, nil
	}
	maxPart, minPart, hasMin := strings.Cut(spec, ",")
	maxN, err := strconv.Atoi(strings.TrimSpace(maxPart))
	if err != nil {
		return nil, fmt.Errorf("%q is not MAX,MIN (two whole numbers, e.g. 50,5)", spec)
	}
	minN := 1
	if hasMin {
		if minN, err = strconv.Atoi(strings.TrimSpace(minPart)); err != nil {
			return nil, fmt.Errorf("%q is not MAX,MIN (two whole numbers, e.g. 50,5)", spec)
		}
	}
	if minN < 1 || maxN < minN {
		return nil, fmt.Errorf("%q: need 1 <= MIN <= MAX", spec)
	}
	return &worker.Autoscale{Min: minN, Max: maxN}, nil
}

func orDefault(queues []string) []string {
	if len(queues) == 0 {
		return []string{"default"}
	}
	return queues
}

// exitOnSecondSignal exits the process at once on a signal that arrives
// after ctx ended (the first signal ends ctx and starts the graceful
// shutdown). The returned function stops watching.
// It reports through log, which serialises its writes with the worker's.
func exitOnSecondSignal(ctx context.Context, log *slog.Logger) (stop func()) {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			log.Info("pgq worker: stopping; running jobs may finish (signal again to exit at once)")
		case <-done:
			return
		}
		seen := 0
		for {
			select {
			case <-signals:
				// The signal that ended ctx is delivered here too.
				if seen++; seen >= 2 {
					log.Warn("pgq worker: second signal, exiting without waiting for running jobs")
					os.Exit(ExitInterrupted)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(signals)
		close(done)
	}
}
