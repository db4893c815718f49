// Package pgserver provides a throwaway PostgreSQL server for tests and for
// `pgq demo`, so neither needs any database set-up.
//
// Start tries, in order: a testcontainers-go container when a Docker engine
// answers, then a private cluster made with the machine's own initdb and
// postgres binaries in a temporary directory. (Callers that were given a
// database URL, such as PGQ_TEST_DATABASE_URL, use it and never come here.)
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL server that belongs to this process.
type Server struct {
	// URL connects as a superuser to the "postgres" database.
	URL string
	// Kind says where the server came from: "container" or "local".
	Kind string

	local *localCluster // nil for a container
	stop  func(context.Context) error
}

// Options tune Start. The zero value is ready to use.
type Options struct {
	// Log receives the server's own log output. Nil discards it (the
	// local cluster also keeps it in its directory while it runs).
	Log io.Writer
	// NoDocker skips the container attempt.
	NoDocker bool
	// Durable keeps PostgreSQL's default durability (fsync, synchronous
	// commit, full page writes) for benchmarks; tests turn it off for speed.
	Durable bool
}

// Start starts a server and waits until it accepts connections.
func Start(ctx context.Context, opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	var dockerErr error
	if !opts.NoDocker && os.Getenv("PGQ_NO_DOCKER") == "" {
		s, err := startContainer(ctx)
		if err == nil {
			return s, nil
		}
		dockerErr = err
	}
	s, err := startLocal(ctx, opts)
	if err != nil {
		if dockerErr != nil {
			return nil, fmt.Errorf("no PostgreSQL available: docker: %v; local binaries: %w", dockerErr, err)
		}
		return nil, err
	}
	return s, nil
}

// Stop shuts the server down and removes its data. It is safe to call more
// than once.
func (s *Server) Stop(ctx context.Context) error {
	if s == nil || s.stop == nil {
		return nil
	}
	stop := s.stop
	s.stop = nil
	return stop(ctx)
}

// ErrNotRestartable is returned by Restart for servers this process does not
// run itself (containers).
var ErrNotRestartable = errors.New("pgserver: only a local cluster can be restarted")

// Restart stops the server (fast shutdown, or immediate: a crash as far as
// PostgreSQL is concerned) and starts it again on the same port and data.
// Fault tests use it to prove that workers survive an outage.
func (s *Server) Restart(ctx context.Context, immediate bool) error {
	if s.local == nil {
		return ErrNotRestartable
	}
	return s.local.restart(ctx, immediate)
}

// waitReady connects until the server answers or ctx ends.
func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.Background())
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL did not accept connections: %w", last)
		case <-exited:
			return fmt.Errorf("PostgreSQL exited during start-up (last connection error: %v)", last)
		case <-tick.C:
		}
	}
}
