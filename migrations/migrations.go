// Package migrations holds pgq's schema as golang-migrate files, embedded in
// every binary, and runs them against a pool.
//
// A Go program installs or upgrades pgq with one call:
//
//	err := migrations.Up(ctx, pool, "") // "" means the default schema, pgq
//
// and the `pgq migrate up` command does the same from a shell. Each schema
// keeps its own golang-migrate version table (<schema>.schema_migrations),
// so several copies of pgq can live in one database.
package migrations

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/pgq/pgq/internal/schema"
)

//go:embed *.sql
var files embed.FS

// VersionTable is the name of golang-migrate's bookkeeping table inside the
// pgq schema.
const VersionTable = "schema_migrations"

// Latest returns the version of the newest embedded migration.
func Latest() uint {
	entries, err := fs.Glob(files, "*.up.sql")
	if err != nil || len(entries) == 0 {
		return 0
	}
	var v uint
	if _, err := fmt.Sscanf(entries[len(entries)-1], "%d_", &v); err != nil {
		return 0
	}
	return v
}

// Up applies every migration not yet applied to the schema (created when
// missing). It is safe to call from several processes at once: golang-migrate
// serialises them with an advisory lock.
func Up(ctx context.Context, pool *pgxpool.Pool, schemaName string) error {
	return run(ctx, pool, schemaName, func(m *migrate.Migrate) error { return m.Up() })
}

// Down rolls back the given number of migrations; steps <= 0 rolls back all
// of them, which drops every pgq table and the jobs in it.
func Down(ctx context.Context, pool *pgxpool.Pool, schemaName string, steps int) error {
	return run(ctx, pool, schemaName, func(m *migrate.Migrate) error {
		if steps <= 0 {
			return m.Down()
		}
		return m.Steps(-steps)
	})
}

// Version reports the schema's applied migration version (0 when none) and
// whether a migration failed halfway ("dirty").
func Version(ctx context.Context, pool *pgxpool.Pool, schemaName string) (version uint, dirty bool, err error) {
	err = run(ctx, pool, schemaName, func(m *migrate.Migrate) error {
		var verr error
		version, dirty, verr = m.Version()
		if errors.Is(verr, migrate.ErrNilVersion) {
			return nil
		}
		return verr
	})
	return version, dirty, err
}

func run(ctx context.Context, pool *pgxpool.Pool, schemaName string, step func(*migrate.Migrate) error) error {
	name := schema.OrDefault(schemaName)
	if err := schema.Check(name); err != nil {
		return err
	}
	if err := createSchema(ctx, pool, name); err != nil {
		return err
	}

	src, err := newSource(name)
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	driver, err := migratepgx.WithInstance(sqlDB, &migratepgx.Config{
		SchemaName:      name,
		MigrationsTable: VersionTable,
	})
	if err != nil {
		return fmt.Errorf("open migration table %s.%s: %w", name, VersionTable, err)
	}
	m, err := migrate.NewWithInstance("pgq", src, "pgx5", driver)
	if err != nil {
		return fmt.Errorf("prepare migrations: %w", err)
	}
	defer m.Close()

	// golang-migrate has no context; stop between steps when ctx ends.
	stop := context.AfterFunc(ctx, func() {
		select {
		case m.GracefulStop <- true:
		default:
		}
	})
	defer stop()

	if err := step(m); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate schema %q: %w", name, err)
	}
	return nil
}

// createSchema makes sure the schema exists, because golang-migrate keeps
// its version table inside it.
func createSchema(ctx context.Context, pool *pgxpool.Pool, name string) error {
	// The name passed schema.Check, and Sanitize quotes it anyway.
	_, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P06") {
		return nil // created by a concurrent migrator
	}
	if err != nil {
		return fmt.Errorf("create schema %q: %w", name, err)
	}
	return nil
}

// newSource serves the embedded files with the schema name put in place.
func newSource(name string) (source.Driver, error) {
	d, err := iofs.New(files, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	return rewritingSource{Driver: d, schema: name}, nil
}

type rewritingSource struct {
	source.Driver
	schema string
}

func (s rewritingSource) ReadUp(version uint) (io.ReadCloser, string, error) {
	r, id, err := s.Driver.ReadUp(version)
	return s.rewrite(r, id, err)
}

func (s rewritingSource) ReadDown(version uint) (io.ReadCloser, string, error) {
	r, id, err := s.Driver.ReadDown(version)
	return s.rewrite(r, id, err)
}

func (s rewritingSource) rewrite(r io.ReadCloser, id string, err error) (io.ReadCloser, string, error) {
	if err != nil {
		return r, id, err
	}
	defer r.Close()
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, id, err
	}
	out := schema.Rewrite(s.schema, string(body))
	return io.NopCloser(bytes.NewReader([]byte(out))), id, nil
}
