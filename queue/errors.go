package queue

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrInvalid is matched (errors.Is) by every error about bad input to an
// enqueue: a bad name, option or payload. Such errors are returned before
// any statement is sent, so a caller's transaction stays usable.
var ErrInvalid = errors.New("invalid job")

// ErrPayloadTooLarge is matched by errors about args and headers above the
// client's MaxPayloadBytes. It also matches ErrInvalid.
var ErrPayloadTooLarge = errors.New("payload too large")

// ErrJobNotFound is returned when no job has the given id.
var ErrJobNotFound = errors.New("no such job")

// ErrNotMigrated is matched when the database has no pgq schema (or an old
// one): run `pgq migrate up` or migrations.Up.
var ErrNotMigrated = errors.New("pgq schema is not installed")

// ValidationError says which field of a job is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
	cause  error
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Is makes ValidationErrors match ErrInvalid and their specific cause.
func (e *ValidationError) Is(target error) bool {
	return target == ErrInvalid || (e.cause != nil && target == e.cause)
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// dbError turns driver errors into pgq's: a missing schema, table or
// function means the migrations have not run.
func dbError(schemaName, action string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrJobNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "3F000", "42P01", "42883": // invalid_schema_name, undefined_table, undefined_function
			return fmt.Errorf("%s: %w: schema %q has no pgq tables; run `pgq migrate up --schema %s` (or migrations.Up) first (%s)",
				action, ErrNotMigrated, schemaName, schemaName, pgErr.Message)
		}
	}
	return fmt.Errorf("%s: %w", action, err)
}
