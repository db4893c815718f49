package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgq/pgq/db"
)

// Access is what a database role may do with pgq's tables
// (migrations/0012_roles.up.sql, docs/roles.md).
type Access string

const (
	// AccessProducer may enqueue jobs and read jobs, results and
	// statistics; it cannot change or delete a job once it exists.
	AccessProducer Access = "producer"
	// AccessWorker may run jobs: claim, complete, retry, rescue and prune
	// (select, insert, update and delete on pgq's tables).
	AccessWorker Access = "worker"
	// AccessAdmin has every privilege on pgq's tables: the dashboard and
	// the operator commands.
	AccessAdmin Access = "admin"
)

// ErrNoSuchRole is matched by GrantAccess's error when the role does not
// exist: pgq grants access to roles, it does not create them.
var ErrNoSuchRole = errors.New("no such role")

// ParseAccess returns the Access named s.
func ParseAccess(s string) (Access, error) {
	switch a := Access(s); a {
	case AccessProducer, AccessWorker, AccessAdmin:
		return a, nil
	}
	return "", fmt.Errorf("%w: unknown access %q: use producer, worker or admin", ErrInvalid, s)
}

// AccessGrant is a role given access to the client's schema.
type AccessGrant struct {
	Role      string    `json:"role"`
	Access    Access    `json:"access"`
	GrantedAt time.Time `json:"granted_at"`
	// RoleExists is false when the role was dropped after the grant.
	RoleExists bool `json:"role_exists"`
	CanLogin   bool `json:"can_login"`
}

// GrantAccess gives an existing role the privileges of access on the
// client's schema, replacing what it had. It needs a connection as the
// schema's owner (or a superuser). Grants are recorded, and migrations that
// add tables re-apply them.
func (c *Client) GrantAccess(ctx context.Context, role string, access Access) error {
	if role == "" {
		return fmt.Errorf("%w: role name is empty", ErrInvalid)
	}
	if _, err := ParseAccess(string(access)); err != nil {
		return err
	}
	err := c.queries(c.pool).GrantAccess(ctx, db.GrantAccessParams{RoleName: role, Access: string(access)})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42704" { // undefined_object
		return fmt.Errorf("grant %s access to role %q: %w: create it first (CREATE ROLE %s LOGIN PASSWORD '...')",
			access, role, ErrNoSuchRole, role)
	}
	if err != nil {
		return dbError(c.schema, fmt.Sprintf("grant %s access to role %q", access, role), err)
	}
	return nil
}

// RevokeAccess takes away the access GrantAccess gave role. It reports
// false when the role no longer exists (its record is removed anyway).
func (c *Client) RevokeAccess(ctx context.Context, role string) (bool, error) {
	if role == "" {
		return false, fmt.Errorf("%w: role name is empty", ErrInvalid)
	}
	ok, err := c.queries(c.pool).RevokeAccess(ctx, role)
	if err != nil {
		return false, dbError(c.schema, fmt.Sprintf("revoke access of role %q", role), err)
	}
	return ok, nil
}

// ListAccess returns the recorded grants, by role name.
func (c *Client) ListAccess(ctx context.Context) ([]AccessGrant, error) {
	rows, err := c.queries(c.pool).ListAccessGrants(ctx)
	if err != nil {
		return nil, dbError(c.schema, "list access grants", err)
	}
	out := make([]AccessGrant, len(rows))
	for i, r := range rows {
		out[i] = AccessGrant{Role: r.RoleName, Access: Access(r.Access), GrantedAt: r.GrantedAt,
			RoleExists: r.RoleExists, CanLogin: r.CanLogin}
	}
	return out, nil
}
