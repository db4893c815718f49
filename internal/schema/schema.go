// Package schema places pgq's SQL in the schema a program chose.
//
// Migrations and queries are written against the default schema, as
// "pgq.<object>". When a program installs pgq under another schema (tests do
// this to run side by side in one database; tenants may too), every
// "pgq." prefix in a statement is replaced by the chosen name before the
// statement is sent. Rewritten statements are cached, so the cost is paid
// once per distinct statement, and the default schema costs nothing.
//
// NOTIFY channel names and advisory-lock names are written with the same
// prefix ("pgq.jobs"), so they follow the schema too: two schemas in one
// database never hear each other's wake-ups or share a lock.
package schema

import (
	"context"
	"fmt"
	"regexp"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Default is the schema pgq uses unless told otherwise.
const Default = "pgq"

// validName keeps names short enough that "<schema>.<channel>" stays under
// PostgreSQL's 63-byte identifier limit, and plain enough that they never
// need quoting.
var validName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Check reports whether name can be used as pgq's schema.
func Check(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid schema name %q: use 1 to 40 lower-case letters, digits and underscores, starting with a letter or underscore", name)
	}
	return nil
}

// OrDefault returns name, or Default when name is empty.
func OrDefault(name string) string {
	if name == "" {
		return Default
	}
	return name
}

// prefix matches the schema prefix where it starts a word: "pgq.jobs" and
// "'pgq.jobs'" but not "xpgq.jobs".
var prefix = regexp.MustCompile(`\bpgq\.`)

var cache sync.Map // key{schema, sql} -> string

type cacheKey struct{ schema, sql string }

// Rewrite returns sql with every "pgq." prefix replaced by "<name>.".
func Rewrite(name, sql string) string {
	if name == Default {
		return sql
	}
	k := cacheKey{name, sql}
	if v, ok := cache.Load(k); ok {
		return v.(string)
	}
	out := prefix.ReplaceAllLiteralString(sql, name+".")
	cache.Store(k, out)
	return out
}

// Channel returns the NOTIFY channel that carries the given topic in schema
// name, e.g. Channel("pgq", "jobs") == "pgq.jobs".
func Channel(name, topic string) string {
	return name + "." + topic
}

// DBTX is what sqlc's generated code needs from a connection, pool or
// transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// Wrap returns a DBTX that sends every statement of d to schema name.
// For the default schema it returns d itself.
func Wrap(name string, d DBTX) DBTX {
	if name == Default {
		return d
	}
	return rewriter{name: name, d: d}
}

type rewriter struct {
	name string
	d    DBTX
}

func (r rewriter) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return r.d.Exec(ctx, Rewrite(r.name, sql), args...)
}

func (r rewriter) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return r.d.Query(ctx, Rewrite(r.name, sql), args...)
}

func (r rewriter) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return r.d.QueryRow(ctx, Rewrite(r.name, sql), args...)
}

func (r rewriter) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	if len(table) == 2 && table[0] == Default {
		table = pgx.Identifier{r.name, table[1]}
	}
	return r.d.CopyFrom(ctx, table, columns, rows)
}

// StagedWake is the payload that wakes workers on the jobs channel for
// staged jobs (queue.Options.Staged): they must be moved into the jobs
// table before any queue can claim them. It cannot be a queue name (those
// start with a letter or digit). queries/staged.sql spells it too.
const StagedWake = "+staged"
