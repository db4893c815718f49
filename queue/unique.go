package queue

import (
	"strings"
	"time"
	"unicode/utf8"
)

// UniqueScope says how long a job holds its unique key.
type UniqueScope string

const (
	// UniqueWhileActive (the default) holds the key while the job waits or
	// runs: a duplicate enqueued while it runs is still a duplicate.
	UniqueWhileActive UniqueScope = "active"
	// UniqueWhilePending holds the key only while the job waits
	// (scheduled, available, retrying). Once it starts, a new job with the
	// key may be enqueued: "make sure one more run is coming", the shape
	// of a debounced refresh.
	UniqueWhilePending UniqueScope = "pending"
	// UniqueForWindow holds the key for a time window (Unique.Window),
	// whatever the job's state, finished included. Windows are aligned
	// buckets of database time (a window of an hour runs from one full
	// hour to the next), so at most one job per key per bucket.
	UniqueForWindow UniqueScope = "window"
)

// UniqueMode says what an enqueue does when a job already holds its key.
type UniqueMode int

const (
	// UniqueKeep (the default) leaves the existing job as it is and
	// returns it, with Enqueued.Duplicate set.
	UniqueKeep UniqueMode = iota
	// UniqueReplace gives the existing job, if it still waits, the new
	// args, headers, priority, expiry and run time: with a Countdown, every
	// enqueue pushes the run back, which is a debounce (Graphile Worker's
	// job_key mode "replace"). A job that is already running is left
	// alone and returned as a duplicate.
	UniqueReplace
	// UniqueReplaceArgs is UniqueReplace that keeps the existing run time,
	// a throttle: the job runs when first planned, with the latest args
	// (Graphile Worker's "preserve_run_at").
	UniqueReplaceArgs
)

// uniqueKeyMax is the longest unique key; a window's bucket is appended
// to the key in the database, so keys of that scope must leave room.
const (
	uniqueKeyMax       = 255
	uniqueWindowKeyMax = 240
	mutexKeyMax        = 255
)

// Unique makes an enqueue idempotent: while a job holds the key (for its
// Scope), enqueueing another job with the key does not create one. The
// duplicate enqueue returns the existing job with Enqueued.Duplicate set,
// and no error; with a replace Mode it updates the existing job instead.
// Uniqueness is enforced by a unique index, so it holds for concurrent
// enqueues from any number of processes.
type Unique struct {
	// Key is the unique key. Empty means a key derived from the task name
	// and the args: "<task>:<md5 of the args as PostgreSQL's jsonb prints
	// them>", so two enqueues of a task with equal args are duplicates
	// (key order and spacing in the JSON do not matter).
	Key string
	// Scope is how long the key is held; empty means UniqueWhileActive,
	// or UniqueForWindow when Window is set.
	Scope UniqueScope
	// Window is the bucket length of UniqueForWindow, in whole seconds.
	Window time.Duration
	// Mode is what a duplicate enqueue does; the zero value is UniqueKeep.
	Mode UniqueMode
}

// resolvedUnique is Unique after defaults, as the insert statements take it.
type resolvedUnique struct {
	key           *string // nil: derived from task and args by the database
	scope         UniqueScope
	windowSeconds float64
	mode          UniqueMode
}

// uniqueOf returns the job's unique settings, or nil when it has none:
// Options.Unique, else Options.UniqueKey (the short form).
func uniqueOf(o Options) (*resolvedUnique, error) {
	u := o.Unique
	if u == nil {
		if o.UniqueKey == "" {
			return nil, nil
		}
		u = &Unique{Key: o.UniqueKey}
	} else if o.UniqueKey != "" && u.Key != "" && u.Key != o.UniqueKey {
		return nil, invalid("UniqueKey", "set UniqueKey or Unique.Key, not both")
	} else if u.Key == "" && o.UniqueKey != "" {
		c := *u
		c.Key = o.UniqueKey
		u = &c
	}
	r := &resolvedUnique{scope: u.Scope, windowSeconds: 1, mode: u.Mode}
	if r.scope == "" {
		r.scope = UniqueWhileActive
		if u.Window != 0 {
			r.scope = UniqueForWindow
		}
	}
	switch r.scope {
	case UniqueWhileActive, UniqueWhilePending:
		if u.Window != 0 {
			return nil, invalid("Unique.Window", "a window is only for the scope %q (got %q)", UniqueForWindow, r.scope)
		}
	case UniqueForWindow:
		if u.Window < time.Second || u.Window%time.Second != 0 {
			return nil, invalid("Unique.Window", "window %s must be a whole number of seconds, at least 1s", u.Window)
		}
		r.windowSeconds = u.Window.Seconds()
	default:
		return nil, invalid("Unique.Scope", "unknown scope %q: use %q, %q or %q", r.scope, UniqueWhileActive, UniqueWhilePending, UniqueForWindow)
	}
	if r.mode < UniqueKeep || r.mode > UniqueReplaceArgs {
		return nil, invalid("Unique.Mode", "unknown mode %d: use UniqueKeep, UniqueReplace or UniqueReplaceArgs", r.mode)
	}
	if u.Key != "" {
		limit := uniqueKeyMax
		if r.scope == UniqueForWindow {
			limit = uniqueWindowKeyMax
		}
		if err := checkKey("Unique.Key", "unique key", u.Key, limit); err != nil {
			return nil, err
		}
		r.key = Ptr(u.Key)
	}
	return r, nil
}

// checkKey checks a key that the database stores as text: not too long,
// valid UTF-8 and without NUL characters (which text cannot hold), so that
// a bad key is an ErrInvalid and not an aborted transaction.
func checkKey(field, what, key string, limit int) error {
	switch {
	case len(key) > limit:
		return invalid(field, "%s is %d bytes long; the limit is %d", what, len(key), limit)
	case !utf8.ValidString(key):
		return invalid(field, "%s is not valid UTF-8", what)
	case strings.IndexByte(key, 0) >= 0:
		return invalid(field, "%s holds a NUL character, which PostgreSQL cannot store", what)
	}
	return nil
}
