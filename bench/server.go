package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/internal/pgserver"
	"github.com/pgq/pgq/internal/queuebench"
	"github.com/pgq/pgq/migrations"
)

// poolSize is the most connections one system's pool opens: the ramp's
// producers plus the worker's own.
const poolSize = 80

// server is the PostgreSQL every system runs on, and an admin connection
// that creates and drops their databases.
type server struct {
	url   string // superuser URL of the maintenance database
	kind  string // "given", "local" or "container"
	own   *pgserver.Server
	admin *pgxpool.Pool
	seq   atomic.Int64
	runID string
}

// startServer connects to the server at url, or starts a private one with
// PostgreSQL's default durability when url is empty.
func startServer(ctx context.Context, url string, log io.Writer) (*server, error) {
	s := &server{url: url, kind: "given", runID: fmt.Sprintf("%x", time.Now().Unix()&0xffffff)}
	if url == "" {
		fmt.Fprintln(log, "bench: starting a private PostgreSQL with default durability settings")
		srv, err := pgserver.Start(ctx, &pgserver.Options{Durable: true})
		if err != nil {
			return nil, fmt.Errorf("start PostgreSQL: %w (or pass -database-url)", err)
		}
		s.own, s.url, s.kind = srv, srv.URL, srv.Kind
	}
	admin, err := pgxpool.New(ctx, s.url)
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	s.admin = admin
	return s, nil
}

// Close drops the connection and stops a private server.
func (s *server) Close() {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.own != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.own.Stop(ctx)
	}
}

// database creates an empty database for one run of one system and
// returns its URL and a function that drops it.
func (s *server) database(ctx context.Context, system string) (url string, drop func(context.Context) error, err error) {
	name := fmt.Sprintf("bench_%s_%s_%d", system, s.runID, s.seq.Add(1))
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func(ctx context.Context) error {
		_, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	}
	return withDatabase(s.url, name), drop, nil
}

// pool opens a pool on a benchmark database.
func (s *server) pool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = poolSize
	return pgxpool.NewWithConfig(ctx, cfg)
}

// open creates a database, a pool on it, and runs setup; cleanup closes
// the pool and drops the database.
func (s *server) open(ctx context.Context, system string, setup func(*pgxpool.Pool) (queuebench.System, error)) (queuebench.System, func(context.Context) error, error) {
	url, drop, err := s.database(ctx, system)
	if err != nil {
		return nil, nil, err
	}
	pool, err := s.pool(ctx, url)
	if err != nil {
		return nil, nil, errors.Join(err, drop(context.WithoutCancel(ctx)))
	}
	cleanup := func(ctx context.Context) error {
		pool.Close()
		return drop(ctx)
	}
	sys, err := setup(pool)
	if err != nil {
		return nil, nil, errors.Join(err, cleanup(context.WithoutCancel(ctx)))
	}
	return sys, cleanup, nil
}

func (s *server) pgqEntrant() queuebench.Entrant {
	return queuebench.Entrant{Name: "pgq", Open: func(ctx context.Context) (queuebench.System, func(context.Context) error, error) {
		return s.open(ctx, "pgq", func(pool *pgxpool.Pool) (queuebench.System, error) {
			if err := migrations.Up(ctx, pool, ""); err != nil {
				return nil, err
			}
			return queuebench.NewPGQ(pool, "pgq", nil)
		})
	}}
}

func (s *server) riverEntrant() queuebench.Entrant {
	return queuebench.Entrant{Name: "River", Open: func(ctx context.Context) (queuebench.System, func(context.Context) error, error) {
		return s.open(ctx, "river", func(pool *pgxpool.Pool) (queuebench.System, error) {
			if err := migrateRiver(ctx, pool); err != nil {
				return nil, err
			}
			return &riverSystem{pool: pool, log: discardLogger}, nil
		})
	}}
}
