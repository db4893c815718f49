package lock

import (
	"context"
	"fmt"
	"time"

	"github.com/pgq/pgq/db"
	"github.com/pgq/pgq/internal/schema"
)

// Info describes one advisory lock of the database, held or awaited, as
// PostgreSQL's pg_locks and pg_stat_activity show it.
type Info struct {
	// Key is the one-bigint key. It is 0 when TwoKeys is true.
	Key int64 `json:"key"`
	// TwoKeys reports a lock taken with the two-int4 form
	// (pg_advisory_lock(int, int)), whose keys are Key1 and Key2. No pgq
	// lock uses that form.
	TwoKeys bool  `json:"two_keys,omitempty"`
	Key1    int64 `json:"key1,omitempty"`
	Key2    int64 `json:"key2,omitempty"`
	// Owner says whose lock it is when pgq can tell: "lock <name>" for a
	// named lock of this schema whose name was passed to List, "beat
	// leader" and "maintenance leader" for pgq's own locks; "" otherwise
	// (a key cannot be turned back into a name).
	Owner string `json:"owner,omitempty"`
	// Granted is true for a holder and false for a session waiting.
	Granted bool `json:"granted"`
	// Mode is ExclusiveLock or ShareLock.
	Mode string `json:"mode"`
	// PID is the backend process of the session.
	PID             int32      `json:"pid"`
	ApplicationName string     `json:"application_name,omitempty"`
	ClientAddr      string     `json:"client_addr,omitempty"` // "" for a Unix socket
	ClientPort      int32      `json:"client_port,omitempty"`
	User            string     `json:"user,omitempty"`
	State           string     `json:"state,omitempty"`
	BackendStart    *time.Time `json:"backend_start,omitempty"` // when the session connected
	XactStart       *time.Time `json:"xact_start,omitempty"`    // start of its open transaction, if any
	WaitStart       *time.Time `json:"wait_start,omitempty"`    // when a waiter began to wait
}

// List returns the advisory locks of the database, held and awaited, of
// every schema and program: PostgreSQL keeps no record of who took a key
// or why. Keys of pgq's own locks in the locker's schema are marked, and
// so are the named locks given in known, whose keys List computes.
func (l *Locker) List(ctx context.Context, known ...string) ([]Info, error) {
	q := db.New(l.pool)
	owners := map[int64]string{}
	labels := map[string]string{
		schema.Channel(l.schema, "beat"):        "beat leader",
		schema.Channel(l.schema, "maintenance"): "maintenance leader",
	}
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	internal, err := q.InternalLockKeys(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	for _, r := range internal {
		owners[r.Key] = labels[r.Name]
	}
	for _, name := range known {
		if name != "" {
			owners[l.Key(name)] = "lock " + name
		}
	}
	rows, err := q.ListAdvisoryLocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	out := make([]Info, 0, len(rows))
	for _, r := range rows {
		in := Info{
			Key: r.Key, TwoKeys: !r.BigintKey, Granted: r.Granted, Mode: r.Mode, PID: r.Pid,
			ApplicationName: r.ApplicationName, ClientAddr: r.ClientAddr, User: r.Usename, State: r.State,
			BackendStart: r.BackendStart, XactStart: r.XactStart, WaitStart: r.WaitStart,
		}
		if r.ClientPort != nil {
			in.ClientPort = *r.ClientPort
		}
		if in.TwoKeys {
			in.Key1, in.Key2 = int64(int32(uint32(r.Key1))), int64(int32(uint32(r.Key2)))
		} else {
			in.Owner = owners[r.Key]
		}
		out = append(out, in)
	}
	return out, nil
}
