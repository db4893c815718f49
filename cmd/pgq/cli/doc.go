// Package cli is the pgq command: its whole command tree, built with cobra,
// as a package so that a program can ship its own pgq binary with the same
// commands (and, later, its own task registry for `pgq worker`):
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
//		defer stop()
//		os.Exit(cli.Main(ctx, os.Args[1:], &cli.Options{}))
//	}
//
// New returns the root command; each subcommand is built by a small
// function in a file of its own (migrate.go, enqueue.go, inspect.go,
// demo.go) from the shared *app, which resolves the global flags and opens
// the database. Adding a command means adding a file and one line in New.
//
// Errors are returned, never printed by the commands: Report prints one
// line, "pgq: <message>", and maps the error to an exit code (1 for
// failures, 2 for usage errors, 130 when interrupted). Command output goes to
// the command's OutOrStdout, diagnostics to log/slog on stderr.
package cli
