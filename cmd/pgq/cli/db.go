package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgq/pgq/internal/schema"
	"github.com/pgq/pgq/queue"
)

// ConnectTimeoutDefault bounds one connection attempt when the URL sets no
// connect_timeout, so that an unreachable host fails in seconds.
const ConnectTimeoutDefault = 10 * time.Second

// errNoDatabaseURL is returned when neither the flag nor the environment
// names a database.
var errNoDatabaseURL = errors.New("no database URL: pass --database-url or set " + EnvDatabaseURL + " (or " + EnvDatabaseURLFallback + "); `pgq demo` needs none")

// EnvSessionDatabaseURL names the variable that --session-database-url
// defaults to.
const EnvSessionDatabaseURL = "PGQ_SESSION_DATABASE_URL"

// sessionURLUsage is the help of --session-database-url.
const sessionURLUsage = "PostgreSQL URL for the connections that need a session (LISTEN, beat's leader lock), when --database-url goes through pgbouncer in transaction mode (default $" + EnvSessionDatabaseURL + "; docs/pgbouncer.md)"

// sessionConnConfig resolves --session-database-url (flag), then
// PGQ_SESSION_DATABASE_URL; nil when neither is set, meaning "use the
// pool's settings".
func (a *app) sessionConnConfig(flag string) (*pgx.ConnConfig, error) {
	u := strings.TrimSpace(flag)
	if u == "" {
		u = strings.TrimSpace(a.getenv(EnvSessionDatabaseURL))
	}
	if u == "" {
		return nil, nil
	}
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("session database URL: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeoutDefault
	}
	return cfg, nil
}

// databaseURL resolves --database-url, then PGQ_DATABASE_URL, then
// DATABASE_URL. ok is false when none is set.
func (a *app) databaseURL() (u string, ok bool) {
	for _, v := range []string{a.dbURL, a.getenv(EnvDatabaseURL), a.getenv(EnvDatabaseURLFallback)} {
		if v = strings.TrimSpace(v); v != "" {
			return v, true
		}
	}
	return "", false
}

// schemaName resolves --schema, then PGQ_SCHEMA, then "pgq", and checks it.
func (a *app) schemaName() (string, error) {
	name := a.schema
	if f := a.root.PersistentFlags().Lookup("schema"); f == nil || !f.Changed {
		if env := a.getenv(EnvSchema); env != "" {
			name = env
		}
	}
	name = schema.OrDefault(name)
	if err := schema.Check(name); err != nil {
		return "", fmt.Errorf("--schema: %w", err)
	}
	return name, nil
}

// schemaExplicit reports whether the user chose a schema (flag or variable).
func (a *app) schemaExplicit() bool {
	f := a.root.PersistentFlags().Lookup("schema")
	return (f != nil && f.Changed) || a.getenv(EnvSchema) != ""
}

// connectURLSized opens a pool of at most maxConns connections to the
// database at u and checks that the server answers. The caller closes it.
func (a *app) connectURLSized(ctx context.Context, u string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		// pgx redacts the password in this message.
		return nil, fmt.Errorf("invalid database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeoutDefault
	}
	cfg.MaxConns = maxConns
	where := serverAddr(cfg.ConnConfig.Config)
	a.logger().Debug("connecting", "server", where, "database", cfg.ConnConfig.Database, "user", cfg.ConnConfig.User)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %s", where, connectCause(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot connect to PostgreSQL at %s: %s", where, connectCause(err))
	}
	return pool, nil
}

// session is an open connection to pgq: a pool and a client on the
// configured schema.
type session struct {
	pool   *pgxpool.Pool
	client *queue.Client
	schema string
	// sessionConn, when set, is for connections that need a session
	// (--session-database-url).
	sessionConn *pgx.ConnConfig
}

func (s *session) Close() { s.pool.Close() }

// open connects and, when migrated is true, checks that the schema is
// installed, so that commands fail with "run `pgq migrate up`" rather than
// a driver error.
func (a *app) open(ctx context.Context, migrated bool) (*session, error) {
	return a.openPool(ctx, migrated, 4)
}

// openSized opens a session on a migrated schema with a pool of at most
// maxConns connections (a worker needs more than a one-shot command).
func (a *app) openSized(ctx context.Context, maxConns int32) (*session, error) {
	return a.openPool(ctx, true, maxConns)
}

func (a *app) openPool(ctx context.Context, migrated bool, maxConns int32) (*session, error) {
	name, err := a.schemaName()
	if err != nil {
		return nil, err
	}
	u, ok := a.databaseURL()
	if !ok {
		return nil, errNoDatabaseURL
	}
	pool, err := a.connectURLSized(ctx, u, maxConns)
	if err != nil {
		return nil, err
	}
	s, err := newSession(ctx, pool, name, migrated)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func newSession(ctx context.Context, pool *pgxpool.Pool, name string, migrated bool) (*session, error) {
	client, err := queue.NewClient(pool, &queue.Config{Schema: name})
	if err != nil {
		return nil, err
	}
	if migrated {
		if err := client.Check(ctx); err != nil {
			return nil, notMigrated(name, err)
		}
	}
	return &session{pool: pool, client: client, schema: name}, nil
}

// notMigrated rewrites queue.ErrNotMigrated for a shell user.
func notMigrated(schemaName string, err error) error {
	if !errors.Is(err, queue.ErrNotMigrated) {
		return err
	}
	flag := ""
	if schemaName != schema.Default {
		flag = " --schema " + schemaName
	}
	return fmt.Errorf("%w: schema %q has no pgq tables; run `pgq migrate up%s` first", queue.ErrNotMigrated, schemaName, flag)
}

// serverAddr names the server a config points at, as host:port or a
// socket path.
func serverAddr(c pgconn.Config) string {
	host := c.Host
	if strings.HasPrefix(host, "/") {
		return fmt.Sprintf("%s/.s.PGSQL.%d", host, c.Port)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(c.Port)))
}

// connectCause reduces a connection error to its cause on one line: "connection
// refused", "timed out after 10s", or the server's own message. pgx's
// message lists every address it tried, with the user and database, over
// several lines; the cause is what a person needs.
func connectCause(err error) string {
	var causes []string
	seen := map[string]bool{}
	for _, leaf := range leaves(err) {
		c := oneCause(leaf)
		if !seen[c] {
			seen[c] = true
			causes = append(causes, c)
		}
	}
	return strings.Join(causes, "; ")
}

// leaves returns the innermost errors of err, following errors.Join.
func leaves(err error) []error {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, inner := range e.Unwrap() {
			out = append(out, leaves(inner)...)
		}
		return out
	case *pgconn.PgError:
		return []error{err}
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return leaves(inner)
		}
	}
	return []error{err}
}

func oneCause(err error) string {
	var pgErr *pgconn.PgError
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &pgErr):
		return fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve host %q: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// redactURL hides the password of a database URL for printing.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(your database URL)"
	}
	return u.Redacted()
}
