package worker

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// health turns what the worker's loops see into one account of an outage:
// "database unreachable" once, when the first loop fails to reach
// PostgreSQL, and "database reachable again" once, when the first loop
// gets through, with how long it lasted. In between, each loop retries
// on its own with capped exponential backoff (the pool reconnects) and
// logs its retries at debug level only.
//
// The end of an outage also asks the fetcher to reconcile before its
// next claim: jobs that the database says this worker runs but that it
// does not hold go back to their queue (see Worker.reconcile), and a
// claim follows at once, since wake-ups sent while the LISTEN connection
// was down are lost.
type health struct {
	w    *Worker
	down atomic.Bool

	mu       sync.Mutex
	since    time.Time
	failures int
}

// failed records a failed database call of loop and logs it: the start
// of an outage at warn level, a further failure during one at debug
// level, and an error that is not about reachability (a bug, a missing
// table) at error level every time. It reports whether err means the
// database is unreachable.
func (h *health) failed(loop string, err error) bool {
	log := h.w.log
	if !isOutage(err) {
		log.Error(loop+": database call failed; retrying", "loop", loop, "error", err)
		return false
	}
	h.mu.Lock()
	first := !h.down.Load()
	if first {
		h.down.Store(true)
		h.since = time.Now()
		h.failures = 0
	}
	h.failures++
	h.mu.Unlock()
	if first {
		log.Warn("database unreachable: retrying with backoff until it answers", "loop", loop, "error", err)
	} else {
		log.Debug("database still unreachable", "loop", loop, "error", err)
	}
	return true
}

// ok records a database call of loop that went through. It costs one
// atomic load unless an outage is ending.
func (h *health) ok(loop string) {
	if !h.down.Load() {
		return
	}
	h.mu.Lock()
	if !h.down.Load() {
		h.mu.Unlock()
		return
	}
	h.down.Store(false)
	outage, failures := time.Since(h.since), h.failures
	h.mu.Unlock()
	h.w.log.Info("database reachable again", "loop", loop, "outage", outage.Round(time.Millisecond), "failed_calls", failures)
	h.w.fetcher.reconcileSoon()
}

// isOutage reports whether err says the database cannot be reached (as
// opposed to a statement the database refused).
func isOutage(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return true // network errors, EOF, a closed connection, a timeout
	}
	switch {
	case strings.HasPrefix(pgErr.Code, "08"): // connection_exception
		return true
	case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
		return true
	case pgErr.Code == "53300": // too_many_connections
		return true
	}
	return false
}

const (
	retryBackoffMin = 50 * time.Millisecond
	retryBackoffMax = 5 * time.Second
)

// retryBackoff returns how long to wait before the n-th retry (n from 1)
// of a failed database call: 50 ms doubling up to 5 s, spread by ±20% so
// that the workers of a fleet do not all come back in the same instant.
func retryBackoff(n int) time.Duration {
	d := retryBackoffMin << min(max(n-1, 0), 10)
	d = min(d, retryBackoffMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
