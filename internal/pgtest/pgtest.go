// Package pgtest gives tests a real PostgreSQL and an isolated pgq schema.
//
// A package's TestMain calls Main. The first test that asks for a database
// makes Main find one, in this order: PGQ_TEST_DATABASE_URL; a
// testcontainers-go container when a Docker engine answers; a throwaway
// cluster from the machine's PostgreSQL binaries. The server is shared by the
// test binary and stopped when it ends.
//
// Each test then takes a schema of its own, migrated and empty, from a small
// pool (schemas are truncated and reused rather than migrated again), so
// tests run in parallel without seeing each other's jobs, wake-ups or locks.
// The shared pool has an empty search_path: a query that forgets its schema
// fails instead of silently working against the wrong one.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/internal/pgserver"
	"github.com/pgq/pgq/migrations"
)

// EnvURL names the variable that points tests at an existing database.
const EnvURL = "PGQ_TEST_DATABASE_URL"

// EnvDurable, set to 1, gives the private server PostgreSQL's default
// durability settings (fsync on), for benchmarks; tests run without fsync.
const EnvDurable = "PGQ_TEST_DURABLE"

var (
	startOnce sync.Once
	startErr  error
	server    *pgserver.Server
	baseURL   string
	sharedDB  *pgxpool.Pool
	runID     = randomHex(4)

	freeMu      sync.Mutex
	freeSchemas []string
	allSchemas  []string
	nextSchema  int
)

// Main runs the tests of a package and then stops the server they used.
// Use it as: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	cleanup()
	return code
}

func start() {
	startOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		baseURL = os.Getenv(EnvURL)
		if baseURL == "" {
			server, startErr = pgserver.Start(ctx, &pgserver.Options{Durable: os.Getenv(EnvDurable) == "1"})
			if startErr != nil {
				return
			}
			baseURL = server.URL
		}
		cfg, err := pgxpool.ParseConfig(baseURL)
		if err != nil {
			startErr = fmt.Errorf("parse %s: %w", EnvURL, err)
			return
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = ""
		cfg.MaxConns = 20
		sharedDB, startErr = pgxpool.NewWithConfig(ctx, cfg)
		if startErr == nil {
			startErr = sharedDB.Ping(ctx)
		}
	})
}

func cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sharedDB != nil {
		// Only an outside database keeps anything; a private server is deleted whole.
		if server == nil {
			for _, s := range allSchemas {
				_, _ = sharedDB.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE")
			}
		}
		sharedDB.Close()
	}
	if server != nil {
		_ = server.Stop(ctx)
	}
}

// DB is what a test gets: a pool and the name of its own schema.
type DB struct {
	// Pool is shared by every test of the binary; its search_path is empty.
	Pool *pgxpool.Pool
	// Schema is this test's pgq schema, migrated and empty.
	Schema string
	// URL connects to the same database (for subprocesses and dedicated
	// connections); it sets no search_path.
	URL string
}

// URL returns the test database's URL, starting the server if needed.
func URL(t testing.TB) string {
	t.Helper()
	start()
	if startErr != nil {
		t.Fatalf("pgtest: no PostgreSQL for tests: %v", startErr)
	}
	return baseURL
}

// Server returns the private server the tests run against, or nil when they
// use PGQ_TEST_DATABASE_URL. Fault tests use it to restart PostgreSQL.
func Server(t testing.TB) *pgserver.Server {
	URL(t)
	return server
}

// New gives the test an empty, migrated schema of its own, returned to the
// pool when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	URL(t)
	db, release, err := Acquire(context.Background())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(release)
	return db
}

// Acquire is New for code without a testing.TB, such as Example functions:
// the caller must call release when done.
func Acquire(ctx context.Context) (db *DB, release func(), err error) {
	start()
	if startErr != nil {
		return nil, nil, fmt.Errorf("no PostgreSQL for tests: %w", startErr)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	name, fresh := takeSchema()
	if fresh {
		if err := migrations.Up(ctx, sharedDB, name); err != nil {
			return nil, nil, fmt.Errorf("migrate schema %s: %w", name, err)
		}
	}
	release = func() {
		if err := truncate(context.Background(), name); err != nil {
			return // not reused; dropped with the rest at the end
		}
		freeMu.Lock()
		freeSchemas = append(freeSchemas, name)
		freeMu.Unlock()
	}
	return &DB{Pool: sharedDB, Schema: name, URL: baseURL}, release, nil
}

func takeSchema() (name string, fresh bool) {
	freeMu.Lock()
	defer freeMu.Unlock()
	if n := len(freeSchemas); n > 0 {
		name = freeSchemas[n-1]
		freeSchemas = freeSchemas[:n-1]
		return name, false
	}
	nextSchema++
	name = fmt.Sprintf("pgqt_%s_%d", runID, nextSchema)
	allSchemas = append(allSchemas, name)
	return name, true
}

// truncate empties every table of the schema but the migration bookkeeping.
func truncate(ctx context.Context, name string) error {
	rows, err := sharedDB.Query(ctx,
		`SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename <> $2`,
		name, migrations.VersionTable)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		return err
	}
	ids := ""
	for i, tbl := range tables {
		if i > 0 {
			ids += ", "
		}
		ids += pgx.Identifier{name, tbl}.Sanitize()
	}
	_, err = sharedDB.Exec(ctx, "TRUNCATE "+ids+" RESTART IDENTITY CASCADE")
	return err
}

// Conn opens a dedicated connection (for LISTEN, session locks) closed at
// the end of the test.
func Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	url := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
