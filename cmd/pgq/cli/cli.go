package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/worker"
)

// Environment variables read by the global flags, in the order they are
// consulted after the flag itself.
const (
	EnvDatabaseURL         = "PGQ_DATABASE_URL"
	EnvDatabaseURLFallback = "DATABASE_URL"
	EnvSchema              = "PGQ_SCHEMA"
)

// Options customise the command tree. A nil *Options means all defaults.
// Fields will be added (a task registry for `pgq worker`, for one); the zero
// value of each keeps today's behaviour.
type Options struct {
	// Getenv looks up environment variables; nil means os.Getenv. Tests
	// pass their own so that they neither depend on nor change the process
	// environment.
	Getenv func(string) string
	// Logger receives diagnostics. Nil means a text logger on the
	// command's error stream, at warning level unless --verbose is given
	// (info level for `pgq worker`).
	Logger *slog.Logger
	// Registry holds the tasks `pgq worker` runs. Nil means pgq's built-in
	// diagnostic tasks only; a program that passes its own registry gets
	// the whole command set with its tasks compiled in (the built-ins are
	// added to it unless it has them).
	Registry *worker.Registry
}

// app is the state shared by every command of one execution: the options,
// the global flags and what they resolve to.
type app struct {
	opts    Options
	root    *cobra.Command
	dbURL   string // --database-url
	schema  string // --schema
	verbose bool   // --verbose
	log     *slog.Logger
}

func (a *app) getenv(key string) string {
	if a.opts.Getenv != nil {
		return a.opts.Getenv(key)
	}
	return os.Getenv(key)
}

// New returns the root `pgq` command with every subcommand. Execute it with
// ExecuteContext; Run and Main do that and handle its error.
func New(opts *Options) *cobra.Command {
	a := &app{}
	if opts != nil {
		a.opts = *opts
	}
	root := &cobra.Command{
		Use:   "pgq",
		Short: "pgq is a PostgreSQL-backed, transactional job queue",
		Long: `pgq is a PostgreSQL-backed, transactional job queue.

The database is found with --database-url, else $` + EnvDatabaseURL + `, else $` + EnvDatabaseURLFallback + `;
pgq's tables live in the schema given by --schema, else $` + EnvSchema + `, else "pgq".
New here? Run "pgq demo": it needs no database set-up at all.`,
		Example: `  pgq demo
  export PGQ_DATABASE_URL=postgres://app@localhost/app
  pgq migrate up
  pgq enqueue emails.send --args '{"to":"ada@example.com"}'
  pgq inspect queues`,
		Args:          noArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			a.setLogger(cmd)
		},
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &UsageError{Err: err, CommandPath: cmd.CommandPath()}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.dbURL, "database-url", "", "PostgreSQL URL (default $"+EnvDatabaseURL+", else $"+EnvDatabaseURLFallback+")")
	pf.StringVar(&a.schema, "schema", "", "schema holding pgq's tables (default $"+EnvSchema+`, else "pgq")`)
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log diagnostics to stderr")
	a.root = root

	root.AddCommand(
		newMigrateCmd(a),
		newEnqueueCmd(a),
		newInspectCmd(a),
		newDemoCmd(a),
		newWorkerCmd(a),
		newResultCmd(a),
		newRevokeCmd(a), newRetryCmd(a), newDeleteCmd(a), newPurgeCmd(a), newQueueCmd(a), newControlCmd(a),
		newBeatCmd(a),
		newPeriodicCmd(a),
		newLockCmd(a),
		newLimitCmd(a),
		newBenchCmd(a),
		newDashboardCmd(a),
		newRolesCmd(a),
	)
	return root
}

func (a *app) setLogger(cmd *cobra.Command) {
	if a.opts.Logger != nil {
		a.log = a.opts.Logger
		return
	}
	level := slog.LevelWarn
	if a.verbose {
		level = slog.LevelDebug
	}
	a.log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}

// logger returns the diagnostics logger; it is never nil.
func (a *app) logger() *slog.Logger {
	if a.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.log
}

// Run executes the pgq command with args (without the program name) and
// returns its error, printing nothing about it: see Report.
func Run(ctx context.Context, args []string, opts *Options) error {
	root := New(opts)
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// Main runs the pgq command with args, reports its error on stderr and
// returns the process exit code.
func Main(ctx context.Context, args []string, opts *Options) int {
	return Report(os.Stderr, Run(ctx, args, opts))
}

// Exit codes returned by Report and Main.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// Report writes err to w as "pgq: <message>" (nothing when err is nil) and
// returns the exit code for it.
func Report(w io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "pgq: interrupted")
		return ExitInterrupted
	}
	fmt.Fprintf(w, "pgq: %s\n", strings.TrimSpace(err.Error()))
	if u, ok := errors.AsType[*UsageError](err); ok {
		if u.CommandPath != "" {
			fmt.Fprintf(w, "Run '%s --help' for usage.\n", u.CommandPath)
		}
		return ExitUsage
	}
	return ExitError
}

// UsageError is an error in how a command was called (an unknown flag, a
// missing argument); Report gives it exit code 2 and points at --help.
type UsageError struct {
	Err error
	// CommandPath is the command that was misused, such as "pgq enqueue".
	CommandPath string
}

// Error returns the message of the underlying error.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

// usageErrorf returns a UsageError about cmd.
func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...), CommandPath: cmd.CommandPath()}
}

// noArgs accepts no positional arguments; for a command with subcommands it
// names the unknown one.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usageErrorf(cmd, "unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return usageErrorf(cmd, "%s takes no arguments, got %q", cmd.CommandPath(), args)
}

// exactArgs accepts exactly the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usageErrorf(cmd, "missing %s", strings.Join(names[len(args):], " and "))
		}
		if len(args) > len(names) {
			return usageErrorf(cmd, "too many arguments: %q (expected %s)", args[len(names):], strings.Join(names, " "))
		}
		return nil
	}
}

// groupCmd returns a command that only holds subcommands: run bare, it
// prints its help; with an unknown subcommand, it says so.
func groupCmd(use, short, example string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
}
